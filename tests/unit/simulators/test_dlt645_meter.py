"""The simulated DL/T 645 meter, frame by frame, and the protocol-neutral fault channel."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ivy_gateway.codec.dlt645 import (
    BROADCAST,
    CATALOG,
    WILDCARD,
    AckReply,
    Address,
    BroadcastTimeRequest,
    ChangeBaudReply,
    ChangeBaudRequest,
    ChangePasswordReply,
    ChangePasswordRequest,
    ControlCode,
    DataId,
    ErrorFlags,
    ErrorReply,
    Frame,
    FreezeRequest,
    Function,
    Message,
    OperatorCode,
    Password,
    ReadAddressReply,
    ReadAddressRequest,
    ReadFollowUpReply,
    ReadFollowUpRequest,
    ReadReply,
    ReadRequest,
    RelayCommand,
    RelayControlRequest,
    SimpleRelayRequest,
    VendorAesRelayRequest,
    VendorRelayPlaintext,
    WriteAddressRequest,
    WriteRequest,
    decode_frame,
    decode_message,
    encode_message,
)
from ivy_gateway.simulators.dlt645_meter import Dlt645Meter
from ivy_gateway.simulators.faults import Faults, ReplyChannel
from ivy_gateway.transport.fakes import LoopbackPair, ScriptedStream

ADDRESS = "000000001234"
PASSWORD = Password.parse("02123456")
OPERATOR = OperatorCode("12345678")
KEY = bytes(range(16))


def ask(meter: Dlt645Meter, message: Message, to: Address | None = None) -> Message | None:
    """The meter's reply to ``message`` sent to ``to`` (its own address by default)."""
    frame = decode_frame(encode_message(to or meter.address, message))
    return meter.answer(frame)


def read(meter: Dlt645Meter, di: str) -> Message | None:
    return ask(meter, ReadRequest(DataId.parse(di)))


def value_of(meter: Dlt645Meter, di: str) -> Any:
    reply = read(meter, di)
    assert isinstance(reply, ReadReply)
    return CATALOG[reply.di].to_canonical(CATALOG[reply.di].decode(reply.value))


def relay(meter: Dlt645Meter, command: RelayCommand, *, password: Password = PASSWORD) -> Message:
    until = meter.now() + timedelta(minutes=5)
    reply = ask(meter, RelayControlRequest(password, OPERATOR, command, until))
    assert reply is not None
    return reply


def test_every_profile_di_reads_and_is_recorded_as_sent() -> None:
    meter = Dlt645Meter(ADDRESS, phases=3, seed=7, password="02123456")
    for di in ("00000000", "00010000", "00010300", "02010300", "02020200", "02030000",
               "02040000", "02050000", "02060000", "02800002", "04000503", "04000403"):  # fmt: skip
        value = value_of(meter, di)
        assert meter.last_sent(di).value == value
    assert meter.sent[0].ts_ms <= time.time_ns() // 1_000_000


def test_single_phase_meter_lacks_other_phases() -> None:
    meter = Dlt645Meter(ADDRESS, phases=1)
    assert isinstance(read(meter, "02010100"), ReadReply)
    for di in ("02010200", "02030300", "02070100", "12345678", "02030001"):
        assert read(meter, di) == ErrorReply(Function.READ_DATA, ErrorFlags.NO_REQUESTED_DATA)


def test_configured_errors_answer_abnormally() -> None:
    flags = ErrorFlags.OTHER | ErrorFlags.PASSWORD_OR_UNAUTHORIZED
    meter = Dlt645Meter(ADDRESS, errors={"02010100": flags})
    assert read(meter, "02010100") == ErrorReply(Function.READ_DATA, flags)


def test_energy_grows_monotonically_with_power() -> None:
    meter = Dlt645Meter(ADDRESS, seed=3, time_scale=3600 * 1000)  # a ms is an hour
    energies = []
    for _ in range(5):
        time.sleep(0.002)
        energies.append(value_of(meter, "00010000"))
    assert energies == sorted(energies)
    assert energies[-1] > energies[0]
    still = Dlt645Meter(ADDRESS, seed=3, time_scale=0)
    combined = value_of(still, "00010000") + value_of(still, "00020000")
    assert abs(value_of(still, "00000000") - combined) <= Decimal("0.01")


