"""``describe_packet``/``describe_stream`` equal the vectors' ``decoded`` objects exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ivy_gateway.codec.errors import DecodeError, TruncatedError
from ivy_gateway.codec.ivy.describe import PROTOCOL, describe_packet, describe_stream

VECTORS = Path(__file__).resolve().parents[3] / "vectors"
ALL = [
    v
    for name in ("ivy.json", "ivy_quirks.json")
    for v in json.loads((VECTORS / name).read_text())["vectors"]
]
PACKETS = [v for v in ALL if "type" in v["decoded"]]
STREAMS = [v for v in ALL if "packets" in v["decoded"]]


@pytest.mark.parametrize("vector", PACKETS, ids=[v["name"] for v in PACKETS])
def test_describe_packet_matches_vector(vector: dict[str, Any]) -> None:
    result = describe_packet(bytes.fromhex(vector["hex"]))
    assert result.pop("protocol") == PROTOCOL == "ivy_dlms"
    assert result == vector["decoded"]


@pytest.mark.parametrize("vector", STREAMS, ids=[v["name"] for v in STREAMS])
def test_describe_stream_matches_vector(vector: dict[str, Any]) -> None:
    result = describe_stream(bytes.fromhex(vector["hex"]))
    assert result.pop("protocol") == "ivy_dlms"
    assert result == vector["decoded"]


def test_describe_packet_of_a_bare_apdu() -> None:
    assert describe_packet(bytes.fromhex("D80102")) == {
        "protocol": "ivy_dlms",
        "type": "raw_dlms",
        "apdu": "D80102",
    }


def test_describe_packet_of_any_wports() -> None:
    result = describe_packet(bytes.fromhex("0001001000010003D80102"))
    assert (result["source"], result["destination"], result["apdu"]) == (16, 1, "D80102")


def test_describe_packet_rejects_trailing_bytes() -> None:
    with pytest.raises(DecodeError, match="after the APDU") as info:
        describe_packet(bytes.fromhex("D8010200"))
    assert info.value.offset == 3
    with pytest.raises(DecodeError, match="after"):
        describe_packet(bytes.fromhex("0001000100010003D8010200"))


def test_describe_packet_reports_truncation_and_garbage() -> None:
    for partial in ("", "00010001", "C401C100", "D801"):
        with pytest.raises(TruncatedError):
            describe_packet(bytes.fromhex(partial))
    with pytest.raises(DecodeError) as info:
        describe_packet(bytes.fromhex("FF0102"))
    assert not isinstance(info.value, TruncatedError)


def test_describe_stream_reports_leftover_and_omits_empty_skipped() -> None:
    result = describe_stream(bytes.fromhex("D80102000100010001"))
    assert result == {
        "protocol": "ivy_dlms",
        "packets": [{"type": "raw_dlms", "apdu": "D80102"}],
        "leftover": "000100010001",
    }


def test_describe_stream_collects_every_skipped_byte() -> None:
    result = describe_stream(bytes.fromhex("FFD80102EE"))
    assert result["skipped"] == "FFEE"
    assert result["packets"] == [{"type": "raw_dlms", "apdu": "D80102"}]


def test_describe_stream_with_other_wports_and_large_input() -> None:
    packet = bytes.fromhex("0001001000010003D80102")
    assert describe_stream(packet)["packets"] == [{"type": "raw_dlms", "apdu": "D80102"}]
    result = describe_stream(packet * 10_000, accepted_wports=[(0x10, 1)])
    assert len(result["packets"]) == 10_000  # type: ignore[arg-type]
    assert "skipped" not in result
