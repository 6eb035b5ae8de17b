"""Data identifiers and value formats (reference §7): round trips and every rejection."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivy_gateway.codec.dlt645.data import (
    AsciiFormat,
    BitFieldFormat,
    ClockFormat,
    DataId,
    Demand,
    DemandFormat,
    DigitsFormat,
    NumberFormat,
)
from ivy_gateway.codec.errors import DecodeError, EncodeError

DATE = ClockFormat(("WW", "DD", "MM", "YY"))
TIME = ClockFormat(("ss", "mm", "hh"))
DATETIME = ClockFormat(("ss", "mm", "hh", "WW", "DD", "MM", "YY"))
DEMAND = DemandFormat(NumberFormat(3, 4))


# --- DataId -----------------------------------------------------------------------------


def test_data_id_written_and_wire_forms() -> None:
    di = DataId.parse("02010100")
    assert di.wire == bytes.fromhex("00010102")
    assert DataId.from_wire(di.wire) == di
    assert str(di) == "02010100"
    assert repr(di) == "DataId('02010100')"
    assert DataId.parse("0000000a") < DataId.parse("0000000B")


@pytest.mark.parametrize("text", ["0201010", "020101000", "0201010G", "+2010100"])
def test_data_id_parse_rejects_non_hex(text: str) -> None:
    with pytest.raises(ValueError, match="hex"):
        DataId.parse(text)


@pytest.mark.parametrize("value", [-1, 1 << 32, True])
def test_data_id_rejects_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match="32 bits"):
        DataId(value)


def test_data_id_from_wire_needs_four_bytes() -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        DataId.from_wire(b"\x00\x01\x02")


# --- NumberFormat -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "label"),
    [
        (NumberFormat(4, 2), "XXXXXX.XX"),
        (NumberFormat(3, 4, signed=True), "XX.XXXX signed"),
        (NumberFormat(4), "XXXXXXXX"),
    ],
)
def test_number_labels(fmt: NumberFormat, label: str) -> None:
    assert fmt.label == label


def test_number_decodes_sign_in_top_bit() -> None:
    fmt = NumberFormat(3, 4, signed=True)
    assert fmt.decode(bytes.fromhex("214380")) == Decimal("-0.4321")
    assert fmt.encode(Decimal("-0.4321")) == bytes.fromhex("214380")
    assert fmt.encode(-1) == bytes.fromhex("000081")


def test_unsigned_number_accepts_negative_zero() -> None:
    assert NumberFormat(2, 1).encode(Decimal("-0.0")) == b"\x00\x00"


def test_number_decode_rejects_wrong_size_and_non_bcd() -> None:
    with pytest.raises(DecodeError, match="needs 2"):
        NumberFormat(2, 1).decode(b"\x05", 7)
    with pytest.raises(DecodeError) as info:
        NumberFormat(2, 1).decode(b"\x05\x2a", 4)
    assert info.value.offset == 5


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        (NumberFormat(2, 1), 1.5),
        (NumberFormat(2, 1), True),
        (NumberFormat(2, 1), "1"),
        (NumberFormat(2, 1), Decimal("NaN")),
        (NumberFormat(2, 1), Decimal("Infinity")),
        (NumberFormat(2, 1), Decimal("1.25")),
        (NumberFormat(2, 1), Decimal("-1")),
        (NumberFormat(2, 1), Decimal("1000.0")),
        (NumberFormat(3, 4, signed=True), Decimal("80")),
        (NumberFormat(3, 4, signed=True), Decimal("-80")),
    ],
)
def test_number_encode_rejects_what_does_not_fit(fmt: NumberFormat, value: Any) -> None:
    with pytest.raises(EncodeError):
        fmt.encode(value)


number_formats = st.builds(
    lambda size, decimals, signed: NumberFormat(size, min(decimals, 2 * size), signed),
    st.integers(1, 4),
    st.integers(0, 4),
    st.booleans(),
)


@given(number_formats, st.data())
def test_numbers_round_trip(fmt: NumberFormat, data: st.DataObject) -> None:
    limit = 8 * 10 ** (2 * fmt.size - 1) if fmt.signed else 10 ** (2 * fmt.size)
    low = -(limit - 1) if fmt.signed else 0
    value = Decimal(data.draw(st.integers(low, limit - 1))).scaleb(-fmt.decimals)
    raw = fmt.encode(value)
    assert len(raw) == fmt.size
    assert fmt.decode(raw) == value
    assert fmt.encode(fmt.decode(raw)) == raw


@given(number_formats, st.binary(min_size=1, max_size=4))
def test_number_bytes_round_trip_when_they_decode(fmt: NumberFormat, raw: bytes) -> None:
    raw = raw[: fmt.size].ljust(fmt.size, b"\x00")
    try:
        value = fmt.decode(raw)
    except DecodeError:
        return
    assert fmt.encode(value) == raw


# --- ClockFormat ------------------------------------------------------------------------


def test_clock_formats_decode_to_date_time_datetime() -> None:
    assert DATE.label == "YYMMDDWW"
    assert TIME.label == "hhmmss"
    assert DATE.decode(bytes.fromhex("01200524")) == date(2024, 5, 20)
    assert TIME.decode(bytes.fromhex("304513")) == time(13, 45, 30)
    value = DATETIME.decode(bytes.fromhex("30451301200524"))
    assert value == datetime(2024, 5, 20, 13, 45, 30)


def test_clock_encode_derives_weekday_from_date() -> None:
    assert DATE.encode(date(2024, 5, 19)) == bytes.fromhex("00190524")  # a Sunday


@pytest.mark.parametrize(
    ("fmt", "raw", "reason"),
    [
        (DATE, "07200524", "weekday"),
        (DATE, "01201324", "month"),
        (TIME, "306025", "hour"),
        (TIME, "3045", "needs 3"),
        (DATETIME, "304513012005A4", "BCD"),
    ],
)
def test_clock_decode_rejects_impossible_values(fmt: ClockFormat, raw: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        fmt.decode(bytes.fromhex(raw))


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        (DATE, datetime(2024, 5, 20, 1, 2)),
        (DATE, time(1, 2)),
        (DATETIME, date(2024, 5, 20)),
        (TIME, datetime(2024, 5, 20, 1, 2)),
        (DATE, date(1999, 12, 31)),
        (DATETIME, datetime(2100, 1, 1)),
        (TIME, "13:45"),
    ],
)
def test_clock_encode_rejects_wrong_types_and_years(fmt: ClockFormat, value: Any) -> None:
    with pytest.raises(EncodeError):
        fmt.encode(value)


moments = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31, 23, 59, 59)).map(
    lambda d: d.replace(microsecond=0)
)


@given(moments)
def test_clocks_round_trip(moment: datetime) -> None:
    assert DATETIME.decode(DATETIME.encode(moment)) == moment
    assert DATE.decode(DATE.encode(moment.date())) == moment.date()
    assert TIME.decode(TIME.encode(moment.time())) == moment.time()
    minutes = DEMAND.clock
    assert minutes.decode(minutes.encode(moment)) == moment.replace(second=0)


# --- DemandFormat -----------------------------------------------------------------------


def test_demand_with_and_without_time() -> None:
    assert DEMAND.label == "XX.XXXX + YYMMDDhhmm"
    assert DEMAND.size == 8
    raw = bytes.fromhex("5634123014150324")
    assert DEMAND.decode(raw) == Demand(Decimal("12.3456"), datetime(2024, 3, 15, 14, 30))
    empty = DEMAND.decode(bytes(8))
    assert empty == Demand(Decimal("0.0000"), None)
    assert DEMAND.encode(empty) == bytes(8)


def test_demand_rejects_bad_time_and_wrong_type() -> None:
    with pytest.raises(DecodeError) as info:
        DEMAND.decode(bytes.fromhex("5634123014150024"), 10)
    assert info.value.offset == 13
    with pytest.raises(EncodeError):
        DEMAND.encode(Decimal(1))


@given(st.integers(0, 999999), st.one_of(st.none(), moments.map(lambda m: m.replace(second=0))))
def test_demands_round_trip(value: int, when: datetime | None) -> None:
    demand = Demand(Decimal(value).scaleb(-4), when)
    assert DEMAND.decode(DEMAND.encode(demand)) == demand


# --- DigitsFormat, BitFieldFormat, AsciiFormat ------------------------------------------


def test_digits_are_lsb_first_and_keep_zeros() -> None:
    fmt = DigitsFormat(6, "NNNNNNNNNNNN")
    assert fmt.decode(bytes.fromhex("341200000000")) == "000000001234"
    assert DigitsFormat(2).label == "NNNN"


@pytest.mark.parametrize("value", ["12345", 1234, "12a4"])
def test_digits_encode_rejects_non_digit_strings(value: Any) -> None:
    with pytest.raises(EncodeError):
        DigitsFormat(2).encode(value)


@given(st.integers(1, 8), st.data())
def test_digits_round_trip(size: int, data: st.DataObject) -> None:
    digits = data.draw(st.text("0123456789", min_size=2 * size, max_size=2 * size))
    fmt = DigitsFormat(size)
    assert fmt.decode(fmt.encode(digits)) == digits


def test_bit_field_is_low_byte_first() -> None:
    fmt = BitFieldFormat()
    assert fmt.label == "XXXX (bit field)"
    assert fmt.decode(bytes.fromhex("1000")) == 0x0010
    assert fmt.encode(0x0110) == bytes.fromhex("1001")


@pytest.mark.parametrize("value", [-1, 0x10000, True, "1"])
def test_bit_field_rejects_out_of_range(value: Any) -> None:
    with pytest.raises(EncodeError):
        BitFieldFormat().encode(value)


@given(st.integers(0, 0xFFFF))
def test_bit_fields_round_trip(value: int) -> None:
    assert BitFieldFormat().decode(BitFieldFormat().encode(value)) == value


def test_ascii_is_reversed_and_nul_padded() -> None:
    fmt = AsciiFormat(8)
    assert fmt.label == "ASCII"
    assert fmt.encode("AB12") == b"\x00\x00\x00\x00" + b"21BA"
    assert fmt.decode(b"\x00\x00\x00\x00" + b"21BA") == "AB12"


def test_ascii_rejects_non_ascii_and_bad_text() -> None:
    fmt = AsciiFormat(4)
    with pytest.raises(DecodeError):
        fmt.decode(b"\xc3\xa9AB")
    for value in ("ABCDE", "A\x00", "é", 12):
        with pytest.raises(EncodeError):
            fmt.encode(value)


@given(st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=32))
def test_ascii_round_trips(text: str) -> None:
    fmt = AsciiFormat(32)
    assert fmt.decode(fmt.encode(text)) == text.rstrip("\x00")
