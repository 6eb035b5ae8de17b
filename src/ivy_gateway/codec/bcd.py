"""Packed binary-coded decimal: two decimal digits per byte, high digit in the high nibble.

``0x12 0x34`` is the number 1234 when the most significant byte comes first
(``byteorder="big"``) and 3412 when the least significant byte comes first
(``byteorder="little"``, the DL/T 645 order for every multi-byte field).

Decoding validates every nibble (``0xA``..``0xF`` are not digits) and reports the offset of
the first bad byte; encoding refuses values that do not fit. Both lean on C-level helpers
(``bytes.translate``, ``bytes.hex``, ``int``) instead of a Python loop per digit, because the
DL/T 645 decoder calls them for every value it reads.
"""

from __future__ import annotations

from typing import Literal

from .errors import DecodeError, EncodeError

__all__ = ["decode_bcd", "decode_bcd_digits", "encode_bcd", "encode_bcd_digits", "is_bcd"]

ByteOrder = Literal["big", "little"]

#: Every byte whose two nibbles are both decimal digits; ``translate(None, _VALID)`` deletes
#: them, so what remains are exactly the invalid bytes.
_VALID = bytes(b for b in range(256) if b >> 4 < 10 and b & 0x0F < 10)


def is_bcd(data: bytes) -> bool:
    """True when every nibble of ``data`` is a decimal digit."""
    return not data.translate(None, _VALID)


def _first_invalid(data: bytes) -> int:
    return next(i for i, b in enumerate(data) if b >> 4 > 9 or b & 0x0F > 9)


def decode_bcd_digits(data: bytes, *, byteorder: ByteOrder = "big", offset: int = 0) -> str:
    """The decimal digits of ``data`` as text, most significant first, leading zeros kept.

    ``offset`` is added to the position reported by ``DecodeError``, so callers can point at
    the byte in the whole frame rather than in the slice they passed.
    """
    if data.translate(None, _VALID):
        bad = _first_invalid(data)
        raise DecodeError(f"byte {data[bad]:02X} is not BCD", offset=offset + bad)
    return data.hex() if byteorder == "big" else data[::-1].hex()


def decode_bcd(data: bytes, *, byteorder: ByteOrder = "big", offset: int = 0) -> int:
    """The unsigned integer held in ``data``; an empty input is 0."""
    digits = decode_bcd_digits(data, byteorder=byteorder, offset=offset)
    return int(digits) if digits else 0


def encode_bcd(value: int, length: int, *, byteorder: ByteOrder = "big") -> bytes:
    """``value`` as ``length`` BCD bytes; ``EncodeError`` if negative or too large."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(f"BCD value must be an int, not {type(value).__name__}")
    if length < 0 or not 0 <= value < 10 ** (2 * length):
        raise EncodeError(f"{value} does not fit in {length} BCD byte(s)")
    raw = bytes.fromhex(f"{value:0{2 * length}d}") if length else b""
    return raw if byteorder == "big" else raw[::-1]


def encode_bcd_digits(digits: str, *, byteorder: ByteOrder = "big") -> bytes:
    """A string of an even number of decimal digits as BCD bytes (leading zeros kept)."""
    if len(digits) % 2 or not (digits.isascii() and digits.isdigit()):
        raise EncodeError(f"{digits!r} is not an even number of decimal digits")
    raw = bytes.fromhex(digits)
    return raw if byteorder == "big" else raw[::-1]
