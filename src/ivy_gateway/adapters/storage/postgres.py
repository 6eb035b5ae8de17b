"""The production store: PostgreSQL through an asyncpg pool, TimescaleDB when present.

Writes: one transaction per ``handle`` call; readings go in by binary COPY inside a
savepoint. COPY cannot skip rows already there, so when a batch is retried (the unique key
fires) the savepoint is rolled back and the rows go in through a staging table with
``INSERT … SELECT … ON CONFLICT DO NOTHING``: a first delivery pays nothing for idempotency.
Last values are COPied into a second staging table and applied by one ``UPDATE … FROM``
join, 2–3× faster than the same update over ``unnest`` of eight parameter arrays (binding
them cost more than the update). The staging tables are per-connection temporary tables
(``ON COMMIT DELETE ROWS``) that the pool's ``init`` creates on every new connection.

Connection loss: an operation that fails because its connection died is retried once on a
fresh connection from the pool (every operation here is idempotent), then reported as
``StoreUnavailable``. Driver errors never leave this module untranslated, and messages never
carry the URL (it may hold a password).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]

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
from .migrations import SCHEMA_VERSION_DDL, load_migrations

__all__ = ["PostgresStore", "describe_location", "upgrade_postgres"]

T = TypeVar("T")

#: pg_advisory_xact_lock key serialising concurrent upgrades (several gateways starting).
MIGRATION_LOCK = 0x1717_6A7E
READING_COLUMNS = ("meter_id", "quantity", "ts", "source", "value", "unit")

TIMESCALE_READY = """
SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
   AND 'timescaledb' = ANY (string_to_array(
           replace(coalesce(current_setting('shared_preload_libraries', true), ''), ' ', ''),
           ','))
