"""Per-meter raw traffic capture to JSON Lines, switchable at run time.

One file per meter, ``<dir>/<meterId>.jsonl``, one record a line::

    {"ts_ms": 1764201600000, "meter": "000000001234", "connection": 7,
     "direction": "rx", "hex": "68341200000000681106"}

``record`` only appends to an in-memory buffer (bounded: when full the new record is dropped
and counted), and ``run`` writes the buffer from a worker thread, so neither a meter that
floods nor a slow disk stalls the event loop. A file that would pass ``max_file_bytes`` is
rotated like logrotate: ``x.jsonl`` → ``x.jsonl.1`` → … → ``x.jsonl.<backups>`` (dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ivy_gateway.domain.meter import ConnectionInfo, MeterId
from ivy_gateway.domain.ports import Clock

__all__ = ["Capture", "CaptureRecord", "capture_files", "read_capture"]

log = logging.getLogger(__name__)

Direction = Literal["rx", "tx"]
# (ts_ms, direction, bytes, connection id)
_Pending = tuple[int, Direction, bytes, int | None]


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    ts_ms: int
    meter: MeterId
    direction: Direction
    connection: int | None
    data: bytes


class Capture:
    """A ``TrafficCapture``: ``enable``/``disable`` meters at run time; run ``run()``."""

    def __init__(
        self,
        directory: Path,
        clock: Clock,
        *,
        max_file_bytes: int = 10 * 1024 * 1024,
        backups: int = 3,
        max_pending: int = 10_000,
        flush_interval_s: float = 1.0,
    ) -> None:
        if max_file_bytes < 1 or backups < 0 or max_pending < 1:
            raise ValueError("max_file_bytes and max_pending must be positive, backups >= 0")
        self.directory = directory
        self._clock = clock
        self._max_file_bytes = max_file_bytes
        self._backups = backups
        self._max_pending = max_pending
        self._flush_interval_s = flush_interval_s
        self._enabled: set[MeterId] = set()
        self._pending: dict[MeterId, list[_Pending]] = {}
        self._pending_count = 0
        self._half_full = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self.dropped = 0
        self.written = 0

    def enable(self, meter: MeterId) -> None:
        self._enabled.add(meter)

    def disable(self, meter: MeterId) -> None:
        """Stop capturing; records already taken are still written."""
        self._enabled.discard(meter)

    def enabled(self) -> list[MeterId]:
        return sorted(self._enabled)

    def is_enabled(self, meter: MeterId) -> bool:
        return meter in self._enabled

    def path_of(self, meter: MeterId) -> Path:
        return self.directory / f"{meter}.jsonl"

    def record(
        self,
        meter: MeterId,
        direction: Direction,
        data: bytes,
        connection: ConnectionInfo | None = None,
    ) -> None:
        if meter not in self._enabled:
            return
        if self._pending_count >= self._max_pending:
            if self.dropped == 0:
                log.warning("traffic capture buffer full; dropping records (counted)")
            self.dropped += 1
            return
        conn_id = connection.connection_id if connection is not None else None
        item = (self._clock.now_ms(), direction, bytes(data), conn_id)
        self._pending.setdefault(meter, []).append(item)
        self._pending_count += 1
        if self._pending_count * 2 >= self._max_pending:
            self._half_full.set()

    async def flush(self) -> None:
        """Write everything buffered so far (in a worker thread)."""
        async with self._write_lock:
            batch, self._pending, self._pending_count = self._pending, {}, 0
            self._half_full.clear()
            written = await asyncio.to_thread(self._write, batch) if batch else 0
            self.written += written

    async def run(self) -> None:
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._flush_interval_s):
                        await self._half_full.wait()
                await self.flush()
        finally:
            # Keep the tail of a capture on shutdown: it is usually the interesting part.
            await self.flush()

    def _write(self, batch: dict[MeterId, list[_Pending]]) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        count = 0
        for meter, items in batch.items():
            path = self.path_of(meter)
            size = path.stat().st_size if path.exists() else 0
            out = path.open("a", encoding="utf-8")
            try:
                for ts_ms, direction, data, conn_id in items:
                    line = _encode_line(ts_ms, meter, direction, data, conn_id)
                    if size and size + len(line) > self._max_file_bytes:
                        out.close()
                        self._rotate(path)
                        out = path.open("a", encoding="utf-8")
                        size = 0
                    out.write(line)
                    size += len(line)  # ASCII only, so characters == bytes
                    count += 1
            finally:
                out.close()
        return count

    def _rotate(self, path: Path) -> None:
        if self._backups == 0:
            path.unlink()
            return
        for n in range(self._backups - 1, 0, -1):
            older = path.with_name(f"{path.name}.{n}")
            if older.exists():
                older.replace(path.with_name(f"{path.name}.{n + 1}"))
        path.replace(path.with_name(f"{path.name}.1"))


def _encode_line(
    ts_ms: int, meter: MeterId, direction: Direction, data: bytes, conn_id: int | None
) -> str:
    record = {
        "ts_ms": ts_ms,
        "meter": meter.value,
        "connection": conn_id,
        "direction": direction,
        "hex": data.hex(),
    }
    return json.dumps(record, separators=(",", ":")) + "\n"


def capture_files(directory: Path, meter: MeterId) -> list[Path]:
    """A meter's capture files, oldest first (rotated backups, then the current file)."""
    base = directory / f"{meter}.jsonl"
    rotated = [p for p in directory.glob(f"{base.name}.*") if p.suffix[1:].isdigit()]
    rotated.sort(key=lambda p: int(p.suffix[1:]), reverse=True)
    return rotated + ([base] if base.exists() else [])


def read_capture(path: Path | str) -> Iterator[CaptureRecord]:
    """The records of one capture file in order; ``ValueError`` names a bad line."""
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                direction = raw["direction"]
                if direction not in ("rx", "tx"):
                    raise ValueError(f"direction must be rx or tx, got {direction!r}")
                connection = raw.get("connection")
                if connection is not None and not isinstance(connection, int):
                    raise ValueError(f"connection must be an integer, got {connection!r}")
                record = CaptureRecord(
                    int(raw["ts_ms"]),
                    MeterId(raw["meter"]),
                    direction,
                    connection,
                    bytes.fromhex(raw["hex"]),
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a capture record: {exc}") from None
            yield record
