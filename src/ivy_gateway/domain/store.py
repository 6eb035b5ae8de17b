"""The history store the gateway writes telemetry into and the HTTP API reads back.

A ``ReadingStore`` is a ``TelemetrySink`` (readings, meter events, meter status) and a
``CommandAudit`` at once, plus the queries the API needs. Adapters implement it for SQLite
and PostgreSQL (``ivy_gateway.adapters.storage.open_store``).

Conventions every implementation keeps:

- Time is milliseconds since the Unix epoch (UTC); ranges are ``from_ms <= ts < to_ms``.
- Buckets start at multiples of ``bucket_s`` seconds since the epoch (UTC midnight-aligned
  for any bucket that divides a day), and aggregates are computed in the database.
- ``handle`` is all-or-nothing per call and idempotent: a batch retried after an error or a
  timeout stores nothing twice.

Errors::

    GatewayError
     └── StoreError          the store cannot do what was asked (bad URL, schema too new)
          └── StoreUnavailable   the database cannot be reached or lost the connection; retry later
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .commands import CommandMethod, ErrorCode
from .errors import GatewayError
from .events import EventKind, GatewayEvent, Severity
from .meter import MeterId, ProtocolKind
from .ports import CommandAudit, TelemetrySink
from .quantities import Reading

__all__ = [
    "Aggregate",
    "CommandRecord",
    "CommandStatus",
    "EventRecord",
    "HistoryPoint",
    "MeterRecord",
    "PruneCounts",
    "ReadingStore",
    "StoreError",
    "StoreMode",
    "StoreUnavailable",
]

DAY_MS = 86_400_000


class StoreError(GatewayError):
    """The store refused or failed an operation; the message never carries a password."""


class StoreUnavailable(StoreError):
    """The database is unreachable or dropped the connection; the operation may be retried."""


class StoreMode(enum.StrEnum):
    """Which backend is active (shown by ``GET /api/v1/gateway``)."""

    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"
    TIMESCALEDB = "timescaledb"  # PostgreSQL with readings as a hypertable


class Aggregate(enum.StrEnum):
    """How the readings inside one bucket become one value (``agg=`` of the API)."""

    AVG = "avg"
    MIN = "min"
    MAX = "max"
    FIRST = "first"  # the value with the earliest ts in the bucket
    LAST = "last"  # the value with the latest ts in the bucket


class CommandStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class MeterRecord:
    """A meter as the store knows it; ``values`` holds the newest reading per quantity."""

    meter: MeterId
    protocol: ProtocolKind
    model: str | None  # None until a status event named it
    first_seen_ms: int
    last_seen_ms: int
    last_ip: str | None
    online: bool
    values: Mapping[str, Reading] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One raw reading, or one bucket (``ts_ms`` = bucket start) of one quantity."""

    quantity: str
    ts_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    meter: MeterId | None
    ts_ms: int
    kind: EventKind
    severity: Severity
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """One row of the command audit log."""

    id: str
    meter: MeterId
    method: CommandMethod
    params: Mapping[str, Any]
    requested_by: str
    requested_at_ms: int
    finished_at_ms: int | None
    status: CommandStatus
    result: Mapping[str, Any] | None
    error: str | None
    error_code: ErrorCode | None


@dataclass(frozen=True, slots=True)
class PruneCounts:
    readings: int
    events: int
    commands: int

    def as_dict(self) -> dict[str, int]:
        return {"readings": self.readings, "events": self.events, "commands": self.commands}


class ReadingStore(TelemetrySink, CommandAudit, Protocol):
    """Telemetry history, meter registry and command audit log behind one small interface.

    Every method may raise ``StoreUnavailable`` (retry later) or ``StoreError``.
    """

    @property
    def mode(self) -> StoreMode: ...

    async def handle(self, events: Sequence[GatewayEvent]) -> None:
        """Store readings, meter events and meter status in one transaction.

        Returning means everything is durable (up to the backend's sync setting); raising
        means nothing was stored. A repeated batch adds no duplicate rows.
        """
        ...

    async def list_meters(self) -> list[MeterRecord]:
        """Every meter ever seen, ordered by id, each with its last values."""
        ...

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
    ) -> list[HistoryPoint]:
        """History ordered by quantity then time; all quantities when ``quantity`` is None.

        Without ``bucket_s`` the raw readings come back (``agg`` ignored); with it, one point
        per non-empty bucket. ``limit`` caps the number of points.
        """
        ...

    async def events(
        self, meter: MeterId | None, from_ms: int, to_ms: int, *, limit: int = 1000
    ) -> list[EventRecord]:
        """Events newest first; ``meter=None`` means events of every meter and none."""
        ...

    async def command(self, command_id: str) -> CommandRecord | None: ...

    async def last_values(self, meter: MeterId) -> dict[str, Reading]:
        """The newest stored reading per quantity: what telemetry reloads after a restart."""
        ...

    async def prune(
        self, now_ms: int, *, retention_days: int, command_retention_days: int
    ) -> PruneCounts:
        """Delete readings and events older than ``retention_days``, commands older than
        ``command_retention_days``; meters and their last values are kept."""
        ...

    async def close(self) -> None:
        """Finish writes in flight and release connections; idempotent."""
        ...
