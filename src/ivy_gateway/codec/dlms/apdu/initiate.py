"""xDLMS InitiateRequest / InitiateResponse (Green Book 9.5; dlms.md D1, D2), A-XDR encoded.

These travel inside the ACSE user-information of AARQ / AARE (plain, or ciphered as
glo-initiate-request 0x21 / glo-initiate-response 0x28)::

    InitiateRequest   01
                      00 | 01 len key        dedicated-key               OPTIONAL
                      00 | 01 bb             response-allowed            DEFAULT TRUE
                      00 | 01 qq             proposed-quality-of-service OPTIONAL
                      vv                     proposed-dlms-version-number
                      5F 1F 04 00 c0 c1 c2   proposed-conformance
                      hh ll                  client-max-receive-pdu-size

    InitiateResponse  08
                      00 | 01 qq             negotiated-quality-of-service OPTIONAL
                      vv                     negotiated-dlms-version-number
                      5F 1F 04 00 c0 c1 c2   negotiated-conformance
                      hh ll                  server-max-receive-pdu-size
                      hh ll                  vaa-name (0x0007 LN, 0xFA00 SN)

The conformance block is a BER-encoded ``[APPLICATION 31] IMPLICIT BIT STRING (SIZE(24))``
inside the A-XDR: tag 5F 1F, length 4, 0 unused bits, 3 octets; bit 0 is the MSB of c0.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

from ...errors import DecodeError, EncodeError, TruncatedError
from ..ber import Tag, TagClass, decode_length, decode_tlv, encode_length

__all__ = [
    "INITIATE_REQUEST_TAG",
    "INITIATE_RESPONSE_TAG",
    "LN_VAA_NAME",
    "SN_VAA_NAME",
    "Conformance",
    "InitiateRequest",
    "InitiateResponse",
    "decode_initiate_request",
    "decode_initiate_response",
    "encode_conformance",
    "encode_initiate_request",
    "encode_initiate_response",
]

INITIATE_REQUEST_TAG = 0x01
INITIATE_RESPONSE_TAG = 0x08
LN_VAA_NAME = 0x0007  # the VAA of logical-name referencing (Green Book 9.5, InitiateResponse)
SN_VAA_NAME = 0xFA00  # ... of short-name referencing
_CONFORMANCE_TAG = Tag(TagClass.APPLICATION, constructed=False, number=31)
_CONFORMANCE_HEADER = _CONFORMANCE_TAG.encode() + b"\x04\x00"  # length 4, 0 unused bits


class Conformance(IntFlag):
    """The 24-bit conformance block. Bit n of the standard (n = 0 is the first bit on the
    wire, i.e. the MSB) is ``1 << (23 - n)`` here, so ``int(flags).to_bytes(3)`` is the wire
    form (Green Book 9.5, Conformance ::= [APPLICATION 31] IMPLICIT BIT STRING)."""

    RESERVED_ZERO = 1 << 23
    GENERAL_PROTECTION = 1 << 22
    GENERAL_BLOCK_TRANSFER = 1 << 21
    READ = 1 << 20
    WRITE = 1 << 19
    UNCONFIRMED_WRITE = 1 << 18
    DELTA_VALUE_ENCODING = 1 << 17
    RESERVED_SEVEN = 1 << 16
    ATTRIBUTE0_SUPPORTED_WITH_SET = 1 << 15
    PRIORITY_MGMT_SUPPORTED = 1 << 14
    ATTRIBUTE0_SUPPORTED_WITH_GET = 1 << 13
    BLOCK_TRANSFER_WITH_GET_OR_READ = 1 << 12
    BLOCK_TRANSFER_WITH_SET_OR_WRITE = 1 << 11
    BLOCK_TRANSFER_WITH_ACTION = 1 << 10
    MULTIPLE_REFERENCES = 1 << 9
    INFORMATION_REPORT = 1 << 8
    DATA_NOTIFICATION = 1 << 7
    ACCESS = 1 << 6
    PARAMETERIZED_ACCESS = 1 << 5
    GET = 1 << 4
    SET = 1 << 3
    SELECTIVE_ACCESS = 1 << 2
    EVENT_NOTIFICATION = 1 << 1
    ACTION = 1 << 0


def _check_range(what: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise EncodeError(f"{what} {value} outside {low}..{high}")


@dataclass(frozen=True, slots=True)
class InitiateRequest:
    """What the client proposes. ``dedicated_key`` is secret: it is masked in the repr."""

    conformance: Conformance
    max_receive_pdu_size: int  #: client-max-receive-pdu-size
    dlms_version: int = 6
    dedicated_key: bytes | None = None
    response_allowed: bool = True
    quality_of_service: int | None = None

    def __post_init__(self) -> None:
        _check_range("conformance", self.conformance, 0, 0xFF_FFFF)
        _check_range("max receive PDU size", self.max_receive_pdu_size, 0, 0xFFFF)
        _check_range("DLMS version", self.dlms_version, 0, 0xFF)
        if self.quality_of_service is not None:
            _check_range("quality of service", self.quality_of_service, -128, 127)

    def __repr__(self) -> str:
        key = None if self.dedicated_key is None else "***"
        return (
            f"InitiateRequest(conformance={self.conformance!r}, "
            f"max_receive_pdu_size={self.max_receive_pdu_size}, "
            f"dlms_version={self.dlms_version}, dedicated_key={key}, "
            f"response_allowed={self.response_allowed}, "
            f"quality_of_service={self.quality_of_service})"
        )


@dataclass(frozen=True, slots=True)
class InitiateResponse:
    """What the server grants."""

    conformance: Conformance
    max_receive_pdu_size: int  #: server-max-receive-pdu-size
    dlms_version: int = 6
    vaa_name: int = LN_VAA_NAME
    quality_of_service: int | None = None

    def __post_init__(self) -> None:
        _check_range("conformance", self.conformance, 0, 0xFF_FFFF)
        _check_range("max receive PDU size", self.max_receive_pdu_size, 0, 0xFFFF)
        _check_range("DLMS version", self.dlms_version, 0, 0xFF)
        _check_range("VAA name", self.vaa_name, 0, 0xFFFF)
        if self.quality_of_service is not None:
            _check_range("quality of service", self.quality_of_service, -128, 127)


class _Reader:
    """Bounded cursor over one A-XDR APDU."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int, what: str) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise TruncatedError(f"{what} cut short", offset=self.pos)
        chunk = self.data[self.pos : end]
        self.pos = end
        return bytes(chunk)

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def flag(self, what: str) -> bool:
        """An A-XDR OPTIONAL/DEFAULT presence flag: 00 absent, 01 present."""
        offset = self.pos
        value = self.byte(what)
        if value > 1:
            raise DecodeError(
                f"{what} presence flag {value:02X} is neither 00 nor 01", offset=offset
            )
        return value == 1

    def optional_int8(self, what: str) -> int | None:
        if not self.flag(what):
            return None
        return int.from_bytes(self.take(1, what), "big", signed=True)

    def conformance(self) -> Conformance:
        offset = self.pos
        tlv, self.pos = decode_tlv(self.data, self.pos)
        if tlv.tag != _CONFORMANCE_TAG:
            raise DecodeError("conformance block must have tag 5F 1F", offset=offset)
        if len(tlv.value) != 4 or tlv.value[0] != 0:
            raise DecodeError("conformance block must be 24 bits (04 00 xx xx xx)", offset=offset)
        return Conformance(int.from_bytes(tlv.value[1:], "big"))

    def uint16(self, what: str) -> int:
        return int.from_bytes(self.take(2, what), "big")

    def finish(self, what: str) -> None:
        if self.pos != len(self.data):
            raise DecodeError(
                f"{len(self.data) - self.pos} bytes after the {what}", offset=self.pos
            )


