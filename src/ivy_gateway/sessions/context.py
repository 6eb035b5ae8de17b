"""What every meter session is given, and the lifecycle every session follows.

``app`` builds one ``SessionContext`` and ``dispatch`` hands it to each session. A session:

1. identifies its meter (DL/T 645: first frame's address or a read-address; DLMS: heartbeat),
2. calls ``context.claim(self)``, which registers it (closing a displaced session of the same
   meter) and emits ``MeterStatus(online=True)``,
3. serves: reads frames/APDUs, answers requests from ``MeterLink`` methods, emits readings
   and events through ``context.sink``,
4. on any exit calls ``context.release(self)``, which emits ``MeterStatus(online=False)``
   only if it was still the meter's current session.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ivy_gateway.domain.cluster import OwnershipGate
from ivy_gateway.domain.events import EventKind, MeterEvent, MeterStatus, Severity
from ivy_gateway.domain.meter import ConnectionInfo, MeterId, ProtocolKind
from ivy_gateway.domain.ports import Clock, EventSink, MeterLink, TrafficCapture

from .profiles import MeterProfile, ProfileCatalog, RelayMethod
from .registry import SessionRegistry

__all__ = ["LiveSession", "MeterOptions", "SessionContext", "SessionTimings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionTimings:
    request_timeout_s: float = 5.0
    retries: int = 2
    identify_timeout_s: float = 10.0  # DL/T 645: silent this long → read-address (0x13)
    unknown_traffic_limit_bytes: int = 256
    max_buffer_bytes: int = 65_536
    dlt645_preamble_len: int = 4  # FE bytes before each request (serial-bridged meters)


@dataclass(frozen=True, slots=True)
class MeterOptions:
    """Per-meter configuration resolved by ``app`` from settings (secrets already read).

    ``repr`` hides every secret so an options object can be logged safely.
    """

    model: str | None = None
    relay_method: RelayMethod | None = None
    dlt645_password: str = field(default="02000000", repr=False)  # level 02 + 000000
    dlt645_operator: str = "00000000"
    vendor_aes_key: bytes | None = field(default=None, repr=False)
    dlms_ek: bytes | None = field(default=None, repr=False)
    dlms_ak: bytes | None = field(default=None, repr=False)
    dlms_system_title: bytes | None = None  # the gateway's (client) system title

    @property
    def ciphered(self) -> bool:
        return self.dlms_ek is not None and self.dlms_ak is not None


class LiveSession(MeterLink, Protocol):
    """A session as the context manages it: a MeterLink that can be told to close."""

    @property
    def connection(self) -> ConnectionInfo: ...

    def close(self, reason: str) -> None:
        """Close the socket soon (idempotent); the session's run loop then ends."""
        ...


