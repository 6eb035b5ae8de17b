"""The child processes of the load benchmark: the gateway under test and the meter swarm.

Each is started as ``python -m ivy_gateway.loadtest ROLE JSON`` and answers one JSON line
on stdout per command line on stdin (``stats``, ``reset``, ``status``; ``quit`` or EOF ends
it). Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from typing import Any, cast

from ivy_gateway.codec.dlt645 import (
    NEED_DATA,
    Address,
    Frame,
    FrameDecoder,
    ReadAddressReply,
    encode_message,
)
from ivy_gateway.domain.quantities import Reading, ReadingSource
from ivy_gateway.simulators.dlt645_meter import Dlt645Meter

__all__ = ["HOST", "MeterSwarm", "SwarmMeter", "child_main", "meter_address"]

HOST = "127.0.0.1"


def meter_address(n: int) -> str:
    """The swarm's 12-digit addresses: ``77`` + n (distinct from the simulator fleet's)."""
    return f"77{n:010d}"


def _answer(line: str) -> None:
    """One reply line to the parent (a child's stdout is its answer channel)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# -- the gateway child ---------------------------------------------------------------------


class _PollTimes:
    """Wall time of every poll-group read in the gateway process (``MeterLink.read``)."""

    def __init__(self) -> None:
        self.durations_s: list[float] = []
        self.quantities = 0
        #: Pauses of full (generation 2) garbage collections: they stop the event loop.
        self.gc_pauses_s: list[float] = []
        self._gc_started = 0.0

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pauses_s.append(time.perf_counter() - self._gc_started)

    def reset(self) -> None:
        self.durations_s.clear()
        self.gc_pauses_s.clear()
        self.quantities = 0

    def summary(self) -> dict[str, float]:
        times = sorted(self.durations_s)
        n = len(times)

        def pct(p: float) -> float:
            return times[min(n - 1, math.ceil(p * n) - 1)] * 1000 if n else 0.0

        return {
            "polls": n,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": times[-1] * 1000 if n else 0.0,
            "quantities_per_poll": self.quantities / n if n else 0.0,
            "gc_full": len(self.gc_pauses_s),
            "gc_max_ms": max(self.gc_pauses_s, default=0.0) * 1000,
        }


async def _gateway_main(arg: dict[str, Any]) -> None:
    from ivy_gateway.app import SESSION_FACTORIES, Gateway
    from ivy_gateway.codec.sniff import ProtocolGuess
    from ivy_gateway.sessions.dispatch import Dispatcher
    from ivy_gateway.sessions.dlt645 import Dlt645Session
    from ivy_gateway.settings import load_settings

    times = _PollTimes()
    gc.callbacks.append(times.on_gc)

    class TimedDlt645Session(Dlt645Session):
        """The real session; only its poll reads are timed (start to last reply decoded)."""

        __slots__ = ()

        async def read(self, quantities: Sequence[str], source: ReadingSource) -> list[Reading]:
            started = time.perf_counter()
            try:
                return await super().read(quantities, source)
            finally:
                if source is ReadingSource.POLL:
                    times.durations_s.append(time.perf_counter() - started)
                    times.quantities += len(quantities)

    settings = load_settings(None, arg["settings"])
    gateway = Gateway(settings)
    factories = {**SESSION_FACTORIES, ProtocolGuess.DLT645: TimedDlt645Session}
    gateway.dispatcher = Dispatcher(gateway.context, factories)
    async with gateway:
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
        _answer(json.dumps({"port": gateway.ports["meters"].port, "loop": loop}))
        while (command := (await asyncio.to_thread(sys.stdin.readline)).strip()) not in (
            "",
            "quit",
        ):
            if command == "reset":
                times.reset()
            stats: dict[str, Any] = dict(gateway.counters())
            stats.update(times.summary())
            stats["queued"] = gateway.telemetry.stats().queued
            _answer(json.dumps(stats))


# -- the swarm child -----------------------------------------------------------------------


class MeterSwarm:
    """Many DL/T 645 meters on one event loop; replies come from one template meter."""

    def __init__(self) -> None:
        self.template = Dlt645Meter("999999999999", phases=3, seed=1)
        self.replies: dict[tuple[int, bytes], Any] = {}
        self.transports: list[asyncio.Transport] = []
        self.connected = 0
        self.failed = 0
        self.lost = 0
        self.requests = 0

    def reply_for(self, address: Address, frame: Frame) -> bytes:
        key = (frame.control.to_byte(), frame.data)
        if key not in self.replies:
            asked = dataclasses.replace(frame, address=self.template.address)
            self.template.sent.clear()  # the template never needs its history
            self.replies[key] = self.template.answer(asked)
        message = self.replies[key]
        if message is None:
            return b""
        if isinstance(message, ReadAddressReply):
            message = ReadAddressReply(address)
        return encode_message(address, message)

    def status(self) -> dict[str, int]:
        return {
            "connected": self.connected,
            "failed": self.failed,
            "lost": self.lost,
            "requests": self.requests,
        }


class SwarmMeter(asyncio.Protocol):
    __slots__ = ("_address", "_cache", "_decoder", "_swarm", "_transport")

    def __init__(self, swarm: MeterSwarm, address: Address) -> None:
        self._swarm = swarm
        self._address = address
        self._decoder = FrameDecoder(4096)
        self._cache: dict[tuple[int, bytes], bytes] = {}
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses: cast, never assert.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        self._swarm.connected += 1
        transport.write(encode_message(self._address, ReadAddressReply(self._address)))

    def data_received(self, data: bytes) -> None:
        decoder = self._decoder
        decoder.feed(data)
        while (event := decoder.next_event()) is not NEED_DATA:
            if not isinstance(event, Frame) or event.control.is_reply:
                continue
            key = (event.control.to_byte(), event.data)
            wire = self._cache.get(key)
            if wire is None:
                wire = self._cache[key] = self._swarm.reply_for(self._address, event)
            self._swarm.requests += 1
            if wire and self._transport is not None:
                self._transport.write(wire)

    def connection_lost(self, exc: Exception | None) -> None:
        self._swarm.connected -= 1
        self._swarm.lost += 1


async def _swarm_main(arg: dict[str, Any]) -> None:
    swarm = MeterSwarm()
    loop = asyncio.get_running_loop()
    interval_s = 1.0 / float(arg["dial_rate_per_s"])

    async def dial(n: int) -> None:
        address = Address.parse(meter_address(n))
        for attempt in range(5):
            try:
                transport, _ = await loop.create_connection(
                    lambda: SwarmMeter(swarm, address), HOST, int(arg["port"])
                )
            except OSError:
                await asyncio.sleep(0.5 * (attempt + 1))
            else:
                swarm.transports.append(transport)
                return
        swarm.failed += 1

    async def dial_all() -> None:
        dials: set[asyncio.Task[None]] = set()
        started = loop.time()
        for i, n in enumerate(range(int(arg["first"]), int(arg["first"]) + int(arg["count"]))):
            task = asyncio.create_task(dial(n))
            dials.add(task)
            task.add_done_callback(dials.discard)
            if (delay := started + (i + 1) * interval_s - loop.time()) > 0:
                await asyncio.sleep(delay)
        await asyncio.gather(*dials)

    _answer(json.dumps({"started": True}))
    dialler = asyncio.create_task(dial_all())
    try:
        while (await asyncio.to_thread(sys.stdin.readline)).strip() not in ("", "quit"):
            _answer(json.dumps(swarm.status()))
    finally:
        dialler.cancel()
        await asyncio.gather(dialler, return_exceptions=True)
        for transport in swarm.transports:
            transport.abort()


def child_main(argv: Sequence[str]) -> None:
    from ivy_gateway.transport import install_event_loop_policy

    role, arg = argv[0], json.loads(argv[1])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    install_event_loop_policy(prefer_uvloop=True)  # as `serve` does
    asyncio.run(_gateway_main(arg) if role == "gateway" else _swarm_main(arg))
