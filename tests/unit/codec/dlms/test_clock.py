"""COSEM date-time/date/time: not-specified fields, exact bytes, Python datetime both ways."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivy_gateway.codec.dlms.clock import ClockStatus, CosemDate, CosemDateTime, CosemTime
from ivy_gateway.codec.errors import DecodeError, TruncatedError

METER_CLOCK = bytes.fromhex("07EA011E05042213008000FF")  # the EM114070's clock


def test_meter_clock_decodes_with_unspecified_deviation_and_status() -> None:
    value = CosemDateTime.from_bytes(METER_CLOCK)
    assert value == CosemDateTime(2026, 1, 30, 5, 4, 34, 19, 0, None, None)
    assert value.to_bytes() == METER_CLOCK
    assert value.to_datetime() == dt.datetime(2026, 1, 30, 4, 34, 19)  # naive
    assert value.date == CosemDate(2026, 1, 30, 5)
    assert value.time == CosemTime(4, 34, 19, 0)


def test_all_unspecified_is_all_ff_and_8000() -> None:
    assert CosemDateTime().to_bytes().hex().upper() == "FFFFFFFFFFFFFFFFFF8000FF"
    assert CosemDateTime.from_bytes(bytes.fromhex("FFFFFFFFFFFFFFFFFF8000FF")) == CosemDateTime()


def test_blue_book_deviation_sign_utc_plus_8_is_minus_480() -> None:
    stamp = bytes.fromhex("07EA011E05042213" + "00" + "FE20" + "80")
    value = CosemDateTime.from_bytes(stamp)
    assert value.deviation == -480
    assert value.clock_status == ClockStatus.DAYLIGHT_SAVING_ACTIVE
    aware = value.to_datetime()
    assert aware.utcoffset() == dt.timedelta(hours=8)
    assert value.to_datetime(blue_book_sign=False).utcoffset() == dt.timedelta(hours=-8)


def test_from_datetime_round_trips_aware_and_naive() -> None:
    tz = dt.timezone(dt.timedelta(hours=8))
    aware = dt.datetime(2026, 1, 30, 4, 34, 19, 120000, tzinfo=tz)
    value = CosemDateTime.from_datetime(aware)
    assert value.deviation == -480
    assert value.weekday == 5
    assert value.hundredths == 12
    assert value.to_datetime() == aware
    other = CosemDateTime.from_datetime(aware, blue_book_sign=False, clock_status=ClockStatus(0))
    assert other.deviation == 480
    assert other.to_bytes()[-1] == 0
    naive = CosemDateTime.from_datetime(dt.datetime(2026, 1, 30))
    assert naive.deviation is None
    assert naive.to_datetime() == dt.datetime(2026, 1, 30)


@pytest.mark.parametrize(
    "value",
    [
        CosemDateTime(2026, 1, 30, None, 4, 34, None),  # seconds unspecified
        CosemDateTime(None, 1, 30, None, 4, 34, 19),
        CosemDateTime(2026, 0xFE, 30, None, 4, 34, 19),  # DST-begin month wildcard
        CosemDateTime(2026, 2, 30, None, 4, 34, 19),  # no 30 February
        CosemDateTime(2026, 1, 30, None, 4, 34, 19, 0, 0x7FFF),  # offset beyond a day
    ],
)
def test_to_datetime_rejects_values_that_name_no_instant(value: CosemDateTime) -> None:
    with pytest.raises(DecodeError):
        value.to_datetime()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"year": 0xFFFF},
        {"year": -1},
        {"month": 0xFF},
        {"day": 256},
        {"weekday": -1},
        {"hour": 0xFF},
        {"minute": 300},
        {"second": -5},
        {"hundredths": 0xFF},
        {"deviation": -0x8000},
        {"deviation": 0x8000},
        {"clock_status": 0xFF},
    ],
)
def test_constructor_rejects_out_of_range_fields(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="outside"):
        CosemDateTime(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("cls", "size"), [(CosemDateTime, 12), (CosemDate, 5), (CosemTime, 4)])
def test_wrong_sizes_are_truncated_or_invalid(cls: type[CosemDate], size: int) -> None:
    with pytest.raises(TruncatedError):
        cls.from_bytes(bytes(size - 1))
    with pytest.raises(DecodeError) as info:
        cls.from_bytes(bytes(size + 1))
    assert not isinstance(info.value, TruncatedError)


def test_date_and_time_unspecified_round_trip() -> None:
    assert CosemDate.from_bytes(bytes.fromhex("FFFFFFFFFF")) == CosemDate()
    assert CosemDate().to_bytes() == bytes.fromhex("FFFFFFFFFF")
    assert CosemTime.from_bytes(bytes.fromhex("FFFFFFFF")) == CosemTime()
    assert CosemTime().to_bytes() == bytes.fromhex("FFFFFFFF")


@given(st.binary(min_size=12, max_size=12))
def test_any_twelve_bytes_round_trip_except_unencodable_markers(raw: bytes) -> None:
    value = CosemDateTime.from_bytes(raw)
    assert value.to_bytes() == raw
