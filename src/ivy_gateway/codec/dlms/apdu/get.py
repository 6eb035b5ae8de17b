"""GET service APDUs (Green Book xDLMS, dlms.md §E2)::

    GET-Request-Normal      C0 01 iid descriptor(9) access-selection
    GET-Request-Next        C0 02 iid block-number(4)
    GET-Request-With-List   C0 03 iid count {descriptor access-selection}*count
    GET-Response-Normal     C4 01 iid 00 Data | 01 data-access-result
    GET-Response-With-Datablock
                            C4 02 iid last-block(1) block-number(4) 00 var-length raw | 01 dar
    GET-Response-With-List  C4 03 iid count {00 Data | 01 dar}*count

``GetBlockReassembler`` joins the raw-data blocks of a long GET (block transfer, §E2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ...errors import DecodeError, EncodeError, TruncatedError
from ..axdr import _decode, decode_data, decode_length, encode_data, encode_length
from ..data import Data
from ..enums import DataAccessResult
from .common import (
    _IIDS,
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
    "GetBlockReassembler",
    "GetRequest",
    "GetRequestNext",
    "GetRequestNormal",
    "GetRequestWithList",
    "GetResponse",
    "GetResponseNormal",
    "GetResponseWithDatablock",
    "GetResponseWithList",
    "decode_get_request",
    "decode_get_response",
]

_new_tuple = tuple.__new__  # skips NamedTuple.__new__'s Python frame on the hot path
_REQ = ApduTag.GET_REQUEST
_RESP = ApduTag.GET_RESPONSE

AttributeSelection = tuple[CosemAttributeDescriptor, SelectiveAccess | None]


@dataclass(frozen=True, slots=True)
class GetRequestNormal:
    invoke_id_and_priority: InvokeIdAndPriority
    attribute: CosemAttributeDescriptor
    access: SelectiveAccess | None = None

    def to_bytes(self) -> bytes:
        head = bytes((_REQ, 1, self.invoke_id_and_priority.value))
        return head + self.attribute.to_bytes() + encode_access(self.access)


@dataclass(frozen=True, slots=True)
class GetRequestNext:
    invoke_id_and_priority: InvokeIdAndPriority
    block_number: int

    def to_bytes(self) -> bytes:
        return bytes((_REQ, 2, self.invoke_id_and_priority.value)) + u32_bytes(self.block_number)


@dataclass(frozen=True, slots=True)
class GetRequestWithList:
    invoke_id_and_priority: InvokeIdAndPriority
    attributes: tuple[AttributeSelection, ...]

    def to_bytes(self) -> bytes:
        out = bytearray((_REQ, 3, self.invoke_id_and_priority.value))
        out += encode_length(len(self.attributes))
        for attribute, access in self.attributes:
            out += attribute.to_bytes() + encode_access(access)
        return bytes(out)


GetRequest = GetRequestNormal | GetRequestNext | GetRequestWithList


class GetResponseNormal(NamedTuple):
    """The reply to nearly every poll; a ``NamedTuple`` (immutable, typed) rather than a
    frozen dataclass because it builds 3× faster (benchmarks/bench_dlms_data.py)."""

    invoke_id_and_priority: InvokeIdAndPriority
    result: Data | DataAccessResult

    def to_bytes(self) -> bytes:
        return bytes((_RESP, 1, self.invoke_id_and_priority.value)) + encode_data_result(
            self.result
        )


@dataclass(frozen=True, slots=True)
class GetResponseWithDatablock:
    invoke_id_and_priority: InvokeIdAndPriority
    last_block: bool
    block_number: int
    raw_data: bytes | DataAccessResult

    def to_bytes(self) -> bytes:
        out = bytearray((_RESP, 2, self.invoke_id_and_priority.value, 1 if self.last_block else 0))
        out += u32_bytes(self.block_number)
        if isinstance(self.raw_data, DataAccessResult):
            out += bytes((1, self.raw_data))
        else:
            out += b"\x00" + encode_length(len(self.raw_data)) + self.raw_data
        return bytes(out)


@dataclass(frozen=True, slots=True)
class GetResponseWithList:
    invoke_id_and_priority: InvokeIdAndPriority
    results: tuple[Data | DataAccessResult, ...]

    def to_bytes(self) -> bytes:
        out = bytearray((_RESP, 3, self.invoke_id_and_priority.value))
        out += encode_length(len(self.results))
        for result in self.results:
            out += encode_data_result(result)
        return bytes(out)


GetResponse = GetResponseNormal | GetResponseWithDatablock | GetResponseWithList


def encode_data_result(result: Data | DataAccessResult) -> bytes:
    """Get-Data-Result: ``00`` Data | ``01`` data-access-result."""
    if isinstance(result, DataAccessResult):
        return bytes((1, result))
    if isinstance(result, Data):
        return b"\x00" + encode_data(result)
    raise EncodeError(f"a GET result is Data or DataAccessResult, got {result!r}")


def decode_data_result(buf: bytes | memoryview, offset: int) -> tuple[Data | DataAccessResult, int]:
    choice = byte_at(buf, offset)
    if choice == 0:
        return decode_data(buf, offset + 1)
    if choice == 1:
        return enum_at(buf, offset + 1, DataAccessResult), offset + 2
    raise DecodeError(f"Get-Data-Result choice must be 0 or 1, got {choice}", offset=offset)


def decode_get_request(buf: bytes | memoryview) -> GetRequest:
    """Decode a whole GET-Request APDU (``C0 …``)."""
    choice = check_header(buf, _REQ, "GET-Request")
    iid = invoke_id_at(buf, 2)
    request: GetRequest
    if choice == 1:
        attribute, offset = decode_attribute_descriptor(buf, 3)
        access, offset = decode_access(buf, offset)
        request = GetRequestNormal(iid, attribute, access)
    elif choice == 2:
        request, offset = GetRequestNext(iid, u32_at(buf, 3)), 7
    elif choice == 3:
        count, offset = decode_length(buf, 3)
        if count * 10 > len(buf) - offset:  # each item is at least 10 bytes
            raise DecodeError("GET-Request-With-List count exceeds the APDU", offset=3)
        items = []
        for _ in range(count):
            attribute, offset = decode_attribute_descriptor(buf, offset)
            access, offset = decode_access(buf, offset)
            items.append((attribute, access))
        request = GetRequestWithList(iid, tuple(items))
    else:
        raise DecodeError(f"unknown GET-Request choice {choice}", offset=1)
    check_end(buf, offset)
    return request


def decode_get_response(buf: bytes | memoryview) -> GetResponse:
    """Decode a whole GET-Response APDU (``C4 …``)."""
    size = len(buf)
    if size > 4 and buf[0] == _RESP and buf[1] == 1 and buf[3] == 0:
        # GET-Response-Normal with data, the reply to nearly every poll: no detours
        data, end = _decode(buf, 4, size, 0)
        if end != size:
            check_end(buf, end)
        return _new_tuple(GetResponseNormal, (_IIDS[buf[2]], data))
    choice = check_header(buf, _RESP, "GET-Response")
    iid = invoke_id_at(buf, 2)
    response: GetResponse
    if choice == 1:
        result, offset = decode_data_result(buf, 3)
        response = GetResponseNormal(iid, result)
    elif choice == 2:
        last = byte_at(buf, 3)
        if last > 1:
            raise DecodeError(f"last-block must be 0 or 1, got {last}", offset=3)
        block_number = u32_at(buf, 4)
        raw: bytes | DataAccessResult
        kind = byte_at(buf, 8)
        if kind == 0:
            length, offset = decode_length(buf, 9)
            if offset + length > len(buf):
                raise TruncatedError("raw-data truncated", offset=len(buf))
            raw = bytes(buf[offset : offset + length])
            offset += length
        elif kind == 1:
            raw, offset = enum_at(buf, 9, DataAccessResult), 10
        else:
            raise DecodeError(f"DataBlock-G result choice must be 0 or 1, got {kind}", offset=8)
        response = GetResponseWithDatablock(iid, last == 1, block_number, raw)
    elif choice == 3:
        count, offset = decode_length(buf, 3)
        if count * 2 > len(buf) - offset:  # each result is at least 2 bytes
            raise DecodeError("GET-Response-With-List count exceeds the APDU", offset=3)
        results = []
        for _ in range(count):
            result, offset = decode_data_result(buf, offset)
            results.append(result)
        response = GetResponseWithList(iid, tuple(results))
    else:
        raise DecodeError(f"unknown GET-Response choice {choice}", offset=1)
    check_end(buf, offset)
    return response


class GetBlockReassembler:
    """Joins GET-Response-With-Datablock parts into one Data value (sans-IO).

    Feed each block as it arrives: ``feed`` returns ``None`` while more blocks are due
    (send ``next_request(iid)``), the decoded ``Data`` after the last block, or the
    ``DataAccessResult`` when the server aborts the transfer. Block numbers must run
    1, 2, 3 …; anything else is a ``DecodeError``, as is growing past ``max_size``.
    """

    __slots__ = ("_block", "_done", "_parts", "_size", "max_size")

    def __init__(self, max_size: int = 1 << 20) -> None:
        self.max_size = max_size
        self._parts: list[bytes] = []
        self._size = 0
        self._block = 0
        self._done = False

    @property
    def block_number(self) -> int:
        """The number of the last block accepted (0 before the first)."""
        return self._block

    def next_request(self, invoke_id_and_priority: InvokeIdAndPriority) -> GetRequestNext:
        """The GET-Request-Next acknowledging the last block accepted."""
        return GetRequestNext(invoke_id_and_priority, self._block)

    def feed(self, response: GetResponseWithDatablock) -> Data | DataAccessResult | None:
        if self._done:
            raise DecodeError("block transfer already complete")
        if response.block_number != self._block + 1:
            raise DecodeError(
                f"expected block {self._block + 1}, got block {response.block_number}"
            )
        raw = response.raw_data
        if isinstance(raw, DataAccessResult):
            self._done = True
            return raw
        self._size += len(raw)
        if self._size > self.max_size:
            raise DecodeError(f"block transfer exceeds {self.max_size} bytes")
        self._parts.append(raw)
        self._block = response.block_number
        if not response.last_block:
            return None
        self._done = True
        joined = b"".join(self._parts)
        data, end = decode_data(joined)
        check_end(joined, end)
        return data
