"""Fuzz: decoders raise only DecodeError subclasses, whatever the bytes (deterministic)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from ivy_gateway.codec.dlms.apdu.xdlms import decode_service_apdu
from ivy_gateway.codec.dlms.axdr import decode_data, encode_data, skip_data
from ivy_gateway.codec.dlms.describe_data import describe_service_apdu
from ivy_gateway.codec.dlms.units import decode_scaler_unit
from ivy_gateway.codec.errors import DecodeError

SEEDS = [
    bytes.fromhex(v["hex"])
    for v in json.loads(
        (Path(__file__).parents[3] / "vectors" / "dlms.json").read_text(encoding="utf-8")
    )["vectors"]
    if v["hex"][:2] in {"C0", "C1", "C2", "C3", "C4", "C5", "C7", "0F", "0E", "D8"}
]
DATA_TAGS = [0, 1, 2, 3, 4, 5, 6, 9, 10, 12, 13, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
             26, 27, 255]  # fmt: skip


def _mutate(rng: random.Random, seed: bytes) -> bytes:
    buf = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.5 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif choice < 0.7 and buf:
            del buf[rng.randrange(len(buf)) :]
        elif choice < 0.85:
            buf.insert(rng.randrange(len(buf) + 1), rng.randrange(256))
        else:
            buf.insert(rng.randrange(len(buf) + 1), rng.choice(DATA_TAGS))
    return bytes(buf)


def _random_data(rng: random.Random) -> bytes:
    # random bytes led by a real tag reach far deeper than uniform noise
    return bytes([rng.choice(DATA_TAGS)]) + rng.randbytes(rng.randint(0, 24))


def _check(decode: Callable[[bytes], object], buf: bytes) -> None:
    try:
        decode(buf)
    except DecodeError:
        return


def _data_round_trip(buf: bytes) -> None:
    data, end = decode_data(buf)
    assert skip_data(buf) == end
    raw = encode_data(data)
    # canonical bytes are stable (NaN payloads make value equality useless here)
    assert encode_data(decode_data(raw)[0]) == raw


def test_fuzz_service_apdus_and_data() -> None:
    rng = random.Random(0x1D1A5)
    for _ in range(60_000):
        buf = _mutate(rng, rng.choice(SEEDS))
        _check(decode_service_apdu, buf)
        _check(describe_service_apdu, buf)
    for _ in range(60_000):
        buf = _random_data(rng)
        _check(_data_round_trip, buf)
        _check(decode_scaler_unit, buf)
    for _ in range(10_000):
        _check(decode_service_apdu, rng.randbytes(rng.randint(0, 40)))


def _outcome(fn: Callable[[bytes], object], buf: bytes) -> object:
    try:
        return fn(buf)
    except DecodeError as error:
        return type(error)


def test_skip_data_agrees_with_decode_data() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        buf = _random_data(rng)
        decoded = _outcome(lambda b: decode_data(b)[1], buf)
        skipped = _outcome(skip_data, buf)
        if decoded is DecodeError and buf[0] == 0x0C:
            continue  # invalid UTF-8: skipping does not validate string contents
        assert decoded == skipped
