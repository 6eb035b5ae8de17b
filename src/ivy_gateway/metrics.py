"""Prometheus metrics of one gateway, read from its live objects on every scrape.

Composition-level, like ``app.py``: it may look at every layer. Two kinds of metrics:

- **Read at scrape time** by ``_GatewayCollector`` from the objects that already count
  (``ServerStats``, ``Telemetry.stats()``, the MQTT transport, the Redis cluster, the
  sessions' decoder counters). Nothing on the hot path changes for these.
- **Observed as they happen** through three small hooks that ``app.py`` wires:
  ``Poller(on_poll=metrics.observe_poll)`` (poll latency), ``metrics.count_commands(runner)``
  (command outcomes) and ``telemetry.add_sink("metrics", metrics)`` (readings by protocol,
  events by kind).

Every name starts with ``ivy_``; docs/operations.md lists them, docs/grafana-dashboard.json
draws them. The registry is this object's own (never the process-global default one), so
two gateways in one process (tests) do not collide.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from ivy_gateway import __version__
from ivy_gateway.adapters.cluster import RedisCluster
from ivy_gateway.adapters.http import LiveFeed
from ivy_gateway.adapters.mqtt import MqttPublisher
from ivy_gateway.domain.commands import Command, CommandResult
from ivy_gateway.domain.events import GatewayEvent, MeterEvent, ReadingsBatch
from ivy_gateway.domain.ports import CommandRunner
from ivy_gateway.services import Poller, Telemetry
from ivy_gateway.sessions.context import SessionContext
from ivy_gateway.sessions.dispatch import Dispatcher
from ivy_gateway.transport import StreamServer

__all__ = ["POLL_LATENCY_BUCKETS_S", "CountingRunner", "GatewayMetrics", "MetricsSubject"]

log = logging.getLogger(__name__)

#: A DL/T 645 poll group is a few request/response round trips over 4G (tens of ms to
#: seconds); a DLMS one adds the association. The top buckets catch retries and timeouts.
POLL_LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

#: Session counters of decode trouble: attribute → ``kind`` label. Read with ``getattr`` so
#: a session type without one simply contributes nothing.
_DECODE_COUNTERS = {
    "frames_dropped": "frame_dropped",  # DL/T 645: valid frame, wrong address/direction/stale
    "invalid_apdus": "invalid_apdu",  # DLMS: a wrapper packet whose APDU did not decode
    "unexpected_responses": "unexpected_response",  # DLMS: no request waits for it
}
_DISCARDED_BYTES = "garbage_bytes"


class MetricsSubject(Protocol):
    """What the collector reads from a ``Gateway`` (``app.Gateway`` satisfies it)."""

    @property
    def gateway_id(self) -> str: ...
    @property
    def server(self) -> StreamServer | None: ...
    @property
    def telemetry(self) -> Telemetry: ...
    @property
    def poller(self) -> Poller: ...
    @property
    def publisher(self) -> MqttPublisher | None: ...
    @property
    def cluster(self) -> RedisCluster | None: ...
    @property
    def context(self) -> SessionContext: ...
    @property
    def dispatcher(self) -> Dispatcher: ...
    @property
    def live_feed(self) -> LiveFeed | None: ...

    def uptime_s(self) -> float: ...


class _ReadingRates:
    """Readings per second by protocol over the last ``window_s``, in one-second buckets."""

    def __init__(self, monotonic: Callable[[], float], window_s: float = 10.0) -> None:
        self._monotonic = monotonic
        self._window_s = window_s
        self._started = monotonic()
        self._buckets: deque[tuple[int, dict[str, int]]] = deque()

    def add(self, protocol: str, count: int) -> None:
        second = int(self._monotonic())
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append((second, {}))
            self._prune(second)
        counts = self._buckets[-1][1]
        counts[protocol] = counts.get(protocol, 0) + count

    def _prune(self, now_s: float) -> None:
        while self._buckets and self._buckets[0][0] <= now_s - self._window_s:
            self._buckets.popleft()

    def per_second(self) -> dict[str, float]:
        now = self._monotonic()
        self._prune(now)
        span_s = min(self._window_s, max(now - self._started, 1.0))
        totals: dict[str, int] = {}
        for _, counts in self._buckets:
            for protocol, count in counts.items():
                totals[protocol] = totals.get(protocol, 0) + count
        return {protocol: count / span_s for protocol, count in totals.items()}


class _DecodeCounts:
    """Decoder counters summed over live sessions plus the sessions that have ended.

    A session's counters die with it, so each scrape remembers what it last read from each
    session; when a session is gone, that last reading moves into ``retired``. Counts made
    between a session's last scrape and its end are not seen (a scrape interval's worth).
    """

    def __init__(self) -> None:
        self.retired: dict[tuple[str, str], int] = {}
        # id(session) → (the session, so the id is not reused while we hold it; its counts)
        self._last: dict[int, tuple[object, dict[tuple[str, str], int]]] = {}

    def read(self, sessions: Sequence[object]) -> dict[tuple[str, str], int]:
        current: dict[int, tuple[object, dict[tuple[str, str], int]]] = {}
        for session in sessions:
            protocol = getattr(getattr(session, "protocol", None), "value", "unknown")
            counts: dict[tuple[str, str], int] = {}
            for attribute, kind in (*_DECODE_COUNTERS.items(), (_DISCARDED_BYTES, "bytes")):
                value = getattr(session, attribute, None)
                if isinstance(value, int):
                    counts[(protocol, kind)] = value
            current[id(session)] = (session, counts)
        for key, (_, counts) in self._last.items():
            if key not in current:
                for label, value in counts.items():
                    self.retired[label] = self.retired.get(label, 0) + value
        self._last = current
        totals = dict(self.retired)
        for _, counts in current.values():
            for label, value in counts.items():
                totals[label] = totals.get(label, 0) + value
        return totals


class CountingRunner:
    """A ``CommandRunner`` that counts each outcome (``success`` or the ``errorCode``)."""

    def __init__(self, inner: CommandRunner, counter: Counter) -> None:
        self.inner = inner
        self._counter = counter

    async def run(self, command: Command) -> CommandResult:
        method = str(command.method)
        try:
            result = await self.inner.run(command)
        except Exception:
            self._counter.labels(method, "internal").inc()
            raise
        outcome = "success" if result.success else str(result.error_code or "internal")
        self._counter.labels(method, outcome).inc()
        return result


def _gauge(name: str, doc: str, value: float, labels: Mapping[str, str] | None = None) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), float(value))
    return family


def _counter(name: str, doc: str, value: float) -> Metric:
    family = CounterMetricFamily(name, doc)
    family.add_metric([], float(value))
    return family


class _GatewayCollector(Collector):
    """Everything read at scrape time. Parts not started yet (or stopped) are skipped."""

    def __init__(self, gateway: MetricsSubject, owner: GatewayMetrics) -> None:
        self._gateway = gateway
        self._owner = owner
        self._decode = _DecodeCounts()

    def collect(self) -> Iterator[Metric]:
        gw = self._gateway
        info = GaugeMetricFamily(
            "ivy_gateway_info", "gateway version and id (always 1)", labels=["version", "id"]
        )
        info.add_metric([__version__, gw.gateway_id], 1.0)
        yield info
        yield _gauge("ivy_uptime_seconds", "seconds since the gateway started", gw.uptime_s())
        yield from self._connections()
        yield from self._meters()
        yield from self._telemetry()
        yield from self._decode_errors()
        yield from self._mqtt()
        yield from self._cluster()

    def _connections(self) -> Iterator[Metric]:
        server = self._gateway.server
        stats = server.stats if server is not None else None
        yield _gauge(
            "ivy_connections_open", "meter TCP connections open", stats.open if stats else 0
        )
        yield _counter(
            "ivy_connections_accepted", "meter connections accepted", stats.accepted if stats else 0
        )
        refused = CounterMetricFamily(
            "ivy_connections_refused", "meter connections refused, by reason", labels=["reason"]
        )
        for reason, attribute in (
            ("total_cap", "refused_total_cap"),
            ("per_ip", "refused_per_ip"),
            ("rate_limited", "refused_rate_limited"),
        ):
            refused.add_metric([reason], float(getattr(stats, attribute) if stats else 0))
        yield refused
        yield _counter(
            "ivy_connections_idle_timeouts",
            "meter connections closed for idleness",
            stats.idle_timeouts if stats else 0,
        )
        by_protocol = CounterMetricFamily(
            "ivy_connections_identified",
            "meter connections by the protocol sniffed from their first bytes",
            labels=["protocol"],
        )
        for protocol, count in sorted(self._gateway.dispatcher.connections_by_protocol.items()):
            by_protocol.add_metric([protocol.lower()], float(count))
        yield by_protocol
        if stats is not None:
            yield _counter("ivy_meter_bytes_received", "bytes read from meters", stats.bytes_in)
            yield _counter("ivy_meter_bytes_sent", "bytes written to meters", stats.bytes_out)

    def _meters(self) -> Iterator[Metric]:
        gw = self._gateway
        yield _gauge("ivy_meters_online", "meters online here", gw.telemetry.online_count())
        yield _gauge("ivy_meters_known", "meters known here", len(gw.telemetry.snapshots()))
        polls = gw.poller.stats()
        yield _gauge("ivy_poll_in_flight", "polls running now", polls.in_flight)
        yield _gauge("ivy_meters_lost", "meters in communication_lost", polls.meters_lost)
        rates = GaugeMetricFamily(
            "ivy_readings_per_second",
            "readings per second over the last 10 s, by protocol",
            labels=["protocol"],
        )
        for protocol, rate in sorted(self._owner.rates.per_second().items()):
            rates.add_metric([protocol], rate)
        yield rates
        feed = gw.live_feed
        clients = feed.subscriber_count if feed is not None else 0
        yield _gauge("ivy_live_clients", "dashboard/SSE clients connected", clients)

    def _telemetry(self) -> Iterator[Metric]:
        stats = self._gateway.telemetry.stats()
        sinks = {sink.name: sink for sink in stats.sinks}
        store = sinks.get("store")
        yield _gauge("ivy_telemetry_queue", "events waiting in telemetry's queue", stats.queued)
        yield _counter("ivy_telemetry_dropped", "events dropped from a full queue", stats.dropped)
        yield _gauge(
            "ivy_store_backlog",
            "readings waiting for the database (queued plus in flight)",
            store.backlog if store else 0,
        )
        yield _counter(
            "ivy_store_dropped",
            "readings the store backlog had to drop",
            store.dropped if store else 0,
        )
        yield _gauge(
            "ivy_store_failing",
            "1 while writes to the database fail",
            int(store.failing) if store else 0,
        )
        errors = CounterMetricFamily(
            "ivy_sink_errors", "failed deliveries to a telemetry sink", labels=["sink"]
        )
        backlog = GaugeMetricFamily(
            "ivy_sink_backlog", "events waiting for a telemetry sink", labels=["sink"]
        )
        for name, sink in sorted(sinks.items()):
            errors.add_metric([name], float(sink.errors))
            backlog.add_metric([name], float(sink.backlog or sink.queued))
        yield errors
        yield backlog

    def _decode_errors(self) -> Iterator[Metric]:
        registry = self._gateway.context.registry
        sessions = [s for m in registry.meters() if (s := registry.get(m)) is not None]
        totals = self._decode.read(sessions)
        errors = CounterMetricFamily(
            "ivy_decode_errors",
            "protocol decode errors by protocol and kind",
            labels=["protocol", "kind"],
        )
        discarded = CounterMetricFamily(
            "ivy_decode_discarded_bytes",
            "bytes the decoders threw away (garbage, rejected frame starts)",
            labels=["protocol"],
        )
        for (protocol, kind), value in sorted(totals.items()):
            if kind == "bytes":
                discarded.add_metric([protocol], float(value))
            else:
                errors.add_metric([protocol, kind], float(value))
        invalid = self._owner.events_by_kind.get("invalid_traffic", 0)
        errors.add_metric(["unknown", "invalid_traffic"], float(invalid))
        yield errors
        yield discarded

    def _mqtt(self) -> Iterator[Metric]:
        publisher = self._gateway.publisher
        if publisher is None:
            return
        t = publisher.transport.stats
        yield _gauge("ivy_mqtt_queue", "MQTT messages waiting in the outbox", t.queued)
        yield _counter("ivy_mqtt_published", "MQTT messages handed to the broker", t.published)
        yield _counter(
            "ivy_mqtt_not_published", "MQTT messages dropped from a full outbox", t.not_published
        )
        yield _gauge("ivy_mqtt_connected", "1 while connected to the broker", int(t.connected))
        yield _counter("ivy_mqtt_reconnects", "reconnections to the broker", t.reconnects)

    def _cluster(self) -> Iterator[Metric]:
        cluster = self._gateway.cluster
        state = GaugeMetricFamily(
            "ivy_redis_state",
            "Redis (cluster) state: 1 for the current one of disabled/connected/degraded",
            labels=["state"],
        )
        current = "disabled" if cluster is None else "degraded" if cluster.degraded else "connected"
        for name in ("disabled", "connected", "degraded"):
            state.add_metric([name], 1.0 if name == current else 0.0)
        yield state
        members = len(cluster.members()) if cluster is not None else 1
        yield _gauge("ivy_cluster_members", "gateway instances in the cluster", members)
        if cluster is not None:
            counters = cluster.counters()
            yield _gauge("ivy_cluster_leases_held", "meter leases held", counters["leasesHeld"])


class GatewayMetrics:
    """The gateway's registry; ``render()`` is the ``/metrics`` body (``ApiDeps.metrics``)."""

    def __init__(
        self, gateway: MetricsSubject, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.registry = CollectorRegistry()
        self.poll_latency = Histogram(
            "ivy_poll_latency_seconds",
            "time for one poll group of one meter, by protocol",
            ["protocol"],
            buckets=POLL_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.polls = Counter(
            "ivy_polls",
            "finished polls by protocol and outcome (ok, rejected, failed, timeout, busy, offline)",
            ["protocol", "outcome"],
            registry=self.registry,
        )
        self.commands = Counter(
            "ivy_commands",
            "commands by method and outcome (success or the errorCode)",
            ["method", "outcome"],
            registry=self.registry,
        )
        self.readings = Counter(
            "ivy_readings", "readings received, by protocol", ["protocol"], registry=self.registry
        )
        self.events = Counter(
            "ivy_events", "meter and gateway events, by kind", ["event"], registry=self.registry
        )
        self.rates = _ReadingRates(monotonic)
        self.readings_total = 0  # all protocols: the gateway's readingsTotal counter
        self.events_by_kind: dict[str, int] = {}
        self.registry.register(_GatewayCollector(gateway, self))

    # -- hooks -----------------------------------------------------------------------------

    def observe_poll(self, protocol: str, latency_s: float, outcome: str) -> None:
        """``Poller(on_poll=...)``: one finished poll."""
        if outcome in ("ok", "rejected", "failed", "timeout"):  # the meter was asked
            self.poll_latency.labels(protocol).observe(latency_s)
        self.polls.labels(protocol, outcome).inc()

    def count_commands(self, runner: CommandRunner) -> CountingRunner:
        """Wrap the runner MQTT and HTTP call, counting every outcome."""
        return CountingRunner(runner, self.commands)

    async def handle(self, events: Sequence[GatewayEvent]) -> None:
        """A telemetry sink: readings by protocol, events by kind. Never raises."""
        for event in events:
            if isinstance(event, ReadingsBatch):
                protocol = event.protocol.value
                self.readings.labels(protocol).inc(len(event.readings))
                self.rates.add(protocol, len(event.readings))
                self.readings_total += len(event.readings)
            elif isinstance(event, MeterEvent):
                kind = event.kind.value
                self.events.labels(kind).inc()
                self.events_by_kind[kind] = self.events_by_kind.get(kind, 0) + 1

    # -- exposition ------------------------------------------------------------------------

    def readings_per_second(self) -> float:
        """All protocols together, over the rate window; reading it changes nothing."""
        return sum(self.rates.per_second().values())

    def render(self) -> bytes:
        """Prometheus text format 0.0.4."""
        return generate_latest(self.registry)
