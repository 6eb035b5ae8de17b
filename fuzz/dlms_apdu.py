"""Fuzz the DLMS/COSEM APDU decoders: xDLMS services (GET/SET/ACTION, notifications,
exception), ACSE (AARQ/AARE/RLRQ/RLRE), the xDLMS InitiateRequest/Response, BER and the
ciphered APDUs (with keys, so the GCM path and the plaintext behind it are reached).

Property: whatever the bytes, each decoder returns a message or raises ``DecodeError``
(``TruncatedError``, ``SecurityError``); the describers used by ``ivy-gateway decode`` too.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

import atheris

from fuzz.harness import fuzz_main, vector_bytes

with atheris.instrument_imports(include=["ivy_gateway"]):
    from ivy_gateway.codec.dlms.apdu.acse import decode_acse_apdu
    from ivy_gateway.codec.dlms.apdu.initiate import (
        decode_initiate_request,
        decode_initiate_response,
    )
    from ivy_gateway.codec.dlms.apdu.xdlms import decode_service_apdu
    from ivy_gateway.codec.dlms.ber import decode_tlvs
    from ivy_gateway.codec.dlms.describe_acse import describe_acse_apdu, describe_ciphered_apdu
    from ivy_gateway.codec.dlms.describe_data import describe_service_apdu
    from ivy_gateway.codec.dlms.security import (
        SecurityContext,
        SecurityKeys,
        decode_ciphered_apdu,
    )
    from ivy_gateway.codec.errors import DecodeError

NAME = "dlms_apdu"
# The keys of the public test vectors (tests/vectors/dlms.json), so ciphered seeds decipher.
EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
SERVER = bytes.fromhex("4D4D4D0000BC614E")


def _decipher(data: bytes) -> object:
    context = SecurityContext(  # fresh per input: the replay guard must not carry state
        SecurityKeys(ek=EK, ak=AK, broadcast_key=EK),
        system_title=bytes(8),
        peer_system_title=SERVER,
    )
    return context.decipher(data)


DECODERS: tuple[Callable[[bytes], object], ...] = (
    decode_service_apdu,
    describe_service_apdu,
    decode_acse_apdu,
    decode_initiate_request,
    decode_initiate_response,
    decode_tlvs,
    decode_ciphered_apdu,
    _decipher,
    lambda data: describe_acse_apdu(data, ek=EK, ak=AK),
    lambda data: describe_ciphered_apdu(data, ek=EK, ak=AK, system_title=SERVER),
)


def check(data: bytes) -> None:
    for decode in DECODERS:
        with contextlib.suppress(DecodeError):
            decode(data)


def seeds() -> list[bytes]:
    return vector_bytes("dlms.json")


if __name__ == "__main__":
    fuzz_main(NAME, check, seeds())
    sys.exit(0)
