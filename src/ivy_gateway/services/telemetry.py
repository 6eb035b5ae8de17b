"""Fan-out of runtime events to the store, the publisher and alarms, with bounded queues.

::

    emit() ──► main queue ──► run(): batches (size/time bound) ──► one queue + task per sink
     (sync,      (bounded,                                           (bounded, retries with
    never waits)  drop-oldest)                                        backoff, drop-oldest)

Drop policy, chosen on purpose: every queue is bounded and, when full, drops its *oldest*
events and counts them (``TelemetryStats``), logging a warning at most every
``warn_interval_s`` and calling ``on_overflow``, the hook the app turns into a gateway event.
Under overload the newest readings are the ones dashboards, alarms and the retained status
need; old ones are the likeliest to be superseded. The per-meter state (online, last values)
is updated inside ``emit`` itself, so it stays exact even when a queue drops. Nothing is
dropped silently: the counters go out on ``gateway/stats``.

Retries: a sink whose ``handle`` fails is retried with capped exponential backoff. An
ordinary sink (publisher, alarms) gives a batch up after ``retry_for_s``. A *durable* sink
(the store: ``add_sink(..., durable=True)``) never gives a batch up: it retries until the
batch is delivered, while new events wait in its backlog, bounded in *rows* (a readings
batch weighs its number of readings, any other event 1) by ``max_backlog``. Only when that
bound is hit does it drop, oldest first, counted like any other drop. Losing data is then a
visible, counted decision, never the side effect of an outage that lasted a minute too long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ivy_gateway.domain.events import GatewayEvent, MeterStatus, ReadingsBatch
from ivy_gateway.domain.meter import ConnectionInfo, MeterId, ProtocolKind
from ivy_gateway.domain.ports import Clock, TelemetrySink
from ivy_gateway.domain.quantities import Reading

__all__ = ["MeterSnapshot", "SinkStats", "Telemetry", "TelemetryStats"]

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
#: ``on_overflow(source, dropped_total)``: ``source`` is ``"queue"`` or a sink's name.
OverflowHook = Callable[[str, int], None]


@dataclass(frozen=True, slots=True)
class MeterSnapshot:
    """What the API and the dashboard show for one meter."""

    meter: MeterId
    online: bool
    protocol: ProtocolKind | None
    model: str | None
    connection: ConnectionInfo | None
    last_seen_ms: int | None
    values: Mapping[str, Reading]


@dataclass(frozen=True, slots=True)
class SinkStats:
    name: str
    queued: int
    delivered: int
    dropped: int  # pushed out of a full queue (rows for a durable sink, else events)
    errors: int  # failed ``handle`` calls (each retry counts)
    abandoned: int  # events given up after retrying for ``retry_for_s`` (never if durable)
    durable: bool = False
    backlog: int = 0  # waiting plus in flight (rows for a durable sink, else events)
    failing: bool = False  # the last ``handle`` failed and the batch is being retried


@dataclass(frozen=True, slots=True)
class TelemetryStats:
    queued: int
    accepted: int
    dropped: int
    sinks: Sequence[SinkStats]


@dataclass(slots=True)
class _MeterState:
    online: bool = False
    protocol: ProtocolKind | None = None
    model: str | None = None
    connection: ConnectionInfo | None = None
    last_seen_ms: int | None = None
    values: dict[str, Reading] = field(default_factory=dict)


def _rows(event: GatewayEvent) -> int:
    """An event's weight in a durable backlog: the rows it becomes in the store."""
    if isinstance(event, ReadingsBatch):
        return max(1, len(event.readings))
    return 1


def _one(event: GatewayEvent) -> int:
    return 1


class _Overflow:
    """Counts dropped events; warns (and calls the hook) without flooding the log."""

    def __init__(
        self,
        what: str,
        source: str,
        owner: Telemetry,
        unit: str = "events",
    ) -> None:
        self.what = what
        self.source = source
        self.unit = unit
        self.count = 0
        self._owner = owner
        self._warned_at: float | None = None

    def add(self, n: int) -> None:
        self.count += n
        owner = self._owner
        now = owner.clock.monotonic()
        if self._warned_at is None or now - self._warned_at >= owner.warn_interval_s:
            self._warned_at = now
            log.warning(
                "%s is full: dropped %d %s so far (oldest first)", self.what, self.count, self.unit
            )
            if owner.on_overflow is not None:
                owner.on_overflow(self.source, self.count)


