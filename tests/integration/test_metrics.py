"""``/metrics`` of a running gateway with a simulated fleet carries the issue's metrics.

Issue "Live dashboard and operability": connections (open, refused by reason), meters
online, readings/s by protocol, poll latency histogram, command outcomes, decode errors by
kind, MQTT and store backlogs, Redis state.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from ivy_gateway.app import Gateway
from ivy_gateway.settings import load_settings
from ivy_gateway.simulators.fleet import Fleet, FleetPlan, gateway_settings_for

#: Every sample name the issue asks for (counters with their ``_total`` suffix).
REQUIRED = {
    "ivy_connections_open",
    "ivy_connections_refused_total",
    "ivy_meters_online",
    "ivy_readings_total",
    "ivy_readings_per_second",
    "ivy_poll_latency_seconds_bucket",
    "ivy_poll_latency_seconds_count",
    "ivy_poll_latency_seconds_sum",
    "ivy_polls_total",
    "ivy_commands_total",
    "ivy_decode_errors_total",
    "ivy_decode_discarded_bytes_total",
    "ivy_mqtt_queue",
    "ivy_mqtt_connected",
    "ivy_store_backlog",
    "ivy_store_failing",
    "ivy_redis_state",
    "ivy_cluster_members",
    "ivy_gateway_info",
}

OFFLINE_METER = "000000099999"
GRAFANA = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
#: Only present when clustered (this test runs one instance without Redis).
CLUSTER_ONLY = {"ivy_cluster_leases_held"}


def samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(found: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in found if s.name == name and labels.items() <= s.labels.items())


async def send_garbage(port: int) -> None:
    """A connection that speaks no protocol: an ``invalid_traffic`` decode error."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: meter\r\n\r\n" * 4)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_metrics_endpoint_carries_every_metric_of_the_issue(tmp_path: Path) -> None:
    plan = FleetPlan(dlt645=2, em114070=1, dlms=1, seed=3)
    settings = load_settings(
        None,
        {
            **gateway_settings_for(plan),
            "meters": {"host": "127.0.0.1", "port": 0, "identify_timeout_s": 1.0},
            "mqtt": {"host": "127.0.0.1", "port": 0, "ws_port": 0},
            "http": {"host": "127.0.0.1", "port": 0},
            "storage": {"url": f"sqlite:///{tmp_path / 'm.db'}", "batch_interval_s": 0.1},
            "polling": {"interval_scale": 0.01, "timeout_s": 2.0},
        },
    )
    fleet = Fleet(plan)
    dlt645 = fleet.address_of(fleet.meters[0])
    async with Gateway(settings) as gateway:
        meter_port = gateway.ports["meters"].port
        task = asyncio.create_task(fleet.run("127.0.0.1", meter_port))
        base = f"http://127.0.0.1:{gateway.ports['http'].port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=20) as client:
                await send_garbage(meter_port)
                found = await _scrape_until_polled(client)
                ok = await client.post(
                    f"/api/v1/meters/{dlt645}/commands",
                    json={"method": "read_register", "params": {"register": "voltage_l1"}},
                )
                assert ok.status_code == 200, ok.text
                offline = await client.post(
                    f"/api/v1/meters/{OFFLINE_METER}/commands",
                    json={"method": "read_address"},
                )
                assert offline.status_code == 409, offline.text
                response = await client.get("/metrics")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    missing = REQUIRED - {s.name for s in found}
    assert not missing, f"metrics missing from /metrics: {sorted(missing)}"

    drawn = set(re.findall(r"\bivy_[a-z_]+", json.dumps(json.loads(GRAFANA.read_text()))))
    unknown = drawn - CLUSTER_ONLY - {s.name for s in found}
    assert not unknown, f"docs/grafana-dashboard.json draws metrics that do not exist: {unknown}"

    assert value(found, "ivy_meters_online") == 4
    assert value(found, "ivy_connections_open") >= 4
    reasons = {s.labels["reason"] for s in found if s.name == "ivy_connections_refused_total"}
    assert reasons == {"total_cap", "per_ip", "rate_limited"}
    for protocol in ("dlt645", "dlms"):
        assert value(found, "ivy_readings_total", protocol=protocol) > 0
        assert value(found, "ivy_poll_latency_seconds_count", protocol=protocol) > 0
    assert value(found, "ivy_polls_total", outcome="ok") > 0
    assert value(found, "ivy_commands_total", method="read_register", outcome="success") == 1
    assert value(found, "ivy_commands_total", method="read_address", outcome="meter_offline") == 1
    assert value(found, "ivy_decode_errors_total", kind="invalid_traffic") >= 1
    assert value(found, "ivy_redis_state", state="disabled") == 1
    assert value(found, "ivy_redis_state", state="connected") == 0
    assert value(found, "ivy_mqtt_connected") == 1
    assert value(found, "ivy_cluster_members") == 1


async def _scrape_until_polled(client: httpx.AsyncClient) -> list[Sample]:
    """Scrape until every meter is online and both protocols have been polled."""
    async with asyncio.timeout(20):
        while True:
            response = await client.get("/metrics")
            found = samples(response.text)
            polled = all(
                value(found, "ivy_poll_latency_seconds_count", protocol=p) > 0
                for p in ("dlt645", "dlms")
            )
            if polled and value(found, "ivy_meters_online") == 4:
                return found
            await asyncio.sleep(0.2)
