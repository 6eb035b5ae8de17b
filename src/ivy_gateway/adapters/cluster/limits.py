"""Per-IP admission limits counted across the cluster (``transport.limits.PeerLimiter``).

The listener calls ``allow``/``release`` synchronously on every accept, so they never wait
for Redis: each decides on the cluster-wide count as of the last ``sync`` (every half
heartbeat) plus what this instance did since. The price is a little overshoot — at most
what the other instances admit in one sync period — never a stalled accept loop. Redis
down: ``sync`` fails, the other instances' counts age out, and the limits become local
ones (fail open: a meter is refused only by a limit someone can explain).

Keys::

    {ns}:ipconn:{ip}:{gateway id}   this instance's open connections from ip, PX 3 beats
    {ns}:iprate:{ip}:{window no.}   new connections from ip in that window, all instances
    {ns}:ipblock:{ip}               present while ip is blocked for exceeding the rate
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from redis.asyncio import Redis

__all__ = ["SharedIpCap", "SharedIpRate"]


class SharedIpCap:
    """At most ``max_per_ip`` concurrent connections per IP over all instances."""

    def __init__(self, namespace: str, gateway_id: str, max_per_ip: int, *, ttl_s: float) -> None:
        if max_per_ip <= 0:
            raise ValueError("max_per_ip must be positive")
        self._ns = namespace
        self._gateway_id = gateway_id
        self._max = max_per_ip
        self._ttl_ms = int(ttl_s * 1000)
        self._local: dict[str, int] = {}
        self._others: dict[str, int] = {}  # other instances' counts, as of the last sync
        self._dirty: set[str] = set()

    def allow(self, ip: str) -> bool:
        n = self._local.get(ip, 0)
        if n + self._others.get(ip, 0) >= self._max:
            return False
        self._local[ip] = n + 1
        self._dirty.add(ip)
        return True

    def release(self, ip: str) -> None:
        n = self._local.get(ip, 0) - 1
        if n > 0:
            self._local[ip] = n
        else:
            self._local.pop(ip, None)
        self._dirty.add(ip)

    def count(self, ip: str) -> int:
        """Cluster-wide open connections from ``ip`` as this instance sees them."""
        return self._local.get(ip, 0) + self._others.get(ip, 0)

    async def sync(self, client: Redis, members: Sequence[str]) -> None:
        ips = sorted(set(self._local) | self._dirty | set(self._others))
        others = [m for m in members if m != self._gateway_id]
        pipe = client.pipeline(transaction=False)
        for ip in ips:
            key = f"{self._ns}:ipconn:{ip}:{self._gateway_id}"
            n = self._local.get(ip, 0)
            if n:
                pipe.set(key, n, px=self._ttl_ms)
            else:
                pipe.delete(key)
            if others:
                pipe.mget([f"{self._ns}:ipconn:{ip}:{m}" for m in others])
        replies = await pipe.execute()
        self._dirty.clear()
        fresh: dict[str, int] = {}
        if others:
            for ip, values in zip(ips, replies[1::2], strict=True):
                total = sum(int(v) for v in values if v is not None)
                if total:
                    fresh[ip] = total
        self._others = fresh


class SharedIpRate:
    """At most ``max_new`` new connections per IP per ``window_s`` over all instances.

    Fixed windows numbered from the Unix epoch, so every instance counts the same window.
    The attempt that exceeds the limit blocks the IP for ``block_s`` on every instance.
    """

    def __init__(
        self,
        namespace: str,
        max_new: int,
        window_s: float,
        block_s: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_new <= 0 or window_s <= 0 or block_s <= 0:
            raise ValueError("max_new, window_s and block_s must be positive")
        self._ns = namespace
        self._max = max_new
        self._window_s = window_s
        self._block_s = block_s
        self._clock = clock
        self._unsynced: dict[tuple[str, int], int] = {}  # (ip, window) → not yet in Redis
        self._counted: dict[tuple[str, int], int] = {}  # cluster total per (ip, window)
        self._blocked: dict[str, float] = {}  # ip → blocked until (clock)
        self._new_blocks: set[str] = set()

    def _window(self, now: float) -> int:
        return int(now // self._window_s)

    def allow(self, ip: str) -> bool:
        now = self._clock()
        until = self._blocked.get(ip)
        if until is not None:
            if now < until:
                return False
            del self._blocked[ip]
        slot = (ip, self._window(now))
        n = self._unsynced.get(slot, 0) + 1
        self._unsynced[slot] = n
        if self._counted.get(slot, 0) + n <= self._max:
            return True
        self._blocked[ip] = now + self._block_s
        self._new_blocks.add(ip)
        return False

    def release(self, ip: str) -> None:
        return None  # the limit counts attempts, not open connections

    def blocked(self, ip: str) -> bool:
        return self._clock() < self._blocked.get(ip, 0.0)

    async def sync(self, client: Redis, members: Sequence[str]) -> None:
        now = self._clock()
        window = self._window(now)
        pending, self._unsynced = self._unsynced, {}
        blocks, self._new_blocks = self._new_blocks, set()
        ttl_ms = int(self._window_s * 2000)
        watched = sorted({ip for ip, _ in pending} | {ip for ip, _ in self._counted})
        pipe = client.pipeline(transaction=False)
        for (ip, old), n in pending.items():
            if old != window:  # attempts of a window that has ended: count them there
                pipe.incrby(f"{self._ns}:iprate:{ip}:{old}", n)
                pipe.pexpire(f"{self._ns}:iprate:{ip}:{old}", ttl_ms)
        skip = len(pipe.command_stack)
        for ip in watched:
            key = f"{self._ns}:iprate:{ip}:{window}"
            pipe.incrby(key, pending.get((ip, window), 0))
            pipe.pexpire(key, ttl_ms)
            pipe.pttl(f"{self._ns}:ipblock:{ip}")
        for ip in blocks:
            pipe.set(f"{self._ns}:ipblock:{ip}", 1, px=int(self._block_s * 1000))
        try:
            replies = await pipe.execute()
        except BaseException:
            for slot, n in pending.items():  # count them next time
                self._unsynced[slot] = self._unsynced.get(slot, 0) + n
            self._new_blocks |= blocks
            raise
        replies = replies[skip:]
        counted: dict[tuple[str, int], int] = {}
        for i, ip in enumerate(watched):
            total, block_ms = int(replies[3 * i]), int(replies[3 * i + 2])
            if total:
                counted[(ip, window)] = total
            if block_ms > 0:
                self._blocked[ip] = max(self._blocked.get(ip, 0.0), now + block_ms / 1000)
        self._counted = counted
