"""BER building blocks shared by the ACSE APDUs (``acse.py``, ``release.py``).

An ACSE APDU is an ``[APPLICATION n] IMPLICIT SEQUENCE`` of context-tagged components. Each
component here is read from a complete outer TLV, so running short inside one is malformed
input (``DecodeError``), never "need more data".

The user-information component (``BE len 04 len <xDLMS APDU>``, Green Book 9.4.2.2.5)
carries an xDLMS InitiateRequest/InitiateResponse, their ciphered forms, or (in a rejecting
AARE) a ConfirmedServiceError ``0E ...`` (decoded by ``exception.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import TypeVar

from ...errors import DecodeError, TruncatedError
from ..ber import Tag, TagClass, Tlv, decode_tlv, decode_tlvs, encode_tlv
from .ciphered import CipheredApdu, CipheredTag, decode_ciphered_apdu, encode_ciphered_apdu
from .exception import ConfirmedServiceError, decode_confirmed_service_error
from .initiate import (
    INITIATE_REQUEST_TAG,
    INITIATE_RESPONSE_TAG,
    InitiateRequest,
    InitiateResponse,
    decode_initiate_request,
    decode_initiate_response,
    encode_initiate_request,
    encode_initiate_response,
)

__all__ = [
    "CHARSTRING",
    "CONFIRMED_SERVICE_ERROR_TAG",
    "INTEGER",
    "OCTET_STRING",
    "OID",
    "USER_INFORMATION",
    "RequestInformation",
    "ResponseInformation",
    "context_tag",
    "decode_components",
    "decode_enum",
    "decode_integer",
    "decode_request_information",
    "decode_response_information",
    "encode_user_information",
    "encode_wrapped",
    "fail",
    "inner_value",
]

CONFIRMED_SERVICE_ERROR_TAG = 0x0E
OID = Tag(TagClass.UNIVERSAL, False, 6)
INTEGER = Tag(TagClass.UNIVERSAL, False, 2)
OCTET_STRING = Tag(TagClass.UNIVERSAL, False, 4)
#: Authentication-value CHOICE charstring [0] (the only choice DLMS uses); also the
#: implicit [0] of the release reasons.
CHARSTRING = Tag(TagClass.CONTEXT, False, 0)
USER_INFORMATION = Tag(TagClass.CONTEXT, True, 30)

#: AARQ / RLRQ user-information: plain, or still ciphered (glo-initiate-request, ...)
RequestInformation = InitiateRequest | CipheredApdu
#: AARE / RLRE user-information; a ConfirmedServiceError explains a rejected AARQ.
ResponseInformation = InitiateResponse | CipheredApdu | ConfirmedServiceError

# What may start the user-information: plain xDLMS APDUs and their global ciphered forms.
_REQUEST_DECODERS: dict[int, Callable[[bytes], RequestInformation]] = {
    INITIATE_REQUEST_TAG: decode_initiate_request,
    CipheredTag.GLO_INITIATE_REQUEST: decode_ciphered_apdu,
    CipheredTag.GENERAL_GLO_CIPHERING: decode_ciphered_apdu,
}
_RESPONSE_DECODERS: dict[int, Callable[[bytes], ResponseInformation]] = {
    INITIATE_RESPONSE_TAG: decode_initiate_response,
    CONFIRMED_SERVICE_ERROR_TAG: decode_confirmed_service_error,
    CipheredTag.GLO_INITIATE_RESPONSE: decode_ciphered_apdu,
    CipheredTag.GLO_CONFIRMED_SERVICE_ERROR: decode_ciphered_apdu,
    CipheredTag.GENERAL_GLO_CIPHERING: decode_ciphered_apdu,
}

E = TypeVar("E", bound=IntEnum)
T = TypeVar("T")


def context_tag(number: int, constructed: bool = True) -> Tag:
    return Tag(TagClass.CONTEXT, constructed, number)


def fail(message: str, tlv: Tlv) -> DecodeError:
    return DecodeError(message, offset=tlv.offset)


def _hex(tag: Tag) -> str:
    return tag.encode().hex().upper()


def decode_components(
    data: bytes,
    apdu: Tag,
    name: str,
    known: frozenset[Tag],
    skipped: frozenset[int],
    build: Callable[[dict[Tag, Tlv]], T],
) -> T:
    """Split one whole APDU into its components by tag, then ``build`` the message.

    Components in ``known`` are collected (once each); context tags numbered in ``skipped``
    are ISO 8650 components DLMS gives no meaning, and are ignored; anything else is an error.
    """
    outer, end = decode_tlv(data)
    if outer.tag != apdu:
        raise DecodeError(f"not an {name} (tag {data[0]:02X})", offset=0)
    if end != len(data):
        raise DecodeError(f"{len(data) - end} bytes after the {name}", offset=end)
    try:
        found: dict[Tag, Tlv] = {}
        for tlv in decode_tlvs(data, end - len(outer.value), end):
            if tlv.tag in known:
                if tlv.tag in found:
                    raise fail(f"{name} repeats component {_hex(tlv.tag)}", tlv)
                found[tlv.tag] = tlv
            elif tlv.tag.tag_class is not TagClass.CONTEXT or tlv.tag.number not in skipped:
                raise fail(f"{name} has no component {_hex(tlv.tag)}", tlv)
        return build(found)
    except TruncatedError as exc:
        # The outer length was complete, so a shortfall inside it is malformed input.
        raise DecodeError(f"{name}: {exc.reason}", offset=exc.offset) from None


def inner_value(tlv: Tlv, tag: Tag, what: str) -> bytes:
    """The value of the single TLV of ``tag`` that makes up a constructed component."""
    inner, end = decode_tlv(tlv.value)
    if inner.tag != tag or end != len(tlv.value):
        raise fail(f"{what} must hold exactly one {_hex(tag)} value", tlv)
    return inner.value


def decode_enum(cls: type[E], value: int, what: str, tlv: Tlv) -> E:
    try:
        return cls(value)
    except ValueError:
        raise fail(f"{what} {value} is not defined", tlv) from None


def decode_integer(tlv: Tlv, value: bytes, what: str) -> int:
    """A BER INTEGER's content (X.690 §8.3): two's complement, here at most 4 octets."""
    if not 1 <= len(value) <= 4:
        raise fail(f"{what} INTEGER of {len(value)} bytes", tlv)
    return int.from_bytes(value, "big", signed=True)


def _user_information(tlv: Tlv, decoders: dict[int, Callable[[bytes], T]]) -> T:
    content = inner_value(tlv, OCTET_STRING, "user-information")
    decoder = decoders.get(content[0]) if content else None
    if decoder is None:
        shown = f"tag {content[0]:02X}" if content else "empty"
        raise fail(f"user-information holds an unexpected APDU ({shown})", tlv)
    return decoder(content)


def decode_request_information(tlv: Tlv) -> RequestInformation:
    return _user_information(tlv, _REQUEST_DECODERS)


def decode_response_information(tlv: Tlv) -> ResponseInformation:
    return _user_information(tlv, _RESPONSE_DECODERS)


def encode_wrapped(tag: Tag, inner: Tag, value: bytes) -> bytes:
    """A constructed component holding one TLV."""
    return encode_tlv(tag, encode_tlv(inner, value))


def encode_user_information(info: RequestInformation | ResponseInformation) -> bytes:
    if isinstance(info, InitiateRequest):
        content = encode_initiate_request(info)
    elif isinstance(info, InitiateResponse):
        content = encode_initiate_response(info)
    elif isinstance(info, CipheredApdu):
        content = encode_ciphered_apdu(info)
    else:
        content = info.to_bytes()
    return encode_wrapped(USER_INFORMATION, OCTET_STRING, content)
