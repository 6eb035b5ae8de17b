from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from ivy_gateway.domain.commands import RegisterRef, RelayState
from ivy_gateway.domain.errors import MeterBusy, MeterOffline, MeterRejected, MeterTimeout
from ivy_gateway.domain.events import (
    EventKind,
    GatewayEvent,
    MeterEvent,
    MeterStatus,
    ReadingsBatch,
    Severity,
)
from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.domain.ports import PollGroup
from ivy_gateway.domain.quantities import Reading, ReadingSource
from ivy_gateway.services.polling import Poller

METER = MeterId("000000000001")


class FakeClock:
    def __init__(self) -> None:
        self.mono = 1000.0

    def now_ms(self) -> int:
        return int(self.mono * 1000)

    def monotonic(self) -> float:
        return self.mono


class RealClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class EarliestRandom(random.Random):
    """Puts every first poll at the start of its interval."""

    def uniform(self, a: float, b: float) -> float:
        return a


class EventList:
    def __init__(self) -> None:
        self.events: list[GatewayEvent] = []

    def emit(self, event: GatewayEvent) -> None:
        self.events.append(event)

    def meter_events(self) -> list[MeterEvent]:
        return [e for e in self.events if isinstance(e, MeterEvent)]


@dataclass
class Group:
    name: str
    interval_s: float
    quantities: Sequence[str]


@dataclass
class Load:
    active: int = 0
    peak: int = 0


@dataclass
class FakeLink:
    meter: MeterId
    poll_groups: Sequence[PollGroup]
    clock: FakeClock | RealClock
    load: Load = field(default_factory=Load)
    errors: list[Exception] = field(default_factory=list)
    gate: asyncio.Event | None = None
    poll_times: list[float] = field(default_factory=list)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    protocol: ProtocolKind = ProtocolKind.DLT645
    model: str = "DDS666"

    async def read(self, quantities: Sequence[str], source: ReadingSource) -> list[Reading]:
        assert source is ReadingSource.POLL
        self.poll_times.append(self.clock.monotonic())
        self.calls.append(tuple(quantities))
        self.load.active += 1
        self.load.peak = max(self.load.peak, self.load.active)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.errors:
                raise self.errors.pop(0)
            ts = self.clock.now_ms()
            return [
                Reading(self.meter, q, Decimal("1.5"), "V", ts, source, "02010100")
                for q in quantities
            ]
        finally:
            self.load.active -= 1

    async def read_register(self, ref: RegisterRef) -> Reading | Mapping[str, Any]:
        raise AssertionError("not used by the poller")

    async def read_address(self) -> str:
        raise AssertionError("not used by the poller")

    async def relay_control(self, state: RelayState) -> RelayState:
        raise AssertionError("not used by the poller")

    async def read_relay_state(self) -> RelayState:
        raise AssertionError("not used by the poller")

    async def sync_time(self, when: datetime) -> datetime:
        raise AssertionError("not used by the poller")


class FakeDirectory:
    def __init__(self) -> None:
        self.links: dict[MeterId, FakeLink] = {}

    def get(self, meter: MeterId) -> FakeLink | None:
        return self.links.get(meter)

    def meters(self) -> Sequence[MeterId]:
        return list(self.links)


def meter_id(n: int) -> MeterId:
    return MeterId(f"{n:012d}")


def make_link(
    clock: FakeClock | RealClock, n: int = 1, interval_s: float = 10.0, **kwargs: Any
) -> FakeLink:
    groups = [Group("instantaneous", interval_s, ["voltage_l1", "current_l1"])]
    return FakeLink(meter_id(n), kwargs.pop("poll_groups", groups), clock, **kwargs)


async def eventually(condition: Callable[[], bool], timeout_s: float = 1.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.002)


async def step(poller: Poller) -> None:
    await poller.run_due()
    await poller.drain()


async def advance(poller: Poller, clock: FakeClock, seconds: float, step_s: float = 1.0) -> None:
    end = clock.mono + seconds
    while clock.mono < end:
        clock.mono = min(clock.mono + step_s, end)
        await step(poller)


