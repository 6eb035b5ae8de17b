"""Streaming frame decoder: bytes in any chunking → frames in order (reference §1 stream rules).

Sans-IO, in the style of h11: the session calls ``feed(chunk)`` with whatever a TCP read
returned, then ``next_event()`` until it returns ``NEED_DATA``::

    decoder.feed(chunk)
    while (event := decoder.next_event()) is not NEED_DATA:
        if isinstance(event, RejectedFrame): ...   # log/capture event.raw
        else: ...                                   # a Frame

Resynchronisation (§1 rules 1-3):

* bytes before a ``68`` are dropped at once — an ``FE`` run right before an accepted frame
  is its preamble, everything else counts in ``bytes_skipped``;
* a ``68`` whose byte 7 is not ``68`` is not a frame start: one byte is dropped (garbage);
* a candidate with both start bytes but a bad end byte, checksum or address is reported
  as a ``RejectedFrame`` and only its first byte is dropped, because the next real frame
  may begin inside it.

Memory is bounded: once ``next_event`` has returned ``NEED_DATA`` the buffer holds less
than one maximum frame (267 bytes); ``feed`` refuses (``BufferOverflowError``) a chunk
that would push the unconsumed bytes past ``max_buffer``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..buffer import ReceiveBuffer
from .address import Address
from .frame import MAX_DATA_LEN, MIN_FRAME_LEN, START, Frame, frame_at, frame_error

__all__ = ["NEED_DATA", "FrameDecoder", "NeedData", "RejectedFrame"]


class NeedData(enum.Enum):
    """The decoder needs more bytes before it can say anything (not an error)."""

    NEED_DATA = "need_data"


NEED_DATA = NeedData.NEED_DATA

#: The largest frame (L = 255); a buffer smaller than this could never hold one.
_MAX_FRAME = MIN_FRAME_LEN + MAX_DATA_LEN
#: Bound on the per-decoder address cache; a socket normally carries one meter.
_ADDRESS_CACHE = 16


@dataclass(frozen=True, slots=True)
class RejectedFrame:
    """A candidate frame (``68`` … ``68`` header, full length) that failed validation."""

    raw: bytes
    reason: str


class FrameDecoder:
    """Turns a byte stream into ``Frame``s; counts what it had to throw away."""

    __slots__ = (
        "_addresses",
        "_buffer",
        "_fe_run",
        "bytes_skipped",
        "frames_decoded",
        "frames_rejected",
    )

    def __init__(self, max_buffer: int = 65536) -> None:
        if max_buffer < _MAX_FRAME:
            raise ValueError(f"max_buffer must hold one maximal frame ({_MAX_FRAME} bytes)")
        self._buffer = ReceiveBuffer(max_buffer)
        #: ``FE`` bytes dropped since the last non-``FE`` byte: the next frame's preamble.
        self._fe_run = 0
        #: Address objects seen on this stream (one meter per socket: usually one entry).
        self._addresses: dict[bytes, Address] = {}
        self.frames_decoded = 0
        self.frames_rejected = 0
        #: Garbage bytes dropped while hunting for a frame start (preambles excluded).
        self.bytes_skipped = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes; ``BufferOverflowError`` (nothing appended) past the cap."""
        self._buffer.feed(data)

    @property
    def pending(self) -> bytes:
        """The buffered bytes not yet decoded (a partial frame once drained)."""
        return self._buffer.peek()

    def next_event(self) -> Frame | RejectedFrame | NeedData:
        """The next frame or rejected candidate, or ``NEED_DATA``."""
        buf = self._buffer
        while True:
            pos = buf.find(START)
            if pos < 0:
                if buf:
                    self._drop(len(buf))
                return NEED_DATA
            if pos:
                self._drop(pos)
            # One copy of at most one maximal frame: cheaper than indexing the buffer
            # byte by byte through Python calls (benchmarks/bench_dlt645.py).
            head = buf.peek(_MAX_FRAME)
            size = len(head)
            if size >= 8 and head[7] != START:
                self._drop(1)  # a stray 68, not a header: garbage (rule 1)
                continue
            if size < 10:
                return NEED_DATA
            total = MIN_FRAME_LEN + head[9]
            if size < total:
                return NEED_DATA
            problem = frame_error(head, 0)
            if problem is not None:
                # Rule 3: drop only this 68; the real next frame may start inside it.
                buf.skip(1)
                self.frames_rejected += 1
                self.bytes_skipped += self._fe_run
                self._fe_run = 0
                return RejectedFrame(head[:total], problem[0])
            buf.skip(total)
            frame = frame_at(head, 0, self._fe_run, self._addresses.get(head[1:7]))
            if len(self._addresses) < _ADDRESS_CACHE:
                self._addresses[frame.address.wire] = frame.address
            self._fe_run = 0
            self.frames_decoded += 1
            return frame

    def _drop(self, count: int) -> None:
        skipped = self._buffer.take(count)
        kept = skipped.rstrip(b"\xfe")
        if kept:
            self.bytes_skipped += self._fe_run + len(kept)
            self._fe_run = count - len(kept)
        else:
            self._fe_run += count
