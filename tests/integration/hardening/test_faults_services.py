"""The MQTT broker and Redis each stopped and started again under load, whole gateway.

- Mosquitto (external broker) stopped for ``OUTAGE_S`` while a DL/T 645 fleet is polled:
  every reading telemetry took from a meter is published once the broker is back (counted
  by a persistent-session QoS 1 subscriber) — zero loss, as the outbox design says. The
  publisher-level outage test (order per meter) is tests/integration/mqtt/test_external.py.
- Redis stopped and started (it keeps nothing: ``--save ""``) under a one-instance cluster
  with commands flowing: every command asked is answered (success or an error code, none
  hangs), and afterwards every connected meter's lease is back in Redis, owned by us.
- PostgreSQL restarted under load: tests/integration/test_store_faults.py (not repeated).

Services are restarted in ``finally`` whatever happens. Run length: ``IVY_FAULT_RUN_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from redis.asyncio import Redis

from ivy_gateway.app import Gateway
from ivy_gateway.domain.commands import CommandResult
from ivy_gateway.domain.events import GatewayEvent, ReadingsBatch
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.settings import load_settings
from ivy_gateway.simulators.fleet import Fleet, FleetPlan

pytestmark = [pytest.mark.service, pytest.mark.slow]

RUN_S = float(os.environ.get("IVY_FAULT_RUN_S", "4"))
OUTAGE_S = 3.0
MQTT_PORT = 1883
REDIS_URL = os.environ.get("IVY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MOSQUITTO_START = ["mosquitto", "-d", "-c", "/etc/mosquitto/mosquitto.conf"]
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
    "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
    "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip
Key = tuple[str, int, str]  # meter, batch ts, quantity


def _settings(tmp_path: Path, prefix: str, **extra: Any) -> Any:
    return load_settings(
        None,
        {
            "meters": {"host": "127.0.0.1", "port": 0, "identify_timeout_s": 1.0},
            "http": {"host": "127.0.0.1", "port": 0},
            "mqtt": {
                "mode": "external",
                "url": f"mqtt://127.0.0.1:{MQTT_PORT}",
                "topic_prefix": prefix,
                "client_id": f"hardening-{uuid.uuid4().hex[:8]}",
            },
            "storage": {"url": f"sqlite:///{tmp_path / 'gw.db'}", "batch_interval_s": 0.2},
            "polling": {"interval_scale": 0.01, "timeout_s": 2.0, "retries": 1},
            **extra,
        },
    )


def _taken(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> list[ReadingsBatch]:
    """Every reading batch the sessions hand to telemetry."""
    batches: list[ReadingsBatch] = []
    emit = gateway.telemetry.emit

    def recording(event: GatewayEvent) -> None:
        if isinstance(event, ReadingsBatch):
            batches.append(event)
        emit(event)

    monkeypatch.setattr(gateway.telemetry, "emit", recording)
    return batches


# -- Mosquitto ---------------------------------------------------------------------------


def _mosquitto_pid() -> int | None:
    out = subprocess.run(["pgrep", "-x", "mosquitto"], capture_output=True, text=True)
    pids = out.stdout.split()
    return int(pids[0]) if pids else None


@contextlib.contextmanager
def _mosquitto_stopped() -> Iterator[None]:
    pid = _mosquitto_pid()
    if pid is None:
        pytest.fail("Mosquitto is not running on 127.0.0.1:1883")
    try:
        os.kill(pid, signal.SIGTERM)  # the broker saves its persistent sessions
        deadline = time.monotonic() + 10
        while _mosquitto_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        yield
    finally:
        if _mosquitto_pid() is None:
            subprocess.run(MOSQUITTO_START, check=True)


class Subscriber:
    """A paho client with a persistent session (QoS 1) that reconnects by itself."""

    def __init__(self, prefix: str) -> None:
        self.client_id = f"hardening-sub-{uuid.uuid4().hex[:8]}"
        self.keys: Counter[Key] = Counter()
        self._lock = threading.Lock()
        self._topic = f"{prefix}/meters/+/telemetry"
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            protocol=paho.MQTTv311,
        )
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()

    def _on_connect(self, client: paho.Client, *args: Any) -> None:
        client.subscribe(self._topic, qos=1)
        self.subscribed.set()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        data = json.loads(msg.payload)
        with self._lock:
            for quantity in data["values"]:
                self.keys[(data["meterId"], int(data["ts"]), quantity)] += 1

    def start(self) -> None:
        self.client.connect("127.0.0.1", MQTT_PORT)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def seen(self) -> set[Key]:
        with self._lock:
            return set(self.keys)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        # Drop the persistent session from the broker.
        cleaner = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True
        )
        with contextlib.suppress(OSError):
            cleaner.connect("127.0.0.1", MQTT_PORT)
            cleaner.disconnect()


async def test_broker_stopped_under_load_loses_no_published_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"hardening-{secrets.token_hex(3)}/v1"
    subscriber = Subscriber(prefix)
    await asyncio.to_thread(subscriber.start)
    gateway = Gateway(_settings(tmp_path, prefix))
    taken = _taken(gateway, monkeypatch)
    fleet = Fleet(FleetPlan(dlt645=20, seed=31, dial_rate_per_s=200, reconnect_min_s=0.2))
    try:
        async with gateway:
            fleet_task = asyncio.create_task(fleet.run("127.0.0.1", gateway.ports["meters"].port))
            try:
                await asyncio.sleep(RUN_S)
                before = len(taken)
                with _mosquitto_stopped():
                    await asyncio.sleep(OUTAGE_S)
                    during = len(taken) - before
                await asyncio.sleep(RUN_S)
            finally:
                fleet_task.cancel()
                await asyncio.gather(fleet_task, return_exceptions=True)
            wanted = {(b.meter.value, b.ts_ms, r.quantity) for b in taken for r in b.readings}
            deadline = time.monotonic() + 60
            while not wanted <= subscriber.seen() and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.2)  # the subscriber is a paho thread: poll it
            stats = gateway.publisher.transport.stats if gateway.publisher else None
    finally:
        await asyncio.to_thread(subscriber.close)
    seen = subscriber.seen()
    missing = wanted - seen
    repeats = sum(n - 1 for n in subscriber.keys.values())
    print(
        f"\nbroker outage {OUTAGE_S:.0f} s under load: readings taken {len(wanted)} "
        f"({during} batches during the outage), published and received {len(wanted & seen)}, "
        f"missing {len(missing)}, repeated (at least once) {repeats}; transport {stats}"
    )
    assert during > 0, "no reading was taken while the broker was down"
    assert missing == set()


# -- Redis -------------------------------------------------------------------------------


def _redis_up() -> bool:
    out = subprocess.run(["redis-cli", "-p", "6379", "ping"], capture_output=True, text=True)
    return out.stdout.strip() == "PONG"


@contextlib.contextmanager
def _redis_stopped() -> Iterator[None]:
    if not _redis_up():
        pytest.fail("Redis is not running on 127.0.0.1:6379")
    try:
        subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False)
        deadline = time.monotonic() + 10
        while _redis_up() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield
    finally:
        if not _redis_up():
            subprocess.run(REDIS_START, check=True)
        deadline = time.monotonic() + 10
        while not _redis_up() and time.monotonic() < deadline:
            time.sleep(0.05)


async def test_redis_restarted_under_cluster_load_answers_every_command_and_reconciles_leases(
    tmp_path: Path,
) -> None:
    namespace = f"hardening-{secrets.token_hex(3)}"
    prefix = f"{namespace}/v1"
    gateway = Gateway(
        _settings(
            tmp_path,
            prefix,
            cluster={
                "redis_url": REDIS_URL,
                "namespace": namespace,
                "gateway_id": f"{namespace}-gw",
                "lease_ttl_s": 6.0,
                "heartbeat_s": 1.0,
            },
        )
    )
    fleet = Fleet(FleetPlan(dlt645=20, seed=41, dial_rate_per_s=200, reconnect_min_s=0.2))
    meters = [MeterId(str(m.address)) for m in fleet.meters]
    results: list[CommandResult] = []
    asked = 0

    async def commands(stop: asyncio.Event) -> None:
        nonlocal asked
        n = 0
        while not stop.is_set():
            meter = meters[n % len(meters)]
            n += 1
            command = gateway.commands.parse_command(
                meter.value,
                {"id": f"r{n}", "method": "read_register", "timeoutMs": 5000,
                 "params": {"register": "voltage_l1"}},
            )  # fmt: skip
            asked += 1
            results.append(await asyncio.wait_for(gateway.runner.run(command), 15))
            await asyncio.sleep(0.05)

    redis = Redis.from_url(REDIS_URL)
    try:
        async with gateway:
            fleet_task = asyncio.create_task(fleet.run("127.0.0.1", gateway.ports["meters"].port))
            stop = asyncio.Event()
            load = asyncio.create_task(commands(stop))
            try:
                await asyncio.sleep(RUN_S)
                before = len(results)
                with _redis_stopped():
                    await asyncio.sleep(OUTAGE_S)
                    during = len(results) - before
                await asyncio.sleep(RUN_S)
                stop.set()
                await asyncio.wait_for(load, 30)

                async def owned() -> set[str]:
                    online = {m.value for m in meters if gateway.context.registry.get(m)}
                    held = set()
                    for meter in online:
                        value = await redis.get(f"{namespace}:lease:{meter}")
                        owner = value.decode() if isinstance(value, bytes) else str(value)
                        if value is not None and owner.startswith(f"{namespace}-gw|"):
                            held.add(meter)
                    return online - held

                deadline = time.monotonic() + 30
                while (unleased := await owned()) and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.5)  # polling Redis is the point
                counters = gateway.counters()
            finally:
                stop.set()
                load.cancel()
                fleet_task.cancel()
                await asyncio.gather(load, fleet_task, return_exceptions=True)
    finally:
        with contextlib.suppress(Exception):
            keys = [k async for k in redis.scan_iter(f"{namespace}:*")]
            if keys:
                await redis.delete(*keys)
        await redis.aclose()
    codes = Counter(r.error_code.value if r.error_code else "ok" for r in results)
    print(
        f"\nRedis restart under cluster load: commands asked {asked}, answered {len(results)} "
        f"({during} during the {OUTAGE_S:.0f} s outage), outcomes {dict(codes)}; meters "
        f"without their lease afterwards {sorted(unleased)}; cluster counters "
        f"{ {k: v for k, v in counters.items() if 'lease' in k.lower() or 'redis' in k.lower()} }"
    )
    assert asked == len(results)
    assert during > 0
    assert codes["ok"] > 0
    assert unleased == set()