def make_poller(
    clock: FakeClock | RealClock, sink: EventList | None = None, **kwargs: Any
) -> tuple[Poller, FakeDirectory, EventList]:
    directory = FakeDirectory()
    sink = sink or EventList()
    kwargs.setdefault("rng", EarliestRandom())
    return Poller(directory, sink, clock, **kwargs), directory, sink


async def test_first_polls_are_spread_over_the_interval() -> None:
    clock = FakeClock()
    poller, _, _ = make_poller(clock, rng=random.Random(7))
    links = [make_link(clock, n, interval_s=60) for n in range(1, 301)]
    for link in links:
        poller.register(link)
    started: list[int] = []
    for _ in range(10):
        before = sum(len(link.poll_times) for link in links)
        await advance(poller, clock, 6, step_s=6)
        started.append(sum(len(link.poll_times) for link in links) - before)
    assert sum(started) == 300
    assert all(link.poll_times for link in links)
    # 30 expected per 6 s slice: nothing like all 300 at once.
    assert max(started) < 60


async def test_concurrent_polls_stay_within_the_bound() -> None:
    clock = FakeClock()
    poller, _, sink = make_poller(clock, max_concurrency=3)
    gate, load = asyncio.Event(), Load()
    links = [make_link(clock, n, gate=gate, load=load) for n in range(1, 11)]
    for link in links:
        poller.register(link)
    scheduler = asyncio.create_task(poller.run_due())
    await asyncio.sleep(0.01)
    assert load.active == 3
    assert not scheduler.done()
    gate.set()
    await scheduler
    await poller.drain()
    assert load.peak == 3
    assert all(len(link.poll_times) == 1 for link in links)
    assert len([e for e in sink.events if isinstance(e, ReadingsBatch)]) == 10


async def test_readings_are_emitted_as_one_poll_batch() -> None:
    clock = FakeClock()
    poller, _, sink = make_poller(clock)
    poller.register(make_link(clock))
    await step(poller)
    (event,) = sink.events
    assert isinstance(event, ReadingsBatch)
    assert event.source is ReadingSource.POLL
    assert event.protocol is ProtocolKind.DLT645
    assert [r.quantity for r in event.readings] == ["voltage_l1", "current_l1"]


async def test_a_poll_that_returns_nothing_emits_nothing() -> None:
    clock = FakeClock()
    poller, _, sink = make_poller(clock)
    poller.register(make_link(clock, poll_groups=[Group("empty", 10, [])]))
    await step(poller)
    assert sink.events == []
    assert poller.stats().polls_ok == 1


async def test_failures_back_off_exponentially_and_report_communication_lost_once() -> None:
    clock = FakeClock()
    poller, _, sink = make_poller(clock, failure_threshold=3, backoff_base_s=15, backoff_max_s=60)
    link = make_link(clock, interval_s=10, errors=[MeterTimeout("no answer")] * 4)
    poller.register(link)
    await step(poller)
    await advance(poller, clock, 190)
    assert link.poll_times[:7] == [1000, 1015, 1045, 1105, 1165, 1175, 1185]
    lost, recovered = sink.meter_events()
    assert (lost.kind, lost.severity, lost.data["state"]) == (
        EventKind.COMMUNICATION_LOST,
        Severity.WARNING,
        "raised",
    )
    assert lost.data["failures"] == 3
    assert (recovered.kind, recovered.severity, recovered.data["state"]) == (
        EventKind.COMMUNICATION_LOST,
        Severity.INFO,
        "cleared",
    )
    assert poller.stats().polls_failed == 4


async def test_an_unexpected_error_counts_as_a_failure() -> None:
    clock = FakeClock()
    poller, _, sink = make_poller(clock, failure_threshold=1)
    poller.register(make_link(clock, errors=[RuntimeError("bug")]))
    await step(poller)
    assert [e.kind for e in sink.meter_events()] == [EventKind.COMMUNICATION_LOST]
    assert poller.stats().meters_lost == 1


async def test_a_poll_that_takes_too_long_counts_as_a_failure() -> None:
    clock = FakeClock()
    poller, _, _ = make_poller(clock, poll_timeout_s=0.01)
    poller.register(make_link(clock, gate=asyncio.Event()))
    await step(poller)
    assert poller.stats().polls_failed == 1


