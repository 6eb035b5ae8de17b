"""Cluster tests need the machine's Redis (``IVY_TEST_REDIS_URL``, default 127.0.0.1:6379).

Unreachable: skip with the reason, except under ``CI=true`` where a skip fails. Each test
uses its own key namespace, deleted afterwards, so other data in that Redis is untouched.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.exceptions import RedisError

REDIS_URL = os.environ.get("IVY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a skipped service test is a failure)")
    pytest.skip(reason)


@pytest_asyncio.fixture
async def namespace() -> AsyncIterator[str]:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        skip_or_fail(f"Redis at {REDIS_URL} is unreachable: {exc}")
    ns = f"ivytest-{secrets.token_hex(4)}"
    try:
        yield ns
    finally:
        keys = [k async for k in client.scan_iter(match=f"{ns}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