class _SinkWorker:
    """One sink's queue and delivery loop, so a slow or failing sink delays only itself."""

    def __init__(
        self, name: str, sink: TelemetrySink, owner: Telemetry, *, durable: bool, limit: int
    ) -> None:
        self.name = name
        self.sink = sink
        self.durable = durable
        self._owner = owner
        self._weight = _rows if durable else _one
        self._limit = limit
        self._pending: deque[GatewayEvent] = deque()
        self._pending_weight = 0
        self._in_flight = 0
        self._ready = asyncio.Event()
        self.closing = False
        self.failing = False
        self.overflow = _Overflow(
            f"telemetry sink {name!r}", name, owner, "rows" if durable else "events"
        )
        self.delivered = 0
        self.errors = 0
        self.abandoned = 0

    def offer(self, events: Sequence[GatewayEvent]) -> None:
        weigh = self._weight
        self._pending.extend(events)
        self._pending_weight += sum(weigh(e) for e in events)
        dropped = 0
        while self._pending_weight > self._limit:
            weight = weigh(self._pending.popleft())
            self._pending_weight -= weight
            dropped += weight
        if dropped:
            self.overflow.add(dropped)
        self._ready.set()

    def close(self) -> None:
        self.closing = True
        self._ready.set()

    def stats(self) -> SinkStats:
        return SinkStats(
            self.name,
            len(self._pending),
            self.delivered,
            self.overflow.count,
            self.errors,
            self.abandoned,
            self.durable,
            self._pending_weight + self._in_flight,
            self.failing,
        )

    async def run(self) -> None:
        while self._pending or not self.closing:
            await self._ready.wait()
            size = min(len(self._pending), self._owner.batch_size)
            batch = [self._pending.popleft() for _ in range(size)]
            if not self._pending:
                self._ready.clear()
            if batch:
                self._in_flight = sum(self._weight(e) for e in batch)
                self._pending_weight -= self._in_flight
                try:
                    await self._deliver(batch)
                finally:
                    self._in_flight = 0

    async def _deliver(self, batch: list[GatewayEvent]) -> None:
        owner = self._owner
        deadline = owner.clock.monotonic() + owner.retry_for_s
        attempt = 0
        while True:
            try:
                async with asyncio.timeout(owner.handle_timeout_s):
                    await self.sink.handle(batch)
            except Exception as exc:
                self.errors += 1
                self.failing = True
                delay = min(owner.backoff_base_s * 2 ** min(attempt, 30), owner.backoff_max_s)
                attempt += 1
                if not self.durable and owner.clock.monotonic() + delay > deadline:
                    self.abandoned += len(batch)
                    log.error(
                        "telemetry sink %r failed %d times, gave up on %d events: %r",
                        self.name,
                        attempt,
                        len(batch),
                        exc,
                    )
                    self.failing = False
                    return
                log.warning(
                    "telemetry sink %r failed (%r), retrying in %.1fs (backlog %d)",
                    self.name,
                    exc,
                    delay,
                    self._pending_weight + self._in_flight,
                )
                await owner.sleep(delay)
            else:
                self.delivered += len(batch)
                self.failing = False
                return