def test_open_relay_zeroes_power_and_current_and_sets_status_bit() -> None:
    meter = Dlt645Meter(ADDRESS, password="02123456")
    assert value_of(meter, "02030000") != 0
    assert relay(meter, RelayCommand.TRIP) == AckReply(Function.RELAY_CONTROL)
    assert meter.relay_open
    for di in ("02030000", "02020100", "02040000", "02050000"):
        assert value_of(meter, di) == 0
    assert value_of(meter, "02060000") == 1
    assert value_of(meter, "04000503") == 0x50  # relay open + trip commanded
    assert value_of(meter, "02010100") > 200  # the line still has voltage


def test_relay_commands_follow_the_standard() -> None:
    meter = Dlt645Meter(ADDRESS, password="02123456", accepts_close_direct=False)
    wrong = Password.parse("02000000")
    assert relay(meter, RelayCommand.TRIP, password=wrong) == ErrorReply(
        Function.RELAY_CONTROL, ErrorFlags.PASSWORD_OR_UNAUTHORIZED
    )
    relay(meter, RelayCommand.TRIP)
    assert relay(meter, RelayCommand.CLOSE_DIRECT) == ErrorReply(
        Function.RELAY_CONTROL, ErrorFlags.OTHER
    )
    relay(meter, RelayCommand.CLOSE_PERMITTED)
    assert value_of(meter, "04000503") == 0x10  # permitted, not closed: press the button
    meter.press_button()
    assert value_of(meter, "04000503") == 0
    meter.press_button()  # nothing permitted any more
    relay(meter, RelayCommand.KEEP_POWER_ON)
    assert relay(meter, RelayCommand.TRIP) == ErrorReply(Function.RELAY_CONTROL, ErrorFlags.OTHER)
    relay(meter, RelayCommand.KEEP_POWER_OFF)
    alarms = []
    for command in (RelayCommand.ALARM_ON, RelayCommand.ALARM_OFF):
        relay(meter, command)
        alarms.append(meter.alarm)
    assert alarms == [True, False]
    assert relay(meter, RelayCommand.TRIP) == AckReply(Function.RELAY_CONTROL)


def test_expired_relay_command_is_refused() -> None:
    meter = Dlt645Meter(ADDRESS, password="02123456")
    past = meter.now() - timedelta(minutes=1)
    reply = ask(meter, RelayControlRequest(PASSWORD, OPERATOR, RelayCommand.TRIP, past))
    assert reply == ErrorReply(Function.RELAY_CONTROL, ErrorFlags.OTHER)
    assert not meter.relay_open


def test_vendor_aes_relay_needs_the_key_and_password() -> None:
    def vendor(password: str, key: bytes = KEY) -> VendorAesRelayRequest:
        plain = VendorRelayPlaintext(datetime(2026, 1, 1), "12345678", password, RelayCommand.TRIP)
        return plain.encrypt(key)

    plain_meter = Dlt645Meter(ADDRESS, password="02123456")
    other = ErrorReply(Function.RELAY_CONTROL, ErrorFlags.OTHER)
    assert ask(plain_meter, vendor("02123456")) == other
    assert ask(plain_meter, SimpleRelayRequest(RelayCommand.TRIP)) == other
    meter = Dlt645Meter(ADDRESS, password="02123456", vendor_aes_key=KEY)
    assert ask(meter, vendor("02123456", bytes(16))) == other  # wrong key: garbage block
    assert ask(meter, vendor("02999999")) == ErrorReply(
        Function.RELAY_CONTROL, ErrorFlags.PASSWORD_OR_UNAUTHORIZED
    )
    assert ask(meter, vendor("02123456")) == AckReply(Function.RELAY_CONTROL)
    assert meter.relay_open


def test_long_value_is_sent_in_follow_up_parts() -> None:
    meter = Dlt645Meter(ADDRESS, follow_up_chunk=10, asset_code="A" * 32)
    di = DataId.parse("04000403")
    first = read(meter, "04000403")
    assert isinstance(first, ReadReply)
    assert first.follow_up
    parts = [first.value]
    for seq in (1, 2, 3):
        part = ask(meter, ReadFollowUpRequest(di, seq))
        assert isinstance(part, ReadFollowUpReply)
        assert part.seq == seq
        parts.append(part.value)
    assert isinstance(part, ReadFollowUpReply)
    assert not part.follow_up
    assert CATALOG[di].decode(b"".join(parts)) == "A" * 32
    assert ask(meter, ReadFollowUpRequest(di, 4)) == ErrorReply(
        Function.READ_FOLLOW_UP, ErrorFlags.NO_REQUESTED_DATA
    )


