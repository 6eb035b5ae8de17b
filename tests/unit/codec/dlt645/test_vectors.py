"""Every vector of tests/vectors/dlt645.json: whole, split at every byte, re-encoded, described."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ivy_gateway.codec.dlt645 import (
    NEED_DATA,
    Frame,
    FrameDecoder,
    RejectedFrame,
    decode_frame,
    decode_message,
    describe_frame,
    describe_stream,
    encode_frame,
    encode_message,
)

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[3] / "vectors" / "dlt645.json").read_text()
)["vectors"]
FRAMES = [v for v in VECTORS if "chunks" not in v]
STREAMS = [v for v in VECTORS if "chunks" in v]


def _key(vector: dict[str, Any]) -> bytes | None:
    params = vector.get("params", {})
    return bytes.fromhex(params["aes_key"]) if "aes_key" in params else None


def _drain(decoder: FrameDecoder) -> list[Frame | RejectedFrame]:
    events: list[Frame | RejectedFrame] = []
    while (event := decoder.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def _stream(chunks: list[bytes]) -> tuple[list[str], list[str], str]:
    decoder = FrameDecoder()
    events: list[Frame | RejectedFrame] = []
    for chunk in chunks:
        decoder.feed(chunk)
        events += _drain(decoder)
    frames = [
        encode_frame(Frame(e.address, e.control, e.data)).hex().upper()
        for e in events
        if isinstance(e, Frame)
    ]
    rejected = [e.raw.hex().upper() for e in events if isinstance(e, RejectedFrame)]
    return frames, rejected, decoder.pending.hex().upper()


def test_vector_file_is_complete() -> None:
    assert len(VECTORS) == 63
    assert len(STREAMS) == 4


@pytest.mark.parametrize("vector", FRAMES, ids=[v["name"] for v in FRAMES])
def test_frame_vector_decodes_and_reencodes_byte_exact(vector: dict[str, Any]) -> None:
    wire = bytes.fromhex(vector["hex"])
    frame = decode_frame(wire)
    assert frame.preamble_len == vector["decoded"]["preamble_len"]
    assert frame.data.hex().upper() == vector["decoded"]["data_plain"]
    assert encode_frame(frame) == wire
    message = decode_message(frame)
    assert encode_message(frame.address, message, preamble_len=frame.preamble_len) == wire


@pytest.mark.parametrize("vector", FRAMES, ids=[v["name"] for v in FRAMES])
def test_frame_vector_describes_as_decoded(vector: dict[str, Any]) -> None:
    described = describe_frame(bytes.fromhex(vector["hex"]), vendor_key=_key(vector))
    assert described.pop("protocol") == "dlt645"
    assert described == vector["decoded"]


@pytest.mark.parametrize("vector", FRAMES, ids=[v["name"] for v in FRAMES])
def test_frame_vector_streams_identically_at_every_split(vector: dict[str, Any]) -> None:
    wire = bytes.fromhex(vector["hex"])
    expected = decode_frame(wire)
    for cut in range(len(wire) + 1):
        decoder = FrameDecoder()
        events: list[Frame | RejectedFrame] = []
        for chunk in (wire[:cut], wire[cut:]):
            decoder.feed(chunk)
            events += _drain(decoder)
        assert events == [expected], cut
        assert decoder.pending == b""
        assert decoder.bytes_skipped == 0


@pytest.mark.parametrize("vector", FRAMES, ids=[v["name"] for v in FRAMES])
def test_frame_vector_streams_byte_by_byte(vector: dict[str, Any]) -> None:
    wire = bytes.fromhex(vector["hex"])
    frames, rejected, leftover = _stream([wire[i : i + 1] for i in range(len(wire))])
    assert frames == [wire.lstrip(b"\xfe").hex().upper()]
    assert (rejected, leftover) == ([], "")


@pytest.mark.parametrize("vector", STREAMS, ids=[v["name"] for v in STREAMS])
def test_stream_vector_in_its_chunks(vector: dict[str, Any]) -> None:
    decoded = vector["decoded"]
    chunks = [bytes.fromhex(c) for c in vector["chunks"]]
    expected = (decoded["frames"], decoded.get("rejected", []), decoded["leftover"])
    assert _stream(chunks) == expected


@pytest.mark.parametrize("vector", STREAMS, ids=[v["name"] for v in STREAMS])
def test_stream_vector_at_every_split(vector: dict[str, Any]) -> None:
    wire = bytes.fromhex(vector["hex"])
    decoded = vector["decoded"]
    expected = (decoded["frames"], decoded.get("rejected", []), decoded["leftover"])
    for cut in range(len(wire) + 1):
        assert _stream([wire[:cut], wire[cut:]]) == expected, cut
    assert _stream([wire[i : i + 1] for i in range(len(wire))]) == expected


@pytest.mark.parametrize("vector", STREAMS, ids=[v["name"] for v in STREAMS])
def test_stream_vector_describes_as_decoded(vector: dict[str, Any]) -> None:
    described = describe_stream(bytes.fromhex(vector["hex"]))
    assert described.pop("protocol") == "dlt645"
    assert described == {"rejected": [], **vector["decoded"]}
