"""BER tags, lengths and TLVs (ITU-T X.690 §8.1) as DLMS/COSEM uses them in ACSE APDUs.

Identifier octets (X.690 §8.1.2)::

    bit 8 7   6   5 4 3 2 1
        class P/C number        number 0..30 in one octet ("low-tag-number form")
        class P/C 1 1 1 1 1     then base-128 octets, bit 8 = "more follows" (high-tag form),
                                e.g. 5F 1F = [APPLICATION 31] primitive (xDLMS conformance)

Length octets (X.690 §8.1.3), definite form only (DLMS never uses the indefinite form)::

    0xxxxxxx             short form: the length itself (0..127)
    1nnnnnnn + n octets  long form: n (1..4 here) big-endian octets, e.g. 81 C8, 82 01 00

A-XDR lengths of octet-strings ("var-length", Green Book 9.3) use the same octets, so the
security and xDLMS codecs reuse ``decode_length``/``encode_length``.

Every reader takes an optional ``end`` and never looks past it. Running out of bytes at the
end of the input is a ``TruncatedError`` (more bytes could complete it); running past an
``end`` set by an enclosing length, or a malformed tag or length, is a plain ``DecodeError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ..errors import DecodeError, EncodeError, TruncatedError

__all__ = [
    "MAX_LENGTH",
    "MAX_TAG_NUMBER",
    "Tag",
    "TagClass",
    "Tlv",
    "decode_length",
    "decode_tag",
    "decode_tlv",
    "decode_tlvs",
    "encode_length",
    "encode_tlv",
]

#: Four length octets are the most DLMS needs (APDUs are far below 4 GiB); more is refused so
#: a hostile length cannot make us build huge integers.
MAX_LENGTH = 0xFFFF_FFFF
#: Four base-128 octets of tag number (28 bits) — far more than any DLMS/ACSE tag uses.
MAX_TAG_NUMBER = (1 << 28) - 1
_MAX_LENGTH_OCTETS = 4
_MAX_TAG_NUMBER_OCTETS = 4


class TagClass(IntEnum):
    """The two top bits of the identifier octet (X.690 §8.1.2.2, Table 1)."""

    UNIVERSAL = 0
    APPLICATION = 1
    CONTEXT = 2
    PRIVATE = 3


@dataclass(frozen=True, slots=True)
class Tag:
    """A BER identifier: class, primitive/constructed and tag number."""

    tag_class: TagClass
    constructed: bool
    number: int

    def __post_init__(self) -> None:
        if not 0 <= self.number <= MAX_TAG_NUMBER:
            raise EncodeError(f"BER tag number {self.number} outside 0..{MAX_TAG_NUMBER}")

    def encode(self) -> bytes:
        first = (self.tag_class << 6) | (0x20 if self.constructed else 0)
        if self.number < 31:
            return bytes((first | self.number,))
        # High-tag-number form (X.690 §8.1.2.4): base-128, most significant group first.
        groups = [self.number & 0x7F]
        rest = self.number >> 7
        while rest:
            groups.append(0x80 | (rest & 0x7F))
            rest >>= 7
        return bytes((first | 0x1F, *reversed(groups)))


@dataclass(frozen=True, slots=True)
class Tlv:
    """One decoded tag-length-value; ``offset`` is where its tag started in the input."""

    tag: Tag
    value: bytes
    offset: int = 0


def _short(data: bytes, stop: int, message: str, offset: int) -> DecodeError:
    """The error for "needs bytes beyond ``stop``": truncation only at the end of the input."""
    if stop >= len(data):
        return TruncatedError(message, offset=offset)
    return DecodeError(message + " (past the enclosing length)", offset=offset)


def encode_length(length: int) -> bytes:
    """Definite length octets, short form below 128, shortest long form above."""
    if length < 0 or length > MAX_LENGTH:
        raise EncodeError(f"BER length {length} outside 0..{MAX_LENGTH}")
    if length < 0x80:
        return bytes((length,))
    size = (length.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + length.to_bytes(size, "big")


def decode_length(data: bytes, offset: int = 0, end: int | None = None) -> tuple[int, int]:
    """Read length octets at ``offset``; return ``(length, offset after the octets)``.

    Only the length octets are bounded by ``end``; whether ``length`` bytes follow is the
    caller's check (``decode_tlv`` does it).
    """
    stop = len(data) if end is None else end
    if offset >= stop:
        raise _short(data, stop, "BER length missing", offset)
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    size = first & 0x7F
    if size == 0:
        # X.690 §8.1.3.6: indefinite form; DLMS APDUs are always definite (Green Book 9.4).
        raise DecodeError("indefinite BER length is not used by DLMS", offset=offset)
    if size > _MAX_LENGTH_OCTETS:
        # Also covers 0xFF, which X.690 §8.1.3.5 c) reserves.
        raise DecodeError(f"BER length with {size} octets is too long", offset=offset)
    if offset + 1 + size > stop:
        raise _short(data, stop, "BER long-form length cut short", offset)
    return int.from_bytes(data[offset + 1 : offset + 1 + size], "big"), offset + 1 + size


def decode_tag(data: bytes, offset: int = 0, end: int | None = None) -> tuple[Tag, int]:
    """Read identifier octets at ``offset``; return ``(tag, offset after them)``."""
    stop = len(data) if end is None else end
    if offset >= stop:
        raise _short(data, stop, "BER tag missing", offset)
    first = data[offset]
    tag_class = TagClass(first >> 6)
    constructed = bool(first & 0x20)
    number = first & 0x1F
    pos = offset + 1
    if number != 0x1F:
        return Tag(tag_class, constructed, number), pos
    number = 0
    for count in range(_MAX_TAG_NUMBER_OCTETS):
        if pos >= stop:
            raise _short(data, stop, "BER high tag number cut short", pos)
        octet = data[pos]
        pos += 1
        if count == 0 and octet == 0x80:
            # X.690 §8.1.2.4.2 c): the first subsequent octet shall not be 0x80 (padding).
            raise DecodeError("BER high tag number has a leading zero group", offset=pos - 1)
        number = (number << 7) | (octet & 0x7F)
        if not octet & 0x80:
            if number < 0x1F:
                # X.690 §8.1.2.4: numbers below 31 shall use the one-octet form.
                raise DecodeError("BER tag number below 31 in high-tag form", offset=offset)
            return Tag(tag_class, constructed, number), pos
    raise DecodeError("BER tag number too long", offset=offset)


def decode_tlv(data: bytes, offset: int = 0, end: int | None = None) -> tuple[Tlv, int]:
    """Read one TLV at ``offset``, not past ``end``; return ``(tlv, offset after it)``."""
    stop = len(data) if end is None else end
    tag, pos = decode_tag(data, offset, stop)
    length, pos = decode_length(data, pos, stop)
    if pos + length > stop:
        raise _short(data, stop, f"BER value of {length} bytes, {stop - pos} left", pos)
    return Tlv(tag, bytes(data[pos : pos + length]), offset), pos + length


def decode_tlvs(data: bytes, offset: int = 0, end: int | None = None) -> list[Tlv]:
    """Read TLVs back to back from ``offset`` until exactly ``end`` (the components of a
    constructed value); anything that does not fit is an error."""
    stop = len(data) if end is None else end
    items: list[Tlv] = []
    while offset < stop:
        tlv, offset = decode_tlv(data, offset, stop)
        items.append(tlv)
    return items


def encode_tlv(tag: Tag, value: bytes) -> bytes:
    """Identifier octets, shortest definite length, value."""
    return tag.encode() + encode_length(len(value)) + value