async def test_a_rejection_means_the_meter_answered_and_resets_failures() -> None:
    clock = FakeClock()
    poller, _, sink = make_poller(clock, failure_threshold=2, backoff_base_s=1)
    errors: list[Exception] = [MeterTimeout("x"), MeterRejected("no", code=4), MeterTimeout("y")]
    link = make_link(clock, interval_s=10, errors=errors)
    poller.register(link)
    await step(poller)
    await advance(poller, clock, 30)
    assert sink.meter_events() == []
    assert poller.stats().polls_failed == 2


async def test_busy_skips_the_round_without_backoff() -> None:
    clock = FakeClock()
    poller, _, _ = make_poller(clock)
    link = make_link(clock, interval_s=10, errors=[MeterBusy("command running")])
    poller.register(link)
    await step(poller)
    await advance(poller, clock, 10)
    assert link.poll_times == [1000, 1010]
    assert poller.stats().polls_failed == 0


async def test_offline_unregisters_the_meter() -> None:
    clock = FakeClock()
    poller, _, _ = make_poller(clock)
    poller.register(make_link(clock, errors=[MeterOffline("gone")]))
    await step(poller)
    assert poller.stats().meters == 0


async def test_offline_after_a_replacement_leaves_the_new_session_alone() -> None:
    clock = FakeClock()
    poller, _, _ = make_poller(clock)
    gate = asyncio.Event()
    old = make_link(clock, gate=gate, errors=[MeterOffline("replaced")])
    poller.register(old)
    await poller.run_due()
    new = make_link(clock)
    poller.register(new)
    gate.set()
    await poller.drain()
    assert poller.stats().meters == 1
    await step(poller)
    assert len(new.poll_times) == 1


async def test_no_poll_starts_while_a_command_holds_the_meter() -> None:
    clock = FakeClock()
    poller, _, _ = make_poller(clock)
    link = make_link(clock, interval_s=10)
    poller.register(link)
    with poller.hold(METER):
        with poller.hold(METER):
            await advance(poller, clock, 25)
        await step(poller)
        assert link.poll_times == []
    await step(poller)
    assert link.poll_times == [1025]
    await advance(poller, clock, 10)
    assert link.poll_times == [1025, 1035]


async def test_holding_an_unregistered_meter_is_harmless() -> None:
    clock = FakeClock()
    poller, _, _ = make_poller(clock)
    with poller.hold(METER):
        pass
    assert poller.stats().meters == 0


async def test_a_group_due_while_another_poll_runs_waits_for_it() -> None:
    clock = FakeClock()
    poller, _, _ = make_poller(clock)
    gate = asyncio.Event()
    groups = [Group("energy", 60, ["energy_active_import_total"]), Group("inst", 10, ["v"])]
    link = make_link(clock, poll_groups=groups, gate=gate)
    poller.register(link)
    await poller.run_due()
    await asyncio.sleep(0)
    assert link.calls == [("energy_active_import_total",)]
    await poller.run_due()  # "inst" is due too, but the meter is busy
    await asyncio.sleep(0)
    assert link.calls == [("energy_active_import_total",)]
    gate.set()
    await poller.drain()
    await step(poller)
    assert link.calls == [("energy_active_import_total",), ("v",)]


async def test_a_hold_taken_while_waiting_for_a_slot_defers_the_poll() -> None:
    clock = FakeClock()
    poller, _, _ = make_poller(clock, max_concurrency=1)
    gate = asyncio.Event()
    first, second = make_link(clock, 1, gate=gate), make_link(clock, 2)
    poller.register(first)
    poller.register(second)
    scheduler = asyncio.create_task(poller.run_due())
    await asyncio.sleep(0.01)
    with poller.hold(second.meter):
        gate.set()
        await scheduler
        await poller.drain()
        assert second.poll_times == []
    await step(poller)
    assert second.poll_times == [1000]


async def test_an_unregister_while_waiting_for_a_slot_cancels_the_poll() -> None:
    clock = FakeClock()
    poller, _, _ = make_poller(clock, max_concurrency=1)
    gate = asyncio.Event()
    first, second = make_link(clock, 1, gate=gate), make_link(clock, 2)
    poller.register(first)
    poller.register(second)
    scheduler = asyncio.create_task(poller.run_due())
    await asyncio.sleep(0.01)
    poller.unregister(second.meter)
    gate.set()
    await scheduler
    await poller.drain()
    assert second.poll_times == []


