"""Shared pieces of the hardening tests: a gateway with one good meter, memory, polling.

Every case runs a real ``Gateway`` on loopback with one well-behaved DL/T 645 meter
(``GOOD``) connected from 127.0.0.1; attackers dial from other loopback addresses
(127.0.0.2 …) so the per-IP limits that protect the gateway do not also lock out the good
meter. ``assert_served`` is the responsiveness check: the good meter answers a
``read_register`` command through the gateway within ``RESPONSIVE_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivy_gateway.app import Gateway
from ivy_gateway.domain.commands import CommandMethod
from ivy_gateway.domain.events import EventKind, GatewayEvent, MeterEvent
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.settings import load_settings
from ivy_gateway.simulators.dlt645_meter import Dlt645Meter

GOOD = "000000000042"
ATTACKER_IP = "127.0.0.2"
RESPONSIVE_S = 5.0
#: Long variants for ``make soak`` (IVY_SOAK=1): longer attacks, more connections.
SOAK = os.environ.get("IVY_SOAK", "") not in ("", "0")


def rss_mib() -> float:
    """This process's resident memory now (not the peak): what the gateway holds."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class EventTap:
    """A telemetry sink that keeps MeterEvents for the assertions."""

    events: list[MeterEvent] = field(default_factory=list)

    async def handle(self, events: Sequence[GatewayEvent]) -> None:
        self.events.extend(e for e in events if isinstance(e, MeterEvent))

    def kinds(self, kind: EventKind) -> list[MeterEvent]:
        return [e for e in self.events if e.kind is kind]


@dataclass
class Served:
    gateway: Gateway
    tap: EventTap
    port: int


async def until(
    predicate: Callable[[], bool], timeout_s: float = 10.0, what: Callable[[], object] = str
) -> None:
    """Poll ``predicate``: the gateway exposes no event for every condition tested here.

    On timeout the assertion shows ``what()`` (e.g. the server's counters).
    """
    try:
        async with asyncio.timeout(timeout_s):
            while not predicate():  # noqa: ASYNC110 - polling observable state is the point
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not reached within {timeout_s} s: {what()}") from None


async def assert_served(gateway: Gateway) -> float:
    """The good meter answers a command through the gateway; returns the seconds it took."""
    started = time.monotonic()
    result = await asyncio.wait_for(
        gateway.commands.execute(
            GOOD,
            {
                "id": "check",
                "method": CommandMethod.READ_REGISTER,
                "params": {"register": "voltage_l1"},
            },
        ),
        RESPONSIVE_S,
    )
    assert result.success, result
    assert result.result is not None
    assert 150 < result.result["value"] < 300
    return time.monotonic() - started


def gateway_settings(tmp_path: Path, **meters: Any) -> Any:
    return load_settings(
        None,
        {
            "meters": {
                "host": "127.0.0.1",
                "port": 0,
                "identify_timeout_s": 0.5,
                **meters,
            },
            "mqtt": {"host": "127.0.0.1", "port": 0, "ws_port": 0},
            "http": {"host": "127.0.0.1", "port": 0},
            "storage": {"url": f"sqlite:///{tmp_path / 'gw.db'}", "batch_interval_s": 0.1},
            "polling": {"interval_scale": 0.02, "timeout_s": 1.0, "retries": 1},
        },
    )


@contextlib.asynccontextmanager
async def served_gateway(tmp_path: Path, **meters: Any) -> AsyncIterator[Served]:
    """A running gateway with the good meter connected and identified."""
    tap = EventTap()
    gateway = Gateway(gateway_settings(tmp_path, **meters))
    gateway.telemetry.add_sink("test-tap", tap)
    async with gateway:
        port = gateway.ports["meters"].port
        good = Dlt645Meter(GOOD, seed=1, announce=True)
        task = asyncio.create_task(good.connect("127.0.0.1", port))
        try:
            await until(lambda: gateway.context.registry.get(MeterId(GOOD)) is not None)
            await assert_served(gateway)
            yield Served(gateway, tap, port)
            await assert_served(gateway)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
