"""Pieces shared by the GET/SET/ACTION/notification APDUs (Green Book xDLMS, dlms.md §E).

* Invoke-Id-And-Priority (1 byte): bits 0–3 invoke-id, 4–5 reserved, 6 service-class
  (1 = confirmed), 7 priority (1 = high). Held as the raw byte so a server's echo
  round-trips exactly; clients correlate on the low 4 bits.
* Long-Invoke-Id-And-Priority (4 bytes, Data-Notification): bits 0–23 invoke-id, 28
  self-descriptive, 29 processing-option, 30 service-class, 31 priority.
* Cosem-Attribute-Descriptor: class-id(2) instance-id(6, OBIS) attribute-id(1, int8).
* Selective-Access-Descriptor: ``00`` absent | ``01`` access-selector(1) Data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

from ...errors import DecodeError, EncodeError, TruncatedError
from ..axdr import Data, decode_data, encode_data
from ..obis import Obis

__all__ = [
    "CosemAttributeDescriptor",
    "CosemMethodDescriptor",
    "InvokeIdAndPriority",
    "LongInvokeIdAndPriority",
    "SelectiveAccess",
]

_E = TypeVar("_E", bound=IntEnum)
_DESCRIPTOR = struct.Struct(">H6Bb")
_U32 = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class InvokeIdAndPriority:
    """The 1-byte Invoke-Id-And-Priority, kept raw; see ``make`` to build one."""

    value: int

    def __post_init__(self) -> None:
        if type(self.value) is not int or not 0 <= self.value <= 0xFF:
            raise ValueError(f"invoke-id-and-priority {self.value!r} is not a byte")

    @classmethod
    def make(
        cls, invoke_id: int, *, confirmed: bool = True, high_priority: bool = True
    ) -> InvokeIdAndPriority:
        """Build the byte; ``invoke_id`` must fit the 4 bits (0..15)."""
        if not 0 <= invoke_id <= 15:
            raise ValueError(f"invoke-id {invoke_id} outside 0..15")
        return _IIDS[invoke_id | (0x40 if confirmed else 0) | (0x80 if high_priority else 0)]

    @property
    def invoke_id(self) -> int:
        return self.value & 0x0F

    @property
    def confirmed(self) -> bool:
        return bool(self.value & 0x40)

    @property
    def high_priority(self) -> bool:
        return bool(self.value & 0x80)


#: every possible byte, built once: decoding an invoke-id allocates nothing
_IIDS: tuple[InvokeIdAndPriority, ...] = tuple(InvokeIdAndPriority(b) for b in range(256))


def invoke_id_at(buf: bytes | memoryview, offset: int) -> InvokeIdAndPriority:
    return _IIDS[buf[offset]]


@dataclass(frozen=True, slots=True)
class LongInvokeIdAndPriority:
    """The 4-byte Long-Invoke-Id-And-Priority of Data-Notification, kept raw."""

    value: int

    def __post_init__(self) -> None:
        if type(self.value) is not int or not 0 <= self.value <= 0xFFFFFFFF:
            raise ValueError(f"long-invoke-id-and-priority {self.value!r} is not a uint32")

    @property
    def invoke_id(self) -> int:
        return self.value & 0xFFFFFF

    @property
    def self_descriptive(self) -> bool:
        return bool(self.value & (1 << 28))

    @property
    def processing_option(self) -> bool:
        return bool(self.value & (1 << 29))

    @property
    def confirmed(self) -> bool:
        return bool(self.value & (1 << 30))

    @property
    def high_priority(self) -> bool:
        return bool(self.value & (1 << 31))


@dataclass(frozen=True, slots=True)
class CosemAttributeDescriptor:
    """Which attribute: interface class, logical name and attribute index."""

    class_id: int
    obis: Obis
    attribute_id: int

    def __post_init__(self) -> None:
        _check_descriptor(self.class_id, self.attribute_id, "attribute")

    def to_bytes(self) -> bytes:
        return _pack_descriptor(self.class_id, self.obis, self.attribute_id)


@dataclass(frozen=True, slots=True)
class CosemMethodDescriptor:
    """Which method: interface class, logical name and method index."""

    class_id: int
    obis: Obis
    method_id: int

    def __post_init__(self) -> None:
        _check_descriptor(self.class_id, self.method_id, "method")

    def to_bytes(self) -> bytes:
        return _pack_descriptor(self.class_id, self.obis, self.method_id)


def _check_descriptor(class_id: int, index: int, what: str) -> None:
    if not 0 <= class_id <= 0xFFFF:
        raise ValueError(f"class-id {class_id} outside 0..65535")
    # attribute/method ids are int8 on the wire; negative ids are manufacturer-specific
    if not -128 <= index <= 127:
        raise ValueError(f"{what}-id {index} outside -128..127")


def _pack_descriptor(class_id: int, obis: Obis, index: int) -> bytes:
    return _DESCRIPTOR.pack(class_id, obis.a, obis.b, obis.c, obis.d, obis.e, obis.f, index)


def decode_descriptor(buf: bytes | memoryview, offset: int) -> tuple[int, Obis, int, int]:
    """``(class_id, obis, index, end offset)`` of an attribute or method descriptor."""
    end = offset + _DESCRIPTOR.size
    if end > len(buf):
        raise TruncatedError("COSEM descriptor truncated", offset=len(buf))
    class_id, a, b, c, d, e, f, index = _DESCRIPTOR.unpack_from(buf, offset)
    return class_id, Obis(a, b, c, d, e, f), index, end


def decode_attribute_descriptor(
    buf: bytes | memoryview, offset: int
) -> tuple[CosemAttributeDescriptor, int]:
    class_id, obis, attribute_id, end = decode_descriptor(buf, offset)
    return CosemAttributeDescriptor(class_id, obis, attribute_id), end


@dataclass(frozen=True, slots=True)
class SelectiveAccess:
    """An access-selector and its parameters (e.g. Profile generic selector 1 or 2)."""

    selector: int
    parameters: Data

    def __post_init__(self) -> None:
        if not 0 <= self.selector <= 0xFF:
            raise ValueError(f"access-selector {self.selector} outside 0..255")


def encode_access(access: SelectiveAccess | None) -> bytes:
    if access is None:
        return b"\x00"
    return bytes((1, access.selector)) + encode_data(access.parameters)


def decode_access(buf: bytes | memoryview, offset: int) -> tuple[SelectiveAccess | None, int]:
    flag = byte_at(buf, offset)
    if flag == 0:
        return None, offset + 1
    if flag != 1:
        raise DecodeError(f"access-selection flag must be 0 or 1, got {flag}", offset=offset)
    selector = byte_at(buf, offset + 1)
    parameters, end = decode_data(buf, offset + 2)
    return SelectiveAccess(selector, parameters), end


def byte_at(buf: bytes | memoryview, offset: int) -> int:
    """``buf[offset]``, or ``TruncatedError`` past the end."""
    if offset >= len(buf):
        raise TruncatedError("APDU truncated", offset=offset)
    return buf[offset]


def u32_at(buf: bytes | memoryview, offset: int) -> int:
    if offset + 4 > len(buf):
        raise TruncatedError("APDU truncated", offset=len(buf))
    value: int = _U32.unpack_from(buf, offset)[0]
    return value


def check_end(buf: bytes | memoryview, end: int) -> None:
    """An APDU is decoded from exactly its bytes: anything after it is an error."""
    if end != len(buf):
        raise DecodeError(f"{len(buf) - end} trailing bytes after the APDU", offset=end)


def check_header(buf: bytes | memoryview, tag: int, name: str) -> int:
    """Check the APDU tag; return the choice byte (the service variant)."""
    if len(buf) < 3:
        raise TruncatedError(f"{name} needs at least 3 bytes", offset=len(buf))
    if buf[0] != tag:
        raise DecodeError(f"not a {name}: tag 0x{buf[0]:02X}", offset=0)
    return buf[1]


def enum_at(buf: bytes | memoryview, offset: int, enum: type[_E]) -> _E:
    """Look up a 1-byte enumerated value; an unknown number is a ``DecodeError``."""
    value = byte_at(buf, offset)
    try:
        return enum(value)
    except ValueError:
        raise DecodeError(f"unknown {enum.__name__} {value}", offset=offset) from None


def optional_data(data: Data | None) -> bytes:
    """OPTIONAL Data: ``00`` absent, ``01`` + the value."""
    return b"\x00" if data is None else b"\x01" + encode_data(data)


def u32_bytes(value: int) -> bytes:
    try:
        return _U32.pack(value)
    except struct.error:
        raise EncodeError(f"{value} does not fit in 32 bits") from None
