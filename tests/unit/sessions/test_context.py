from collections.abc import Sequence

from ivy_gateway.domain.events import EventKind, GatewayEvent, MeterEvent, MeterStatus
from ivy_gateway.domain.meter import ConnectionInfo, MeterId, ProtocolKind
from ivy_gateway.sessions.context import SessionContext
from ivy_gateway.sessions.profiles import load_profiles

METER = MeterId("000000001234")


class Events:
    def __init__(self) -> None:
        self.events: list[GatewayEvent] = []

    def emit(self, event: GatewayEvent) -> None:
        self.events.append(event)


class Clock:
    def now_ms(self) -> int:
        return 1_000

    def monotonic(self) -> float:
        return 0.0


class Session:
    """The parts of a LiveSession the context uses."""

    def __init__(self, conn: int) -> None:
        self.meter = METER
        self.protocol = ProtocolKind.DLT645
        self.model = "dlt645-three-phase"
        self.connection = ConnectionInfo(conn, "127.0.0.1", 40000 + conn)
        self.poll_groups: Sequence[object] = ()
        self.closed_because: str | None = None

    def close(self, reason: str) -> None:
        self.closed_because = reason


def _kinds(events: list[GatewayEvent]) -> list[str]:
    out = []
    for e in events:
        if isinstance(e, MeterStatus):
            out.append("online" if e.online else "offline")
        elif isinstance(e, MeterEvent):
            out.append(e.kind.value)
    return out


def test_reconnect_closes_the_old_session_and_never_flaps_offline() -> None:
    events = Events()
    context = SessionContext(sink=events, clock=Clock(), profiles=load_profiles())
    old, new = Session(1), Session(2)
    context.claim(old)  # type: ignore[arg-type]
    context.claim(new)  # type: ignore[arg-type]
    assert old.closed_because == "replaced by a newer connection of the same meter"
    context.release(old)  # type: ignore[arg-type]  # the old socket's clean-up: no effect
    assert _kinds(events.events) == ["online", "meter_online", "online", "meter_online"]
    context.release(new)  # type: ignore[arg-type]
    assert _kinds(events.events)[-2:] == ["offline", "meter_offline"]
    offline = events.events[-1]
    assert isinstance(offline, MeterEvent)
    assert offline.kind is EventKind.METER_OFFLINE
    assert offline.data["ip"] == "127.0.0.1"
    assert context.registry.get(METER) is None
