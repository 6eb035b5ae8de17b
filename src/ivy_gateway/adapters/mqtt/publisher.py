"""``MqttPublisher``: the ``TelemetrySink`` that turns gateway events into MQTT messages.

=====================  =================================  =====  ======
event                  topic                              QoS    retain
=====================  =================================  =====  ======
MeterStatus            {p}/meters/{id}/status             1      yes
ReadingsBatch          {p}/meters/{id}/telemetry          1      no
MeterEvent (meter)     {p}/meters/{id}/events             1      no
MeterEvent (no meter)  {p}/gateway/events                 1      no
CommandResult          {p}/meters/{id}/command/response   1      no
gateway online/off     {p}/gateway/status                 1      yes (offline = last will)
stats every N s        {p}/gateway/stats                  0      no
=====================  =================================  =====  ======

``handle`` only encodes and queues (the transport's outbox is bounded and drops oldest), so
it never waits for a broker and never raises because one is away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from ivy_gateway.domain.commands import CommandResult
from ivy_gateway.domain.events import GatewayEvent, MeterEvent, MeterStatus, ReadingsBatch
from ivy_gateway.domain.meter import MeterId

from . import payloads
from .outbox import OutMessage, Transport
from .topics import Topics

__all__ = ["MqttPublisher"]

log = logging.getLogger(__name__)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class MqttPublisher:
    """Publishes through one ``Transport`` (embedded broker or external client).

    ``stats`` returns the gateway's counters for ``gateway/stats`` (connections,
    metersOnline, readingsPerS, storeQueue, errors …); the publisher adds its own
    ``publishQueue``, ``published`` and ``notPublished``.
    """

    def __init__(
        self,
        transport: Transport,
        topics: Topics,
        *,
        gateway_id: str,
        version: str,
        stats: Callable[[], Mapping[str, float]] | None = None,
        stats_interval_s: float = 30.0,
        now_ms: Callable[[], int] = _wall_ms,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self.topics = topics
        self.gateway_id = gateway_id
        self.version = version
        self._stats = stats
        self._stats_interval_s = stats_interval_s
        self._now_ms = now_ms
        self._monotonic = monotonic
        self._started = monotonic()
        transport.set_session(
            will=lambda: self._gateway_status(False), birth=lambda: self._gateway_status(True)
        )

    # -- TelemetrySink -----------------------------------------------------------------

    async def handle(self, events: Sequence[GatewayEvent]) -> None:
        for ev in events:
            self.transport.send(self._encode(ev))

    def _encode(self, ev: GatewayEvent) -> OutMessage:
        match ev:
            case ReadingsBatch():
                return OutMessage(self.topics.telemetry(ev.meter), payloads.telemetry(ev))
            case MeterStatus():
                body = payloads.meter_status(ev, self.gateway_id)
                return OutMessage(self.topics.status(ev.meter), body, retain=True)
            case MeterEvent():
                topic = (
                    self.topics.events(ev.meter)
                    if ev.meter is not None
                    else self.topics.gateway_events
                )
                return OutMessage(topic, payloads.event(ev))
        raise TypeError(f"not a gateway event: {type(ev).__name__}")  # pragma: no cover

    # -- commands and gateway ----------------------------------------------------------

    def publish_command_response(self, meter: MeterId, result: CommandResult) -> None:
        body = payloads.command_response(result, self._now_ms())
        self.transport.send(OutMessage(self.topics.command_response(meter), body))

    def _gateway_status(self, online: bool) -> OutMessage:
        body = payloads.gateway_status(
            gateway_id=self.gateway_id,
            online=online,
            version=self.version,
            uptime_s=self._monotonic() - self._started,
            ts_ms=self._now_ms(),
        )
        return OutMessage(self.topics.gateway_status, body, qos=1, retain=True)

    def counters(self) -> dict[str, float]:
        """What ``gateway/stats`` carries: the injected counters plus the publisher's own."""
        out: dict[str, float] = dict(self._stats()) if self._stats is not None else {}
        t = self.transport.stats
        out.update(
            publishQueue=t.queued,
            published=t.published,
            notPublished=t.not_published,
            brokerConnected=int(t.connected),
            brokerReconnects=t.reconnects,
        )
        return out

    def publish_stats(self) -> None:
        body = payloads.gateway_stats(
            gateway_id=self.gateway_id, ts_ms=self._now_ms(), counters=self.counters()
        )
        self.transport.send(OutMessage(self.topics.gateway_stats, body, qos=0))

    async def run(self) -> None:
        """Run the transport (connects, births, delivers) and the stats timer until cancelled.

        Cancel it to stop: the transport then publishes ``gateway/status`` offline.
        """
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.transport.run())
            tg.create_task(self._stats_loop())

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self._stats_interval_s)
            try:
                self.publish_stats()
            except Exception:
                log.exception("could not publish gateway stats")
