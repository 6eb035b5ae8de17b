"""The parent side of the load benchmark: plan, child processes, measurement, report.

See the package docstring for the set-up and docs/performance.md for the definitions.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .children import HOST

__all__ = ["LoadPlan", "LoadReport", "format_report", "run_bench", "run_load", "vm_rss_kb"]

#: Every swarm meter is a three-phase meter: 14 instantaneous quantities every 60 s and 7
#: energy registers every 900 s (profile ``dlt645-three-phase``), scaled by interval_scale.
READINGS_PER_METER_S = 14 / 60 + 7 / 900
_STOP_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class LoadPlan:
    meters: int = 1_000
    #: Seconds of the measured window (after all meters are held and ``warmup_s``).
    duration_s: float = 10.0
    #: Interval of the instantaneous poll group; None: no polling (an idle hold).
    poll_interval_s: float | None = 60.0
    dial_rate_per_s: float = 2_000.0
    swarm_processes: int = 1
    warmup_s: float = 3.0
    progress_s: float = 5.0
    poll_concurrency: int = 256

    def __post_init__(self) -> None:
        if not 1 <= self.meters <= 50_000:
            raise ValueError("meters must be 1..50,000")
        if self.duration_s < 0 or self.warmup_s < 0 or self.progress_s <= 0:
            raise ValueError("durations must not be negative")
        if self.poll_interval_s is not None and self.poll_interval_s <= 0:
            raise ValueError("poll_interval_s must be positive")
        if self.dial_rate_per_s <= 0 or self.swarm_processes < 1:
            raise ValueError("dial_rate_per_s and swarm_processes must be positive")

    @property
    def interval_scale(self) -> float:
        return (self.poll_interval_s or 60.0) / 60.0

    @property
    def expected_readings_per_s(self) -> float:
        if self.poll_interval_s is None:
            return 0.0
        return self.meters * READINGS_PER_METER_S / self.interval_scale


@dataclass(frozen=True, slots=True)
class LoadReport:
    plan: LoadPlan
    event_loop: str
    held: int
    connections: int
    rss_before_kb: int
    rss_held_kb: int
    rss_end_kb: int
    window_s: float
    readings: int
    polls: int
    poll_p50_ms: float
    poll_p99_ms: float
    poll_max_ms: float
    quantities_per_poll: float
    gc_full: int
    gc_max_ms: float
    store_queue: int
    dropped: int
    sink_errors: int
    rows_stored: int
    dial_s: float
    stop_s: float
    client_lost: int

    @property
    def rss_per_connection_kb(self) -> float:
        return (self.rss_held_kb - self.rss_before_kb) / max(self.held, 1)

    @property
    def rss_per_meter_end_kb(self) -> float:
        """Per meter at the end of the window: adds what polling keeps (last values etc.)."""
        return (self.rss_end_kb - self.rss_before_kb) / max(self.held, 1)

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.window_s if self.window_s > 0 else 0.0


def format_report(report: LoadReport) -> list[str]:
    """The results table: each figure next to the issue's target."""
    plan, r = report.plan, report
    rows = [
        ("meters held", f"{r.held:,} / {plan.meters:,}", "10,000"),
        ("gateway RSS per connection", f"{r.rss_per_connection_kb:.1f} KB", "< 20 KB"),
        ("gateway RSS before → held", f"{r.rss_before_kb >> 10} → {r.rss_held_kb >> 10} MB", ""),
        ("dial + identify all", f"{r.dial_s:.1f} s", ""),
    ]
    if plan.poll_interval_s is not None:
        latency = f"{r.poll_p50_ms:.0f} / {r.poll_p99_ms:.0f} / {r.poll_max_ms:.0f} ms"
        rows += [
            ("readings/s (end to end)", f"{r.readings_per_s:,.0f}", "≥ 5,000"),
            ("  expected from the schedule", f"{plan.expected_readings_per_s:,.0f}", ""),
            ("  rows stored in SQLite (whole run)", f"{r.rows_stored:,}", ""),
            ("poll latency p50 / p99 / max", latency, "p99 < 200 ms"),
            ("  polls (quantities each)", f"{r.polls:,} ({r.quantities_per_poll:.1f})", ""),
            ("  full GC pauses (longest)", f"{r.gc_full:,} ({r.gc_max_ms:.0f} ms)", ""),
            ("gateway RSS per meter at window end", f"{r.rss_per_meter_end_kb:.1f} KB", "< 20 KB"),
            ("store queue at end / dropped", f"{r.store_queue:,} / {r.dropped:,}", ""),
        ]
    rows.append(("gateway graceful stop", f"{r.stop_s:.1f} s", ""))
    polling = (
        f"instantaneous group every {plan.poll_interval_s:g} s"
        if plan.poll_interval_s is not None
        else "no polling (idle hold)"
    )
    width, value_width = (max(len(row[i]) for row in rows) for i in (0, 1))
    header = f"fleet load: {plan.meters:,} DL/T 645 meters, {polling}, window {r.window_s:.0f} s, "
    lines = [header + f"{r.event_loop} event loop, 127.0.0.1"]
    lines += [f"  {a:<{width}}  {b:>{value_width}}  {c}".rstrip() for a, b, c in rows]
    return lines


