"""The default store: one SQLite file in WAL mode, written off the event loop.

::

    handle() ──► writer thread (1 connection): BEGIN IMMEDIATE, executemany ×4, COMMIT
    queries  ──► reader thread (1 connection, query_only): WAL lets it read while writing

Each connection lives in its own single-thread executor, so the event loop never waits on
disk and every write is serialised in submission order. stdlib ``sqlite3`` on a thread
rather than aiosqlite: both measured the same speed (docs/storage.md), but here a whole
transaction is one call into the thread, so a cancelled ``handle`` can never leave a
transaction half-open on the connection.

``synchronous=NORMAL`` in WAL mode: a committed batch survives a process crash; a power cut
may lose the last transactions, never corrupts the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from ivy_gateway.domain.commands import Command, CommandResult
from ivy_gateway.domain.events import GatewayEvent
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.quantities import Reading
from ivy_gateway.domain.store import (
    DAY_MS,
    Aggregate,
    CommandRecord,
    EventRecord,
    HistoryPoint,
    MeterRecord,
    PruneCounts,
    StoreError,
    StoreMode,
    StoreUnavailable,
)

from . import rows
from .migrations import SCHEMA_VERSION_DDL, Migration, load_migrations, split_statements

__all__ = ["SqliteStore", "sqlite_path", "upgrade_sqlite"]

T = TypeVar("T")

BUSY_TIMEOUT_S = 10.0
PRUNE_PAIRS_PER_TRANSACTION = 200

UPSERT_METER = """
INSERT INTO meters (id, protocol, model, first_seen, last_seen, last_ip, online, status_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    protocol = CASE WHEN excluded.last_seen >= meters.last_seen
                    THEN excluded.protocol ELSE meters.protocol END,
    first_seen = min(meters.first_seen, excluded.first_seen),
    last_seen = max(meters.last_seen, excluded.last_seen),
    model = CASE WHEN excluded.status_at >= coalesce(meters.status_at, -1)
                 THEN excluded.model ELSE meters.model END,
    last_ip = CASE WHEN excluded.status_at >= coalesce(meters.status_at, -1)
                   THEN coalesce(excluded.last_ip, meters.last_ip) ELSE meters.last_ip END,
    online = CASE WHEN excluded.status_at >= coalesce(meters.status_at, -1)
                  THEN excluded.online ELSE meters.online END,
    status_at = CASE WHEN excluded.status_at >= coalesce(meters.status_at, -1)
                     THEN excluded.status_at ELSE meters.status_at END
"""
INSERT_READING = """
INSERT INTO readings (meter_id, quantity, ts, source, value, unit) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
"""
UPSERT_LAST_VALUE = """
INSERT INTO last_values (meter_id, quantity, ts, source, value, unit, address, exact)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (meter_id, quantity) DO UPDATE SET
    ts = excluded.ts, source = excluded.source, value = excluded.value, unit = excluded.unit,
    address = excluded.address, exact = excluded.exact
WHERE excluded.ts >= last_values.ts
"""
INSERT_EVENT = """
INSERT INTO events (meter_id, ts, kind, severity, data, fingerprint) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (fingerprint) DO NOTHING
"""
COMMAND_REQUESTED = """
INSERT INTO commands (id, meter_id, method, params, requested_by, requested_at, status)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    meter_id = excluded.meter_id, method = excluded.method, params = excluded.params,
    requested_by = excluded.requested_by, requested_at = excluded.requested_at,
    status = excluded.status, finished_at = NULL, result = NULL, error = NULL, error_code = NULL
"""
COMMAND_FINISHED = """
INSERT INTO commands (id, meter_id, method, params, requested_by, requested_at, finished_at,
                      status, result, error, error_code)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    finished_at = excluded.finished_at, status = excluded.status, result = excluded.result,
    error = excluded.error, error_code = excluded.error_code
"""
DELETE_READINGS = "DELETE FROM readings WHERE meter_id = ? AND quantity = ? AND ts < ?"
DELETE_EVENTS = "DELETE FROM events WHERE ts < ?"
DELETE_COMMANDS = "DELETE FROM commands WHERE requested_at < ?"

# History: constant fragments only; every value is a named parameter.
_BUCKET_VALUE = {
    Aggregate.AVG: "avg(value)",
    Aggregate.MIN: "min(value)",
    Aggregate.MAX: "max(value)",
    # SQLite documents that with a single min()/max() the bare column comes from that row.
    Aggregate.FIRST: "value, min(ts)",
    Aggregate.LAST: "value, max(ts)",
}
_WHERE = "meter_id = :meter AND ts >= :from_ms AND ts < :to_ms"
_ONE_QUANTITY = " AND quantity = :quantity"


def _history_sql(bucketed: bool, agg: Aggregate, one_quantity: bool) -> str:
    where = _WHERE + (_ONE_QUANTITY if one_quantity else "")
    if not bucketed:
        return (
            f"SELECT quantity, ts, value FROM readings WHERE {where} "
            "ORDER BY quantity, ts LIMIT :limit"
        )
    return (
        f"SELECT quantity, (ts / :bucket_ms) * :bucket_ms AS bucket, {_BUCKET_VALUE[agg]} "
        f"FROM readings WHERE {where} GROUP BY quantity, bucket ORDER BY quantity, bucket "
        "LIMIT :limit"
    )


def sqlite_path(url: str) -> Path:
    """``sqlite:///rel/path.db`` → ``rel/path.db``; ``sqlite:////abs/path.db`` → ``/abs/...``."""
    if not url.startswith("sqlite:///"):
        raise StoreError("a SQLite storage.url looks like sqlite:///path/to/file.db")
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    if not path or path == ":memory:":
        raise StoreError(
            "storage.url: SQLite needs a file path (in-memory databases are per connection)"
        )
    return Path(path)


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        if readonly:
            conn.execute("PRAGMA query_only = ON")
        else:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -32000")  # KiB
    except BaseException:
        conn.close()
        raise
    return conn


def _pending(conn: sqlite3.Connection) -> list[Migration]:
    conn.execute(SCHEMA_VERSION_DDL)
    applied = {name for (name,) in conn.execute("SELECT name FROM schema_version")}
    known = load_migrations("sqlite")
    unknown = applied - {m.name for m in known}
    if unknown:
        raise StoreError(f"the database schema is newer than this gateway ({sorted(unknown)})")
    return [m for m in known if m.name not in applied]


def upgrade_sqlite(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations in one transaction; returns their names."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        pending = _pending(conn)
        for migration in pending:
            for statement in split_statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (name, applied_at) VALUES (?, ?)",
                (migration.name, int(time.time() * 1000)),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.rollback()
        raise
    return [m.name for m in pending]


def _in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    return result


def _write_plan(conn: sqlite3.Connection, plan: rows.WritePlan) -> None:
    if plan.meters:
        conn.executemany(UPSERT_METER, plan.meters)
    if plan.events:
        conn.executemany(INSERT_EVENT, plan.events)
    if plan.readings:
        conn.executemany(INSERT_READING, plan.readings)
    if plan.last_values:
        conn.executemany(UPSERT_LAST_VALUE, plan.last_values)


def _pairs(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return conn.execute("SELECT meter_id, quantity FROM last_values").fetchall()


def _delete(sql: str, params: list[tuple[Any, ...]], conn: sqlite3.Connection) -> int:
    return conn.executemany(sql, params).rowcount


def _read_meters(conn: sqlite3.Connection, meter: MeterId | None) -> list[MeterRecord]:
    conn.execute("BEGIN")  # one snapshot for both tables
    try:
        if meter is None:
            meters = conn.execute(f"SELECT {rows.METER_COLUMNS} FROM meters ORDER BY id")
            meter_rows = meters.fetchall()
            values = conn.execute(f"SELECT {rows.LAST_VALUE_COLUMNS} FROM last_values").fetchall()
        else:
            sql = f"SELECT {rows.METER_COLUMNS} FROM meters WHERE id = ?"
            meter_rows = conn.execute(sql, (meter.value,)).fetchall()
            sql = f"SELECT {rows.LAST_VALUE_COLUMNS} FROM last_values WHERE meter_id = ?"
            values = conn.execute(sql, (meter.value,)).fetchall()
    finally:
        conn.execute("COMMIT")
    return _assemble_meters(meter_rows, values)


def _assemble_meters(
    meter_rows: Iterable[Sequence[Any]], value_rows: Iterable[Sequence[Any]]
) -> list[MeterRecord]:
    by_meter: dict[str, dict[str, Reading]] = {}
    for value_row in value_rows:
        reading = rows.to_reading(value_row)
        by_meter.setdefault(reading.meter.value, {})[reading.quantity] = reading
    return [rows.to_meter(r, by_meter.get(r[0], {})) for r in meter_rows]


class SqliteStore:
    """``ReadingStore`` on a SQLite file; open with ``await SqliteStore.open(path)``."""

    mode = StoreMode.SQLITE

    def __init__(
        self,
        writer: sqlite3.Connection,
        reader: sqlite3.Connection,
        write_thread: ThreadPoolExecutor,
        read_thread: ThreadPoolExecutor,
        applied_migrations: Sequence[str] = (),
    ) -> None:
        #: Migrations this ``open`` applied (for ``ivy-gateway db upgrade``).
        self.applied_migrations = tuple(applied_migrations)
        self._writer = writer
        self._reader = reader
        self._write_thread = write_thread
        self._read_thread = read_thread
        self._closed = False

    @classmethod
    async def open(cls, path: Path, *, migrate: bool = True) -> SqliteStore:
        """Open (creating the file and its folder), applying migrations unless ``migrate``
        is False, in which case a database that needs them is refused."""
        write_thread = ThreadPoolExecutor(1, thread_name_prefix="ivy-sqlite-writer")
        read_thread = ThreadPoolExecutor(1, thread_name_prefix="ivy-sqlite-reader")

        def open_writer() -> tuple[sqlite3.Connection, list[str]]:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(path, readonly=False)
            try:
                applied = upgrade_sqlite(conn) if migrate else []
                if not migrate and _pending(conn):
                    raise StoreError("the database needs migrations: run `ivy-gateway db upgrade`")
            except BaseException:
                conn.close()
                raise
            return conn, applied

        try:
            writer, applied = await _run(write_thread, open_writer)
            reader = await _run(read_thread, _connect, path, readonly=True)
        except BaseException:
            write_thread.shutdown(wait=False)
            read_thread.shutdown(wait=False)
            raise
        return cls(writer, reader, write_thread, read_thread, applied)

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()
        return await _run(self._write_thread, _in_transaction, self._writer, work)

    async def _read(self, work: Callable[..., T], *args: Any) -> T:
        self._check_open()
        return await _run(self._read_thread, work, self._reader, *args)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    # ---- TelemetrySink / CommandAudit -------------------------------------------------

    async def handle(self, events: Sequence[GatewayEvent]) -> None:
        plan = rows.plan_writes(events)
        if plan.is_empty():
            self._check_open()
            return
        await self._write(lambda conn: _write_plan(conn, plan))

    async def record_requested(self, command: Command, ts_ms: int) -> None:
        row = rows.command_requested_row(command, ts_ms)
        await self._write(lambda conn: conn.execute(COMMAND_REQUESTED, row))

    async def record_finished(self, command: Command, result: CommandResult, ts_ms: int) -> None:
        row = rows.command_finished_row(command, result, ts_ms)
        await self._write(lambda conn: conn.execute(COMMAND_FINISHED, row))

    # ---- queries ----------------------------------------------------------------------

    async def list_meters(self) -> list[MeterRecord]:
        return await self._read(_read_meters, None)

    async def get_meter(self, meter: MeterId) -> MeterRecord | None:
        found = await self._read(_read_meters, meter)
        return found[0] if found else None

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
        if bucket_s is not None and bucket_s < 1:
            raise ValueError("bucket_s must be at least 1")
        sql = _history_sql(bucket_s is not None, Aggregate(agg), quantity is not None)
        params = {
            "meter": meter.value,
            "quantity": quantity,
            "from_ms": from_ms,
            "to_ms": to_ms,
            "bucket_ms": (bucket_s or 1) * 1000,
            "limit": -1 if limit is None else limit,  # SQLite: negative = no limit
        }

        def query(conn: sqlite3.Connection) -> list[HistoryPoint]:
            return [rows.to_point(r) for r in conn.execute(sql, params)]

        return await self._read(query)

    async def events(
        self, meter: MeterId | None, from_ms: int, to_ms: int, *, limit: int = 1000
    ) -> list[EventRecord]:
        where = "ts >= ? AND ts < ?" + (" AND meter_id = ?" if meter is not None else "")
        sql = (
            f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE {where} "
            "ORDER BY ts DESC, id DESC LIMIT ?"
        )
        params: tuple[Any, ...] = (from_ms, to_ms)
        params += (meter.value, limit) if meter is not None else (limit,)

        def query(conn: sqlite3.Connection) -> list[EventRecord]:
            return [rows.to_event(r) for r in conn.execute(sql, params)]

        return await self._read(query)

    async def command(self, command_id: str) -> CommandRecord | None:
        sql = f"SELECT {rows.COMMAND_COLUMNS} FROM commands WHERE id = ?"

        def query(conn: sqlite3.Connection) -> CommandRecord | None:
            row = conn.execute(sql, (command_id,)).fetchone()
            return rows.to_command(row) if row is not None else None

        return await self._read(query)

    async def last_values(self, meter: MeterId) -> dict[str, Reading]:
        sql = f"SELECT {rows.LAST_VALUE_COLUMNS} FROM last_values WHERE meter_id = ?"

        def query(conn: sqlite3.Connection) -> dict[str, Reading]:
            found = (rows.to_reading(r) for r in conn.execute(sql, (meter.value,)))
            return {r.quantity: r for r in found}

        return await self._read(query)

    # ---- maintenance ------------------------------------------------------------------

    async def prune(
        self, now_ms: int, *, retention_days: int, command_retention_days: int
    ) -> PruneCounts:
        cutoff = now_ms - retention_days * DAY_MS
        command_cutoff = now_ms - command_retention_days * DAY_MS

        # Per (meter, quantity) range deletes use the primary key (no index on ts needed);
        # small transactions let telemetry writes interleave with a long prune.
        pairs = await self._read(_pairs)
        readings = 0
        for start in range(0, len(pairs), PRUNE_PAIRS_PER_TRANSACTION):
            chunk = [(m, q, cutoff) for m, q in pairs[start : start + PRUNE_PAIRS_PER_TRANSACTION]]
            readings += await self._write(partial(_delete, DELETE_READINGS, chunk))
        events = await self._write(partial(_delete, DELETE_EVENTS, [(cutoff,)]))
        commands = await self._write(partial(_delete, DELETE_COMMANDS, [(command_cutoff,)]))
        return PruneCounts(readings, events, commands)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Queued behind any write still in flight, so those finish first.
        with contextlib.suppress(StoreError):
            await _run(self._write_thread, self._writer.close)
        with contextlib.suppress(StoreError):
            await _run(self._read_thread, self._reader.close)
        self._write_thread.shutdown(wait=False)
        self._read_thread.shutdown(wait=False)


async def _run(executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Run ``fn`` on the connection's own thread; SQLite errors become store errors."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(executor, lambda: fn(*args, **kw))
    except sqlite3.OperationalError as exc:
        # "database is locked", "disk I/O error", "unable to open database file", ...
        raise StoreUnavailable(f"SQLite: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite: {exc}") from exc
