"""Readings/s and meters held by 1, 2 and 3 clustered gateway processes behind HAProxy.

    .venv/bin/python benchmarks/cluster_scaling.py [--meters 2000] [--seconds 20]

Needs Redis, Mosquitto and PostgreSQL on loopback and ``haproxy`` installed. Every gateway,
HAProxy and the simulated fleet (in this process) share the machine's cores, so the table
says what this machine does, not what N machines would. Readings/s is counted in
PostgreSQL (rows written during the window), meters held from the Redis leases.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from tempfile import TemporaryDirectory

import asyncpg  # type: ignore[import-untyped]
from redis.asyncio import Redis

from ivy_gateway.simulators.fleet import Fleet, FleetPlan

REDIS_URL = "redis://127.0.0.1:6379/0"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
NODE = Path(__file__).resolve().parents[1] / "tests" / "integration" / "cluster" / "node.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


async def _wait_open(*ports: int) -> None:
    for _ in range(300):
        if all(_open(p) for p in ports):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"ports {ports} did not open within 60 s")


def _config(tmp: Path, name: str, port: int, db: str, prefix: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(
        f"""
[meters]
host = "127.0.0.1"
port = {port}
max_connections_per_ip = 50000
new_connections_per_ip = 1000000
[mqtt]
mode = "external"
url = "mqtt://127.0.0.1:1883"
topic_prefix = "{prefix}"
client_id = "bench-{name}-{prefix.replace("/", "-")}"
[storage]
url = "{db}"
[cluster]
gateway_id = "{name}"
[polling]
interval_scale = 0.02
timeout_s = 5.0
concurrency = 500
""",
        encoding="utf-8",
    )
    return path


def _start(argv: list[str], log: Path, **options: object) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **options)  # type: ignore[call-overload,no-any-return]


async def _measure(instances: int, meters: int, seconds: float, haproxy: str) -> tuple[int, float]:
    ns = f"bench-{secrets.token_hex(4)}"
    admin = await asyncpg.connect(PG_URL)
    name = f"ivy_bench_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    db = f"{PG_URL.rsplit('/', 1)[0]}/{name}"
    redis = Redis.from_url(REDIS_URL)
    procs: list[subprocess.Popen[bytes]] = []
    fleet_task: asyncio.Task[None] | None = None
    try:
        with TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            ports = {f"gw{i}": _free_port() for i in range(1, instances + 1)}
            env = {**os.environ, "IVY_TEST_REDIS_URL": REDIS_URL, "IVY_TEST_CLUSTER_NS": ns}
            for gw, port in ports.items():
                config = _config(tmp, gw, port, db, f"bench/{ns}")
                procs.append(
                    _start(
                        [sys.executable, str(NODE), str(config)],
                        tmp / f"{gw}.log",
                        env=env,
                        cwd=tmp,
                    )
                )
            await _wait_open(*ports.values())
            front = _free_port()
            servers = "\n".join(
                f"    server {gw} 127.0.0.1:{p} check inter 1s" for gw, p in ports.items()
            )
            cfg = tmp / "haproxy.cfg"
            cfg.write_text(
                "global\n    maxconn 8000\ndefaults\n    mode tcp\n    timeout connect 2s\n"
                "    timeout client 10m\n    timeout server 10m\n"
                f"frontend m\n    bind 127.0.0.1:{front}\n    default_backend g\n"
                f"backend g\n    balance roundrobin\n{servers}\n"
            )
            procs.append(_start([haproxy, "-db", "-f", str(cfg)], tmp / "haproxy.log"))
            await _wait_open(front)
            fleet = Fleet(FleetPlan(dlt645=meters, seed=3, dial_rate_per_s=400))
            fleet_task = asyncio.create_task(fleet.run("127.0.0.1", front))
            deadline = time.monotonic() + 60
            held = 0
            while time.monotonic() < deadline:
                held = len([k async for k in redis.scan_iter(match=f"{ns}:lease:*", count=1000)])
                if held >= meters:
                    break
                await asyncio.sleep(1)
            await asyncio.sleep(5)  # polls settle into their schedule
            conn = await asyncpg.connect(db)
            try:
                before = await conn.fetchval("SELECT count(*) FROM readings")
                t0 = time.monotonic()
                await asyncio.sleep(seconds)
                after = await conn.fetchval("SELECT count(*) FROM readings")
                rate = (after - before) / (time.monotonic() - t0)
            finally:
                await conn.close()
            owners: Counter[str] = Counter()
            async for key in redis.scan_iter(match=f"{ns}:lease:*", count=1000):
                raw = await redis.get(key)
                if raw:
                    owners[
                        (raw.decode() if isinstance(raw, bytes) else raw).rpartition("|")[0]
                    ] += 1
            return sum(owners.values()), rate
    finally:
        if fleet_task is not None:
            fleet_task.cancel()
            await asyncio.gather(fleet_task, return_exceptions=True)
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        keys = [k async for k in redis.scan_iter(match=f"{ns}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--meters", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--instances", type=int, nargs="*", default=[1, 2, 3])
    args = parser.parse_args()
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        raise SystemExit("haproxy is not installed")
    print(f"{os.cpu_count()} cores shared by every gateway, HAProxy and the fleet")
    print(f"{'instances':>9} | {'meters held':>11} | {'readings/s':>10}")
    for n in args.instances:
        held, rate = await _measure(n, args.meters, args.seconds, haproxy)
        print(f"{n:>9} | {held:>11} | {rate:>10.0f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
