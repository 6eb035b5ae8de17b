from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from ivy_gateway.adapters.mqtt.outbox import InboundHandler, OutMessage, TransportStats
from ivy_gateway.adapters.mqtt.publisher import MqttPublisher
from ivy_gateway.adapters.mqtt.topics import Topics
from ivy_gateway.domain.commands import CommandResult
from ivy_gateway.domain.events import EventKind, MeterEvent, MeterStatus, ReadingsBatch, Severity
from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.domain.quantities import Reading, ReadingSource

Validate = Callable[[str, bytes | dict[str, Any]], dict[str, Any]]
METER = MeterId("000000001234")


class _Transport:
    def __init__(self) -> None:
        self.sent: list[OutMessage] = []
        self.will: Callable[[], OutMessage] | None = None
        self.birth: Callable[[], OutMessage] | None = None

    def send(self, message: OutMessage) -> None:
        self.sent.append(message)

    def set_session(
        self, *, will: Callable[[], OutMessage], birth: Callable[[], OutMessage]
    ) -> None:
        self.will, self.birth = will, birth

    def set_inbound(self, topic_filter: str, handler: InboundHandler) -> None:
        pass

    @property
    def stats(self) -> TransportStats:
        return TransportStats(len(self.sent), 5, 2, True, 1)

    async def run(self) -> None:
        await asyncio.Event().wait()


def _publisher(transport: _Transport, **kw: Any) -> MqttPublisher:
    return MqttPublisher(
        transport, Topics(), gateway_id="gw-1", version="0.1.0", now_ms=lambda: 42, **kw
    )


async def test_each_event_kind_goes_to_its_topic_with_its_qos_and_retain(
    validate: Validate,
) -> None:
    transport = _Transport()
    pub = _publisher(transport)
    reading = Reading(METER, "voltage_l1", Decimal("230.5"), "V", 1, ReadingSource.POLL, "02010100")
    await pub.handle(
        [
            MeterStatus(METER, True, ProtocolKind.DLT645, "m", None, 1),
            ReadingsBatch(METER, ProtocolKind.DLT645, ReadingSource.POLL, 1, [reading]),
            MeterEvent(EventKind.METER_ONLINE, Severity.INFO, 1, METER),
            MeterEvent(EventKind.INVALID_TRAFFIC, Severity.WARNING, 1, None),
        ]
    )
    got = [(m.topic, m.qos, m.retain) for m in transport.sent]
    assert got == [
        ("ivy/v1/meters/000000001234/status", 1, True),
        ("ivy/v1/meters/000000001234/telemetry", 1, False),
        ("ivy/v1/meters/000000001234/events", 1, False),
        ("ivy/v1/gateway/events", 1, False),
    ]
    for name, message in zip(
        ("status", "telemetry", "events", "events"), transport.sent, strict=True
    ):
        validate(name, message.payload)


async def test_command_response_and_gateway_messages(validate: Validate) -> None:
    transport = _Transport()
    pub = _publisher(transport, stats=lambda: {"connections": 4, "metersOnline": 3})
    pub.publish_command_response(METER, CommandResult.ok("c", {"state": "open"}))
    pub.publish_stats()
    response, stats = transport.sent
    assert response.topic.endswith("/command/response")
    assert (stats.topic, stats.qos, stats.retain) == ("ivy/v1/gateway/stats", 0, False)
    data = validate("gateway-stats", stats.payload)
    assert (data["connections"], data["notPublished"], data["published"]) == (4, 2, 5)
    assert transport.will is not None
    assert transport.birth is not None
    will, birth = transport.will(), transport.birth()
    assert (will.topic, will.retain, will.qos) == ("ivy/v1/gateway/status", True, 1)
    assert json.loads(will.payload)["status"] == "offline"
    assert validate("gateway-status", birth.payload)["status"] == "online"


async def test_stats_are_published_periodically() -> None:
    transport = _Transport()
    pub = _publisher(transport, stats_interval_s=0.01)
    task = asyncio.create_task(pub.run())
    async with asyncio.timeout(2):
        while True:
            if any(m.topic.endswith("stats") for m in transport.sent):
                break
            await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
