"""Password and operator code, the credentials of write and control requests (reference §5).

```
password  PA P0 P1 P2      PA = level byte (00 highest .. 09), P0..P2 = 6 BCD digits LSB first
                           level 02, password 123456  ->  02 56 34 12
operator  C0 C1 C2 C3      8 BCD digits LSB first: 12345678 -> 78 56 34 12
```

The written form of a password is level then digits, ``"02123456"`` (as in DI 04000C0x).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..bcd import decode_bcd_digits, encode_bcd_digits
from ..errors import DecodeError

__all__ = ["OperatorCode", "Password"]


def _is_digits(text: str, count: int) -> bool:
    return len(text) == count and text.isascii() and text.isdigit()


@dataclass(frozen=True, slots=True)
class Password:
    """A password level (0..255, the raw PA byte) and a 6-digit password."""

    level: int
    digits: str

    def __post_init__(self) -> None:
        if isinstance(self.level, bool) or not 0 <= self.level <= 0xFF:
            raise ValueError(f"password level {self.level!r} is not a byte")
        if not _is_digits(self.digits, 6):
            raise ValueError("a password is 6 decimal digits")

    @classmethod
    def parse(cls, text: str) -> Password:
        """From the written form ``"02123456"`` (2 hex digits of level, 6 digits)."""
        if len(text) != 8 or text[:2].strip("0123456789abcdefABCDEF"):
            raise ValueError(f"{text!r} is not a level and a 6-digit password")
        return cls(int(text[:2], 16), text[2:])

    @classmethod
    def from_wire(cls, raw: bytes, offset: int = 0) -> Password:
        if len(raw) != 4:
            raise DecodeError(f"a password is 4 bytes, not {len(raw)}", offset=offset)
        return cls(raw[0], decode_bcd_digits(raw[1:], byteorder="little", offset=offset + 1))

    @property
    def wire(self) -> bytes:
        return bytes((self.level,)) + encode_bcd_digits(self.digits, byteorder="little")

    def __str__(self) -> str:
        return f"{self.level:02X}{self.digits}"


@dataclass(frozen=True, slots=True)
class OperatorCode:
    """The 8-digit operator code meters record with every write or control operation."""

    digits: str

    def __post_init__(self) -> None:
        if not _is_digits(self.digits, 8):
            raise ValueError("an operator code is 8 decimal digits")

    @classmethod
    def from_wire(cls, raw: bytes, offset: int = 0) -> OperatorCode:
        if len(raw) != 4:
            raise DecodeError(f"an operator code is 4 bytes, not {len(raw)}", offset=offset)
        return cls(decode_bcd_digits(raw, byteorder="little", offset=offset))

    @property
    def wire(self) -> bytes:
        return encode_bcd_digits(self.digits, byteorder="little")

    def __str__(self) -> str:
        return self.digits
