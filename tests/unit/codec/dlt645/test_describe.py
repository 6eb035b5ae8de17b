"""describe_frame / describe_stream beyond the vectors: optional keys and error offsets."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest

from ivy_gateway.codec.dlt645 import (
    Address,
    ControlCode,
    DataId,
    Demand,
    Frame,
    ReadReply,
    ReadRequest,
    describe_frame,
    describe_stream,
    encode_frame,
    encode_message,
    lookup,
)
from ivy_gateway.codec.errors import DecodeError, TruncatedError

METER = Address.parse("000000001234")
VENDOR_TRIP = bytes.fromhex("68341200000000681C14343E33379EC347EACCCB64D5B366C79E3A2866B68016")


def _reply(di: str, value: bytes) -> bytes:
    return encode_message(METER, ReadReply(DataId.parse(di), value))


def test_description_is_json_serialisable() -> None:
    described = describe_frame(_reply("01010000", bytes.fromhex("5634123014150324")))
    assert json.loads(json.dumps(described)) == described
    assert described["protocol"] == "dlt645"


def test_load_profile_request_shows_records_and_start() -> None:
    request = ReadRequest(DataId.parse("06000001"), 3, datetime(2024, 3, 15, 14, 30))
    described = describe_frame(encode_message(METER, request))
    assert (described["records"], described["start"]) == (3, "2024-03-15T14:30")


def test_demand_without_time_has_null_time() -> None:
    entry = lookup(DataId.parse("01010000"))
    assert entry is not None
    raw = entry.encode(Demand(Decimal("1.5"), None))
    assert raw == bytes.fromhex("005001") + bytes(5)
    described = describe_frame(_reply("01010000", raw))
    assert described["demand_time"] is None
    assert described["value"] == 1.5


def test_datetime_and_text_values() -> None:
    described = describe_frame(_reply("0400010C", bytes.fromhex("30451301200524")))
    assert described["value"] == "2024-05-20T13:45:30"
    assert "weekday" not in described
    described = describe_frame(_reply("04000403", b"\x00" * 28 + b"1TSA"))
    assert (described["value"], described["format"]) == ("AST1", "ASCII")


def test_other_status_words_have_no_relay_keys() -> None:
    described = describe_frame(_reply("04000501", bytes.fromhex("1000")))
    assert described["value"] == 16
    assert "relay_open" not in described


def test_vendor_frame_without_key_shows_only_ciphertext() -> None:
    described = describe_frame(VENDOR_TRIP)
    assert described["vendor_variant"] == "reference-js-aes-ecb"
    assert "plaintext" not in described
    assert "command" not in described


def test_unknown_function_gets_the_common_fields_only() -> None:
    wire = encode_frame(Frame(METER, ControlCode.from_byte(0x01), b"\x10\x90"))  # 1997 read
    described = describe_frame(wire)
    assert described["function"] == "01"
    assert described["data_plain"] == "1090"
    assert "di" not in described


def test_invalid_value_raises_with_offset_in_the_whole_input() -> None:
    wire = b"\xfe\xfe" + _reply("02010100", bytes.fromhex("0A22"))
    with pytest.raises(DecodeError, match="not BCD") as info:
        describe_frame(wire)
    assert info.value.offset == 2 + 10 + 4


def test_value_size_errors_point_at_the_value() -> None:
    wire = _reply("00010000", b"\x00\x00")  # value too short for XXXXXX.XX
    with pytest.raises(DecodeError) as info:
        describe_frame(wire)
    assert info.value.offset == 14


def test_invalid_frames_raise_with_offset() -> None:
    with pytest.raises(TruncatedError):
        describe_frame(bytes.fromhex("68341200"))
    with pytest.raises(DecodeError) as info:
        describe_frame(bytes.fromhex("6834120000000068110433333433F916"))
    assert info.value.offset == 14


def test_describe_stream_of_a_long_input_crosses_chunks() -> None:
    frame = _reply("02010100", bytes.fromhex("0522"))
    described = describe_stream(b"\x00" * 5000 + frame * 300 + frame[:5])
    assert len(described["frames"]) == 300  # type: ignore[arg-type]
    assert described["rejected"] == []
    assert described["leftover"] == frame[:5].hex().upper()
