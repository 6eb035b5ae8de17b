"""Management functions (reference §5.5-§5.11): vectors' layouts and every rejection."""

from __future__ import annotations

from datetime import datetime

import pytest

from ivy_gateway.codec.dlt645 import (
    Address,
    ChangeBaudRequest,
    ChangePasswordReply,
    ControlCode,
    DataId,
    Frame,
    FreezeRequest,
    OperatorCode,
    Password,
    decode_frame,
    decode_message,
    encode_message,
)
from ivy_gateway.codec.dlt645.management import (
    ALL_EVENTS,
    BroadcastTimeRequest,
    ClearEventsRequest,
)
from ivy_gateway.codec.errors import DecodeError, EncodeError

METER = Address.parse("000000001234")


def _decode(control: int, data: bytes) -> object:
    return decode_message(Frame(METER, ControlCode.from_byte(control), data))


def test_freeze_now_is_all_99() -> None:
    assert FreezeRequest().data() == bytes.fromhex("99999999")
    assert FreezeRequest(30, 0).data() == bytes.fromhex("30009999")  # daily at 00:30
    assert _decode(0x16, bytes.fromhex("30009999")) == FreezeRequest(30, 0)


@pytest.mark.parametrize(
    "request_",
    [FreezeRequest(60), FreezeRequest(0, 24), FreezeRequest(0, 0, 0), FreezeRequest(month=13)],
)
def test_freeze_rejects_out_of_range_fields(request_: FreezeRequest) -> None:
    with pytest.raises(EncodeError, match="freeze"):
        request_.data()


@pytest.mark.parametrize(("data", "offset"), [("60999999", 0), ("00009913", 3), ("0000A999", 2)])
def test_freeze_decode_rejects_out_of_range_fields(data: str, offset: int) -> None:
    with pytest.raises(DecodeError) as info:
        _decode(0x16, bytes.fromhex(data))
    assert info.value.offset == offset


def test_baud_word_has_exactly_one_known_bit() -> None:
    assert ChangeBaudRequest(9600).data() == b"\x20"
    with pytest.raises(EncodeError):
        ChangeBaudRequest(115200).data()
    for word in (b"\x00", b"\x01", b"\x22", b"\x80"):
        with pytest.raises(DecodeError, match="baud"):
            _decode(0x17, word)


def test_clear_events_defaults_to_all() -> None:
    request = ClearEventsRequest(Password(2, "123456"), OperatorCode("12345678"))
    assert request.event == ALL_EVENTS == DataId.parse("FFFFFFFF")


def test_change_password_reply_echoes_the_new_password() -> None:
    wire = encode_message(METER, ChangePasswordReply(Password.parse("02654321")))
    assert wire.hex().upper() == "68341200000000689804355476984916"


def test_broadcast_time_rejects_impossible_dates() -> None:
    with pytest.raises(DecodeError):
        _decode(0x08, bytes.fromhex("193404320126"))  # 32 January
    request = BroadcastTimeRequest(datetime(2026, 1, 30, 4, 34, 19))
    assert decode_message(decode_frame(encode_message(METER, request))) == request


@pytest.mark.parametrize(
    ("control", "size"),
    [(0x15, 5), (0x08, 5), (0x16, 3), (0x17, 2), (0x97, 0), (0x18, 11), (0x98, 3),
     (0x19, 9), (0x1A, 7), (0x1B, 8), (0x95, 1), (0x96, 1), (0x99, 1), (0x9C, 1)],
)  # fmt: skip
def test_management_layouts_reject_wrong_lengths(control: int, size: int) -> None:
    with pytest.raises(DecodeError, match="fits no layout"):
        _decode(control, bytes(size))
