"""COSEM date-time, date and time values (Blue Book §4.1.6.1, dlms.md Part C).

date-time, 12 bytes::

    0-1 year (FFFF = not specified)   2 month (FD DST end, FE DST begin)   3 day (FD, FE)
    4 day of week 1=Mon..7=Sun        5 hour  6 minute  7 second  8 hundredths
    9-10 deviation int16 minutes (8000 = not specified)               11 clock status

A field equal to ``FF`` (``FFFF`` for the year, ``8000`` for the deviation) is "not
specified" and is held as ``None``. Every other byte value is kept as is, so any 12 bytes
a meter sends decode and re-encode exactly; only ``to_datetime`` insists on a real date.

Deviation sign: the Blue Book defines ``UTC = local time + deviation``, so UTC+8 is −480.
Some meters use the opposite sign; ``to_datetime``/``from_datetime`` take ``blue_book_sign``.
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass
from enum import IntFlag

from ..errors import DecodeError, TruncatedError

__all__ = ["ClockStatus", "CosemDate", "CosemDateTime", "CosemTime"]

_DATE_TIME = struct.Struct(">HBBBBBBBhB")
_DATE = struct.Struct(">HBBB")
_TIME = struct.Struct(">BBBB")
_YEAR_UNSPECIFIED = 0xFFFF
_BYTE_UNSPECIFIED = 0xFF
_DEVIATION_UNSPECIFIED = -0x8000


class ClockStatus(IntFlag):
    """Clock status bits (Blue Book §4.1.6.1); 0xFF as a whole means "not specified"."""

    INVALID_VALUE = 0x01
    DOUBTFUL_VALUE = 0x02
    DIFFERENT_CLOCK_BASE = 0x04
    INVALID_CLOCK_STATUS = 0x08
    DAYLIGHT_SAVING_ACTIVE = 0x80


def _check(name: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise ValueError(f"{name} {value} outside {low}..{high}")


def _byte(value: int | None) -> int:
    return _BYTE_UNSPECIFIED if value is None else value


def _opt(value: int, unspecified: int = _BYTE_UNSPECIFIED) -> int | None:
    return None if value == unspecified else value


@dataclass(frozen=True, slots=True)
class CosemDate:
    """The 5-byte COSEM date; ``None`` fields are "not specified"."""

    year: int | None = None
    month: int | None = None
    day: int | None = None
    weekday: int | None = None

    def __post_init__(self) -> None:
        _check("year", self.year, 0, 0xFFFE)
        _check("month", self.month, 0, 0xFE)
        _check("day", self.day, 0, 0xFE)
        _check("weekday", self.weekday, 0, 0xFE)

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> CosemDate:
        if len(data) != _DATE.size:
            raise _size_error("date", data, _DATE.size)
        year, month, day, weekday = _DATE.unpack_from(data)
        return cls(_opt(year, _YEAR_UNSPECIFIED), _opt(month), _opt(day), _opt(weekday))

    def to_bytes(self) -> bytes:
        year = _YEAR_UNSPECIFIED if self.year is None else self.year
        return _DATE.pack(year, _byte(self.month), _byte(self.day), _byte(self.weekday))


@dataclass(frozen=True, slots=True)
class CosemTime:
    """The 4-byte COSEM time; ``None`` fields are "not specified"."""

    hour: int | None = None
    minute: int | None = None
    second: int | None = None
    hundredths: int | None = None

    def __post_init__(self) -> None:
        _check("hour", self.hour, 0, 0xFE)
        _check("minute", self.minute, 0, 0xFE)
        _check("second", self.second, 0, 0xFE)
        _check("hundredths", self.hundredths, 0, 0xFE)

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> CosemTime:
        if len(data) != _TIME.size:
            raise _size_error("time", data, _TIME.size)
        hour, minute, second, hundredths = _TIME.unpack_from(data)
        return cls(_opt(hour), _opt(minute), _opt(second), _opt(hundredths))

    def to_bytes(self) -> bytes:
        return _TIME.pack(
            _byte(self.hour), _byte(self.minute), _byte(self.second), _byte(self.hundredths)
        )


@dataclass(frozen=True, slots=True)
class CosemDateTime:
    """The 12-byte COSEM date-time; ``None`` fields are "not specified"."""

    year: int | None = None
    month: int | None = None
    day: int | None = None
    weekday: int | None = None
    hour: int | None = None
    minute: int | None = None
    second: int | None = None
    hundredths: int | None = None
    deviation: int | None = None
    clock_status: ClockStatus | None = None

    def __post_init__(self) -> None:
        CosemDate(self.year, self.month, self.day, self.weekday)
        CosemTime(self.hour, self.minute, self.second, self.hundredths)
        _check("deviation", self.deviation, -0x7FFF, 0x7FFF)
        _check("clock_status", self.clock_status, 0, 0xFE)

    @property
    def date(self) -> CosemDate:
        return CosemDate(self.year, self.month, self.day, self.weekday)

    @property
    def time(self) -> CosemTime:
        return CosemTime(self.hour, self.minute, self.second, self.hundredths)

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> CosemDateTime:
        if len(data) != _DATE_TIME.size:
            raise _size_error("date-time", data, _DATE_TIME.size)
        year, month, day, wd, hour, minute, second, hs, dev, status = _DATE_TIME.unpack_from(data)
        return cls(
            _opt(year, _YEAR_UNSPECIFIED),
            _opt(month),
            _opt(day),
            _opt(wd),
            _opt(hour),
            _opt(minute),
            _opt(second),
            _opt(hs),
            _opt(dev, _DEVIATION_UNSPECIFIED),
            None if status == _BYTE_UNSPECIFIED else ClockStatus(status),
        )

    def to_bytes(self) -> bytes:
        return _DATE_TIME.pack(
            _YEAR_UNSPECIFIED if self.year is None else self.year,
            _byte(self.month),
            _byte(self.day),
            _byte(self.weekday),
            _byte(self.hour),
            _byte(self.minute),
            _byte(self.second),
            _byte(self.hundredths),
            _DEVIATION_UNSPECIFIED if self.deviation is None else self.deviation,
            _byte(self.clock_status),
        )

    def to_datetime(self, *, blue_book_sign: bool = True) -> dt.datetime:
        """The Python datetime; aware when the deviation is specified, naive otherwise.

        Raises ``DecodeError`` when a date or time field is unspecified or out of range
        (e.g. the DST wildcards ``FD``/``FE``): such a value names no single instant.
        """
        fields = (self.year, self.month, self.day, self.hour, self.minute, self.second)
        if None in fields:
            raise DecodeError("date-time has unspecified fields; it names no instant")
        tz: dt.tzinfo | None = None
        if self.deviation is not None:
            offset = -self.deviation if blue_book_sign else self.deviation
            try:
                tz = dt.timezone(dt.timedelta(minutes=offset))
            except ValueError as exc:
                raise DecodeError(f"deviation {self.deviation} min is not a UTC offset") from exc
        try:
            return dt.datetime(
                *fields,  # type: ignore[arg-type]
                microsecond=(self.hundredths or 0) * 10_000,
                tzinfo=tz,
            )
        except ValueError as exc:
            raise DecodeError(f"date-time out of range: {exc}") from exc

    @classmethod
    def from_datetime(
        cls,
        value: dt.datetime,
        *,
        blue_book_sign: bool = True,
        clock_status: ClockStatus | None = None,
    ) -> CosemDateTime:
        """Build from a Python datetime; a naive one gets "deviation not specified"."""
        deviation: int | None = None
        offset = value.utcoffset()
        if offset is not None:
            minutes = int(offset.total_seconds()) // 60
            deviation = -minutes if blue_book_sign else minutes
        return cls(
            value.year,
            value.month,
            value.day,
            value.isoweekday(),
            value.hour,
            value.minute,
            value.second,
            value.microsecond // 10_000,
            deviation,
            clock_status,
        )


def _size_error(what: str, data: bytes | memoryview, size: int) -> DecodeError:
    if len(data) < size:
        return TruncatedError(f"{what} needs {size} bytes, got {len(data)}")
    return DecodeError(f"{what} needs {size} bytes, got {len(data)}")