# -- child processes: a line protocol over stdin/stdout ------------------------------------


def vm_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


class _Child:
    """A ``python -m ivy_gateway.loadtest ROLE ARG`` child answering one JSON line per command."""

    def __init__(self, role: str, arg: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ivy_gateway.loadtest", role, json.dumps(arg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            self.hello = self._line()
        except BaseException:
            self.stop(0.0)
            raise

    def _line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"load-test child exited (code {self.proc.poll()})")
        data: dict[str, Any] = json.loads(line)
        return data

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._line()

    def stop(self, timeout_s: float) -> None:
        """Ask it to quit; kill it if it does not within ``timeout_s``. Safe to call twice."""
        proc = self.proc
        assert proc.stdin is not None
        assert proc.stdout is not None
        with contextlib.suppress(OSError, ValueError):  # gone already, or asked before
            if proc.poll() is None:
                proc.stdin.write("quit\n")
            proc.stdin.close()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        finally:
            proc.stdout.close()


# -- the parent: orchestration ---------------------------------------------------------------


def _gateway_settings(plan: LoadPlan, db_path: Path) -> dict[str, Any]:
    cap = plan.meters + 1_000
    return {
        "meters": {
            "host": HOST,
            "port": 0,
            "max_connections": cap,
            "max_connections_per_ip": cap,  # every swarm meter dials from 127.0.0.1
            "new_connections_per_ip": cap,
            "idle_timeout_s": 3_600.0,  # idle holds must not be closed as silent meters
        },
        "mqtt": {"host": HOST, "port": 0, "ws_port": 0, "stats_interval_s": 5.0},
        "storage": {"url": f"sqlite:///{db_path}"},
        "polling": {
            "enabled": plan.poll_interval_s is not None,
            "interval_scale": plan.interval_scale,
            "concurrency": plan.poll_concurrency,
        },
        "logging": {"level": "WARNING"},
    }


