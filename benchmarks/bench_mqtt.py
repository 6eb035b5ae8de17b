"""MQTT north side: publish throughput and reading → subscriber latency.

* embedded amqtt broker (in this process, ``internal_message_broadcast``) and the local
  Mosquitto (127.0.0.1:1883, external mode through aiomqtt), QoS 0 and QoS 1;
* telemetry path: ``MqttPublisher.handle`` of 10-reading batches into Mosquitto,
  counted in readings/s (target ≥ 5,000/s);
* end-to-end latency p50/p99 from ``handle`` to a subscriber's receipt, at a steady rate.

Each rate is messages (or readings) divided by the time until the subscriber had the last
one. Mosquitto rows are left out (with a note) when it is not running.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import time
import uuid
from collections.abc import Callable
from decimal import Decimal

import aiomqtt
from paho.mqtt.client import MQTTv311

from harness import Row
from ivy_gateway.adapters.mqtt import (
    BrokerConfig,
    EmbeddedBroker,
    EmbeddedTransport,
    ExternalBrokerConfig,
    ExternalTransport,
    MqttPublisher,
    OutMessage,
    Topics,
    Transport,
)
from ivy_gateway.domain.events import ReadingsBatch
from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.domain.quantities import Reading, ReadingSource

V311 = aiomqtt.ProtocolVersion(MQTTv311)
MESSAGES = 20_000
PAYLOAD = b"x" * 200
READINGS_PER_BATCH = 10
BATCHES = 2_000


def _mosquitto_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 1883), timeout=0.5):
            return True
    except OSError:
        return False


def _batch(seq: int, meter: MeterId) -> ReadingsBatch:
    readings = [
        Reading(meter, f"q{i}", Decimal("230.5") + i, "V", seq, ReadingSource.POLL, "02010100")
        for i in range(READINGS_PER_BATCH - 1)
    ]
    readings.append(
        Reading(
            meter, "sent_ns", Decimal(time.perf_counter_ns()), "ns", seq, ReadingSource.POLL, ""
        )
    )
    return ReadingsBatch(meter, ProtocolKind.DLT645, ReadingSource.POLL, seq, readings)


async def _subscriber(
    port: int,
    topic: str,
    count: int,
    ready: asyncio.Event,
    on_message: Callable[[aiomqtt.Message], None] | None = None,
    idle_s: float = 5.0,
) -> tuple[int, float]:
    """(messages received, time of the last one): stops at ``count`` or ``idle_s`` of quiet."""
    async with aiomqtt.Client(
        "127.0.0.1", port, protocol=V311, max_queued_incoming_messages=0
    ) as c:
        await c.subscribe(topic, qos=1)
        ready.set()
        got, last = 0, time.perf_counter()
        messages = aiter(c.messages)
        while got < count:
            try:
                message = await asyncio.wait_for(anext(messages), idle_s)
            except TimeoutError:
                break
            if on_message is not None:
                on_message(message)
            got, last = got + 1, time.perf_counter()
        return got, last


async def _until_connected(transport: Transport) -> None:
    async with asyncio.timeout(10):
        while True:
            if transport.stats.connected:
                return
            await asyncio.sleep(0.01)


async def _throughput(
    transport: Transport, port: int, topics: Topics, qos: int, *, by_ack: bool
) -> tuple[float, int]:
    """(messages/s, messages a same-process subscriber missed).

    ``by_ack``: the rate at which the broker accepted them (QoS 1: PUBACKs; QoS 0: handed
    to the socket), for a broker that drops for a slow subscriber (Mosquitto queues at most
    ``max_queued_messages`` = 1000 per client, and this subscriber shares the loop).
    Otherwise the rate at which the subscriber received them.
    """
    ready = asyncio.Event()
    topic = f"{topics.prefix}/bench"
    sub = asyncio.create_task(_subscriber(port, topic, MESSAGES, ready, idle_s=2.0))
    runner = asyncio.create_task(transport.run())
    try:
        await _until_connected(transport)
        await ready.wait()
        base = transport.stats.published
        t0 = time.perf_counter()
        for _ in range(MESSAGES):
            transport.send(OutMessage(topic, PAYLOAD, qos=qos))
        if by_ack:
            while True:
                if transport.stats.published - base >= MESSAGES:
                    break
                await asyncio.sleep(0.001)
            acked = time.perf_counter()
        got, t1 = await asyncio.wait_for(sub, 300)
        rate = MESSAGES / (acked - t0) if by_ack else got / (t1 - t0)
        return rate, MESSAGES - got
    finally:
        runner.cancel()
        sub.cancel()
        await asyncio.gather(runner, sub, return_exceptions=True)


async def _telemetry(transport: Transport, port: int, topics: Topics) -> tuple[float, float, float]:
    """(readings/s flat out, latency p50 ms, latency p99 ms at a steady 1,000 readings/s)."""
    pub = MqttPublisher(transport, topics, gateway_id="bench", version="bench")
    meter = MeterId("000000000001")
    latencies: list[float] = []

    def record(message: aiomqtt.Message) -> None:
        sent = json.loads(message.payload)["values"]["sent_ns"]["value"]
        latencies.append((time.perf_counter_ns() - sent) / 1e6)

    runner = asyncio.create_task(pub.run())
    try:
        await _until_connected(transport)
        ready = asyncio.Event()
        sub = asyncio.create_task(_subscriber(port, topics.telemetry(meter), BATCHES, ready))
        await ready.wait()
        t0 = time.perf_counter()
        for seq in range(BATCHES):
            await pub.handle([_batch(seq, meter)])
        got, t1 = await asyncio.wait_for(sub, 300)
        flat_out = got * READINGS_PER_BATCH / (t1 - t0)
        steady = 300
        ready = asyncio.Event()
        sub = asyncio.create_task(_subscriber(port, topics.telemetry(meter), steady, ready, record))
        await ready.wait()
        for seq in range(steady):
            await pub.handle([_batch(seq, meter)])
            await asyncio.sleep(READINGS_PER_BATCH / 1000)
        await asyncio.wait_for(sub, 60)
        cuts = statistics.quantiles(latencies, n=100)
        return flat_out, cuts[49], cuts[98]
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def _run() -> list[Row]:
    rows: list[Row] = []
    topics = Topics(f"bench/{uuid.uuid4().hex[:8]}")
    # Anonymous clients may subscribe under the prefix only: the bench prefix it is.
    config = BrokerConfig(host="127.0.0.1", port=0, ws_port=None, topic_prefix=topics.prefix)
    async with EmbeddedBroker(config) as broker:
        port = broker.tcp_port
        assert port is not None
        for qos in (0, 1):
            rate, lost = await _throughput(
                EmbeddedTransport(broker), port, topics, qos, by_ack=False
            )
            rows.append(
                Row(
                    "mqtt",
                    f"embedded amqtt publish, QoS {qos}",
                    rate,
                    "msg/s",
                    note=f"200 B, aiomqtt subscriber in-process, {lost} of {MESSAGES} lost",
                )
            )
        flat, p50, p99 = await _telemetry(EmbeddedTransport(broker), port, topics)
        rows.append(
            Row(
                "mqtt",
                "embedded telemetry (handle → subscriber)",
                flat,
                "readings/s",
                note=f"{READINGS_PER_BATCH} readings/message",
            )
        )
        rows.append(Row("mqtt", "embedded latency p50", p50, "ms", note="at 1,000 readings/s"))
        rows.append(Row("mqtt", "embedded latency p99", p99, "ms", note="at 1,000 readings/s"))
    if not _mosquitto_up():
        rows.append(Row("mqtt", "mosquitto rows skipped", 0, "", note="no broker on :1883"))
        return rows

    def external() -> ExternalTransport:
        return ExternalTransport(ExternalBrokerConfig(host="127.0.0.1", port=1883))

    for qos in (0, 1):
        rate, lost = await _throughput(external(), 1883, topics, qos, by_ack=True)
        rows.append(
            Row(
                "mqtt",
                f"mosquitto publish (aiomqtt), QoS {qos}",
                rate,
                "msg/s",
                note=f"200 B, broker accept rate; in-loop subscriber too slow: {lost} dropped",
            )
        )
    flat, p50, p99 = await _telemetry(external(), 1883, topics)
    rows.append(
        Row(
            "mqtt",
            "mosquitto telemetry (handle → subscriber)",
            flat,
            "readings/s",
            target="≥ 5,000",
            note=f"{READINGS_PER_BATCH} readings/message, QoS 1",
        )
    )
    rows.append(Row("mqtt", "mosquitto latency p50", p50, "ms", note="at 1,000 readings/s"))
    rows.append(Row("mqtt", "mosquitto latency p99", p99, "ms", note="at 1,000 readings/s"))
    return rows


def results() -> list[Row]:
    return asyncio.run(_run())
