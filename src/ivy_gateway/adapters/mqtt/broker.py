"""The embedded MQTT broker (amqtt 0.12, MQTT 3.1.1 only) inside the gateway's event loop.

::

    EmbeddedBroker ── amqtt.Broker
      listeners   "default": TCP host:port (1883)     "ws": WebSocket host:ws_port (9001)
                  both TLS (MQTTS / WSS) when ``cert_file`` and ``key_file`` are set
      plugins     PasswordAuthPlugin + RoleAclPlugin (access.py) — nothing else: no $SYS,
                  no packet logger (passing ``plugins`` replaces amqtt's default set)
    EmbeddedTransport ── Outbox ──► broker.retain_message + internal_message_broadcast

The gateway's own publishes do not go through a loopback client: they are handed to
``internal_message_broadcast`` (ECOSYSTEM.md §2.1, ≈2× a loopback client). That call feeds
an unbounded queue (§4.4), so ``EmbeddedTransport`` pumps from its own bounded outbox and
waits while amqtt's backlog is above ``max_backlog``.

amqtt quirks handled here: ``internal_message_broadcast`` never retains, so retained topics
are also stored with ``retain_message``; sessions expire (``session_expiry_s``) so clients
with random ids cannot grow memory for ever (§4.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from amqtt.broker import Broker  # type: ignore[import-untyped]
from amqtt.errors import BrokerError  # type: ignore[import-untyped]

from ivy_gateway.domain.errors import GatewayError

from .access import PasswordAuthPlugin, Role, RoleAclPlugin, filter_covers
from .outbox import InboundHandler, Outbox, OutMessage, TransportStats
from .topics import validate_prefix

__all__ = ["BrokerConfig", "BrokerPortInUse", "BrokerUser", "EmbeddedBroker", "EmbeddedTransport"]

log = logging.getLogger(__name__)

_PLUGIN_PATH = f"{__package__}.access"


class BrokerPortInUse(GatewayError):
    """A listener port is taken; ``listener`` is ``"tcp"`` or ``"ws"``."""

    def __init__(self, listener: str, host: str, port: int) -> None:
        super().__init__(f"MQTT {listener} port {host}:{port} is already in use")
        self.listener = listener
        self.host = host
        self.port = port


@dataclass(frozen=True, slots=True)
class BrokerUser:
    password_hash: str = field(repr=False)  # argon2id, from ``hash_password``
    role: Role = Role.READER


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    host: str = "0.0.0.0"
    port: int = 1883  # 0: any free port (tests)
    ws_port: int | None = 9001  # None: no WebSocket listener
    topic_prefix: str = "ivy/v1"
    users: Mapping[str, BrokerUser] = field(default_factory=dict)
    allow_anonymous: bool = True  # only honoured while ``users`` is empty
    anonymous_role: Role = Role.READER
    max_connections: int = 0  # per listener; 0 = unlimited
    session_expiry_s: int = 3600
    # TLS for both listeners (MQTT over TLS, WSS) when both are set; PEM files.
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("TLS for the embedded broker needs both cert_file and key_file")

    @property
    def tls(self) -> bool:
        return self.cert_file is not None

    def _listener(self, kind: str, port: int) -> dict[str, Any]:
        listener: dict[str, Any] = {
            "type": kind,
            "bind": f"{self.host}:{port}",
            "max_connections": self.max_connections,
        }
        if self.cert_file is not None and self.key_file is not None:
            listener.update(ssl=True, certfile=str(self.cert_file), keyfile=str(self.key_file))
        return listener

    def to_amqtt(self) -> dict[str, Any]:
        validate_prefix(self.topic_prefix)
        listeners: dict[str, Any] = {"default": self._listener("tcp", self.port)}
        if self.ws_port is not None:
            listeners["ws"] = self._listener("ws", self.ws_port)
        access = {
            "prefix": self.topic_prefix,
            "users": {name: u.password_hash for name, u in self.users.items()},
            "roles": {name: Role(u.role).value for name, u in self.users.items()},
            "allow_anonymous": self.allow_anonymous,
            "anonymous_role": Role(self.anonymous_role).value,
        }
        return {
            "listeners": listeners,
            "session_expiry_interval": self.session_expiry_s,
            "plugins": {
                f"{_PLUGIN_PATH}.{PasswordAuthPlugin.__name__}": access,
                f"{_PLUGIN_PATH}.{RoleAclPlugin.__name__}": dict(access),
            },
        }


class _Broker(Broker):  # type: ignore[misc]
    """amqtt's broker, closing every client socket it was given.

    amqtt's shutdown can race a DISCONNECT it is still handling and then never close that
    connection's socket (a ResourceWarning in tests, a leaked fd in a long-lived process).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._writers: set[asyncio.StreamWriter] = set()

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        self._writers.add(writer)
        try:
            await super().stream_connected(reader, writer, listener_name)
        finally:
            self._writers.discard(writer)
            writer.close()

    def close_sockets(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()


class EmbeddedBroker:
    """``async with EmbeddedBroker(cfg) as broker:`` — listening until the block ends."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self._broker: Any = None
        self._inbound: list[tuple[str, InboundHandler]] = []

    async def start(self) -> None:
        self._broker = _Broker(self.config.to_amqtt())
        try:
            await self._broker.start()
        except BrokerError as exc:
            self._broker = None
            cause = exc.__cause__
            if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
                raise self._port_error(cause) from None
            raise
        acl = self._broker.plugins_manager.get_plugin(RoleAclPlugin.__name__)
        acl.inbound = self._dispatch
        log.info(
            "embedded MQTT broker on %s tcp:%d ws:%s tls:%s (users: %d, anonymous: %s)",
            self.config.host,
            self.tcp_port,
            self.ws_port,
            self.config.tls,
            len(self.config.users),
            self.config.allow_anonymous and not self.config.users,
        )

    def _port_error(self, cause: OSError) -> BrokerPortInUse:
        # amqtt does not say which listener failed; the TCP one is bound first.
        text = str(cause)
        if self.config.ws_port is not None and f":{self.config.ws_port}" in text:
            return BrokerPortInUse("ws", self.config.host, self.config.ws_port)
        return BrokerPortInUse("tcp", self.config.host, self.config.port)

    async def stop(self) -> None:
        if self._broker is not None:
            broker, self._broker = self._broker, None
            await broker.shutdown()
            broker.close_sockets()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _listener_port(self, name: str) -> int | None:
        if self._broker is None:
            return None
        server = self._broker._servers.get(name)  # amqtt keeps no public port accessor
        if server is None or not server.instance.sockets:
            return None
        port: int = server.instance.sockets[0].getsockname()[1]
        return port

    @property
    def tcp_port(self) -> int | None:
        """The bound TCP port (useful with ``port=0``); None when not started."""
        return self._listener_port("default")

    @property
    def ws_port(self) -> int | None:
        return self._listener_port("ws")

    def add_inbound(self, topic_filter: str, handler: InboundHandler) -> None:
        self._inbound.append((topic_filter, handler))

    def _dispatch(self, topic: str, payload: bytes, username: str) -> None:
        for topic_filter, handler in self._inbound:
            if filter_covers(topic_filter, topic):
                handler(topic, payload, username)

    def backlog(self) -> int:
        """Messages amqtt still has to fan out (its queues are unbounded)."""
        if self._broker is None:
            return 0
        queued: int = self._broker._broadcast_queue.qsize()
        return queued + len(self._broker._tasks_queue)

    async def publish(self, message: OutMessage) -> None:
        if self._broker is None:
            raise RuntimeError("the embedded broker is not running")
        if message.retain:
            await self._broker.retain_message(None, message.topic, message.payload, message.qos)
        # qos None: each subscriber gets its granted QoS (≤ 1 for what we publish at QoS 1).
        qos = None if message.qos >= 1 else 0
        await self._broker.internal_message_broadcast(message.topic, message.payload, qos)


class EmbeddedTransport:
    """``Transport`` into an ``EmbeddedBroker`` of the same process."""

    def __init__(
        self, broker: EmbeddedBroker, *, outbox_size: int = 100_000, max_backlog: int = 2_000
    ) -> None:
        self._broker = broker
        self._outbox = Outbox(outbox_size)
        self._max_backlog = max_backlog
        self._published = 0
        self._will: Callable[[], OutMessage] | None = None
        self._birth: Callable[[], OutMessage] | None = None
        self._running = False

    def send(self, message: OutMessage) -> None:
        self._outbox.put(message)

    def set_session(
        self, *, will: Callable[[], OutMessage], birth: Callable[[], OutMessage]
    ) -> None:
        self._will, self._birth = will, birth

    def set_inbound(self, topic_filter: str, handler: InboundHandler) -> None:
        self._broker.add_inbound(topic_filter, handler)

    @property
    def stats(self) -> TransportStats:
        return TransportStats(
            queued=len(self._outbox),
            published=self._published,
            not_published=self._outbox.dropped,
            connected=self._running,
            reconnects=0,
        )

    async def run(self) -> None:
        self._running = True
        try:
            if self._birth is not None:
                await self._broker.publish(self._birth())
            while True:
                message = await self._outbox.get()
                # amqtt signals nothing when its queue drains, so poll its size.
                while self._broker.backlog() > self._max_backlog:  # noqa: ASYNC110
                    await asyncio.sleep(0.002)
                await self._broker.publish(message)
                self._published += 1
        finally:
            self._running = False
            # There is no client connection whose death the broker could notice, so the
            # "last will" is published on the way out (and dies with the broker anyway).
            if self._will is not None:
                with contextlib.suppress(Exception):
                    await self._broker.publish(self._will())