class SessionContext:
    """Shared dependencies of all sessions, and the online/offline bookkeeping."""

    def __init__(
        self,
        *,
        sink: EventSink,
        clock: Clock,
        profiles: ProfileCatalog,
        registry: SessionRegistry[LiveSession] | None = None,
        timings: SessionTimings | None = None,
        meter_options: Mapping[MeterId, MeterOptions] | None = None,
        default_models: Mapping[ProtocolKind, str] | None = None,
        capture: TrafficCapture | None = None,
        on_claim: Callable[[LiveSession], None] | None = None,
        ownership: OwnershipGate | None = None,
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.profiles = profiles
        self.registry: SessionRegistry[LiveSession] = registry or SessionRegistry()
        self.timings = timings or SessionTimings()
        self.capture = capture
        self._meter_options = dict(meter_options or {})
        self._default_models = dict(
            default_models
            or {ProtocolKind.DLT645: "dlt645-three-phase", ProtocolKind.DLMS: "em114070"}
        )
        self._on_claim = on_claim
        #: Cluster mode: online/offline is announced only once the lease says so.
        self.ownership = ownership

    def options_for(self, meter: MeterId) -> MeterOptions:
        return self._meter_options.get(meter, MeterOptions())

    def profile_for(self, meter: MeterId, protocol: ProtocolKind) -> MeterProfile:
        """The configured model of ``meter``, else the protocol's default model."""
        name = self.options_for(meter).model or self._default_models[protocol]
        profile = self.profiles[name]
        if profile.protocol is not protocol:
            # A configured model for the other protocol: the meter's traffic decides.
            log.warning(
                "meter speaks %s but its model %s is %s; using the default model",
                protocol,
                name,
                profile.protocol,
                extra={"meter": str(meter)},
            )
            profile = self.profiles[self._default_models[protocol]]
        return profile

    def claim(self, session: LiveSession) -> None:
        """Register ``session`` for its meter; close the one it displaces; announce online."""
        displaced = self.registry.claim(session.meter, session)
        if displaced is not None:
            log.info(
                "meter reconnected: closing its previous connection %s",
                displaced.connection,
                extra={"meter": str(session.meter)},
            )
            displaced.close("replaced by a newer connection of the same meter")
        announce = functools.partial(self._announce_online, session)
        if self.ownership is None:
            announce()
        else:
            self.ownership.claimed(session.meter, announce)
        if self._on_claim is not None:
            self._on_claim(session)

    def _announce_online(self, session: LiveSession) -> None:
        self.sink.emit(
            MeterStatus(
                meter=session.meter,
                online=True,
                protocol=session.protocol,
                model=session.model,
                connection=session.connection,
                ts_ms=self.clock.now_ms(),
            )
        )
        self.sink.emit(
            MeterEvent(
                kind=EventKind.METER_ONLINE,
                severity=Severity.INFO,
                ts_ms=self.clock.now_ms(),
                meter=session.meter,
                data=_connection_data(session),
            )
        )

    def release(self, session: LiveSession) -> None:
        """Forget ``session``; announce offline only if no newer session holds the meter."""
        if self.registry.release(session.meter, session):
            announce = functools.partial(self._announce_offline, session)
            if self.ownership is None:
                announce()
            else:
                self.ownership.released(session.meter, announce)

    def evict(self, meter: MeterId, reason: str) -> bool:
        """Another instance owns ``meter`` now: forget and close its session here WITHOUT
        announcing offline (the new owner already announced online)."""
        session = self.registry.get(meter)
        if session is None:
            return False
        self.registry.release(meter, session)
        session.close(reason)
        return True

    def _announce_offline(self, session: LiveSession) -> None:
        now = self.clock.now_ms()
        self.sink.emit(
            MeterStatus(
                meter=session.meter,
                online=False,
                protocol=session.protocol,
                model=session.model,
                connection=session.connection,
                ts_ms=now,
            )
        )
        self.sink.emit(
            MeterEvent(
                kind=EventKind.METER_OFFLINE,
                severity=Severity.WARNING,
                ts_ms=now,
                meter=session.meter,
                data=_connection_data(session),
            )
        )

    def invalid_traffic(
        self, connection: ConnectionInfo, reason: str, meter: MeterId | None, sample: bytes
    ) -> None:
        """Report bytes no protocol accepts: one log line and one ``invalid_traffic`` event."""
        log.warning(
            "invalid traffic from %s: %s",
            connection,
            reason,
            extra={"meter": str(meter) if meter else None, "sample": sample[:32].hex()},
        )
        self.sink.emit(
            MeterEvent(
                kind=EventKind.INVALID_TRAFFIC,
                severity=Severity.WARNING,
                ts_ms=self.clock.now_ms(),
                meter=meter,
                data={
                    "peer": f"{connection.peer_host}:{connection.peer_port}",
                    "reason": reason,
                    "sample": sample[:32].hex().upper(),
                },
            )
        )


def _connection_data(session: LiveSession) -> dict[str, object]:
    info = session.connection
    return {
        "protocol": str(session.protocol),
        "model": session.model,
        "ip": info.peer_host,
        "port": info.peer_port,
    }
