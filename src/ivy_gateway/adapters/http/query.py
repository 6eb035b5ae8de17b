"""Parsing of path and query parameters into domain values; each failure is an ``ApiError``.

Times are epoch milliseconds (``1764201600000``) or ISO 8601 (``2025-11-27T00:00:00Z``,
``2025-11-27T08:00+08:00``, ``2025-11-27``); ISO without an offset means UTC.
Buckets are ``<n><unit>`` with unit ``s``, ``m``, ``h`` or ``d`` (``15m``, ``1h``, ``1d``),
or plain seconds (``900``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.quantities import QUANTITIES
from ivy_gateway.domain.store import Aggregate

from .errors import ApiError

__all__ = [
    "TimeRange",
    "parse_agg",
    "parse_bucket",
    "parse_meter_id",
    "parse_quantity",
    "parse_range",
    "parse_time",
]

_BUCKET = re.compile(r"(\d{1,9})([smhd]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3_600, "d": 86_400}
_MIN_BUCKET_S = 1
_MAX_BUCKET_S = 366 * 86_400


@dataclass(frozen=True, slots=True)
class TimeRange:
    from_ms: int
    to_ms: int


def _bad(name: str, message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", f"{name}: {message}")


def parse_meter_id(raw: str) -> MeterId:
    try:
        return MeterId(raw)
    except ValueError:
        raise ApiError(
            422, "invalid_meter_id", f"a meter id is 12 decimal digits, got {raw[:40]!r}"
        ) from None


def parse_time(name: str, raw: str) -> int:
    """Epoch milliseconds from epoch milliseconds or ISO 8601."""
    text = raw.strip()
    if text.isascii() and text.isdigit():
        if len(text) > 15:
            raise _bad(name, f"epoch milliseconds out of range: {text[:20]!r}")
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(name, f"expected epoch milliseconds or ISO 8601, got {raw[:40]!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def parse_range(
    raw_from: str | None, raw_to: str | None, *, now_ms: int, default_s: int, max_s: int
) -> TimeRange:
    """``from <= ts < to``; ``to`` defaults to now, ``from`` to ``to - default_s``."""
    to_ms = parse_time("to", raw_to) if raw_to is not None else now_ms
    from_ms = parse_time("from", raw_from) if raw_from is not None else to_ms - default_s * 1000
    if from_ms >= to_ms:
        raise _bad("from", "must be before to")
    if to_ms - from_ms > max_s * 1000:
        raise _bad("from", f"the range is longer than the maximum of {max_s // 86_400} days")
    return TimeRange(from_ms, to_ms)


def parse_bucket(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    match = _BUCKET.fullmatch(raw.strip())
    if match is None:
        raise _bad("bucket", f"expected e.g. 15m, 1h, 1d or seconds, got {raw[:40]!r}")
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if not _MIN_BUCKET_S <= seconds <= _MAX_BUCKET_S:
        raise _bad("bucket", f"must be between {_MIN_BUCKET_S} s and 366 d")
    return seconds


def parse_agg(raw: str | None, bucket_s: int | None) -> Aggregate | None:
    """The aggregate; defaults to ``avg`` with a bucket. Without a bucket it is an error."""
    if raw is None or raw == "":
        return Aggregate.AVG if bucket_s is not None else None
    try:
        agg = Aggregate(raw.lower())
    except ValueError:
        known = "|".join(a.value for a in Aggregate)
        raise _bad("agg", f"expected {known}, got {raw[:40]!r}") from None
    if bucket_s is None:
        raise _bad("agg", "needs a bucket (raw readings are not aggregated)")
    return agg


def parse_quantity(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in QUANTITIES:
        raise _bad("quantity", f"unknown quantity {raw[:60]!r} (see docs/quantities.md)")
    return raw
