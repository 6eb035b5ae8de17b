"""``ivy-gateway decode``: any frame, packet, APDU or byte stream → a readable structure.

The codecs each describe their own messages as JSON-able dicts; this module only decides
which codec a given input belongs to (the same first-byte rules the gateway uses on a new
connection, plus the APDU tags that only appear inside an association).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ivy_gateway.codec.dlms.apdu.ciphered import CipheredTag
from ivy_gateway.codec.dlms.describe_acse import describe_acse_apdu, describe_ciphered_apdu
from ivy_gateway.codec.dlms.describe_data import describe_service_apdu
from ivy_gateway.codec.dlt645 import describe as dlt645_describe
from ivy_gateway.codec.dlt645 import looks_like_dlt645
from ivy_gateway.codec.errors import DecodeError
from ivy_gateway.codec.ivy import describe as ivy_describe
from ivy_gateway.codec.sniff import ProtocolGuess, sniff

__all__ = ["DecodeKeys", "describe_bytes", "describe_traffic", "parse_hex"]

_ACSE_TAGS = frozenset({0x60, 0x61, 0x62, 0x63})
_WRAPPER_PREFIX = b"\x00\x01\x00\x01"
#: Exactly the tags the cipher codec decodes (one definition, in codec.dlms).
_CIPHERED_TAGS = frozenset(int(tag) for tag in CipheredTag)


@dataclass(frozen=True, slots=True)
class DecodeKeys:
    """Keys for deciphering; ``repr`` hides them so they never reach a log or traceback."""

    ek: bytes | None = field(default=None, repr=False)
    ak: bytes | None = field(default=None, repr=False)
    system_title: bytes | None = None
    vendor_aes_key: bytes | None = field(default=None, repr=False)


def parse_hex(text: str) -> bytes:
    """Hex digits, ignoring spaces, ``:`` and ``-``; ``DecodeError`` names the bad offset."""
    cleaned = "".join(ch for ch in text if ch not in " \t\n:-")
    for index, ch in enumerate(cleaned):
        if ch not in "0123456789abcdefABCDEF":
            raise DecodeError(f"not a hex digit: {ch!r}", offset=index // 2)
    if len(cleaned) % 2:
        raise DecodeError("odd number of hex digits", offset=len(cleaned) // 2)
    return bytes.fromhex(cleaned)


def describe_bytes(data: bytes, *, stream: bool = False, keys: DecodeKeys | None = None) -> Any:
    """Describe ``data`` as one message (default) or as a byte stream (``stream=True``)."""
    keys = keys or DecodeKeys()
    if not data:
        raise DecodeError("no bytes to decode", offset=0)
    if stream:
        guess = sniff(data)
        if guess is ProtocolGuess.DLT645:
            return dlt645_describe.describe_stream(data)
        if guess in (ProtocolGuess.IVY_DLMS, ProtocolGuess.RAW_DLMS):
            return ivy_describe.describe_stream(data)
        raise DecodeError("no protocol recognised at the start of the stream", offset=0)
    if data.startswith(_WRAPPER_PREFIX):
        described = ivy_describe.describe_packet(data)
        apdu = described.get("apdu")
        if described.get("type") == "dlms" and isinstance(apdu, str):
            described["decoded"] = describe_apdu(bytes.fromhex(apdu), keys)
        return described
    if looks_like_dlt645(data):
        return dlt645_describe.describe_frame(data, vendor_key=keys.vendor_aes_key)
    return {"protocol": "dlms", **describe_apdu(data, keys)}


def describe_traffic(data: bytes, *, keys: DecodeKeys | None = None) -> dict[str, Any]:
    """One captured read or write: the stream view plus every whole message decoded.

    A message that does not decode is shown with its ``error`` instead of failing the
    record: a capture is most useful exactly when traffic is broken.
    """
    described: dict[str, Any] = describe_bytes(data, stream=True, keys=keys)
    messages = [bytes.fromhex(f) for f in described.get("frames", [])]
    messages += [bytes.fromhex(p["apdu"]) for p in described.get("packets", []) if "apdu" in p]
    decoded: list[Any] = []
    for message in messages:
        try:
            decoded.append(describe_bytes(message, keys=keys))
        except DecodeError as exc:
            decoded.append({"hex": message.hex().upper(), "error": str(exc)})
    described["decoded"] = decoded
    return described


def describe_apdu(apdu: bytes, keys: DecodeKeys) -> dict[str, Any]:
    """One DLMS APDU: ACSE, ciphered (deciphered when keys are given) or plain xDLMS."""
    tag = apdu[0]
    if tag in _ACSE_TAGS:
        return describe_acse_apdu(apdu, ek=keys.ek, ak=keys.ak, system_title=keys.system_title)
    if tag in _CIPHERED_TAGS:
        return describe_ciphered_apdu(apdu, ek=keys.ek, ak=keys.ak, system_title=keys.system_title)
    return describe_service_apdu(apdu)
