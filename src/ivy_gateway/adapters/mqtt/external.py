"""``Transport`` to an external broker (Mosquitto, EMQX …) over aiomqtt, surviving outages.

::

    send() ─► Outbox ─► pump ──(≤ window QoS 1 publishes in flight)──► paho ─► broker
                ▲                    │ not acknowledged when the link drops
                └── put_front ◄──────┘ (original order) — re-sent first after reconnect

    run(): connect ─► subscribe inbound filters ─► birth (gateway online, retained)
             ▲           ─► pump + receive until the link drops
             └── backoff: initial · 2ⁿ, capped, ±20 % jitter; reset after a good connect

aiomqtt does not reconnect by itself (ECOSYSTEM.md §4.5); a new ``Client`` is built per
attempt, with a clean session, the last will (gateway offline, retained) and a raised
``pending_calls_threshold`` (its default of 10 warns on every burst).

Delivery: at least once and in order. A message whose PUBACK was lost with the link is sent
again, so a subscriber can see a repeat (in order: ``…5 6 7 | 6 7 8…``); telemetry carries
``ts`` and the meter id, which make such repeats recognisable. Messages accepted while the
broker is away wait in the outbox; past ``outbox_size`` the oldest are dropped and counted
(``not_published``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import aiomqtt
from paho.mqtt.client import MQTTv311

from .outbox import InboundHandler, Outbox, OutMessage, TransportStats

__all__ = ["ExternalBrokerConfig", "ExternalTransport"]

log = logging.getLogger(__name__)

_SCHEMES = {"mqtt": (1883, False), "tcp": (1883, False), "mqtts": (8883, True), "ssl": (8883, True)}


@dataclass(frozen=True, slots=True)
class ExternalBrokerConfig:
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id: str | None = None
    keepalive_s: int = 30
    outbox_size: int = 100_000
    window: int = 256  # QoS 1 publishes awaiting PUBACK at once
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    timeout_s: float = 10.0  # connect / PUBACK / SUBACK

    @classmethod
    def from_url(cls, url: str, *, password: str | None = None, **options: Any) -> Self:
        """From ``mqtt[s]://[user[:pass]@]host[:port]``; ``password`` wins over the URL's."""
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES or not parts.hostname:
            # The URL may hold a password: name the setting, never echo the value.
            raise ValueError("mqtt.url must look like mqtt[s]://[user[:password]@]host[:port]")
        default_port, tls = _SCHEMES[parts.scheme]
        return cls(
            host=parts.hostname,
            port=parts.port or default_port,
            username=unquote(parts.username) if parts.username else None,
            password=password
            if password is not None
            else (unquote(parts.password) if parts.password else None),
            tls=tls or bool(options.pop("tls", False)),
            **options,
        )

    def describe(self) -> str:
        """The broker address for logs: never the password."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


class ExternalTransport:
    def __init__(self, config: ExternalBrokerConfig) -> None:
        self.config = config
        self._outbox = Outbox(config.outbox_size)
        self._inflight: dict[int, OutMessage] = {}  # insertion order = send order
        self._seq = 0
        self._published = 0
        self._reconnects = 0
        self._connections = 0
        self._connected = False
        self._will: Callable[[], OutMessage] | None = None
        self._birth: Callable[[], OutMessage] | None = None
        self._inbound: list[tuple[str, InboundHandler]] = []
        self._broken = asyncio.Event()

    def send(self, message: OutMessage) -> None:
        self._outbox.put(message)

    def set_session(
        self, *, will: Callable[[], OutMessage], birth: Callable[[], OutMessage]
    ) -> None:
        self._will, self._birth = will, birth

    def set_inbound(self, topic_filter: str, handler: InboundHandler) -> None:
        self._inbound.append((topic_filter, handler))

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def stats(self) -> TransportStats:
        return TransportStats(
            queued=len(self._outbox) + len(self._inflight),
            published=self._published,
            not_published=self._outbox.dropped,
            connected=self._connected,
            reconnects=self._reconnects,
        )

    async def run(self) -> None:
        delay = self.config.backoff_initial_s
        while True:
            connections_before = self._connections
            try:
                await self._session()
            except (aiomqtt.MqttError, OSError) as exc:
                log.warning("MQTT broker %s: %s", self.config.describe(), exc)
            finally:
                self._connected = False
                self._requeue_inflight()
            if self._connections > connections_before:
                delay = self.config.backoff_initial_s  # it worked for a while: start over
            wait = delay * random.uniform(0.8, 1.2)
            log.info("MQTT: reconnecting to %s in %.1fs", self.config.describe(), wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.config.backoff_max_s)

    def _client(self) -> aiomqtt.Client:
        cfg = self.config
        will = None
        if self._will is not None:
            w = self._will()
            will = aiomqtt.Will(w.topic, w.payload, qos=w.qos, retain=w.retain)
        tls = None
        if cfg.tls or cfg.ca_file or cfg.cert_file:
            tls = aiomqtt.TLSParameters(
                ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
                certfile=str(cfg.cert_file) if cfg.cert_file else None,
                keyfile=str(cfg.key_file) if cfg.key_file else None,
            )
        client = aiomqtt.Client(
            cfg.host,
            cfg.port,
            username=cfg.username,
            password=cfg.password,
            identifier=cfg.client_id,
            protocol=aiomqtt.ProtocolVersion(MQTTv311),
            will=will,
            clean_session=True,
            keepalive=cfg.keepalive_s,
            timeout=cfg.timeout_s,
            tls_params=tls,
            max_inflight_messages=cfg.window,
        )
        # Bursts of ``window`` publishes are normal here, not a sign of trouble.
        client.pending_calls_threshold = cfg.window * 4
        return client

    async def _session(self) -> None:
        client = self._client()
        async with client:
            self._connected = True
            self._connections += 1
            if self._connections > 1:
                self._reconnects += 1
            log.info("MQTT: connected to %s", self.config.describe())
            try:
                for topic_filter, _ in self._inbound:
                    await client.subscribe(topic_filter, qos=1)
                if self._birth is not None:
                    birth = self._birth()
                    await client.publish(birth.topic, birth.payload, birth.qos, birth.retain)
                await self._serve(client)
            except asyncio.CancelledError:
                # Graceful stop: a clean DISCONNECT suppresses the will, so say it ourselves.
                if self._will is not None:
                    w = self._will()
                    with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                        await client.publish(w.topic, w.payload, w.qos, w.retain, timeout=2.0)
                raise

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Pump and receive until the link drops (raises MqttError) or cancellation."""
        pending: set[asyncio.Task[None]] = set()
        self._broken = asyncio.Event()
        pump = asyncio.create_task(self._pump(client, pending))
        receive = asyncio.create_task(self._receive(client))
        broken = asyncio.create_task(self._broken.wait())
        try:
            done, _ = await asyncio.wait(
                {pump, receive, broken}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done - {broken}:
                task.result()  # the MqttError of a dropped link surfaces here
            raise aiomqtt.MqttError("a publish failed; starting a new session")
        finally:
            for task in (pump, receive, broken, *pending):
                task.cancel()
            await asyncio.gather(pump, receive, broken, *pending, return_exceptions=True)

    async def _pump(self, client: aiomqtt.Client, pending: set[asyncio.Task[None]]) -> None:
        window = asyncio.Semaphore(self.config.window)
        while True:
            await window.acquire()
            try:
                message = await self._outbox.get()
            except BaseException:
                window.release()
                raise
            self._seq += 1
            self._inflight[self._seq] = message
            # Tasks start in creation order, so paho queues the packets in send order.
            task = asyncio.create_task(self._publish_one(client, self._seq, message, window))
            pending.add(task)
            task.add_done_callback(pending.discard)

    async def _publish_one(
        self, client: aiomqtt.Client, seq: int, message: OutMessage, window: asyncio.Semaphore
    ) -> None:
        try:
            await client.publish(message.topic, message.payload, message.qos, message.retain)
        except aiomqtt.MqttError:
            # Stays in flight: re-sent, in order, by the next session.
            self._broken.set()
            return
        finally:
            window.release()
        self._inflight.pop(seq, None)
        self._published += 1

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = message.topic.value
            payload = message.payload
            data = payload if isinstance(payload, bytes) else str(payload or "").encode()
            for topic_filter, handler in self._inbound:
                if message.topic.matches(topic_filter):
                    handler(topic, data, "mqtt")

    def _requeue_inflight(self) -> None:
        if self._inflight:
            self._outbox.put_front(self._inflight.values())
            self._inflight.clear()
