"""Composition root: Settings → adapters → services → sessions → server, and a clean stop.

``Gateway`` is an async context manager. Entering it opens the store, builds the services
and sessions, starts the meter listener and the background tasks; leaving it stops taking
connections, lets sessions end (their meters go offline), drains telemetry into the store
and closes everything in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Self

from ivy_gateway import __version__
from ivy_gateway.adapters.cluster import RedisCluster
from ivy_gateway.adapters.http import (
    ApiDeps,
    ApiOptions,
    GatewayInfo,
    HttpPortInUse,
    HttpServer,
    LiveFeed,
    TokenVerifier,
    create_api,
    store_check,
)
from ivy_gateway.adapters.mqtt import (
    BrokerConfig,
    BrokerPortInUse,
    BrokerUser,
    CommandIntake,
    EmbeddedBroker,
    EmbeddedTransport,
    ExternalBrokerConfig,
    ExternalTransport,
    MqttPublisher,
    Role,
    Topics,
)
from ivy_gateway.adapters.mqtt.users_file import UsersFile
from ivy_gateway.adapters.storage import open_store
from ivy_gateway.assembly import (
    SystemClock,
    alarm_thresholds,
    meter_options_from_settings,
    redact_url,
    scaled_profiles,
)
from ivy_gateway.binding import PortChoice, choose_port
from ivy_gateway.codec.sniff import ProtocolGuess
from ivy_gateway.domain.errors import ConfigError
from ivy_gateway.domain.events import (
    EventKind,
    MeterEvent,
    Severity,
)
from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.domain.ports import CommandRunner
from ivy_gateway.domain.store import ReadingStore, StoreError
from ivy_gateway.metrics import GatewayMetrics
from ivy_gateway.services import Alarms, Capture, CommandService, Poller, Telemetry
from ivy_gateway.services.coordinator import ClusterCommandRunner
from ivy_gateway.services.recovery import restore_from_store
from ivy_gateway.sessions.context import SessionContext, SessionTimings
from ivy_gateway.sessions.dispatch import Dispatcher, SessionFactory
from ivy_gateway.sessions.dlms import DlmsSession
from ivy_gateway.sessions.dlt645 import Dlt645Session
from ivy_gateway.sessions.profiles import load_profiles
from ivy_gateway.settings import Settings, is_explicit
from ivy_gateway.transport import ServerLimits, StreamServer

__all__ = ["SESSION_FACTORIES", "Gateway"]

log = logging.getLogger(__name__)


#: Binding a *default* port can lose a race with another process starting at the same time
#: (three instances on one host): try the next free port this many times.
_BIND_ATTEMPTS = 5


SESSION_FACTORIES: Mapping[ProtocolGuess, SessionFactory] = {
    ProtocolGuess.DLT645: Dlt645Session,
    ProtocolGuess.IVY_DLMS: DlmsSession,
    ProtocolGuess.RAW_DLMS: DlmsSession,
}


class Gateway:
    """One gateway process. ``async with Gateway(settings) as gw: await gw.wait_stopped()``."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: SystemClock | None = None,
        mqtt_users: UsersFile | None = None,
    ) -> None:
        self.settings = settings
        #: Embedded broker users from the users file (serve turns auth on by default).
        self.mqtt_users = mqtt_users
        self.clock = clock or SystemClock()
        self.started_at = self.clock.monotonic()
        self.ports: dict[str, PortChoice] = {}
        self.store: ReadingStore | None = None
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self.gateway_id = settings.cluster.gateway_id or ""

        profiles = scaled_profiles(
            load_profiles(settings.profiles.paths), settings.polling.interval_scale
        )
        for model in (settings.profiles.default_dlt645, settings.profiles.default_dlms):
            profiles[model]  # fails at start-up, naming the unknown model
        m = settings.meters
        self.telemetry = Telemetry(
            self.clock,
            on_overflow=self._on_overflow,
            queue_size=settings.storage.max_backlog,
            sink_queue_size=settings.storage.max_backlog,
            batch_size=settings.storage.batch_size,
            batch_interval_s=settings.storage.batch_interval_s,
        )
        self.context = SessionContext(
            sink=self.telemetry,
            clock=self.clock,
            profiles=profiles,
            timings=SessionTimings(
                request_timeout_s=settings.polling.timeout_s,
                retries=settings.polling.retries,
                identify_timeout_s=m.identify_timeout_s,
                unknown_traffic_limit_bytes=m.unknown_traffic_limit_bytes,
                max_buffer_bytes=m.max_buffer_bytes,
            ),
            meter_options=meter_options_from_settings(settings),
            default_models={
                ProtocolKind.DLT645: settings.profiles.default_dlt645,
                ProtocolKind.DLMS: settings.profiles.default_dlms,
            },
        )
        self.capture = Capture(m.capture_dir, self.clock)
        self.context.capture = self.capture
        self.metrics = GatewayMetrics(self)  # reads the parts lazily on each scrape
        self.poller = Poller(
            self.context.registry,
            self.telemetry,
            self.clock,
            max_concurrency=settings.polling.concurrency,
            on_poll=self.metrics.observe_poll,
        )
        self.alarms = Alarms(alarm_thresholds(settings), self.telemetry)
        self.commands = CommandService(
            self.context.registry, self.telemetry, self.clock, gate=self.poller
        )
        self.dispatcher = Dispatcher(self.context, SESSION_FACTORIES)
        self.limits = ServerLimits(
            max_connections=m.max_connections,
            max_connections_per_ip=m.max_connections_per_ip,
            max_new_per_ip=m.new_connections_per_ip,
            rate_window_s=m.rate_window_s,
            rate_block_s=m.rate_block_s,
            idle_timeout_s=m.idle_timeout_s,
            max_buffered_bytes=m.max_buffer_bytes,
        )
        self.server: StreamServer | None = None
        self.broker: EmbeddedBroker | None = None
        self.publisher: MqttPublisher | None = None
        self.broker_description = ""
        self.http: HttpServer | None = None
        self.cluster: RedisCluster | None = None
        self.runner: CommandRunner = self.commands  # what MQTT and HTTP call
        self.live_feed: LiveFeed | None = None
        self._broker_ready: Callable[[], str | None] = lambda: None

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _start(self) -> None:
        s = self.settings
        meter_port = choose_port(
            s.meters.host,
            s.meters.port,
            explicit=is_explicit(s, "meters", "port"),
            option="--meter-port (meters.port)",
        )
        self.ports["meters"] = meter_port
        if not self.gateway_id:
            # Host and meter port tell instances on one host apart; "any port" uses the pid.
            suffix = meter_port.port or f"pid{os.getpid()}"
            self.gateway_id = f"{socket.gethostname()}-{suffix}"

        password = None
        if s.storage.password_file is not None:
            password = s.storage.password_file.read_text(encoding="utf-8").strip()
        try:
            self.store = await open_store(s.storage.url, password=password)
        except StoreError as exc:
            raise ConfigError(
                f"cannot open the history store {redact_url(s.storage.url)}: {exc}. "
                "Check storage.url (--db) and that the database is running."
            ) from None
        self._stack.push_async_callback(self.store.close)
        # Durable: the store sink never gives a batch up; it holds up to max_backlog
        # readings while the database is away and flags (event + counter) past that.
        self.telemetry.add_sink(
            "store", self.store, durable=True, max_backlog=s.storage.max_backlog
        )
        self.telemetry.add_sink("alarms", self.alarms)
        self.telemetry.add_sink("poller", self.poller)
        self.telemetry.add_sink("metrics", self.metrics)
        self.live_feed = feed = LiveFeed(
            self.gateway_id,
            queue_size=s.http.live_queue_size,
            max_subscribers=s.http.max_live_clients,
        )
        self.telemetry.add_sink("live", feed)
        self.commands.audit = self.store
        # Meters and their last values are back before any meter reconnects.
        await restore_from_store(self.store, self.telemetry)
        await self._start_cluster(meter_port.port)
        self.runner = self.metrics.count_commands(self.runner)  # MQTT and HTTP alike
        await self._start_mqtt()
        await self._start_http(self.store, feed)

        self._spawn("telemetry", self.telemetry.run)
        self._spawn("capture", self.capture.run)
        if s.polling.enabled:
            self._spawn("poller", self.poller.run)

        ip_cap = rate = None
        if self.cluster is not None and s.cluster.shared_limits:
            m = s.meters
            ip_cap = self.cluster.shared_ip_cap(m.max_connections_per_ip)
            rate = self.cluster.shared_ip_rate(
                m.new_connections_per_ip, m.rate_window_s, m.rate_block_s
            )
        self.server = StreamServer(
            self.dispatcher.on_connection,
            host=s.meters.host,
            port=meter_port.port,
            limits=self.limits,
            on_refused=self._on_refused,
            ip_cap=ip_cap,
            rate_limit=rate,
        )
        await self.server.start()
        self.ports["meters"] = PortChoice(meter_port.wanted, self.server.port)

    async def _start_cluster(self, meter_port: int) -> None:
        s = self.settings
        if s.cluster.redis_url is None:
            return
        if s.mqtt.mode != "external":
            raise ConfigError(
                "cluster.redis_url needs mqtt.mode = external (--mqtt-url): every instance "
                "must publish to and take commands from the same broker"
            )
        self.cluster = RedisCluster(
            s.cluster.redis_url.get_secret_value(),
            self.gateway_id,
            local_runner=self.commands,
            on_takeover=self._hand_over,
            on_degraded=self._cluster_state,
            namespace=s.cluster.namespace,
            lease_ttl_s=s.cluster.lease_ttl_s,
            heartbeat_s=s.cluster.heartbeat_s,
            forward_timeout_s=s.cluster.forward_timeout_s,
            info={"meterPort": meter_port},
        )
        await self.cluster.start()  # Redis down is not fatal: it starts degraded
        self._stack.push_async_callback(self.cluster.stop)
        self.context.ownership = self.cluster
        self.runner = ClusterCommandRunner(
            self.commands, self.context.registry, self.cluster, self.cluster, self.cluster.journal
        )

    def _hand_over(self, meter: MeterId) -> None:
        """A meter reconnected to another instance: drop it here without going offline."""
        if self.context.evict(meter, "the meter reconnected to another gateway instance"):
            self.poller.unregister(meter)

    def _cluster_state(self, degraded: bool) -> None:
        self.telemetry.emit(
            MeterEvent(
                kind=EventKind.CLUSTER_DEGRADED if degraded else EventKind.CLUSTER_RESTORED,
                severity=Severity.WARNING if degraded else Severity.INFO,
                ts_ms=self.clock.now_ms(),
                meter=None,
                data={"gatewayId": self.gateway_id},
            )
        )

    async def _start_mqtt(self) -> None:
        s = self.settings
        topics = Topics(s.mqtt.topic_prefix)
        transport: EmbeddedTransport | ExternalTransport
        if s.mqtt.mode == "embedded":
            hint = (
                f"To use the broker already listening there, pass "
                f"--mqtt-url mqtt://127.0.0.1:{s.mqtt.port} (mqtt.mode = external)."
            )
            tcp = choose_port(
                s.mqtt.host,
                s.mqtt.port,
                explicit=is_explicit(s, "mqtt", "port"),
                option="--mqtt-port (mqtt.port)",
                hint=hint,
            )
            ws = choose_port(
                s.mqtt.host,
                s.mqtt.ws_port,
                explicit=is_explicit(s, "mqtt", "ws_port"),
                option="mqtt.ws_port",
            )
            self.broker = EmbeddedBroker(
                BrokerConfig(
                    host=s.mqtt.host,
                    port=tcp.port,
                    ws_port=ws.port,
                    topic_prefix=s.mqtt.topic_prefix,
                    users={
                        **(self.mqtt_users.users if self.mqtt_users is not None else {}),
                        **{
                            name: BrokerUser(user.password_hash.get_secret_value(), Role(user.role))
                            for name, user in s.mqtt.users.items()
                        },
                    },
                    allow_anonymous=s.mqtt.allow_anonymous,
                    cert_file=s.mqtt.listener_cert_file,
                    key_file=s.mqtt.listener_key_file,
                )
            )
            try:
                await self.broker.start()
            except BrokerPortInUse as exc:
                raise ConfigError(
                    f"MQTT {exc.listener} port {exc.port} is already in use: change "
                    f"{'--mqtt-port' if exc.listener == 'tcp' else 'mqtt.ws_port'}. {hint}"
                ) from None
            self._stack.push_async_callback(self.broker.stop)
            self.ports["mqtt"] = PortChoice(tcp.wanted, self.broker.tcp_port or tcp.port)
            if self.broker.ws_port is not None:
                self.ports["mqtt-ws"] = PortChoice(ws.wanted, self.broker.ws_port)
            transport = EmbeddedTransport(self.broker, outbox_size=s.mqtt.outbox_size)
            self._broker_ready = lambda: None  # in-process: up as long as we are
        else:
            if s.mqtt.url is None:
                raise ConfigError("mqtt.mode = external needs mqtt.url (or --mqtt-url)")
            password = None
            if s.mqtt.password_file is not None:
                password = s.mqtt.password_file.read_text(encoding="utf-8").strip()
            config = ExternalBrokerConfig.from_url(
                s.mqtt.url.get_secret_value(),
                password=password,
                ca_file=s.mqtt.ca_file,
                cert_file=s.mqtt.cert_file,
                key_file=s.mqtt.key_file,
                client_id=s.mqtt.client_id or f"ivy-gateway-{self.gateway_id}",
                keepalive_s=s.mqtt.keepalive_s,
                outbox_size=s.mqtt.outbox_size,
            )
            external = ExternalTransport(config)
            transport = external
            self.broker_description = config.describe()
            self._broker_ready = lambda: (
                None if external.connected else "not connected to the MQTT broker"
            )
        self.publisher = MqttPublisher(
            transport,
            topics,
            gateway_id=self.gateway_id,
            version=__version__,
            stats=self.counters,
            stats_interval_s=s.mqtt.stats_interval_s,
        )
        self.telemetry.add_sink("mqtt", self.publisher)
        intake = CommandIntake(self.commands, self.runner, self.publisher, topics)
        intake.attach(transport, shared_group="ivy" if self.cluster is not None else None)
        self._spawn("mqtt-publisher", self.publisher.run)
        self._spawn("mqtt-commands", intake.run)

    async def _start_http(self, store: ReadingStore, feed: LiveFeed) -> None:
        s = self.settings
        choice = choose_port(
            s.http.host,
            s.http.port,
            explicit=is_explicit(s, "http", "port"),
            option="--http-port (http.port)",
        )
        tokens = {name: value.get_secret_value() for name, value in s.http.tokens.items()}
        readiness: dict[str, Any] = {"store": store_check(store), "broker": self._broker_ready}
        if self.cluster is not None:
            readiness["redis"] = self.cluster.readiness
        deps = ApiDeps(
            store=store,
            parser=self.commands,
            runner=self.runner,
            live_state=self.telemetry,
            gateway_info=lambda: GatewayInfo(
                __version__, self.gateway_id, self.uptime_s(), self.counters(), self.members()
            ),
            readiness=readiness,
            feed=feed,
            capture=self.capture,
            metrics=self.metrics.render,
            tokens=TokenVerifier(tokens) if tokens else None,
            options=ApiOptions(
                protect_reads=s.http.protect_reads,
                meter_list_max_age_s=s.http.meter_list_max_age_s,
            ),
            now_ms=self.clock.now_ms,
        )
        api = create_api(deps)
        explicit = is_explicit(s, "http", "port")
        for _ in range(_BIND_ATTEMPTS):
            self.http = HttpServer(
                api,
                s.http.host,
                choice.port,
                access_log=s.http.access_log,
                cert_file=s.http.cert_file,
                key_file=s.http.key_file,
            )
            try:
                port = await self.http.start()
                break
            except HttpPortInUse:
                if explicit:
                    raise ConfigError(
                        f"HTTP port {choice.port} on {s.http.host} is already in use: "
                        "change --http-port (http.port)"
                    ) from None
                # Another process took the free port between our check and our bind.
                moved = choose_port(s.http.host, choice.port + 1, explicit=False, option="")
                choice = PortChoice(s.http.port, moved.port)
        else:
            raise ConfigError(f"no free HTTP port near {s.http.port}: set --http-port")
        self._stack.push_async_callback(self.http.stop)
        self.ports["http"] = PortChoice(choice.wanted, port)

    def counters(self) -> dict[str, float]:
        """The gateway's counters (MQTT ``gateway/stats``, HTTP gateway info)."""
        stats = self.telemetry.stats()
        sinks = {sink.name: sink for sink in stats.sinks}
        server = self.server.stats if self.server is not None else None
        store = sinks.get("store")
        return {
            "connections": server.open if server else 0,
            "connectionsAccepted": server.accepted if server else 0,
            "connectionsRefused": (
                server.refused_total_cap + server.refused_per_ip + server.refused_rate_limited
                if server
                else 0
            ),
            "metersOnline": self.telemetry.online_count(),
            "readingsPerS": round(self.metrics.readings_per_second(), 1),
            "readingsTotal": self.metrics.readings_total,
            "storeQueue": store.queued if store else 0,
            "storeBacklog": store.backlog if store else 0,
            "storeDropped": store.dropped if store else 0,
            "storeFailing": int(store.failing) if store else 0,
            "telemetryDropped": stats.dropped,
            "errors": sum(sink.errors for sink in stats.sinks),
            **(self.cluster.counters() if self.cluster is not None else {}),
        }

    def members(self) -> tuple[str, ...]:
        """Gateway instances of the cluster (just this one when not clustered)."""
        return tuple(self.cluster.members()) if self.cluster is not None else (self.gateway_id,)

    def _spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        async def guarded() -> None:
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task %s crashed; stopping the gateway", name)
                self._stopped.set()

        self._tasks.append(asyncio.create_task(guarded(), name=name))

    def _on_overflow(self, source: str, dropped: int) -> None:
        """Publish-but-flag: readings that no longer fit the store's backlog are announced."""
        if source == "store":
            self.telemetry.emit(
                MeterEvent(
                    kind=EventKind.STORE_BACKLOG_FULL,
                    severity=Severity.CRITICAL,
                    ts_ms=self.clock.now_ms(),
                    meter=None,
                    data={"dropped": dropped},
                )
            )

    def _on_refused(self, host: str, port: int, reason: str) -> None:
        log.info("connection from %s:%d refused: %s", host, port, reason)

    def request_stop(self) -> None:
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def stop(self) -> None:
        """Stop accepting, end sessions, drain telemetry to the store, close everything."""
        self._stopped.set()
        if self.server is not None:
            await self.server.stop()  # sessions end: their meters go offline
            self.server = None
        for task in self._tasks:
            if task.get_name() in ("poller", "capture", "mqtt-commands"):
                task.cancel()
        self.telemetry.close()
        telemetry = [t for t in self._tasks if t.get_name() == "telemetry"]
        if telemetry:
            try:
                await asyncio.wait_for(asyncio.shield(telemetry[0]), timeout=30)
            except TimeoutError:
                log.warning("telemetry did not drain within 30 s; unsent events are lost")
                telemetry[0].cancel()
        for task in self._tasks:  # the publisher's cancel publishes "offline"
            if task.get_name() == "mqtt-publisher":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._stack.aclose()

    # -- reporting -----------------------------------------------------------------------

    def uptime_s(self) -> float:
        return self.clock.monotonic() - self.started_at

    def summary(self) -> list[str]:
        """The start-up summary: what listens where, which store, which defaults moved."""
        lines = [f"IVY gateway {__version__} (id {self.gateway_id})"]
        tls = {
            "mqtt": self.settings.mqtt.listener_cert_file is not None,
            "mqtt-ws": self.settings.mqtt.listener_cert_file is not None,
            "http": self.settings.http.cert_file is not None,
        }
        for name, choice in self.ports.items():
            note = f"  (default {choice.wanted} was in use)" if choice.moved else ""
            secure = " (TLS)" if tls.get(name) else ""
            lines.append(f"  {name:<8} {self._host_for(name)}:{choice.port}{secure}{note}")
        if self.broker is None and self.publisher is not None:
            lines.append(f"  broker   external {self.broker_description}")
        lines.extend(self._auth_summary())
        mode = self.store.mode.value if self.store is not None else "none"
        lines.append(f"  store    {mode} ({redact_url(self.settings.storage.url)})")
        lines.append(f"  models   {', '.join(self.context.profiles.names())}")
        if self.cluster is not None:
            lines.append(f"  cluster  {', '.join(self.members())} (Redis)")
        return lines

    def _auth_summary(self) -> list[str]:
        """MQTT auth in the summary; a generated password is shown here once, never logged."""
        users = self.mqtt_users
        if self.broker is None:
            return []
        if users is None:
            if self.settings.mqtt.users:
                return [f"  mqtt auth {len(self.settings.mqtt.users)} user(s) from the settings"]
            return ["  mqtt auth none: anonymous clients may subscribe (read-only)"]
        if users.new_password is not None:
            return [
                f'  mqtt auth user "admin", password (shown once): {users.new_password}',
                f"            stored as an argon2 hash in {users.path}; "
                "add users with ivy-gateway hash-password",
            ]
        return [f"  mqtt auth {len(users.users)} user(s) from {users.path}"]

    def _host_for(self, name: str) -> str:
        if name == "meters":
            return self.settings.meters.host
        return self.settings.http.host if name == "http" else self.settings.mqtt.host
