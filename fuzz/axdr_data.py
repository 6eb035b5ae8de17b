"""Fuzz A-XDR ``Data`` (IEC 62056-6-2 §9.5): ``decode_data``, ``skip_data``, ``encode_data``
and the scaler-unit structure.

Properties: decoding raises only ``DecodeError``; ``skip_data`` ends where ``decode_data``
ends (strings are not UTF-8-validated by ``skip_data``, so a visible-string may skip where
it fails to decode); decode → encode → decode → encode is a fixed point (canonical bytes).
"""

from __future__ import annotations

import contextlib
import sys

import atheris

from fuzz.harness import fuzz_main, vector_bytes

with atheris.instrument_imports(include=["ivy_gateway"]):
    from ivy_gateway.codec.dlms.axdr import decode_data, encode_data, skip_data
    from ivy_gateway.codec.dlms.units import decode_scaler_unit
    from ivy_gateway.codec.errors import DecodeError

NAME = "axdr_data"
# Data-bearing APDUs in the vectors: the A-XDR ``Data`` follows a short header.
_DATA_APDU_TAGS = {0xC4, 0xC7, 0x0F, 0xC1, 0xC3}


def check(data: bytes) -> None:
    try:
        value, end = decode_data(data)
    except DecodeError:
        with contextlib.suppress(DecodeError):
            skip_data(data)
    else:
        assert skip_data(data) == end
        raw = encode_data(value)
        again, used = decode_data(raw)
        assert used == len(raw)
        assert encode_data(again) == raw
    with contextlib.suppress(DecodeError):
        decode_scaler_unit(data)


def seeds() -> list[bytes]:
    out: list[bytes] = []
    for apdu in vector_bytes("dlms.json"):
        if apdu and apdu[0] in _DATA_APDU_TAGS:
            # Every suffix that starts a valid Data is a seed (cheap and thorough).
            for start in range(1, len(apdu)):
                try:
                    _, end = decode_data(apdu, start)
                except DecodeError:
                    continue
                out.append(apdu[start:end])
    return out


if __name__ == "__main__":
    fuzz_main(NAME, check, seeds())
    sys.exit(0)
