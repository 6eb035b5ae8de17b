"""Fuzz the stream decoder: random and mutated-vector streams, fed in random chunks.

Deterministic (fixed seed), 100k inputs (~5 s). The decoder must never raise from
``next_event`` (bad bytes become ``Skipped``), must hold fewer than ``8 + max_payload``
bytes once drained, and must find the same packets whatever the segmentation. The
single-packet entry points may raise, but only ``DecodeError`` subclasses.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
from pathlib import Path

from ivy_gateway.codec.errors import DecodeError
from ivy_gateway.codec.ivy.describe import describe_packet
from ivy_gateway.codec.ivy.heartbeat import Heartbeat, decode_heartbeat
from ivy_gateway.codec.sniff import sniff
from ivy_gateway.codec.wrapper import (
    RAW_APDU_TAGS,
    RawApdu,
    WrappedPacket,
    WrapperDecoder,
    decode_wrapped,
    raw_apdu_length,
)

SEED = 0x1407_0645
RANDOM_INPUTS = 50_000
MUTATED_INPUTS = 50_000
RESPLIT_EVERY = 8  # the segmentation check decodes a second time: on every 8th input
VECTORS = Path(__file__).resolve().parents[2] / "vectors"
SEEDS = [
    bytes.fromhex(v["hex"])
    for name in ("ivy.json", "ivy_quirks.json", "dlms.json")
    for v in json.loads((VECTORS / name).read_text())["vectors"]
    if "hex" in v
]
# bytes that steer the decoder into its interesting states
INTERESTING = bytes([0x00, 0x01, 0x02, 0x0C, 0x12, 0x80, 0x81, 0x82, 0x84, 0xFF, *RAW_APDU_TAGS])


def _random_input(rng: random.Random) -> bytes:
    size = rng.randrange(0, 64)
    if rng.random() < 0.5:
        return rng.randbytes(size)
    return bytes(rng.choices(INTERESTING, k=size))


def _mutate(rng: random.Random) -> bytes:
    data = bytearray(rng.choice(SEEDS))
    if rng.random() < 0.3:
        data += rng.choice(SEEDS)
    for _ in range(rng.randrange(1, 4)):
        action = rng.randrange(5)
        pos = rng.randrange(len(data) + 1)
        if action == 0 and data:
            data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif action == 1:
            data[pos:pos] = bytes((rng.choice(INTERESTING),))
        elif action == 2:
            del data[pos : pos + rng.randrange(1, 4)]
        elif action == 3:
            data = data[:pos]
        else:
            data[pos:pos] = b"\x00\x01\x00\x01\x00\x01" + rng.randbytes(2)
    return bytes(data)


def _decode(
    data: bytes, cuts: list[int], max_payload: int
) -> tuple[list[WrappedPacket | Heartbeat | RawApdu], bytes, bytes]:
    decoder = WrapperDecoder(max_payload=max_payload, max_buffer=max_payload + 8 + 64)
    packets: list[WrappedPacket | Heartbeat | RawApdu] = []
    skipped = bytearray()
    for start, end in itertools.pairwise(cuts):
        while start < end:  # as a session reads: never more than the free space
            step = min(end - start, decoder.free_space)
            decoder.feed(data[start : start + step])
            start += step
            for event in decoder.events():
                if isinstance(event, WrappedPacket | Heartbeat | RawApdu):
                    packets.append(event)
                else:
                    skipped += event.data
            assert len(decoder) < 8 + max_payload
    total = sum(len(p.apdu if isinstance(p, RawApdu) else p.encode()) for p in packets)
    assert total + len(skipped) + len(decoder) == len(data)  # every byte accounted for once
    return packets, bytes(skipped), decoder.pending


def _single_packet_entry_points(data: bytes) -> None:
    for parse in (describe_packet, decode_wrapped, decode_heartbeat, raw_apdu_length):
        with contextlib.suppress(DecodeError):
            parse(data)
    assert sniff(data).is_final or len(data) < 256


def test_fuzz_stream_decoder() -> None:
    rng = random.Random(SEED)
    inputs = [_random_input(rng) for _ in range(RANDOM_INPUTS)]
    inputs += [_mutate(rng) for _ in range(MUTATED_INPUTS)]
    for index, data in enumerate(inputs):
        max_payload = rng.choice((16, 64, 4096))
        whole = _decode(data, [0, len(data)], max_payload)
        if index % RESPLIT_EVERY == 0 and len(data) > 1:
            inner = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, 3)))
            assert _decode(data, [0, *inner, len(data)], max_payload) == whole
        _single_packet_entry_points(data)
