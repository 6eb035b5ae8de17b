"""DL/T 645 end to end over real loopback sockets: server → dispatcher → sessions ↔ simulators.

A small fleet of simulated meters dials a real ``StreamServer``; some misbehave (slow,
dropping replies, garbage between frames, replies split into pieces, a line that drops
after a few replies). Every healthy meter must be identified, read in full — the values
the gateway decodes are exactly the values the meter sent — and switched off and on,
whatever its neighbours do.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from ivy_gateway.codec.sniff import ProtocolGuess
from ivy_gateway.domain.commands import RelayState
from ivy_gateway.domain.errors import MeterOffline
from ivy_gateway.domain.events import EventKind, GatewayEvent, MeterEvent, MeterStatus
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.quantities import ReadingSource
from ivy_gateway.sessions.context import MeterOptions, SessionContext, SessionTimings
from ivy_gateway.sessions.dispatch import Dispatcher
from ivy_gateway.sessions.dlt645 import Dlt645Session
from ivy_gateway.sessions.profiles import load_profiles
from ivy_gateway.simulators import open_stream
from ivy_gateway.simulators.dlt645_meter import Dlt645Meter
from ivy_gateway.simulators.faults import Faults
from ivy_gateway.transport import ServerLimits, StreamClosed, StreamServer

INVALID = EventKind.INVALID_TRAFFIC

HOST = "127.0.0.1"
PASSWORD = "02123456"
TIMINGS = SessionTimings(
    request_timeout_s=0.3, retries=3, identify_timeout_s=0.3, unknown_traffic_limit_bytes=64
)
LIMITS = ServerLimits(
    max_connections=100,
    max_connections_per_ip=None,
    max_new_per_ip=None,
    idle_timeout_s=None,
    shutdown_grace_s=1.0,
)


class Events:
    def __init__(self) -> None:
        self.events: list[GatewayEvent] = []

    def emit(self, event: GatewayEvent) -> None:
        self.events.append(event)


class Clock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


def fleet() -> dict[str, Dlt645Meter]:
    """Meters by role; each has its own address, seed and misbehaviour."""

    def meter(n: int, **options: object) -> Dlt645Meter:
        return Dlt645Meter(f"{n:012d}", seed=n, password=PASSWORD, **options)  # type: ignore[arg-type]

    return {
        "announcing": meter(1001, announce=True, preamble_len=4),
        "silent": meter(1002),
        "single_phase": meter(1003, phases=1, announce=True),
        "slow": meter(1004, faults=Faults(delay_s=0.05, seed=4)),
        "dropping": meter(1005, faults=Faults(drop_probability=0.25, seed=5)),
        "garbage": meter(1006, faults=Faults(garbage_probability=0.5, garbage_bytes=12, seed=6)),
        "split": meter(1007, faults=Faults(split_chunks=4, seed=7), follow_up_chunk=2),
        "broken": meter(1008, faults=Faults(disconnect_after=3, disconnect_mid_reply=True)),
    }


async def eventually(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    # Polling is the point: identification has no event a test could wait on.
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@asynccontextmanager
async def gateway(events: Events, meters: dict[str, Dlt645Meter]) -> AsyncIterator[SessionContext]:
    options = {
        MeterId(str(m.address)): MeterOptions(dlt645_password=PASSWORD) for m in meters.values()
    }
    options[MeterId(str(meters["single_phase"].address))] = MeterOptions(
        model="dlt645-single-phase", dlt645_password=PASSWORD
    )
    context = SessionContext(
        sink=events, clock=Clock(), profiles=load_profiles(), timings=TIMINGS, meter_options=options
    )
    dispatcher = Dispatcher(context, {ProtocolGuess.DLT645: Dlt645Session})
    async with StreamServer(dispatcher.on_connection, host=HOST, limits=LIMITS) as server:
        tasks = [asyncio.create_task(m.connect(HOST, server.port)) for m in meters.values()]
        try:
            yield context
        finally:
            await server.stop()
            await asyncio.wait_for(asyncio.gather(*tasks), 5)


def session(context: SessionContext, meter: MeterId) -> Dlt645Session:
    found = context.registry.get(meter)
    assert isinstance(found, Dlt645Session)
    return found


async def exercise(session: Dlt645Session, meter: Dlt645Meter) -> None:
    """Poll every group, compare with what the meter sent, switch the relay off and on."""
    for group in session.poll_groups:
        readings = await session.read(group.quantities, ReadingSource.POLL)
        assert [r.quantity for r in readings] == list(group.quantities)
        for reading in readings:
            assert reading.value == meter.last_sent(reading.address).value, reading
    assert await session.relay_control(RelayState.OPEN) is RelayState.OPEN
    assert meter.relay_open
    [power] = await session.read(["power_active_total"], ReadingSource.POLL)
    assert power.value == 0
    assert await session.relay_control(RelayState.CLOSED) is RelayState.CLOSED
    assert not meter.relay_open


async def test_a_faulty_fleet_is_identified_polled_and_switched() -> None:
    events = Events()
    meters = fleet()
    healthy = {role: m for role, m in meters.items() if role != "broken"}
    started = time.monotonic()
    async with gateway(events, meters) as context:
        ids = {role: MeterId(str(m.address)) for role, m in meters.items()}
        await eventually(lambda: all(context.registry.get(i) for i in ids.values()))
        sessions = {role: session(context, ids[role]) for role in meters}
        assert sessions["single_phase"].model == "dlt645-single-phase"
        # The broken meter's line drops during its first poll; the others are unaffected.
        broken = sessions.pop("broken")
        results = await asyncio.gather(
            *(exercise(s, meters[role]) for role, s in sessions.items()),
            broken.read(broken.poll_groups[0].quantities, ReadingSource.POLL),
            return_exceptions=True,
        )
        assert results[:-1] == [None] * len(healthy)
        assert isinstance(results[-1], MeterOffline)
        await eventually(lambda: context.registry.get(ids["broken"]) is None)
        assert len(context.registry) == len(healthy)
        assert meters["silent"].requests[0].__class__.__name__ == "ReadAddressRequest"
        assert not any(
            type(r).__name__ == "ReadAddressRequest" for r in meters["announcing"].requests
        )
    assert time.monotonic() - started < 10
    invalid = [e for e in events.events if isinstance(e, MeterEvent) and e.kind is INVALID]
    assert [e.meter for e in invalid] == [ids["garbage"]]
    assert invalid[0].kind is EventKind.INVALID_TRAFFIC
    # Every meter came online once and went offline once (the server stopped).
    status = [(e.meter, e.online) for e in events.events if isinstance(e, MeterStatus)]
    for meter_id in ids.values():
        assert [online for m, online in status if m == meter_id] == [True, False]


async def test_client_stream_reports_a_reset_as_end_of_stream() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        # SO_LINGER 0: closing sends RST instead of FIN, as a dying modem link does.
        writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        writer.transport.abort()

    server = await asyncio.start_server(reset, HOST, 0)
    async with server:
        client = await open_stream(HOST, server.sockets[0].getsockname()[1])
        assert client.info.peer_host == HOST
        await client.write(b"x")
        assert await client.read() == b""  # the reset, reported as the end of the stream
        with pytest.raises(StreamClosed):
            await client.write(b"y")
        await client.aclose()
        assert client.closed
        assert await client.read() == b""
