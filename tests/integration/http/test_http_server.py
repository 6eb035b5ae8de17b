"""The HTTP adapter over a real socket (uvicorn on 127.0.0.1, port 0) and a real SQLite store.

Data goes in through ``store.handle`` (the way telemetry writes it) and comes back out
through the API; commands run through the real ``CommandService`` with the store as audit.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from ivy_gateway.adapters.http import (
    ApiDeps,
    GatewayInfo,
    HttpPortInUse,
    HttpServer,
    LiveFeed,
    create_api,
    serve_http,
    store_check,
)
from ivy_gateway.adapters.storage import open_store
from ivy_gateway.domain.events import (
    EventKind,
    GatewayEvent,
    MeterEvent,
    MeterStatus,
    ReadingsBatch,
    Severity,
)
from ivy_gateway.domain.meter import ConnectionInfo, MeterId, ProtocolKind
from ivy_gateway.domain.ports import MeterLink
from ivy_gateway.domain.quantities import Reading, ReadingSource
from ivy_gateway.domain.store import ReadingStore
from ivy_gateway.services.commands import CommandService

METER = MeterId("000000001234")
T0 = 1_764_201_600_000  # 2025-11-27T00:00:00Z
MINUTE_MS = 60_000


class _Directory:
    def get(self, meter: MeterId) -> MeterLink | None:
        return None

    def meters(self) -> Sequence[MeterId]:
        return []


class _Clock:
    def now_ms(self) -> int:
        return T0 + 3 * 3_600_000

    def monotonic(self) -> float:
        return 0.0


class _Events:
    def emit(self, event: GatewayEvent) -> None:
        pass


def _history() -> list[GatewayEvent]:
    """Online status, 3 hours of 1-minute voltage (230 + minute % 60 / 10), an event."""
    status = MeterStatus(
        METER,
        True,
        ProtocolKind.DLT645,
        "dlt645-single-phase",
        ConnectionInfo(1, "10.0.0.9", 4000),
        T0,
    )
    events: list[GatewayEvent] = [status]
    for minute in range(180):
        ts = T0 + minute * MINUTE_MS
        value = Decimal(230) + Decimal(minute % 60) / 10
        reading = Reading(METER, "voltage", value, "V", ts, ReadingSource.POLL, "02010100")
        events.append(ReadingsBatch(METER, ProtocolKind.DLT645, ReadingSource.POLL, ts, [reading]))
    events.append(MeterEvent(EventKind.OVERVOLTAGE, Severity.WARNING, T0 + 5, METER, {"v": 260}))
    return events


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ReadingStore]:
    opened = await open_store(f"sqlite:///{tmp_path / 'http.db'}")
    await opened.handle(_history())
    yield opened
    await opened.close()


@pytest.fixture
def feed() -> LiveFeed:
    return LiveFeed("gw-int")


@pytest.fixture
async def base_url(store: ReadingStore, feed: LiveFeed) -> AsyncIterator[str]:
    service = CommandService(_Directory(), _Events(), _Clock(), audit=store)
    deps = ApiDeps(
        store=store,
        parser=service,
        runner=service,
        feed=feed,
        readiness={"store": store_check(store)},
        gateway_info=lambda: GatewayInfo("1.2.3", "gw-int", 1.0),
        now_ms=_Clock().now_ms,
    )
    async with HttpServer(create_api(deps), "127.0.0.1", 0) as server:
        yield f"http://127.0.0.1:{server.port}"


async def test_meters_readings_and_events_come_from_sqlite(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        meters = (await client.get("/api/v1/meters")).json()
        assert meters["count"] == 1
        meter = meters["meters"][0]
        assert (meter["meterId"], meter["protocol"], meter["ip"]) == (
            METER.value,
            "dlt645",
            "10.0.0.9",
        )
        assert meter["values"]["voltage"]["value"] == 235.9

        hourly = await client.get(
            f"/api/v1/meters/{METER}/readings",
            params={"quantity": "voltage", "from": str(T0), "bucket": "1h", "agg": "max"},
        )
        assert hourly.status_code == 200, hourly.text
        points = hourly.json()["series"]["voltage"]["points"]
        assert points == [[T0, 235.9], [T0 + 3_600_000, 235.9], [T0 + 7_200_000, 235.9]]

        raw = await client.get(
            f"/api/v1/meters/{METER}/readings",
            params={"from": "2025-11-27T00:00:00Z", "to": "2025-11-27T00:03:00Z", "format": "csv"},
        )
        rows = list(csv.reader(io.StringIO(raw.text)))
        assert rows == [
            ["ts", "time", "quantity", "value", "unit"],
            [str(T0), "2025-11-27T00:00:00Z", "voltage", "230.0", "V"],
            [str(T0 + MINUTE_MS), "2025-11-27T00:01:00Z", "voltage", "230.1", "V"],
            [str(T0 + 2 * MINUTE_MS), "2025-11-27T00:02:00Z", "voltage", "230.2", "V"],
        ]

        events = (await client.get(f"/api/v1/meters/{METER}/events")).json()["events"]
        assert [e["event"] for e in events][:1] == ["overvoltage"]

        ready = await client.get("/ready")
        assert ready.json() == {"status": "ready", "checks": {"store": "ok"}}
        gateway = (await client.get("/api/v1/gateway")).json()
        assert gateway["storeMode"] == "sqlite"


async def test_a_command_is_audited_in_sqlite(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        answer = await client.post(
            f"/api/v1/meters/{METER}/commands", json={"id": "int-1", "method": "read_address"}
        )
        assert answer.status_code == 409  # no session holds the meter
        record = (await client.get("/api/v1/commands/int-1")).json()
        assert record["state"] == "failed"
        assert record["response"]["errorCode"] == "meter_offline"
        assert record["requestedBy"] == "http"


async def test_sse_streams_live_events_over_the_socket(base_url: str, feed: LiveFeed) -> None:
    reading = Reading(METER, "voltage", Decimal("231.4"), "V", T0, ReadingSource.PUSH, "02010100")
    batch = ReadingsBatch(METER, ProtocolKind.DLT645, ReadingSource.PUSH, T0, [reading])
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=5) as client,
        client.stream("GET", "/api/v1/live") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        async with asyncio.timeout(5):
            assert [await anext(lines) for _ in range(3)] == [": connected", "retry: 3000", ""]
            await feed.handle([batch])
            received: list[str] = []
            while not received or received[-1] != "":
                received.append(await anext(lines))
    fields = dict(line.split(": ", 1) for line in received if ": " in line)
    assert fields["event"] == "telemetry"
    assert json.loads(fields["data"])["values"]["voltage"]["value"] == 231.4
    # The client went away: its subscription is gone.
    async with asyncio.timeout(5):
        while feed.subscriber_count:  # noqa: ASYNC110 - the server notices the close by itself
            await asyncio.sleep(0.01)


async def test_stop_ends_open_live_streams_promptly(store: ReadingStore, feed: LiveFeed) -> None:
    service = CommandService(_Directory(), _Events(), _Clock(), audit=store)
    server = HttpServer(create_api(ApiDeps(store, service, service, feed=feed)), "127.0.0.1", 0)
    port = await server.start()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        async with client.stream("GET", "/api/v1/live") as response:
            assert await anext(response.aiter_lines()) == ": connected"
            async with asyncio.timeout(3):
                await server.stop()
        with pytest.raises(httpx.ConnectError):
            await client.get("/health")


async def test_a_taken_port_is_a_clear_error(store: ReadingStore) -> None:
    service = CommandService(_Directory(), _Events(), _Clock(), audit=store)
    app = create_api(ApiDeps(store, service, service))
    async with HttpServer(app, "127.0.0.1", 0) as first:
        assert first.port is not None
        with pytest.raises(HttpPortInUse, match=str(first.port)):
            await HttpServer(app, "127.0.0.1", first.port).start()


async def test_serve_http_reports_its_port_and_stops_on_cancellation(store: ReadingStore) -> None:
    service = CommandService(_Directory(), _Events(), _Clock(), audit=store)
    app = create_api(ApiDeps(store, service, service))
    ready = asyncio.Event()
    ports: list[int] = []
    task = asyncio.create_task(serve_http(app, "127.0.0.1", 0, ready=ready, on_bound=ports.append))
    await asyncio.wait_for(ready.wait(), 5)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}") as client:
        assert (await client.get("/health")).json() == {"status": "ok"}
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(httpx.ConnectError):
            await client.get("/health")