def test_clock_writes_check_the_password() -> None:
    start = datetime(2026, 3, 1, 12, 0, 0)
    meter = Dlt645Meter(ADDRESS, password="02123456", clock=lambda: start)

    def write(di: str, value: object, password: Password = PASSWORD) -> Message | None:
        data_id = DataId.parse(di)
        raw = CATALOG[data_id].encode(value)  # type: ignore[arg-type]
        return ask(meter, WriteRequest(data_id, password, OPERATOR, raw))

    ack = AckReply(Function.WRITE_DATA)
    denied = ErrorReply(Function.WRITE_DATA, ErrorFlags.PASSWORD_OR_UNAUTHORIZED)
    assert write("04000102", start.time(), Password.parse("02000000")) == denied
    assert write("04000102", datetime(2026, 1, 1, 8, 30, 5).time()) == ack
    assert write("04000101", datetime(2026, 2, 3).date()) == ack
    assert meter.now() == datetime(2026, 2, 3, 8, 30, 5)
    assert write("0400010C", datetime(2026, 4, 5, 6, 7, 8)) == ack
    assert meter.now() == datetime(2026, 4, 5, 6, 7, 8)
    assert value_of(meter, "0400010C") == datetime(2026, 4, 5, 6, 7, 8)
    assert write("04000409", Decimal(1600)) == ack
    assert meter.written == {"04000409": b"\x00\x16\x00"}
    bad = WriteRequest(DataId.parse("04000101"), PASSWORD, OPERATOR, b"\x99\x99\x99\x99")
    assert ask(meter, bad) == ErrorReply(Function.WRITE_DATA, ErrorFlags.OTHER)
    unknown = WriteRequest(DataId.parse("12345678"), PASSWORD, OPERATOR, b"")
    assert ask(meter, unknown) == ErrorReply(Function.WRITE_DATA, ErrorFlags.NO_REQUESTED_DATA)


def test_broadcast_time_corrects_only_a_few_minutes_and_is_never_answered() -> None:
    start = datetime(2026, 3, 1, 12, 0, 0)
    meter = Dlt645Meter(ADDRESS, clock=lambda: start)
    assert ask(meter, BroadcastTimeRequest(start + timedelta(minutes=3)), BROADCAST) is None
    assert meter.now() == start + timedelta(minutes=3)
    assert ask(meter, BroadcastTimeRequest(start + timedelta(hours=3)), BROADCAST) is None
    assert meter.now() == start + timedelta(minutes=3)


def test_management_functions_are_acknowledged() -> None:
    meter = Dlt645Meter(ADDRESS, password="02123456")
    assert ask(meter, ReadAddressRequest(), WILDCARD) == ReadAddressReply(meter.address)
    assert ask(meter, FreezeRequest()) == AckReply(Function.FREEZE)
    assert ask(meter, FreezeRequest(), BROADCAST) is None
    assert ask(meter, ChangeBaudRequest(9600)) == ChangeBaudReply(9600)
    new = Password.parse("02654321")
    di = DataId.parse("04000C03")
    assert ask(meter, ChangePasswordRequest(di, new, new)) == ErrorReply(
        Function.CHANGE_PASSWORD, ErrorFlags.PASSWORD_OR_UNAUTHORIZED
    )
    assert ask(meter, ChangePasswordRequest(di, PASSWORD, new)) == ChangePasswordReply(new)
    assert meter.password == new
    moved = Address.parse("000000005678")
    assert ask(meter, WriteAddressRequest(moved), WILDCARD) == AckReply(Function.WRITE_ADDRESS)
    assert meter.address == moved


def test_frames_not_for_this_meter_get_no_answer() -> None:
    meter = Dlt645Meter(ADDRESS)
    assert ask(meter, ReadAddressRequest(), Address.parse("000000009999")) is None
    reply_frame = decode_frame(encode_message(meter.address, ReadAddressReply(meter.address)))
    assert meter.answer(reply_frame) is None
    nonsense = Frame(meter.address, ControlCode.request(Function.READ_DATA), b"\x01")
    assert meter.answer(nonsense) is None
    assert meter.requests == []


def test_constructor_rejects_impossible_meters() -> None:
    with pytest.raises(ValueError, match="phases"):
        Dlt645Meter(ADDRESS, phases=2)
    with pytest.raises(ValueError, match="follow_up_chunk"):
        Dlt645Meter(ADDRESS, follow_up_chunk=0)


