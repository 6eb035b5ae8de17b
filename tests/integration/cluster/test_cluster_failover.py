"""Three gateway processes behind HAProxy, 1,000 meters, kill -9 one instance.

Real services: Redis, Mosquitto (external broker, shared subscription for commands),
PostgreSQL (one fresh database), HAProxy (our own process on loopback, never the system
service). The meters dial the balancer; the test watches MQTT like a user, sends commands
before, during and after the kill, and checks: the dead instance's meters are back on the
others within 30 s, every command is answered exactly once, no meter has two owners or
shows offline, and every reading sent after the reconnect is in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiomqtt
import asyncpg  # type: ignore[import-untyped]
import pytest
from redis.asyncio import Redis

from ivy_gateway.simulators.dlt645_meter import Dlt645Meter
from ivy_gateway.simulators.fleet import Fleet, FleetPlan

from .conftest import REDIS_URL, skip_or_fail

pytestmark = [pytest.mark.service, pytest.mark.slow]

PG_URL = os.environ.get("IVY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883
METERS = int(os.environ.get("IVY_TEST_CLUSTER_METERS", "1000"))
NODE = Path(__file__).with_name("node.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    try:
        admin = await asyncpg.connect(PG_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        skip_or_fail(f"PostgreSQL unreachable: {exc}")
    name = f"ivy_cluster_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _config(tmp: Path, name: str, port: int, db: str, prefix: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(
        f"""
[meters]
host = "127.0.0.1"
port = {port}
max_connections_per_ip = 20000
new_connections_per_ip = 100000
identify_timeout_s = 2.0
[mqtt]
mode = "external"
url = "mqtt://{MQTT_HOST}:{MQTT_PORT}"
topic_prefix = "{prefix}"
client_id = "ivy-{prefix.replace("/", "-")}-{name}"
[storage]
url = "{db}"
batch_interval_s = 0.2
[cluster]
gateway_id = "{name}"
[polling]
interval_scale = 0.05
timeout_s = 3.0
concurrency = 200
""",
        encoding="utf-8",
    )
    return path


def _haproxy_config(tmp: Path, front: int, backends: dict[str, int]) -> Path:
    servers = "\n".join(
        f"    server {name} 127.0.0.1:{port} check inter 500 fall 2 rise 2"
        for name, port in backends.items()
    )
    path = tmp / "haproxy.cfg"
    path.write_text(
        f"""
global
    maxconn 8000
defaults
    mode tcp
    timeout connect 2s
    timeout client 10m
    timeout server 10m
frontend meters
    bind 127.0.0.1:{front}
    default_backend gateways
backend gateways
    balance roundrobin
    option redispatch
    retries 3
{servers}
""",
        encoding="utf-8",
    )
    return path


@contextlib.contextmanager
def processes() -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    running: dict[str, subprocess.Popen[bytes]] = {}
    try:
        yield running
    finally:
        for proc in running.values():
            if proc.poll() is None:
                proc.kill()
        for proc in running.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


def _start(argv: list[str], log: Path, **options: Any) -> subprocess.Popen[bytes]:
    """Start a process with its output in ``log`` (the child keeps its own descriptor)."""
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **options)


class Watch:
    """Statuses and command responses as MQTT delivers them."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.status: dict[str, list[tuple[float, bool, str]]] = defaultdict(list)
        self.responses: Counter[str] = Counter()
        self.results: dict[str, dict[str, Any]] = {}

    def take(self, topic: str, payload: bytes) -> None:
        parts = topic.removeprefix(self.prefix + "/").split("/")
        if parts[0] != "meters" or not payload:
            return
        data = json.loads(payload)
        if parts[2] == "status":
            self.status[parts[1]].append((time.monotonic(), data["online"], data["gatewayId"]))
        elif parts[2:] == ["command", "response"]:
            self.responses[data["id"]] += 1
            self.results[data["id"]] = data

    def owner(self, meter: str) -> str | None:
        history = self.status.get(meter)
        return history[-1][2] if history and history[-1][1] else None


async def _until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.2)


