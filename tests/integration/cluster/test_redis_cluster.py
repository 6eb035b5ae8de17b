"""RedisCluster against the real Redis: leases with fencing, takeover, forwarding, dedupe."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from ivy_gateway.adapters.cluster import RedisCluster
from ivy_gateway.domain.commands import Command, CommandMethod, CommandResult, ErrorCode
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.ports import MeterLink
from ivy_gateway.services.coordinator import ClusterCommandRunner

from .conftest import REDIS_URL

pytestmark = pytest.mark.service
METER = MeterId("000000000042")


class Instance:
    """One gateway's view: which meters it holds, what it ran, what it was told."""

    def __init__(self, name: str, namespace: str) -> None:
        self.name = name
        self.held: set[MeterId] = set()
        self.ran: list[str] = []
        self.evicted: list[MeterId] = []
        self.announced: list[str] = []
        self.cluster = RedisCluster(
            REDIS_URL,
            name,
            local_runner=self,
            on_takeover=self._evict,
            namespace=namespace,
            lease_ttl_s=3.0,
            heartbeat_s=0.2,
            forward_timeout_s=1.0,
        )
        self.runner = ClusterCommandRunner(
            self, self, self.cluster, self.cluster, self.cluster.journal
        )

    def _evict(self, meter: MeterId) -> None:
        self.held.discard(meter)
        self.evicted.append(meter)

    async def run(self, command: Command) -> CommandResult:
        if command.meter not in self.held:
            return CommandResult.failed(command.id, ErrorCode.METER_OFFLINE, "not here")
        self.ran.append(command.id)
        return CommandResult.ok(command.id, {"by": self.name})

    def get(self, meter: MeterId) -> MeterLink | None:
        return None  # routing is decided by the leases; the fake has no sessions

    def meters(self) -> list[MeterId]:
        return sorted(self.held, key=str)

    def connect(self, meter: MeterId) -> None:
        self.held.add(meter)
        self.cluster.claimed(meter, lambda: self.announced.append("online"))

    def disconnect(self, meter: MeterId) -> None:
        self.held.discard(meter)
        self.cluster.released(meter, lambda: self.announced.append("offline"))


@contextlib.asynccontextmanager
async def instances(namespace: str, *names: str) -> AsyncIterator[list[Instance]]:
    made = [Instance(n, namespace) for n in names]
    for inst in made:
        await inst.cluster.start()
    try:
        yield made
    finally:
        for inst in made:
            await inst.cluster.stop()


async def until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _command(cid: str) -> Command:
    return Command(cid, METER, CommandMethod.READ_ADDRESS, timeout_s=2.0)


async def test_members_see_each_other(namespace: str) -> None:
    async with instances(namespace, "a", "b") as (a, b):
        await until(lambda: set(a.cluster.members()) == {"a", "b"} == set(b.cluster.members()))


async def test_reconnect_elsewhere_moves_the_lease_and_evicts_the_stale_session(
    namespace: str,
) -> None:
    async with instances(namespace, "a", "b") as (a, b):
        a.connect(METER)
        await until(lambda: a.announced == ["online"])
        first = await a.cluster.owner_of(METER)
        assert first is not None
        assert first.owner == "a"

        b.connect(METER)
        await until(lambda: a.evicted == [METER])
        second = await b.cluster.owner_of(METER)
        assert second is not None
        assert second.owner == "b"
        assert second.token > first.token
        # The stale session's end must not announce offline: b holds the meter.
        a.disconnect(METER)
        await asyncio.sleep(0.3)
        assert a.announced == ["online"]
        assert b.announced == ["online"]
        assert (await a.cluster.owner_of(METER)) == second


async def test_command_at_any_instance_runs_once_on_the_owner(namespace: str) -> None:
    async with instances(namespace, "a", "b", "c") as (a, b, c):
        b.connect(METER)
        await until(lambda: b.announced == ["online"])
        results = [await inst.runner.run(_command(f"cmd-{inst.name}")) for inst in (a, b, c)]
        assert [r.result for r in results] == [{"by": "b"}] * 3
        assert sorted(b.ran) == ["cmd-a", "cmd-b", "cmd-c"]
        assert a.ran == c.ran == []
        # The same id again, at another instance: answered, not run again.
        again = await c.runner.run(_command("cmd-a"))
        assert again == results[0]
        assert len(b.ran) == 3


async def test_command_for_a_meter_nobody_holds_is_meter_offline(namespace: str) -> None:
    async with instances(namespace, "a", "b") as (a, _):
        result = await a.runner.run(_command("nobody"))
        assert result.error_code is ErrorCode.METER_OFFLINE


async def test_lease_of_a_stopped_owner_is_released_and_forwarding_to_a_dead_one_fails_fast(
    namespace: str,
) -> None:
    async with instances(namespace, "a") as (a,):
        late = Instance("b", namespace)
        await late.cluster.start()
        late.connect(METER)
        await until(lambda: late.announced == ["online"])
        # Simulate kill -9: stop listening without releasing (lease stays until its TTL).
        for task in late.cluster._loops:
            task.cancel()
        await asyncio.sleep(0.3)
        started = asyncio.get_running_loop().time()
        result = await a.runner.run(_command("to-dead"))
        assert result.error_code is ErrorCode.METER_OFFLINE
        assert asyncio.get_running_loop().time() - started < 1.0
        late.cluster._tokens.clear()
        await late.cluster.stop()
        # The meter reconnects to a: it steals the lease at once, without waiting for TTL.
        a.connect(METER)
        await until(lambda: a.announced == ["online"])
        lease = await a.cluster.owner_of(METER)
        assert lease is not None
        assert lease.owner == "a"