async def test_status_events_register_and_unregister_meters() -> None:
    clock = FakeClock()
    poller, directory, _ = make_poller(clock)
    link = make_link(clock)
    directory.links[link.meter] = link

    def status(online: bool) -> MeterStatus:
        return MeterStatus(link.meter, online, ProtocolKind.DLT645, "DDS666", None, 0)

    await poller.handle([status(True), MeterEvent(EventKind.METER_EVENT, Severity.INFO, 0, None)])
    assert poller.stats().meters == 1
    await poller.handle([status(False)])
    assert poller.stats().meters == 0
    await step(poller)
    assert link.poll_times == []
    del directory.links[link.meter]
    await poller.handle([status(True)])  # online, but the session is gone already
    assert poller.stats().meters == 0


async def test_sync_follows_the_directory() -> None:
    clock = FakeClock()
    poller, directory, _ = make_poller(clock)
    stale, kept = make_link(clock, 1), make_link(clock, 2)
    poller.register(stale)
    poller.register(kept)
    directory.links = {kept.meter: kept, meter_id(3): make_link(clock, 3)}
    scheduled = poller.stats().scheduled
    poller.sync()
    stats = poller.stats()
    assert stats.meters == 2
    assert stats.scheduled == scheduled + 1  # the kept meter was not scheduled twice
    await step(poller)
    assert stale.poll_times == []
    assert kept.poll_times == [1000]


async def test_sync_skips_a_meter_whose_session_vanished_meanwhile() -> None:
    clock = FakeClock()
    poller, directory, _ = make_poller(clock)

    class VanishingDirectory(FakeDirectory):
        def get(self, meter: MeterId) -> FakeLink | None:
            return None

    vanishing = VanishingDirectory()
    vanishing.links = {METER: make_link(clock)}
    poller = Poller(vanishing, EventList(), clock)
    poller.sync()
    assert poller.stats().meters == 0
    assert directory.meters() == []


async def test_run_polls_on_schedule_and_cancels_polls_in_flight() -> None:
    clock = RealClock()
    poller, directory, _ = make_poller(clock, resync_interval_s=0.01)
    quick = make_link(clock, 1, interval_s=0.01)
    stuck = make_link(clock, 2, interval_s=0.01, gate=asyncio.Event())
    directory.links = {quick.meter: quick, stuck.meter: stuck}
    runner = asyncio.create_task(poller.run())
    await eventually(lambda: len(quick.poll_times) >= 3)
    assert poller.stats().in_flight == 1
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert poller.stats().in_flight == 0


async def test_run_with_nothing_to_poll_waits_for_a_registration() -> None:
    clock = RealClock()
    poller, _, _ = make_poller(clock, resync_interval_s=60)
    runner = asyncio.create_task(poller.run())
    await asyncio.sleep(0.01)
    link = make_link(clock)
    poller.register(link)
    await eventually(lambda: bool(link.poll_times))
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Poller(FakeDirectory(), EventList(), FakeClock(), max_concurrency=0)


async def test_every_finished_poll_is_reported_with_its_latency_and_outcome() -> None:
    clock = FakeClock()
    heard: list[tuple[str, float, str]] = []
    poller, _, _ = make_poller(clock, poll_timeout_s=0.01, on_poll=lambda *args: heard.append(args))
    errors: list[list[Exception]] = [
        [],
        [MeterRejected("no", code=4)],
        [RuntimeError("bug")],
        [MeterBusy("command running")],
        [MeterOffline("gone")],
        [MeterTimeout("no answer")],
    ]
    for n, error in enumerate(errors, start=1):
        poller.register(make_link(clock, n, errors=error))
    poller.register(make_link(clock, 7, gate=asyncio.Event(), protocol=ProtocolKind.DLMS))
    await step(poller)
    assert sorted(outcome for _, _, outcome in heard) == [
        "busy",
        "failed",
        "offline",
        "ok",
        "rejected",
        "timeout",
        "timeout",
    ]
    assert {protocol for protocol, _, _ in heard} == {"dlt645", "dlms"}
    assert all(latency_s == 0.0 for _, latency_s, _ in heard)  # the fake clock stood still
