"""Fixtures for MQTT integration tests: embedded broker on free ports, the local Mosquitto.

Tests marked ``service`` need Mosquitto on 127.0.0.1:1883. Without it they are skipped
with a loud reason, except under ``CI=true``, where a skip would hide a broken pipeline:
there they fail.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import paho.mqtt.client as paho
import pytest
import pytest_asyncio
from paho.mqtt.enums import CallbackAPIVersion

from ivy_gateway.adapters.mqtt.broker import BrokerConfig, EmbeddedBroker

SCHEMAS = Path(__file__).resolve().parents[3] / "docs" / "schemas" / "v1"
MOSQUITTO = ("127.0.0.1", 1883)


@pytest.fixture(scope="session")
def validate() -> Callable[[str, bytes | dict[str, Any]], dict[str, Any]]:
    cache: dict[str, jsonschema.Draft202012Validator] = {}

    def check(name: str, payload: bytes | dict[str, Any]) -> dict[str, Any]:
        if name not in cache:
            schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
            cache[name] = jsonschema.Draft202012Validator(schema)
        data: dict[str, Any] = json.loads(payload) if isinstance(payload, bytes) else payload
        cache[name].validate(data)
        return data

    return check


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def mosquitto() -> tuple[str, int]:
    if not port_open(*MOSQUITTO):
        reason = (
            "!!! Mosquitto is not reachable on 127.0.0.1:1883 — MQTT external-broker tests "
            "NOT RUN (start it: mosquitto -d -c /etc/mosquitto/mosquitto.conf) !!!"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: a skipped service test is a failure)")
        pytest.skip(reason)
    return MOSQUITTO


@pytest_asyncio.fixture
async def embedded() -> AsyncIterator[Callable[..., Any]]:
    """``broker = await embedded(users=..., ...)``: started on free loopback ports."""
    started: list[EmbeddedBroker] = []

    async def start(**options: Any) -> EmbeddedBroker:
        options.setdefault("host", "127.0.0.1")
        options.setdefault("port", 0)
        options.setdefault("ws_port", 0)
        broker = EmbeddedBroker(BrokerConfig(**options))
        await broker.start()
        started.append(broker)
        return broker

    yield start
    for broker in started:
        await broker.stop()


class PahoSubscriber:
    """A paho-mqtt (thread-based, MQTT 3.1.1) client collecting what it receives."""

    def __init__(
        self,
        port: int,
        topics: list[str],
        *,
        client_id: str = "",
        clean_session: bool = True,
        username: str | None = None,
        password: str | None = None,
        transport: str = "tcp",
    ) -> None:
        self.messages: list[paho.MQTTMessage] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=paho.MQTTv311,
            transport="websockets" if transport == "ws" else "tcp",
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(1, 2)
        self._topics = topics
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client: paho.Client, *args: Any) -> None:
        client.subscribe([(t, 1) for t in self._topics])

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(msg)

    def received(self, topic_part: str = "") -> list[paho.MQTTMessage]:
        with self._lock:
            return [m for m in self.messages if topic_part in m.topic]

    async def wait_for(self, count: int, topic_part: str = "", timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.received(topic_part)) < count:
            if time.monotonic() > deadline:
                got = len(self.received(topic_part))
                raise AssertionError(f"paho got {got} of {count} messages on {topic_part!r}")
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def paho_subscriber() -> Iterator[Callable[..., PahoSubscriber]]:
    clients: list[PahoSubscriber] = []

    def make(port: int, topics: list[str], **kw: Any) -> PahoSubscriber:
        sub = PahoSubscriber(port, topics, **kw)
        clients.append(sub)
        if not sub.subscribed.wait(5):
            raise AssertionError("paho subscriber did not get a SUBACK")
        return sub

    yield make
    for sub in clients:
        sub.close()


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect after each test, so an unclosed socket is blamed on the test that leaked it."""
    yield
    gc.collect()
