"""A new connection's first bytes decide its protocol for the life of the connection.

``Dispatcher.on_connection`` is the transport server's handler: it reads until
``codec.sniff`` is sure (DL/T 645, wrapper, bare APDU) or gives up, then hands the stream
and the bytes read so far to the matching session. A DL/T 645 meter may stay silent until
asked, so silence until ``identify_timeout_s`` also goes to the DL/T 645 session, which
then asks for the address with a read-address (0x13) to the wildcard address.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from ivy_gateway.codec.sniff import ProtocolGuess, sniff
from ivy_gateway.domain.errors import MeterError
from ivy_gateway.observability import log_context
from ivy_gateway.transport import ByteStream

from .context import SessionContext

__all__ = ["Dispatcher", "SessionFactory"]

log = logging.getLogger(__name__)


class RunnableSession(Protocol):
    async def run(self) -> None: ...


#: Builds a session from the stream, the shared context and the bytes already read.
SessionFactory = Callable[[ByteStream, SessionContext, bytes], RunnableSession]


class Dispatcher:
    def __init__(
        self,
        context: SessionContext,
        factories: Mapping[ProtocolGuess, SessionFactory],
        *,
        silent_guess: ProtocolGuess = ProtocolGuess.DLT645,
    ) -> None:
        self._context = context
        self._factories = dict(factories)
        self._silent_guess = silent_guess
        self.connections_by_protocol: dict[str, int] = {}

    async def on_connection(self, stream: ByteStream) -> None:
        info = stream.info
        with log_context(conn=info.connection_id, peer=f"{info.peer_host}:{info.peer_port}"):
            try:
                await self._serve(stream)
            except MeterError as exc:  # the meter went away or broke the protocol
                log.info("connection ended: %s", exc)
            finally:
                await stream.aclose()

    async def _serve(self, stream: ByteStream) -> None:
        timings = self._context.timings
        first, guess, eof = await self._sniff(stream, timings.identify_timeout_s)
        if guess is ProtocolGuess.NEED_MORE and not first and not eof:
            guess = self._silent_guess  # silent meter: let the session ask who it is
        factory = self._factories.get(guess)
        if factory is None:
            if guess is ProtocolGuess.NEED_MORE and eof:
                reason = f"connection closed after {len(first)} unrecognised bytes"
            elif guess is ProtocolGuess.NEED_MORE:
                reason = f"no protocol recognised in {len(first)} bytes before the timeout"
            else:
                reason = f"no protocol recognised in the first {len(first)} bytes"
            if first:
                self._context.invalid_traffic(stream.info, reason, None, first)
            return
        self.connections_by_protocol[guess.name] = (
            self.connections_by_protocol.get(guess.name, 0) + 1
        )
        await factory(stream, self._context, first).run()

    async def _sniff(
        self, stream: ByteStream, timeout_s: float
    ) -> tuple[bytes, ProtocolGuess, bool]:
        """Bytes read, the guess, and whether the peer closed before a decision."""
        limit = self._context.timings.unknown_traffic_limit_bytes
        received = bytearray()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return bytes(received), ProtocolGuess.NEED_MORE, False
            try:
                chunk = await _wait(stream.read(limit - len(received)), remaining)
            except TimeoutError:
                return bytes(received), ProtocolGuess.NEED_MORE, False
            if not chunk:
                return bytes(received), ProtocolGuess.NEED_MORE, True
            received += chunk
            guess = sniff(bytes(received), limit=limit)
            if guess.is_final:
                return bytes(received), guess, False


async def _wait(awaitable: Awaitable[bytes], timeout_s: float) -> bytes:
    return await asyncio.wait_for(awaitable, timeout_s)