async def test_three_instances_survive_kill_9_of_one(tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        skip_or_fail("haproxy is not installed (apt-get install -y haproxy)")
        return
    if not _port_open(MQTT_HOST, MQTT_PORT):
        skip_or_fail(f"Mosquitto at {MQTT_HOST}:{MQTT_PORT} is unreachable")
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.ping()
    except OSError as exc:
        await redis.aclose()
        skip_or_fail(f"Redis unreachable: {exc}")
    ns = f"ivytest-{secrets.token_hex(4)}"
    prefix = f"ivytest/{ns}"
    try:
        async with fresh_database() as db:
            await _run_cluster(tmp_path, haproxy, db, ns, prefix, redis)
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{ns}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def _run_cluster(
    tmp: Path, haproxy: str, db: str, ns: str, prefix: str, redis: Redis
) -> None:
    ports = {f"gw{i}": _free_port() for i in (1, 2, 3)}
    front = _free_port()
    env = {
        **os.environ,
        "IVY_TEST_REDIS_URL": REDIS_URL,
        "IVY_TEST_CLUSTER_NS": ns,
        "PYTHONPATH": str(NODE.parent),
    }
    watch = Watch(prefix)
    plan = FleetPlan(
        dlt645=METERS, seed=11, dial_rate_per_s=250, reconnect_min_s=0.5, reconnect_max_s=2.0
    )
    fleet = Fleet(plan)
    with processes() as procs:
        for name, port in ports.items():
            config = _config(tmp, name, port, db, prefix)
            procs[name] = _start(
                [sys.executable, str(NODE), str(config)], tmp / f"{name}.log", env=env, cwd=tmp
            )
        await _until(
            lambda: all(_port_open("127.0.0.1", p) for p in ports.values()),
            60,
            "gateways listening",
        )
        procs["haproxy"] = _start(
            [haproxy, "-db", "-f", str(_haproxy_config(tmp, front, ports))], tmp / "haproxy.log"
        )
        await _until(lambda: _port_open("127.0.0.1", front), 10, "haproxy listening")
        async with aiomqtt.Client(MQTT_HOST, MQTT_PORT, identifier=f"watch-{ns}") as client:
            await client.subscribe(f"{prefix}/meters/+/status", qos=1)
            await client.subscribe(f"{prefix}/meters/+/command/response", qos=1)

            async def listen() -> None:
                async for message in client.messages:
                    watch.take(str(message.topic), bytes(message.payload))

            async with asyncio.TaskGroup() as tasks:
                listener = tasks.create_task(listen())
                meters = tasks.create_task(fleet.run("127.0.0.1", front))
                try:
                    await _exercise(procs, client, watch, fleet, meters, redis, ns, prefix, db)
                finally:
                    meters.cancel()
                    listener.cancel()


async def _exercise(
    procs: dict[str, subprocess.Popen[bytes]],
    client: aiomqtt.Client,
    watch: Watch,
    fleet: Fleet,
    meters: asyncio.Task[None],
    redis: Redis,
    ns: str,
    prefix: str,
    db: str,
) -> None:
    everyone = [str(m.address) for m in fleet.meters]
    started = time.monotonic()
    await _until(lambda: all(watch.owner(m) for m in everyone), 120, "all meters online")
    print(
        f"\n{len(everyone)} meters online in {time.monotonic() - started:.1f} s; per owner:",
        Counter(watch.owner(m) for m in everyone),
    )

    sent: list[str] = []
    targets: dict[str, str] = {}
    rng = random.Random(5)

    async def command_stream(stop: asyncio.Event) -> None:
        while not stop.is_set():
            cid = f"c{len(sent)}"
            meter = rng.choice(everyone)
            body = {"id": cid, "method": "read_address", "timeoutMs": 5000}
            targets[cid] = meter
            await client.publish(
                f"{prefix}/meters/{meter}/command/request", json.dumps(body), qos=1
            )
            sent.append(cid)
            await asyncio.sleep(0.05)

    stop = asyncio.Event()
    commands = asyncio.create_task(command_stream(stop))
    await asyncio.sleep(5)
    victim = "gw2"
    moved = [m for m in everyone if watch.owner(m) == victim]
    killed_at = time.monotonic()
    procs[victim].send_signal(signal.SIGKILL)
    await _until(
        lambda: all(watch.owner(m) not in (None, victim) for m in moved),
        30,
        "the dead instance's meters back on the others within 30 s",
    )
    back_at = {
        m: next(t for t, on, gw in watch.status[m] if on and gw != victim and t > killed_at)
        for m in moved
    }
    reconnect_s = max(back_at.values()) - killed_at
    await asyncio.sleep(15)  # commands and polls keep flowing on the survivors
    stop.set()
    await commands
    # A request in flight to the killed instance dies with it (MQTT QoS 1 to a clean-session
    # subscriber): like any MQTT client, the requester re-sends what got no answer, with the
    # same id — the cluster's command journal makes sure it is not run twice.
    with contextlib.suppress(AssertionError):
        await _until(lambda: all(watch.responses[c] for c in sent), 15, "answers")
    resent = [c for c in sent if not watch.responses[c]]
    for cid in resent:
        body = {"id": cid, "method": "read_address", "timeoutMs": 5000}
        await client.publish(
            f"{prefix}/meters/{targets[cid]}/command/request", json.dumps(body), qos=1
        )
    with contextlib.suppress(AssertionError):
        await _until(lambda: all(watch.responses[c] for c in sent), 30, "answers")
    unanswered = [c for c in sent if not watch.responses[c]]
    await asyncio.sleep(2)  # a duplicate would arrive now

    twice = [c for c in sent if watch.responses[c] > 1]
    codes = Counter(watch.results[c].get("errorCode") or "ok" for c in sent if c in watch.results)
    offline_seen = [m for m in everyone if any(not on for _, on, _ in watch.status[m])]
    leases = {}
    for m in everyone:
        raw = await redis.get(f"{ns}:lease:{m}")
        leases[m] = (
            (raw.decode() if isinstance(raw, bytes) else raw).rpartition("|")[0] if raw else None
        )
    wrong_owner = [m for m in everyone if leases[m] != watch.owner(m)]
    print(f"killed {victim} holding {len(moved)} meters; all back in {reconnect_s:.1f} s")
    print(
        f"commands sent {len(sent)}, answered {sum(1 for c in sent if watch.responses[c])}, "
        f"answered twice {len(twice)}, re-sent {len(resent)}, unanswered {len(unanswered)}, "
        f"results {dict(codes)}"
    )
    print(
        f"meters ever shown offline: {len(offline_seen)}; lease ≠ status owner: {len(wrong_owner)}"
    )

    # The meters hang up first (what they wrote is delivered), then the survivors stop
    # gracefully so their stores flush; then the store is compared with the wire.
    hang_up_ms = time.time() * 1000
    meters.cancel()
    await asyncio.gather(meters, return_exceptions=True)
    await asyncio.sleep(3)
    for name in ("gw1", "gw3"):
        procs[name].send_signal(signal.SIGTERM)
    for name in ("gw1", "gw3"):
        await asyncio.to_thread(procs[name].wait, 60)
    missing = await _missing_readings(db, fleet, back_at)
    # A reply the simulator built while being cancelled is in ``sent`` but never left it.
    late = [ts for ts in missing if ts > hang_up_ms - 1000]
    print(
        f"voltage readings sent after reconnect missing in PostgreSQL: {len(missing) - len(late)}"
        f" (+{len(late)} built in the last second before the meters hung up)"
    )

    assert reconnect_s < 30
    assert not unanswered, unanswered[:10]
    assert not twice, twice[:10]
    assert not offline_seen, offline_seen[:10]
    assert not wrong_owner, wrong_owner[:10]
    assert len(missing) == len(late), [ts - hang_up_ms for ts in missing]


async def _missing_readings(db: str, fleet: Fleet, back_at: dict[str, float]) -> list[int]:
    """Wall-clock ms of each voltage value sent after the reconnect but not stored."""
    conn = await asyncpg.connect(db)
    try:
        missing: list[int] = []
        wall_offset = time.time() - time.monotonic()
        for meter in fleet.meters:
            address = str(meter.address)
            if address not in back_at or not isinstance(meter, Dlt645Meter):
                continue
            since_ms = (back_at[address] + wall_offset) * 1000
            sent = {
                Decimal(str(v.value)): v.ts_ms
                for v in meter.sent
                if v.di == "02010100" and v.ts_ms > since_ms
            }
            rows = await conn.fetch(
                "SELECT value FROM readings WHERE meter_id = $1 AND quantity = 'voltage_l1'",
                address,
            )
            stored = {Decimal(str(r["value"])) for r in rows}
            missing += [ts for value, ts in sent.items() if value not in stored]
        return missing
    finally:
        await conn.close()
