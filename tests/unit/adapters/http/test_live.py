"""LiveFeed fan-out and GET /api/v1/live (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from ivy_gateway.adapters.http import LiveFeed, Subscription, TooManySubscribers
from ivy_gateway.domain.events import EventKind, MeterEvent, MeterStatus, ReadingsBatch, Severity
from ivy_gateway.domain.meter import ConnectionInfo, MeterId, ProtocolKind
from ivy_gateway.domain.quantities import Reading, ReadingSource

Client = Callable[..., httpx.AsyncClient]
Validate = Callable[[str, bytes | str | dict[str, Any]], dict[str, Any]]
NOW_MS = 1_764_201_600_000
METER = MeterId("000000001234")
OTHER = MeterId("000000005678")


def batch(meter: MeterId = METER, value: str = "230.5") -> ReadingsBatch:
    reading = Reading(meter, "voltage", Decimal(value), "V", NOW_MS, ReadingSource.POLL, "02010100")
    return ReadingsBatch(meter, ProtocolKind.DLT645, ReadingSource.POLL, NOW_MS, [reading])


def status(meter: MeterId = METER) -> MeterStatus:
    return MeterStatus(
        meter, True, ProtocolKind.DLMS, "em114070", ConnectionInfo(3, "10.1.2.3", 5000), NOW_MS
    )


def event(meter: MeterId | None = METER) -> MeterEvent:
    return MeterEvent(EventKind.OVERVOLTAGE, Severity.WARNING, NOW_MS, meter, {"value": 260})


async def test_every_subscriber_gets_every_event_as_the_mqtt_payload(validate: Validate) -> None:
    feed = LiveFeed("gw-1")
    first, second = feed.subscribe(), feed.subscribe()
    await feed.handle([batch(), status(), event()])
    for sub in (first, second):
        kinds = []
        for _ in range(3):
            message = await sub.next_message()
            assert message is not None
            kinds.append(message.kind)
            schema = {"telemetry": "telemetry", "status": "status", "event": "events"}
            validate(schema[message.kind], message.data)
        assert kinds == ["telemetry", "status", "event"]
    assert json.loads(await asyncio.wait_for(_status_data(feed), 1))["gatewayId"] == "gw-1"
    assert feed.delivered == 9  # 3 events x 2 subscribers, then 1 status x 3


async def _status_data(feed: LiveFeed) -> str:
    sub = feed.subscribe(kinds=frozenset({"status"}))
    await feed.handle([status()])
    message = await sub.next_message()
    assert message is not None
    return message.data


async def test_subscribers_filter_by_meter_and_kind() -> None:
    feed = LiveFeed()
    only_other = feed.subscribe(OTHER)
    only_events = feed.subscribe(kinds=frozenset({"event"}))
    await feed.handle([batch(METER), batch(OTHER), event(None), status(OTHER)])
    feed.close()
    seen_other = [m.kind for m in await _drain(only_other)]
    seen_events = [(m.kind, m.meter) for m in await _drain(only_events)]
    assert seen_other == ["telemetry", "status"]
    assert seen_events == [("event", None)]


async def _drain(sub: Any) -> list[Any]:
    out = []
    while (message := await sub.next_message()) is not None:
        out.append(message)
    return out


async def test_a_slow_client_is_dropped_and_told_why() -> None:
    feed = LiveFeed(queue_size=3)
    slow, fast = feed.subscribe(), feed.subscribe()
    for i in range(3):
        await feed.handle([batch(value=str(i))])
        assert await fast.next_message() is not None
    await feed.handle([batch(value="99")])  # the fourth unread message overflows ``slow``
    assert slow.dropped
    assert feed.subscriber_count == 1
    assert feed.dropped_clients == 1
    messages = await _drain(slow)
    assert [m.kind for m in messages] == ["dropped"]
    assert "too slow" in json.loads(messages[0].data)["reason"]
    next_message = await fast.next_message()
    assert next_message is not None
    assert '"value":99' in next_message.data


async def test_nothing_is_encoded_without_subscribers() -> None:
    feed = LiveFeed()
    await feed.handle([batch()])
    sub = feed.subscribe()
    await feed.handle([batch()])
    message = await sub.next_message()
    assert message is not None
    assert message.seq == 1  # the first event was never even numbered


async def test_subscribers_are_bounded_and_close_ends_everything() -> None:
    feed = LiveFeed(max_subscribers=2)
    subs = [feed.subscribe(), feed.subscribe()]
    with pytest.raises(TooManySubscribers):
        feed.subscribe()
    feed.close()
    for sub in subs:
        assert await sub.next_message() is None
    late = feed.subscribe()
    assert await late.next_message() is None
    assert feed.subscriber_count == 0


def test_feed_sizes_are_validated() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LiveFeed(queue_size=0)


class ObservedFeed(LiveFeed):
    """Signals each new subscription, so a test knows when its stream is listening."""

    def __init__(self) -> None:
        super().__init__("gw-test")
        self.subscribed = asyncio.Event()

    def subscribe(
        self, meter: MeterId | None = None, kinds: frozenset[str] | None = None
    ) -> Subscription:
        sub = super().subscribe(meter, kinds)
        self.subscribed.set()
        return sub


def parse_sse(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            fields[name] = value
        if fields:
            events.append(fields)
    return events


async def test_sse_stream_carries_live_events(make_client: Client, validate: Validate) -> None:
    feed = ObservedFeed()
    client = make_client(feed=feed)
    request = asyncio.create_task(client.get("/api/v1/live"))
    await asyncio.wait_for(feed.subscribed.wait(), 5)
    await feed.handle([batch(), status(), event()])
    feed.close()  # ends the stream, so the in-memory transport returns the whole body
    response = await asyncio.wait_for(request, 5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert events[0] == {"": "connected", "retry": "3000"}
    assert [e["event"] for e in events[1:]] == ["telemetry", "status", "event"]
    assert [e["id"] for e in events[1:]] == ["1", "2", "3"]
    telemetry = validate("telemetry", events[1]["data"])
    assert telemetry["values"]["voltage"] == {"value": 230.5, "unit": "V", "di": "02010100"}
    validate("status", events[2]["data"])
    validate("events", events[3]["data"])


async def test_sse_filters_and_bad_filters(make_client: Client) -> None:
    feed = ObservedFeed()
    client = make_client(feed=feed)
    bad_meter = await client.get("/api/v1/live", params={"meter": "12"})
    assert bad_meter.status_code == 422
    bad_types = await client.get("/api/v1/live", params={"types": "telemetry,gossip"})
    assert bad_types.status_code == 400
    assert bad_types.json()["error"]["code"] == "invalid_parameter"
    request = asyncio.create_task(
        client.get("/api/v1/live", params={"meter": OTHER.value, "types": "telemetry"})
    )
    await asyncio.wait_for(feed.subscribed.wait(), 5)
    await feed.handle([batch(METER), status(OTHER), batch(OTHER)])
    feed.close()
    events = parse_sse((await request).text)
    assert [(e["event"], json.loads(e["data"])["meterId"]) for e in events[1:]] == [
        ("telemetry", OTHER.value)
    ]


async def test_sse_refuses_clients_beyond_the_limit(feed: LiveFeed, make_client: Client) -> None:
    held = [feed.subscribe() for _ in range(feed.max_subscribers)]
    response = await make_client().get("/api/v1/live")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "busy"
    for sub in held:
        sub.close()


async def test_sse_without_a_feed_is_404(make_client: Client) -> None:
    response = await make_client(feed=None).get("/api/v1/live")
    assert response.status_code == 404
