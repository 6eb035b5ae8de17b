"""StreamServer over real loopback sockets: limits, idle timeout, backpressure, shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import pytest

from ivy_gateway.transport import (
    ByteStream,
    DropReason,
    ServerLimits,
    SocketStream,
    StreamClosed,
    StreamServer,
)

HOST = "127.0.0.1"
# Limits loose enough that only the limit under test can trigger.
OPEN = ServerLimits(
    max_connections=10_000,
    max_connections_per_ip=None,
    max_new_per_ip=None,
    idle_timeout_s=None,
    shutdown_grace_s=1.0,
)


def limits(**changes: Any) -> ServerLimits:
    return dataclasses.replace(OPEN, **changes)


async def echo(stream: ByteStream) -> None:
    while data := await stream.read():
        await stream.write(data)


class Client:
    """A raw asyncio-streams client; always closed, so no ResourceWarning escapes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def roundtrip(self, data: bytes) -> bytes:
        self.writer.write(data)
        return await asyncio.wait_for(self.reader.readexactly(len(data)), 2)

    async def closed_by_server(self, timeout_s: float = 2.0) -> bool:
        """True when the server closes the connection (EOF or reset) within the timeout."""
        try:
            return await asyncio.wait_for(self.reader.read(1), timeout_s) == b""
        except ConnectionResetError:
            return True

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionResetError, BrokenPipeError):
            await self.writer.wait_closed()


@asynccontextmanager
async def connect(port: int) -> AsyncIterator[Client]:
    client = Client(*await asyncio.open_connection(HOST, port))
    try:
        yield client
    finally:
        await client.close()


class Recorder:
    def __init__(self) -> None:
        self.drops: list[tuple[str, int, str]] = []

    def __call__(self, host: str, port: int, reason: str) -> None:
        self.drops.append((host, port, reason))

    def reasons(self) -> list[str]:
        return [reason for _, _, reason in self.drops]


async def eventually(predicate: Callable[[], bool], timeout_s: float = 2.0) -> None:
    # Polling is the point: the server's counters have no event to wait on.
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def test_echo_over_port_zero_counts_bytes() -> None:
    async with StreamServer(echo, host=HOST, port=0, limits=OPEN) as server:
        assert server.port > 0
        async with connect(server.port) as client:
            assert await client.roundtrip(b"\x68\x11\x22\x16") == b"\x68\x11\x22\x16"
            assert await client.roundtrip(b"x" * 100_000) == b"x" * 100_000
        await eventually(lambda: server.stats.open == 0)
        assert server.stats.accepted == 1
        assert server.stats.bytes_in == server.stats.bytes_out == 100_004


async def test_handler_sees_peer_info() -> None:
    seen: list[str] = []

    async def remember(stream: ByteStream) -> None:
        seen.append(stream.info.peer_host)
        await stream.write(b"ok")

    async with (
        StreamServer(remember, host=HOST, limits=OPEN) as server,
        connect(server.port) as client,
    ):
        assert await client.reader.readexactly(2) == b"ok"
        assert await client.closed_by_server()
    assert seen == [HOST]


async def test_total_cap_refuses_extra_connections() -> None:
    dropped = Recorder()
    async with StreamServer(
        echo, host=HOST, limits=limits(max_connections=2), on_refused=dropped
    ) as server:
        async with connect(server.port) as a, connect(server.port) as b:
            await eventually(lambda: server.stats.open == 2)
            async with connect(server.port) as c:
                assert await c.closed_by_server()
            assert await a.roundtrip(b"a") == b"a"
            assert await b.roundtrip(b"b") == b"b"
        assert server.stats.refused_total_cap == 1
        assert dropped.reasons() == [DropReason.TOTAL_CAP]
        assert dropped.drops[0][0] == HOST
        # A slot freed by a closed connection is available again.
        await eventually(lambda: server.stats.open == 0)
        async with connect(server.port) as d:
            assert await d.roundtrip(b"d") == b"d"


