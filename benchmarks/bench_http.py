"""HTTP API: meter list throughput and a month of history through the API (SQLite).

- ``GET /api/v1/meters`` with 1,000 meters (12 last values each, plus live state for all
  of them), served by uvicorn on 127.0.0.1 and fetched by 16 concurrent httpx clients for
  3 s: with ``meter_list_max_age_s=0`` (concurrent requests still share one build) and
  with the default (answers reused for up to 1 s). Client and server share one event loop and core,
  so the figures are lower bounds.
- ``GET /api/v1/meters/{id}/readings`` of 30 days of 1-minute voltage (43,200 rows) in 1 h
  buckets (720 points): median latency of 10 requests, JSON and CSV.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import httpx

from harness import Row
from ivy_gateway.adapters.http import ApiDeps, ApiOptions, HttpServer, create_api
from ivy_gateway.adapters.http.fakes import StaticLiveState
from ivy_gateway.adapters.storage import open_store
from ivy_gateway.domain.commands import Command, CommandResult, ErrorCode
from ivy_gateway.domain.events import GatewayEvent, MeterStatus, ReadingsBatch
from ivy_gateway.domain.meter import ConnectionInfo, MeterId, ProtocolKind
from ivy_gateway.domain.quantities import QUANTITIES, Reading, ReadingSource
from ivy_gateway.domain.store import ReadingStore
from ivy_gateway.services.telemetry import MeterSnapshot

T0 = 1_764_201_600_000
MINUTE_MS = 60_000
METERS = 1_000
VALUES_PER_METER = 12
HISTORY_METER = MeterId("999999999999")
DAYS = 30
CLIENTS = 16
DURATION_S = 3.0


class _NoCommands:
    """Parser and runner: the benchmark sends no commands."""

    def parse_command(self, meter_id: str, payload: object, requested_by: str = "") -> Command:
        raise AssertionError("unreachable: no commands in this benchmark")

    async def run(self, command: Command) -> CommandResult:
        return CommandResult.failed(command.id, ErrorCode.INTERNAL, "not in this benchmark")


def _fleet() -> tuple[list[list[GatewayEvent]], StaticLiveState]:
    names = list(QUANTITIES)[:VALUES_PER_METER]
    batches: list[list[GatewayEvent]] = []
    live = StaticLiveState()
    for i in range(1, METERS + 1):
        meter = MeterId(f"{i:012d}")
        readings = [
            Reading(meter, q, Decimal("230.5"), QUANTITIES[q].unit, T0, ReadingSource.POLL, "x")
            for q in names
        ]
        conn = ConnectionInfo(i, f"10.0.{i // 256}.{i % 256}", 40000)
        batches.append(
            [
                MeterStatus(meter, True, ProtocolKind.DLT645, "dlt645-three-phase", conn, T0),
                ReadingsBatch(meter, ProtocolKind.DLT645, ReadingSource.POLL, T0, readings),
            ]
        )
        live.states[meter] = MeterSnapshot(
            meter, True, ProtocolKind.DLT645, "dlt645-three-phase", conn, T0 + 1,
            {r.quantity: r for r in readings[:4]},
        )  # fmt: skip
    return batches, live


def _history() -> list[list[GatewayEvent]]:
    readings = [
        Reading(
            HISTORY_METER,
            "voltage",
            Decimal(220 + i % 20),
            "V",
            T0 + i * MINUTE_MS,
            ReadingSource.POLL,
            "x",
        )
        for i in range(DAYS * 24 * 60)
    ]
    return [
        [
            ReadingsBatch(
                HISTORY_METER, ProtocolKind.DLT645, ReadingSource.POLL, T0, readings[i : i + 2000]
            )
        ]
        for i in range(0, len(readings), 2000)
    ]


async def _load(store: ReadingStore) -> StaticLiveState:
    batches, live = _fleet()
    for start in range(0, len(batches), 100):
        await store.handle([e for events in batches[start : start + 100] for e in events])
    for events in _history():
        await store.handle(events)
    return live


async def _throughput(client: httpx.AsyncClient, path: str) -> float:
    done = 0
    deadline = time.perf_counter() + DURATION_S

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            response = await client.get(path)
            assert response.status_code == 200, response.text
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return done / (time.perf_counter() - start)


async def _latency_ms(client: httpx.AsyncClient, params: dict[str, str]) -> float:
    timings = []
    for _ in range(10):
        start = time.perf_counter()
        response = await client.get(f"/api/v1/meters/{HISTORY_METER}/readings", params=params)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    return statistics.median(timings)


async def _measure(folder: Path) -> list[Row]:
    store = await open_store(f"sqlite:///{folder / 'bench.db'}")
    try:
        live = await _load(store)
        commands = _NoCommands()
        fresh = ApiOptions(meter_list_max_age_s=0)  # every request builds the list
        deps = ApiDeps(store, commands, commands, live_state=live, options=fresh)
        shared_deps = ApiDeps(store, commands, commands, live_state=live)
        async with (
            HttpServer(create_api(shared_deps), "127.0.0.1", 0) as shared_server,
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{shared_server.port}",
                limits=httpx.Limits(max_connections=CLIENTS),
                timeout=30,
            ) as client,
        ):
            shared_rate = await _throughput(client, "/api/v1/meters")
        async with (
            HttpServer(create_api(deps), "127.0.0.1", 0) as server,
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{server.port}",
                limits=httpx.Limits(max_connections=CLIENTS),
                timeout=30,
            ) as client,
        ):
            body = (await client.get("/api/v1/meters")).json()
            assert body["count"] == METERS + 1, body["count"]
            size_kb = len((await client.get("/api/v1/meters")).content) / 1024
            meters_rate = await _throughput(client, "/api/v1/meters")
            one_rate = await _throughput(client, "/api/v1/meters/000000000500")
            month = {
                "quantity": "voltage",
                "from": str(T0),
                "to": str(T0 + DAYS * 86_400_000),
                "bucket": "1h",
            }
            points = (
                await client.get(f"/api/v1/meters/{HISTORY_METER}/readings", params=month)
            ).json()["series"]["voltage"]["points"]
            assert len(points) == DAYS * 24, len(points)
            json_ms = await _latency_ms(client, month)
            csv_ms = await _latency_ms(client, {**month, "format": "csv"})
    finally:
        await store.close()
    return [
        Row(
            "http",
            "GET /api/v1/meters, 1,000 meters, max age 0",
            meters_rate,
            "req/s",
            "≥ 20",
            f"{size_kb:,.0f} KiB; concurrent requests share one build",
        ),
        Row(
            "http",
            "GET /api/v1/meters, 1,000 meters, shared answer",
            shared_rate,
            "req/s",
            "",
            "default: answers up to 1 s old are reused",
        ),
        Row("http", "GET /api/v1/meters/{id}", one_rate, "req/s", "", f"{CLIENTS} clients"),
        Row("http", "30 d × 1 min → 1 h buckets via API (JSON)", json_ms, "ms", "< 500", "SQLite"),
        Row("http", "30 d × 1 min → 1 h buckets via API (CSV)", csv_ms, "ms", "< 500", "SQLite"),
    ]


def results() -> list[Row]:
    with tempfile.TemporaryDirectory() as folder:
        return asyncio.run(_measure(Path(folder)))
