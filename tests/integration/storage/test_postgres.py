"""PostgreSQL-only behaviour: lost connections, unreachable servers, the COPY fast path."""

from __future__ import annotations

from decimal import Decimal

import asyncpg  # type: ignore[import-untyped]
import pytest

from ivy_gateway.adapters.storage import open_store
from ivy_gateway.domain.events import ReadingsBatch
from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.domain.quantities import Reading, ReadingSource
from ivy_gateway.domain.store import StoreError, StoreMode, StoreUnavailable

pytestmark = pytest.mark.service

METER = MeterId("000000001234")
T0 = 1_764_201_600_000


def one_batch(ts_ms: int, value: str = "230.5") -> ReadingsBatch:
    r = Reading(METER, "voltage_l1", Decimal(value), "V", ts_ms, ReadingSource.POLL, "02010100")
    return ReadingsBatch(METER, ProtocolKind.DLT645, ReadingSource.POLL, ts_ms, [r])


async def _terminate_own_backends(url: str) -> int:
    name = url.rsplit("application_name=", 1)[1]
    conn = await asyncpg.connect(url.split("?", 1)[0])
    try:
        killed = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = $1 AND pid <> pg_backend_pid()",
            name,
        )
    finally:
        await conn.close()
    return len(killed)


async def test_next_write_reconnects_after_the_pool_lost_its_connections(
    pg_schema_url: str,
) -> None:
    store = await open_store(pg_schema_url)
    try:
        await store.handle([one_batch(T0)])
        assert await _terminate_own_backends(pg_schema_url) >= 1

        await store.handle([one_batch(T0 + 1)])  # no error: a fresh connection was made

        points = await store.readings(METER, "voltage_l1", T0, T0 + 10)
        assert [p.ts_ms for p in points] == [T0, T0 + 1]
    finally:
        await store.close()


async def test_unreachable_server_is_store_unavailable_without_the_password() -> None:
    url = "postgresql://ivy:hunter2-secret@127.0.0.1:1/ivy"

    with pytest.raises(StoreUnavailable) as caught:
        await open_store(url)
    with pytest.raises(StoreUnavailable) as caught_with_file_password:
        await open_store("postgresql://ivy@127.0.0.1:1/ivy", password="s3cret-from-file")

    assert "127.0.0.1:1/ivy" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert "s3cret" not in str(caught_with_file_password.value)


async def test_sql_errors_become_store_errors(pg_schema_url: str) -> None:
    store = await open_store(pg_schema_url)
    try:
        conn = await asyncpg.connect(pg_schema_url)
        try:
            await conn.execute("DROP TABLE readings")
        finally:
            await conn.close()
        with pytest.raises(StoreError) as caught:
            await store.handle([one_batch(T0)])
        assert not isinstance(caught.value, StoreUnavailable)
    finally:
        await store.close()


async def test_plain_postgresql_mode_without_timescaledb(pg_schema_url: str) -> None:
    conn = await asyncpg.connect(pg_schema_url)
    try:
        available = await conn.fetchval(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        )
    finally:
        await conn.close()
    if available:
        pytest.skip("this server offers TimescaleDB")
    store = await open_store(pg_schema_url)
    try:
        assert store.mode is StoreMode.POSTGRESQL
    finally:
        await store.close()
