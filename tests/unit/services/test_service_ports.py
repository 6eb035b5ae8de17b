"""The services satisfy the domain ports app.py wires them through (checked by mypy too)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.ports import (
    CommandAudit,
    CommandRunner,
    EventSink,
    MeterLink,
    PollGate,
    TelemetrySink,
    TrafficCapture,
)
from ivy_gateway.services import (
    Alarms,
    AlarmThresholds,
    Capture,
    CommandService,
    InMemoryCommandAudit,
    Poller,
    Telemetry,
)


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class EmptyDirectory:
    def get(self, meter: MeterId) -> MeterLink | None:
        return None

    def meters(self) -> Sequence[MeterId]:
        return []


def test_services_implement_the_domain_ports(tmp_path: Path) -> None:
    clock, directory = SystemClock(), EmptyDirectory()
    telemetry = Telemetry(clock)
    events: EventSink = telemetry
    poller = Poller(directory, events, clock)
    gate: PollGate = poller
    audit: CommandAudit = InMemoryCommandAudit()
    runner: CommandRunner = CommandService(directory, events, clock, audit=audit, gate=gate)
    sinks: list[TelemetrySink] = [poller, Alarms(AlarmThresholds(), events)]
    capture: TrafficCapture = Capture(tmp_path, clock)
    for name, sink in zip(("poller", "alarms"), sinks, strict=True):
        telemetry.add_sink(name, sink)
    assert runner is not None
    assert not capture.is_enabled(MeterId("000000000001"))
    assert [s.name for s in telemetry.stats().sinks] == ["poller", "alarms"]
