"""Fuzz the ACSE, xDLMS-initiate, BER and ciphered-APDU decoders: whatever the bytes, they
return a message or raise a ``DecodeError`` (``TruncatedError``, ``SecurityError``), nothing
else. Deterministic seed; random bytes plus mutations of every vector of these kinds."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from ivy_gateway.codec.dlms.apdu.acse import decode_acse_apdu
from ivy_gateway.codec.dlms.apdu.initiate import decode_initiate_request, decode_initiate_response
from ivy_gateway.codec.dlms.ber import decode_tlv, decode_tlvs
from ivy_gateway.codec.dlms.describe_acse import describe_acse_apdu, describe_ciphered_apdu
from ivy_gateway.codec.dlms.security import (
    SecurityContext,
    SecurityKeys,
    decode_ciphered_apdu,
)
from ivy_gateway.codec.errors import DecodeError

VECTORS = json.loads(
    (Path(__file__).parents[3] / "vectors" / "dlms.json").read_text(encoding="utf-8")
)["vectors"]
SEEDS = [
    bytes.fromhex(v["hex"])
    for v in VECTORS
    if v["name"].split("_")[0] in {"aarq", "aare", "rlrq", "rlre", "ciphered"}
]
# The InitiateRequest/Response bodies inside the plain AARQ/AARE vectors (after BE xx 04 xx).
SEEDS += [s[s.index(b"\xbe") + 4 :] for s in SEEDS if s[0] in (0x60, 0x61) and b"\xbe\x10" in s]
EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
SERVER = bytes.fromhex("4D4D4D0000BC614E")
INTERESTING_FIRST = [0x60, 0x61, 0x62, 0x63, 0x01, 0x08, 0x21, 0x28, 0xC8, 0xCC, 0xD0, 0xDB, 0xDC]
RANDOM_INPUTS = 50_000
MUTATED_INPUTS = 60_000


def _random_input(rng: random.Random) -> bytes:
    size = rng.choice((0, 1, 2, 3, rng.randrange(4, 24), rng.randrange(24, 120)))
    data = bytearray(rng.randbytes(size))
    if data and rng.random() < 0.7:
        data[0] = rng.choice(INTERESTING_FIRST)
    if len(data) > 1 and rng.random() < 0.5:
        data[1] = min(len(data) - 2 + rng.randrange(-2, 3), 0xFF) & 0xFF  # plausible length
    return bytes(data)


def _mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(data)) if data else 0
        if op == 0 and data:
            data[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and data:
            data[pos] = rng.choice(
                (0x00, 0x01, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF, rng.randrange(256))
            )
        elif op == 2:
            data.insert(pos, rng.randrange(256))
        elif op == 3 and data:
            del data[pos]
        elif op == 4:
            del data[rng.randrange(len(data) + 1) :]
        else:
            start = rng.randrange(len(data) + 1)
            data[start:start] = data[start : start + rng.randrange(1, 8)]
    return bytes(data)


def _decoders() -> list[Callable[[bytes], object]]:
    context = SecurityContext(
        SecurityKeys(ek=EK, ak=AK, broadcast_key=EK),
        system_title=bytes(8),
        peer_system_title=SERVER,
    )
    context.set_dedicated_key(bytes.fromhex("00112233445566778899AABBCCDDEEFF"))
    return [
        decode_acse_apdu,
        decode_ciphered_apdu,
        decode_initiate_request,
        decode_initiate_response,
        decode_tlv,
        decode_tlvs,
        context.decipher,
        lambda data: describe_acse_apdu(data, ek=EK, ak=AK),
        lambda data: describe_ciphered_apdu(data, ek=EK, ak=AK, system_title=SERVER),
    ]


def _run(inputs: list[bytes]) -> int:
    accepted = 0
    decoders = _decoders()
    for data in inputs:
        for decode in decoders:
            try:
                decode(data)
            except DecodeError:
                continue
            accepted += 1
    return accepted


def test_random_bytes_raise_only_decode_errors() -> None:
    rng = random.Random(0x1DC0_5EC0)
    inputs = [_random_input(rng) for _ in range(RANDOM_INPUTS)]
    _run(inputs)


def test_mutated_vectors_raise_only_decode_errors() -> None:
    rng = random.Random(0xAA_2E)
    inputs = [_mutate(rng, rng.choice(SEEDS)) for _ in range(MUTATED_INPUTS)]
    accepted = _run(inputs)
    assert accepted > 0  # the mutations reach past the first checks


def test_every_prefix_and_every_single_byte_change_of_every_vector() -> None:
    inputs = []
    for seed in SEEDS:
        inputs += [seed[:cut] for cut in range(len(seed))]
        for pos in range(len(seed)):
            for value in (0x00, 0x7F, 0x80, 0x81, 0xFF, seed[pos] ^ 0x01):
                inputs.append(seed[:pos] + bytes((value,)) + seed[pos + 1 :])
    _run(inputs)