async def test_serve_announces_then_answers_until_eof() -> None:
    meter = Dlt645Meter(ADDRESS, announce=True, preamble_len=2)
    request = encode_message(meter.address, ReadRequest(DataId.parse("02010100")))
    broadcast = encode_message(BROADCAST, BroadcastTimeRequest(datetime(2026, 1, 1)))
    bad_checksum = request[:-2] + bytes([request[-2] ^ 1]) + request[-1:]
    stream = ScriptedStream([bad_checksum + broadcast + request[:5], request[5:]])
    await meter.serve(stream)
    announce, reply = stream.written
    assert announce.startswith(b"\xfe\xfe")
    assert decode_message(decode_frame(announce)) == ReadAddressReply(meter.address)
    message = decode_message(decode_frame(reply))
    assert isinstance(message, ReadReply)
    assert message.di == DataId.parse("02010100")
    assert meter.connections == 1


async def test_serve_stops_when_the_faults_disconnect() -> None:
    meter = Dlt645Meter(ADDRESS, faults=Faults(disconnect_after=1))
    request = encode_message(meter.address, ReadRequest(DataId.parse("02010100")))
    async with LoopbackPair() as pair:
        task = asyncio.create_task(meter.serve(pair.meter))
        await pair.gateway.write(request * 3)
        await asyncio.wait_for(task, 1)
        assert pair.meter.closed
        assert len(decode_frame(await pair.gateway.read()).data) == 6


# -- faults.ReplyChannel ------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"drop_probability": 1.5},
        {"garbage_probability": -0.1},
        {"delay_s": -1},
        {"split_chunks": 0},
        {"garbage_alphabet": b""},
        {"disconnect_after": -1},
    ],
)
def test_faults_reject_impossible_settings(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        Faults(**changes)  # type: ignore[arg-type]


async def test_channel_without_faults_writes_each_reply_once() -> None:
    stream = ScriptedStream()
    channel = ReplyChannel(stream)
    await channel.send(b"abc")
    assert stream.written == [b"abc"]
    assert channel.replies_sent == 1


async def test_dropped_replies_are_counted_not_sent() -> None:
    stream = ScriptedStream()
    channel = ReplyChannel(stream, Faults(drop_probability=1.0))
    await channel.send(b"abc")
    assert stream.written == []
    assert channel.replies_dropped == 1


async def test_slow_replies_wait() -> None:
    channel = ReplyChannel(ScriptedStream(), Faults(delay_s=0.05))
    started = time.monotonic()
    await channel.send(b"abc")
    assert time.monotonic() - started >= 0.04


async def test_garbage_comes_before_the_reply_and_holds_no_frame_start() -> None:
    stream = ScriptedStream()
    channel = ReplyChannel(stream, Faults(garbage_probability=1.0, garbage_bytes=50))
    await channel.send(b"reply")
    garbage, reply = stream.written
    assert reply == b"reply"
    assert len(garbage) == channel.garbage_sent == 50
    assert not set(garbage) & {0x68, 0xFE, 0x00}


async def test_split_writes_deliver_the_reply_in_pieces() -> None:
    stream = ScriptedStream()
    channel = ReplyChannel(stream, Faults(split_chunks=3, split_pause_s=0))
    await channel.send(b"0123456789")
    assert stream.written == [b"0123", b"4567", b"89"]
    await channel.send(b"x")
    assert stream.written[-1] == b"x"


@pytest.mark.parametrize(("mid_reply", "last"), [(False, b"one"), (True, b"two")])
async def test_disconnect_after_n_replies(mid_reply: bool, last: bytes) -> None:
    stream = ScriptedStream()
    channel = ReplyChannel(stream, Faults(disconnect_after=1, disconnect_mid_reply=mid_reply))
    for reply in (b"one", b"twotwo", b"three"):
        await channel.send(reply)
    assert stream.written[-1] == last
    assert channel.closed
    assert stream.closed


async def test_a_gone_peer_closes_the_channel_quietly() -> None:
    stream = ScriptedStream()
    stream.close()
    channel = ReplyChannel(stream)
    await channel.send(b"abc")
    assert channel.closed
    assert channel.replies_sent == 0


async def test_same_seed_misbehaves_the_same_way() -> None:
    async def run(seed: int) -> list[bytes]:
        stream = ScriptedStream()
        faults = Faults(drop_probability=0.5, garbage_probability=0.5, seed=seed)
        channel = ReplyChannel(stream, faults)
        for i in range(20):
            await channel.send(bytes([i]))
        return stream.written

    assert await run(1) == await run(1)
    assert await run(1) != await run(2)
