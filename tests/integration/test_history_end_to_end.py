"""Simulated fleet → gateway → store → history API (issue: persistence and history API).

The aggregates the API computes in the database must equal the ones computed here from
what the simulators actually put on the wire, and a command sent through the HTTP API
must switch the simulator's relay and appear in the command audit.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from ivy_gateway.app import Gateway
from ivy_gateway.cli import app
from ivy_gateway.settings import load_settings
from ivy_gateway.simulators.dlt645_meter import Dlt645Meter

METERS = ["000000020001", "000000020002"]
BUCKET_MS = 15 * 60 * 1000
VOLTAGE_DI = "02010100"


def _expected(meter: Dlt645Meter, agg: str) -> dict[int, Decimal]:
    """Bucket start → aggregate of the values the simulator sent, bucketed by send time."""
    buckets: dict[int, list[tuple[int, Decimal]]] = {}
    for sent in meter.sent:
        if sent.di == VOLTAGE_DI:
            start = sent.ts_ms - sent.ts_ms % BUCKET_MS
            buckets.setdefault(start, []).append((sent.ts_ms, Decimal(str(sent.value))))
    out: dict[int, Decimal] = {}
    for start, values in buckets.items():
        out[start] = _aggregate([v for _, v in sorted(values)], agg)
    return out


def _aggregate(numbers: list[Decimal], agg: str) -> Decimal:
    if agg == "avg":
        return Decimal(str(statistics.fmean(numbers)))
    if agg == "min":
        return min(numbers)
    if agg == "max":
        return max(numbers)
    return numbers[0] if agg == "first" else numbers[-1]


async def test_history_aggregates_and_http_commands(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        {
            "meters": {"host": "127.0.0.1", "port": 0},
            "mqtt": {"host": "127.0.0.1", "port": 0, "ws_port": 0},
            "http": {"host": "127.0.0.1", "port": 0},
            "storage": {"url": f"sqlite:///{tmp_path / 'h.db'}", "batch_interval_s": 0.1},
            "polling": {"interval_scale": 0.01, "timeout_s": 1.0},  # 60 s groups → 0.6 s
        },
    )
    meters = [Dlt645Meter(m, seed=n, announce=True) for n, m in enumerate(METERS)]
    async with Gateway(settings) as gateway:
        port = gateway.ports["meters"].port
        tasks = [asyncio.create_task(m.connect("127.0.0.1", port)) for m in meters]
        base = f"http://127.0.0.1:{gateway.ports['http'].port}"
        async with httpx.AsyncClient(base_url=base, timeout=20) as client:
            try:
                await _wait_for_polls(meters)
                command = await client.post(
                    f"/api/v1/meters/{METERS[0]}/commands",
                    json={
                        "id": "http-relay-1",
                        "method": "relay_control",
                        "params": {"state": "open"},
                    },
                )
                assert command.status_code == 200, command.text
                assert command.json()["result"] == {"state": "open", "confirmed": True}
                assert meters[0].relay_open
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0.5)  # the last replies reach the store
            await _check_aggregates(client, meters)
            audit = await client.get("/api/v1/commands/http-relay-1")
            assert audit.status_code == 200, audit.text
            record = audit.json()
            assert record["state"] == "succeeded"
            assert record["method"] == "relay_control"
            assert record["params"] == {"state": "open"}
            assert record["response"]["result"]["state"] == "open"


async def _wait_for_polls(meters: list[Dlt645Meter]) -> None:
    async with asyncio.timeout(20):
        while any(sum(s.di == VOLTAGE_DI for s in m.sent) < 5 for m in meters):  # noqa: ASYNC110
            await asyncio.sleep(0.1)


def _since(meter: Dlt645Meter) -> str:
    """Epoch ms of a bucket start before the simulator's first value (the API caps ranges)."""
    first = min(s.ts_ms for s in meter.sent)
    return str(first - first % BUCKET_MS - BUCKET_MS)


async def _check_aggregates(client: httpx.AsyncClient, meters: list[Dlt645Meter]) -> None:
    for meter, meter_id in zip(meters, METERS, strict=True):
        for agg in ("avg", "min", "max", "first", "last"):
            response = await client.get(
                f"/api/v1/meters/{meter_id}/readings",
                params={
                    "quantity": "voltage_l1",
                    "bucket": "15m",
                    "agg": agg,
                    "from": _since(meter),
                },
            )
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            points = body["series"]["voltage_l1"]["points"]
            got = {ts: Decimal(str(value)) for ts, value in points}
            expected = _expected(meter, agg)
            assert got.keys() == expected.keys(), agg
            for start, value in expected.items():
                assert abs(got[start] - value) < Decimal("0.001"), (agg, start)
        csv = await client.get(
            f"/api/v1/meters/{meter_id}/readings",
            params={"quantity": "voltage_l1", "from": _since(meter), "format": "csv"},
        )
        assert csv.status_code == 200
        assert csv.headers["content-type"].startswith("text/csv")
        rows = csv.text.strip().splitlines()
        assert len(rows) - 1 == sum(s.di == VOLTAGE_DI for s in meter.sent)


async def test_traffic_capture_switched_at_run_time(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        {
            "meters": {"host": "127.0.0.1", "port": 0, "capture_dir": str(tmp_path / "cap")},
            "mqtt": {"host": "127.0.0.1", "port": 0, "ws_port": 0},
            "http": {"host": "127.0.0.1", "port": 0},
            "storage": {"url": f"sqlite:///{tmp_path / 'c.db'}"},
            "polling": {"interval_scale": 0.01, "timeout_s": 1.0},
        },
    )
    meter = Dlt645Meter(METERS[1], seed=4, announce=True)
    async with Gateway(settings) as gateway:
        task = asyncio.create_task(meter.connect("127.0.0.1", gateway.ports["meters"].port))
        base = f"http://127.0.0.1:{gateway.ports['http'].port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                switched = await client.put(
                    f"/api/v1/meters/{METERS[1]}/capture", json={"enabled": True}
                )
                assert switched.status_code == 200, switched.text
                listed = await client.get("/api/v1/captures")
                assert listed.json() == {"meters": [METERS[1]]}
                await _wait_for_polls([meter])
                await client.put(f"/api/v1/meters/{METERS[1]}/capture", json={"enabled": False})
                assert (await client.get("/api/v1/captures")).json() == {"meters": []}
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    # The capture file replays through the decoder: requests out, replies in.
    [capture] = list((tmp_path / "cap").glob("*.jsonl"))
    result = CliRunner().invoke(app, ["decode", "--json", "--capture", str(capture)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["direction"] for r in records} == {"rx", "tx"}
    functions = {f["function"] for r in records for f in r["decoded"]}
    assert "11" in functions  # read requests and their replies
