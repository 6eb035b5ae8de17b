"""Fixtures for the HTTP adapter tests: the shipped in-memory fakes behind a real API.

The command path uses the real ``CommandService`` (parser, runner, audit into the fake
store), so the API is exercised against the service's own validation and error codes.
Every test module keeps its own constants: the clock below is fixed at ``NOW_MS``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI

from ivy_gateway.adapters.http import ApiDeps, GatewayInfo, LiveFeed, create_api
from ivy_gateway.adapters.http.fakes import InMemoryStore, StaticLiveState
from ivy_gateway.domain.events import GatewayEvent
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.ports import MeterLink
from ivy_gateway.services.commands import CommandService

NOW_MS = 1_764_201_600_000  # 2025-11-27T00:00:00Z
SCHEMAS = Path(__file__).resolve().parents[4] / "docs" / "schemas" / "v1"


class _Directory:
    def __init__(self, links: dict[MeterId, MeterLink]) -> None:
        self._links = links

    def get(self, meter: MeterId) -> MeterLink | None:
        return self._links.get(meter)

    def meters(self) -> Sequence[MeterId]:
        return list(self._links)


class _Clock:
    def now_ms(self) -> int:
        return NOW_MS

    def monotonic(self) -> float:
        return 0.0


class _Events:
    def emit(self, event: GatewayEvent) -> None:
        pass


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def live() -> StaticLiveState:
    return StaticLiveState()


@pytest.fixture
def feed() -> LiveFeed:
    return LiveFeed("gw-test", queue_size=50, max_subscribers=5)


@pytest.fixture
def links() -> dict[MeterId, MeterLink]:
    """Connected meters: put a link here to make its meter "online" for commands."""
    return {}


@pytest.fixture
async def make_client(
    store: InMemoryStore,
    live: StaticLiveState,
    feed: LiveFeed,
    links: dict[MeterId, MeterLink],
) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """``make_client(**ApiDeps fields)``: a client of a fresh API over the fixtures."""
    apps: list[FastAPI] = []
    clients: list[httpx.AsyncClient] = []

    def build(**overrides: Any) -> httpx.AsyncClient:
        service = CommandService(_Directory(links), _Events(), _Clock(), audit=store)
        deps = ApiDeps(
            store=store,
            parser=service,
            runner=service,
            live_state=live,
            gateway_info=lambda: GatewayInfo(
                "9.9.9", "gw-test", 12.3456, {"metersOnline": 1, "readingsPerS": 2.5}, ("gw-a",)
            ),
            feed=feed,
            now_ms=lambda: NOW_MS,
        )
        app = create_api(dataclasses.replace(deps, **overrides))
        apps.append(app)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()
    for app in apps:
        await app.state.ivy_runtime.close(1.0)


@pytest.fixture(scope="session")
def validate() -> Callable[[str, bytes | str | dict[str, Any]], dict[str, Any]]:
    """``validate("command-response", payload)`` against docs/schemas/v1."""
    cache: dict[str, jsonschema.Draft202012Validator] = {}

    def check(name: str, payload: bytes | str | dict[str, Any]) -> dict[str, Any]:
        if name not in cache:
            schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
            cache[name] = jsonschema.Draft202012Validator(schema)
        data: dict[str, Any] = payload if isinstance(payload, dict) else json.loads(payload)
        cache[name].validate(data)
        return data

    return check