def _expect_tag(reader: _Reader, tag: int, what: str) -> None:
    value = reader.byte(what)
    if value != tag:
        raise DecodeError(f"{what} must start with {tag:02X}, not {value:02X}", offset=0)


def decode_initiate_request(data: bytes) -> InitiateRequest:
    """Decode exactly one InitiateRequest (starting with its 01 tag)."""
    reader = _Reader(data)
    _expect_tag(reader, INITIATE_REQUEST_TAG, "InitiateRequest")
    dedicated_key = None
    if reader.flag("dedicated-key"):
        length, reader.pos = decode_length(data, reader.pos)
        dedicated_key = reader.take(length, "dedicated-key")
    # response-allowed BOOLEAN DEFAULT TRUE: 00 = the default, 01 bb = explicit value.
    response_allowed = (
        reader.byte("response-allowed") != 0 if reader.flag("response-allowed") else True
    )
    quality_of_service = reader.optional_int8("proposed-quality-of-service")
    dlms_version = reader.byte("proposed-dlms-version-number")
    conformance = reader.conformance()
    max_pdu = reader.uint16("client-max-receive-pdu-size")
    reader.finish("InitiateRequest")
    return InitiateRequest(
        conformance=conformance,
        max_receive_pdu_size=max_pdu,
        dlms_version=dlms_version,
        dedicated_key=dedicated_key,
        response_allowed=response_allowed,
        quality_of_service=quality_of_service,
    )


def decode_initiate_response(data: bytes) -> InitiateResponse:
    """Decode exactly one InitiateResponse (starting with its 08 tag)."""
    reader = _Reader(data)
    _expect_tag(reader, INITIATE_RESPONSE_TAG, "InitiateResponse")
    quality_of_service = reader.optional_int8("negotiated-quality-of-service")
    dlms_version = reader.byte("negotiated-dlms-version-number")
    conformance = reader.conformance()
    max_pdu = reader.uint16("server-max-receive-pdu-size")
    vaa_name = reader.uint16("vaa-name")
    reader.finish("InitiateResponse")
    return InitiateResponse(
        conformance=conformance,
        max_receive_pdu_size=max_pdu,
        dlms_version=dlms_version,
        vaa_name=vaa_name,
        quality_of_service=quality_of_service,
    )


def encode_conformance(conformance: Conformance) -> bytes:
    """``5F 1F 04 00`` + the 3 conformance octets."""
    return _CONFORMANCE_HEADER + int(conformance).to_bytes(3, "big")


def _optional_int8(value: int | None) -> bytes:
    return b"\x00" if value is None else b"\x01" + value.to_bytes(1, "big", signed=True)


def encode_initiate_request(request: InitiateRequest) -> bytes:
    key = request.dedicated_key
    parts = [
        bytes((INITIATE_REQUEST_TAG,)),
        b"\x00" if key is None else b"\x01" + encode_length(len(key)) + key,
        # Encode the DEFAULT (TRUE) as absent, as every client does (dlms.md D1).
        b"\x00" if request.response_allowed else b"\x01\x00",
        _optional_int8(request.quality_of_service),
        bytes((request.dlms_version,)),
        encode_conformance(request.conformance),
        request.max_receive_pdu_size.to_bytes(2, "big"),
    ]
    return b"".join(parts)


def encode_initiate_response(response: InitiateResponse) -> bytes:
    return b"".join(
        (
            bytes((INITIATE_RESPONSE_TAG,)),
            _optional_int8(response.quality_of_service),
            bytes((response.dlms_version,)),
            encode_conformance(response.conformance),
            response.max_receive_pdu_size.to_bytes(2, "big"),
            response.vaa_name.to_bytes(2, "big"),
        )
    )
