"""Query parameter parsing: times, ranges, buckets, aggregates."""

from __future__ import annotations

import pytest

from ivy_gateway.adapters.http.errors import ApiError
from ivy_gateway.adapters.http.query import parse_agg, parse_bucket, parse_range, parse_time
from ivy_gateway.domain.store import Aggregate

DAY_S = 86_400


@pytest.mark.parametrize(
    ("raw", "ms"),
    [
        ("0", 0),
        ("1764201600000", 1_764_201_600_000),
        ("2025-11-27T00:00:00Z", 1_764_201_600_000),
        ("2025-11-27T00:00:00.250+00:00", 1_764_201_600_250),
        ("2025-11-27T08:00+08:00", 1_764_201_600_000),
        ("2025-11-27", 1_764_201_600_000),
    ],
)
def test_times_are_epoch_ms_or_iso_8601(raw: str, ms: int) -> None:
    assert parse_time("from", raw) == ms


@pytest.mark.parametrize("raw", ["", "-5", "1.5", "now", "2025-02-30", "1" * 16])
def test_bad_times_are_rejected(raw: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_time("from", raw)
    assert (caught.value.status, caught.value.code) == (400, "invalid_parameter")


def test_range_defaults_and_limits() -> None:
    span = parse_range(None, None, now_ms=10 * DAY_S * 1000, default_s=DAY_S, max_s=2 * DAY_S)
    assert (span.from_ms, span.to_ms) == (9 * DAY_S * 1000, 10 * DAY_S * 1000)
    with pytest.raises(ApiError, match="longer than"):
        parse_range("0", None, now_ms=10 * DAY_S * 1000, default_s=DAY_S, max_s=2 * DAY_S)
    with pytest.raises(ApiError, match="before to"):
        parse_range("5", "5", now_ms=0, default_s=DAY_S, max_s=2 * DAY_S)


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        (None, None),
        ("", None),
        ("1s", 1),
        ("15m", 900),
        ("2h", 7200),
        ("7d", 604_800),
        (" 60 ", 60),
    ],
)
def test_buckets(raw: str | None, seconds: int | None) -> None:
    assert parse_bucket(raw) == seconds


@pytest.mark.parametrize("raw", ["0s", "1w", "h", "1.5h", "367d", "-1m", "1 h"])
def test_bad_buckets(raw: str) -> None:
    with pytest.raises(ApiError, match="bucket"):
        parse_bucket(raw)


def test_agg_defaults_to_avg_only_with_a_bucket() -> None:
    assert parse_agg(None, 60) is Aggregate.AVG
    assert parse_agg(None, None) is None
    assert parse_agg("Last", 60) is Aggregate.LAST
    with pytest.raises(ApiError, match="needs a bucket"):
        parse_agg("min", None)
