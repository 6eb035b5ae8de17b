"""Fuzz: random and mutated-vector input never raises anything but DecodeError.

Deterministic (fixed seed), ~120k inputs. Mutated frames get their L and checksum repaired
half of the time so that the message and value layers are reached, not just the framing.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from ivy_gateway.codec.dlt645 import (
    NEED_DATA,
    FrameDecoder,
    RejectedFrame,
    decode_frame,
    decode_message,
    describe_frame,
    describe_stream,
)
from ivy_gateway.codec.errors import DecodeError

VECTORS = json.loads((Path(__file__).parents[3] / "vectors" / "dlt645.json").read_text())
SEEDS = [bytes.fromhex(v["hex"]).lstrip(b"\xfe") for v in VECTORS["vectors"] if "chunks" not in v]
KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")


def _repair(frame: bytearray) -> bytes:
    """Make the framing valid again so the deeper layers see the mutated data."""
    if len(frame) < 12:
        return bytes(frame)
    frame[0] = frame[7] = 0x68
    frame[9] = len(frame) - 12
    frame[-2] = sum(frame[:-2]) & 0xFF
    frame[-1] = 0x16
    return bytes(frame)


def _mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        pos = rng.randrange(len(data) + 1)
        if choice < 0.5 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif choice < 0.75:
            data[pos:pos] = bytes([rng.randrange(256)])
        elif data:
            del data[min(pos, len(data) - 1)]
    return _repair(data) if rng.random() < 0.5 else bytes(data)


def _inputs(count: int) -> list[bytes]:
    rng = random.Random(645)
    out: list[bytes] = []
    for i in range(count):
        if i % 3 == 0:
            out.append(rng.randbytes(rng.randint(0, 40)))
        elif i % 3 == 1:
            address = bytes(int(f"{rng.randrange(100):02d}", 16) for _ in range(6))
            header = b"\x68" + address + b"\x68" + rng.randbytes(1)
            out.append(
                _repair(bytearray(header + bytes(1) + rng.randbytes(rng.randint(0, 24)) + bytes(2)))
            )
        else:
            out.append(_mutate(rng, rng.choice(SEEDS)))
    return out


def test_one_shot_decoders_raise_only_decode_error() -> None:
    inputs = _inputs(100_000)
    described = 0
    for data in inputs:
        try:
            frame = decode_frame(data)
            decode_message(frame)
        except DecodeError:
            pass
        try:
            describe_frame(data, vendor_key=KEY)
            described += 1
        except DecodeError:
            pass
    assert described > 15_000  # the repaired inputs really reach the message layer


def test_stream_decoder_survives_random_streams() -> None:
    rng = random.Random(2007)
    decoder = FrameDecoder()
    blob = b"".join(_inputs(20_000))
    pos = 0
    frames = 0
    while pos < len(blob):
        size = rng.randint(1, 4000)
        decoder.feed(blob[pos : pos + size])
        pos += size
        while (event := decoder.next_event()) is not NEED_DATA:
            frames += 1
            assert event.raw if isinstance(event, RejectedFrame) else event.address
        assert len(decoder.pending) < 267
    assert frames == decoder.frames_decoded + decoder.frames_rejected
    assert decoder.frames_decoded > 1000
    assert decoder.bytes_skipped > 0
    assert describe_stream(blob[:50_000])["frames"]
