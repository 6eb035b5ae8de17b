"""Meter-side peers built on the codecs, for tests, demos and load benchmarks.

Simulators import only ``codec``, ``transport`` and ``domain``. Each meter serves any
``ByteStream`` (``serve``) — a ``transport.fakes.LoopbackPair`` end in unit tests — or dials
a gateway over TCP (``connect``), using ``open_stream`` below. ``faults`` wraps a meter's
replies in protocol-neutral misbehaviour (slow, dropped, garbage, split, disconnect).
"""

from __future__ import annotations

import asyncio
import contextlib

from ivy_gateway.domain.meter import ConnectionInfo
from ivy_gateway.transport import StreamClosed
from ivy_gateway.transport.stream import next_connection_id

__all__ = ["ClientStream", "open_stream"]


class ClientStream:
    """A client TCP connection as a ``ByteStream`` (the server side has ``SocketStream``)."""

    __slots__ = ("_closed", "_info", "_reader", "_writer", "bytes_in", "bytes_out")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        peer = writer.get_extra_info("peername")
        host, port = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        self._info = ConnectionInfo(next_connection_id(), host, port)
        self._closed = False
        self.bytes_in = 0
        self.bytes_out = 0

    @property
    def info(self) -> ConnectionInfo:
        return self._info

    @property
    def closed(self) -> bool:
        return self._closed or self._writer.is_closing()

    async def read(self, max_bytes: int = 4096) -> bytes:
        if self._closed:
            return b""
        try:
            data = await self._reader.read(max_bytes)
        except ConnectionError:
            return b""  # a reset is an end of stream to a meter
        self.bytes_in += len(data)
        return data

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            raise StreamClosed(f"{self._info}: connection closed")
        self._writer.write(bytes(data))
        self.bytes_out += len(data)
        try:
            await self._writer.drain()
        except ConnectionError as exc:
            raise StreamClosed(f"{self._info}: {exc}") from exc

    def close(self) -> None:
        self._closed = True
        self._writer.close()

    async def aclose(self) -> None:
        self.close()
        # The peer may already have reset the connection: closing is still complete.
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()


async def open_stream(host: str, port: int) -> ClientStream:
    """Dial ``host:port`` (a gateway's meter port) and return the connection."""
    reader, writer = await asyncio.open_connection(host, port)
    return ClientStream(reader, writer)
