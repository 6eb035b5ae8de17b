"""In-memory stand-ins for what the API reads, shipped with the adapter (like
``transport.fakes``): for the adapter's tests, dashboard work without a database, and demos.

``InMemoryStore`` is an ``ApiStore`` and a ``CommandAudit``; it follows the store's
conventions (``from_ms <= ts < to_ms``, buckets aligned to multiples of ``bucket_s`` since
the epoch, history ordered by quantity then time, events newest first) and records every
history query in ``readings_calls`` / ``events_calls``. ``unavailable`` makes every call
raise ``StoreUnavailable``; ``failure`` raises that exception instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from ivy_gateway.domain.commands import Command, CommandResult
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.store import (
    Aggregate,
    CommandRecord,
    CommandStatus,
    EventRecord,
    HistoryPoint,
    MeterRecord,
    StoreMode,
    StoreUnavailable,
)
from ivy_gateway.services.telemetry import MeterSnapshot

__all__ = ["EventsCall", "InMemoryStore", "ReadingsCall", "StaticLiveState"]


@dataclass(frozen=True, slots=True)
class ReadingsCall:
    meter: MeterId
    quantity: str | None
    from_ms: int
    to_ms: int
    bucket_s: int | None
    agg: Aggregate
    limit: int | None


@dataclass(frozen=True, slots=True)
class EventsCall:
    meter: MeterId | None
    from_ms: int
    to_ms: int
    limit: int


def _aggregate(points: list[HistoryPoint], agg: Aggregate) -> float:
    values = [p.value for p in points]  # ordered by time
    match agg:
        case Aggregate.AVG:
            return sum(values) / len(values)
        case Aggregate.MIN:
            return min(values)
        case Aggregate.MAX:
            return max(values)
        case Aggregate.FIRST:
            return values[0]
        case Aggregate.LAST:
            return values[-1]


class InMemoryStore:
    mode = StoreMode.SQLITE

    def __init__(
        self,
        meters: Iterable[MeterRecord] = (),
        points: Iterable[HistoryPoint] = (),
        events: Iterable[EventRecord] = (),
    ) -> None:
        self.meters: dict[MeterId, MeterRecord] = {m.meter: m for m in meters}
        self.points: list[HistoryPoint] = list(points)
        self.event_rows: list[EventRecord] = list(events)
        self.commands: dict[str, CommandRecord] = {}
        self.readings_calls: list[ReadingsCall] = []
        self.events_calls: list[EventsCall] = []
        self.unavailable = False
        self.failure: Exception | None = None

    def _check(self) -> None:
        if self.unavailable:
            raise StoreUnavailable("the in-memory store is switched to unavailable")
        if self.failure is not None:
            raise self.failure

    async def list_meters(self) -> list[MeterRecord]:
        self._check()
        return [self.meters[m] for m in sorted(self.meters)]

    async def get_meter(self, meter: MeterId) -> MeterRecord | None:
        self._check()
        return self.meters.get(meter)

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
    ) -> list[HistoryPoint]:
        self._check()
        self.readings_calls.append(
            ReadingsCall(meter, quantity, from_ms, to_ms, bucket_s, agg, limit)
        )
        chosen = sorted(
            (
                p
                for p in self.points
                if (quantity is None or p.quantity == quantity) and from_ms <= p.ts_ms < to_ms
            ),
            key=lambda p: (p.quantity, p.ts_ms),
        )
        if bucket_s is not None:
            buckets: dict[tuple[str, int], list[HistoryPoint]] = {}
            width = bucket_s * 1000
            for p in chosen:
                buckets.setdefault((p.quantity, p.ts_ms - p.ts_ms % width), []).append(p)
            chosen = [HistoryPoint(q, ts, _aggregate(ps, agg)) for (q, ts), ps in buckets.items()]
        return chosen[:limit] if limit is not None else chosen

    async def events(
        self, meter: MeterId | None, from_ms: int, to_ms: int, *, limit: int = 1000
    ) -> list[EventRecord]:
        self._check()
        self.events_calls.append(EventsCall(meter, from_ms, to_ms, limit))
        rows = [e for e in self.event_rows if e.meter == meter and from_ms <= e.ts_ms < to_ms]
        return sorted(rows, key=lambda e: (e.ts_ms, e.id), reverse=True)[:limit]

    async def command(self, command_id: str) -> CommandRecord | None:
        self._check()
        return self.commands.get(command_id)

    async def record_requested(self, command: Command, ts_ms: int) -> None:
        self._check()
        self.commands[command.id] = CommandRecord(
            id=command.id,
            meter=command.meter,
            method=command.method,
            params=dict(command.params),
            requested_by=command.requested_by,
            requested_at_ms=ts_ms,
            finished_at_ms=None,
            status=CommandStatus.PENDING,
            result=None,
            error=None,
            error_code=None,
        )

    async def record_finished(self, command: Command, result: CommandResult, ts_ms: int) -> None:
        self._check()
        record = self.commands.get(command.id)
        if record is None:
            await self.record_requested(command, ts_ms)
            record = self.commands[command.id]
        self.commands[command.id] = dataclasses.replace(
            record,
            finished_at_ms=ts_ms,
            status=CommandStatus.SUCCEEDED if result.success else CommandStatus.FAILED,
            result=result.result,
            error=result.error,
            error_code=result.error_code,
        )


class StaticLiveState:
    """``LiveState`` over a dict the caller fills."""

    def __init__(self, snapshots: Iterable[MeterSnapshot] = ()) -> None:
        self.states: dict[MeterId, MeterSnapshot] = {s.meter: s for s in snapshots}

    def snapshot(self, meter: MeterId) -> MeterSnapshot | None:
        return self.states.get(meter)

    def snapshots(self) -> list[MeterSnapshot]:
        return [self.states[m] for m in sorted(self.states)]