class Telemetry:
    """An ``EventSink`` that batches events and fans them out to ``TelemetrySink``s.

    Wiring: ``telemetry.add_sink("store", store, durable=True)`` and
    ``telemetry.add_sink("mqtt", publisher)`` and so on, then run ``telemetry.run()`` in the
    app's TaskGroup; ``close()`` makes ``run`` deliver what is queued and return (a durable
    sink keeps retrying until the caller cancels ``run``).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        queue_size: int = 100_000,
        sink_queue_size: int = 100_000,
        batch_size: int = 500,
        batch_interval_s: float = 0.5,
        retry_for_s: float = 60.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 10.0,
        handle_timeout_s: float = 30.0,
        warn_interval_s: float = 60.0,
        sleep: Sleep = asyncio.sleep,
        on_overflow: OverflowHook | None = None,
    ) -> None:
        if min(queue_size, sink_queue_size, batch_size) < 1:
            raise ValueError("queue sizes and batch size must be at least 1")
        self.clock = clock
        self.sink_queue_size = sink_queue_size
        self.batch_size = batch_size
        self.batch_interval_s = batch_interval_s
        self.retry_for_s = retry_for_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.handle_timeout_s = handle_timeout_s
        self.warn_interval_s = warn_interval_s
        self.sleep = sleep
        self.on_overflow = on_overflow
        self._queue: deque[GatewayEvent] = deque(maxlen=queue_size)
        self._overflow = _Overflow("telemetry queue", "queue", self)
        self._accepted = 0
        self._nonempty = asyncio.Event()
        self._full = asyncio.Event()
        self._closing = False
        self._running = False
        self._workers: list[_SinkWorker] = []
        self._meters: dict[MeterId, _MeterState] = {}

    def add_sink(
        self,
        name: str,
        sink: TelemetrySink,
        *,
        durable: bool = False,
        max_backlog: int | None = None,
    ) -> None:
        """Add a sink with a queue of its own.

        ``durable``: never abandon a batch (retry until delivered); its backlog holds at most
        ``max_backlog`` rows (default ``sink_queue_size``). Otherwise the queue holds at most
        ``sink_queue_size`` events and a batch is given up after ``retry_for_s``.
        """
        if self._running:
            raise RuntimeError("add sinks before telemetry runs")
        if any(w.name == name for w in self._workers):
            raise ValueError(f"a telemetry sink named {name!r} exists already")
        limit = self.sink_queue_size if max_backlog is None else max_backlog
        if limit < 1:
            raise ValueError("max_backlog must be at least 1")
        self._workers.append(_SinkWorker(name, sink, self, durable=durable, limit=limit))

    def emit(self, event: GatewayEvent) -> None:
        self._track(event)
        if len(self._queue) == self._queue.maxlen:
            self._overflow.add(1)
        self._queue.append(event)
        self._accepted += 1
        self._nonempty.set()
        if len(self._queue) >= self.batch_size:
            self._full.set()

    def close(self) -> None:
        """Stop taking batches once the queue is empty; ``run`` returns when sinks are done."""
        self._closing = True
        self._nonempty.set()
        self._full.set()

    async def run(self) -> None:
        self._running = True
        async with asyncio.TaskGroup() as tasks:
            for worker in self._workers:
                tasks.create_task(worker.run(), name=f"telemetry-sink-{worker.name}")
            try:
                await self._drain()
            finally:
                # On cancellation the TaskGroup cancels the workers; on close they finish.
                for worker in self._workers:
                    worker.close()

    async def _drain(self) -> None:
        while self._queue or not self._closing:
            await self._nonempty.wait()
            if len(self._queue) < self.batch_size and not self._closing:
                # Wait for a full batch, but never longer than the interval: latency bound.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.batch_interval_s):
                        await self._full.wait()
            size = min(len(self._queue), self.batch_size)
            batch = [self._queue.popleft() for _ in range(size)]
            if len(self._queue) < self.batch_size and not self._closing:
                self._full.clear()
                if not self._queue:
                    self._nonempty.clear()
            if batch:
                for worker in self._workers:
                    worker.offer(batch)

    def _track(self, event: GatewayEvent) -> None:
        if isinstance(event, MeterStatus):
            state = self._meters.setdefault(event.meter, _MeterState())
            state.online = event.online
            state.protocol = event.protocol
            state.model = event.model
            state.connection = event.connection
            state.last_seen_ms = event.ts_ms
        elif isinstance(event, ReadingsBatch):
            state = self._meters.setdefault(event.meter, _MeterState())
            state.protocol = event.protocol
            state.last_seen_ms = max(state.last_seen_ms or 0, event.ts_ms)
            for reading in event.readings:
                previous = state.values.get(reading.quantity)
                # Batches may arrive out of order (a late poll after a push): keep the newest.
                if previous is None or previous.ts_ms <= reading.ts_ms:
                    state.values[reading.quantity] = reading

    def restore(
        self,
        meter: MeterId,
        protocol: ProtocolKind,
        model: str | None,
        values: Mapping[str, Reading],
        last_seen_ms: int | None,
    ) -> None:
        """Seed a meter's state from the store after a restart (``services.recovery``).

        The meter stays offline until it reconnects; whatever telemetry saw live already
        wins over the stored state (newest reading per quantity, newest ``last_seen``).
        """
        state = self._meters.setdefault(meter, _MeterState())
        if state.protocol is None:
            state.protocol = protocol
        if state.model is None:
            state.model = model
        if last_seen_ms is not None and (state.last_seen_ms or 0) < last_seen_ms:
            state.last_seen_ms = last_seen_ms
        for quantity, reading in values.items():
            previous = state.values.get(quantity)
            if previous is None or previous.ts_ms < reading.ts_ms:
                state.values[quantity] = reading

    def snapshot(self, meter: MeterId) -> MeterSnapshot | None:
        state = self._meters.get(meter)
        if state is None:
            return None
        return MeterSnapshot(
            meter,
            state.online,
            state.protocol,
            state.model,
            state.connection,
            state.last_seen_ms,
            dict(state.values),
        )

    def snapshots(self) -> list[MeterSnapshot]:
        return [s for m in sorted(self._meters) if (s := self.snapshot(m)) is not None]

    def online_count(self) -> int:
        return sum(1 for state in self._meters.values() if state.online)

    def stats(self) -> TelemetryStats:
        return TelemetryStats(
            len(self._queue),
            self._accepted,
            self._overflow.count,
            [worker.stats() for worker in self._workers],
        )
