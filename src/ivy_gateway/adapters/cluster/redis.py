"""Cluster mode on Redis: membership, meter leases with fencing, takeover, forwarding.

Keys (``{ns}`` = ``cluster.namespace``)::

    {ns}:members            ZSET  gateway id → last heartbeat (ms); older than 3 beats = gone
    {ns}:fence              INT   fencing-token counter, only grows (INCR)
    {ns}:lease:{meter}      STR   "{gateway id}|{token}", PX lease_ttl — renewed every beat
    {ns}:cmd:{meter}:{id}   STR   command journal (forwarding.py)
    {ns}:node:{gateway id}  pub/sub channel: takeovers, forwarded commands, replies

A meter that connects here takes its lease unconditionally (the newest connection is the
real one) with a new token, and the previous owner is told on its channel; it evicts its
stale session silently (no offline status: the new owner has announced online). A missed
message is caught by the next renewal, which finds the lease held by someone else.

Redis down: every instance keeps serving its own meters (``degraded``, counted, reported
through ``on_degraded``); statuses are announced without a lease; commands for meters held
elsewhere answer ``meter_offline``. When Redis answers again the renewal loop reconciles:
missing leases are taken again (``SET NX``), leases another instance took meanwhile win and
the local session is evicted. After a Redis restart without persistence the fence counter
restarts too, so each instance raises it to the largest token it has seen (``floor``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ivy_gateway.domain.cluster import ClusterUnavailable, Lease
from ivy_gateway.domain.commands import Command, CommandResult
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.ports import CommandRunner

from .forwarding import (
    CommandRelay,
    RedisJournal,
    dumps,
)
from .leases import ACQUIRE, ACQUIRE_FREE, RELEASE, RENEW, parse_lease, text
from .limits import SharedIpCap, SharedIpRate

__all__ = ["RedisCluster"]

_RENEW_CHUNK = 500  # scripts per pipeline: a 10k pipeline blocks the loop (ECOSYSTEM §4.11)

log = logging.getLogger(__name__)


class RedisCluster:
    """``OwnershipGate``, ``OwnershipLedger``, ``CommandForwarder``, ``CommandJournal`` and
    ``ClusterMembership`` for one gateway instance. ``await start()`` … ``await stop()``."""

    def __init__(
        self,
        url: str,
        gateway_id: str,
        *,
        local_runner: CommandRunner,
        on_takeover: Callable[[MeterId], None],
        on_degraded: Callable[[bool], None] | None = None,
        namespace: str = "ivy",
        lease_ttl_s: float = 15.0,
        heartbeat_s: float = 2.0,
        forward_timeout_s: float = 5.0,
        journal_ttl_s: float = 300.0,
        redis_timeout_s: float = 1.0,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        if lease_ttl_s < 3 * heartbeat_s:
            raise ValueError("lease_ttl_s must be at least 3 heartbeats")
        self._gateway_id = gateway_id
        self._ns = namespace
        self._local_runner = local_runner
        self._on_takeover = on_takeover
        self._on_degraded = on_degraded
        self._lease_ttl_ms = int(lease_ttl_s * 1000)
        self._heartbeat_s = heartbeat_s
        self._forward_timeout_s = forward_timeout_s
        self._info = dict(info or {})
        self._client: Redis = Redis.from_url(
            url,
            socket_timeout=redis_timeout_s,
            socket_connect_timeout=redis_timeout_s,
            retry=Retry(NoBackoff(), 0),  # fail fast: degraded mode, not a stalled loop
            health_check_interval=max(1, int(heartbeat_s)),
        )
        self.relay = CommandRelay(
            gateway_id,
            send=self._send,
            owner_of=self.owner_of,
            holds=lambda meter: meter in self._tokens or meter in self._unleased,
            local_runner=local_runner,
            forward_timeout_s=forward_timeout_s,
        )
        self.journal = RedisJournal(self._client, namespace, gateway_id, journal_ttl_s)
        self._acquire = self._client.register_script(ACQUIRE)
        self._acquire_free = self._client.register_script(ACQUIRE_FREE)
        self._renew = self._client.register_script(RENEW)
        self._release = self._client.register_script(RELEASE)
        self._tokens: dict[MeterId, int] = {}  # leases held: meter → token
        self._unleased: set[MeterId] = set()  # announced while Redis was down
        self._floor = 0  # largest fencing token seen
        self._chains: dict[MeterId, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._members: tuple[str, ...] = (gateway_id,)
        self._limiters: list[SharedIpCap | SharedIpRate] = []
        self.degraded = False
        self._seq = 0
        self._counts = dict.fromkeys(
            (
                "leaseTakeovers",
                "leasesLost",
                "redisErrors",
                "degradedEpisodes",
            ),
            0,
        )

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def gateway_id(self) -> str:
        return self._gateway_id

    def _channel(self, gateway_id: str) -> str:
        return f"{self._ns}:node:{gateway_id}"

    def _lease_key(self, meter: MeterId) -> str:
        return f"{self._ns}:lease:{meter.value}"

    @property
    def _fence_key(self) -> str:
        return f"{self._ns}:fence"

    async def start(self) -> None:
        """Join the cluster. Redis down is not an error: the instance starts degraded."""
        with contextlib.suppress(ClusterUnavailable):
            await self._beat()
        self._loops = [
            asyncio.create_task(self._beat_loop(), name="cluster-beat"),
            asyncio.create_task(self._listen_loop(), name="cluster-listen"),
        ]
        if self._limiters:
            self._loops.append(asyncio.create_task(self._limits_loop(), name="cluster-limits"))

    async def stop(self) -> None:
        """Leave: release leases still held, drop membership, close connections."""
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        chains = list(self._chains.values())
        if chains:
            await asyncio.wait(chains, timeout=5)
        self.relay.cancel_pending()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            if self._tokens:
                pipe = self._client.pipeline(transaction=False)
                for meter, token in self._tokens.items():
                    await self._release(
                        keys=[self._lease_key(meter)],
                        args=[f"{self._gateway_id}|{token}"],
                        client=pipe,
                    )
                await pipe.execute()
            await self._client.zrem(f"{self._ns}:members", self._gateway_id)
        self._tokens.clear()
        await self._client.aclose()

    # -- health -------------------------------------------------------------------------

    def _failed(self, exc: BaseException) -> ClusterUnavailable:
        self._counts["redisErrors"] += 1
        if not self.degraded:
            self.degraded = True
            self._counts["degradedEpisodes"] += 1
            log.warning("cluster: Redis unreachable (%s); serving local meters only", exc)
            if self._on_degraded is not None:
                self._on_degraded(True)
        return ClusterUnavailable(str(exc) or type(exc).__name__)

    def _recovered(self) -> None:
        if self.degraded:
            self.degraded = False
            log.warning("cluster: Redis is back; reconciling %d leases", len(self._tokens))
            if self._on_degraded is not None:
                self._on_degraded(False)

    async def readiness(self) -> str | None:
        """None when Redis answers, else why not (for ``/ready``)."""
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            return f"redis: {type(exc).__name__}"
        return None

    # -- membership ---------------------------------------------------------------------

    def members(self) -> Sequence[str]:
        return self._members

    async def _beat(self) -> None:
        now = int(time.time() * 1000)
        key = f"{self._ns}:members"
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.zadd(key, {self._gateway_id: now})
            pipe.zremrangebyscore(key, "-inf", now - int(3 * self._heartbeat_s * 1000))
            pipe.zrange(key, 0, -1)
            pipe.set(
                f"{self._ns}:member:{self._gateway_id}",
                json.dumps(self._info),
                px=int(3 * self._heartbeat_s * 1000),
            )
            replies = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from None
        self._members = tuple(sorted(text(m) for m in replies[2]))
        self._recovered()

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            try:
                await self._beat()
                await self._renew_all()
            except ClusterUnavailable:
                continue

    def counters(self) -> dict[str, float]:
        return {
            "clusterMembers": len(self._members),
            "clusterDegraded": int(self.degraded),
            "leasesHeld": len(self._tokens),
            "leasesUnheld": len(self._unleased),
            **self._counts,
            **self.relay.counts,
        }

    # -- leases: the OwnershipGate --------------------------------------------------------

    def _then(self, meter: MeterId, step: Coroutine[Any, Any, None]) -> None:
        """Run ``step`` after the meter's earlier steps: claim/release/evict stay in order."""
        previous = self._chains.get(meter)

        async def chained() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            try:
                await step
            except Exception:
                log.exception("cluster: lease step failed", extra={"meter": meter.value})

        task = asyncio.get_running_loop().create_task(chained())
        self._chains[meter] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._chains.get(meter) is done:
                del self._chains[meter]

        task.add_done_callback(forget)

    def claimed(self, meter: MeterId, announce: Callable[[], None]) -> None:
        self._then(meter, self._claim(meter, announce))

    def released(self, meter: MeterId, announce: Callable[[], None]) -> None:
        self._then(meter, self._give_back(meter, announce))

    async def _claim(self, meter: MeterId, announce: Callable[[], None]) -> None:
        try:
            token, previous = await self._acquire(
                keys=[self._lease_key(meter), self._fence_key],
                args=[self._gateway_id, self._lease_ttl_ms, self._floor],
            )
        except (RedisError, OSError) as exc:
            self._failed(exc)
            self._tokens.pop(meter, None)
            self._unleased.add(meter)
            announce()
            return
        token = int(token)
        self._floor = max(self._floor, token)
        self._tokens[meter] = token
        self._unleased.discard(meter)
        announce()
        old = parse_lease(meter, previous) if previous else None
        if old is not None and old.owner != self._gateway_id:
            self._counts["leaseTakeovers"] += 1
            await self._send(old.owner, {"t": "takeover", "meter": meter.value, "token": token})

    async def _give_back(self, meter: MeterId, announce: Callable[[], None]) -> None:
        token = self._tokens.pop(meter, None)
        if meter in self._unleased or (token is None and self.degraded):
            self._unleased.discard(meter)
            announce()
            return
        # token None: lost to another instance already (or never taken) — Redis decides.
        try:
            ours = await self._release(
                keys=[self._lease_key(meter)], args=[f"{self._gateway_id}|{token or 0}"]
            )
        except (RedisError, OSError) as exc:
            self._failed(exc)
            announce()
            return
        if ours:
            announce()
        else:
            log.info(
                "meter moved to another instance; not announcing it offline",
                extra={"meter": meter.value},
            )

    async def _lose(self, meter: MeterId, token: int | None, newer: int) -> None:
        """Another instance holds ``meter`` under token ``newer``: evict our session."""
        held = self._tokens.get(meter)
        if token is not None and held != token:
            return  # our lease changed since this was decided
        if held is not None and held >= newer:
            return  # we took it again after that takeover
        if held is None and meter not in self._unleased:
            return
        self._tokens.pop(meter, None)
        self._unleased.discard(meter)
        self._counts["leasesLost"] += 1
        log.info(
            "meter taken over by another instance; closing the stale connection",
            extra={"meter": meter.value},
        )
        self._on_takeover(meter)

    async def _retake(self, meter: MeterId, token: int | None) -> None:
        """The lease expired (or Redis restarted, or we announced unleased): take it if free."""
        if token is not None and self._tokens.get(meter) != token:
            return
        if token is None and meter not in self._unleased:
            return
        try:
            new, holder = await self._acquire_free(
                keys=[self._lease_key(meter), self._fence_key],
                args=[self._gateway_id, self._lease_ttl_ms, self._floor],
            )
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return
        if int(new) > 0:
            self._floor = max(self._floor, int(new))
            self._tokens[meter] = int(new)
            self._unleased.discard(meter)
            return
        lease = parse_lease(meter, holder)
        if lease is not None and lease.owner != self._gateway_id:
            await self._lose(meter, token, lease.token)

    async def _renew_all(self) -> None:
        held = list(self._tokens.items())
        for start in range(0, len(held), _RENEW_CHUNK):
            chunk = held[start : start + _RENEW_CHUNK]
            pipe = self._client.pipeline(transaction=False)
            for meter, token in chunk:
                await self._renew(
                    keys=[self._lease_key(meter)],
                    args=[f"{self._gateway_id}|{token}", self._lease_ttl_ms],
                    client=pipe,
                )
            try:
                replies = await pipe.execute()
            except (RedisError, OSError) as exc:
                raise self._failed(exc) from None
            for (meter, token), reply in zip(chunk, replies, strict=True):
                if int(reply) == -1:
                    self._then(meter, self._retake(meter, token))
                elif int(reply) == -2:
                    self._then(meter, self._check_holder(meter, token))
        for meter in list(self._unleased):
            self._then(meter, self._retake(meter, None))

    async def _check_holder(self, meter: MeterId, token: int) -> None:
        lease = await self.owner_of(meter)
        if lease is not None and lease.owner != self._gateway_id:
            await self._lose(meter, token, lease.token)

    # -- the OwnershipLedger ------------------------------------------------------------

    async def owner_of(self, meter: MeterId) -> Lease | None:
        try:
            raw = await self._client.get(self._lease_key(meter))
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from None
        return None if raw is None else parse_lease(meter, raw)

    def local_token(self, meter: MeterId) -> int | None:
        return self._tokens.get(meter)

    # -- messages -------------------------------------------------------------------------

    async def _send(self, gateway_id: str, message: dict[str, Any]) -> int:
        """Publish to an instance's channel; the number of listeners (0: it is gone)."""
        try:
            return int(await self._client.publish(self._channel(gateway_id), dumps(message)))
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from None

    async def _listen_loop(self) -> None:
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel(self._gateway_id))
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._on_message(message["data"])
            except (RedisError, OSError) as exc:
                self._failed(exc)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(min(1.0, self._heartbeat_s))

    def _on_message(self, raw: object) -> None:
        try:
            data = json.loads(text(raw))
            kind = data["t"]
            if kind == "takeover":
                meter = MeterId(data["meter"])
                self._then(meter, self._lose(meter, None, int(data["token"])))
            elif kind == "cmd":
                self._spawn(self.relay.serve(data))
            elif kind == "reply":
                self.relay.resolve(data)
        except (ValueError, KeyError, TypeError):
            log.warning(
                "cluster: dropped a malformed message on %s", self._channel(self._gateway_id)
            )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- forwarding: the CommandForwarder (forwarding.CommandRelay does the work) ----------

    async def forward(self, lease: Lease, command: Command) -> CommandResult:
        return await self.relay.forward(lease, command)

    # -- shared per-IP limits -------------------------------------------------------------

    def shared_ip_cap(self, max_per_ip: int) -> SharedIpCap:
        """A ``PeerLimiter``: concurrent connections per IP, counted cluster-wide."""
        cap = SharedIpCap(self._ns, self._gateway_id, max_per_ip, ttl_s=3 * self._heartbeat_s)
        self._limiters.append(cap)
        return cap

    def shared_ip_rate(self, max_new: int, window_s: float, block_s: float) -> SharedIpRate:
        """A ``PeerLimiter``: new connections per IP per window, counted cluster-wide."""
        rate = SharedIpRate(self._ns, max_new, window_s, block_s)
        self._limiters.append(rate)
        return rate

    async def _limits_loop(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s / 2)
            for limiter in self._limiters:
                try:
                    await limiter.sync(self._client, self._members)
                except (RedisError, OSError) as exc:
                    self._failed(exc)  # fail open: limits stay local until Redis is back
