"""Bad input never crashes the gateway or harms other meters (issue: meter runtime).

Each case runs against a whole ``Gateway`` with one well-behaved DL/T 645 meter polled
throughout; the case passes when that meter is still being read afterwards, the gateway's
memory stayed bounded, and the documented event or counter says what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from ivy_gateway.app import Gateway
from ivy_gateway.codec.dlt645 import (
    NEED_DATA,
    WILDCARD,
    Address,
    Frame,
    FrameDecoder,
    Function,
    ReadAddressReply,
    encode_message,
)
from ivy_gateway.domain.commands import CommandMethod
from ivy_gateway.domain.events import EventKind, GatewayEvent, MeterEvent
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.settings import load_settings
from ivy_gateway.simulators.dlt645_meter import Dlt645Meter

GOOD = "000000000042"
READ_VOLTAGE = bytes.fromhex("FEFEFEFE68420000000000681104333334333A16")


class EventTap:
    """A telemetry sink that keeps MeterEvents for the assertions."""

    def __init__(self) -> None:
        self.events: list[MeterEvent] = []

    async def handle(self, events: Sequence[GatewayEvent]) -> None:
        self.events.extend(e for e in events if isinstance(e, MeterEvent))

    def kinds(self, kind: EventKind) -> list[MeterEvent]:
        return [e for e in self.events if e.kind is kind]


@contextlib.asynccontextmanager
async def gateway_with_good_meter(
    tmp_path: Path, **meters: object
) -> AsyncIterator[tuple[Gateway, EventTap, int]]:
    settings = load_settings(
        None,
        {
            "meters": {
                "host": "127.0.0.1",
                "port": 0,
                "identify_timeout_s": 0.5,
                "max_connections_per_ip": 100,
                "new_connections_per_ip": 10_000,
                **meters,
            },
            "mqtt": {"host": "127.0.0.1", "port": 0, "ws_port": 0},
            "storage": {"url": f"sqlite:///{tmp_path / 'gw.db'}", "batch_interval_s": 0.1},
            "polling": {"interval_scale": 0.02, "timeout_s": 1.0, "retries": 1},
        },
    )
    tap = EventTap()
    gateway = Gateway(settings)
    gateway.telemetry.add_sink("test-tap", tap)
    async with gateway:
        port = gateway.ports["meters"].port
        good = Dlt645Meter(GOOD, seed=1, announce=True)
        task = asyncio.create_task(good.connect("127.0.0.1", port))
        try:
            await _until(lambda: gateway.context.registry.get(MeterId(GOOD)) is not None)
            yield gateway, tap, port
            await _assert_still_served(gateway)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll ``predicate``: the gateway exposes no event for every condition tested here."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - polling observable state is the point
            await asyncio.sleep(0.02)


async def _assert_still_served(gateway: Gateway) -> None:
    result = await gateway.commands.execute(
        GOOD,
        {
            "id": "check",
            "method": CommandMethod.READ_REGISTER,
            "params": {"register": "voltage_l1"},
        },
    )
    assert result.success, result
    assert result.result is not None
    assert 150 < result.result["value"] < 300


def _max_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def test_garbage_connection_is_reported_and_cut_off(tmp_path: Path) -> None:
    async with gateway_with_good_meter(tmp_path) as (_, tap, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await writer.wait_closed()
        await _until(lambda: bool(tap.kinds(EventKind.INVALID_TRAFFIC)))
        [event] = tap.kinds(EventKind.INVALID_TRAFFIC)
        assert event.meter is None
        assert "no protocol recognised" in event.data["reason"]


async def test_half_frame_then_silence_times_out_without_harm(tmp_path: Path) -> None:
    async with gateway_with_good_meter(tmp_path) as (_, tap, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(READ_VOLTAGE[:9])  # FE FE FE FE 68 and half an address
        await writer.drain()
        # The DL/T 645 session waits identify_timeout_s, asks who is there with read-address
        # (0x13 to the wildcard address), gets no answer and hangs up.
        received = await asyncio.wait_for(reader.read(), 15)  # read() returns at EOF
        decoder = FrameDecoder()
        decoder.feed(received)
        asked = list(iter(decoder.next_event, NEED_DATA))
        assert asked, "the gateway never asked the silent peer who it is"
        assert all(isinstance(f, Frame) and f.address == WILDCARD for f in asked)
        assert {f.control.function for f in asked if isinstance(f, Frame)} == {
            Function.READ_ADDRESS
        }
        writer.close()
        await writer.wait_closed()
        assert not tap.kinds(EventKind.METER_ONLINE)[1:]  # only the good meter came online


async def test_one_megabyte_burst_keeps_memory_bounded(tmp_path: Path) -> None:
    async with gateway_with_good_meter(tmp_path) as (gateway, tap, port):
        chunk = (b"\x68" + bytes(range(1, 128))) * 512  # 64 KiB that keeps looking like frames
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        before = _max_rss_kb()
        with contextlib.suppress(ConnectionError):
            for _ in range(16):  # 1 MiB in drained chunks: the client holds at most one
                writer.write(chunk)
                await writer.drain()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(reader.read(), 10)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        await _until(lambda: bool(tap.kinds(EventKind.INVALID_TRAFFIC)))
        # The gateway never buffers the burst whole: growth stays well below its size.
        assert _max_rss_kb() - before < 512
        assert gateway.server is not None


async def test_identified_meter_sending_garbage_is_reported_once(tmp_path: Path) -> None:
    noisy = MeterId("000000000077")
    address = Address.parse(str(noisy))
    async with gateway_with_good_meter(tmp_path) as (gateway, tap, port):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(encode_message(address, ReadAddressReply(address)))  # "here I am"
        await writer.drain()
        await _until(lambda: gateway.context.registry.get(noisy) is not None)
        for _ in range(20):
            writer.write(bytes([0x55]) * 1000)
        await writer.drain()

        def reports() -> list[MeterEvent]:
            return [e for e in tap.kinds(EventKind.INVALID_TRAFFIC) if e.meter == noisy]

        await _until(lambda: bool(reports()))
        await asyncio.sleep(0.2)  # more garbage has arrived by now: still one report
        assert len(reports()) == 1
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_two_thousand_connections_from_one_ip(tmp_path: Path) -> None:
    async with gateway_with_good_meter(tmp_path, max_connections_per_ip=50) as (gateway, _, port):
        writers: list[asyncio.StreamWriter] = []
        try:
            for _ in range(2000):
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    continue
                writers.append(writer)
            await _until(
                lambda: gateway.server is not None and gateway.server.stats.refused_per_ip > 1000
            )
            assert gateway.server is not None
            assert gateway.server.stats.open <= 50
        finally:
            for writer in writers:
                writer.close()
            for writer in writers:
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
