"""Dialect-neutral rows: domain events → tuples to write, and result rows → domain records.

Both adapters write exactly these tuples, so SQLite and PostgreSQL store the same thing and
the idempotency rules (keys, fingerprints, "newest wins") live in one place.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ivy_gateway.domain.commands import Command, CommandMethod, CommandResult, ErrorCode
from ivy_gateway.domain.events import (
    EventKind,
    GatewayEvent,
    MeterEvent,
    MeterStatus,
    ReadingsBatch,
    Severity,
)
from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.domain.quantities import Reading, ReadingSource
from ivy_gateway.domain.store import (
    CommandRecord,
    CommandStatus,
    EventRecord,
    HistoryPoint,
    MeterRecord,
)

__all__ = [
    "EventRow",
    "LastValueRow",
    "MeterRow",
    "ReadingRow",
    "WritePlan",
    "command_finished_row",
    "command_requested_row",
    "dump_json",
    "plan_writes",
    "to_command",
    "to_event",
    "to_meter",
    "to_point",
    "to_reading",
]

#: (id, protocol, model, first_seen, last_seen, last_ip, online, status_at)
MeterRow = tuple[str, str, str | None, int, int, str | None, bool, int | None]
#: (meter_id, quantity, ts, source, value, unit)
ReadingRow = tuple[str, str, int, str, float, str]
#: (meter_id, quantity, ts, source, value, unit, address, exact)
LastValueRow = tuple[str, str, int, str, float, str, str, str]
#: (meter_id, ts, kind, severity, data_json, fingerprint)
EventRow = tuple[str | None, int, str, str, str, str]

# Column lists the adapters select, in the order the ``to_*`` functions read them.
METER_COLUMNS = "id, protocol, model, first_seen, last_seen, last_ip, online"
LAST_VALUE_COLUMNS = "meter_id, quantity, ts, source, unit, address, exact"
EVENT_COLUMNS = "id, meter_id, ts, kind, severity, data"
COMMAND_COLUMNS = (
    "id, meter_id, method, params, requested_by, requested_at, finished_at, status, "
    "result, error, error_code"
)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def dump_json(data: Mapping[str, Any] | None) -> str | None:
    """Canonical JSON (sorted keys), so equal data gives equal text and equal fingerprints."""
    if data is None:
        return None
    return json.dumps(dict(data), sort_keys=True, separators=(",", ":"), default=_json_default)


def _load_json(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@dataclass(slots=True)
class _MeterMerge:
    protocol: str
    protocol_ts: int
    first_seen: int
    last_seen: int
    model: str | None = None
    last_ip: str | None = None
    online: bool = False
    status_at: int | None = None

    def row(self, meter_id: str) -> MeterRow:
        return (
            meter_id,
            self.protocol,
            self.model,
            self.first_seen,
            self.last_seen,
            self.last_ip,
            self.online,
            self.status_at,
        )


@dataclass(slots=True)
class WritePlan:
    """Everything one ``handle`` call writes, sorted by key (stable lock order in PostgreSQL)."""

    meters: list[MeterRow] = field(default_factory=list)
    readings: list[ReadingRow] = field(default_factory=list)
    last_values: list[LastValueRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.meters or self.readings or self.last_values or self.events)


def _merge_meter(merged: dict[str, _MeterMerge], meter: MeterId, protocol: str, ts: int) -> None:
    entry = merged.get(meter.value)
    if entry is None:
        merged[meter.value] = _MeterMerge(protocol, ts, ts, ts)
        return
    entry.first_seen = min(entry.first_seen, ts)
    entry.last_seen = max(entry.last_seen, ts)
    if ts >= entry.protocol_ts:
        entry.protocol, entry.protocol_ts = protocol, ts


def _event_row(event: MeterEvent) -> EventRow:
    meter_id = event.meter.value if event.meter is not None else None
    data = dump_json(event.data) or "{}"
    key = f"{meter_id}|{event.ts_ms}|{event.kind.value}|{data}".encode()
    fingerprint = hashlib.blake2b(key, digest_size=16).hexdigest()
    return (meter_id, event.ts_ms, event.kind.value, event.severity.value, data, fingerprint)


def plan_writes(events: Sequence[GatewayEvent]) -> WritePlan:
    plan = WritePlan()
    merged: dict[str, _MeterMerge] = {}
    newest: dict[tuple[str, str], Reading] = {}
    for event in events:
        if isinstance(event, ReadingsBatch):
            _merge_meter(merged, event.meter, event.protocol.value, event.ts_ms)
            for r in event.readings:
                plan.readings.append(
                    (r.meter.value, r.quantity, r.ts_ms, r.source.value, float(r.value), r.unit)
                )
                key = (r.meter.value, r.quantity)
                seen = newest.get(key)
                if seen is None or seen.ts_ms <= r.ts_ms:
                    newest[key] = r
        elif isinstance(event, MeterStatus):
            _merge_meter(merged, event.meter, event.protocol.value, event.ts_ms)
            entry = merged[event.meter.value]
            if entry.status_at is None or event.ts_ms >= entry.status_at:
                entry.status_at = event.ts_ms
                entry.online = event.online
                entry.model = event.model
                if event.connection is not None:
                    entry.last_ip = event.connection.peer_host
        else:
            plan.events.append(_event_row(event))
    plan.meters = [merged[key].row(key) for key in sorted(merged)]
    plan.last_values = [
        (m, q, r.ts_ms, r.source.value, float(r.value), r.unit, r.address, str(r.value))
        for (m, q), r in sorted(newest.items())
    ]
    return plan


def command_requested_row(command: Command, ts_ms: int) -> tuple[str, str, str, str, str, int, str]:
    """(id, meter_id, method, params, requested_by, requested_at, status)."""
    params = dump_json(command.params) or "{}"
    return (
        command.id,
        command.meter.value,
        command.method.value,
        params,
        command.requested_by,
        ts_ms,
        CommandStatus.PENDING.value,
    )


def command_finished_row(
    command: Command, result: CommandResult, ts_ms: int
) -> tuple[str, str, str, str, str, int, int, str, str | None, str | None, str | None]:
    """(id, meter_id, method, params, requested_by, requested_at, finished_at, status,
    result, error, error_code); requested_at is only used when the request was not logged."""
    status = CommandStatus.SUCCEEDED if result.success else CommandStatus.FAILED
    return (
        *command_requested_row(command, ts_ms)[:6],
        ts_ms,
        status.value,
        dump_json(result.result),
        result.error,
        result.error_code.value if result.error_code is not None else None,
    )


# ---- rows read back → domain records (row: sqlite3 tuple or asyncpg Record) ----------------


def to_reading(row: Sequence[Any]) -> Reading:
    """From ``LAST_VALUE_COLUMNS``."""
    meter_id, quantity, ts, source, unit, address, exact = row[:7]
    return Reading(
        MeterId(meter_id), quantity, Decimal(exact), unit, int(ts), ReadingSource(source), address
    )


def to_meter(row: Sequence[Any], values: Mapping[str, Reading]) -> MeterRecord:
    """From ``METER_COLUMNS``."""
    meter_id, protocol, model, first_seen, last_seen, last_ip, online = row[:7]
    return MeterRecord(
        MeterId(meter_id),
        ProtocolKind(protocol),
        model,
        int(first_seen),
        int(last_seen),
        last_ip,
        bool(online),
        dict(values),
    )


def to_point(row: Sequence[Any]) -> HistoryPoint:
    return HistoryPoint(row[0], int(row[1]), float(row[2]))


def to_event(row: Sequence[Any]) -> EventRecord:
    """From ``EVENT_COLUMNS``."""
    event_id, meter_id, ts, kind, severity, data = row[:6]
    return EventRecord(
        int(event_id),
        MeterId(meter_id) if meter_id is not None else None,
        int(ts),
        EventKind(kind),
        Severity(severity),
        _load_json(data) or {},
    )


def to_command(row: Sequence[Any]) -> CommandRecord:
    """From ``COMMAND_COLUMNS``."""
    (cid, meter_id, method, params, by, requested_at, finished_at, status, result, error, code) = (
        row[:11]
    )
    return CommandRecord(
        cid,
        MeterId(meter_id),
        CommandMethod(method),
        _load_json(params) or {},
        by,
        int(requested_at),
        int(finished_at) if finished_at is not None else None,
        CommandStatus(status),
        _load_json(result),
        error,
        ErrorCode(code) if code is not None else None,
    )
