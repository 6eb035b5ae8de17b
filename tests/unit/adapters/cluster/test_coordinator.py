"""ClusterCommandRunner routing with in-memory fakes: local, forwarded, nobody, repeats."""

from __future__ import annotations

from collections.abc import Sequence

from ivy_gateway.domain.cluster import ClusterUnavailable, Lease
from ivy_gateway.domain.commands import Command, CommandMethod, CommandResult, ErrorCode
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.ports import MeterLink
from ivy_gateway.services.coordinator import ClusterCommandRunner

METER = MeterId("000000000001")


class Local:
    def __init__(self, connected: bool) -> None:
        self.connected = connected
        self.ran: list[str] = []

    async def run(self, command: Command) -> CommandResult:
        self.ran.append(command.id)
        if not self.connected:
            return CommandResult.failed(command.id, ErrorCode.METER_OFFLINE, "not connected")
        return CommandResult.ok(command.id, {"where": "here"})

    def get(self, meter: MeterId) -> MeterLink | None:
        return None

    def meters(self) -> Sequence[MeterId]:
        return []


class Ledger:
    gateway_id = "a"

    def __init__(self, lease: Lease | None, down: bool = False) -> None:
        self.lease = lease
        self.down = down

    async def owner_of(self, meter: MeterId) -> Lease | None:
        if self.down:
            raise ClusterUnavailable("down")
        return self.lease


class Forwarder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def forward(self, lease: Lease, command: Command) -> CommandResult:
        self.sent.append((lease.owner, command.id))
        return CommandResult.ok(command.id, {"where": lease.owner})


class Journal:
    def __init__(self, down: bool = False) -> None:
        self.results: dict[str, CommandResult | None] = {}
        self.down = down

    async def begin(self, command: Command) -> bool:
        if self.down:
            raise ClusterUnavailable("down")
        if command.id in self.results:
            return False
        self.results[command.id] = None
        return True

    async def finish(self, command: Command, result: CommandResult) -> None:
        if self.down:
            raise ClusterUnavailable("down")
        self.results[command.id] = result

    async def outcome(self, command: Command, wait_s: float) -> CommandResult | None:
        return self.results.get(command.id)


def _command(cid: str = "c1") -> Command:
    return Command(cid, METER, CommandMethod.READ_ADDRESS, timeout_s=1.0)


def _runner(
    local: Local, ledger: Ledger, journal: Journal | None = None
) -> tuple[ClusterCommandRunner, Forwarder]:
    forwarder = Forwarder()
    return ClusterCommandRunner(local, local, ledger, forwarder, journal), forwarder


async def test_command_for_a_meter_leased_here_runs_locally() -> None:
    local = Local(connected=True)
    runner, forwarder = _runner(local, Ledger(Lease(METER, "a", 3)))
    result = await runner.run(_command())
    assert result.success
    assert result.result == {"where": "here"}
    assert local.ran == ["c1"]
    assert forwarder.sent == []


async def test_command_for_a_meter_owned_elsewhere_is_forwarded_to_the_owner() -> None:
    local = Local(connected=False)
    runner, forwarder = _runner(local, Ledger(Lease(METER, "b", 9)))
    result = await runner.run(_command())
    assert result.result == {"where": "b"}
    assert forwarder.sent == [("b", "c1")]
    assert local.ran == []


async def test_command_for_a_meter_nobody_owns_is_meter_offline() -> None:
    runner, forwarder = _runner(Local(connected=False), Ledger(None))
    result = await runner.run(_command())
    assert result.error_code is ErrorCode.METER_OFFLINE
    assert forwarder.sent == []


async def test_redis_down_runs_locally_and_never_forwards() -> None:
    local = Local(connected=True)
    runner, forwarder = _runner(local, Ledger(None, down=True), Journal(down=True))
    result = await runner.run(_command())
    assert result.success
    assert forwarder.sent == []


async def test_repeated_command_id_is_answered_with_the_first_result_not_run_again() -> None:
    local = Local(connected=True)
    journal = Journal()
    runner, _ = _runner(local, Ledger(Lease(METER, "a", 1)), journal)
    first = await runner.run(_command("same"))
    second = await runner.run(_command("same"))
    assert first == second
    assert local.ran == ["same"]
    assert runner.repeats == 1


async def test_repeat_of_a_command_still_unknown_answers_timeout() -> None:
    journal = Journal()
    journal.results["x"] = None  # taken, outcome not recorded yet
    runner, forwarder = _runner(Local(connected=True), Ledger(Lease(METER, "a", 1)), journal)
    result = await runner.run(_command("x"))
    assert result.error_code is ErrorCode.TIMEOUT
    assert forwarder.sent == []
