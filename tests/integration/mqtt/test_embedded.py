"""The embedded amqtt broker in the test's event loop: publish, auth, ACL, retain, commands."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.client import MQTTv311

from ivy_gateway.adapters.mqtt import (
    BrokerUser,
    CommandIntake,
    EmbeddedBroker,
    EmbeddedTransport,
    MqttPublisher,
    Role,
    Topics,
    hash_password,
)
from ivy_gateway.domain.commands import Command, CommandResult
from ivy_gateway.domain.events import MeterStatus, ReadingsBatch
from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.domain.quantities import Reading, ReadingSource
from ivy_gateway.services.commands import CommandService

Validate = Callable[[str, bytes | dict[str, Any]], dict[str, Any]]
Embedded = Callable[..., Any]
METER = MeterId("000000001234")
TOPICS = Topics()
V311 = aiomqtt.ProtocolVersion(MQTTv311)
USERS = {
    "ann": BrokerUser(hash_password("ann-pw"), Role.READER),
    "otto": BrokerUser(hash_password("otto-pw"), Role.OPERATOR),
    "ada": BrokerUser(hash_password("ada-pw"), Role.ADMIN),
}


def _batch(seq: int, meter: MeterId = METER) -> ReadingsBatch:
    reading = Reading(
        meter, "voltage_l1", Decimal("230.5"), "V", seq, ReadingSource.POLL, "02010100"
    )
    seq_reading = Reading(meter, "seq", Decimal(seq), "1", seq, ReadingSource.POLL, "")
    return ReadingsBatch(
        meter, ProtocolKind.DLT645, ReadingSource.POLL, seq, [reading, seq_reading]
    )


@asynccontextmanager
async def _gateway(broker: EmbeddedBroker) -> AsyncIterator[MqttPublisher]:
    pub = MqttPublisher(EmbeddedTransport(broker), TOPICS, gateway_id="gw-t", version="0.1.0")
    task = asyncio.create_task(pub.run())
    try:
        yield pub
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _client(port: int, user: str | None = None, **kw: Any) -> aiomqtt.Client:
    password = f"{user}-pw" if user else None
    return aiomqtt.Client("127.0.0.1", port, username=user, password=password, protocol=V311, **kw)


async def _collect(
    client: aiomqtt.Client, count: int, timeout_s: float = 10
) -> list[aiomqtt.Message]:
    got: list[aiomqtt.Message] = []
    async with asyncio.timeout(timeout_s):
        async for message in client.messages:
            got.append(message)
            if len(got) == count:
                break
    return got


async def test_telemetry_reaches_paho_and_aiomqtt_subscribers(
    embedded: Embedded, paho_subscriber: Callable[..., Any], validate: Validate
) -> None:
    broker = await embedded()
    paho_sub = await asyncio.to_thread(
        paho_subscriber, broker.tcp_port, [f"{TOPICS.prefix}/meters/#"]
    )
    async with _client(broker.tcp_port) as sub, _gateway(broker) as pub:
        await sub.subscribe(TOPICS.telemetry(METER), qos=1)
        await pub.handle([_batch(i) for i in range(50)])
        messages = await _collect(sub, 50)
        await paho_sub.wait_for(50, "telemetry")
    seqs = [validate("telemetry", m.payload)["values"]["seq"]["value"] for m in messages]
    assert seqs == list(range(50))
    paho_seqs = [json.loads(m.payload)["values"]["seq"]["value"] for m in paho_sub.received()]
    assert paho_seqs == list(range(50))
    assert all(m.qos == 1 for m in messages)


async def test_websocket_listener_delivers(embedded: Embedded, validate: Validate) -> None:
    broker = await embedded()
    assert broker.ws_port not in (None, broker.tcp_port)
    ws = _client(broker.ws_port, transport="websockets", websocket_path="/")
    async with ws, _gateway(broker) as pub:
        await ws.subscribe(f"{TOPICS.prefix}/#", qos=1)
        await pub.handle([_batch(1)])
        messages = await _collect(ws, 2)  # the retained gateway status, then telemetry
    assert {m.topic.value for m in messages} == {TOPICS.gateway_status, TOPICS.telemetry(METER)}


async def test_retained_status_reaches_a_late_subscriber(
    embedded: Embedded, validate: Validate
) -> None:
    broker = await embedded()
    async with _gateway(broker) as pub:
        await pub.handle([MeterStatus(METER, True, ProtocolKind.DLMS, "em114070", None, 5)])
        await asyncio.sleep(0.1)
        async with _client(broker.tcp_port) as late:
            await late.subscribe(f"{TOPICS.prefix}/#", qos=1)
            messages = await _collect(late, 2)
    by_topic = {m.topic.value: m for m in messages}
    status = by_topic[TOPICS.status(METER)]
    assert status.retain
    assert validate("status", status.payload)["online"] is True
    gateway = validate("gateway-status", by_topic[TOPICS.gateway_status].payload)
    assert gateway["status"] == "online"


async def test_anonymous_is_read_only_when_no_users_exist(embedded: Embedded) -> None:
    broker = await embedded()
    async with _client(broker.tcp_port) as anon:
        granted = await anon.subscribe([(f"{TOPICS.prefix}/#", 1), ("#", 1)])
    assert list(granted) == [1, 128]


async def test_auth_rejects_wrong_password_and_anonymous_when_users_exist(
    embedded: Embedded,
) -> None:
    broker = await embedded(users=USERS, allow_anonymous=True)
    with pytest.raises(aiomqtt.MqttCodeError):
        async with aiomqtt.Client("127.0.0.1", broker.tcp_port, protocol=V311):
            pass
    with pytest.raises(aiomqtt.MqttCodeError):
        async with aiomqtt.Client(
            "127.0.0.1", broker.tcp_port, username="ann", password="nope", protocol=V311
        ):
            pass
    with pytest.raises(aiomqtt.MqttCodeError):
        async with aiomqtt.Client(
            "127.0.0.1", broker.tcp_port, username="nobody", password="x", protocol=V311
        ):
            pass
    async with _client(broker.tcp_port, "ann") as ann:
        assert list(await ann.subscribe(f"{TOPICS.prefix}/#", qos=1)) == [1]


class _Runner:
    def __init__(self) -> None:
        self.seen: list[Command] = []

    async def run(self, command: Command) -> CommandResult:
        self.seen.append(command)
        return CommandResult.ok(command.id, {"state": "open", "confirmed": True})


class _Idle:
    def get(self, meter: MeterId) -> None:
        return None

    def meters(self) -> list[MeterId]:
        return []

    def emit(self, event: object) -> None:
        pass

    def now_ms(self) -> int:
        return 0

    def monotonic(self) -> float:
        return 0.0


async def test_acl_and_command_round_trip(embedded: Embedded, validate: Validate) -> None:
    broker = await embedded(users=USERS)
    runner = _Runner()
    async with _gateway(broker) as pub:
        intake = CommandIntake(CommandService(_Idle(), _Idle(), _Idle()), runner, pub, TOPICS)
        intake.attach(pub.transport)
        request = json.dumps({"id": "r1", "method": "relay_control", "params": {"state": "open"}})
        async with (
            _client(broker.tcp_port, "ada") as ada,
            _client(broker.tcp_port, "ann") as ann,
            _client(broker.tcp_port, "otto") as otto,
        ):
            await ada.subscribe("#", qos=1)
            # reader: may not subscribe outside the prefix, may not publish at all
            assert list(await ann.subscribe("#", qos=1)) == [128]
            await ann.publish(TOPICS.command_request(METER), request.replace("r1", "ann"), qos=1)
            await ann.publish(TOPICS.telemetry(METER), b"{}", qos=1)
            # operator: may publish command requests, nothing else
            await otto.publish(TOPICS.telemetry(METER), b"{}", qos=1)
            await otto.publish(TOPICS.command_request(METER), request, qos=1)
            await otto.publish(TOPICS.command_request(METER), b"{broken", qos=1)
            got = await _collect(ada, 5)  # gateway status, 2 requests, 2 responses
    topics = [m.topic.value for m in got]
    assert TOPICS.telemetry(METER) not in topics  # denied publishes never reach subscribers
    requests = [m.payload for m in got if m.topic.value == TOPICS.command_request(METER)]
    assert requests == [request.encode(), b"{broken"]
    assert [c.id for c in runner.seen] == ["r1"]
    assert runner.seen[0].requested_by == "otto"
    responses = [
        validate("command-response", m.payload)
        for m in got
        if m.topic.value == TOPICS.command_response(METER)
    ]
    by_success = {r["success"]: r for r in responses}
    assert by_success[True]["id"] == "r1"
    assert by_success[True]["result"] == {"state": "open", "confirmed": True}
    assert by_success[False]["errorCode"] == "invalid_command"


async def test_gateway_goes_offline_when_the_publisher_stops(
    embedded: Embedded, validate: Validate
) -> None:
    broker = await embedded()
    async with _gateway(broker):
        await asyncio.sleep(0.05)
    async with _client(broker.tcp_port) as late:
        await late.subscribe(TOPICS.gateway_status, qos=1)
        [message] = await _collect(late, 1)
    assert validate("gateway-status", message.payload)["status"] == "offline"


async def test_explicit_port_in_use_is_reported(embedded: Embedded) -> None:
    from ivy_gateway.adapters.mqtt import BrokerPortInUse

    first = await embedded(ws_port=None)
    with pytest.raises(BrokerPortInUse) as info:
        await embedded(port=first.tcp_port, ws_port=None)
    assert info.value.port == first.tcp_port
    assert info.value.listener == "tcp"
