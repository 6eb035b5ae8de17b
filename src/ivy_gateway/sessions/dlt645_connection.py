"""The wire half of a DL/T 645 session: bytes → frames, identification, one request at a time.

```
run() of the session (the connection's handler task — the only task a session has)
  │ first bytes → FrameDecoder
  │ identify(): address of the first meter→gateway frame; if none arrives within
  │             identify_timeout_s (or at once when the dispatcher already waited in
  │             silence), ask: 0x13 to AA AA AA AA AA AA, with retries
  │ serve_frames(): chunk → decoder → frame → resolves the one pending future
  └ end(): the pending call fails with StreamClosed (a MeterOffline)

exchange() in callers' tasks (poller, commands), lock held:
  send request → await the future (request_timeout_s, then `retries` more attempts)
```

Pairing replies with requests (reference §5.1): an error reply does not echo the DI, so
there is exactly one outstanding request per meter (an ``asyncio.Lock`` and one future). A
reply must come from the meter's address, in the meter→gateway direction, with the
request's function, and — for read replies — the requested DI; anything else is dropped
and counted (``frames_dropped``): a late reply to a timed-out request, or a frame from
another address, never satisfies the wrong request.

Garbage (bytes skipped while hunting for ``68``, and rejected frame candidates) is counted;
past ``unknown_traffic_limit_bytes`` it is reported once per connection as
``invalid_traffic``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal, TypeVar

from ivy_gateway.codec.dlt645 import (
    NEED_DATA,
    WILDCARD,
    AckReply,
    Address,
    DataId,
    ErrorReply,
    Frame,
    FrameDecoder,
    Function,
    Message,
    ReadAddressRequest,
    ReadFollowUpReply,
    ReadFollowUpRequest,
    ReadReply,
    ReadRequest,
    RejectedFrame,
    decode_message,
    decode_reading,
    encode_message,
)
from ivy_gateway.codec.dlt645 import Reading as DltReading
from ivy_gateway.codec.errors import DecodeError
from ivy_gateway.domain.errors import (
    MeterOffline,
    MeterRejected,
    MeterTimeout,
    ProtocolViolation,
)
from ivy_gateway.domain.meter import ConnectionInfo, MeterId
from ivy_gateway.transport import ByteStream, StreamClosed

from .context import SessionContext

__all__ = ["Dlt645Connection"]

log = logging.getLogger("ivy_gateway.sessions.dlt645")

M = TypeVar("M")

_READ_CHUNK = 4096
#: More follow-up parts than any catalogued DI needs (200 data bytes a frame).
_MAX_FOLLOW_UPS = 64
#: Traffic before identification kept for the capture (it cannot know the meter yet).
_BACKLOG_BYTES = 2048
_READ_ADDRESS = encode_message(WILDCARD, ReadAddressRequest())


class Dlt645Connection:
    """Frames in, requests out, for one connection; ``Dlt645Session`` adds the meter API."""

    __slots__ = (
        "_address",
        "_backlog",
        "_close_reason",
        "_context",
        "_decoder",
        "_expected",
        "_first",
        "_invalid_reported",
        "_lock",
        "_meter",
        "_pending",
        "_stream",
        "frames_dropped",
    )

    def __init__(self, stream: ByteStream, context: SessionContext, first: bytes) -> None:
        self._stream = stream
        self._context = context
        self._first = first
        self._decoder = FrameDecoder(context.timings.max_buffer_bytes)
        self._lock = asyncio.Lock()
        self._pending: asyncio.Future[Frame] | None = None
        #: What the pending future accepts: (function, DI of a read) or None for any reply.
        self._expected: tuple[Function, DataId | None] | None = None
        self._address: Address | None = None
        self._meter: MeterId | None = None
        self._close_reason: str | None = None
        self._invalid_reported = False
        self._backlog: list[tuple[Literal["rx", "tx"], bytes]] | None = (
            [] if context.capture is not None else None
        )
        #: Valid frames not accepted: wrong direction or address, unsolicited, stale.
        self.frames_dropped = 0

    @property
    def connection(self) -> ConnectionInfo:
        return self._stream.info

    @property
    def garbage_bytes(self) -> int:
        """Bytes the decoder threw away: skipped garbage plus rejected frame starts."""
        return self._decoder.bytes_skipped + self._decoder.frames_rejected

    def close(self, reason: str) -> None:
        """Close the connection (idempotent); the pending call fails with ``MeterOffline``."""
        if self._close_reason is not None:
            return
        log.info("closing meter session: %s", reason)
        self._end(reason)

    def _end(self, reason: str) -> None:
        if self._close_reason is None:
            self._close_reason = reason
        pending = self._pending
        if pending is not None and not pending.done():
            pending.set_exception(StreamClosed(f"{self.connection}: {reason}"))
        self._stream.close()

    # -- identification and the read loop (in run()'s task) ------------------------------

    async def _identify(self) -> Address | None:
        timings = self._context.timings
        future = asyncio.get_running_loop().create_future()
        self._pending, self._expected = future, None
        try:
            first, self._first = self._first, b""
            if first:
                self._on_bytes(first)
                if not future.done():  # the meter spoke, but no whole reply yet: wait
                    await self._pump(future, timings.identify_timeout_s)
            attempts = 0
            while not future.done() and attempts <= timings.retries:
                attempts += 1
                await self._send(_READ_ADDRESS)
                await self._pump(future, timings.request_timeout_s)
            return future.result().address if future.done() else None
        finally:
            self._pending = self._expected = None

    async def _pump(self, future: asyncio.Future[Frame], timeout_s: float) -> None:
        """Read in this task until ``future`` is resolved or ``timeout_s`` passes."""
        try:
            async with asyncio.timeout(timeout_s):
                while not future.done():
                    chunk = await self._stream.read(_READ_CHUNK)
                    if not chunk:
                        raise StreamClosed("the connection closed before the meter identified")
                    self._on_bytes(chunk)
        except TimeoutError:
            return

    def _identified(self, address: Address) -> MeterId:
        """From now on only frames from ``address`` count; flush the capture backlog."""
        meter = MeterId(str(address))
        self._address, self._meter = address, meter
        backlog, self._backlog = self._backlog, None
        capture = self._context.capture
        if backlog and capture is not None and capture.is_enabled(meter):
            for direction, data in backlog:
                capture.record(meter, direction, data, self.connection)
        return meter

    async def _serve_frames(self) -> None:
        """Read until the connection ends, resolving pending requests as replies arrive."""
        while chunk := await self._stream.read(_READ_CHUNK):
            self._on_bytes(chunk)

    # -- bytes and frames -----------------------------------------------------------------

    def _on_bytes(self, chunk: bytes) -> None:
        self._record("rx", chunk)
        decoder = self._decoder
        decoder.feed(chunk)
        while (event := decoder.next_event()) is not NEED_DATA:
            if isinstance(event, RejectedFrame):
                log.debug("rejected frame candidate: %s", event.reason)
            else:
                self._on_frame(event)
        limit = self._context.timings.unknown_traffic_limit_bytes
        if not self._invalid_reported and self.garbage_bytes > limit:
            self._invalid_reported = True  # once per connection: a noisy line is one problem
            reason = f"{self.garbage_bytes} bytes of invalid DL/T 645 traffic"
            self._context.invalid_traffic(self.connection, reason, self._meter, chunk)

    def _on_frame(self, frame: Frame) -> None:
        if self._accepts(frame):
            assert self._pending is not None  # _accepts checked it
            self._pending.set_result(frame)
            return
        self.frames_dropped += 1
        log.debug("dropped frame C=%02X from %s", frame.control.to_byte(), frame.address)

    def _accepts(self, frame: Frame) -> bool:
        control = frame.control
        if not control.is_reply:
            return False
        if self._address is None:
            if frame.address.is_wildcard or frame.address.is_broadcast:
                return False  # not a meter's own address: cannot identify anyone
        elif frame.address != self._address:
            return False
        pending = self._pending
        if pending is None or pending.done():
            return False
        expected = self._expected
        if expected is None:
            return True  # identifying: any reply names the meter
        function, di = expected
        if control.function != function:
            return False
        return di is None or control.abnormal or frame.data[:4] == di.wire

    def _record(self, direction: Literal["rx", "tx"], data: bytes) -> None:
        capture = self._context.capture
        if capture is None:
            return
        meter = self._meter
        if meter is None:
            backlog = self._backlog
            if backlog is not None and sum(len(d) for _, d in backlog) < _BACKLOG_BYTES:
                backlog.append((direction, data))
        elif capture.is_enabled(meter):
            capture.record(meter, direction, data, self.connection)

    async def _send(self, wire: bytes) -> None:
        self._record("tx", wire)
        await self._stream.write(wire)

    # -- one request at a time ------------------------------------------------------------

    async def _exchange(
        self, message: Message, di: DataId | None = None, address: Address | None = None
    ) -> Frame:
        """Send ``message`` and return the matching reply frame; the lock must be held."""
        if self._close_reason is not None:
            raise MeterOffline(f"meter session closed: {self._close_reason}")
        function = message.control().function
        assert isinstance(function, Function)  # every request has a known function
        timings = self._context.timings
        address = address or self._address
        assert address is not None  # MeterLink methods run only on identified sessions
        wire = encode_message(address, message, preamble_len=timings.dlt645_preamble_len)
        loop = asyncio.get_running_loop()
        for attempt in range(1, timings.retries + 2):
            future: asyncio.Future[Frame] = loop.create_future()
            self._pending, self._expected = future, (function, di)
            try:
                await self._send(wire)
                async with asyncio.timeout(timings.request_timeout_s):
                    return await future
            except TimeoutError:
                log.debug("no reply to %s (attempt %d)", function.name, attempt)
            finally:
                self._pending = self._expected = None
                if not future.done():
                    future.cancel()
        raise MeterTimeout(
            f"no reply to {function.name.lower()} after {timings.retries + 1} attempts"
        )

    @staticmethod
    def _decode(frame: Frame, kind: type[M]) -> M:
        """The reply as ``kind``; ``MeterRejected`` for an error reply (§6)."""
        try:
            message = decode_message(frame)
        except DecodeError as exc:
            raise ProtocolViolation(f"unreadable reply: {exc}") from exc
        if isinstance(message, ErrorReply):
            flags = message.error
            raise MeterRejected(
                f"meter refused {message.function.name.lower()}: {', '.join(flags.names())}",
                code=int(flags),
                detail={"flags": flags.names()},
            )
        # The frame matched the request's function and direction, which fixes its layout.
        assert isinstance(message, kind), f"{kind.__name__} expected, got {message!r}"
        return message

    async def _command(self, message: Message) -> None:
        """A request whose normal reply is an empty acknowledgement (write, relay)."""
        async with self._lock:
            self._decode(await self._exchange(message), AckReply)

    async def _read_raw(self, di: DataId) -> bytes:
        """The value bytes of ``di``, follow-up parts (0x12, §5.2) joined."""
        async with self._lock:
            reply = self._decode(await self._exchange(ReadRequest(di), di), ReadReply)
            value, more = bytearray(reply.value), reply.follow_up
            for seq in range(1, _MAX_FOLLOW_UPS + 1):
                if not more:
                    return bytes(value)
                frame = await self._exchange(ReadFollowUpRequest(di, seq), di)
                part = self._decode(frame, ReadFollowUpReply)
                value += part.value
                more = part.follow_up
        raise ProtocolViolation(f"{di}: more than {_MAX_FOLLOW_UPS} follow-up frames")

    async def _read_value(self, di: DataId) -> DltReading:
        raw = await self._read_raw(di)
        try:
            return decode_reading(di, raw)
        except DecodeError as exc:
            raise ProtocolViolation(f"{di}: {exc}") from exc
