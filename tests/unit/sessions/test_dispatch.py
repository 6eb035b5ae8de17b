from collections.abc import Sequence

import pytest

from ivy_gateway.codec.sniff import ProtocolGuess
from ivy_gateway.domain.events import EventKind, GatewayEvent, MeterEvent
from ivy_gateway.sessions.context import SessionContext, SessionTimings
from ivy_gateway.sessions.dispatch import Dispatcher
from ivy_gateway.sessions.profiles import load_profiles
from ivy_gateway.transport import ByteStream
from ivy_gateway.transport.fakes import ScriptedStream

DLT645_READ = bytes.fromhex("FEFEFEFE68341200000000681104333334332D16")
HEARTBEAT = bytes.fromhex("00010001000100120A020C3331313530313131343037300D5A3C")


class Events:
    def __init__(self) -> None:
        self.events: list[GatewayEvent] = []

    def emit(self, event: GatewayEvent) -> None:
        self.events.append(event)


class Clock:
    def now_ms(self) -> int:
        return 1_764_201_600_000

    def monotonic(self) -> float:
        return 0.0


class Recorded:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    def factory(self, name: str):  # type: ignore[no-untyped-def]
        recorded = self

        class Session:
            def __init__(self, stream: ByteStream, ctx: SessionContext, first: bytes) -> None:
                recorded.calls.append((name, first))

            async def run(self) -> None:
                return None

        return Session


def _dispatcher(events: Events, recorded: Recorded, timeout_s: float = 0.2) -> Dispatcher:
    context = SessionContext(
        sink=events,
        clock=Clock(),
        profiles=load_profiles(),
        timings=SessionTimings(identify_timeout_s=timeout_s, unknown_traffic_limit_bytes=64),
    )
    return Dispatcher(
        context,
        {
            ProtocolGuess.DLT645: recorded.factory("dlt645"),
            ProtocolGuess.IVY_DLMS: recorded.factory("ivy"),
            ProtocolGuess.RAW_DLMS: recorded.factory("raw"),
        },
    )


@pytest.mark.parametrize(
    ("chunks", "expected", "decided_after"),
    [
        ([DLT645_READ[:3], DLT645_READ[3:9], DLT645_READ[9:]], "dlt645", 2),
        ([HEARTBEAT[:1], HEARTBEAT[1:]], "ivy", 2),
        ([bytes.fromhex("C20000030100010800FF020600008364")], "raw", 1),
    ],
)
async def test_first_bytes_choose_the_session(
    chunks: Sequence[bytes], expected: str, decided_after: int
) -> None:
    events, recorded = Events(), Recorded()
    await _dispatcher(events, recorded).on_connection(ScriptedStream(chunks))
    # The session gets exactly the bytes read until the decision; it reads the rest itself.
    assert recorded.calls == [(expected, b"".join(chunks[:decided_after]))]
    assert events.events == []


async def test_silent_connection_goes_to_dlt645_to_be_asked() -> None:
    events, recorded = Events(), Recorded()
    await _dispatcher(events, recorded, 0.05).on_connection(ScriptedStream([], at_end="block"))
    assert recorded.calls == [("dlt645", b"")]


async def test_garbage_is_invalid_traffic_and_bounded() -> None:
    events, recorded = Events(), Recorded()
    garbage = bytes(range(0x10, 0x50)) * 100
    stream = ScriptedStream([garbage], at_end="block")
    await _dispatcher(events, recorded).on_connection(stream)
    assert recorded.calls == []
    [event] = events.events
    assert isinstance(event, MeterEvent)
    assert event.kind is EventKind.INVALID_TRAFFIC
    assert event.meter is None
    assert "first 64 bytes" in event.data["reason"]
    assert stream.closed


async def test_half_frame_then_close_is_reported() -> None:
    events, recorded = Events(), Recorded()
    await _dispatcher(events, recorded).on_connection(ScriptedStream([b"\x00\x01"]))
    [event] = events.events
    assert isinstance(event, MeterEvent)
    assert "closed after 2" in event.data["reason"]


async def test_half_frame_then_silence_is_reported() -> None:
    events, recorded = Events(), Recorded()
    stream = ScriptedStream([b"\x00\x01"], at_end="block")
    await _dispatcher(events, recorded, 0.05).on_connection(stream)
    [event] = events.events
    assert isinstance(event, MeterEvent)
    assert "before the timeout" in event.data["reason"]
