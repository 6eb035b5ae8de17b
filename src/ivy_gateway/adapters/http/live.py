"""``LiveFeed``: runtime events fanned out to Server-Sent-Events clients.

::

    Telemetry ──handle(batch)──► LiveFeed ──put_nowait──► one bounded queue per client
                                  (encodes each event      │ full: the client is dropped
                                   once, as the MQTT        ▼ (it gets a final ``dropped``
                                   payload)           GET /api/v1/live   event if it reads on)

``handle`` never waits: a client that reads too slowly loses its subscription instead of
slowing telemetry or the other clients. It reconnects (``EventSource`` does that by itself)
and starts again from live data; there is no replay.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ivy_gateway.adapters.mqtt import payloads
from ivy_gateway.domain.events import GatewayEvent, MeterStatus, ReadingsBatch
from ivy_gateway.domain.meter import MeterId

__all__ = ["LiveFeed", "LiveMessage", "Subscription", "TooManySubscribers"]

log = logging.getLogger(__name__)


class TooManySubscribers(Exception):
    """``LiveFeed.subscribe`` beyond ``max_subscribers``."""


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """One SSE event: ``event: <kind>`` with ``data: <json>`` (the MQTT payload)."""

    seq: int
    kind: str  # "telemetry" | "status" | "event" | "dropped"
    meter: MeterId | None
    data: str


class Subscription:
    """One client's bounded queue. Iterate with ``await next_message()`` until it is None."""

    def __init__(self, feed: LiveFeed, meter: MeterId | None, kinds: frozenset[str]) -> None:
        self._feed = feed
        self.meter = meter
        self.kinds = kinds
        self._queue: asyncio.Queue[LiveMessage | None] = asyncio.Queue(feed.queue_size + 1)
        self.closed = False
        self.dropped = False

    def wants(self, message: LiveMessage) -> bool:
        if message.kind not in self.kinds:
            return False
        return self.meter is None or message.meter == self.meter

    def offer(self, message: LiveMessage) -> bool:
        """Queue ``message``; False (and the subscription ends) when the client lags."""
        if self.closed:
            return False
        if self._queue.qsize() >= self._feed.queue_size:
            self._drop()
            return False
        self._queue.put_nowait(message)
        return True

    def _drop(self) -> None:
        # The undelivered backlog is useless now; tell the client why the stream ends.
        while not self._queue.empty():
            self._queue.get_nowait()
        self.dropped = True
        notice = LiveMessage(
            0, "dropped", self.meter, '{"reason":"client too slow: reconnect to resume"}'
        )
        self._queue.put_nowait(notice)
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._feed.discard(self)
            self._queue.put_nowait(None)  # the queue keeps one slot free for this

    async def next_message(self) -> LiveMessage | None:
        """The next message, or None once the subscription has ended."""
        return await self._queue.get()


class LiveFeed:
    """A ``TelemetrySink`` that copies every event to the subscribed SSE clients."""

    KINDS = frozenset({"telemetry", "status", "event"})

    def __init__(
        self, gateway_id: str = "", *, queue_size: int = 1_000, max_subscribers: int = 100
    ) -> None:
        if queue_size < 1 or max_subscribers < 1:
            raise ValueError("queue_size and max_subscribers must be at least 1")
        self.gateway_id = gateway_id
        self.queue_size = queue_size
        self.max_subscribers = max_subscribers
        self._subscribers: set[Subscription] = set()
        self._seq = itertools.count(1)
        self._closed = False
        self.delivered = 0
        self.dropped_clients = 0

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(
        self, meter: MeterId | None = None, kinds: frozenset[str] | None = None
    ) -> Subscription:
        if len(self._subscribers) >= self.max_subscribers:
            raise TooManySubscribers(f"at most {self.max_subscribers} live clients")
        sub = Subscription(self, meter, self.KINDS if kinds is None else kinds)
        if self._closed:
            sub.close()
        else:
            self._subscribers.add(sub)
        return sub

    def discard(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def close(self) -> None:
        """End every subscription (their streams finish); later ones end at once."""
        self._closed = True
        for sub in list(self._subscribers):
            sub.close()

    async def handle(self, events: Sequence[GatewayEvent]) -> None:
        if not self._subscribers:
            return  # nobody listens: do not even encode
        for ev in events:
            message = self._encode(ev)
            for sub in list(self._subscribers):
                if not sub.wants(message):
                    continue
                if sub.offer(message):
                    self.delivered += 1
                elif sub.dropped:
                    self.dropped_clients += 1
                    log.warning("live client dropped: it fell %d events behind", self.queue_size)

    def _encode(self, ev: GatewayEvent) -> LiveMessage:
        seq = next(self._seq)
        if isinstance(ev, ReadingsBatch):
            return LiveMessage(seq, "telemetry", ev.meter, payloads.telemetry(ev).decode())
        if isinstance(ev, MeterStatus):
            data = payloads.meter_status(ev, self.gateway_id).decode()
            return LiveMessage(seq, "status", ev.meter, data)
        return LiveMessage(seq, "event", ev.meter, payloads.event(ev).decode())
