"""The COSEM ``Data`` value model (Blue Book §4.1.5, dlms.md Part C).

A decoded value keeps its A-XDR tag next to its Python value, so re-encoding reproduces
the wire bytes (``double-long`` 5 and ``long-unsigned`` 5 are different values here).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from .clock import CosemDate, CosemDateTime, CosemTime

__all__ = ["BitString", "CompactArray", "Data", "DataType", "DataValue"]


class DataType(IntEnum):
    """Data CHOICE tags (Blue Book Table "Common data types"); 7, 8, 11, 14 are unused."""

    NULL_DATA = 0
    ARRAY = 1
    STRUCTURE = 2
    BOOLEAN = 3
    BIT_STRING = 4
    DOUBLE_LONG = 5
    DOUBLE_LONG_UNSIGNED = 6
    OCTET_STRING = 9
    VISIBLE_STRING = 10
    UTF8_STRING = 12
    BCD = 13
    INTEGER = 15
    LONG = 16
    UNSIGNED = 17
    LONG_UNSIGNED = 18
    COMPACT_ARRAY = 19
    LONG64 = 20
    LONG64_UNSIGNED = 21
    ENUM = 22
    FLOAT32 = 23
    FLOAT64 = 24
    DATE_TIME = 25
    DATE = 26
    TIME = 27
    DONT_CARE = 255


@dataclass(frozen=True, slots=True)
class BitString:
    """A bit-string: ``length`` bits, first bit = MSB of ``data[0]``.

    The padding bits of the last byte are kept as received so re-encoding is exact.
    """

    data: bytes
    length: int

    def __post_init__(self) -> None:
        if self.length < 0 or len(self.data) != (self.length + 7) >> 3:
            raise ValueError(f"{len(self.data)} bytes cannot hold exactly {self.length} bits")

    @classmethod
    def from_str(cls, bits: str) -> BitString:
        """Parse ``"1000000001"`` (first character = first bit)."""
        if bits.strip("01"):
            raise ValueError(f"not a bit string: {bits!r}")
        padded = bits + "0" * (-len(bits) % 8)
        return cls(int(padded or "0", 2).to_bytes(len(padded) // 8, "big"), len(bits))

    def __str__(self) -> str:
        if not self.length:
            return ""
        return format(int.from_bytes(self.data, "big"), f"0{len(self.data) * 8}b")[: self.length]

    def __getitem__(self, index: int) -> bool:
        """Bit ``index`` (0 = first bit on the wire)."""
        if not 0 <= index < self.length:
            raise IndexError(index)
        return bool(self.data[index >> 3] & (0x80 >> (index & 7)))


@dataclass(frozen=True, slots=True)
class CompactArray:
    """A compact-array kept in wire form: its TypeDescription and packed contents.

    Not used by the EM114070; held raw so it survives a decode/encode round trip.
    """

    type_description: bytes
    contents: bytes


DataValue = (
    None
    | bool
    | int
    | float
    | bytes
    | str
    | tuple["Data", ...]
    | BitString
    | CompactArray
    | CosemDateTime
    | CosemDate
    | CosemTime
)


class Data(NamedTuple):
    """One A-XDR value with its tag, so that re-encoding reproduces the wire bytes.

    ``value`` by tag: NULL_DATA/DONT_CARE ``None``; ARRAY/STRUCTURE ``tuple[Data, ...]``;
    BOOLEAN ``bool``; BIT_STRING ``BitString``; the integer types, BCD and ENUM ``int``;
    FLOAT32/64 ``float``; OCTET_STRING ``bytes``; VISIBLE/UTF8_STRING ``str``;
    DATE_TIME/DATE/TIME the ``clock`` values; COMPACT_ARRAY ``CompactArray``.
    Ranges are checked by ``encode_data`` (``EncodeError``), not here, to keep decoding lean.

    A ``NamedTuple`` rather than a frozen dataclass: it is immutable and typed all the
    same, and builds 3× faster, which benchmarks/bench_dlms_data.py showed matters (a
    profile buffer is hundreds of these).
    """

    tag: DataType
    value: DataValue = None

    def to_python(self) -> object:
        """Plain Python: containers become lists, everything else is the value itself."""
        if type(self.value) is tuple:
            return [item.to_python() for item in self.value]
        return self.value
