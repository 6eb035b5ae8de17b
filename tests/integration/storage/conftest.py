"""Fixtures running the one store suite against SQLite (temp file) and the real PostgreSQL.

PostgreSQL: ``IVY_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
Each test gets its own schema, named with a per-session prefix and dropped afterwards, so
other data in that database is never touched. Unreachable server: the tests skip with the
reason, except under ``CI=true`` where a skip would hide a broken pipeline, so they fail.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from ivy_gateway.adapters.storage import open_store
from ivy_gateway.adapters.storage.postgres import describe_location
from ivy_gateway.domain.store import ReadingStore

PG_URL = os.environ.get("IVY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

_counter = itertools.count()


@dataclass(frozen=True, slots=True)
class PgServer:
    url: str
    prefix: str  # every schema this session creates starts with it


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a skipped service test is a failure)")
    pytest.skip(reason)


async def _probe(url: str) -> str | None:
    try:
        conn = await asyncpg.connect(url, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL at {describe_location(url)} is unreachable: {type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def _drop_schemas(url: str, prefix: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        names = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", prefix
        )
        for (name,) in names:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | str]:
    """The server and this session's schema prefix, or why it cannot be used."""
    problem = asyncio.run(_probe(PG_URL))
    if problem is not None:
        yield problem
        return
    server = PgServer(PG_URL, f"ivy_test_{os.getpid()}_{secrets.token_hex(3)}")
    yield server
    # Safety net: schemas a crashed test left behind.
    asyncio.run(_drop_schemas(server.url, server.prefix))


def require_pg(pg_server: PgServer | str) -> PgServer:
    if isinstance(pg_server, str):
        skip_or_fail(pg_server)
        raise AssertionError("unreachable")
    return pg_server


@pytest.fixture
async def pg_schema_url(pg_server: PgServer | str) -> AsyncIterator[str]:
    """A URL whose ``search_path`` is a fresh schema of its own (dropped afterwards)."""
    server = require_pg(pg_server)
    schema = f"{server.prefix}_{next(_counter)}"
    conn = await asyncpg.connect(server.url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    yield f"{server.url}?search_path={schema}&application_name={schema}"
    conn = await asyncpg.connect(server.url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.service)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database: SQLite file or PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


StoreOpener = Callable[[], Awaitable[ReadingStore]]


@pytest.fixture
async def open_test_store(store_url: str) -> AsyncIterator[StoreOpener]:
    """Opens stores on ``store_url``; whatever is still open at the end gets closed."""
    opened: list[ReadingStore] = []

    async def opener() -> ReadingStore:
        store = await open_store(store_url)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_test_store: StoreOpener) -> ReadingStore:
    return await open_test_store()
