"""The small Protocols the core needs from the outside world and from meter sessions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from .commands import Command, CommandResult, RegisterRef, RelayState
from .events import GatewayEvent
from .meter import MeterId, ProtocolKind
from .quantities import Reading, ReadingSource

__all__ = ["Clock", "CommandRunner", "EventSink", "MeterDirectory", "MeterLink", "PollGroup"]


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
