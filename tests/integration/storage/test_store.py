"""One behaviour suite for every ``ReadingStore``: SQLite and PostgreSQL (see conftest)."""

from __future__ import annotations

import random
import statistics
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal

import pytest

from ivy_gateway.adapters.storage import open_store, prune_database, upgrade_database
from ivy_gateway.domain.commands import Command, CommandMethod, CommandResult, ErrorCode
from ivy_gateway.domain.events import (
    EventKind,
    GatewayEvent,
    MeterEvent,
    MeterStatus,
    ReadingsBatch,
    Severity,
)
from ivy_gateway.domain.meter import ConnectionInfo, MeterId, ProtocolKind
from ivy_gateway.domain.quantities import Reading, ReadingSource
from ivy_gateway.domain.store import (
    DAY_MS,
    Aggregate,
    CommandStatus,
    HistoryPoint,
    ReadingStore,
    StoreError,
    StoreMode,
)

StoreOpener = Callable[[], Awaitable[ReadingStore]]

M1 = MeterId("000000001234")
M2 = MeterId("000000005678")
T0 = 1_764_201_600_000  # 2025-11-27T00:00:00Z, a whole day in ms
MINUTE = 60_000


def reading(
    meter: MeterId,
    quantity: str,
    value: str,
    ts_ms: int,
    source: ReadingSource = ReadingSource.POLL,
) -> Reading:
    unit = "V" if quantity.startswith("voltage") else "kWh"
    return Reading(meter, quantity, Decimal(value), unit, ts_ms, source, "02010100")


def batch(meter: MeterId, readings: Sequence[Reading], ts_ms: int | None = None) -> ReadingsBatch:
    ts = ts_ms if ts_ms is not None else max(r.ts_ms for r in readings)
    return ReadingsBatch(meter, ProtocolKind.DLT645, ReadingSource.POLL, ts, list(readings))


def status(meter: MeterId, online: bool, ts_ms: int, ip: str | None = "10.0.0.7") -> MeterStatus:
    conn = ConnectionInfo(1, ip, 40_000) if ip is not None else None
    return MeterStatus(meter, online, ProtocolKind.DLT645, "dlt645-three-phase", conn, ts_ms)


def command(command_id: str = "c-1") -> Command:
    return Command(
        command_id, M1, CommandMethod.RELAY_CONTROL, {"state": "open"}, requested_by="alice"
    )


async def test_migrations_apply_once_and_are_idempotent(store_url: str) -> None:
    with pytest.raises(StoreError, match="db upgrade"):
        await open_store(store_url, migrate=False)
    assert await upgrade_database(store_url, None) == ["0001_initial"]
    assert await upgrade_database(store_url, None) == []
    store = await open_store(store_url, migrate=False)
    try:
        assert store.mode in (StoreMode.SQLITE, StoreMode.POSTGRESQL)
    finally:
        await store.close()


async def test_store_refuses_a_schema_newer_than_itself(store_url: str) -> None:
    store = await open_store(store_url)
    await store.close()
    # A migration this version does not know, as if a newer gateway had upgraded.
    await _execute(store_url, "INSERT INTO schema_version (name, applied_at) VALUES ('9999_x', 0)")
    with pytest.raises(StoreError, match="newer"):
        await open_store(store_url)


async def _execute(url: str, sql: str) -> None:
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(sql)
        conn.close()
    else:
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()


async def test_readings_round_trip_in_time_order(store: ReadingStore) -> None:
    values = ["230.5", "231.25", "229.875"]
    rs = [reading(M1, "voltage_l1", v, T0 + i * MINUTE) for i, v in enumerate(values)]
    await store.handle([batch(M1, list(reversed(rs)))])

    points = await store.readings(M1, "voltage_l1", T0, T0 + DAY_MS)

    assert points == [
        HistoryPoint("voltage_l1", T0 + i * MINUTE, float(v)) for i, v in enumerate(values)
    ]