async def test_per_ip_cap_refuses_beyond_the_cap() -> None:
    dropped = Recorder()
    async with StreamServer(
        echo, host=HOST, limits=limits(max_connections_per_ip=3), on_refused=dropped
    ) as server:
        async with connect(server.port) as a, connect(server.port), connect(server.port):
            await eventually(lambda: server.stats.open == 3)
            async with connect(server.port) as extra:
                assert await extra.closed_by_server()
            assert await a.roundtrip(b"still here") == b"still here"
        assert server.stats.refused_per_ip == 1
        assert dropped.reasons() == ["per_ip"]


async def test_rate_limit_blocks_an_ip_for_the_block_time() -> None:
    dropped = Recorder()
    lim = limits(max_new_per_ip=3, rate_window_s=5.0, rate_block_s=0.3)
    async with StreamServer(echo, host=HOST, limits=lim, on_refused=dropped) as server:
        for _ in range(3):
            async with connect(server.port) as ok:
                assert await ok.roundtrip(b"1") == b"1"
        for _ in range(2):  # the 4th attempt starts the block, the 5th falls inside it
            async with connect(server.port) as refused:
                assert await refused.closed_by_server()
        assert server.stats.refused_rate_limited == 2
        await asyncio.sleep(0.35)
        async with connect(server.port) as after_block:
            assert await after_block.roundtrip(b"2") == b"2"
    assert dropped.reasons() == ["rate_limited", "rate_limited"]


async def test_idle_timeout_closes_a_silent_client_only() -> None:
    dropped = Recorder()
    lim = limits(idle_timeout_s=0.2)
    async with StreamServer(echo, host=HOST, limits=lim, on_refused=dropped) as server:
        async with connect(server.port) as silent, connect(server.port) as chatty:
            for _ in range(6):  # 0.48 s of traffic, never 0.2 s of silence
                assert await chatty.roundtrip(b"p") == b"p"
                await asyncio.sleep(0.08)
            assert await silent.closed_by_server(timeout_s=0.1)
            assert await chatty.roundtrip(b"q") == b"q"
        assert server.stats.idle_timeouts == 1
        assert dropped.reasons() == ["idle_timeout"]