def _count_rows(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        row = db.execute("SELECT count(*) FROM readings").fetchone()
    return int(row[0])


Progress = Callable[[str], None]


def run_load(plan: LoadPlan, on_progress: Progress | None = None) -> LoadReport:
    """Run ``plan`` and return its figures; every child process is gone when it returns."""
    say = on_progress or (lambda line: None)
    with tempfile.TemporaryDirectory(prefix="ivy-load-") as tmp:
        db_path = Path(tmp) / "load.db"
        swarms: list[_Child] = []
        gateway = _Child("gateway", {"settings": _gateway_settings(plan, db_path)})
        try:
            return _measure(plan, gateway, swarms, db_path, say)
        finally:
            for swarm in swarms:
                swarm.stop(30.0)
            gateway.stop(_STOP_TIMEOUT_S)


def _measure(
    plan: LoadPlan, gateway: _Child, swarms: list[_Child], db_path: Path, say: Progress
) -> LoadReport:
    time.sleep(1.0)  # let start-up garbage settle before the baseline
    rss_before = vm_rss_kb(gateway.proc.pid)
    share = math.ceil(plan.meters / plan.swarm_processes)
    rate = plan.dial_rate_per_s / plan.swarm_processes
    for start in range(1, plan.meters + 1, share):
        count = min(share, plan.meters + 1 - start)
        arg = {"port": gateway.hello["port"], "first": start, "count": count}
        swarms.append(_Child("swarm", {**arg, "dial_rate_per_s": rate}))
    started = time.monotonic()
    deadline = started + plan.meters / plan.dial_rate_per_s + 60.0
    next_say = started + plan.progress_s
    while (stats := gateway.ask("stats"))["metersOnline"] < plan.meters:
        if time.monotonic() > deadline:
            break
        if time.monotonic() >= next_say:
            next_say += plan.progress_s
            say(f"dialling: {int(stats['metersOnline']):,}/{plan.meters:,} meters held")
        time.sleep(0.2)
    dial_s = time.monotonic() - started
    time.sleep(1.0)
    held = int(gateway.ask("stats")["metersOnline"])
    rss_held = vm_rss_kb(gateway.proc.pid)
    say(
        f"held {held:,}/{plan.meters:,} meters in {dial_s:.1f} s; "
        f"gateway RSS {rss_before / 1024:.0f} → {rss_held / 1024:.0f} MB"
    )
    time.sleep(plan.warmup_s if plan.poll_interval_s is not None else 0.0)
    first = gateway.ask("reset")
    window_start = time.monotonic()
    end = window_start + plan.duration_s
    last_total, last_at = first["readingsTotal"], window_start
    while (now := time.monotonic()) < end:
        time.sleep(min(plan.progress_s, end - now))
        stats = gateway.ask("stats")
        now = time.monotonic()
        recent = (stats["readingsTotal"] - last_total) / max(now - last_at, 1e-9)
        last_total, last_at = stats["readingsTotal"], now
        say(
            f"t={now - window_start:4.0f}s held {int(stats['metersOnline']):,} "
            f"readings/s {recent:,.0f} poll p99 {stats['p99_ms']:.0f} ms "
            f"RSS {vm_rss_kb(gateway.proc.pid) / 1024:.0f} MB store queue "
            f"{int(stats['storeQueue']):,}"
        )
    window_s = time.monotonic() - window_start
    last = gateway.ask("stats")
    rss_end = vm_rss_kb(gateway.proc.pid)
    lost = sum(swarm.ask("status")["lost"] for swarm in swarms)
    stop_started = time.monotonic()
    gateway.stop(_STOP_TIMEOUT_S)  # graceful: drains telemetry into SQLite
    stop_s = time.monotonic() - stop_started
    return LoadReport(
        plan=plan,
        event_loop=str(gateway.hello["loop"]),
        held=held,
        connections=int(last["connections"]),
        rss_before_kb=rss_before,
        rss_held_kb=rss_held,
        rss_end_kb=rss_end,
        window_s=window_s,
        readings=int(last["readingsTotal"] - first["readingsTotal"]),
        polls=int(last["polls"]),
        poll_p50_ms=float(last["p50_ms"]),
        poll_p99_ms=float(last["p99_ms"]),
        poll_max_ms=float(last["max_ms"]),
        quantities_per_poll=float(last["quantities_per_poll"]),
        gc_full=int(last["gc_full"]),
        gc_max_ms=float(last["gc_max_ms"]),
        store_queue=int(last["storeQueue"]),
        dropped=int(last["telemetryDropped"]),
        sink_errors=int(last["errors"]),
        rows_stored=_count_rows(db_path),
        dial_s=dial_s,
        stop_s=stop_s,
        client_lost=lost,
    )


def run_bench(
    *,
    meters: int,
    duration_s: float,
    poll_interval_s: float | None,
    swarm_processes: int = 1,
    dial_rate_per_s: float = 2_000.0,
    echo: Progress = print,
) -> LoadReport:
    """What ``ivy-gateway bench`` runs: progress lines while it goes, then the table."""
    plan = LoadPlan(
        meters=meters,
        duration_s=duration_s,
        poll_interval_s=poll_interval_s,
        swarm_processes=swarm_processes,
        dial_rate_per_s=dial_rate_per_s,
    )
    report = run_load(plan, on_progress=echo)
    for line in format_report(report):
        echo(line)
    return report
