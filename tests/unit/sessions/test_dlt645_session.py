"""Dlt645Session over an in-memory LoopbackPair: identification, reads, errors, lifecycle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Literal

import pytest

from ivy_gateway.codec.dlt645 import (
    NEED_DATA,
    WILDCARD,
    Address,
    ControlCode,
    DataId,
    ErrorFlags,
    Frame,
    FrameDecoder,
    Function,
    Message,
    ReadAddressReply,
    ReadAddressRequest,
    ReadFollowUpReply,
    ReadFollowUpRequest,
    ReadReply,
    ReadRequest,
    encode_frame,
    encode_message,
)
from ivy_gateway.domain.errors import MeterOffline, MeterRejected, MeterTimeout, ProtocolViolation
from ivy_gateway.domain.events import EventKind, GatewayEvent, MeterEvent, MeterStatus
from ivy_gateway.domain.meter import ConnectionInfo, MeterId
from ivy_gateway.domain.quantities import ReadingSource
from ivy_gateway.sessions.context import LiveSession, MeterOptions, SessionContext, SessionTimings
from ivy_gateway.sessions.dlt645 import Dlt645Session
from ivy_gateway.sessions.profiles import load_profiles
from ivy_gateway.simulators.dlt645_meter import Dlt645Meter
from ivy_gateway.simulators.faults import Faults
from ivy_gateway.transport import StreamClosed
from ivy_gateway.transport.fakes import LoopbackPair, MemoryStream

INVALID = EventKind.INVALID_TRAFFIC

ADDRESS = "000000001234"
METER = MeterId(ADDRESS)
FAST = SessionTimings(request_timeout_s=0.1, retries=1, identify_timeout_s=0.1)
PROFILES = load_profiles()


class Events:
    def __init__(self) -> None:
        self.events: list[GatewayEvent] = []

    def emit(self, event: GatewayEvent) -> None:
        self.events.append(event)

    def status(self) -> list[bool]:
        return [e.online for e in self.events if isinstance(e, MeterStatus)]


class Clock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class Capture:
    def __init__(self) -> None:
        self.records: list[tuple[MeterId, str, bytes]] = []

    def is_enabled(self, meter: MeterId) -> bool:
        return True

    def record(
        self,
        meter: MeterId,
        direction: Literal["rx", "tx"],
        data: bytes,
        connection: ConnectionInfo | None = None,
    ) -> None:
        self.records.append((meter, direction, data))


def make_context(
    events: Events,
    timings: SessionTimings = FAST,
    options: Mapping[MeterId, MeterOptions] | None = None,
    capture: Capture | None = None,
) -> SessionContext:
    return SessionContext(
        sink=events,
        clock=Clock(),
        profiles=PROFILES,
        timings=timings,
        meter_options=options,
        capture=capture,
    )


async def until(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    # Polling is the point: the registry and the simulator have no event to wait on.
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


@asynccontextmanager
async def running(
    context: SessionContext, pair: LoopbackPair, first: bytes = b""
) -> AsyncIterator[tuple[Dlt645Session, asyncio.Task[None]]]:
    """A session running on ``pair.gateway``; closed and awaited on exit."""
    session = Dlt645Session(pair.gateway, context, first)
    task = asyncio.create_task(session.run())
    try:
        yield session, task
    finally:
        session.close("test finished")
        pair.close()
        await asyncio.wait_for(task, 2)


@asynccontextmanager
async def with_meter(meter: Dlt645Meter, context: SessionContext) -> AsyncIterator[Dlt645Session]:
    """A simulated meter and an identified session talking to it."""
    async with LoopbackPair() as pair:
        served = asyncio.create_task(meter.serve(pair.meter))
        async with running(context, pair) as (session, _):
            await until(lambda: context.registry.get(METER) is session)
            yield session
        await asyncio.wait_for(served, 2)


class RawMeter:
    """A hand-driven peer: decodes what the gateway sends, writes whatever a test says."""

    def __init__(self, stream: MemoryStream) -> None:
        self.stream = stream
        self.decoder = FrameDecoder()

    async def next_request(self) -> Frame:
        while True:
            event = self.decoder.next_event()
            if isinstance(event, Frame):
                return event
            if event is NEED_DATA:
                self.decoder.feed(await self.stream.read())

    async def send(self, *messages: Message, address: str = ADDRESS) -> None:
        for message in messages:
            await self.stream.write(encode_message(Address.parse(address), message))


ANNOUNCE = encode_message(Address.parse(ADDRESS), ReadAddressReply(Address.parse(ADDRESS)))
VOLTAGE = DataId.parse("02010100")


# -- identification -------------------------------------------------------------------------


async def test_silent_meter_is_asked_for_its_address() -> None:
    events = Events()
    meter = Dlt645Meter(ADDRESS)
    async with with_meter(meter, make_context(events)) as session:
        assert session.meter == METER
        assert session.model == "dlt645-three-phase"
        assert [g.name for g in session.poll_groups] == ["instantaneous", "energy"]
        assert meter.requests == [ReadAddressRequest()]
        assert events.status() == [True]
    assert events.status() == [True, False]


async def test_announcing_meter_is_identified_from_the_first_bytes() -> None:
    events = Events()
    context = make_context(events)
    meter = Dlt645Meter(ADDRESS, announce=True)
    async with LoopbackPair() as pair:
        served = asyncio.create_task(meter.serve(pair.meter))
        first = await pair.gateway.read()  # what the dispatcher read before choosing DL/T 645
        async with running(context, pair, first) as (session, _):
            await until(lambda: context.registry.get(METER) is session)
            assert meter.requests == []  # never had to ask
        await served


async def test_first_frame_in_pieces_still_identifies_without_asking() -> None:
    context = make_context(Events())
    async with LoopbackPair() as pair, running(context, pair, ANNOUNCE[:7]) as (session, _):
        await asyncio.sleep(0.02)
        await pair.meter.write(ANNOUNCE[7:])
        await until(lambda: context.registry.get(METER) is session)
        assert pair.meter.buffered == 0  # nothing was sent to the meter


async def test_identification_ignores_requests_and_wildcard_addresses() -> None:
    context = make_context(Events())
    request = encode_message(Address.parse(ADDRESS), ReadRequest(VOLTAGE))
    wildcard_reply = encode_message(WILDCARD, ReadAddressReply(WILDCARD))
    async with LoopbackPair() as pair, running(context, pair, request) as (session, _):
        raw = RawMeter(pair.meter)
        asked = await raw.next_request()  # after identify_timeout_s of no reply
        assert asked.address == WILDCARD
        await pair.meter.write(wildcard_reply)
        await raw.send(ReadAddressReply(Address.parse(ADDRESS)))
        await until(lambda: context.registry.get(METER) is session)
        assert session.frames_dropped == 2


async def test_a_peer_that_never_answers_is_given_up() -> None:
    events = Events()
    context = make_context(events)
    async with LoopbackPair() as pair, running(context, pair) as (_, task):
        await asyncio.wait_for(task, 2)
        assert pair.meter.buffered == 2 * len(encode_message(WILDCARD, ReadAddressRequest()))
        assert pair.gateway.closed
    assert events.events == []
    assert len(context.registry) == 0


async def test_a_peer_that_hangs_up_before_identifying_ends_quietly() -> None:
    events = Events()
    async with LoopbackPair() as pair, running(make_context(events), pair) as (_, task):
        await RawMeter(pair.meter).next_request()  # asked who it is, and hangs up
        pair.meter.close()
        await asyncio.wait_for(task, 1)
    assert events.events == []


# -- reading ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "phases"), [("dlt645-three-phase", 3), ("dlt645-single-phase", 1)]
)
async def test_every_profile_quantity_reads_what_the_meter_sent(model: str, phases: int) -> None:
    options = {METER: MeterOptions(model=model)}
    meter = Dlt645Meter(ADDRESS, phases=phases, seed=11)
    async with with_meter(meter, make_context(Events(), options=options)) as session:
        wanted = [q for group in session.poll_groups for q in group.quantities]
        readings = await session.read([*wanted, "frequency_not_in_profile"], ReadingSource.POLL)
    assert [r.quantity for r in readings] == wanted
    for reading in readings:
        sent = meter.last_sent(reading.address)
        assert reading.value == sent.value
        assert reading.meter == METER
        assert reading.source is ReadingSource.POLL
        assert reading.unit == PROFILE_UNITS[reading.quantity]


_ENERGY = ("combined_total", "import_total", "export_total", "import_t1", "import_t2")
PROFILE_UNITS = {
    **{f"energy_active_{k}": "kWh" for k in (*_ENERGY, "import_t3", "import_t4")},
    **{f"voltage_l{i}": "V" for i in (1, 2, 3)},
    **{f"current_l{i}": "A" for i in (1, 2, 3)},
    **{f"power_active_{p}": "W" for p in ("total", "l1", "l2", "l3")},
    "power_reactive_total": "var",
    "power_apparent_total": "VA",
    "power_factor_total": "1",
    "frequency": "Hz",
}


async def test_follow_up_frames_are_joined() -> None:
    meter = Dlt645Meter(ADDRESS, follow_up_chunk=1)
    async with with_meter(meter, make_context(Events())) as session:
        [reading] = await session.read(["energy_active_import_total"], ReadingSource.POLL)
    assert reading.value == meter.last_sent("00010000").value
    seqs = [r.seq for r in meter.requests if isinstance(r, ReadFollowUpRequest)]
    assert seqs == [1, 2, 3]


async def test_endless_follow_ups_are_a_protocol_violation() -> None:
    context = make_context(Events())
    async with LoopbackPair() as pair, running(context, pair, ANNOUNCE) as (session, _):
        await until(lambda: context.registry.get(METER) is session)
        raw = RawMeter(pair.meter)

        async def answer_forever() -> None:
            await raw.next_request()
            await raw.send(ReadReply(VOLTAGE, b"\x01", follow_up=True))
            while True:
                seq = (await raw.next_request()).data[4]
                await raw.send(ReadFollowUpReply(VOLTAGE, b"\x01", seq, follow_up=True))

        answering = asyncio.create_task(answer_forever())
        with pytest.raises(ProtocolViolation, match="64 follow-up frames"):
            await session.read(["voltage_l1"], ReadingSource.POLL)
        answering.cancel()


async def test_undecodable_or_unexpected_replies_are_protocol_violations() -> None:
    context = make_context(Events())
    async with LoopbackPair() as pair, running(context, pair, ANNOUNCE) as (session, _):
        await until(lambda: context.registry.get(METER) is session)
        raw = RawMeter(pair.meter)
        reading = asyncio.create_task(session.read(["voltage_l1"], ReadingSource.POLL))
        await raw.next_request()
        await raw.send(ReadReply(VOLTAGE, b"\xff\xff"))  # not BCD
        with pytest.raises(ProtocolViolation, match="02010100"):
            await reading
        address = asyncio.create_task(session.read_address())
        await raw.next_request()
        bad = Frame(Address.parse(ADDRESS), ControlCode.reply(Function.READ_ADDRESS), b"\x01")
        await pair.meter.write(encode_frame(bad))
        with pytest.raises(ProtocolViolation, match="unreadable"):
            await address


async def test_missing_register_is_left_out() -> None:
    meter = Dlt645Meter(ADDRESS, errors={"02800002": ErrorFlags.NO_REQUESTED_DATA})
    async with with_meter(meter, make_context(Events())) as session:
        readings = await session.read(["frequency", "voltage_l1"], ReadingSource.POLL)
    assert [r.quantity for r in readings] == ["voltage_l1"]


async def test_abnormal_reply_is_meter_rejected_with_flags() -> None:
    flags = ErrorFlags.OTHER | ErrorFlags.PASSWORD_OR_UNAUTHORIZED
    meter = Dlt645Meter(ADDRESS, errors={"02010100": flags})
    async with with_meter(meter, make_context(Events())) as session:
        with pytest.raises(MeterRejected) as caught:
            await session.read(["voltage_l1"], ReadingSource.POLL)
    assert caught.value.code == 5
    assert caught.value.detail == {"flags": ["other", "password_or_unauthorized"]}


async def test_silence_after_retries_is_meter_timeout() -> None:
    context = make_context(Events())
    async with LoopbackPair() as pair, running(context, pair, ANNOUNCE) as (session, _):
        await until(lambda: context.registry.get(METER) is session)
        started = time.monotonic()
        with pytest.raises(MeterTimeout, match="2 attempts"):
            await session.read(["voltage_l1"], ReadingSource.POLL)
        assert 0.2 <= time.monotonic() - started < 1
        raw = RawMeter(pair.meter)
        assert [(await raw.next_request()).data for _ in range(2)] == [VOLTAGE.wire] * 2


async def test_replies_from_another_address_or_for_another_register_are_ignored() -> None:
    context = make_context(Events())
    async with LoopbackPair() as pair, running(context, pair, ANNOUNCE) as (session, _):
        await until(lambda: context.registry.get(METER) is session)
        raw = RawMeter(pair.meter)
        reading = asyncio.create_task(session.read(["voltage_l1"], ReadingSource.POLL))
        await raw.next_request()
        await raw.send(ReadReply(VOLTAGE, b"\x00\x22"), address="000000009999")
        await raw.send(ReadReply(DataId.parse("02010200"), b"\x00\x23"))  # a stale reply
        await raw.send(ReadAddressReply(Address.parse(ADDRESS)))  # another function
        await raw.send(ReadReply(VOLTAGE, b"\x05\x22"))
        [voltage] = await reading
        assert str(voltage.value) == "220.5"
        assert session.frames_dropped == 3
        # A wrong-address reply alone never satisfies the request.
        late = asyncio.create_task(session.read(["voltage_l1"], ReadingSource.POLL))
        await raw.next_request()
        await raw.send(ReadReply(VOLTAGE, b"\x00\x22"), address="000000009999")
        with pytest.raises(MeterTimeout):
            await late


async def test_garbage_mid_stream_is_counted_reported_once_and_survived() -> None:
    events = Events()
    faults = Faults(garbage_probability=1.0, garbage_bytes=100, seed=5)
    meter = Dlt645Meter(ADDRESS, faults=faults)
    async with with_meter(meter, make_context(events)) as session:
        for _ in range(4):
            assert len(await session.read(["voltage_l1"], ReadingSource.POLL)) == 1
        assert session.garbage_bytes == 500
    [report] = [e for e in events.events if isinstance(e, MeterEvent) and e.kind is INVALID]
    assert report.kind is EventKind.INVALID_TRAFFIC
    assert report.meter == METER
    assert "300 bytes" in report.data["reason"]


async def test_corrupt_and_unsolicited_frames_are_dropped() -> None:
    events = Events()
    context = make_context(events)
    async with LoopbackPair() as pair, running(context, pair, ANNOUNCE) as (session, _):
        await until(lambda: context.registry.get(METER) is session)
        raw = RawMeter(pair.meter)
        corrupt = bytearray(ANNOUNCE)
        corrupt[-2] ^= 0xFF  # checksum
        await pair.meter.write(bytes(corrupt) + ANNOUNCE)  # rejected, then unsolicited
        reading = asyncio.create_task(session.read(["voltage_l1"], ReadingSource.POLL))
        await raw.next_request()
        await raw.send(ReadReply(VOLTAGE, b"\x05\x22"))
        assert len(await reading) == 1
        assert session.frames_dropped == 1
        assert session.garbage_bytes == len(ANNOUNCE)  # its 68 and the bytes after it
    assert not [
        e for e in events.events if isinstance(e, MeterEvent) and e.kind is INVALID
    ]  # under the limit


async def test_request_after_the_peer_hung_up_fails_at_once() -> None:
    context = make_context(Events())
    async with LoopbackPair() as pair, running(context, pair, ANNOUNCE) as (session, _):
        await until(lambda: context.registry.get(METER) is session)
        pair.meter.close()  # the read loop has not seen the EOF yet
        with pytest.raises(StreamClosed):
            await session.read(["voltage_l1"], ReadingSource.POLL)


async def test_split_and_slow_replies_are_reassembled() -> None:
    meter = Dlt645Meter(ADDRESS, faults=Faults(split_chunks=5, delay_s=0.01), preamble_len=4)
    async with with_meter(meter, make_context(Events())) as session:
        readings = await session.read(["voltage_l1", "current_l1"], ReadingSource.POLL)
    assert len(readings) == 2


# -- lifecycle --------------------------------------------------------------------------------


async def test_disconnect_mid_command_fails_the_call_promptly() -> None:
    events = Events()
    slow = SessionTimings(request_timeout_s=5, retries=2, identify_timeout_s=0.1)
    meter = Dlt645Meter(ADDRESS, faults=Faults(disconnect_after=1, disconnect_mid_reply=True))
    async with with_meter(meter, make_context(events, slow)) as session:
        started = time.monotonic()
        with pytest.raises(MeterOffline):
            await session.read(["voltage_l1"], ReadingSource.POLL)
        assert time.monotonic() - started < 1
        with pytest.raises(MeterOffline, match="closed"):
            await session.read(["voltage_l1"], ReadingSource.POLL)
        await until(lambda: events.status() == [True, False])


async def test_second_connection_of_the_same_meter_replaces_the_first() -> None:
    events = Events()
    context = make_context(events)
    async with (
        LoopbackPair() as old_pair,
        LoopbackPair() as new_pair,
        running(context, old_pair, ANNOUNCE) as (old, old_task),
    ):
        await until(lambda: context.registry.get(METER) is old)
        async with running(context, new_pair, ANNOUNCE) as (new, _):
            await until(lambda: context.registry.get(METER) is new)
            await asyncio.wait_for(old_task, 1)
            assert old_pair.gateway.closed
            assert events.status() == [True, True]  # the old one's end is not "offline"
            with pytest.raises(MeterOffline, match="replaced"):
                await old.read(["voltage_l1"], ReadingSource.POLL)
    assert events.status() == [True, True, False]


async def test_close_fails_the_pending_call_and_is_idempotent() -> None:
    events = Events()
    meter = Dlt645Meter(ADDRESS, faults=Faults(delay_s=0.5))
    slow = SessionTimings(request_timeout_s=5, retries=0, identify_timeout_s=0.1)
    async with with_meter(meter, make_context(events, slow)) as session:
        reading = asyncio.create_task(session.read(["voltage_l1"], ReadingSource.POLL))
        await asyncio.sleep(0.05)
        session.close("operator said so")
        session.close("again")
        with pytest.raises(StreamClosed, match="operator said so"):
            await reading
    assert events.status() == [True, False]


async def test_traffic_is_captured_including_identification() -> None:
    capture = Capture()
    meter = Dlt645Meter(ADDRESS)
    async with with_meter(meter, make_context(Events(), capture=capture)) as session:
        await session.read(["voltage_l1"], ReadingSource.POLL)
    directions = [direction for _, direction, _ in capture.records]
    assert directions == ["tx", "rx", "tx", "rx"]  # read-address, its reply, read, reply
    assert {m for m, _, _ in capture.records} == {METER}


async def test_capture_keeps_a_bounded_backlog_and_respects_disabled_meters() -> None:
    capture = Capture()
    noise = b"\x11" * 3000
    context = make_context(Events(), capture=capture)
    async with LoopbackPair() as pair, running(context, pair, noise) as (session, _):
        raw = RawMeter(pair.meter)
        await raw.next_request()
        await raw.send(ReadAddressReply(Address.parse(ADDRESS)))
        await until(lambda: context.registry.get(METER) is session)
    assert [d for _, _, d in capture.records] == [noise]  # then the backlog was full
    capture.is_enabled = lambda meter: False  # type: ignore[method-assign]
    capture.records.clear()
    async with LoopbackPair() as pair, running(context, pair, ANNOUNCE) as (session, _):
        await until(lambda: context.registry.get(METER) is session)
        await pair.meter.write(ANNOUNCE)
    assert capture.records == []


async def test_session_is_a_slotted_live_session() -> None:
    async with LoopbackPair() as pair:
        session = Dlt645Session(pair.gateway, make_context(Events()), b"")
        live: LiveSession = session
        assert live.connection == pair.gateway.info
        assert not hasattr(session, "__dict__")
        with pytest.raises(MeterOffline):
            _ = session.meter
        with pytest.raises(MeterOffline):
            _ = session.model
