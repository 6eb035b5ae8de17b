from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from decimal import Decimal

import pytest

from ivy_gateway.domain.events import (
    EventKind,
    GatewayEvent,
    MeterEvent,
    MeterStatus,
    ReadingsBatch,
    Severity,
)
from ivy_gateway.domain.meter import ConnectionInfo, MeterId, ProtocolKind
from ivy_gateway.domain.quantities import Reading, ReadingSource
from ivy_gateway.services.telemetry import Telemetry

METER = MeterId("000000001234")
OTHER = MeterId("000000005678")


class FakeClock:
    def __init__(self) -> None:
        self.mono = 1000.0

    def now_ms(self) -> int:
        return 1_764_201_600_000 + int(self.mono * 1000)

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        self.mono += seconds
        await asyncio.sleep(0)


class RecordingSink:
    def __init__(self) -> None:
        self.batches: list[list[GatewayEvent]] = []

    @property
    def events(self) -> list[GatewayEvent]:
        return [e for batch in self.batches for e in batch]

    async def handle(self, events: Sequence[GatewayEvent]) -> None:
        self.batches.append(list(events))


class FlakySink(RecordingSink):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def handle(self, events: Sequence[GatewayEvent]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("store down")
        await super().handle(events)


class StuckSink:
    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def handle(self, events: Sequence[GatewayEvent]) -> None:
        await self.release.wait()


def reading(quantity: str, value: str, ts_ms: int, meter: MeterId = METER) -> Reading:
    return Reading(meter, quantity, Decimal(value), "V", ts_ms, ReadingSource.POLL, "02010100")


def batch(n: int, meter: MeterId = METER, ts_ms: int = 1000) -> ReadingsBatch:
    readings = [reading("voltage_l1", f"230.{n}", ts_ms, meter)]
    return ReadingsBatch(meter, ProtocolKind.DLT645, ReadingSource.POLL, ts_ms, readings)


def status(online: bool, meter: MeterId = METER) -> MeterStatus:
    conn = ConnectionInfo(7, "10.0.0.2", 40000) if online else None
    return MeterStatus(meter, online, ProtocolKind.DLT645, "DDS666", conn, 500)


async def run_to_end(telemetry: Telemetry) -> None:
    telemetry.close()
    async with asyncio.timeout(2):
        await telemetry.run()


async def wait_for(condition: Callable[[], bool], timeout_s: float = 1.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.002)


async def test_events_are_delivered_in_batches_of_at_most_batch_size() -> None:
    sink = RecordingSink()
    telemetry = Telemetry(FakeClock(), batch_size=3)
    telemetry.add_sink("store", sink)
    events = [batch(n) for n in range(7)]
    for event in events:
        telemetry.emit(event)
    await run_to_end(telemetry)
    assert [len(b) for b in sink.batches] == [3, 3, 1]
    assert sink.events == events
    assert telemetry.stats().sinks[0].delivered == 7


async def test_a_partial_batch_goes_out_after_the_batch_interval() -> None:
    sink = RecordingSink()
    telemetry = Telemetry(FakeClock(), batch_size=100, batch_interval_s=0.01)
    telemetry.add_sink("store", sink)
    runner = asyncio.create_task(telemetry.run())
    await asyncio.sleep(0)
    telemetry.emit(batch(1))
    telemetry.emit(batch(2))
    await wait_for(lambda: len(sink.events) == 2)
    telemetry.emit(batch(3))
    await wait_for(lambda: len(sink.events) == 3)
    assert len(sink.batches) == 2
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner


async def test_a_full_batch_goes_out_without_waiting_for_the_interval() -> None:
    sink = RecordingSink()
    telemetry = Telemetry(FakeClock(), batch_size=2, batch_interval_s=60)
    telemetry.add_sink("store", sink)
    runner = asyncio.create_task(telemetry.run())
    telemetry.emit(batch(1))
    await asyncio.sleep(0.01)
    telemetry.emit(batch(2))
    await wait_for(lambda: len(sink.events) == 2)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner


async def test_every_sink_gets_every_event() -> None:
    store, publisher = RecordingSink(), RecordingSink()
    telemetry = Telemetry(FakeClock())
    telemetry.add_sink("store", store)
    telemetry.add_sink("mqtt", publisher)
    events: list[GatewayEvent] = [status(True), batch(1), batch(2)]
    for event in events:
        telemetry.emit(event)
    await run_to_end(telemetry)
    assert store.events == events
    assert publisher.events == events


async def test_a_failing_sink_is_retried_with_backoff_then_abandoned_without_blocking_others() -> (
    None
):
    clock = FakeClock()
    broken, healthy = FlakySink(failures=1000), RecordingSink()
    telemetry = Telemetry(
        clock, sleep=clock.sleep, retry_for_s=10, backoff_base_s=1, backoff_max_s=4
    )
    telemetry.add_sink("broken", broken)
    telemetry.add_sink("healthy", healthy)
    telemetry.emit(batch(1))
    telemetry.emit(batch(2))
    start = clock.monotonic()
    await run_to_end(telemetry)
    assert len(healthy.events) == 2
    broken_stats, healthy_stats = telemetry.stats().sinks
    assert broken_stats.abandoned == 2
    assert broken_stats.delivered == 0
    # Backoff 1, 2, 4, 4 s fits in 10 s; the next 4 s would pass the budget.
    assert broken_stats.errors == 4
    assert clock.monotonic() - start == pytest.approx(1 + 2 + 4)
    assert healthy_stats.errors == 0


async def test_a_sink_that_recovers_gets_the_batch_it_failed_on() -> None:
    clock = FakeClock()
    flaky = FlakySink(failures=2)
    telemetry = Telemetry(clock, sleep=clock.sleep, backoff_base_s=0.5)
    telemetry.add_sink("store", flaky)
    telemetry.emit(batch(1))
    await run_to_end(telemetry)
    assert len(flaky.events) == 1
    stats = telemetry.stats().sinks[0]
    assert (stats.errors, stats.delivered, stats.abandoned) == (2, 1, 0)
    assert clock.monotonic() == pytest.approx(1000 + 0.5 + 1.0)


async def test_a_stuck_sink_does_not_hold_up_the_others() -> None:
    stuck, healthy = StuckSink(), RecordingSink()
    telemetry = Telemetry(FakeClock(), batch_interval_s=0.001)
    telemetry.add_sink("stuck", stuck)
    telemetry.add_sink("healthy", healthy)
    runner = asyncio.create_task(telemetry.run())
    telemetry.emit(batch(1))
    await wait_for(lambda: len(healthy.events) == 1)
    telemetry.emit(batch(2))
    await wait_for(lambda: len(healthy.events) == 2)
    assert telemetry.stats().sinks[0].queued == 1  # batch 2 waits behind the stuck call
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner


async def test_a_sink_call_that_hangs_times_out_and_counts_as_an_error() -> None:
    telemetry = Telemetry(FakeClock(), handle_timeout_s=0.01, retry_for_s=0)
    telemetry.add_sink("stuck", StuckSink())
    telemetry.emit(batch(1))
    await run_to_end(telemetry)
    stats = telemetry.stats().sinks[0]
    assert (stats.errors, stats.abandoned) == (1, 1)


async def test_a_full_queue_drops_the_oldest_events_and_counts_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = RecordingSink()
    telemetry = Telemetry(FakeClock(), queue_size=3)
    telemetry.add_sink("store", sink)
    events = [batch(n) for n in range(5)]
    with caplog.at_level(logging.WARNING):
        for event in events:
            telemetry.emit(event)
    stats = telemetry.stats()
    assert (stats.queued, stats.accepted, stats.dropped) == (3, 5, 2)
    assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == 1
    await run_to_end(telemetry)
    assert sink.events == events[2:]


async def test_overflow_warnings_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    telemetry = Telemetry(clock, queue_size=1, warn_interval_s=60)
    with caplog.at_level(logging.WARNING):
        for n in range(4):
            telemetry.emit(batch(n))
        clock.mono += 61
        telemetry.emit(batch(9))
    assert telemetry.stats().dropped == 4
    assert len(caplog.records) == 2


async def test_a_full_sink_queue_drops_its_oldest_events() -> None:
    sink = RecordingSink()
    telemetry = Telemetry(FakeClock(), batch_size=5, sink_queue_size=2)
    telemetry.add_sink("store", sink)
    events = [batch(n) for n in range(5)]
    for event in events:
        telemetry.emit(event)
    await run_to_end(telemetry)
    assert sink.events == events[3:]
    assert telemetry.stats().sinks[0].dropped == 3


async def test_close_with_nothing_queued_ends_run() -> None:
    telemetry = Telemetry(FakeClock())
    telemetry.add_sink("store", RecordingSink())
    runner = asyncio.create_task(telemetry.run())
    await asyncio.sleep(0.01)
    telemetry.close()
    async with asyncio.timeout(1):
        await runner


def test_sinks_have_unique_names_and_are_added_before_running() -> None:
    telemetry = Telemetry(FakeClock())
    telemetry.add_sink("store", RecordingSink())
    with pytest.raises(ValueError, match="exists already"):
        telemetry.add_sink("store", RecordingSink())


async def test_adding_a_sink_while_running_is_refused() -> None:
    telemetry = Telemetry(FakeClock())
    runner = asyncio.create_task(telemetry.run())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        telemetry.add_sink("late", RecordingSink())
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner


def test_queue_sizes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Telemetry(FakeClock(), queue_size=0)


def test_meter_state_follows_status_and_readings() -> None:
    telemetry = Telemetry(FakeClock(), queue_size=1)
    assert telemetry.snapshot(METER) is None
    telemetry.emit(status(True))
    telemetry.emit(batch(1, ts_ms=2000))
    telemetry.emit(batch(2, OTHER, ts_ms=1500))
    state = telemetry.snapshot(METER)
    assert state is not None
    assert state.online
    assert state.model == "DDS666"
    assert state.connection == ConnectionInfo(7, "10.0.0.2", 40000)
    assert state.last_seen_ms == 2000
    assert state.values["voltage_l1"].value == Decimal("230.1")
    assert telemetry.online_count() == 1
    # The queue held one event only; the state is exact regardless of drops.
    assert telemetry.stats().dropped == 2
    assert [s.meter for s in telemetry.snapshots()] == [METER, OTHER]
    other = telemetry.snapshot(OTHER)
    assert other is not None
    assert not other.online
    assert other.protocol is ProtocolKind.DLT645


def test_an_older_reading_does_not_replace_a_newer_one() -> None:
    telemetry = Telemetry(FakeClock())
    telemetry.emit(batch(1, ts_ms=2000))
    telemetry.emit(batch(2, ts_ms=1000))
    state = telemetry.snapshot(METER)
    assert state is not None
    assert state.values["voltage_l1"].value == Decimal("230.1")
    assert state.last_seen_ms == 2000


def test_going_offline_keeps_the_last_values() -> None:
    telemetry = Telemetry(FakeClock())
    telemetry.emit(status(True))
    telemetry.emit(batch(1))
    telemetry.emit(status(False))
    state = telemetry.snapshot(METER)
    assert state is not None
    assert not state.online
    assert state.connection is None
    assert "voltage_l1" in state.values
    assert telemetry.online_count() == 0


async def test_a_backlog_larger_than_a_batch_is_split_while_running() -> None:
    sink = RecordingSink()
    telemetry = Telemetry(FakeClock(), batch_size=2, batch_interval_s=0.005)
    telemetry.add_sink("store", sink)
    for n in range(3):
        telemetry.emit(batch(n))
    runner = asyncio.create_task(telemetry.run())
    await wait_for(lambda: len(sink.events) == 3)
    assert len(sink.batches) == 2
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner


def test_meter_events_pass_through_without_changing_meter_state() -> None:
    telemetry = Telemetry(FakeClock())
    telemetry.emit(MeterEvent(EventKind.INVALID_TRAFFIC, Severity.WARNING, 1, None))
    assert telemetry.snapshots() == []
    assert telemetry.stats().queued == 1


def readings_batch(n_readings: int, ts_ms: int = 1000) -> ReadingsBatch:
    readings = [reading(f"q{i}", "1", ts_ms) for i in range(n_readings)]
    return ReadingsBatch(METER, ProtocolKind.DLT645, ReadingSource.POLL, ts_ms, readings)


async def test_a_durable_sink_never_abandons_a_batch_and_reports_its_backlog() -> None:
    clock = FakeClock()
    store = FlakySink(failures=50)
    telemetry = Telemetry(
        clock, sleep=clock.sleep, retry_for_s=1, backoff_base_s=1, backoff_max_s=4, batch_size=1
    )
    telemetry.add_sink("store", store, durable=True)
    seen: list[tuple[int, bool]] = []

    async def watch_backlog() -> None:
        while store.failures:
            sink = telemetry.stats().sinks[0]
            seen.append((sink.backlog, sink.failing))
            await asyncio.sleep(0)

    telemetry.emit(readings_batch(3))
    telemetry.emit(readings_batch(2))
    watcher = asyncio.create_task(watch_backlog())
    start = clock.monotonic()
    await run_to_end(telemetry)
    await watcher
    stats = telemetry.stats().sinks[0]
    assert len(store.events) == 2
    assert (stats.errors, stats.delivered, stats.abandoned, stats.dropped) == (50, 2, 0, 0)
    assert (stats.durable, stats.backlog, stats.failing) == (True, 0, False)
    assert (5, True) in seen  # both batches' rows wait while the first one is retried
    # The backoff is capped: 1 + 2 + 4 * 48 s, long past retry_for_s.
    assert clock.monotonic() - start == pytest.approx(1 + 2 + 4 * 48)


async def test_a_durable_backlog_is_bounded_in_rows_and_drops_the_oldest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    store = StuckSink()
    overflows: list[tuple[str, int]] = []
    telemetry = Telemetry(
        clock, batch_size=1, batch_interval_s=0.001, on_overflow=lambda *a: overflows.append(a)
    )
    telemetry.add_sink("store", store, durable=True, max_backlog=5)
    runner = asyncio.create_task(telemetry.run())
    telemetry.emit(readings_batch(4))  # taken by the stuck call: in flight, not in the bound
    await wait_for(lambda: telemetry.stats().sinks[0].backlog == 4)
    with caplog.at_level(logging.WARNING):
        for n in (2, 3, 1):
            telemetry.emit(readings_batch(n))
            await wait_for(lambda: telemetry.stats().queued == 0)
        await wait_for(lambda: telemetry.stats().sinks[0].dropped == 2)
    stats = telemetry.stats().sinks[0]
    assert (stats.queued, stats.backlog) == (2, 4 + 3 + 1)
    assert overflows == [("store", 2)]
    assert any("dropped 2 rows" in r.getMessage() for r in caplog.records)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert telemetry.stats().sinks[0].backlog == 3 + 1  # the cancelled batch is not counted


async def test_the_main_queue_overflow_calls_the_hook_too() -> None:
    overflows: list[tuple[str, int]] = []
    telemetry = Telemetry(FakeClock(), queue_size=1, on_overflow=lambda *a: overflows.append(a))
    telemetry.emit(batch(1))
    telemetry.emit(batch(2))
    assert overflows == [("queue", 1)]


def test_a_durable_backlog_must_hold_at_least_one_row() -> None:
    telemetry = Telemetry(FakeClock())
    with pytest.raises(ValueError, match="max_backlog"):
        telemetry.add_sink("store", RecordingSink(), durable=True, max_backlog=0)


async def test_a_durable_sink_counts_other_events_as_one_row() -> None:
    store = RecordingSink()
    telemetry = Telemetry(FakeClock(), batch_size=10)
    telemetry.add_sink("store", store, durable=True, max_backlog=2)
    empty = ReadingsBatch(METER, ProtocolKind.DLT645, ReadingSource.POLL, 1, [])
    garbage = MeterEvent(EventKind.INVALID_TRAFFIC, Severity.WARNING, 1, None)
    for event in (status(True), empty, garbage):
        telemetry.emit(event)
    await run_to_end(telemetry)
    assert store.events == [empty, garbage]  # three rows into a bound of two: oldest went
    assert telemetry.stats().sinks[0].dropped == 1


def test_restore_seeds_an_offline_meter_with_its_stored_values() -> None:
    telemetry = Telemetry(FakeClock())
    stored = {"voltage_l1": reading("voltage_l1", "231.5", 900)}
    telemetry.restore(METER, ProtocolKind.DLT645, "DDS666", stored, 950)
    telemetry.restore(OTHER, ProtocolKind.DLMS, None, {}, None)
    state = telemetry.snapshot(METER)
    assert state is not None
    assert (state.online, state.protocol, state.model, state.last_seen_ms) == (
        False,
        ProtocolKind.DLT645,
        "DDS666",
        950,
    )
    assert state.values == stored
    other = telemetry.snapshot(OTHER)
    assert other is not None
    assert (other.last_seen_ms, other.values) == (None, {})
    assert telemetry.online_count() == 0


def test_restore_never_overrides_what_telemetry_saw_live() -> None:
    telemetry = Telemetry(FakeClock())
    telemetry.emit(status(True))
    telemetry.emit(batch(7, ts_ms=2000))
    stored = {
        "voltage_l1": reading("voltage_l1", "199", 1500),  # older than the live value
        "current_l1": reading("current_l1", "5", 1500),
    }
    telemetry.restore(METER, ProtocolKind.DLMS, "other-model", stored, 1500)
    state = telemetry.snapshot(METER)
    assert state is not None
    assert (state.online, state.protocol, state.model, state.last_seen_ms) == (
        True,
        ProtocolKind.DLT645,
        "DDS666",
        2000,
    )
    assert state.values["voltage_l1"].value == Decimal("230.7")
    assert state.values["current_l1"].value == Decimal("5")
    telemetry.restore(METER, ProtocolKind.DLT645, None, {}, 3000)
    newer = telemetry.snapshot(METER)
    assert newer is not None
    assert newer.last_seen_ms == 3000
