"""Data identifiers and value formats (reference §7).

Every multi-byte value travels least significant byte first (after the 0x33 offset is
removed), so ``XXXXXX.XX`` = 1234.56 is ``56 34 12 00``. Signed quantities put the sign in
the top bit of the last byte: −0.4321 in ``XX.XXXX`` is ``21 43 80``.

Formats are small frozen objects with ``decode(raw) -> Value`` and ``encode(value) ->
bytes``; the catalogue (``catalog.py``) pairs each DI with one of them.

=================  =======================  ==========================================
format             Python value             example (wire, plain)
=================  =======================  ==========================================
``NumberFormat``   ``Decimal``              ``05 22`` (XXX.X) → 220.5
``DemandFormat``   ``Demand``               ``56 34 12 30 14 15 03 24`` → 12.3456 @ 24-03-15 14:30
``ClockFormat``    date / time / datetime   ``01 20 05 24`` (YYMMDDWW) → 2024-05-20
``DigitsFormat``   ``str`` of digits        ``34 12 00 00 00 00`` → "000000001234"
``BitFieldFormat`` ``int``                  ``10 00`` → 16
``AsciiFormat``    ``str``                  reversed ASCII
=================  =======================  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from ..bcd import decode_bcd, decode_bcd_digits, encode_bcd, encode_bcd_digits
from ..errors import DecodeError, EncodeError

__all__ = [
    "AsciiFormat",
    "BitFieldFormat",
    "ClockFormat",
    "DataId",
    "Demand",
    "DemandFormat",
    "DigitsFormat",
    "NumberFormat",
    "Value",
    "ValueFormat",
]

_SIGN_BIT = 0x80


@dataclass(frozen=True, slots=True, order=True, repr=False)
class DataId:
    """A 4-byte data identifier, written DI3 DI2 DI1 DI0 (``"02010100"``), sent DI0 first."""

    value: int

    def __repr__(self) -> str:
        return f"DataId('{self.value:08X}')"

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not 0 <= self.value <= 0xFFFFFFFF:
            raise ValueError(f"a data identifier is 32 bits, not {self.value!r}")

    @classmethod
    def parse(cls, text: str) -> DataId:
        """From the written form, 8 hex digits most significant first (``"00010000"``)."""
        if len(text) != 8 or text.strip("0123456789abcdefABCDEF"):
            raise ValueError(f"{text!r} is not 8 hex digits")
        return cls(int(text, 16))

    @classmethod
    def from_wire(cls, raw: bytes) -> DataId:
        """From the 4 plain data bytes DI0 DI1 DI2 DI3."""
        if len(raw) != 4:
            raise ValueError(f"a data identifier is 4 bytes, not {len(raw)}")
        return cls(int.from_bytes(raw, "little"))

    @property
    def wire(self) -> bytes:
        return self.value.to_bytes(4, "little")

    def __str__(self) -> str:
        return f"{self.value:08X}"


@dataclass(frozen=True, slots=True)
class Demand:
    """A maximum demand and when it occurred (None when the meter has not recorded one)."""

    value: Decimal
    time: datetime | None


Value = Decimal | int | str | date | time | datetime | Demand


@dataclass(frozen=True, slots=True)
class NumberFormat:
    """``size`` BCD bytes with ``decimals`` implied decimals; optionally sign in the top bit."""

    size: int
    decimals: int = 0
    signed: bool = False

    @property
    def label(self) -> str:
        digits = 2 * self.size
        text = "X" * (digits - self.decimals)
        if self.decimals:
            text += "." + "X" * self.decimals
        return text + " signed" if self.signed else text

    def decode(self, raw: bytes, offset: int = 0) -> Decimal:
        _check_size(raw, self.size, offset)
        negative = False
        if self.signed and raw[-1] & _SIGN_BIT:
            negative = True
            raw = raw[:-1] + bytes((raw[-1] & ~_SIGN_BIT,))
        value = Decimal(decode_bcd(raw, byteorder="little", offset=offset)).scaleb(-self.decimals)
        return value.copy_negate() if negative else value

    def encode(self, value: Value) -> bytes:
        if isinstance(value, bool) or not isinstance(value, Decimal | int):
            raise EncodeError(f"{self.label} needs a Decimal or int, not {type(value).__name__}")
        number = Decimal(value)
        if not number.is_finite():
            raise EncodeError(f"{number} cannot be encoded as {self.label}")
        scaled = number.scaleb(self.decimals)
        if scaled != scaled.to_integral_value():
            raise EncodeError(f"{number} has more than {self.decimals} decimals")
        magnitude = int(abs(scaled))
        negative = number.is_signed()
        if negative and not self.signed and magnitude:
            raise EncodeError(f"{number} is negative but {self.label} is unsigned")
        limit = 8 * 10 ** (2 * self.size - 1) if self.signed else 10 ** (2 * self.size)
        if magnitude >= limit:
            raise EncodeError(f"{number} does not fit {self.label}")
        raw = encode_bcd(magnitude, self.size, byteorder="little")
        if negative and self.signed:
            raw = raw[:-1] + bytes((raw[-1] | _SIGN_BIT,))
        return raw


@dataclass(frozen=True, slots=True)
class ClockFormat:
    """Date/time fields, one BCD byte each, listed in wire order (``("ss", "mm", "hh")``).

    Fields: ``YY`` (2000 + YY), ``MM``, ``DD``, ``WW`` (weekday, 0 = Sunday), ``hh``,
    ``mm``, ``ss``. With both date and time fields the value is a ``datetime``, otherwise
    a ``date`` or a ``time``. A weekday is checked to be 0..6 but not against the date:
    meters keep it as a separate register; encoding derives it from the date.
    """

    wire_fields: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.wire_fields)

    @property
    def label(self) -> str:
        return "".join(reversed(self.wire_fields))

    def decode(self, raw: bytes, offset: int = 0) -> date | time | datetime:
        _check_size(raw, self.size, offset)
        fields = {
            name: decode_bcd(raw[i : i + 1], offset=offset + i)
            for i, name in enumerate(self.wire_fields)
        }
        if fields.get("WW", 0) > 6:
            raise DecodeError(f"weekday {fields['WW']} is not 0..6", offset=offset)
        try:
            clock = time(fields.get("hh", 0), fields.get("mm", 0), fields.get("ss", 0))
            if "DD" not in fields:
                return clock
            day = date(2000 + fields["YY"], fields["MM"], fields["DD"])
        except ValueError as exc:
            raise DecodeError(f"invalid {self.label}: {exc}", offset=offset) from None
        return datetime.combine(day, clock) if "hh" in fields else day

    def encode(self, value: Value) -> bytes:
        has_time = "hh" in self.wire_fields
        has_date = "DD" in self.wire_fields
        if has_date and has_time:
            ok = isinstance(value, datetime)
        elif has_date:
            ok = isinstance(value, date) and not isinstance(value, datetime)
        else:
            ok = isinstance(value, time)
        if not ok:
            raise EncodeError(f"{self.label} cannot encode {value!r}")
        fields: dict[str, int] = {}
        if isinstance(value, date):
            if not 2000 <= value.year <= 2099:
                raise EncodeError(f"year {value.year} is outside 2000..2099")
            fields.update(YY=value.year - 2000, MM=value.month, DD=value.day)
            fields["WW"] = value.isoweekday() % 7
        if isinstance(value, datetime | time):
            fields.update(hh=value.hour, mm=value.minute, ss=value.second)
        return bytes(encode_bcd(fields[name], 1)[0] for name in self.wire_fields)


@dataclass(frozen=True, slots=True)
class DemandFormat:
    """Maximum demand: a number then its time ``mm hh DD MM YY`` (reference §7.2)."""

    number: NumberFormat
    clock: ClockFormat = ClockFormat(("mm", "hh", "DD", "MM", "YY"))

    @property
    def size(self) -> int:
        return self.number.size + self.clock.size

    @property
    def label(self) -> str:
        return f"{self.number.label} + {self.clock.label}"

    def decode(self, raw: bytes, offset: int = 0) -> Demand:
        _check_size(raw, self.size, offset)
        cut = self.number.size
        value = self.number.decode(raw[:cut], offset)
        if not any(raw[cut:]):
            return Demand(value, None)  # no demand recorded since the last reset
        when = self.clock.decode(raw[cut:], offset + cut)
        assert isinstance(when, datetime)  # mm hh DD MM YY always yields a datetime
        return Demand(value, when)

    def encode(self, value: Value) -> bytes:
        if not isinstance(value, Demand):
            raise EncodeError(f"{self.label} needs a Demand, not {type(value).__name__}")
        when = bytes(self.clock.size) if value.time is None else self.clock.encode(value.time)
        return self.number.encode(value.value) + when


@dataclass(frozen=True, slots=True)
class DigitsFormat:
    """A code of ``2 * size`` BCD digits (address, meter number, password), LSB first."""

    size: int
    #: How the standard writes the field (``"NNNNNNNNNNNN"``, ``"PAP0P1P2"``).
    written: str = ""

    @property
    def label(self) -> str:
        return self.written or "N" * (2 * self.size)

    def decode(self, raw: bytes, offset: int = 0) -> str:
        _check_size(raw, self.size, offset)
        return decode_bcd_digits(raw, byteorder="little", offset=offset)

    def encode(self, value: Value) -> bytes:
        if not isinstance(value, str) or len(value) != 2 * self.size:
            raise EncodeError(f"{self.label} needs a string of {2 * self.size} digits")
        return encode_bcd_digits(value, byteorder="little")


@dataclass(frozen=True, slots=True)
class BitFieldFormat:
    """A status word: ``size`` bytes, low byte first, bit 0 = LSB of the first byte."""

    size: int = 2

    @property
    def label(self) -> str:
        return "X" * (2 * self.size) + " (bit field)"

    def decode(self, raw: bytes, offset: int = 0) -> int:
        _check_size(raw, self.size, offset)
        return int.from_bytes(raw, "little")

    def encode(self, value: Value) -> bytes:
        if isinstance(value, bool) or not isinstance(value, int):
            raise EncodeError(f"a bit field needs an int, not {type(value).__name__}")
        if not 0 <= value < 1 << (8 * self.size):
            raise EncodeError(f"{value} does not fit {self.size} byte(s)")
        return value.to_bytes(self.size, "little")


@dataclass(frozen=True, slots=True)
class AsciiFormat:
    """Text in reversed byte order like every 645 field, NUL-padded to ``size``."""

    size: int

    @property
    def label(self) -> str:
        return "ASCII"

    def decode(self, raw: bytes, offset: int = 0) -> str:
        _check_size(raw, self.size, offset)
        text = raw[::-1].rstrip(b"\x00")
        if not text.isascii():
            raise DecodeError("text is not ASCII", offset=offset)
        return text.decode("ascii")

    def encode(self, value: Value) -> bytes:
        if not isinstance(value, str) or not value.isascii() or "\x00" in value:
            raise EncodeError("ASCII text without NUL characters needed")
        if len(value) > self.size:
            raise EncodeError(f"text longer than {self.size} characters")
        return value.encode("ascii").ljust(self.size, b"\x00")[::-1]


ValueFormat = (
    NumberFormat | DemandFormat | ClockFormat | DigitsFormat | BitFieldFormat | AsciiFormat
)


def _check_size(raw: bytes, size: int, offset: int) -> None:
    if len(raw) != size:
        raise DecodeError(f"value has {len(raw)} bytes, format needs {size}", offset=offset)
