"""What the publisher hands a transport, and the bounded queue in front of every transport.

::

    publisher ──send()──► Outbox (bounded deque, FIFO) ──► transport pump ──► broker
                 never waits   full: drop the OLDEST,        in order; messages in flight
                               count it in not_published     when a link drops go back to
                                                             the front, still in order

The outbox is where backpressure turns into a decision: the broker may be away for minutes
(external mode) or slower than the meters (embedded amqtt), and the event loop must not
block or grow without bound. Oldest first, because dashboards and alarms want the newest
values; every drop is counted and goes out on ``gateway/stats``, so nothing that was
accepted is lost silently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["InboundHandler", "OutMessage", "Outbox", "Transport", "TransportStats"]

log = logging.getLogger(__name__)

#: ``(topic, payload, requested_by)`` of a message a client published to the gateway.
InboundHandler = Callable[[str, bytes, str], None]


@dataclass(frozen=True, slots=True)
class OutMessage:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True, slots=True)
class TransportStats:
    queued: int  # waiting in the outbox (in flight included)
    published: int  # handed to the broker (QoS 1: acknowledged)
    not_published: int  # dropped from a full outbox: accepted but never delivered
    connected: bool
    reconnects: int


class Transport(Protocol):
    """Moves ``OutMessage``s to a broker and client publishes back to the gateway."""

    def send(self, message: OutMessage) -> None:
        """Queue ``message``; never waits, never raises for a busy or absent broker."""
        ...

    def set_session(
        self, *, will: Callable[[], OutMessage], birth: Callable[[], OutMessage]
    ) -> None:
        """``birth`` goes out first on every (re)connect; ``will`` when the gateway dies."""
        ...

    def set_inbound(self, topic_filter: str, handler: InboundHandler) -> None:
        """Call ``handler`` for every client publish matching ``topic_filter``."""
        ...

    @property
    def stats(self) -> TransportStats: ...

    async def run(self) -> None:
        """Deliver until cancelled; on cancellation publish the will, then stop cleanly."""
        ...


class Outbox:
    """A bounded FIFO of ``OutMessage``s that drops its oldest entries when full."""

    def __init__(self, max_size: int, *, warn_interval_s: float = 10.0) -> None:
        if max_size < 1:
            raise ValueError("an outbox holds at least one message")
        self.max_size = max_size
        self._queue: deque[OutMessage] = deque()
        self._ready = asyncio.Event()
        self.dropped = 0
        self._warn_interval_s = warn_interval_s
        self._last_warn = float("-inf")
        self._dropped_since_warn = 0

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, message: OutMessage) -> None:
        self._queue.append(message)
        self._trim()
        self._ready.set()

    def put_front(self, messages: Iterable[OutMessage]) -> None:
        """Give back messages taken but not delivered, keeping their original order."""
        self._queue.extendleft(reversed(list(messages)))
        self._trim()
        if self._queue:
            self._ready.set()

    def get_nowait(self) -> OutMessage | None:
        if not self._queue:
            self._ready.clear()
            return None
        return self._queue.popleft()

    async def get(self) -> OutMessage:
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def _trim(self) -> None:
        excess = len(self._queue) - self.max_size
        if excess <= 0:
            return
        for _ in range(excess):
            self._queue.popleft()
        self.dropped += excess
        self._dropped_since_warn += excess
        now = time.monotonic()
        if now - self._last_warn >= self._warn_interval_s:
            log.warning(
                "MQTT outbox full (%d messages): dropped the %d oldest (total not published: %d)",
                self.max_size,
                self._dropped_since_warn,
                self.dropped,
            )
            self._last_warn = now
            self._dropped_since_warn = 0
