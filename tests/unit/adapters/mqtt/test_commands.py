from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from ivy_gateway.adapters.mqtt.commands import CommandIntake
from ivy_gateway.adapters.mqtt.topics import Topics
from ivy_gateway.domain.commands import Command, CommandResult, ErrorCode
from ivy_gateway.domain.events import GatewayEvent
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.ports import MeterLink
from ivy_gateway.services.commands import CommandService

Validate = Callable[[str, bytes | dict[str, Any]], dict[str, Any]]
METER = MeterId("000000001234")
TOPICS = Topics()


class _NoMeters:
    def get(self, meter: MeterId) -> MeterLink | None:
        return None

    def meters(self) -> Sequence[MeterId]:
        return []


class _Events:
    def emit(self, event: GatewayEvent) -> None:
        pass


class _Clock:
    def now_ms(self) -> int:
        return 1

    def monotonic(self) -> float:
        return 1.0


class _Runner:
    def __init__(self, delay_s: float = 0.0, fail: bool = False, slow_id: str = "") -> None:
        self.delay_s = delay_s
        self.slow_id = slow_id
        self.fail = fail
        self.seen: list[Command] = []

    async def run(self, command: Command) -> CommandResult:
        self.seen.append(command)
        await asyncio.sleep(self.delay_s if command.id == self.slow_id or not self.slow_id else 0)
        if self.fail:
            raise RuntimeError("boom")
        return CommandResult.ok(command.id, {"address": command.meter.value})


class _Responses:
    def __init__(self) -> None:
        self.sent: list[tuple[MeterId, CommandResult]] = []
        self.arrived = asyncio.Event()

    def publish_command_response(self, meter: MeterId, result: CommandResult) -> None:
        self.sent.append((meter, result))
        self.arrived.set()


def _intake(runner: _Runner, responses: _Responses, **kw: Any) -> CommandIntake:
    parser = CommandService(_NoMeters(), _Events(), _Clock())
    return CommandIntake(parser, runner, responses, TOPICS, **kw)


def _request(body: object) -> bytes:
    return json.dumps(body).encode()


async def _until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(2):
        while True:
            if cond():
                return
            await asyncio.sleep(0.001)


async def test_valid_request_runs_and_is_answered() -> None:
    runner, responses = _Runner(), _Responses()
    intake = _intake(runner, responses)
    topic = TOPICS.command_request(METER)
    intake.submit(topic, _request({"id": "a1", "method": "read_address"}), "alice")
    await _until(lambda: bool(responses.sent))
    assert runner.seen[0].requested_by == "alice"
    assert responses.sent == [(METER, CommandResult.ok("a1", {"address": METER.value}))]


@pytest.mark.parametrize(
    ("payload", "command_id"),
    [
        (b"{not json", ""),
        (b"[1, 2]", ""),
        (_request({"method": "read_address"}), ""),
        (_request({"id": "x1", "method": "explode"}), "x1"),
        (_request({"id": "x2", "method": "relay_control", "params": {"state": "half"}}), "x2"),
        (_request({"id": "x3", "method": "read_address", "params": [1]}), "x3"),
    ],
)
async def test_bad_requests_get_invalid_command_at_once(
    payload: bytes, command_id: str, validate: Validate
) -> None:
    runner, responses = _Runner(), _Responses()
    _intake(runner, responses).submit(TOPICS.command_request(METER), payload, "bob")
    assert not runner.seen
    [(meter, result)] = responses.sent
    assert meter == METER
    assert result.id == command_id
    assert result.error_code is ErrorCode.INVALID_COMMAND


async def test_topic_without_a_valid_meter_is_counted_not_answered() -> None:
    runner, responses = _Runner(), _Responses()
    intake = _intake(runner, responses)
    intake.submit("ivy/v1/meters/12/command/request", b"{}", "eve")
    assert intake.rejected_topics == 1
    assert not responses.sent


async def test_runner_exception_becomes_internal_response() -> None:
    runner, responses = _Runner(fail=True), _Responses()
    intake = _intake(runner, responses)
    intake.submit(
        TOPICS.command_request(METER), _request({"id": "b", "method": "read_address"}), "x"
    )
    await _until(lambda: bool(responses.sent))
    assert responses.sent[0][1].error_code is ErrorCode.INTERNAL


async def test_slow_command_does_not_hold_up_the_next_one() -> None:
    slow, responses = _Runner(delay_s=0.5, slow_id="slow"), _Responses()
    intake = _intake(slow, responses, max_concurrency=4)
    topic = TOPICS.command_request(METER)
    intake.submit(topic, _request({"id": "slow", "method": "read_address"}), "x")
    intake.submit(topic, _request({"id": "fast", "method": "read_address"}), "x")
    await _until(lambda: bool(responses.sent))
    assert responses.sent[0][1].id == "fast"
    await _until(lambda: len(responses.sent) == 2)


async def test_too_many_waiting_commands_get_busy() -> None:
    runner, responses = _Runner(delay_s=10), _Responses()
    intake = _intake(runner, responses, max_concurrency=1, max_pending=2)
    topic = TOPICS.command_request(METER)
    for i in range(3):
        intake.submit(topic, _request({"id": f"c{i}", "method": "read_address"}), "x")
    assert [r.error_code for _, r in responses.sent] == [ErrorCode.BUSY]
    assert intake.busy == 1
    stopper = asyncio.create_task(intake.run())
    await asyncio.sleep(0)
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert intake.pending == 0
