"""Transport: memory per idle meter connection and echo round trips, over loopback.

The server runs in a child process (``python bench_transport.py --serve IMPL``) so its RSS
holds no client sockets and each side has its own open-file limit; the child answers
``rss`` / ``open`` / ``quit`` on stdin. ``IMPL`` is ``socket`` (our ``StreamServer``) or
``streams`` (``asyncio.start_server``, the baseline the choice of ``SocketStream`` was
measured against). Idle clients are plain blocking sockets: they cost the server what a
silent meter costs.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness import Row
from ivy_gateway.transport import ByteStream, ServerLimits, StreamServer

HOST = "127.0.0.1"
PING = b"\x68" + b"\x55" * 62 + b"\x16"  # 64 bytes, a typical meter frame size
ECHO_CLIENTS = 100
ECHO_SECONDS = 2.0


# -- server side (child process) ---------------------------------------------------------


def _vm_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


async def _echo(stream: ByteStream) -> None:
    while data := await stream.read():
        await stream.write(data)


async def _streams_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def _serve(impl: str) -> None:
    open_count = 0

    async def counted_streams_echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal open_count
        open_count += 1
        try:
            await _streams_echo(r, w)
        finally:
            open_count -= 1

    limits = ServerLimits(
        max_connections=50_000,
        max_connections_per_ip=None,
        max_new_per_ip=None,
        idle_timeout_s=600.0,
        accept_backlog=4096,
    )
    ours = StreamServer(_echo, host=HOST, limits=limits)
    baseline: asyncio.Server | None = None
    if impl == "socket":
        await ours.start()
        port = ours.port
    else:
        baseline = await asyncio.start_server(counted_streams_echo, HOST, 0, backlog=4096)
        port = baseline.sockets[0].getsockname()[1]
    print(port, flush=True)
    while True:
        command = (await asyncio.to_thread(sys.stdin.readline)).strip()
        if command == "rss":
            print(_vm_rss_kb(), flush=True)
        elif command == "open":
            print(ours.stats.open if impl == "socket" else open_count, flush=True)
        else:
            break
    if baseline is not None:
        baseline.close()
    await ours.stop()


# -- client side (benchmark process) -----------------------------------------------------


class _Server:
    def __init__(self, impl: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", impl],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self._line())

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def ask(self, command: str) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return int(self._line())

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def _wait_open(server: _Server, n: int, timeout_s: float = 30.0) -> int:
    deadline = time.monotonic() + timeout_s
    while (seen := server.ask("open")) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen


class _Pinger(asyncio.Protocol):
    def __init__(self, counter: list[int]) -> None:
        self.counter = counter
        self.pending = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(PING)

    def data_received(self, data: bytes) -> None:
        self.pending += len(data)
        if self.pending >= len(PING) and self.transport is not None:
            self.pending -= len(PING)
            self.counter[0] += 1
            self.transport.write(PING)


async def _echo_rate(port: int) -> float:
    loop = asyncio.get_running_loop()
    counter = [0]
    conns = [
        await loop.create_connection(lambda: _Pinger(counter), HOST, port)
        for _ in range(ECHO_CLIENTS)
    ]
    await asyncio.sleep(0.3)  # warm up
    start_count, t0 = counter[0], loop.time()
    await asyncio.sleep(ECHO_SECONDS)
    rate = (counter[0] - start_count) / (loop.time() - t0)
    for transport, _ in conns:
        transport.close()
    await asyncio.sleep(0.05)
    return rate


def _measure(impl: str, idle: int) -> tuple[int, float, float]:
    """Hold ``idle`` silent connections; return (held, KB per connection, round trips/s)."""
    server = _Server(impl)
    socks: list[socket.socket] = []
    try:
        before = server.ask("rss")
        for _ in range(idle):
            socks.append(socket.create_connection((HOST, server.port)))
        held = _wait_open(server, idle)
        time.sleep(0.2)
        after = server.ask("rss")
        rate = asyncio.run(_echo_rate(server.port))
    finally:
        for sock in socks:
            sock.close()
        server.stop()
    return held, (after - before) / max(held, 1), rate


def results() -> list[Row]:
    soft_limit, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Each side needs one fd per connection plus a margin for the echo clients and stdio.
    sizes = [n for n in (2_000, 10_000) if n + ECHO_CLIENTS + 100 <= soft_limit]
    rows: list[Row] = []
    for impl, label in (("socket", "StreamServer"), ("streams", "asyncio streams")):
        for n in sizes:
            held, kb_per_conn, rate = _measure(impl, n)
            note = f"{held:,} of {n:,} held; stock asyncio loop"
            rows.append(
                Row(
                    "transport",
                    f"{label}: server RSS per idle conn @ {n:,}",
                    kb_per_conn,
                    "KB/conn",
                    "< 20 KB (whole gateway)" if impl == "socket" else "",
                    note,
                )
            )
            rows.append(
                Row(
                    "transport",
                    f"{label}: echo 64 B, {ECHO_CLIENTS} active + {n:,} idle",
                    rate,
                    "round-trips/s",
                    "",
                    "client in one other process (shares the 2 cores)",
                )
            )
    if len(sizes) < 2:
        rows.append(
            Row("transport", "10,000 idle conns", 0, "skipped", "", f"ulimit -n is {soft_limit}")
        )
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        asyncio.run(_serve(sys.argv[2]))
    else:
        for row in results():
            print(row)
