"""``GatewayMetrics`` with stand-ins for the gateway's parts: what each scrape reads."""

from __future__ import annotations

import time
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ivy_gateway.domain.commands import Command, CommandMethod, CommandResult, ErrorCode
from ivy_gateway.domain.events import EventKind, MeterEvent, ReadingsBatch, Severity
from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.domain.quantities import Reading, ReadingSource
from ivy_gateway.metrics import GatewayMetrics, MetricsSubject
from ivy_gateway.services import Poller, Telemetry
from ivy_gateway.sessions.registry import SessionRegistry

METER = MeterId("000000000001")


class Clock:
    def __init__(self) -> None:
        self.mono = 100.0

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def monotonic(self) -> float:
        return self.mono


class Session:
    def __init__(self, protocol: ProtocolKind, **counters: int) -> None:
        self.protocol = protocol
        for name, value in counters.items():
            setattr(self, name, value)


def make(cluster: Any = None) -> tuple[GatewayMetrics, SimpleNamespace, Clock]:
    clock = Clock()
    registry: SessionRegistry[Any] = SessionRegistry()
    telemetry = Telemetry(clock)
    subject = SimpleNamespace(
        gateway_id="gw-1",
        server=None,
        telemetry=telemetry,
        poller=Poller(registry, telemetry, clock),
        publisher=None,
        cluster=cluster,
        context=SimpleNamespace(registry=registry),
        dispatcher=SimpleNamespace(connections_by_protocol={"DLT645": 2}),
        live_feed=None,
        uptime_s=lambda: 12.0,
    )
    metrics = GatewayMetrics(cast(MetricsSubject, subject), monotonic=clock.monotonic)
    return metrics, subject, clock


def scrape(metrics: GatewayMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.render().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_parts_not_started_read_as_zero_and_redis_as_disabled() -> None:
    metrics, _, _ = make()
    found = scrape(metrics)
    assert found[("ivy_connections_open", frozenset())] == 0
    assert found[("ivy_connections_refused_total", frozenset({("reason", "per_ip")}))] == 0
    assert found[("ivy_connections_identified_total", frozenset({("protocol", "dlt645")}))] == 2
    assert found[("ivy_redis_state", frozenset({("state", "disabled")}))] == 1
    assert found[("ivy_cluster_members", frozenset())] == 1
    assert not any(name.startswith("ivy_mqtt") for name, _ in found)


def test_a_degraded_cluster_is_reported() -> None:
    cluster = SimpleNamespace(
        degraded=True, members=lambda: ["gw-1", "gw-2"], counters=lambda: {"leasesHeld": 3}
    )
    found = scrape(make(cluster)[0])
    assert found[("ivy_redis_state", frozenset({("state", "degraded")}))] == 1
    assert found[("ivy_redis_state", frozenset({("state", "connected")}))] == 0
    assert found[("ivy_cluster_members", frozenset())] == 2
    assert found[("ivy_cluster_leases_held", frozenset())] == 3


def test_decode_errors_of_ended_sessions_are_kept() -> None:
    metrics, subject, _ = make()
    registry = subject.context.registry
    dlt645 = Session(ProtocolKind.DLT645, frames_dropped=2, garbage_bytes=10)
    registry.claim(METER, dlt645)
    found = scrape(metrics)
    dropped = (
        "ivy_decode_errors_total",
        frozenset({("protocol", "dlt645"), ("kind", "frame_dropped")}),
    )
    garbage = ("ivy_decode_discarded_bytes_total", frozenset({("protocol", "dlt645")}))
    assert (found[dropped], found[garbage]) == (2, 10)
    registry.release(METER, dlt645)
    registry.claim(METER, Session(ProtocolKind.DLT645, frames_dropped=1, garbage_bytes=0))
    found = scrape(metrics)
    assert (found[dropped], found[garbage]) == (3, 10)  # never goes down


async def test_readings_events_and_rates_come_from_telemetry() -> None:
    metrics, _, clock = make()
    reading = Reading(METER, "voltage_l1", Decimal("230"), "V", 0, ReadingSource.POLL, "02010100")
    batch = ReadingsBatch(METER, ProtocolKind.DLMS, ReadingSource.POLL, 0, [reading] * 20)
    event = MeterEvent(EventKind.INVALID_TRAFFIC, Severity.WARNING, 0, None)
    await metrics.handle([batch, event])
    clock.mono += 2.0
    found = scrape(metrics)
    assert found[("ivy_readings_total", frozenset({("protocol", "dlms")}))] == 20
    assert found[("ivy_readings_per_second", frozenset({("protocol", "dlms")}))] == 10
    assert found[("ivy_events_total", frozenset({("event", "invalid_traffic")}))] == 1
    invalid = frozenset({("protocol", "unknown"), ("kind", "invalid_traffic")})
    assert found[("ivy_decode_errors_total", invalid)] == 1
    clock.mono += 60.0
    assert ("ivy_readings_per_second", frozenset({("protocol", "dlms")})) not in scrape(metrics)


def test_polls_that_never_asked_the_meter_have_no_latency() -> None:
    metrics, _, _ = make()
    metrics.observe_poll("dlt645", 0.2, "ok")
    metrics.observe_poll("dlt645", 0.0, "busy")
    found = scrape(metrics)
    assert found[("ivy_poll_latency_seconds_count", frozenset({("protocol", "dlt645")}))] == 1
    assert found[("ivy_polls_total", frozenset({("protocol", "dlt645"), ("outcome", "busy")}))] == 1


class Runner:
    def __init__(self, outcome: CommandResult | Exception) -> None:
        self.outcome = outcome

    async def run(self, command: Command) -> CommandResult:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


async def test_command_outcomes_are_counted_by_method() -> None:
    metrics, _, _ = make()
    command = Command("c1", METER, CommandMethod.READ_ADDRESS)
    await metrics.count_commands(Runner(CommandResult.ok("c1", {}))).run(command)
    failed = CommandResult.failed("c1", ErrorCode.TIMEOUT, "no answer")
    await metrics.count_commands(Runner(failed)).run(command)
    with pytest.raises(RuntimeError):
        await metrics.count_commands(Runner(RuntimeError("bug"))).run(command)
    found = scrape(metrics)
    for outcome in ("success", "timeout", "internal"):
        labels = frozenset({("method", "read_address"), ("outcome", outcome)})
        assert found[("ivy_commands_total", labels)] == 1
