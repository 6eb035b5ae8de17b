"""A bounded, rewindable receive buffer shared by the stream decoders.

Bytes are appended at the end and consumed from the front. Consuming only moves an offset;
the storage is compacted when the consumed prefix becomes larger than what is left, so a
stream of small reads never rebuilds the whole buffer per chunk (amortised O(1) per byte).

The buffer has a hard cap: ``feed`` refuses data that would make the *unconsumed* part
larger than ``max_size`` and raises ``BufferOverflowError``; nothing is appended in that
case, so the caller decides whether to drop the connection or discard the backlog.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from .errors import BufferOverflowError, TruncatedError

__all__ = ["ReceiveBuffer"]


class ReceiveBuffer:
    __slots__ = ("_data", "_start", "max_size")

    def __init__(self, max_size: int = 65536) -> None:
        if max_size <= 0:
            raise ValueError("max_size must be positive")
        self._data = bytearray()
        self._start = 0
        self.max_size = max_size

    def __len__(self) -> int:
        return len(self._data) - self._start

    def __bool__(self) -> bool:
        return len(self._data) > self._start

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``; raise ``BufferOverflowError`` (appending nothing) past the cap."""
        if len(self) + len(data) > self.max_size:
            raise BufferOverflowError(
                f"receive buffer would hold {len(self) + len(data)} bytes, cap is {self.max_size}"
            )
        self._data += data

    def view(self) -> memoryview:
        """The unconsumed bytes, without copying. Do not keep it across ``feed``/``skip``."""
        return memoryview(self._data)[self._start :]

    def peek(self, size: int | None = None) -> bytes:
        """A copy of the first ``size`` unconsumed bytes (all of them when ``size`` is None)."""
        end = len(self._data) if size is None else self._start + size
        return bytes(self._data[self._start : end])

    def __getitem__(self, index: int) -> int:
        """The unconsumed byte at ``index`` (0 = oldest); IndexError past the end."""
        if index < 0 or index >= len(self):
            raise IndexError(index)
        return self._data[self._start + index]

    def find(self, sub: bytes | int, start: int = 0) -> int:
        """Index (relative to the unconsumed part) of ``sub`` at or after ``start``, or -1."""
        pos = self._data.find(sub, self._start + start)
        return pos if pos < 0 else pos - self._start

    def startswith(self, prefix: bytes | tuple[bytes, ...], start: int = 0) -> bool:
        """Whether the unconsumed bytes, from ``start`` on, begin with ``prefix`` (or one of
        them): a header check without copying."""
        return self._data.startswith(prefix, self._start + start)

    def unpack_from(self, layout: struct.Struct, offset: int = 0) -> tuple[Any, ...]:
        """``layout`` unpacked at ``offset`` without copying; ``TruncatedError`` when fewer
        than ``layout.size`` bytes are buffered there."""
        if offset < 0 or len(self) - offset < layout.size:
            raise TruncatedError(f"{layout.size} bytes needed", offset=offset)
        return layout.unpack_from(self._data, self._start + offset)

    def search(self, pattern: re.Pattern[bytes], start: int = 0) -> int:
        """Index (relative to the unconsumed part) where ``pattern`` first matches at or after
        ``start``, or -1. ``\\Z`` in the pattern anchors at the end of the buffered bytes."""
        match = pattern.search(self._data, self._start + start)
        return -1 if match is None else match.start() - self._start

    def take(self, size: int) -> bytes:
        """Remove and return the first ``size`` bytes (fewer if fewer are buffered)."""
        out = bytes(self._data[self._start : self._start + size])
        self.skip(size)
        return out

    def skip(self, size: int) -> None:
        """Drop the first ``size`` unconsumed bytes (all of them if fewer are buffered)."""
        self._start = min(self._start + size, len(self._data))
        if self._start == len(self._data):
            self._data.clear()
            self._start = 0
        elif self._start > len(self._data) - self._start:
            del self._data[: self._start]
            self._start = 0

    def clear(self) -> None:
        self._data.clear()
        self._start = 0
