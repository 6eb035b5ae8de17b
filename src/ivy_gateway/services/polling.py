"""Periodic reading of every online meter: one scheduler task over a heap of due times.

Each (meter, poll group) has exactly one pending slot: an entry in the heap, or a mark in
the meter's ``deferred`` set while the meter is busy (a poll in flight) or held by a
command. Heap entries carry the meter's registration generation, so unregistering is O(1)
and stale entries are dropped when they surface (lazy deletion). 10,000 meters × a few
groups is a heap of tens of thousands of tuples and one sleeping task, not one per meter.

Failure policy:

- ``MeterTimeout``, ``ProtocolViolation``, other meter errors and unexpected exceptions
  count as failures: the meter is next polled after ``backoff_base_s · 2^(n-1)`` (capped at
  ``backoff_max_s``); the ``failure_threshold``-th consecutive failure emits
  ``communication_lost`` once, and the next success emits it again as cleared.
- ``MeterRejected`` means the meter answered: the link works, so it is not a failure.
- ``MeterBusy`` (the session is serving someone else) skips this round without penalty.
- ``MeterOffline`` unregisters the meter; it comes back with its ``meter_online`` status.

``on_poll(protocol, latency_s, outcome)`` (optional) hears every finished poll, for the
poll-latency histogram: ``outcome`` is ``ok``, ``rejected``, ``failed``, ``timeout``,
``busy`` or ``offline``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from ivy_gateway.domain.errors import MeterBusy, MeterOffline, MeterRejected, MeterTimeout
from ivy_gateway.domain.events import (
    EventKind,
    GatewayEvent,
    MeterEvent,
    MeterStatus,
    ReadingsBatch,
    Severity,
)
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.ports import Clock, EventSink, MeterDirectory, MeterLink, PollGroup
from ivy_gateway.domain.quantities import ReadingSource

__all__ = ["PollObserver", "Poller", "PollerStats"]

log = logging.getLogger(__name__)

# (due monotonic s, tie-breaker, meter, group index, registration generation)
_Entry = tuple[float, int, MeterId, int, int]

#: ``on_poll(protocol, latency_s, outcome)``: called once per finished poll.
PollObserver = Callable[[str, float, str], None]


@dataclass(frozen=True, slots=True)
class PollerStats:
    meters: int
    scheduled: int
    in_flight: int
    polls_ok: int
    polls_failed: int
    meters_lost: int


@dataclass(slots=True)
class _MeterPolls:
    link: MeterLink
    generation: int
    groups: tuple[PollGroup, ...]
    failures: int = 0
    lost: bool = False
    retry_at: float = 0.0
    busy: bool = False
    deferred: set[int] = field(default_factory=set)


class Poller:
    """Polls every registered meter's poll groups; implements ``PollGate`` and ``TelemetrySink``.

    Registration comes from ``sync()`` (the directory's meters, also re-run every
    ``resync_interval_s``) and from ``MeterStatus`` events: add the poller as a telemetry
    sink, or call ``register``/``unregister`` directly.
    """

    def __init__(
        self,
        directory: MeterDirectory,
        sink: EventSink,
        clock: Clock,
        *,
        max_concurrency: int = 100,
        failure_threshold: int = 3,
        backoff_base_s: float = 15.0,
        backoff_max_s: float = 900.0,
        poll_timeout_s: float = 120.0,
        resync_interval_s: float = 60.0,
        rng: random.Random | None = None,
        on_poll: PollObserver | None = None,
    ) -> None:
        if max_concurrency < 1 or failure_threshold < 1:
            raise ValueError("max_concurrency and failure_threshold must be at least 1")
        self._directory = directory
        self._sink = sink
        self._clock = clock
        self._failure_threshold = failure_threshold
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._poll_timeout_s = poll_timeout_s
        self._resync_interval_s = resync_interval_s
        self._rng = rng or random.Random()
        self._on_poll = on_poll
        self._slots = asyncio.Semaphore(max_concurrency)
        self._heap: list[_Entry] = []
        self._tiebreak = itertools.count()
        self._generations = itertools.count(1)
        self._meters: dict[MeterId, _MeterPolls] = {}
        self._holds: dict[MeterId, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()
        self._polls_ok = 0
        self._polls_failed = 0

    # -- registration ------------------------------------------------------------------

    def register(self, link: MeterLink) -> None:
        """Start polling ``link``; first polls are spread uniformly over each group's interval."""
        current = self._meters.get(link.meter)
        if current is not None and current.link is link:
            return
        state = _MeterPolls(link, next(self._generations), tuple(link.poll_groups))
        self._meters[link.meter] = state
        now = self._clock.monotonic()
        for index, group in enumerate(state.groups):
            self._push(now + self._rng.uniform(0.0, group.interval_s), link.meter, index, state)
        self._wakeup.set()

    def unregister(self, meter: MeterId) -> None:
        self._meters.pop(meter, None)

    def sync(self) -> None:
        """Make the registered meters those of the directory (new sessions, replaced ones)."""
        present = set(self._directory.meters())
        for meter in list(self._meters):
            if meter not in present:
                self.unregister(meter)
        for meter in present:
            link = self._directory.get(meter)
            if link is not None:
                self.register(link)

    async def handle(self, events: Sequence[GatewayEvent]) -> None:
        for event in events:
            if not isinstance(event, MeterStatus):
                continue
            link = self._directory.get(event.meter) if event.online else None
            if link is None:
                self.unregister(event.meter)
            else:
                self.register(link)

    # -- command priority --------------------------------------------------------------

    @contextlib.contextmanager
    def hold(self, meter: MeterId) -> Iterator[None]:
        """No poll of ``meter`` starts inside this block; deferred polls run after it."""
        self._holds[meter] = self._holds.get(meter, 0) + 1
        try:
            yield
        finally:
            remaining = self._holds[meter] - 1
            if remaining:
                self._holds[meter] = remaining
            else:
                del self._holds[meter]
                state = self._meters.get(meter)
                if state is not None:
                    self._release(state)

    # -- scheduling --------------------------------------------------------------------

    def _push(self, due: float, meter: MeterId, index: int, state: _MeterPolls) -> None:
        heapq.heappush(self._heap, (due, next(self._tiebreak), meter, index, state.generation))

    def _current(self, meter: MeterId, generation: int) -> _MeterPolls | None:
        state = self._meters.get(meter)
        return state if state is not None and state.generation == generation else None

    def _blocked(self, state: _MeterPolls) -> bool:
        return state.busy or state.link.meter in self._holds

    def _release(self, state: _MeterPolls) -> None:
        if self._blocked(state) or not state.deferred:
            return
        now = self._clock.monotonic()
        for index in sorted(state.deferred):
            self._push(now, state.link.meter, index, state)
        state.deferred.clear()
        self._wakeup.set()

    async def run_due(self) -> float | None:
        """Start every poll that is due; return seconds until the next one (None: none)."""
        while self._heap and self._heap[0][0] <= self._clock.monotonic():
            due, _, meter, index, generation = heapq.heappop(self._heap)
            state = self._current(meter, generation)
            if state is None:
                continue
            if self._blocked(state):
                state.deferred.add(index)
                continue
            if state.retry_at > self._clock.monotonic():
                self._push(state.retry_at, meter, index, state)
                continue
            await self._slots.acquire()
            # The wait for a slot may have let a command, a poll or an unregister in.
            if self._current(meter, generation) is not state or self._blocked(state):
                self._slots.release()
                state.deferred.add(index)
                continue
            state.busy = True
            interval_s = state.groups[index].interval_s
            # Keep the phase (due + interval) unless we ran late by more than an interval.
            self._push(max(due + interval_s, self._clock.monotonic()), meter, index, state)
            task = asyncio.create_task(self._poll(state, index), name=f"poll-{meter}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if not self._heap:
            return None
        return max(0.0, self._heap[0][0] - self._clock.monotonic())

    async def run(self) -> None:
        self.sync()
        next_sync = self._clock.monotonic() + self._resync_interval_s
        try:
            while True:
                self._wakeup.clear()
                delay = await self.run_due()
                now = self._clock.monotonic()
                if now >= next_sync:
                    self.sync()
                    next_sync = now + self._resync_interval_s
                wait_s = next_sync - now if delay is None else min(delay, next_sync - now)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(wait_s, 0.0)):
                        await self._wakeup.wait()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Wait for the polls in flight (tests, graceful stop)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- one poll ----------------------------------------------------------------------

    async def _poll(self, state: _MeterPolls, index: int) -> None:
        group = state.groups[index]
        link = state.link
        started = self._clock.monotonic()
        outcome = "ok"
        try:
            async with asyncio.timeout(self._poll_timeout_s):
                readings = await link.read(list(group.quantities), ReadingSource.POLL)
        except MeterOffline:
            outcome = "offline"
            if self._meters.get(link.meter) is state:
                self.unregister(link.meter)
        except MeterBusy:
            outcome = "busy"
        except MeterRejected as exc:
            outcome = "rejected"
            log.warning("meter %s rejected poll group %r: %s", link.meter, group.name, exc)
            self._succeeded(state)
        except Exception as exc:
            outcome = "timeout" if isinstance(exc, TimeoutError | MeterTimeout) else "failed"
            if not isinstance(exc, TimeoutError):
                log.warning("poll of %s group %r failed: %r", link.meter, group.name, exc)
            self._failed(state, group)
        else:
            self._succeeded(state)
            if readings:
                self._sink.emit(
                    ReadingsBatch(
                        link.meter,
                        link.protocol,
                        ReadingSource.POLL,
                        self._clock.now_ms(),
                        readings,
                    )
                )
        finally:
            state.busy = False
            self._slots.release()
            self._release(state)
        # Not reached when cancelled: a poll cut short by a stop has no latency to report.
        if self._on_poll is not None:
            self._on_poll(link.protocol.value, self._clock.monotonic() - started, outcome)

    def _succeeded(self, state: _MeterPolls) -> None:
        self._polls_ok += 1
        if state.lost:
            self._sink.emit(
                MeterEvent(
                    EventKind.COMMUNICATION_LOST,
                    Severity.INFO,
                    self._clock.now_ms(),
                    state.link.meter,
                    {"state": "cleared", "failures": state.failures},
                )
            )
        state.failures = 0
        state.lost = False
        state.retry_at = 0.0

    def _failed(self, state: _MeterPolls, group: PollGroup) -> None:
        self._polls_failed += 1
        state.failures += 1
        exponent = min(state.failures - 1, 30)
        backoff_s = min(self._backoff_base_s * 2**exponent, self._backoff_max_s)
        state.retry_at = self._clock.monotonic() + backoff_s
        if state.failures >= self._failure_threshold and not state.lost:
            state.lost = True
            self._sink.emit(
                MeterEvent(
                    EventKind.COMMUNICATION_LOST,
                    Severity.WARNING,
                    self._clock.now_ms(),
                    state.link.meter,
                    {"state": "raised", "failures": state.failures, "group": group.name},
                )
            )

    def stats(self) -> PollerStats:
        return PollerStats(
            len(self._meters),
            len(self._heap),
            len(self._tasks),
            self._polls_ok,
            self._polls_failed,
            sum(1 for state in self._meters.values() if state.lost),
        )
