"""SET service APDUs (Green Book xDLMS, dlms.md §E4)::

SET-Request-Normal                  C1 01 iid descriptor access-selection Data
SET-Request-With-First-Datablock    C1 02 iid descriptor access-selection DataBlock-SA
SET-Request-With-Datablock          C1 03 iid DataBlock-SA
SET-Request-With-List               C1 04 iid count {descriptor access}*count count Data*count
DataBlock-SA = last-block(1) block-number(4) var-length raw-data

SET-Response-Normal                 C5 01 iid dar
SET-Response-Datablock              C5 02 iid block-number(4)
SET-Response-Last-Datablock         C5 03 iid dar block-number(4)
SET-Response-With-List              C5 05 iid count dar*count
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import DecodeError, TruncatedError
from ..axdr import Data, decode_data, decode_length, encode_data, encode_length
from ..enums import DataAccessResult
from .common import (
    CosemAttributeDescriptor,
    InvokeIdAndPriority,
    SelectiveAccess,
    byte_at,
    check_end,
    check_header,
    decode_access,
    decode_attribute_descriptor,
    encode_access,
    enum_at,
    invoke_id_at,
    u32_at,
    u32_bytes,
)
from .tags import ApduTag

__all__ = [
    "DataBlock",
    "SetRequest",
    "SetRequestNormal",
    "SetRequestWithDatablock",
    "SetRequestWithFirstDatablock",
    "SetRequestWithList",
    "SetResponse",
    "SetResponseDatablock",
    "SetResponseLastDatablock",
    "SetResponseNormal",
    "SetResponseWithList",
    "decode_set_request",
    "decode_set_response",
]

_REQ = ApduTag.SET_REQUEST
_RESP = ApduTag.SET_RESPONSE


@dataclass(frozen=True, slots=True)
class DataBlock:
    """DataBlock-SA: one part of a long SET value."""

    last_block: bool
    block_number: int
    raw_data: bytes

    def to_bytes(self) -> bytes:
        head = bytes((1 if self.last_block else 0,)) + u32_bytes(self.block_number)
        return head + encode_length(len(self.raw_data)) + self.raw_data


def _decode_block(buf: bytes | memoryview, offset: int) -> tuple[DataBlock, int]:
    last = byte_at(buf, offset)
    if last > 1:
        raise DecodeError(f"last-block must be 0 or 1, got {last}", offset=offset)
    block_number = u32_at(buf, offset + 1)
    length, offset = decode_length(buf, offset + 5)
    end = offset + length
    if end > len(buf):
        raise TruncatedError("raw-data truncated", offset=len(buf))
    return DataBlock(last == 1, block_number, bytes(buf[offset:end])), end


@dataclass(frozen=True, slots=True)
class SetRequestNormal:
    invoke_id_and_priority: InvokeIdAndPriority
    attribute: CosemAttributeDescriptor
    value: Data
    access: SelectiveAccess | None = None

    def to_bytes(self) -> bytes:
        head = bytes((_REQ, 1, self.invoke_id_and_priority.value)) + self.attribute.to_bytes()
        return head + encode_access(self.access) + encode_data(self.value)


@dataclass(frozen=True, slots=True)
class SetRequestWithFirstDatablock:
    invoke_id_and_priority: InvokeIdAndPriority
    attribute: CosemAttributeDescriptor
    block: DataBlock
    access: SelectiveAccess | None = None

    def to_bytes(self) -> bytes:
        head = bytes((_REQ, 2, self.invoke_id_and_priority.value)) + self.attribute.to_bytes()
        return head + encode_access(self.access) + self.block.to_bytes()


@dataclass(frozen=True, slots=True)
class SetRequestWithDatablock:
    invoke_id_and_priority: InvokeIdAndPriority
    block: DataBlock

    def to_bytes(self) -> bytes:
        return bytes((_REQ, 3, self.invoke_id_and_priority.value)) + self.block.to_bytes()


@dataclass(frozen=True, slots=True)
class SetRequestWithList:
    invoke_id_and_priority: InvokeIdAndPriority
    attributes: tuple[tuple[CosemAttributeDescriptor, SelectiveAccess | None], ...]
    values: tuple[Data, ...]

    def __post_init__(self) -> None:
        if len(self.attributes) != len(self.values):
            raise ValueError("SET-Request-With-List needs one value per attribute")

    def to_bytes(self) -> bytes:
        out = bytearray((_REQ, 4, self.invoke_id_and_priority.value))
        out += encode_length(len(self.attributes))
        for attribute, access in self.attributes:
            out += attribute.to_bytes() + encode_access(access)
        out += encode_length(len(self.values))
        for value in self.values:
            out += encode_data(value)
        return bytes(out)


SetRequest = (
    SetRequestNormal | SetRequestWithFirstDatablock | SetRequestWithDatablock | SetRequestWithList
)


@dataclass(frozen=True, slots=True)
class SetResponseNormal:
    invoke_id_and_priority: InvokeIdAndPriority
    result: DataAccessResult

    def to_bytes(self) -> bytes:
        return bytes((_RESP, 1, self.invoke_id_and_priority.value, self.result))


@dataclass(frozen=True, slots=True)
class SetResponseDatablock:
    invoke_id_and_priority: InvokeIdAndPriority
    block_number: int

    def to_bytes(self) -> bytes:
        return bytes((_RESP, 2, self.invoke_id_and_priority.value)) + u32_bytes(self.block_number)


@dataclass(frozen=True, slots=True)
class SetResponseLastDatablock:
    invoke_id_and_priority: InvokeIdAndPriority
    result: DataAccessResult
    block_number: int

    def to_bytes(self) -> bytes:
        head = bytes((_RESP, 3, self.invoke_id_and_priority.value, self.result))
        return head + u32_bytes(self.block_number)


@dataclass(frozen=True, slots=True)
class SetResponseWithList:
    invoke_id_and_priority: InvokeIdAndPriority
    results: tuple[DataAccessResult, ...]

    def to_bytes(self) -> bytes:
        head = bytes((_RESP, 5, self.invoke_id_and_priority.value))
        return head + encode_length(len(self.results)) + bytes(self.results)


SetResponse = (
    SetResponseNormal | SetResponseDatablock | SetResponseLastDatablock | SetResponseWithList
)


def decode_set_request(buf: bytes | memoryview) -> SetRequest:
    """Decode a whole SET-Request APDU (``C1 …``)."""
    choice = check_header(buf, _REQ, "SET-Request")
    iid = invoke_id_at(buf, 2)
    request: SetRequest
    if choice in (1, 2):
        attribute, offset = decode_attribute_descriptor(buf, 3)
        access, offset = decode_access(buf, offset)
        if choice == 1:
            value, offset = decode_data(buf, offset)
            request = SetRequestNormal(iid, attribute, value, access)
        else:
            block, offset = _decode_block(buf, offset)
            request = SetRequestWithFirstDatablock(iid, attribute, block, access)
    elif choice == 3:
        block, offset = _decode_block(buf, 3)
        request = SetRequestWithDatablock(iid, block)
    elif choice == 4:
        count, offset = decode_length(buf, 3)
        if count * 11 > len(buf) - offset:  # a descriptor, its access flag and a value
            raise DecodeError("SET-Request-With-List count exceeds the APDU", offset=3)
        attributes = []
        for _ in range(count):
            attribute, offset = decode_attribute_descriptor(buf, offset)
            access, offset = decode_access(buf, offset)
            attributes.append((attribute, access))
        value_count, offset = decode_length(buf, offset)
        if value_count != count:
            raise DecodeError(f"{count} attributes but {value_count} values", offset=offset)
        values = []
        for _ in range(count):
            value, offset = decode_data(buf, offset)
            values.append(value)
        request = SetRequestWithList(iid, tuple(attributes), tuple(values))
    else:
        raise DecodeError(f"unknown SET-Request choice {choice}", offset=1)
    check_end(buf, offset)
    return request


def decode_set_response(buf: bytes | memoryview) -> SetResponse:
    """Decode a whole SET-Response APDU (``C5 …``)."""
    choice = check_header(buf, _RESP, "SET-Response")
    iid = invoke_id_at(buf, 2)
    response: SetResponse
    if choice == 1:
        response, offset = SetResponseNormal(iid, enum_at(buf, 3, DataAccessResult)), 4
    elif choice == 2:
        response, offset = SetResponseDatablock(iid, u32_at(buf, 3)), 7
    elif choice == 3:
        result = enum_at(buf, 3, DataAccessResult)
        response, offset = SetResponseLastDatablock(iid, result, u32_at(buf, 4)), 8
    elif choice == 5:
        count, offset = decode_length(buf, 3)
        if count > len(buf) - offset:
            raise TruncatedError("SET-Response-With-List truncated", offset=len(buf))
        results = tuple(enum_at(buf, offset + i, DataAccessResult) for i in range(count))
        response, offset = SetResponseWithList(iid, results), offset + count
    else:
        raise DecodeError(f"unknown SET-Response choice {choice}", offset=1)
    check_end(buf, offset)
    return response
