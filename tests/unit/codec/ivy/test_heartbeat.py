"""The EM114070 heartbeat (dlms.md §A2) on the vectors, both ways, and its validators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivy_gateway.codec.errors import DecodeError, EncodeError, TruncatedError
from ivy_gateway.codec.ivy import (
    HEARTBEAT_SIZE,
    PLACEHOLDER_ADDRESS,
    Heartbeat,
    decode_heartbeat,
    encode_heartbeat,
    is_heartbeat,
)

VECTORS = Path(__file__).resolve().parents[3] / "vectors"
HEARTBEATS = [
    v
    for name in ("ivy.json", "ivy_quirks.json")
    for v in json.loads((VECTORS / name).read_text())["vectors"]
    if v["decoded"].get("type") == "heartbeat"
]
CONFIGURED = bytes.fromhex("00010001000100120A020C3331313530313131343037300D5A3C")


@pytest.mark.parametrize("vector", HEARTBEATS, ids=[v["name"] for v in HEARTBEATS])
def test_heartbeat_vector_decodes_and_reencodes(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    expected = vector["decoded"]
    assert is_heartbeat(data)
    heartbeat = decode_heartbeat(data)
    assert heartbeat == Heartbeat(
        version=expected["version"],
        source=expected["source"],
        destination=expected["destination"],
        length=expected["length"],
        meter_address=expected["meter_address"],
        separator=int(expected["separator"], 16),
        trailer=bytes.fromhex(expected["trailer"]),
    )
    assert heartbeat.encode() == data
    assert (
        encode_heartbeat(
            heartbeat.meter_address, separator=heartbeat.separator, trailer=heartbeat.trailer
        )
        == data
    )


@given(
    address=st.text("0123456789", min_size=12, max_size=12),
    separator=st.integers(0, 255),
    trailer=st.binary(min_size=2, max_size=2),
)
def test_heartbeat_round_trips(address: str, separator: int, trailer: bytes) -> None:
    heartbeat = Heartbeat(meter_address=address, separator=separator, trailer=trailer)
    raw = heartbeat.encode()
    assert len(raw) == HEARTBEAT_SIZE
    assert is_heartbeat(raw)
    assert decode_heartbeat(raw) == heartbeat


def test_encode_defaults_are_the_documented_separator_and_a_zero_trailer() -> None:
    assert encode_heartbeat("311501114070")[-3:] == b"\x0d\x00\x00"


def test_placeholder_address_is_flagged() -> None:
    assert Heartbeat(meter_address=PLACEHOLDER_ADDRESS).is_placeholder
    assert not decode_heartbeat(CONFIGURED).is_placeholder


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"version": 2}, "header"),
        ({"source": 0x10}, "header"),
        ({"destination": 0x10}, "header"),
        ({"length": 19}, "header"),
        ({"meter_address": "31150111407"}, "12 ASCII digits"),
        ({"meter_address": "3115011140700"}, "12 ASCII digits"),
        ({"meter_address": "31150111407X"}, "12 ASCII digits"),
        ({"meter_address": "31150111407\u0661"}, "12 ASCII digits"),  # Arabic-Indic one
        ({"separator": 256}, "separator"),
        ({"separator": -1}, "separator"),
        ({"trailer": b"\x00"}, "trailer"),
        ({"trailer": b"\x00\x00\x00"}, "trailer"),
    ],
)
def test_heartbeat_rejects_invalid_fields(fields: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"meter_address": "311501114070", **fields}
    with pytest.raises(EncodeError, match=message):
        Heartbeat(**arguments)


def test_separator_and_trailer_are_not_validated_on_decode() -> None:
    for tail in (b"\x00\xff\xff", b"\x0a\x12\x34", b"\xff\x00\x00"):
        assert is_heartbeat(CONFIGURED[:23] + tail)
        assert decode_heartbeat(CONFIGURED[:23] + tail).trailer == tail[1:]


@pytest.mark.parametrize("offset", range(11))
def test_decode_rejects_any_change_in_the_fixed_prefix(offset: int) -> None:
    data = bytearray(CONFIGURED)
    data[offset] ^= 0x40
    assert not is_heartbeat(bytes(data))
    with pytest.raises(DecodeError, match="prefix") as info:
        decode_heartbeat(bytes(data))
    assert info.value.offset == offset


@pytest.mark.parametrize("offset", range(11, 23))
def test_decode_rejects_a_non_digit_in_the_address(offset: int) -> None:
    for bad in (0x2F, 0x3A, 0xB0):
        data = bytearray(CONFIGURED)
        data[offset] = bad
        assert not is_heartbeat(bytes(data))
        with pytest.raises(DecodeError, match="digits") as info:
            decode_heartbeat(bytes(data))
        assert info.value.offset == offset


def test_decode_reports_a_prefix_as_truncated() -> None:
    for size in (0, 1, 11, 20, 25):
        assert not is_heartbeat(CONFIGURED[:size])
        with pytest.raises(TruncatedError):
            decode_heartbeat(CONFIGURED[:size])


def test_decode_rejects_bytes_after_the_heartbeat() -> None:
    assert not is_heartbeat(CONFIGURED + b"\x00")
    with pytest.raises(DecodeError, match="after") as info:
        decode_heartbeat(CONFIGURED + b"\x00")
    assert not isinstance(info.value, TruncatedError)
    assert info.value.offset == HEARTBEAT_SIZE
