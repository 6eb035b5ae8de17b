"""Every function's messages (reference §5): round trips through frames, layout rejections."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivy_gateway.codec.dlt645 import (
    BROADCAST,
    WILDCARD,
    AckReply,
    Address,
    BroadcastTimeRequest,
    ChangeBaudReply,
    ChangeBaudRequest,
    ChangePasswordReply,
    ChangePasswordRequest,
    ClearDemandRequest,
    ClearEventsRequest,
    ClearMeterRequest,
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
    WriteAddressRequest,
    WriteRequest,
    decode_frame,
    decode_message,
    encode_message,
)
from ivy_gateway.codec.dlt645.services import has_layout
from ivy_gateway.codec.errors import DecodeError, EncodeError

METER = Address.parse("000000001234")
DI = DataId.parse("00010000")


def _frame(control: int, data: bytes) -> Frame:
    return Frame(METER, ControlCode.from_byte(control), data)


def test_read_request_for_a_di_matches_the_worked_example() -> None:
    wire = encode_message(METER, ReadRequest(DI), preamble_len=4)
    assert wire.hex().upper() == "FEFEFEFE6834120000000068110433333433F816"


def test_read_reply_decodes_to_di_and_value_bytes() -> None:
    frame = decode_frame(bytes.fromhex("683412000000006891083333343389674533E416"))
    assert decode_message(frame) == ReadReply(DI, bytes.fromhex("56341200"))


def test_load_profile_read_requests() -> None:
    start = datetime(2024, 3, 15, 14, 30)
    assert ReadRequest(DI, 5).data() == DI.wire + b"\x05"
    assert ReadRequest(DI, 12, start).data() == DI.wire + bytes.fromhex("123014150324")
    with pytest.raises(EncodeError, match="record count"):
        ReadRequest(DI, None, start).data()


def test_follow_up_reply_flags_map_to_b1_and_b2() -> None:
    assert ReadReply(DI, b"", follow_up=True).control().to_byte() == 0xB1
    assert ReadFollowUpReply(DI, b"", 1, follow_up=True).control().to_byte() == 0xB2


def test_error_reply_of_an_unsupported_di() -> None:
    frame = decode_frame(bytes.fromhex("6834120000000068D101351D16"))
    reply = decode_message(frame)
    assert reply == ErrorReply(Function.READ_DATA, ErrorFlags.NO_REQUESTED_DATA)


@pytest.mark.parametrize("seq", [-1, 256])
def test_seq_must_be_a_byte(seq: int) -> None:
    with pytest.raises(EncodeError):
        ReadFollowUpRequest(DI, seq).data()
    with pytest.raises(EncodeError):
        ReadFollowUpReply(DI, b"", seq).data()


@pytest.mark.parametrize(
    ("control", "data"),
    [
        (0x11, bytes(3)),
        (0x11, bytes(6)),
        (0x11, DI.wire + b"\x0a"),  # record count not BCD
        (0x11, DI.wire + bytes.fromhex("011230141503FF")[:6]),  # truncated start time
        (0x91, bytes(3)),
        (0x12, bytes(4)),
        (0x92, bytes(4)),
        (0x13, b"\x00"),
        (0x93, bytes(5)),
        (0x93, bytes.fromhex("3F1200000000")),
        (0x14, bytes(11)),
        (0x94, b"\x00"),
        (0xD1, b""),
        (0xD1, b"\x01\x02"),
        (0xC1, b"\x01"),  # abnormal reply to an unknown function code
        (0x03, b""),  # ESAM: no layout here
        (0x88, b""),  # broadcast time is never answered
    ],
)
def test_decode_message_rejects_data_that_fits_no_layout(control: int, data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(_frame(control, data))


def test_has_layout() -> None:
    assert has_layout(ControlCode.from_byte(0x11))
    assert has_layout(ControlCode.from_byte(0xDC))
    assert not has_layout(ControlCode.from_byte(0xC1))
    assert not has_layout(ControlCode.from_byte(0x1D))
    assert not has_layout(ControlCode.from_byte(0x88))


def test_frames_address_the_right_meters() -> None:
    assert decode_frame(encode_message(WILDCARD, ReadAddressRequest())).address == WILDCARD
    when = datetime(2026, 1, 30, 4, 34, 19)
    wire = encode_message(BROADCAST, BroadcastTimeRequest(when))
    assert wire.hex().upper() == "689999999999996808064C67376334594E16"


# --- every message type round-trips through a frame -------------------------------------

dis = st.integers(0, 0xFFFFFFFF).map(DataId)
passwords = st.builds(Password, st.integers(0, 255), st.text("0123456789", min_size=6, max_size=6))
operators = st.builds(OperatorCode, st.text("0123456789", min_size=8, max_size=8))
addresses = st.integers(0, 10**12 - 1).map(lambda n: Address.parse(f"{n:012d}"))
moments = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)
minutes = moments.map(lambda d: d.replace(second=0))
values = st.binary(max_size=40)
known = st.sampled_from([f for f in Function if f not in (0x03, 0x1D)])
bauds = st.sampled_from([600, 1200, 2400, 4800, 9600, 19200])

messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(ReadRequest, dis),
    st.builds(ReadRequest, dis, st.integers(0, 99)),
    st.builds(ReadRequest, dis, st.integers(0, 99), minutes),
    st.builds(ReadReply, dis, values, st.booleans()),
    st.builds(ReadFollowUpRequest, dis, st.integers(0, 255)),
    st.builds(ReadFollowUpReply, dis, values, st.integers(0, 255), st.booleans()),
    st.just(ReadAddressRequest()),
    st.builds(ReadAddressReply, addresses),
    st.builds(WriteRequest, dis, passwords, operators, values),
    st.builds(WriteAddressRequest, addresses),
    st.builds(BroadcastTimeRequest, moments),
    st.builds(
        FreezeRequest,
        st.none() | st.integers(0, 59),
        st.none() | st.integers(0, 23),
        st.none() | st.integers(1, 31),
        st.none() | st.integers(1, 12),
    ),
    st.builds(ChangeBaudRequest, bauds),
    st.builds(ChangeBaudReply, bauds),
    st.builds(ChangePasswordRequest, dis, passwords, passwords),
    st.builds(ChangePasswordReply, passwords),
    st.builds(ClearDemandRequest, passwords, operators),
    st.builds(ClearMeterRequest, passwords, operators),
    st.builds(ClearEventsRequest, passwords, operators, dis),
    st.builds(
        RelayControlRequest,
        passwords,
        operators,
        st.sampled_from(RelayCommand),
        moments,
        st.integers(0, 255),
    ),
    st.builds(VendorAesRelayRequest, st.binary(min_size=16, max_size=16)),
    st.builds(SimpleRelayRequest, st.sampled_from(RelayCommand)),
    st.builds(
        AckReply,
        st.sampled_from(
            [
                Function.WRITE_DATA,
                Function.WRITE_ADDRESS,
                Function.FREEZE,
                Function.CLEAR_DEMAND,
                Function.CLEAR_METER,
                Function.CLEAR_EVENTS,
                Function.RELAY_CONTROL,
            ]
        ),
    ),
    st.builds(ErrorReply, known, st.integers(0, 255).map(ErrorFlags)),
)


@given(messages, addresses, st.integers(0, 4))
def test_every_message_round_trips_through_a_frame(
    message: Message, address: Address, preamble_len: int
) -> None:
    wire = encode_message(address, message, preamble_len=preamble_len)
    frame = decode_frame(wire)
    assert (frame.address, frame.preamble_len) == (address, preamble_len)
    assert frame.control == message.control()
    assert decode_message(frame) == message
