"""``ByteStream``: the only thing a session sees of a connection, and its socket implementation.

``SocketStream`` is an ``asyncio.BufferedProtocol`` rather than an ``asyncio.StreamReader``/
``StreamWriter`` pair. Measured in ``benchmarks/bench_transport.py``: it holds an idle
connection in less memory (one slotted object instead of reader + writer + protocol, each
with a ``__dict__``), it ``recv_into``s a buffer shared by the whole server instead of
allocating a 256 KiB ``bytes`` per ``recv``, and the echo rate is higher on stock asyncio.

Idle timeout costs one ``TimerHandle`` per connection, not a task: receiving only stores a
timestamp, and the timer, when it fires, re-arms itself at the new deadline if bytes came in
meanwhile (so the timer heap is touched once per timeout period, not once per packet).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Protocol, cast

from ivy_gateway.domain.errors import MeterOffline
from ivy_gateway.domain.meter import ConnectionInfo

from .limits import ServerLimits

__all__ = ["ByteStream", "SocketStream", "StreamClosed", "StreamOwner", "TrafficStats"]

#: ``ConnectionInfo.connection_id`` is unique per process, whatever server made it.
_connection_ids = itertools.count(1)
_NOT_CONNECTED = ConnectionInfo(0, "", 0)


def next_connection_id() -> int:
    return next(_connection_ids)


class StreamClosed(MeterOffline):
    """The connection is gone (peer closed or reset, or we closed it); nothing can be sent."""


class ByteStream(Protocol):
    """A connected byte stream, as sessions and simulators use it.

    ``read`` returns ``b""`` at end of stream: the peer closed, the stream was closed
    locally, or the server is shutting down (then ``write`` still works for a last answer).
    ``write`` returns once the data is queued below the high-water mark; it raises
    ``StreamClosed`` if the connection is gone.
    """

    @property
    def info(self) -> ConnectionInfo: ...

    @property
    def bytes_in(self) -> int: ...

    @property
    def bytes_out(self) -> int: ...

    @property
    def closed(self) -> bool: ...

    async def read(self, max_bytes: int = 4096) -> bytes: ...

    async def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


class TrafficStats(Protocol):
    bytes_in: int
    bytes_out: int


class StreamOwner(Protocol):
    """What a ``SocketStream`` needs from the server that accepted it."""

    @property
    def limits(self) -> ServerLimits: ...

    @property
    def stats(self) -> TrafficStats: ...

    @property
    def recv_buffer(self) -> memoryview: ...

    def stream_made(self, stream: SocketStream) -> bool:
        """Admit (True) or refuse (False, the stream is then closed) a new connection."""
        ...

    def stream_idle(self, stream: SocketStream) -> None: ...

    def stream_lost(self, stream: SocketStream) -> None: ...


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class SocketStream(asyncio.BufferedProtocol):
    """One accepted TCP connection; created by the server's protocol factory."""

    __slots__ = (
        "_drain_waiters",
        "_eof",
        "_info",
        "_last_rx",
        "_loop",
        "_lost",
        "_lost_waiter",
        "_owner",
        "_read_paused",
        "_rx",
        "_rx_waiter",
        "_timer",
        "_transport",
        "_write_paused",
        "bytes_in",
        "bytes_out",
    )

    def __init__(self, owner: StreamOwner) -> None:
        self._owner = owner
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._info = _NOT_CONNECTED
        self._rx = bytearray()
        self._rx_waiter: asyncio.Future[None] | None = None
        self._drain_waiters: list[asyncio.Future[None]] | None = None
        self._lost_waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_rx = 0.0
        self._eof = False
        self._lost = False
        self._read_paused = False
        self._write_paused = False
        self.bytes_in = 0
        self.bytes_out = 0

    # -- ByteStream ---------------------------------------------------------------------

    @property
    def info(self) -> ConnectionInfo:
        return self._info

    @property
    def closed(self) -> bool:
        t = self._transport
        return t is None or t.is_closing()

    @property
    def buffered(self) -> int:
        """Bytes received and not yet read (bounded near ``max_buffered_bytes``)."""
        return len(self._rx)

    @property
    def write_buffer_size(self) -> int:
        """Bytes queued in user space for the kernel (what the high-water mark bounds)."""
        t = self._transport
        return 0 if t is None or self._lost else t.get_write_buffer_size()

    async def read(self, max_bytes: int = 4096) -> bytes:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        while not self._rx:
            if self._eof or self._lost:
                return b""
            if self._rx_waiter is not None:
                raise RuntimeError(f"{self._info}: read() called while another read waits")
            waiter = self._loop.create_future()
            self._rx_waiter = waiter
            try:
                await waiter
            finally:
                self._rx_waiter = None
        rx = self._rx
        if len(rx) <= max_bytes:
            data = bytes(rx)
            rx.clear()  # shrinks the allocation: idle connections keep no buffer
        else:
            data = bytes(rx[:max_bytes])
            del rx[:max_bytes]
        if self._read_paused and not self._eof and len(rx) < self._owner.limits.max_buffered_bytes:
            self._read_paused = False
            if self._transport is not None and not self._lost:
                self._transport.resume_reading()
        return data

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        t = self._transport
        if t is None or self._lost or t.is_closing():
            raise StreamClosed(f"{self._info}: connection closed")
        if not isinstance(data, bytes):
            data = bytes(data)  # the transport may keep a view of it until sent
        t.write(data)
        n = len(data)
        self.bytes_out += n
        self._owner.stats.bytes_out += n
        if not self._write_paused:
            return
        waiter = self._loop.create_future()
        if self._drain_waiters is None:
            self._drain_waiters = []
        self._drain_waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._drain_waiters is not None and waiter in self._drain_waiters:
                self._drain_waiters.remove(waiter)
        if self._lost:
            raise StreamClosed(f"{self._info}: connection lost while sending")

    def close(self) -> None:
        """Close after queued output is sent; abort if the peer takes none for ``linger_s``."""
        self._end_reading()
        t = self._transport
        if t is None or t.is_closing():
            return
        t.close()
        if t.get_write_buffer_size():
            self._cancel_timer()
            self._timer = self._loop.call_later(self._owner.limits.linger_s, self.abort)

    async def aclose(self) -> None:
        self.close()
        if self._transport is None or self._lost:
            return
        if self._lost_waiter is None:
            self._lost_waiter = self._loop.create_future()
        await asyncio.shield(self._lost_waiter)

    def abort(self) -> None:
        """Drop the connection now, discarding queued output."""
        self._end_reading()
        if self._transport is not None and not self._lost:
            self._transport.abort()

    def shutdown_read(self) -> None:
        """Make ``read`` return EOF (after what is buffered) while ``write`` keeps working."""
        if not self._eof and self._transport is not None and not self._lost:
            self._transport.pause_reading()
        self._end_reading()

    # -- asyncio.BufferedProtocol callbacks ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream server only ever hands us a TCP transport; uvloop's TCPTransport is not
        # a subclass of asyncio.Transport, so an isinstance check would refuse every
        # connection under the `fast` extra. Cast instead.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        host, port = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        self._info = ConnectionInfo(next_connection_id(), host, port)
        self._last_rx = self._loop.time()
        limits = self._owner.limits
        transport.set_write_buffer_limits(high=limits.write_high_water_bytes)
        if not self._owner.stream_made(self):
            self.close()
            return
        if limits.idle_timeout_s is not None:
            self._timer = self._loop.call_at(self._last_rx + limits.idle_timeout_s, self._on_timer)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._owner.recv_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._last_rx = self._loop.time()
        self.bytes_in += nbytes
        self._owner.stats.bytes_in += nbytes
        if self._eof:
            return  # read side ended locally; what still arrives is dropped
        rx = self._rx
        rx += self._owner.recv_buffer[:nbytes]
        _wake(self._rx_waiter)
        if len(rx) >= self._owner.limits.max_buffered_bytes and self._transport is not None:
            self._read_paused = True
            self._transport.pause_reading()

    def eof_received(self) -> bool:
        # Meters never half-close: EOF means the meter is gone, so let the transport close.
        self._eof = True
        _wake(self._rx_waiter)
        return False

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._eof = True
        self._write_paused = False
        self._cancel_timer()
        _wake(self._rx_waiter)
        self._wake_writers()
        _wake(self._lost_waiter)
        self._owner.stream_lost(self)

    # -- internals ------------------------------------------------------------------------

    def _end_reading(self) -> None:
        self._eof = True
        _wake(self._rx_waiter)

    def _wake_writers(self) -> None:
        waiters = self._drain_waiters
        if waiters:
            self._drain_waiters = None
            for waiter in waiters:
                _wake(waiter)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        t = self._transport
        timeout = self._owner.limits.idle_timeout_s
        if t is None or self._lost or timeout is None:
            return
        if t.is_closing():
            self.abort()  # closed long ago and the peer still takes no output
            return
        now = self._loop.time()
        deadline = self._last_rx + timeout
        if self._read_paused:
            # We stopped reading, so silence is ours, not the peer's.
            deadline = now + timeout
        if deadline > now:
            self._timer = self._loop.call_at(deadline, self._on_timer)
            return
        self._owner.stream_idle(self)
        self.close()
