"""What the HTTP API needs from the rest of the gateway, as small Protocols and dataclasses.

The composition root builds one ``ApiDeps`` and hands it to ``create_api``; the adapter
never imports ``app``/``settings``, so tests drive it with in-memory fakes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ivy_gateway.domain.commands import Command
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.ports import CommandRunner
from ivy_gateway.domain.store import (
    Aggregate,
    CommandRecord,
    EventRecord,
    HistoryPoint,
    MeterRecord,
    StoreMode,
)
from ivy_gateway.services.telemetry import MeterSnapshot

from .auth import TokenVerifier
from .live import LiveFeed

__all__ = [
    "ApiDeps",
    "ApiOptions",
    "ApiStore",
    "CommandParser",
    "GatewayInfo",
    "LiveState",
    "MetricsSource",
    "ReadinessCheck",
]


class ApiStore(Protocol):
    """The read side of ``ReadingStore`` the API uses (a ``ReadingStore`` satisfies it)."""

    @property
    def mode(self) -> StoreMode: ...

    async def list_meters(self) -> list[MeterRecord]: ...
    async def get_meter(self, meter: MeterId) -> MeterRecord | None: ...
    async def readings(
        self,
        meter: MeterId,
        quantity: str | None,
        from_ms: int,
        to_ms: int,
        *,
        bucket_s: int | None = None,
        agg: Aggregate = Aggregate.AVG,
        limit: int | None = None,
    ) -> list[HistoryPoint]: ...
    async def events(
        self, meter: MeterId | None, from_ms: int, to_ms: int, *, limit: int = 1000
    ) -> list[EventRecord]: ...
    async def command(self, command_id: str) -> CommandRecord | None: ...


class CommandParser(Protocol):
    """``CommandService.parse_command``: raises ``InvalidCommand`` for a bad request."""

    def parse_command(
        self, meter_id: str, payload: Mapping[str, Any], requested_by: str = ...
    ) -> Command: ...


class LiveState(Protocol):
    """Per-meter state held in memory (``services.Telemetry``)."""

    def snapshot(self, meter: MeterId) -> MeterSnapshot | None: ...
    def snapshots(self) -> list[MeterSnapshot]: ...


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    """``GET /api/v1/gateway``; ``counters`` are the MQTT ``gateway/stats`` counters."""

    version: str
    gateway_id: str
    uptime_s: float
    counters: Mapping[str, float] = field(default_factory=dict)
    cluster_members: Sequence[str] = ()


#: Returns None when ready, else why not (one short line). May be sync or async.
ReadinessCheck = Callable[[], Awaitable[str | None] | str | None]

#: Prometheus text exposition (format 0.0.4) of the gateway's metrics.
MetricsSource = Callable[[], bytes]


@dataclass(frozen=True, slots=True)
class ApiOptions:
    """Limits and switches (``[http]`` settings)."""

    protect_reads: bool = False  # GET endpoints (and /metrics, /live) need a token too
    default_range_s: int = 86_400  # readings: ``from`` defaults to ``to`` minus this
    default_events_range_s: int = 7 * 86_400  # events are sparse: a week by default
    max_range_s: int = 400 * 86_400  # a little over a year, so yearly bills fit
    max_points: int = 100_000  # one response; raw history beyond it needs a bucket
    max_events: int = 10_000
    max_body_bytes: int = 64 * 1024
    max_background_commands: int = 1_000  # ``?wait=false`` commands in flight
    meter_list_max_age_s: float = 1.0  # GET /api/v1/meters may be this old (0: always fresh)
    readiness_timeout_s: float = 2.0


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class CaptureControl(Protocol):
    """Switches per-meter traffic capture (``services.Capture``)."""

    def enable(self, meter: MeterId) -> None: ...
    def disable(self, meter: MeterId) -> None: ...
    def enabled(self) -> list[MeterId]: ...


@dataclass(frozen=True, slots=True)
class ApiDeps:
    """Everything ``create_api`` needs. Only ``store``, ``parser``, ``runner`` are required.

    ``tokens`` None (or empty) leaves write endpoints open: the contract's default.
    ``metrics`` None renders ``gateway_info().counters`` as gauges.
    """

    store: ApiStore
    parser: CommandParser
    runner: CommandRunner
    live_state: LiveState | None = None
    gateway_info: Callable[[], GatewayInfo] | None = None
    readiness: Mapping[str, ReadinessCheck] = field(default_factory=dict)
    feed: LiveFeed | None = None
    tokens: TokenVerifier | None = None
    metrics: MetricsSource | None = None
    #: Run-time traffic capture (``services.Capture``); None: the capture routes are absent.
    capture: CaptureControl | None = None
    options: ApiOptions = field(default_factory=ApiOptions)
    now_ms: Callable[[], int] = _wall_ms
