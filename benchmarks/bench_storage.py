"""Storage: ingest rate through ``ReadingStore.handle`` and history query latency.

Ingest: 100,000 readings in batches of 2,000 (100 meters × 20 quantities per batch), the
whole ``handle`` path (row building, meters and last-value upserts, readings). PostgreSQL is
also timed for a retried batch, which cannot use COPY (see adapters/storage/postgres.py).
Query: 30 days of one quantity at 1-minute resolution (43,200 rows), bucketed to 1 hour.

PostgreSQL: ``IVY_BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
the benchmark works in a schema of its own and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from harness import Row
from ivy_gateway.adapters.storage import open_store
from ivy_gateway.domain.events import GatewayEvent, ReadingsBatch
from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.domain.quantities import QUANTITIES, Reading, ReadingSource
from ivy_gateway.domain.store import Aggregate, ReadingStore

PG_URL = os.environ.get("IVY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
T0 = 1_764_201_600_000
MINUTE = 60_000
TOTAL_ROWS = 100_000
BATCH_ROWS = 2_000
METERS = 100
QUANTITY_NAMES = list(QUANTITIES)[:20]
QUERY_DAYS = 30


def _ingest_batches() -> list[list[GatewayEvent]]:
    meters = [MeterId(f"{i:012d}") for i in range(1, METERS + 1)]
    batches: list[list[GatewayEvent]] = []
    per_batch = BATCH_ROWS // len(QUANTITY_NAMES)  # meter readings per batch
    for n in range(TOTAL_ROWS // BATCH_ROWS):
        ts = T0 + n * MINUTE
        events: list[GatewayEvent] = []
        for meter in meters[:per_batch]:
            readings = [
                Reading(meter, q, Decimal(n) + Decimal("0.25"), "V", ts, ReadingSource.POLL, "x")
                for q in QUANTITY_NAMES
            ]
            events.append(
                ReadingsBatch(meter, ProtocolKind.DLT645, ReadingSource.POLL, ts, readings)
            )
        batches.append(events)
    return batches


def _history_batches() -> list[list[GatewayEvent]]:
    meter = MeterId("999999999999")
    minutes = QUERY_DAYS * 24 * 60
    readings = [
        Reading(
            meter,
            "voltage_l1",
            Decimal(220 + i % 20),
            "V",
            T0 + i * MINUTE,
            ReadingSource.POLL,
            "x",
        )
        for i in range(minutes)
    ]
    return [
        [
            ReadingsBatch(
                meter, ProtocolKind.DLT645, ReadingSource.POLL, T0, readings[i : i + BATCH_ROWS]
            )
        ]
        for i in range(0, minutes, BATCH_ROWS)
    ]


async def _ingest(store: ReadingStore, batches: list[list[GatewayEvent]]) -> float:
    start = time.perf_counter()
    for events in batches:
        await store.handle(events)
    return TOTAL_ROWS / (time.perf_counter() - start)


async def _query_ms(store: ReadingStore, agg: Aggregate) -> float:
    meter = MeterId("999999999999")
    end = T0 + QUERY_DAYS * 86_400_000
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        points = await store.readings(meter, "voltage_l1", T0, end, bucket_s=3600, agg=agg)
        timings.append((time.perf_counter() - start) * 1000)
        assert len(points) == QUERY_DAYS * 24, len(points)
    return statistics.median(timings)


async def _measure(name: str, url: str, *, retry: bool) -> list[Row]:
    store = await open_store(url)
    try:
        batches = _ingest_batches()
        target = "≥ 50,000" if name == "PostgreSQL" else "≥ 20,000"
        rows = [
            Row(
                "storage",
                f"{name} ingest (batches of 2,000)",
                await _ingest(store, batches),
                "rows/s",
                target,
            )
        ]
        if retry:
            rate = await _ingest(store, batches)  # every row is there already
            rows.append(
                Row(
                    "storage",
                    f"{name} ingest, retried batches",
                    rate,
                    "rows/s",
                    "",
                    "ON CONFLICT path",
                )
            )
        for events in _history_batches():
            await store.handle(events)
        for agg in (Aggregate.AVG, Aggregate.LAST):
            ms = await _query_ms(store, agg)
            rows.append(
                Row("storage", f"{name} 30 d × 1 min → 1 h buckets, {agg}", ms, "ms", "< 300")
            )
        return rows
    finally:
        await store.close()


async def _postgres_rows() -> list[Row]:
    try:
        import asyncpg  # type: ignore[import-untyped]

        admin = await asyncpg.connect(PG_URL, timeout=5)
    except Exception as exc:  # any reason at all: report it instead of a figure
        print(f"bench_storage: PostgreSQL skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return [Row("storage", "PostgreSQL", 0, "-", "", "skipped: server unreachable")]
    schema = f"ivy_bench_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        return await _measure("PostgreSQL", f"{PG_URL}?search_path={schema}", retry=True)
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


async def _sqlite_rows() -> list[Row]:
    with tempfile.TemporaryDirectory() as folder:
        return await _measure("SQLite", f"sqlite:///{Path(folder) / 'bench.db'}", retry=True)


def results() -> list[Row]:
    return asyncio.run(_sqlite_rows()) + asyncio.run(_postgres_rows())
