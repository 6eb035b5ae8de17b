"""What a listener accepts: ``ServerLimits`` and the per-IP limiters behind ``PeerLimiter``.

The limiters are kept behind a two-method Protocol so a cluster can swap the in-memory
ones for counters shared through Redis without touching the server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ivy_gateway.domain.errors import ConfigError

__all__ = ["IpConnectionCap", "IpRateLimit", "PeerLimiter", "ServerLimits"]


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Every limit the listener enforces; ``None`` switches an optional limit off.

    Per-IP defaults are generous on purpose: 4G carriers put many meters behind one
    carrier-grade NAT address, so one IP is often hundreds of honest meters.
    """

    max_connections: int = 20_000
    max_connections_per_ip: int | None = 1_000
    #: New connections one IP may open per ``rate_window_s``; beyond it the IP is refused
    #: for ``rate_block_s``.
    max_new_per_ip: int | None = 200
    rate_window_s: float = 10.0
    rate_block_s: float = 60.0
    #: No byte received for this long closes the connection.
    idle_timeout_s: float | None = 300.0
    #: Received bytes the handler has not read yet; past it the socket stops being read,
    #: so a flooding peer meets TCP flow control instead of growing our memory.
    max_buffered_bytes: int = 64 * 1024
    #: ``ByteStream.write`` waits while more than this is queued for the kernel.
    write_high_water_bytes: int = 64 * 1024
    #: Size of one ``recv``; the buffer is shared by all connections of a server.
    recv_chunk_bytes: int = 16 * 1024
    accept_backlog: int = 1024
    #: On stop, handlers get this long to finish after their reads return EOF.
    shutdown_grace_s: float = 5.0
    #: A closed connection whose peer does not take the queued output is aborted after this.
    linger_s: float = 2.0

    def __post_init__(self) -> None:
        positive: dict[str, float | None] = {
            "max_connections": self.max_connections,
            "max_connections_per_ip": self.max_connections_per_ip,
            "max_new_per_ip": self.max_new_per_ip,
            "rate_window_s": self.rate_window_s,
            "rate_block_s": self.rate_block_s,
            "idle_timeout_s": self.idle_timeout_s,
            "max_buffered_bytes": self.max_buffered_bytes,
            "write_high_water_bytes": self.write_high_water_bytes,
            "recv_chunk_bytes": self.recv_chunk_bytes,
            "accept_backlog": self.accept_backlog,
            "linger_s": self.linger_s,
        }
        for name, value in positive.items():
            if value is not None and value <= 0:
                raise ConfigError(f"ServerLimits.{name} must be positive, got {value!r}")
        if self.shutdown_grace_s < 0:
            raise ConfigError("ServerLimits.shutdown_grace_s must not be negative")


class PeerLimiter(Protocol):
    """Admission by peer IP: ``allow`` takes a slot (or refuses), ``release`` gives it back."""

    def allow(self, ip: str) -> bool: ...

    def release(self, ip: str) -> None: ...


class IpConnectionCap:
    """At most ``max_per_ip`` concurrent connections per IP."""

    __slots__ = ("_max", "_open")

    def __init__(self, max_per_ip: int) -> None:
        if max_per_ip <= 0:
            raise ValueError("max_per_ip must be positive")
        self._max = max_per_ip
        self._open: dict[str, int] = {}

    def allow(self, ip: str) -> bool:
        n = self._open.get(ip, 0)
        if n >= self._max:
            return False
        self._open[ip] = n + 1
        return True

    def release(self, ip: str) -> None:
        n = self._open.get(ip, 0) - 1
        if n > 0:
            self._open[ip] = n
        else:
            # Dropping the key keeps the dict as small as the set of IPs connected now.
            self._open.pop(ip, None)

    def count(self, ip: str) -> int:
        return self._open.get(ip, 0)


class _Window:
    __slots__ = ("blocked_until", "count", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.count = 1
        self.blocked_until = 0.0


class IpRateLimit:
    """At most ``max_new`` new connections per IP per ``window_s`` (fixed window).

    The attempt that exceeds it blocks the IP for ``block_s``; attempts while blocked are
    refused without extending the block, and the first one after it starts a new window.
    ``release`` does nothing: the limit counts attempts, not open connections.
    """

    __slots__ = ("_block_s", "_clock", "_last_prune", "_max", "_window_s", "_windows")

    def __init__(
        self,
        max_new: int,
        window_s: float,
        block_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_new <= 0 or window_s <= 0 or block_s <= 0:
            raise ValueError("max_new, window_s and block_s must be positive")
        self._max = max_new
        self._window_s = window_s
        self._block_s = block_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._last_prune = clock()

    def allow(self, ip: str) -> bool:
        now = self._clock()
        if now - self._last_prune >= self._window_s:
            self._prune(now)
        w = self._windows.get(ip)
        if w is None:
            self._windows[ip] = _Window(now)
            return True
        if w.blocked_until:
            if now < w.blocked_until:
                return False
            self._windows[ip] = _Window(now)
            return True
        if now - w.start >= self._window_s:
            self._windows[ip] = _Window(now)
            return True
        w.count += 1
        if w.count <= self._max:
            return True
        w.blocked_until = now + self._block_s
        return False

    def release(self, ip: str) -> None:
        return None

    def blocked(self, ip: str) -> bool:
        w = self._windows.get(ip)
        return w is not None and self._clock() < w.blocked_until

    def __len__(self) -> int:
        return len(self._windows)

    def _prune(self, now: float) -> None:
        # Once per window, so the table holds only IPs seen recently: O(1) amortised.
        self._last_prune = now
        expired = [
            ip
            for ip, w in self._windows.items()
            if (now >= w.blocked_until if w.blocked_until else now - w.start >= self._window_s)
        ]
        for ip in expired:
            del self._windows[ip]
