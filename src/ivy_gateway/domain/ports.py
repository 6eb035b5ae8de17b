"""The small Protocols the core needs from the outside world and from meter sessions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Literal, Protocol

from .commands import Command, CommandResult, RegisterRef, RelayState
from .events import GatewayEvent
from .meter import ConnectionInfo, MeterId, ProtocolKind
from .quantities import Reading, ReadingSource

__all__ = [
    "Clock",
    "CommandAudit",
    "CommandRunner",
    "EventSink",
    "MeterDirectory",
    "MeterLink",
    "PollGate",
    "PollGroup",
    "TelemetrySink",
    "TrafficCapture",
]


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock milliseconds since the Unix epoch (UTC), for timestamps."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps, for timeouts and schedules."""
        ...


class EventSink(Protocol):
    """Takes what the runtime learns. Must not block: bounded queues live behind it."""

    def emit(self, event: GatewayEvent) -> None: ...


class PollGroup(Protocol):
    """A set of quantities a meter model reads together, every ``interval_s`` seconds."""

    @property
    def name(self) -> str: ...
    @property
    def interval_s(self) -> float: ...
    @property
    def quantities(self) -> Sequence[str]: ...


class MeterLink(Protocol):
    """A live, identified meter session as the services see it (protocol-independent).

    Every method talks to the meter and may raise ``MeterError`` subclasses
    (``MeterTimeout``, ``MeterRejected``, ``MeterOffline``, ``ProtocolViolation``).
    """

    @property
    def meter(self) -> MeterId: ...
    @property
    def protocol(self) -> ProtocolKind: ...
    @property
    def model(self) -> str: ...
    @property
    def poll_groups(self) -> Sequence[PollGroup]: ...

    async def read(self, quantities: Sequence[str], source: ReadingSource) -> list[Reading]:
        """Read canonical quantities; ones the meter lacks are left out, not errors."""
        ...

    async def read_register(self, ref: RegisterRef) -> Reading | Mapping[str, Any]: ...
    async def read_address(self) -> str: ...
    async def relay_control(self, state: RelayState) -> RelayState:
        """Switch the relay, then read it back; returns the state the meter confirms."""
        ...

    async def read_relay_state(self) -> RelayState: ...
    async def sync_time(self, when: datetime) -> datetime: ...


class MeterDirectory(Protocol):
    """Meter id → live local session."""

    def get(self, meter: MeterId) -> MeterLink | None: ...
    def meters(self) -> Sequence[MeterId]: ...


class CommandRunner(Protocol):
    """Runs a command on whichever meter session (local or remote) owns the meter."""

    async def run(self, command: Command) -> CommandResult: ...


class TelemetrySink(Protocol):
    """Takes batches of events from telemetry (the store, the MQTT publisher, alarms).

    Raising means "not delivered": telemetry retries the same batch with backoff for a
    bounded time, so ``handle`` should be idempotent or tolerate a repeated batch.
    """

    async def handle(self, events: Sequence[GatewayEvent]) -> None: ...


class CommandAudit(Protocol):
    """The audit log of commands (``GET /api/v1/commands/{id}``)."""

    async def record_requested(self, command: Command, ts_ms: int) -> None: ...
    async def record_finished(
        self, command: Command, result: CommandResult, ts_ms: int
    ) -> None: ...


class PollGate(Protocol):
    """Lets a command go ahead of the polls of its meter.

    While a ``hold(meter)`` context is open no new poll of that meter starts; polls that
    fell due meanwhile run when the last hold closes.
    """

    def hold(self, meter: MeterId) -> AbstractContextManager[None]: ...


class TrafficCapture(Protocol):
    """Per-meter raw traffic capture; sessions call it for every chunk sent or received."""

    def is_enabled(self, meter: MeterId) -> bool:
        """Cheap check, so sessions skip building records for meters nobody captures."""
        ...

    def record(
        self,
        meter: MeterId,
        direction: Literal["rx", "tx"],
        data: bytes,
        connection: ConnectionInfo | None = None,
    ) -> None:
        """Never blocks: the record is buffered and written off the event loop."""
        ...