async def test_readings_range_is_half_open_and_filters_meter_and_quantity(
    store: ReadingStore,
) -> None:
    rs = [reading(M1, "voltage_l1", str(200 + i), T0 + i * MINUTE) for i in range(5)]
    rs.append(reading(M1, "energy_active_import_total", "12.5", T0 + MINUTE))
    await store.handle([batch(M1, rs), batch(M2, [reading(M2, "voltage_l1", "1", T0 + MINUTE)])])

    window = await store.readings(M1, "voltage_l1", T0 + MINUTE, T0 + 3 * MINUTE)
    everything = await store.readings(M1, None, T0, T0 + DAY_MS)
    limited = await store.readings(M1, None, T0, T0 + DAY_MS, limit=2)

    assert [p.ts_ms for p in window] == [T0 + MINUTE, T0 + 2 * MINUTE]
    assert [(p.quantity, p.ts_ms) for p in everything] == [
        ("energy_active_import_total", T0 + MINUTE),
        *(("voltage_l1", T0 + i * MINUTE) for i in range(5)),
    ]
    assert limited == everything[:2]


def _expected_buckets(
    samples: list[tuple[int, float]], bucket_ms: int, agg: Aggregate
) -> list[tuple[int, float]]:
    groups: dict[int, list[tuple[int, float]]] = {}
    for ts, value in sorted(samples):
        groups.setdefault(ts // bucket_ms * bucket_ms, []).append((ts, value))
    pick: dict[Aggregate, Callable[[list[tuple[int, float]]], float]] = {
        Aggregate.AVG: lambda g: statistics.fmean(v for _, v in g),
        Aggregate.MIN: lambda g: min(v for _, v in g),
        Aggregate.MAX: lambda g: max(v for _, v in g),
        Aggregate.FIRST: lambda g: g[0][1],
        Aggregate.LAST: lambda g: g[-1][1],
    }
    return [(start, pick[agg](group)) for start, group in sorted(groups.items())]


@pytest.mark.parametrize("agg", list(Aggregate))
async def test_bucket_aggregates_match_python(store: ReadingStore, agg: Aggregate) -> None:
    rng = random.Random(7)
    stamps = sorted(rng.sample(range(T0, T0 + 3 * 3_600_000, 1000), 400))
    samples = [(ts, round(rng.uniform(200, 250), 2)) for ts in stamps]
    rs = [reading(M1, "voltage_l1", str(v), ts) for ts, v in samples]
    other = [reading(M1, "voltage_l2", "1.5", ts) for ts in stamps[:50]]
    for start in range(0, len(rs), 100):  # several batches, out of order
        await store.handle([batch(M1, rs[start : start + 100][::-1])])
    await store.handle([batch(M1, other)])

    points = await store.readings(M1, "voltage_l1", T0, T0 + DAY_MS, bucket_s=15 * 60, agg=agg)

    expected = _expected_buckets(samples, 15 * MINUTE, agg)
    assert [p.ts_ms for p in points] == [ts for ts, _ in expected]
    assert [p.value for p in points] == pytest.approx([v for _, v in expected], rel=1e-12)
    assert {p.quantity for p in points} == {"voltage_l1"}


async def test_buckets_of_all_quantities_come_per_quantity(store: ReadingStore) -> None:
    rs = [
        reading(M1, q, str(i), T0 + i * MINUTE)
        for q in ("voltage_l1", "voltage_l2")
        for i in range(120)
    ]
    await store.handle([batch(M1, rs)])

    points = await store.readings(M1, None, T0, T0 + DAY_MS, bucket_s=3600, agg=Aggregate.MAX)

    assert [(p.quantity, p.ts_ms, p.value) for p in points] == [
        (q, T0 + h * 3_600_000, 59.0 + h * 60) for q in ("voltage_l1", "voltage_l2") for h in (0, 1)
    ]


async def test_events_are_stored_newest_first_per_meter(store: ReadingStore) -> None:
    events = [
        MeterEvent(
            EventKind.OVERVOLTAGE, Severity.WARNING, T0 + 1, M1, {"value": Decimal("260.1")}
        ),
        MeterEvent(EventKind.RELAY_OPENED, Severity.INFO, T0 + 2, M1),
        MeterEvent(EventKind.INVALID_TRAFFIC, Severity.WARNING, T0 + 3, None, {"peer": "1.2.3.4"}),
        MeterEvent(EventKind.METER_EVENT, Severity.CRITICAL, T0 + 4, M2, {"code": [1, 2]}),
    ]
    await store.handle(events)

    mine = await store.events(M1, T0, T0 + DAY_MS)
    everyone = await store.events(None, T0, T0 + DAY_MS, limit=3)

    assert [(e.kind, e.ts_ms, e.meter) for e in mine] == [
        (EventKind.RELAY_OPENED, T0 + 2, M1),
        (EventKind.OVERVOLTAGE, T0 + 1, M1),
    ]
    assert mine[1].data == {"value": 260.1}
    assert mine[1].severity is Severity.WARNING
    assert [e.kind for e in everyone] == [
        EventKind.METER_EVENT,
        EventKind.INVALID_TRAFFIC,
        EventKind.RELAY_OPENED,
    ]
    assert everyone[1].meter is None
    assert everyone[1].data == {"peer": "1.2.3.4"}
    assert everyone[0].data == {"code": [1, 2]}


async def test_command_audit_lifecycle(store: ReadingStore) -> None:
    cmd = command()
    assert await store.command("c-1") is None

    await store.record_requested(cmd, T0)
    pending = await store.command("c-1")
    await store.record_finished(
        cmd, CommandResult.ok("c-1", {"state": "open", "confirmed": True}), T0 + 900
    )
    done = await store.command("c-1")

    assert pending is not None
    assert pending.status is CommandStatus.PENDING
    assert (pending.meter, pending.method, pending.params) == (
        M1,
        CommandMethod.RELAY_CONTROL,
        {"state": "open"},
    )
    assert (pending.requested_by, pending.requested_at_ms, pending.finished_at_ms) == (
        "alice",
        T0,
        None,
    )
    assert done is not None
    assert done.status is CommandStatus.SUCCEEDED
    assert (done.requested_at_ms, done.finished_at_ms) == (T0, T0 + 900)
    assert done.result == {"state": "open", "confirmed": True}
    assert (done.error, done.error_code) == (None, None)


async def test_failed_command_is_audited_even_without_its_request(store: ReadingStore) -> None:
    cmd = command("c-2")
    failure = CommandResult.failed("c-2", ErrorCode.METER_REJECTED, "rejected", {"code": 4})

    await store.record_finished(cmd, failure, T0 + 5)
    row = await store.command("c-2")

    assert row is not None
    assert row.status is CommandStatus.FAILED
    assert (row.error, row.error_code, row.result) == (
        "rejected",
        ErrorCode.METER_REJECTED,
        {"code": 4},
    )
    assert row.requested_at_ms == row.finished_at_ms == T0 + 5


async def test_meters_track_status_and_last_values(store: ReadingStore) -> None:
    await store.handle(
        [status(M1, True, T0), batch(M1, [reading(M1, "voltage_l1", "230.10", T0 + 10)])]
    )
    await store.handle([batch(M1, [reading(M1, "voltage_l1", "231.00", T0 + 20)])])
    await store.handle([batch(M1, [reading(M1, "voltage_l1", "199.00", T0 + 15)])])  # late poll
    await store.handle([status(M1, False, T0 + 30, ip=None)])
    await store.handle([status(M1, True, T0 + 25, ip="10.9.9.9")])  # stale, arrives late
    await store.handle([batch(M2, [reading(M2, "energy_active_import_total", "5", T0 + 40)])])

    meters = await store.list_meters()
    one = await store.get_meter(M1)

    assert [m.meter for m in meters] == [M1, M2]
    assert one == meters[0]
    assert one is not None
    assert (one.online, one.protocol, one.model, one.last_ip) == (
        False,
        ProtocolKind.DLT645,
        "dlt645-three-phase",
        "10.0.0.7",
    )
    assert (one.first_seen_ms, one.last_seen_ms) == (T0, T0 + 30)
    assert one.values["voltage_l1"].value == Decimal("231.00")
    assert one.values["voltage_l1"].ts_ms == T0 + 20
    assert (meters[1].online, meters[1].model) == (False, None)
    assert await store.get_meter(MeterId("999999999999")) is None


async def test_data_survives_close_and_reopen(open_test_store: StoreOpener) -> None:
    first = await open_test_store()
    rs = [
        reading(M1, "voltage_l1", "230.50", T0),
        reading(M1, "energy_active_import_total", "1234.5678", T0),
    ]
    await first.handle([status(M1, True, T0), batch(M1, rs)])
    await first.record_requested(command(), T0)
    await first.close()

    second = await open_test_store()

    assert await second.last_values(M1) == {r.quantity: r for r in rs}
    assert str((await second.last_values(M1))["voltage_l1"].value) == "230.50"
    assert len(await second.readings(M1, None, T0, T0 + 1)) == 2
    assert (await second.command("c-1")) is not None
    meter = await second.get_meter(M1)
    assert meter is not None
    assert meter.online


async def test_retried_batch_adds_no_duplicates(store: ReadingStore) -> None:
    rs = [reading(M1, "voltage_l1", str(200 + i), T0 + i * MINUTE) for i in range(50)]
    events: list[GatewayEvent] = [
        batch(M1, rs),
        status(M1, True, T0),
        MeterEvent(EventKind.OVERVOLTAGE, Severity.WARNING, T0, M1, {"value": 260}),
        MeterEvent(EventKind.INVALID_TRAFFIC, Severity.WARNING, T0, None, {"peer": "x"}),
    ]
    await store.handle(events)
    await store.handle(events)  # the telemetry retry after an error or timeout
    more = [reading(M1, "voltage_l1", "300", T0 + 50 * MINUTE)]
    await store.handle([batch(M1, rs[40:] + more + more)])  # overlaps, repeats inside itself

    assert len(await store.readings(M1, "voltage_l1", T0, T0 + DAY_MS)) == 51
    assert len(await store.events(None, T0, T0 + DAY_MS)) == 2
    # A poll and a push at the same instant are two readings, not a duplicate.
    await store.handle([batch(M1, [reading(M1, "voltage_l1", "1", T0, ReadingSource.PUSH)])])
    assert len(await store.readings(M1, "voltage_l1", T0, T0 + DAY_MS)) == 52


async def test_prune_deletes_only_what_is_older_than_retention(store: ReadingStore) -> None:
    now = T0 + 10 * DAY_MS
    old, new = T0, T0 + 9 * DAY_MS
    await store.handle(
        [
            batch(M1, [reading(M1, "voltage_l1", "1", old), reading(M1, "voltage_l1", "2", new)]),
            batch(M2, [reading(M2, "voltage_l1", "3", old)]),
            MeterEvent(EventKind.OVERLOAD, Severity.WARNING, old, M1),
            MeterEvent(EventKind.OVERLOAD, Severity.WARNING, new, M1),
        ]
    )
    await store.record_requested(command("old"), old)
    await store.record_requested(command("new"), new)

    counts = await store.prune(now, retention_days=5, command_retention_days=5)

    assert counts.as_dict() == {"readings": 2, "events": 1, "commands": 1}
    assert [p.ts_ms for p in await store.readings(M1, None, 0, now)] == [new]
    assert [e.ts_ms for e in await store.events(M1, 0, now)] == [new]
    assert await store.command("old") is None
    assert await store.command("new") is not None
    # Meters and their last values outlive the history.
    assert (await store.last_values(M2))["voltage_l1"].value == Decimal("3")


async def test_prune_database_reports_counts_per_table(store_url: str) -> None:
    store = await open_store(store_url)
    await store.handle([batch(M1, [reading(M1, "voltage_l1", "1", T0)])])
    await store.close()

    counts = await prune_database(store_url, None, 1, 1, T0 + 2 * DAY_MS)

    assert counts == {"readings": 1, "events": 0, "commands": 0}


async def test_closed_store_refuses_work(store: ReadingStore) -> None:
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        await store.handle([])