"""
UPSERT_METER = """
INSERT INTO meters (id, protocol, model, first_seen, last_seen, last_ip, online, status_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (id) DO UPDATE SET
    protocol = CASE WHEN excluded.last_seen >= meters.last_seen
                    THEN excluded.protocol ELSE meters.protocol END,
    first_seen = least(meters.first_seen, excluded.first_seen),
    last_seen = greatest(meters.last_seen, excluded.last_seen),
    model = CASE WHEN excluded.status_at >= coalesce(meters.status_at, -1)
                 THEN excluded.model ELSE meters.model END,
    last_ip = CASE WHEN excluded.status_at >= coalesce(meters.status_at, -1)
                   THEN coalesce(excluded.last_ip, meters.last_ip) ELSE meters.last_ip END,
    online = CASE WHEN excluded.status_at >= coalesce(meters.status_at, -1)
                  THEN excluded.online ELSE meters.online END,
    status_at = CASE WHEN excluded.status_at >= coalesce(meters.status_at, -1)
                     THEN excluded.status_at ELSE meters.status_at END
"""
LAST_VALUE_COLUMNS = ("meter_id", "quantity", "ts", "source", "value", "unit", "address", "exact")
#: Per-connection staging tables; emptied by every commit or rollback of their transaction.
STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS ivy_stage_readings (
    meter_id text COLLATE "C" NOT NULL, quantity text COLLATE "C" NOT NULL, ts bigint NOT NULL,
    source text COLLATE "C" NOT NULL, value double precision NOT NULL, unit text NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS ivy_stage_last_values (
    meter_id text COLLATE "C" NOT NULL, quantity text COLLATE "C" NOT NULL, ts bigint NOT NULL,
    source text COLLATE "C" NOT NULL, value double precision NOT NULL, unit text NOT NULL,
    address text NOT NULL, exact text NOT NULL
) ON COMMIT DELETE ROWS;
"""
INSERT_READINGS_STAGED = """
INSERT INTO readings (meter_id, quantity, ts, source, value, unit)
SELECT meter_id, quantity, ts, source, value, unit FROM pg_temp.ivy_stage_readings
ON CONFLICT DO NOTHING
"""
# Newest ts wins; rows.plan_writes keeps one row per pair, so the join matches a row once.
UPDATE_LAST_VALUES_STAGED = """
UPDATE last_values AS l
SET ts = n.ts, source = n.source, value = n.value, unit = n.unit, address = n.address,
    exact = n.exact
FROM pg_temp.ivy_stage_last_values AS n
WHERE l.meter_id = n.meter_id AND l.quantity = n.quantity AND n.ts >= l.ts
"""
UPSERT_LAST_VALUES_STAGED = """
INSERT INTO last_values (meter_id, quantity, ts, source, value, unit, address, exact)
SELECT meter_id, quantity, ts, source, value, unit, address, exact
FROM pg_temp.ivy_stage_last_values ORDER BY meter_id, quantity
ON CONFLICT (meter_id, quantity) DO UPDATE SET
    ts = excluded.ts, source = excluded.source, value = excluded.value, unit = excluded.unit,
    address = excluded.address, exact = excluded.exact
WHERE excluded.ts >= last_values.ts
"""
INSERT_EVENT = """
INSERT INTO events (meter_id, ts, kind, severity, data, fingerprint)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (fingerprint) DO NOTHING
"""
COMMAND_REQUESTED = """
INSERT INTO commands (id, meter_id, method, params, requested_by, requested_at, status)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO UPDATE SET
    meter_id = excluded.meter_id, method = excluded.method, params = excluded.params,
    requested_by = excluded.requested_by, requested_at = excluded.requested_at,
    status = excluded.status, finished_at = NULL, result = NULL, error = NULL, error_code = NULL
"""
COMMAND_FINISHED = """
INSERT INTO commands (id, meter_id, method, params, requested_by, requested_at, finished_at,
                      status, result, error, error_code)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (id) DO UPDATE SET
    finished_at = excluded.finished_at, status = excluded.status, result = excluded.result,
    error = excluded.error, error_code = excluded.error_code
"""

# History: constant fragments only. $1 meter, $2 from, $3 to, $4 limit, $5 bucket ms,
# $6 quantity (the last two only when used).
_BUCKET_VALUE = {
    Aggregate.AVG: "avg(value)",
    Aggregate.MIN: "min(value)",
    Aggregate.MAX: "max(value)",
    Aggregate.FIRST: "(array_agg(value ORDER BY ts))[1]",
    Aggregate.LAST: "(array_agg(value ORDER BY ts DESC))[1]",
}


def _history_sql(bucketed: bool, agg: Aggregate, one_quantity: bool) -> str:
    where = "meter_id = $1 AND ts >= $2 AND ts < $3"
    if one_quantity:
        where += " AND quantity = $6" if bucketed else " AND quantity = $5"
    if not bucketed:
        return (
            f"SELECT quantity, ts, value FROM readings WHERE {where} ORDER BY quantity, ts LIMIT $4"
        )
    return (
        f"SELECT quantity, (ts / $5::bigint) * $5::bigint AS bucket, {_BUCKET_VALUE[agg]} "
        f"FROM readings WHERE {where} GROUP BY quantity, bucket ORDER BY quantity, bucket "
        "LIMIT $4"
    )


def describe_location(url: str) -> str:
    """``host:port/db`` of a PostgreSQL URL: safe to log (no user, no password)."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"
    except ValueError:
        return "(unparsable URL)"


def _is_connection_loss(exc: BaseException) -> bool:
    """Errors after which the connection is gone or unusable; the operation may be retried.

    ``InternalClientError`` is on the list because a backend terminated while the
    connection sat idle in the pool leaves asyncpg's protocol state broken ("cannot switch
    to state …; another operation is in progress") until the socket's EOF is processed.
    """
    if isinstance(
        exc,
        OSError | asyncpg.PostgresConnectionError | asyncpg.InternalClientError,
    ):
        return True
    if isinstance(
        exc,
        asyncpg.AdminShutdownError
        | asyncpg.CannotConnectNowError
        | asyncpg.CrashShutdownError
        | asyncpg.TooManyConnectionsError,
    ):
        return True
    return isinstance(exc, asyncpg.InterfaceError) and "connection" in str(exc).lower()


def _translate(exc: BaseException, where: str, secret: str | None) -> StoreError:
    text = f"{type(exc).__name__}: {exc}"
    if secret:
        text = text.replace(secret, "***")
    if _is_connection_loss(exc) or isinstance(exc, TimeoutError):
        return StoreUnavailable(f"PostgreSQL at {where} unavailable ({text})")
    return StoreError(f"PostgreSQL at {where}: {text}")


async def _pending(conn: Any) -> list[str]:
    await conn.execute(SCHEMA_VERSION_DDL)
    applied = {r[0] for r in await conn.fetch("SELECT name FROM schema_version")}
    known = load_migrations("postgres")
    unknown = applied - {m.name for m in known}
    if unknown:
        raise StoreError(f"the database schema is newer than this gateway ({sorted(unknown)})")
    timescale = bool(await conn.fetchval(TIMESCALE_READY))
    return [
        m.name for m in known if m.name not in applied and (timescale or not m.needs_timescaledb)
    ]


async def upgrade_postgres(conn: Any) -> list[str]:
    """Apply pending migrations in one transaction under an advisory lock; their names."""
    by_name = {m.name: m for m in load_migrations("postgres")}
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        pending = await _pending(conn)
        for name in pending:
            await conn.execute(by_name[name].sql)
            await conn.execute(
                "INSERT INTO schema_version (name, applied_at) VALUES ($1, $2)",
                name,
                int(time.time() * 1000),
            )
    return pending


async def _mode(conn: Any) -> StoreMode:
    timescale = await conn.fetchval(
        "SELECT 1 FROM schema_version WHERE name LIKE '%\\_timescaledb'"
    )
    return StoreMode.TIMESCALEDB if timescale else StoreMode.POSTGRESQL


async def _create_staging(conn: Any) -> None:
    """Pool ``init``: runs once on every new connection, before it is used."""
    await conn.execute(STAGING_DDL)


async def _insert_readings(conn: Any, readings: list[tuple[Any, ...]]) -> None:
    try:
        async with conn.transaction():  # a savepoint inside the batch transaction
            await conn.copy_records_to_table("readings", records=readings, columns=READING_COLUMNS)
    except asyncpg.UniqueViolationError:
        # A retried batch (or a repeat inside one): skip what is stored already.
        await conn.copy_records_to_table(
            "ivy_stage_readings", schema_name="pg_temp", records=readings, columns=READING_COLUMNS
        )
        await conn.execute(INSERT_READINGS_STAGED)


async def _update_last_values(conn: Any, last_values: list[rows.LastValueRow]) -> None:
    # A plain UPDATE (almost always HOT: fillfactor 70) is ~1.5x faster than an upsert, so the
    # upsert runs only when some pair was not updated: new, or older than stored.
    await conn.copy_records_to_table(
        "ivy_stage_last_values",
        schema_name="pg_temp",
        records=last_values,
        columns=LAST_VALUE_COLUMNS,
    )
    status: str = await conn.execute(UPDATE_LAST_VALUES_STAGED)  # "UPDATE <n>"
    if int(status.rsplit(" ", 1)[-1]) < len(last_values):
        await conn.execute(UPSERT_LAST_VALUES_STAGED)


async def _write_plan(conn: Any, plan: rows.WritePlan) -> None:
    async with conn.transaction():
        if plan.meters:
            await conn.executemany(UPSERT_METER, plan.meters)
        if plan.events:
            await conn.executemany(INSERT_EVENT, plan.events)
        if plan.readings:
            await _insert_readings(conn, cast(list[tuple[Any, ...]], plan.readings))
        if plan.last_values:
            await _update_last_values(conn, plan.last_values)


class PostgresStore:
    """``ReadingStore`` on PostgreSQL; open with ``await PostgresStore.open(url)``."""

    def __init__(
        self,
        pool: Any,
        mode: StoreMode,
        where: str,
        secret: str | None,
        applied_migrations: Sequence[str] = (),
    ) -> None:
        #: Migrations this ``open`` applied (for ``ivy-gateway db upgrade``).
        self.applied_migrations = tuple(applied_migrations)
        self._pool = pool
        self._mode = mode
        self._where = where
        self._secret = secret
        self._closed = False

    @property
    def mode(self) -> StoreMode:
        return self._mode

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        password: str | None = None,
        migrate: bool = True,
        min_connections: int = 1,
        max_connections: int = 4,
        command_timeout_s: float = 30.0,
    ) -> PostgresStore:
        """Connect a pool and apply migrations (or refuse a database that needs them).

        Extra URL query parameters become server settings, e.g. ``?search_path=ivy``.
        """
        where = describe_location(url)
        secret = password or urlsplit(url).password
        try:
            pool = await asyncpg.create_pool(
                dsn=url,
                password=password,
                min_size=min_connections,
                max_size=max_connections,
                command_timeout=command_timeout_s,
                init=_create_staging,
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise _translate(exc, where, secret) from None
        try:
            async with pool.acquire() as conn:
                applied = await upgrade_postgres(conn) if migrate else []
                if not migrate and await _pending(conn):
                    raise StoreError("the database needs migrations: run `ivy-gateway db upgrade`")
                mode = await _mode(conn)
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, StoreError) or not isinstance(exc, Exception):
                raise
            raise _translate(exc, where, secret) from None
        return cls(pool, mode, where, secret, applied)

    async def _with_connection(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``work`` on a pooled connection; once more on a fresh one if it was lost."""
        self._check_open()
        for attempt in (1, 2):
            try:
                async with self._pool.acquire() as conn:
                    try:
                        return await work(conn)
                    except Exception as exc:
                        if _is_connection_loss(exc):
                            conn.terminate()  # so the pool replaces it, never reuses it
                        raise
            except StoreError:
                raise
            except Exception as exc:
                if attempt == 1 and _is_connection_loss(exc):
                    continue
                raise _translate(exc, self._where, self._secret) from None
        raise AssertionError("unreachable")

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    # ---- TelemetrySink / CommandAudit -------------------------------------------------

    async def handle(self, events: Sequence[GatewayEvent]) -> None:
        plan = rows.plan_writes(events)
        if plan.is_empty():
            self._check_open()
            return
        await self._with_connection(lambda conn: _write_plan(conn, plan))

    async def record_requested(self, command: Command, ts_ms: int) -> None:
        row = rows.command_requested_row(command, ts_ms)
        await self._with_connection(lambda conn: conn.execute(COMMAND_REQUESTED, *row))

    async def record_finished(self, command: Command, result: CommandResult, ts_ms: int) -> None:
        row = rows.command_finished_row(command, result, ts_ms)
        await self._with_connection(lambda conn: conn.execute(COMMAND_FINISHED, *row))

    # ---- queries ----------------------------------------------------------------------

    async def _meters(self, meter: MeterId | None) -> list[MeterRecord]:
        async def query(conn: Any) -> list[MeterRecord]:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                if meter is None:
                    meter_rows = await conn.fetch(
                        f"SELECT {rows.METER_COLUMNS} FROM meters ORDER BY id"
                    )
                    values = await conn.fetch(f"SELECT {rows.LAST_VALUE_COLUMNS} FROM last_values")
                else:
                    meter_rows = await conn.fetch(
                        f"SELECT {rows.METER_COLUMNS} FROM meters WHERE id = $1", meter.value
                    )
                    values = await conn.fetch(
                        f"SELECT {rows.LAST_VALUE_COLUMNS} FROM last_values WHERE meter_id = $1",
                        meter.value,
                    )
            by_meter: dict[str, dict[str, Reading]] = {}
            for value_row in values:
                reading = rows.to_reading(value_row)
                by_meter.setdefault(reading.meter.value, {})[reading.quantity] = reading
            return [rows.to_meter(r, by_meter.get(r[0], {})) for r in meter_rows]

        return await self._with_connection(query)

    async def list_meters(self) -> list[MeterRecord]:
        return await self._meters(None)

    async def get_meter(self, meter: MeterId) -> MeterRecord | None:
        found = await self._meters(meter)
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
        args: list[Any] = [meter.value, from_ms, to_ms, limit]
        if bucket_s is not None:
            args.append(bucket_s * 1000)
        if quantity is not None:
            args.append(quantity)

        async def query(conn: Any) -> list[HistoryPoint]:
            return [rows.to_point(r) for r in await conn.fetch(sql, *args)]

        return await self._with_connection(query)

    async def events(
        self, meter: MeterId | None, from_ms: int, to_ms: int, *, limit: int = 1000
    ) -> list[EventRecord]:
        where = "ts >= $1 AND ts < $2" + (" AND meter_id = $4" if meter is not None else "")
        sql = (
            f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE {where} "
            "ORDER BY ts DESC, id DESC LIMIT $3"
        )
        args: list[Any] = [from_ms, to_ms, limit] + ([meter.value] if meter is not None else [])

        async def query(conn: Any) -> list[EventRecord]:
            return [rows.to_event(r) for r in await conn.fetch(sql, *args)]

        return await self._with_connection(query)

    async def command(self, command_id: str) -> CommandRecord | None:
        sql = f"SELECT {rows.COMMAND_COLUMNS} FROM commands WHERE id = $1"

        async def query(conn: Any) -> CommandRecord | None:
            row = await conn.fetchrow(sql, command_id)
            return rows.to_command(row) if row is not None else None

        return await self._with_connection(query)

    async def last_values(self, meter: MeterId) -> dict[str, Reading]:
        sql = f"SELECT {rows.LAST_VALUE_COLUMNS} FROM last_values WHERE meter_id = $1"

        async def query(conn: Any) -> dict[str, Reading]:
            found = (rows.to_reading(r) for r in await conn.fetch(sql, meter.value))
            return {r.quantity: r for r in found}

        return await self._with_connection(query)

    # ---- maintenance ------------------------------------------------------------------

    async def prune(
        self, now_ms: int, *, retention_days: int, command_retention_days: int
    ) -> PruneCounts:
        cutoff = now_ms - retention_days * DAY_MS
        command_cutoff = now_ms - command_retention_days * DAY_MS

        async def delete(conn: Any, sql: str, bound: int) -> int:
            # A first prune of a big table may take long: an hour instead of command_timeout.
            status: str = await conn.execute(sql, bound, timeout=3600)  # "DELETE <n>"
            return int(status.rsplit(" ", 1)[-1])

        readings = await self._with_connection(
            lambda conn: delete(conn, "DELETE FROM readings WHERE ts < $1", cutoff)
        )
        events = await self._with_connection(
            lambda conn: delete(conn, "DELETE FROM events WHERE ts < $1", cutoff)
        )
        commands = await self._with_connection(
            lambda conn: delete(
                conn, "DELETE FROM commands WHERE requested_at < $1", command_cutoff
            )
        )
        return PruneCounts(readings, events, commands)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._pool.close()
        except Exception as exc:
            raise _translate(exc, self._where, self._secret) from None
