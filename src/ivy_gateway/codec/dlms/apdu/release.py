"""ACSE release: RLRQ (62) and RLRE (63) (ISO 8650; Green Book 9.4.2.3; dlms.md D3).

::

    RLRQ 62 len  [80 01 reason]  [BE len 04 len user-information]
    RLRE 63 len  [80 01 reason]  [BE len 04 len user-information]

``62 00`` (no reason) is valid. With a ciphered association the RLRQ may carry a
glo-initiate-request and the RLRE a glo-initiate-response, which proves the release came
from the associated peer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

from ..ber import Tag, TagClass, Tlv, encode_tlv
from .acse_ber import (
    CHARSTRING,
    USER_INFORMATION,
    RequestInformation,
    ResponseInformation,
    decode_components,
    decode_enum,
    decode_integer,
    decode_request_information,
    decode_response_information,
    encode_user_information,
)

__all__ = [
    "ReleaseRequestReason",
    "ReleaseResponseReason",
    "Rlre",
    "Rlrq",
    "decode_rlre",
    "decode_rlrq",
    "encode_rlre",
    "encode_rlrq",
]


class ReleaseRequestReason(IntEnum):
    NORMAL = 0
    URGENT = 1
    USER_DEFINED = 30


class ReleaseResponseReason(IntEnum):
    NORMAL = 0
    NOT_FINISHED = 1
    USER_DEFINED = 30


@dataclass(frozen=True, slots=True)
class Rlrq:
    reason: ReleaseRequestReason | None = ReleaseRequestReason.NORMAL
    user_information: RequestInformation | None = None


@dataclass(frozen=True, slots=True)
class Rlre:
    reason: ReleaseResponseReason | None = ReleaseResponseReason.NORMAL
    user_information: ResponseInformation | None = None


_RLRQ = Tag(TagClass.APPLICATION, True, 2)
_RLRE = Tag(TagClass.APPLICATION, True, 3)
_REASON = CHARSTRING  # reason [0] IMPLICIT INTEGER: same identifier octet, 80
_KNOWN = frozenset({_REASON, USER_INFORMATION})

E = TypeVar("E", bound=IntEnum)


def _reason(found: dict[Tag, Tlv], cls: type[E]) -> E | None:
    tlv = found.get(_REASON)
    if tlv is None:
        return None
    return decode_enum(cls, decode_integer(tlv, tlv.value, "reason"), "release reason", tlv)


def _build_rlrq(found: dict[Tag, Tlv]) -> Rlrq:
    info = found.get(USER_INFORMATION)
    return Rlrq(
        reason=_reason(found, ReleaseRequestReason),
        user_information=None if info is None else decode_request_information(info),
    )


def _build_rlre(found: dict[Tag, Tlv]) -> Rlre:
    info = found.get(USER_INFORMATION)
    return Rlre(
        reason=_reason(found, ReleaseResponseReason),
        user_information=None if info is None else decode_response_information(info),
    )


def decode_rlrq(data: bytes) -> Rlrq:
    """Decode exactly one RLRQ."""
    return decode_components(data, _RLRQ, "RLRQ", _KNOWN, frozenset(), _build_rlrq)


def decode_rlre(data: bytes) -> Rlre:
    """Decode exactly one RLRE."""
    return decode_components(data, _RLRE, "RLRE", _KNOWN, frozenset(), _build_rlre)


def _encode(
    apdu: Tag, reason: int | None, info: RequestInformation | ResponseInformation | None
) -> bytes:
    # Every reason is below 128, so its INTEGER content is one octet.
    parts = [b"" if reason is None else encode_tlv(_REASON, bytes((reason,)))]
    if info is not None:
        parts.append(encode_user_information(info))
    return encode_tlv(apdu, b"".join(parts))


def encode_rlrq(rlrq: Rlrq) -> bytes:
    return _encode(_RLRQ, rlrq.reason, rlrq.user_information)


def encode_rlre(rlre: Rlre) -> bytes:
    return _encode(_RLRE, rlre.reason, rlre.user_information)
