"""A-XDR Data: every type both ways, lengths, bounds, skip_data, hypothesis round trips."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivy_gateway.codec.dlms.axdr import (
    MAX_DEPTH,
    BitString,
    CompactArray,
    Data,
    DataType,
    decode_data,
    decode_length,
    encode_data,
    encode_length,
    skip_data,
)
from ivy_gateway.codec.dlms.clock import CosemDate, CosemDateTime, CosemTime
from ivy_gateway.codec.errors import DecodeError, EncodeError, TruncatedError

VECTORS = json.loads(
    (Path(__file__).parents[3] / "vectors" / "dlms.json").read_text(encoding="utf-8")
)["vectors"]
DATA_VECTORS = [v for v in VECTORS if "data_hex" in v["decoded"]]


@pytest.mark.parametrize("vector", DATA_VECTORS, ids=lambda v: v["name"])
def test_vector_data_decodes_and_reencodes_exactly(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["decoded"]["data_hex"])
    data, end = decode_data(raw)
    assert end == len(raw)
    assert data.tag == vector["decoded"]["data_tag"]
    assert encode_data(data) == raw
    assert skip_data(raw) == len(raw)


@pytest.mark.parametrize("vector", DATA_VECTORS, ids=lambda v: v["name"])
def test_every_strict_prefix_of_a_value_is_truncated(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["decoded"]["data_hex"])
    for cut in range(len(raw)):
        with pytest.raises(TruncatedError):
            decode_data(raw[:cut])
        with pytest.raises(TruncatedError):
            skip_data(raw[:cut])


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (Data(DataType.NULL_DATA), "00"),
        (Data(DataType.DONT_CARE), "FF"),
        (Data(DataType.BOOLEAN, False), "0300"),
        (Data(DataType.DOUBLE_LONG, -1), "05FFFFFFFF"),
        (Data(DataType.LONG64_UNSIGNED, 2**64 - 1), "15FFFFFFFFFFFFFFFF"),
        (Data(DataType.FLOAT32, 1.5), "173FC00000"),
        (Data(DataType.OCTET_STRING, b""), "0900"),
        (Data(DataType.VISIBLE_STRING, "A"), "0A0141"),
        (Data(DataType.BIT_STRING, BitString.from_str("")), "0400"),
        (Data(DataType.ARRAY, ()), "0100"),
        (Data(DataType.DATE_TIME, CosemDateTime()), "19FFFFFFFFFFFFFFFFFF8000FF"),
        (Data(DataType.DATE, CosemDate(2026, 1, 30, 5)), "1A07EA011E05"),
        (Data(DataType.TIME, CosemTime(12, 30, 0, 0)), "1B0C1E0000"),
    ],
)
def test_encode_and_decode_each_type(data: Data, wire: str) -> None:
    assert encode_data(data).hex().upper() == wire
    assert decode_data(bytes.fromhex(wire)) == (data, len(wire) // 2)


def test_decode_accepts_memoryview_and_offset() -> None:
    buf = memoryview(bytes.fromhex("AAAA0903010203"))
    assert decode_data(buf, 2) == (Data(DataType.OCTET_STRING, b"\x01\x02\x03"), 7)
    inner = memoryview(bytes.fromhex("0202090101 0A0141".replace(" ", "")))
    data, _ = decode_data(inner)
    assert data.to_python() == [b"\x01", "A"]


def test_boolean_nonzero_is_true_and_reencodes_canonically() -> None:
    assert decode_data(b"\x03\x05")[0] == Data(DataType.BOOLEAN, True)


def test_visible_string_high_bytes_round_trip_via_latin1() -> None:
    raw = b"\x0a\x02\xe4A"
    data, _ = decode_data(raw)
    assert encode_data(data) == raw


def test_invalid_utf8_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="UTF-8"):
        decode_data(b"\x0c\x01\xff")


@pytest.mark.parametrize("tag", [0x07, 0x08, 0x0B, 0x0E, 0x1C, 0x80, 0xFE])
def test_unknown_tags_are_rejected(tag: int) -> None:
    with pytest.raises(DecodeError, match="invalid data tag") as info:
        decode_data(bytes((tag, 0, 0, 0, 0)))
    assert not isinstance(info.value, TruncatedError)
    with pytest.raises(DecodeError, match="invalid data tag"):
        skip_data(bytes((tag, 0, 0, 0, 0)))


def test_nesting_deeper_than_the_limit_is_rejected() -> None:
    deep = b"\x02\x01" * (MAX_DEPTH + 1) + b"\x00"
    with pytest.raises(DecodeError, match="nested deeper"):
        decode_data(deep)
    assert skip_data(deep) == len(deep)  # skipping builds nothing, so depth is free
    ok = b"\x02\x01" * MAX_DEPTH + b"\x00"
    assert decode_data(ok)[1] == len(ok)


def test_huge_counts_fail_before_allocating() -> None:
    for wire in ("0184FFFFFFFF00", "0284FFFFFFFF", "0103120001", "09840FFFFFFF00"):
        with pytest.raises(TruncatedError):
            decode_data(bytes.fromhex(wire))
        with pytest.raises(TruncatedError):
            skip_data(bytes.fromhex(wire))


def test_nested_containers_check_counts_on_the_inner_level() -> None:
    with pytest.raises(TruncatedError):
        decode_data(bytes.fromhex("010202 7F".replace(" ", "")))
    with pytest.raises(TruncatedError):
        skip_data(bytes.fromhex("0102027F00"))


@pytest.mark.parametrize(
    ("wire", "value", "end"),
    [("05", 5, 1), ("7F", 127, 1), ("8180", 128, 2), ("820100", 256, 3), ("83010000", 65536, 4)],
)
def test_decode_length_forms(wire: str, value: int, end: int) -> None:
    assert decode_length(bytes.fromhex(wire), 0) == (value, end)


def test_decode_length_accepts_non_minimal_long_form() -> None:
    assert decode_length(b"\x81\x05", 0) == (5, 2)
    assert decode_length(b"\x84\x00\x00\x00\x05", 0) == (5, 5)


@pytest.mark.parametrize("wire", ["80", "85", "FF"])
def test_decode_length_rejects_invalid_first_byte(wire: str) -> None:
    with pytest.raises(DecodeError, match="invalid length"):
        decode_length(bytes.fromhex(wire + "000000000000"), 0)


@pytest.mark.parametrize("wire", ["", "81", "8201"])
def test_decode_length_truncated(wire: str) -> None:
    with pytest.raises(TruncatedError):
        decode_length(bytes.fromhex(wire), 0)


@pytest.mark.parametrize(
    ("value", "wire"),
    [(0, "00"), (127, "7F"), (128, "8180"), (255, "81FF"), (256, "820100"),
     (65536, "83010000"), (2**24, "8401000000")],
)  # fmt: skip
def test_encode_length_is_minimal(value: int, wire: str) -> None:
    assert encode_length(value).hex().upper() == wire


@pytest.mark.parametrize("value", [-1, 2**32])
def test_encode_length_rejects_out_of_range(value: int) -> None:
    with pytest.raises(EncodeError):
        encode_length(value)


def test_long_octet_string_uses_long_length_form() -> None:
    data = Data(DataType.OCTET_STRING, bytes(200))
    assert encode_data(data)[:3] == b"\x09\x81\xc8"


@pytest.mark.parametrize(
    "data",
    [
        Data(DataType.UNSIGNED, 256),
        Data(DataType.INTEGER, -129),
        Data(DataType.LONG_UNSIGNED, -1),
        Data(DataType.DOUBLE_LONG, True),
        Data(DataType.DOUBLE_LONG, 1.5),
        Data(DataType.FLOAT32, "1"),
        Data(DataType.FLOAT32, 1e300),
        Data(DataType.STRUCTURE, [Data(DataType.NULL_DATA)]),  # type: ignore[arg-type]
        Data(DataType.ARRAY, (5,)),  # type: ignore[arg-type]
        Data(DataType.NULL_DATA, 0),
        Data(DataType.BOOLEAN, 1),
        Data(DataType.OCTET_STRING, "ab"),
        Data(DataType.VISIBLE_STRING, b"ab"),
        Data(DataType.VISIBLE_STRING, "中"),
        Data(DataType.BIT_STRING, "101"),
        Data(DataType.COMPACT_ARRAY, b""),
        Data(DataType.COMPACT_ARRAY, CompactArray(b"\x07", b"")),
        Data(DataType.COMPACT_ARRAY, CompactArray(b"\x11\x11", b"")),
        Data(DataType.DATE_TIME, CosemDate()),
        Data(DataType.TIME, b"\x00\x00\x00\x00"),
    ],
)
def test_encode_rejects_values_that_do_not_fit_the_tag(data: Data) -> None:
    with pytest.raises(EncodeError):
        encode_data(data)


def test_encode_rejects_nesting_past_the_limit() -> None:
    data = Data(DataType.NULL_DATA)
    for _ in range(MAX_DEPTH + 1):
        data = Data(DataType.STRUCTURE, (data,))
    with pytest.raises(EncodeError, match="nested deeper"):
        encode_data(data)


def test_bit_string_text_and_indexing() -> None:
    bits = BitString.from_str("1000000001")
    assert bits == BitString(b"\x80\x40", 10)
    assert str(bits) == "1000000001"
    assert bits[0] is True
    assert bits[1] is False
    assert bits[9] is True
    with pytest.raises(IndexError):
        bits[10]
    with pytest.raises(IndexError):
        bits[-1]


@pytest.mark.parametrize(("data", "length"), [(b"\x00", 9), (b"\x00\x00", 8), (b"", -1)])
def test_bit_string_rejects_inconsistent_sizes(data: bytes, length: int) -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        BitString(data, length)


def test_bit_string_rejects_non_binary_text() -> None:
    with pytest.raises(ValueError, match="not a bit string"):
        BitString.from_str("10a")


def test_bit_string_keeps_padding_bits() -> None:
    raw = b"\x04\x03\xff"
    data, _ = decode_data(raw)
    assert str(data.value) == "111"
    assert encode_data(data) == raw


@pytest.mark.parametrize(
    "wire",
    [
        "13 11 03 010203",  # unsigned × 3
        "13 01 0002 12 04 00010002",  # array[2] of long-unsigned
        "13 02 02 11 12 03 010002",  # structure{unsigned, long-unsigned}
    ],
)
def test_compact_array_round_trips_raw(wire: str) -> None:
    raw = bytes.fromhex(wire.replace(" ", ""))
    data, end = decode_data(raw)
    assert end == len(raw) == skip_data(raw)
    assert isinstance(data.value, CompactArray)
    assert encode_data(data) == raw


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        ("1307", DecodeError),  # invalid type in the description
        ("1313", DecodeError),  # nested compact-array
        ("13", TruncatedError),
        ("1301", TruncatedError),
        ("13020511", TruncatedError),  # structure count beyond the bytes
        ("131105", TruncatedError),  # contents shorter than announced
    ],
)
def test_compact_array_rejects_bad_descriptions(wire: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_data(bytes.fromhex(wire))
    with pytest.raises(error):
        skip_data(bytes.fromhex(wire))


def test_skip_data_from_an_offset_inside_an_apdu() -> None:
    apdu = bytes.fromhex("C401C1000981C8" + "00" * 200 + "AA")
    assert skip_data(apdu, 4) == len(apdu) - 1
    assert skip_data(memoryview(apdu), 4) == len(apdu) - 1


def test_to_python_flattens_containers() -> None:
    data = Data(DataType.STRUCTURE, (Data(DataType.INTEGER, -2), Data(DataType.ENUM, 35)))
    assert data.to_python() == [-2, 35]


# -- hypothesis -----------------------------------------------------------------------

_INT_RANGES = {
    DataType.DOUBLE_LONG: (-(2**31), 2**31 - 1),
    DataType.DOUBLE_LONG_UNSIGNED: (0, 2**32 - 1),
    DataType.BCD: (0, 255),
    DataType.INTEGER: (-128, 127),
    DataType.LONG: (-(2**15), 2**15 - 1),
    DataType.UNSIGNED: (0, 255),
    DataType.LONG_UNSIGNED: (0, 2**16 - 1),
    DataType.LONG64: (-(2**63), 2**63 - 1),
    DataType.LONG64_UNSIGNED: (0, 2**64 - 1),
    DataType.ENUM: (0, 255),
}
_opt_byte = st.none() | st.integers(0, 0xFE)


def _ints(tag: DataType) -> st.SearchStrategy[Data]:
    low, high = _INT_RANGES[tag]
    return st.integers(low, high).map(lambda v: Data(tag, v))


_bitstrings = st.text("01", max_size=40).map(BitString.from_str)
_date_times = st.builds(
    CosemDateTime,
    st.none() | st.integers(0, 0xFFFE),
    *([_opt_byte] * 7),
    st.none() | st.integers(-0x7FFF, 0x7FFF),
    st.none(),
)

scalars: st.SearchStrategy[Data] = st.one_of(
    st.just(Data(DataType.NULL_DATA)),
    st.booleans().map(lambda v: Data(DataType.BOOLEAN, v)),
    *(_ints(tag) for tag in _INT_RANGES),
    st.floats(width=32, allow_nan=False).map(lambda v: Data(DataType.FLOAT32, v)),
    st.floats(allow_nan=False).map(lambda v: Data(DataType.FLOAT64, v)),
    st.binary(max_size=300).map(lambda v: Data(DataType.OCTET_STRING, v)),
    st.text(st.characters(max_codepoint=0xFF), max_size=20).map(
        lambda v: Data(DataType.VISIBLE_STRING, v)
    ),
    st.text(max_size=20).map(lambda v: Data(DataType.UTF8_STRING, v)),
    _bitstrings.map(lambda v: Data(DataType.BIT_STRING, v)),
    _date_times.map(lambda v: Data(DataType.DATE_TIME, v)),
)

data_values: st.SearchStrategy[Data] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6).map(lambda v: Data(DataType.ARRAY, tuple(v))),
        st.lists(children, max_size=6).map(lambda v: Data(DataType.STRUCTURE, tuple(v))),
    ),
    max_leaves=30,
)


@given(data_values)
def test_any_data_round_trips_exactly(data: Data) -> None:
    raw = encode_data(data)
    decoded, end = decode_data(raw)
    assert end == len(raw)
    assert skip_data(raw) == len(raw)
    assert encode_data(decoded) == raw
    if not _has_negative_zero_or_nan(data):
        assert decoded == data


def _has_negative_zero_or_nan(data: Data) -> bool:
    value = data.value
    if type(value) is tuple:
        return any(_has_negative_zero_or_nan(item) for item in value)
    return isinstance(value, float) and (math.isnan(value) or math.copysign(1, value) < 0)


@given(st.integers(0, 2**32 - 1))
def test_any_length_round_trips(value: int) -> None:
    raw = encode_length(value)
    assert decode_length(raw, 0) == (value, len(raw))