async def test_a_failing_handler_does_not_affect_other_connections(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fragile(stream: ByteStream) -> None:
        while data := await stream.read():
            if data == b"boom":
                raise ValueError("handler bug")
            await stream.write(data)

    async with StreamServer(fragile, host=HOST, limits=OPEN) as server:
        async with connect(server.port) as good, connect(server.port) as bad:
            bad.writer.write(b"boom")
            assert await bad.closed_by_server()
            assert await good.roundtrip(b"fine") == b"fine"
        async with connect(server.port) as later:
            assert await later.roundtrip(b"new") == b"new"
        assert server.stats.handler_errors == 1
    assert "handler bug" in caplog.text


async def test_write_waits_when_the_peer_does_not_read() -> None:
    chunk = b"\0" * 65_536
    hwm = 32 * 1024
    blocked = asyncio.Event()
    queued: list[int] = []
    written = 0

    async def flood(stream: ByteStream) -> None:
        nonlocal written
        assert isinstance(stream, SocketStream)
        while True:
            try:
                await asyncio.wait_for(stream.write(chunk), 0.3)
            except TimeoutError:
                queued.append(stream.write_buffer_size)
                blocked.set()
                await stream.read()  # wait for the client to go away
                return
            written += len(chunk)

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # keep kernel buffering small
    sock.setblocking(False)
    async with StreamServer(flood, host=HOST, limits=limits(write_high_water_bytes=hwm)) as server:
        await asyncio.get_running_loop().sock_connect(sock, (HOST, server.port))
        try:
            await asyncio.wait_for(blocked.wait(), 3)
        finally:
            sock.close()
    # The writer stopped with at most one chunk over the mark queued in the process;
    # the rest of what it "wrote" sits in the kernel's socket buffers, which are bounded.
    assert queued[0] <= hwm + len(chunk)
    assert written < 16 * 1024 * 1024


async def test_a_flooding_peer_is_not_read_beyond_the_buffer_cap() -> None:
    cap = 8 * 1024
    lim = limits(max_buffered_bytes=cap, recv_chunk_bytes=4096)
    peaks: list[int] = []
    release = asyncio.Event()

    async def slow_reader(stream: ByteStream) -> None:
        assert isinstance(stream, SocketStream)
        await release.wait()  # read nothing while the client floods
        peaks.append(stream.buffered)
        received = 0
        while data := await stream.read(65_536):
            received += len(data)
            peaks.append(stream.buffered)
            if received == 1_000_000:
                await stream.write(b"done")

    async with (
        StreamServer(slow_reader, host=HOST, limits=lim) as server,
        connect(server.port) as client,
    ):
        client.writer.write(b"\x55" * 1_000_000)
        await asyncio.sleep(0.2)
        release.set()
        assert await asyncio.wait_for(client.reader.readexactly(4), 3) == b"done"
    # The stream stopped reading at the cap; the kernel held the rest (TCP flow control).
    assert cap <= peaks[0]
    assert max(peaks) <= cap + 4096


async def test_bytes_sent_just_before_the_peer_closes_are_still_read() -> None:
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def late_reader(stream: ByteStream) -> None:
        await asyncio.sleep(0.1)  # the peer has sent and closed by now
        chunks = []
        while data := await stream.read(3):
            chunks.append(data)
        got.set_result(b"".join(chunks))

    async with StreamServer(late_reader, host=HOST, limits=OPEN) as server:
        async with connect(server.port) as client:
            client.writer.write(b"last frame")
        assert await asyncio.wait_for(got, 2) == b"last frame"


async def test_write_to_a_vanished_peer_raises_stream_closed() -> None:
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    async def late_writer(stream: ByteStream) -> None:
        assert await stream.read() == b""  # the client went away
        try:
            for _ in range(100):
                await stream.write(b"answer")
                await asyncio.sleep(0.01)
        except StreamClosed as exc:
            outcome.set_result(exc)
            return
        outcome.set_result(None)

    async with StreamServer(late_writer, host=HOST, limits=OPEN) as server:
        async with connect(server.port):
            pass
        assert isinstance(await asyncio.wait_for(outcome, 3), StreamClosed)


async def test_graceful_shutdown_lets_handlers_finish_then_cancels_the_rest() -> None:
    finished: list[str] = []
    cancelled: list[str] = []

    async def polite(stream: ByteStream) -> None:
        while await stream.read():
            pass
        await stream.write(b"bye")  # writing still works after the shutdown EOF
        finished.append("polite")

    async def stubborn(stream: ByteStream) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append("stubborn")
            raise

    handlers: list[Callable[[ByteStream], Awaitable[None]]] = [polite, stubborn]

    async def route(stream: ByteStream) -> None:
        await handlers.pop(0)(stream)

    server = StreamServer(route, host=HOST, limits=limits(shutdown_grace_s=0.3))
    async with server:
        port = server.port
        async with connect(port) as p, connect(port) as s:
            await eventually(lambda: server.stats.open == 2)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await server.stop()
            elapsed = loop.time() - t0
            assert await p.reader.read() == b"bye"
            assert await s.closed_by_server()
    assert 0.25 <= elapsed < 1.5
    assert finished == ["polite"]
    assert cancelled == ["stubborn"]
    assert server.stats.open == 0
    with pytest.raises(ConnectionRefusedError):  # nothing listens any more
        await asyncio.open_connection(HOST, port)


async def test_flood_from_one_ip_is_refused_while_a_good_client_works() -> None:
    dropped = Recorder()
    cap = 100
    flood_size = 2_000
    lim = limits(max_connections_per_ip=cap, accept_backlog=4096)
    async with (
        StreamServer(echo, host=HOST, limits=lim, on_refused=dropped) as server,
        connect(server.port) as good,
    ):
        loop = asyncio.get_running_loop()
        socks: list[socket.socket] = []
        try:
            for _ in range(flood_size):
                sock = socket.socket()
                sock.setblocking(False)
                socks.append(sock)
            await asyncio.gather(*(loop.sock_connect(s, (HOST, server.port)) for s in socks))
            assert await good.roundtrip(b"during") == b"during"
            await eventually(
                lambda: server.stats.accepted + server.stats.refused_per_ip == flood_size + 1,
                timeout_s=5,
            )
        finally:
            for sock in socks:
                sock.close()
        assert server.stats.accepted == cap
        assert server.stats.refused_per_ip == flood_size + 1 - cap
        assert len(dropped.drops) == flood_size + 1 - cap
        assert await good.roundtrip(b"after") == b"after"
        await eventually(lambda: server.stats.open == 1)
