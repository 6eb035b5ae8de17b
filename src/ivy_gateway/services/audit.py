"""An in-memory ``CommandAudit``: for tests and for running without a store."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ivy_gateway.domain.commands import Command, CommandResult

__all__ = ["AuditEntry", "InMemoryCommandAudit"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    command: Command
    requested_ts_ms: int
    finished_ts_ms: int | None = None
    result: CommandResult | None = None


class InMemoryCommandAudit:
    """Keeps the last ``max_entries`` commands by id; a reused id replaces the older entry."""

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._entries: OrderedDict[str, AuditEntry] = OrderedDict()

    async def record_requested(self, command: Command, ts_ms: int) -> None:
        self._entries.pop(command.id, None)
        self._store(AuditEntry(command, ts_ms))

    async def record_finished(self, command: Command, result: CommandResult, ts_ms: int) -> None:
        entry = self._entries.get(command.id)
        requested_ts_ms = entry.requested_ts_ms if entry is not None else ts_ms
        self._store(AuditEntry(command, requested_ts_ms, ts_ms, result))

    def _store(self, entry: AuditEntry) -> None:
        self._entries[entry.command.id] = entry
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def get(self, command_id: str) -> AuditEntry | None:
        return self._entries.get(command_id)

    def entries(self) -> list[AuditEntry]:
        """Oldest first."""
        return list(self._entries.values())
