"""``StreamServer``: the TCP listener meters dial into.

Every admitted connection runs the injected ``on_connection(stream)`` in its own task; that
task is the only one a connection costs. Refusals and misbehaviour are counted in
``ServerStats`` by ``DropReason`` and reported once each through ``on_refused``; the caller
decides how to log them. A failing ``on_connection`` is logged here and never reaches the
listener.

Stop sequence (``stop`` / leaving ``async with``):
1. close the listening socket;
2. every stream's ``read`` returns EOF, ``write`` still works: handlers finish on their own;
3. after ``shutdown_grace_s`` the remaining handler tasks are cancelled;
4. every socket is aborted and the server waits for all of it.
"""

from __future__ import annotations

import asyncio
import enum
import importlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from .limits import IpConnectionCap, IpRateLimit, PeerLimiter, ServerLimits
from .stream import ByteStream, SocketStream

__all__ = [
    "DropReason",
    "OnConnection",
    "OnRefused",
    "ServerStats",
    "StreamServer",
    "install_event_loop_policy",
]

log = logging.getLogger(__name__)

OnConnection = Callable[[ByteStream], Awaitable[None]]
#: ``on_refused(peer_host, peer_port, reason)`` with ``reason`` a ``DropReason`` value.
OnRefused = Callable[[str, int, str], None]


class DropReason(enum.StrEnum):
    """Why a connection was refused or closed by us; the values name ``ServerStats`` fields."""

    TOTAL_CAP = "total_cap"
    PER_IP = "per_ip"
    RATE_LIMITED = "rate_limited"
    IDLE_TIMEOUT = "idle_timeout"


@dataclass(slots=True)
class ServerStats:
    """Live counters; the server updates them, callers only read them."""

    accepted: int = 0
    open: int = 0
    refused_total_cap: int = 0
    refused_per_ip: int = 0
    refused_rate_limited: int = 0
    idle_timeouts: int = 0
    handler_errors: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


def _ignore_refusal(peer_host: str, peer_port: int, reason: str) -> None:
    return None


class StreamServer:
    """Listen on ``host:port`` (port 0 picks a free one, see ``port``) and serve streams."""

    def __init__(
        self,
        on_connection: OnConnection,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: ServerLimits | None = None,
        on_refused: OnRefused | None = None,
        ip_cap: PeerLimiter | None = None,
        rate_limit: PeerLimiter | None = None,
    ) -> None:
        self._on_connection = on_connection
        self._host = host
        self._port = port
        self._limits = limits = limits or ServerLimits()
        self._on_refused = on_refused or _ignore_refusal
        if ip_cap is None and limits.max_connections_per_ip is not None:
            ip_cap = IpConnectionCap(limits.max_connections_per_ip)
        if rate_limit is None and limits.max_new_per_ip is not None:
            rate_limit = IpRateLimit(
                limits.max_new_per_ip, limits.rate_window_s, limits.rate_block_s
            )
        self._ip_cap = ip_cap
        self._rate_limit = rate_limit
        self._stats = ServerStats()
        # One receive buffer for every connection: data is copied out before the next recv.
        self._recv_buffer = memoryview(bytearray(limits.recv_chunk_bytes))
        self._server: asyncio.Server | None = None
        self._streams: set[SocketStream] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("server already started")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SocketStream(self),
            self._host,
            self._port,
            backlog=self._limits.accept_backlog,
            reuse_address=True,
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Graceful stop; see the module docstring. Safe to call twice."""
        server = self._server
        if server is None or self._stopping:
            return
        self._stopping = True
        server.close()
        for stream in list(self._streams):
            stream.shutdown_read()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self._limits.shutdown_grace_s)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("cancelled %d connection handlers at shutdown", len(pending))
                _, stuck = await asyncio.wait(pending, timeout=self._limits.shutdown_grace_s)
                if stuck:
                    log.error("%d connection handlers ignored cancellation", len(stuck))
        streams = list(self._streams)
        for stream in streams:
            stream.abort()
        await asyncio.gather(*(stream.aclose() for stream in streams))
        await server.wait_closed()

    async def __aenter__(self) -> StreamServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        return self._port

    @property
    def stats(self) -> ServerStats:
        return self._stats

    @property
    def limits(self) -> ServerLimits:
        return self._limits

    @property
    def recv_buffer(self) -> memoryview:
        return self._recv_buffer

    # -- StreamOwner callbacks (called by SocketStream) -------------------------------------

    def stream_made(self, stream: SocketStream) -> bool:
        if self._stopping:
            return False
        info = stream.info
        reason = self._admit(info.peer_host)
        if reason is not None:
            self._drop(info.peer_host, info.peer_port, reason)
            return False
        self._stats.accepted += 1
        self._stats.open += 1
        self._streams.add(stream)
        task = asyncio.get_running_loop().create_task(self._serve(stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def stream_idle(self, stream: SocketStream) -> None:
        self._drop(stream.info.peer_host, stream.info.peer_port, DropReason.IDLE_TIMEOUT)

    def stream_lost(self, stream: SocketStream) -> None:
        self._streams.discard(stream)

    # -- internals ------------------------------------------------------------------------

    def _admit(self, ip: str) -> DropReason | None:
        # Rate first: every attempt counts against the peer, even one refused for capacity.
        if self._rate_limit is not None and not self._rate_limit.allow(ip):
            return DropReason.RATE_LIMITED
        if self._stats.open >= self._limits.max_connections:
            return DropReason.TOTAL_CAP
        if self._ip_cap is not None and not self._ip_cap.allow(ip):
            return DropReason.PER_IP
        return None

    def _drop(self, host: str, port: int, reason: DropReason) -> None:
        stats = self._stats
        if reason is DropReason.TOTAL_CAP:
            stats.refused_total_cap += 1
        elif reason is DropReason.PER_IP:
            stats.refused_per_ip += 1
        elif reason is DropReason.RATE_LIMITED:
            stats.refused_rate_limited += 1
        else:
            stats.idle_timeouts += 1
        try:
            self._on_refused(host, port, reason.value)
        except Exception:
            log.exception("on_refused callback failed")

    async def _serve(self, stream: SocketStream) -> None:
        try:
            await self._on_connection(stream)
        except Exception:
            self._stats.handler_errors += 1
            log.exception("connection handler failed for %s", stream.info)
        finally:
            stream.close()
            self._stats.open -= 1
            if self._ip_cap is not None:
                self._ip_cap.release(stream.info.peer_host)


def install_event_loop_policy(prefer_uvloop: bool) -> str:
    """Install uvloop's policy when wanted and installed; return ``"uvloop"`` or ``"asyncio"``.

    uvloop is the optional ``fast`` extra (about 2x the echo rate, ECOSYSTEM.md §2.6), so
    it is imported by name and its absence is not an error.
    """
    if prefer_uvloop:
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            log.info("uvloop not installed; using the asyncio event loop")
        else:
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            return "uvloop"
    asyncio.set_event_loop_policy(None)
    return "asyncio"
