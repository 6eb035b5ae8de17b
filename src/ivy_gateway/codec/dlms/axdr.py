"""A-XDR encoding of COSEM ``Data`` (IEC 62056-6-2 / Blue Book §4.1.5, dlms.md Part C).

Every value is ``tag`` + content::

    00            null-data                       (no content)
    01 / 02       array / structure               count(var-length) + count × Data
    04            bit-string                      bits(var-length) + ceil(bits/8) bytes
    09 / 0A / 0C  octet- / visible- / utf8-string length(var-length) + bytes
    13            compact-array                   type-description + length + packed contents
    03 0D 0F 11 16  boolean, bcd, integer, unsigned, enum       1 byte
    10 12         long, long-unsigned             2 bytes big-endian
    05 06 17      double-long(-unsigned), float32 4 bytes
    14 15 18      long64(-unsigned), float64      8 bytes
    19 / 1A / 1B  date-time / date / time         12 / 5 / 4 bytes (no length byte)
    FF            dont-care                       (selective-access filters only)

var-length (as BER): ``00``..``7F`` the value; ``81 nn``, ``82 nn nn``, ``83 …``, ``84 …``.

Decoding is bounded: nesting depth is capped and a count is checked against the bytes that
remain *before* anything is allocated, so a hostile ``01 84 FF FF FF FF`` costs nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..errors import DecodeError, EncodeError, TruncatedError
from .clock import CosemDate, CosemDateTime, CosemTime
from .data import BitString, CompactArray, Data, DataType, DataValue

__all__ = [
    "MAX_DEPTH",
    "BitString",
    "CompactArray",
    "Data",
    "DataType",
    "DataValue",
    "decode_data",
    "decode_length",
    "encode_data",
    "encode_length",
    "skip_data",
]

#: Deepest nesting of arrays/structures accepted (profile buffers need 3; 32 is generous).
MAX_DEPTH = 32


# Content shape per tag byte, for skip_data: >= 0 fixed size; the negatives name a layout.
_VAR_BYTES = -1  # var-length + that many bytes
_BITS = -2  # var-length bit count + ceil(bits / 8) bytes
_CONTAINER = -3  # var-length count + count Data values
_COMPACT = -4  # type-description + var-length + bytes
_INVALID = -5

_SHAPE: tuple[int, ...] = tuple(
    {
        0: 0,
        1: _CONTAINER,
        2: _CONTAINER,
        3: 1,
        4: _BITS,
        5: 4,
        6: 4,
        9: _VAR_BYTES,
        10: _VAR_BYTES,
        12: _VAR_BYTES,
        13: 1,
        15: 1,
        16: 2,
        17: 1,
        18: 2,
        19: _COMPACT,
        20: 8,
        21: 8,
        22: 1,
        23: 4,
        24: 8,
        25: 12,
        26: 5,
        27: 4,
        255: 0,
    }.get(tag, _INVALID)
    for tag in range(256)
)

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def decode_length(buf: bytes | memoryview, offset: int) -> tuple[int, int]:
    """Decode an A-XDR var-length at ``offset``; return ``(value, end offset)``.

    Long forms that are not minimal (``81 05``) are accepted: meters emit them and the
    value is unambiguous; ``encode_length`` always writes the minimal form.
    """
    try:
        first = buf[offset]
    except IndexError:
        raise TruncatedError("length expected", offset=offset) from None
    if first < 0x80:
        return first, offset + 1
    size = first & 0x7F
    if size == 0 or size > 4:  # 0x80 is BER "indefinite", never valid in A-XDR
        raise DecodeError(f"invalid length byte 0x{first:02X}", offset=offset)
    end = offset + 1 + size
    if end > len(buf):
        raise TruncatedError("length truncated", offset=offset)
    return int.from_bytes(buf[offset + 1 : end], "big"), end


def encode_length(value: int) -> bytes:
    """Minimal A-XDR var-length for ``value`` (0 ≤ value < 2**32)."""
    if value < 0x80:
        if value < 0:
            raise EncodeError(f"negative length {value}")
        return bytes((value,))
    if value <= 0xFF:
        return bytes((0x81, value))
    if value <= 0xFFFF:
        return b"\x82" + _U16.pack(value)
    if value <= 0xFFFFFF:
        return b"\x83" + value.to_bytes(3, "big")
    if value <= 0xFFFFFFFF:
        return b"\x84" + _U32.pack(value)
    raise EncodeError(f"length {value} does not fit in 4 bytes")


def skip_data(buf: bytes | memoryview, offset: int = 0) -> int:
    """Return the end offset of the one Data value that starts at ``offset``.

    Raises ``TruncatedError`` if ``buf`` ends first (more bytes may complete it) and
    ``DecodeError`` for an unknown tag. No object is built: a stream reader uses this to
    find APDU boundaries (dlms.md §A3). Containers are walked with a pending-value counter
    rather than recursion, so nesting depth costs nothing here.
    """
    size = len(buf)
    pending = 1
    while pending:
        pending -= 1
        if offset >= size:
            raise TruncatedError("data value expected", offset=offset)
        shape = _SHAPE[buf[offset]]
        if shape >= 0:
            offset += 1 + shape
        elif shape == _VAR_BYTES:
            count, offset = decode_length(buf, offset + 1)
            offset += count
        elif shape == _CONTAINER:
            count, offset = decode_length(buf, offset + 1)
            pending += count
            # every value is at least its tag byte: a count beyond the bytes left
            # cannot be satisfied yet, whatever its size
            if pending > size - offset:
                raise TruncatedError("container count exceeds the bytes present", offset=offset)
        elif shape == _BITS:
            bits, offset = decode_length(buf, offset + 1)
            offset += (bits + 7) >> 3
        elif shape == _COMPACT:
            offset = _skip_type_description(buf, offset + 1)
            count, offset = decode_length(buf, offset)
            offset += count
        else:
            raise DecodeError(f"invalid data tag 0x{buf[offset]:02X}", offset=offset)
    if offset > size:
        raise TruncatedError("data value truncated", offset=size)
    return offset


def _skip_type_description(buf: bytes | memoryview, offset: int) -> int:
    """End offset of a compact-array TypeDescription (Blue Book §4.1.6.1)."""
    size = len(buf)
    pending = 1
    while pending:
        pending -= 1
        if offset >= size:
            raise TruncatedError("type description expected", offset=offset)
        tag = buf[offset]
        shape = _SHAPE[tag]
        if tag == DataType.ARRAY:  # array: number-of-elements Unsigned16, then one type
            offset += 3
            pending += 1
        elif tag == DataType.STRUCTURE:  # structure: SEQUENCE OF TypeDescription
            count, offset = decode_length(buf, offset + 1)
            pending += count
            if pending > size - offset:
                raise TruncatedError("type description count exceeds the bytes present")
        elif shape == _INVALID or tag == DataType.COMPACT_ARRAY:
            raise DecodeError(f"invalid type description tag 0x{tag:02X}", offset=offset)
        else:
            offset += 1
    # every branch that moves past the end leaves a pending type, caught at the loop top
    return offset


# -- decoding -------------------------------------------------------------------------

_new_data = tuple.__new__  # Data(tag, value) without NamedTuple.__new__'s Python frame
_S_I8, _S_I16, _S_I32, _S_I64 = (struct.Struct(f">{c}") for c in "bhiq")
_S_U8, _S_U64, _S_F32, _S_F64 = (struct.Struct(f">{c}") for c in "BQfd")
_NUMERIC: dict[DataType, struct.Struct] = {
    DataType.DOUBLE_LONG: _S_I32,
    DataType.DOUBLE_LONG_UNSIGNED: _U32,
    DataType.BCD: _S_U8,
    DataType.INTEGER: _S_I8,
    DataType.LONG: _S_I16,
    DataType.UNSIGNED: _S_U8,
    DataType.LONG_UNSIGNED: _U16,
    DataType.LONG64: _S_I64,
    DataType.LONG64_UNSIGNED: _S_U64,
    DataType.ENUM: _S_U8,
    DataType.FLOAT32: _S_F32,
    DataType.FLOAT64: _S_F64,
}
_Unpack = Callable[[bytes | memoryview, int], tuple[int | float]]
# per tag byte: (tag member, unpack_from, size) for the fixed-size numbers, else None
_FIXED: tuple[tuple[DataType, _Unpack, int] | None, ...] = tuple(
    (DataType(t), _NUMERIC[DataType(t)].unpack_from, _NUMERIC[DataType(t)].size)
    if t in _NUMERIC
    else None
    for t in range(256)
)
_NULL = Data(DataType.NULL_DATA)
_OCTET_STRING = DataType.OCTET_STRING
_CONTAINERS = (DataType.NULL_DATA, DataType.ARRAY, DataType.STRUCTURE)  # by tag byte 1, 2
_DONT_CARE = Data(DataType.DONT_CARE)
_TRUE = Data(DataType.BOOLEAN, True)
_FALSE = Data(DataType.BOOLEAN, False)
_CLOCK_TYPES: dict[int, type[CosemDateTime | CosemDate | CosemTime]] = {
    DataType.DATE_TIME: CosemDateTime,
    DataType.DATE: CosemDate,
    DataType.TIME: CosemTime,
}


def decode_data(buf: bytes | memoryview, offset: int = 0) -> tuple[Data, int]:
    """Decode one Data value at ``offset``; return it and the end offset.

    Raises ``TruncatedError`` when ``buf`` ends early, ``DecodeError`` for invalid bytes.
    """
    return _decode(buf, offset, len(buf), 0)


def _decode(buf: bytes | memoryview, offset: int, size: int, depth: int) -> tuple[Data, int]:
    # The hot path (numbers, octet-strings, containers of them) is inlined on purpose:
    # a Python call per value would cost more than the value itself (see benchmarks/).
    if offset >= size:
        raise TruncatedError("data value expected", offset=offset)
    tag = buf[offset]
    fixed = _FIXED[tag]
    if fixed is not None:
        member, unpack, width = fixed
        end = offset + 1 + width
        if end > size:
            raise TruncatedError("data value truncated", offset=size)
        return _new_data(Data, (member, unpack(buf, offset + 1)[0])), end
    if tag == 1 or tag == 2:
        if depth >= MAX_DEPTH:
            raise DecodeError(f"data nested deeper than {MAX_DEPTH}", offset=offset)
        if offset + 1 < size and buf[offset + 1] < 0x80:
            count, offset = buf[offset + 1], offset + 2
        else:
            count, offset = decode_length(buf, offset + 1)
        if count > size - offset:  # each element needs at least its tag byte
            raise TruncatedError("container count exceeds the bytes present", offset=offset)
        items: list[Data] = []
        append = items.append
        depth += 1
        for _ in range(count):
            if offset >= size:
                raise TruncatedError("data value expected", offset=offset)
            item_tag = buf[offset]
            fixed = _FIXED[item_tag]
            if fixed is not None:
                member, unpack, width = fixed
                end = offset + 1 + width
                if end > size:
                    raise TruncatedError("data value truncated", offset=size)
                append(_new_data(Data, (member, unpack(buf, offset + 1)[0])))
                offset = end
            elif item_tag == 9 and offset + 1 < size and buf[offset + 1] < 0x80:
                end = offset + 2 + buf[offset + 1]  # short octet-string (OBIS, date-time)
                if end > size:
                    raise TruncatedError("string truncated", offset=size)
                raw = buf[offset + 2 : end]
                append(_new_data(Data, (_OCTET_STRING, raw if type(raw) is bytes else bytes(raw))))
                offset = end
            else:
                item, offset = _decode(buf, offset, size, depth)
                append(item)
        return _new_data(Data, (_CONTAINERS[tag], tuple(items))), offset
    if tag == 9 or tag == 10 or tag == 12:
        if offset + 1 < size and buf[offset + 1] < 0x80:
            length, offset = buf[offset + 1], offset + 2
        else:
            length, offset = decode_length(buf, offset + 1)
        end = offset + length
        if end > size:
            raise TruncatedError("string truncated", offset=size)
        raw = buf[offset:end]
        if type(raw) is not bytes:
            raw = bytes(raw)
        if tag == 9:
            return _new_data(Data, (DataType.OCTET_STRING, raw)), end
        if tag == 10:
            # visible-string is ASCII (ISO 646); latin-1 keeps stray high bytes from
            # meters decodable and re-encodable byte for byte
            return _new_data(Data, (DataType.VISIBLE_STRING, raw.decode("latin-1"))), end
        try:
            return _new_data(Data, (DataType.UTF8_STRING, raw.decode("utf-8"))), end
        except UnicodeDecodeError as exc:
            raise DecodeError(f"invalid UTF-8: {exc.reason}", offset=offset) from None
    return _decode_rare(buf, tag, offset + 1, size)


def _decode_rare(buf: bytes | memoryview, tag: int, offset: int, size: int) -> tuple[Data, int]:
    """The tags outside the hot path; ``offset`` is just past the tag byte."""
    if tag == 0:
        return _NULL, offset
    if tag == 3:
        if offset >= size:
            raise TruncatedError("boolean truncated", offset=size)
        # Blue Book: FALSE is 0, any other value TRUE; encoders send 01
        return (_TRUE if buf[offset] else _FALSE), offset + 1
    if tag == 4:
        bits, offset = decode_length(buf, offset)
        end = offset + ((bits + 7) >> 3)
        if end > size:
            raise TruncatedError("bit-string truncated", offset=size)
        return Data(DataType.BIT_STRING, BitString(bytes(buf[offset:end]), bits)), end
    clock = _CLOCK_TYPES.get(tag)
    if clock is not None:
        end = offset + _SHAPE[tag]
        if end > size:
            raise TruncatedError("date/time truncated", offset=size)
        return Data(DataType(tag), clock.from_bytes(buf[offset:end])), end
    if tag == 19:
        start = offset
        offset = _skip_type_description(buf, offset)
        description = bytes(buf[start:offset])
        length, offset = decode_length(buf, offset)
        end = offset + length
        if end > size:
            raise TruncatedError("compact-array truncated", offset=size)
        return Data(DataType.COMPACT_ARRAY, CompactArray(description, bytes(buf[offset:end]))), end
    if tag == 255:
        return _DONT_CARE, offset
    raise DecodeError(f"invalid data tag 0x{tag:02X}", offset=offset - 1)


# -- encoding -------------------------------------------------------------------------


def encode_data(data: Data) -> bytes:
    """A-XDR bytes of ``data``; ``EncodeError`` if its value does not fit its tag."""
    out = bytearray()
    _encode(data, out, 0)
    return bytes(out)


def _encode(data: Data, out: bytearray, depth: int) -> None:
    tag = data.tag
    value = data.value
    codec = _NUMERIC.get(tag)
    try:
        if codec is not None:
            if type(value) is bool or not isinstance(value, int | float):
                raise EncodeError(f"{tag.name} needs a number, got {value!r}")
            if tag not in (DataType.FLOAT32, DataType.FLOAT64) and type(value) is not int:
                raise EncodeError(f"{tag.name} needs an int, got {value!r}")
            out.append(tag)
            out += codec.pack(value)
        elif tag in (DataType.ARRAY, DataType.STRUCTURE):
            if type(value) is not tuple:
                raise EncodeError(f"{tag.name} needs a tuple of Data, got {value!r}")
            if depth >= MAX_DEPTH:
                raise EncodeError(f"data nested deeper than {MAX_DEPTH}")
            out.append(tag)
            out += encode_length(len(value))
            for item in value:
                if not isinstance(item, Data):
                    raise EncodeError(f"{tag.name} element is not Data: {item!r}")
                _encode(item, out, depth + 1)
        else:
            out.append(tag)
            out += _encode_scalar(tag, value)
    except (struct.error, OverflowError) as exc:  # pack raises OverflowError for floats
        raise EncodeError(f"{tag.name} value {value!r} out of range: {exc}") from None


def _encode_scalar(tag: DataType, value: DataValue) -> bytes:
    if tag in (DataType.NULL_DATA, DataType.DONT_CARE):
        if value is not None:
            raise EncodeError(f"{tag.name} carries no value, got {value!r}")
        return b""
    if tag == DataType.BOOLEAN:
        if type(value) is not bool:
            raise EncodeError(f"BOOLEAN needs a bool, got {value!r}")
        return b"\x01" if value else b"\x00"
    if tag == DataType.OCTET_STRING:
        if not isinstance(value, bytes):
            raise EncodeError(f"OCTET_STRING needs bytes, got {value!r}")
        return encode_length(len(value)) + value
    if tag in (DataType.VISIBLE_STRING, DataType.UTF8_STRING):
        if not isinstance(value, str):
            raise EncodeError(f"{tag.name} needs a str, got {value!r}")
        try:
            raw = value.encode("latin-1" if tag == DataType.VISIBLE_STRING else "utf-8")
        except UnicodeEncodeError as exc:
            raise EncodeError(f"{tag.name} cannot hold {value!r}") from exc
        return encode_length(len(raw)) + raw
    if tag == DataType.BIT_STRING:
        if not isinstance(value, BitString):
            raise EncodeError(f"BIT_STRING needs a BitString, got {value!r}")
        return encode_length(value.length) + value.data
    if tag == DataType.COMPACT_ARRAY:
        if not isinstance(value, CompactArray):
            raise EncodeError(f"COMPACT_ARRAY needs a CompactArray, got {value!r}")
        description = value.type_description
        try:
            valid = _skip_type_description(description, 0) == len(description)
        except DecodeError:
            valid = False
        if not valid:
            raise EncodeError(f"invalid compact-array type description {description.hex()}")
        return description + encode_length(len(value.contents)) + value.contents
    expected = _CLOCK_TYPES[tag]  # the remaining tags are DATE_TIME, DATE and TIME
    if type(value) is not expected:
        raise EncodeError(f"{tag.name} needs a {expected.__name__}, got {value!r}")
    return value.to_bytes()
