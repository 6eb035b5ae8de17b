"""In-memory ``ByteStream``s for tests and simulators: no sockets, no event-loop I/O.

- ``ScriptedStream(chunks)`` replays a meter's bytes in exactly the given segmentation and
  records what the gateway wrote; feed every vector whole and split to test a session.
- ``LoopbackPair()`` joins two streams (``meter`` and ``gateway``) back to back, with the
  same EOF, ``StreamClosed`` and backpressure behaviour as a socket.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable
from typing import Literal

from ivy_gateway.domain.meter import ConnectionInfo

from .stream import StreamClosed, next_connection_id

__all__ = ["LoopbackPair", "MemoryStream", "ScriptedStream"]


def _info(host: str, port: int) -> ConnectionInfo:
    return ConnectionInfo(next_connection_id(), host, port)


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class ScriptedStream:
    """Each ``read`` returns the next chunk (split when longer than ``max_bytes``).

    When the script is used up, ``read`` returns ``b""`` (``at_end="eof"``) or waits for
    ``feed``/``feed_eof``/``close`` (``at_end="block"``). Writes are kept in ``written``.
    """

    __slots__ = ("_at_end", "_chunks", "_closed", "_eof", "_info", "_waiter", "bytes_in", "written")

    def __init__(
        self,
        chunks: Iterable[bytes] = (),
        *,
        at_end: Literal["eof", "block"] = "eof",
        info: ConnectionInfo | None = None,
    ) -> None:
        self._chunks: collections.deque[bytes] = collections.deque(c for c in chunks if c)
        self._at_end = at_end
        self._info = info or _info("127.0.0.1", 0)
        self._closed = False
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        self.bytes_in = 0
        self.written: list[bytes] = []

    @property
    def info(self) -> ConnectionInfo:
        return self._info

    @property
    def bytes_out(self) -> int:
        return sum(map(len, self.written))

    @property
    def output(self) -> bytes:
        """Everything written so far, joined."""
        return b"".join(self.written)

    @property
    def closed(self) -> bool:
        return self._closed

    def feed(self, chunk: bytes) -> None:
        """Append a chunk to the script (wakes a waiting ``read``)."""
        if self._eof:
            raise RuntimeError("feed() after feed_eof()")
        if chunk:
            self._chunks.append(chunk)
            _wake(self._waiter)

    def feed_eof(self) -> None:
        self._eof = True
        _wake(self._waiter)

    async def read(self, max_bytes: int = 4096) -> bytes:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        while not self._chunks:
            if self._closed or self._eof or self._at_end == "eof":
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._closed:
            return b""
        chunk = self._chunks.popleft()
        if len(chunk) > max_bytes:
            self._chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        self.bytes_in += len(chunk)
        return chunk

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise StreamClosed(f"{self._info}: connection closed")
        self.written.append(bytes(data))
        await asyncio.sleep(0)  # a real write may switch tasks; so does this one

    def close(self) -> None:
        self._closed = True
        _wake(self._waiter)

    async def aclose(self) -> None:
        self.close()


class MemoryStream:
    """One end of a ``LoopbackPair``; its ``write`` waits while the peer has more than
    ``high_water_bytes`` unread, like a socket whose peer does not read."""

    __slots__ = (
        "_closed",
        "_eof",
        "_high_water",
        "_info",
        "_peer",
        "_rx",
        "_rx_waiter",
        "_writer_waiters",
        "bytes_in",
        "bytes_out",
    )

    def __init__(self, info: ConnectionInfo, high_water_bytes: int) -> None:
        self._info = info
        self._high_water = high_water_bytes
        self._peer: MemoryStream = self
        self._rx = bytearray()
        self._rx_waiter: asyncio.Future[None] | None = None
        self._writer_waiters: list[asyncio.Future[None]] = []
        self._closed = False
        self._eof = False
        self.bytes_in = 0
        self.bytes_out = 0

    @property
    def info(self) -> ConnectionInfo:
        return self._info

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def buffered(self) -> int:
        """Bytes received and not yet read."""
        return len(self._rx)

    async def read(self, max_bytes: int = 4096) -> bytes:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        while not self._rx:
            if self._closed or self._eof:
                return b""
            self._rx_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._rx_waiter
            finally:
                self._rx_waiter = None
        if self._closed:
            return b""
        data = bytes(self._rx[:max_bytes])
        del self._rx[:max_bytes]
        self.bytes_in += len(data)
        if len(self._rx) <= self._high_water:
            self._peer._wake_writers()
        return data

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        peer = self._peer
        if self._closed or peer._closed:
            raise StreamClosed(f"{self._info}: connection closed")
        peer._rx += data
        self.bytes_out += len(data)
        _wake(peer._rx_waiter)
        while len(peer._rx) > self._high_water and not (self._closed or peer._closed):
            waiter = asyncio.get_running_loop().create_future()
            self._writer_waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._writer_waiters:
                    self._writer_waiters.remove(waiter)
        if self._closed or peer._closed:
            raise StreamClosed(f"{self._info}: connection closed while sending")
        await asyncio.sleep(0)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _wake(self._rx_waiter)
        self._wake_writers()
        peer = self._peer
        peer._eof = True
        _wake(peer._rx_waiter)
        peer._wake_writers()

    async def aclose(self) -> None:
        self.close()

    def _wake_writers(self) -> None:
        waiters, self._writer_waiters = self._writer_waiters, []
        for waiter in waiters:
            _wake(waiter)


class LoopbackPair:
    """Two connected ``MemoryStream``s: what ``meter`` writes, ``gateway`` reads, and back."""

    __slots__ = ("gateway", "meter")

    def __init__(
        self,
        *,
        high_water_bytes: int = 64 * 1024,
        meter_info: ConnectionInfo | None = None,
        gateway_info: ConnectionInfo | None = None,
    ) -> None:
        if high_water_bytes <= 0:
            raise ValueError("high_water_bytes must be positive")
        # Each side's info describes its peer, as ConnectionInfo does for a socket.
        self.gateway = MemoryStream(gateway_info or _info("127.0.0.1", 50000), high_water_bytes)
        self.meter = MemoryStream(meter_info or _info("127.0.0.1", 8899), high_water_bytes)
        self.gateway._peer = self.meter
        self.meter._peer = self.gateway

    def close(self) -> None:
        self.meter.close()
        self.gateway.close()

    async def __aenter__(self) -> LoopbackPair:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
