"""History storage: SQLite by default, PostgreSQL (with TimescaleDB when present) in production.

The composition root calls, with ``StorageSettings``::

    store = await open_store(settings.url, password=<from settings.password_file or None>)
    ...
    await store.close()

``upgrade_database`` and ``prune_database`` back ``ivy-gateway db upgrade | prune``; they
return data and print nothing. See docs/storage.md for the schema and the trade-offs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivy_gateway.domain.store import ReadingStore, StoreError

if TYPE_CHECKING:
    from .postgres import PostgresStore
    from .sqlite import SqliteStore

__all__ = ["is_postgres_url", "open_store", "prune_database", "upgrade_database"]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(url: str) -> bool:
    return url.startswith(_POSTGRES_SCHEMES)


async def _open(url: str, password: str | None, migrate: bool) -> SqliteStore | PostgresStore:
    if is_postgres_url(url):
        try:
            from .postgres import PostgresStore
        except ImportError as exc:  # asyncpg is the optional "postgres" extra
            raise StoreError(
                "storage.url is PostgreSQL but asyncpg is not installed: "
                "pip install 'ivy-gateway[postgres]'"
            ) from exc
        return await PostgresStore.open(url, password=password, migrate=migrate)
    if url.startswith("sqlite:"):
        from .sqlite import SqliteStore, sqlite_path

        return await SqliteStore.open(sqlite_path(url), migrate=migrate)
    raise StoreError("storage.url must start with sqlite:///, postgresql:// or postgres://")


async def open_store(
    url: str, *, password: str | None = None, migrate: bool = True
) -> ReadingStore:
    """Open the store ``url`` names, applying pending migrations unless ``migrate`` is False.

    ``password`` (PostgreSQL only) overrides one in the URL; read it from
    ``storage.password_file``. Raises ``StoreUnavailable`` when the database cannot be
    reached, ``StoreError`` for a bad URL or a schema newer than this gateway.
    """
    return await _open(url, password, migrate)


async def upgrade_database(url: str, password: str | None) -> list[str]:
    """``ivy-gateway db upgrade``: the names of the migrations applied now (empty: up to date)."""
    store = await _open(url, password, migrate=True)
    try:
        return list(store.applied_migrations)
    finally:
        await store.close()


async def prune_database(
    url: str,
    password: str | None,
    retention_days: int,
    command_retention_days: int,
    now_ms: int,
) -> dict[str, int]:
    """``ivy-gateway db prune``: rows deleted per table (readings, events, commands)."""
    store = await _open(url, password, migrate=False)
    try:
        counts = await store.prune(
            now_ms, retention_days=retention_days, command_retention_days=command_retention_days
        )
    finally:
        await store.close()
    return counts.as_dict()
