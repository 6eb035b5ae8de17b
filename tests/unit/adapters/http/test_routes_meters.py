"""GET /api/v1/meters, /meters/{id}, /readings (JSON and CSV), /events."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

from ivy_gateway.adapters.http import ApiOptions
from ivy_gateway.adapters.http.fakes import InMemoryStore, StaticLiveState
from ivy_gateway.adapters.http.routes_meters import SharedAnswer
from ivy_gateway.adapters.http.schemas import EventList, MeterList, MeterOut, ReadingsOut
from ivy_gateway.domain.events import EventKind, Severity
from ivy_gateway.domain.meter import ConnectionInfo, MeterId, ProtocolKind
from ivy_gateway.domain.quantities import Reading, ReadingSource
from ivy_gateway.domain.store import (
    Aggregate,
    EventRecord,
    HistoryPoint,
    MeterRecord,
    StoreUnavailable,
)
from ivy_gateway.services.telemetry import MeterSnapshot

Client = Callable[..., httpx.AsyncClient]
NOW_MS = 1_764_201_600_000  # the fixtures' clock
HOUR_MS = 3_600_000
METER = MeterId("000000001234")
OTHER = MeterId("000000005678")


def reading(meter: MeterId, quantity: str, value: str, unit: str, ts_ms: int) -> Reading:
    return Reading(meter, quantity, Decimal(value), unit, ts_ms, ReadingSource.POLL, "02010100")


def add_meter(store: InMemoryStore, meter: MeterId = METER, *, online: bool = False) -> None:
    store.meters[meter] = MeterRecord(
        meter,
        ProtocolKind.DLT645,
        "dlt645-single-phase",
        NOW_MS - 86_400_000,
        NOW_MS - 60_000,
        "10.0.0.7",
        online,
        {"voltage": reading(meter, "voltage", "229.9", "V", NOW_MS - 60_000)},
    )


def add_live(live: StaticLiveState, meter: MeterId = METER, *, online: bool = True) -> None:
    live.states[meter] = MeterSnapshot(
        meter,
        online,
        ProtocolKind.DLT645,
        "dlt645-three-phase",
        ConnectionInfo(1, "10.0.0.8", 40000),
        NOW_MS,
        {
            "voltage": reading(meter, "voltage", "230.5", "V", NOW_MS),
            "frequency": reading(meter, "frequency", "50.00", "Hz", NOW_MS),
        },
    )


async def test_meter_list_merges_store_rows_with_live_state(
    store: InMemoryStore, live: StaticLiveState, make_client: Client
) -> None:
    add_meter(store, METER, online=False)
    add_live(live, METER, online=True)
    add_meter(store, OTHER, online=False)
    response = await make_client().get("/api/v1/meters")
    assert response.status_code == 200
    body = MeterList.model_validate(response.json())
    assert body.count == 2
    first, second = body.meters
    assert first.meter_id == METER.value
    assert first.online is True  # live state wins over the stored flag
    assert first.model == "dlt645-three-phase"
    assert first.ip == "10.0.0.8"
    assert first.first_seen == NOW_MS - 86_400_000
    assert first.last_seen == NOW_MS
    # Per quantity the newer value wins: live voltage is newer than the stored one.
    assert first.values["voltage"].value == 230.5
    assert first.values["frequency"].unit == "Hz"
    assert second.meter_id == OTHER.value
    assert second.online is False
    assert second.values["voltage"].value == 229.9


async def test_meter_list_includes_meters_only_known_live(
    live: StaticLiveState, make_client: Client
) -> None:
    add_live(live, OTHER)
    body = (await make_client().get("/api/v1/meters")).json()
    assert [m["meterId"] for m in body["meters"]] == [OTHER.value]
    assert body["meters"][0]["firstSeen"] is None


async def test_one_meter_is_returned_with_its_values(
    store: InMemoryStore, make_client: Client
) -> None:
    add_meter(store)
    response = await make_client().get(f"/api/v1/meters/{METER}")
    assert response.status_code == 200
    meter = MeterOut.model_validate(response.json())
    assert meter.protocol == "dlt645"
    assert meter.values["voltage"].ts == NOW_MS - 60_000


async def test_unknown_meter_is_404_json(make_client: Client) -> None:
    response = await make_client().get(f"/api/v1/meters/{METER}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "meter_not_found"


@pytest.mark.parametrize("bad", ["123", "00000000123x", "0000000012345", "%E2%82%AC" * 4])
async def test_invalid_meter_id_is_422(make_client: Client, bad: str) -> None:
    for path in ("", "/readings", "/events"):
        response = await make_client().get(f"/api/v1/meters/{bad}{path}")
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_meter_id"


async def test_readings_default_to_the_last_24_hours_raw(
    store: InMemoryStore, make_client: Client
) -> None:
    add_meter(store)
    store.points = [
        HistoryPoint("voltage", NOW_MS - 2 * HOUR_MS, 229.0),
        HistoryPoint("voltage", NOW_MS - HOUR_MS, 230.5),
        HistoryPoint("frequency", NOW_MS - HOUR_MS, 50.0),
    ]
    response = await make_client().get(f"/api/v1/meters/{METER}/readings")
    assert response.status_code == 200
    body = ReadingsOut.model_validate(response.json())
    assert (body.from_ms, body.to) == (NOW_MS - 24 * HOUR_MS, NOW_MS)
    assert body.bucket is None
    assert body.agg is None
    assert body.series["voltage"].unit == "V"
    assert body.series["voltage"].points == [
        (NOW_MS - 2 * HOUR_MS, 229.0),
        (NOW_MS - HOUR_MS, 230.5),
    ]
    call = store.readings_calls[0]
    assert call.quantity is None
    assert call.bucket_s is None
    assert call.limit == ApiOptions().max_points + 1


@pytest.mark.parametrize(
    ("params", "from_ms", "to_ms"),
    [
        ({"from": "1764115200000", "to": "1764201600000"}, 1_764_115_200_000, NOW_MS),
        ({"from": "2025-11-26T00:00:00Z", "to": "2025-11-27"}, 1_764_115_200_000, NOW_MS),
        ({"from": "2025-11-26T08:00:00+08:00"}, 1_764_115_200_000, NOW_MS),
        ({"to": "2025-11-26T00:00:00"}, 1_764_115_200_000 - 86_400_000, 1_764_115_200_000),
    ],
)
async def test_readings_take_epoch_ms_or_iso_8601(
    store: InMemoryStore, make_client: Client, params: dict[str, str], from_ms: int, to_ms: int
) -> None:
    add_meter(store)
    response = await make_client().get(f"/api/v1/meters/{METER}/readings", params=params)
    assert response.status_code == 200, response.text
    call = store.readings_calls[0]
    assert (call.from_ms, call.to_ms) == (from_ms, to_ms)


@pytest.mark.parametrize(
    ("bucket", "seconds"), [("15m", 900), ("1h", 3600), ("1d", 86400), ("30s", 30), ("600", 600)]
)
async def test_buckets_become_seconds_and_agg_defaults_to_avg(
    store: InMemoryStore, make_client: Client, bucket: str, seconds: int
) -> None:
    add_meter(store)
    response = await make_client().get(
        f"/api/v1/meters/{METER}/readings", params={"bucket": bucket, "quantity": "voltage"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["bucket"] == seconds
    assert response.json()["agg"] == "avg"
    call = store.readings_calls[0]
    assert (call.bucket_s, call.agg, call.quantity) == (seconds, Aggregate.AVG, "voltage")


@pytest.mark.parametrize("agg", ["avg", "min", "max", "first", "last", "MAX"])
async def test_every_aggregate_is_passed_to_the_store(
    store: InMemoryStore, make_client: Client, agg: str
) -> None:
    add_meter(store)
    response = await make_client().get(
        f"/api/v1/meters/{METER}/readings", params={"bucket": "1h", "agg": agg}
    )
    assert response.status_code == 200
    assert store.readings_calls[0].agg is Aggregate(agg.lower())


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"bucket": "15x"}, "bucket"),
        ({"bucket": "0m"}, "bucket"),
        ({"bucket": "400d"}, "bucket"),
        ({"bucket": "1h", "agg": "median"}, "agg"),
        ({"agg": "max"}, "agg"),  # no bucket: nothing to aggregate
        ({"from": "yesterday"}, "from"),
        ({"to": "2025-13-01"}, "to"),
        ({"from": "1764201600000", "to": "1764115200000"}, "from"),  # from after to
        ({"from": "1764201600000", "to": "1764201600000"}, "from"),  # empty range
        ({"from": "2020-01-01T00:00:00Z"}, "from"),  # longer than max_range_s
        ({"from": "9" * 20}, "from"),
        ({"quantity": "voltage_l9"}, "quantity"),
        ({"format": "xml"}, "format"),
    ],
)
async def test_bad_query_parameters_are_400_naming_the_parameter(
    store: InMemoryStore, make_client: Client, params: dict[str, str], names: str
) -> None:
    add_meter(store)
    response = await make_client().get(f"/api/v1/meters/{METER}/readings", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert error["message"].startswith(f"{names}:")
    assert store.readings_calls == []


async def test_too_many_buckets_are_refused_before_querying(
    store: InMemoryStore, make_client: Client
) -> None:
    add_meter(store)
    response = await make_client().get(
        f"/api/v1/meters/{METER}/readings",
        params={"quantity": "voltage", "bucket": "1s", "from": "2025-11-01"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many_points"
    assert store.readings_calls == []


async def test_too_many_raw_points_ask_for_a_bucket(
    store: InMemoryStore, make_client: Client
) -> None:
    add_meter(store)
    store.points = [HistoryPoint("voltage", NOW_MS - i * 1000, 230.0) for i in range(4, 0, -1)]
    client = make_client(options=ApiOptions(max_points=3))
    response = await client.get(f"/api/v1/meters/{METER}/readings")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "too_many_points"
    assert "bucket" in error["message"]
    assert store.readings_calls[0].limit == 4


async def test_readings_of_an_unknown_meter_are_404(make_client: Client) -> None:
    response = await make_client().get(f"/api/v1/meters/{METER}/readings")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "meter_not_found"


async def test_csv_export_has_a_header_and_one_row_per_point(
    store: InMemoryStore, make_client: Client
) -> None:
    add_meter(store)
    store.points = [
        HistoryPoint("voltage", NOW_MS - HOUR_MS, 230.5),
        HistoryPoint("energy_active_import_total", NOW_MS - HOUR_MS, 1234.56),
    ]
    response = await make_client().get(
        f"/api/v1/meters/{METER}/readings", params={"format": "csv", "bucket": "1h"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert f"{METER}-readings.csv" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["ts", "time", "quantity", "value", "unit"]
    # The store orders by quantity, then time.
    assert rows[1][2:] == ["energy_active_import_total", "1234.56", "kWh"]
    assert rows[2] == [str(NOW_MS - HOUR_MS), "2025-11-26T23:00:00Z", "voltage", "230.5", "V"]
    assert len(rows) == 3


async def test_csv_export_of_nothing_is_just_the_header(
    store: InMemoryStore, make_client: Client
) -> None:
    add_meter(store)
    response = await make_client().get(f"/api/v1/meters/{METER}/readings?format=csv")
    assert response.text == "ts,time,quantity,value,unit\n"


async def test_events_are_listed_newest_first_for_the_last_week(
    store: InMemoryStore, make_client: Client
) -> None:
    add_meter(store)
    store.event_rows = [
        EventRecord(2, METER, NOW_MS - 1000, EventKind.OVERVOLTAGE, Severity.WARNING, {"v": 260}),
        EventRecord(1, METER, NOW_MS - 9000, EventKind.METER_ONLINE, Severity.INFO, {}),
    ]
    response = await make_client().get(f"/api/v1/meters/{METER}/events")
    assert response.status_code == 200
    body = EventList.model_validate(response.json())
    assert [e.event for e in body.events] == ["overvoltage", "meter_online"]
    assert body.events[0].data == {"v": 260}
    assert body.events[0].meter_id == METER.value
    call = store.events_calls[0]
    assert (call.meter, call.from_ms, call.to_ms) == (METER, NOW_MS - 7 * 86_400_000, NOW_MS)
    assert call.limit == ApiOptions().max_events


async def test_events_limit_is_bounded(store: InMemoryStore, make_client: Client) -> None:
    add_meter(store)
    client = make_client()
    ok = await client.get(f"/api/v1/meters/{METER}/events", params={"limit": 5})
    assert ok.status_code == 200
    assert store.events_calls[0].limit == 5
    too_many = await client.get(f"/api/v1/meters/{METER}/events", params={"limit": 10**6})
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "invalid_parameter"
    not_a_number = await client.get(f"/api/v1/meters/{METER}/events", params={"limit": "x"})
    assert not_a_number.status_code == 422
    assert not_a_number.json()["error"]["code"] == "validation_error"


async def test_events_with_a_bad_range_are_400(store: InMemoryStore, make_client: Client) -> None:
    add_meter(store)
    response = await make_client().get(
        f"/api/v1/meters/{METER}/events", params={"from": "2025-11-28"}
    )
    assert response.status_code == 400


async def test_concurrent_meter_lists_share_one_build() -> None:
    builds = 0
    release = asyncio.Event()

    async def build() -> bytes:
        nonlocal builds
        builds += 1
        await release.wait()
        return f"build {builds}".encode()

    shared = SharedAnswer(build, max_age_s=0.0)
    waiting = [asyncio.create_task(shared.get()) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == [b"build 1"] * 5
    assert await shared.get() == b"build 2"  # max_age 0: a later request builds again


async def test_a_fresh_answer_is_reused_and_a_failed_build_is_not() -> None:
    outcomes: list[bytes | Exception] = [StoreUnavailable("down"), b"one", b"two"]

    async def build() -> bytes:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    shared = SharedAnswer(build, max_age_s=60.0)
    with pytest.raises(StoreUnavailable):
        await shared.get()
    assert await shared.get() == b"one"
    assert await shared.get() == b"one"


async def test_meter_list_can_be_always_fresh(store: InMemoryStore, make_client: Client) -> None:
    client = make_client(options=ApiOptions(meter_list_max_age_s=0))
    assert (await client.get("/api/v1/meters")).json()["count"] == 0
    add_meter(store)
    assert (await client.get("/api/v1/meters")).json()["count"] == 1
