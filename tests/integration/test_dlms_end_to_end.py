"""The DLMS path end to end over real loopback sockets: StreamServer → Dispatcher →
DlmsSession ↔ simulated EM114070 and ciphered three-phase meters, one of them faulty."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from ivy_gateway.codec.dlms.security import SecurityKeys
from ivy_gateway.codec.sniff import ProtocolGuess
from ivy_gateway.domain.commands import RelayState
from ivy_gateway.domain.errors import MeterError
from ivy_gateway.domain.events import (
    EventKind,
    GatewayEvent,
    MeterEvent,
    MeterStatus,
    ReadingsBatch,
)
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.quantities import ReadingSource
from ivy_gateway.sessions.context import LiveSession, MeterOptions, SessionContext, SessionTimings
from ivy_gateway.sessions.dispatch import Dispatcher
from ivy_gateway.sessions.dlms import DlmsSession
from ivy_gateway.sessions.profiles import load_profiles
from ivy_gateway.simulators.cosem_server import ApduServer
from ivy_gateway.simulators.dlms_meter import DlmsMeter
from ivy_gateway.simulators.em114070_meter import Em114070Meter
from ivy_gateway.simulators.faults import Faults
from ivy_gateway.transport import StreamServer

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
PROFILES = load_profiles()


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


async def _eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_fleet_of_dlms_meters_over_real_sockets() -> None:
    em_meters = [
        Em114070Meter(f"3115011140{i:02d}", seed=i, disconnect_control=i == 0) for i in range(3)
    ]
    em_meters.append(Em114070Meter("311501114099", seed=9, unwrapped_probability=0.5))
    secure = [
        DlmsMeter(f"41000000000{i}", keys=SecurityKeys(EK, AK), seed=i, max_pdu_size=300)
        for i in range(1, 3)
    ]
    faulty = Em114070Meter(
        "311501114066",
        faults=Faults(garbage_probability=0.5, split_chunks=3, disconnect_after=4, seed=1),
    )
    options = {
        MeterId(m.address): MeterOptions(
            model="dlms-three-phase", dlms_ek=EK, dlms_ak=AK, dlms_system_title=b"GATEWAY1"
        )
        for m in secure
    }
    events = Events()
    context = SessionContext(
        sink=events,
        clock=Clock(),
        profiles=PROFILES,
        timings=SessionTimings(request_timeout_s=1.0, retries=1, identify_timeout_s=1.0),
        meter_options=options,
    )
    dispatcher = Dispatcher(
        context, {ProtocolGuess.IVY_DLMS: DlmsSession, ProtocolGuess.RAW_DLMS: DlmsSession}
    )
    healthy: list[ApduServer] = [*em_meters, *secure]
    server = StreamServer(dispatcher.on_connection, host="127.0.0.1", port=0)
    async with server, asyncio.timeout(10):
        tasks = [
            asyncio.create_task(meter.connect("127.0.0.1", server.port))
            for meter in [*healthy, faulty]
        ]
        ids = [MeterId(m.address) for m in healthy]  # type: ignore[attr-defined]
        await _eventually(lambda: all(context.registry.get(i) is not None for i in ids))

        def session(meter_id: MeterId) -> LiveSession:
            found = context.registry.get(meter_id)
            assert found is not None
            return found

        # the faulty meter fails (or not) on its own; the others are read concurrently
        async def read_faulty() -> None:
            await _eventually(lambda: context.registry.get(MeterId("311501114066")) is not None)
            with contextlib.suppress(MeterError):
                await session(MeterId("311501114066")).read(["voltage"], ReadingSource.POLL)

        async def read(meter_id: MeterId) -> int:
            link = session(meter_id)
            names = [q for g in link.poll_groups for q in g.quantities]
            readings = await link.read(names, ReadingSource.POLL)
            assert {r.quantity for r in readings} == set(names)
            return len(readings)

        counts, _ = await asyncio.gather(asyncio.gather(*(read(i) for i in ids)), read_faulty())
        assert counts == [9, 9, 9, 9, 11, 11]

        for meter_id, meter in [(ids[0], em_meters[0]), (ids[4], secure[0])]:
            link = session(meter_id)
            assert await link.relay_control(RelayState.OPEN) is RelayState.OPEN
            assert not meter.relay_closed  # type: ignore[attr-defined]
            assert await link.relay_control(RelayState.CLOSED) is RelayState.CLOSED
            assert await link.read_relay_state() is RelayState.CLOSED

        assert await em_meters[1].push_event()
        await _eventually(
            lambda: any(
                isinstance(e, MeterEvent) and e.kind is EventKind.METER_EVENT for e in events.events
            )
        )

        for link_id in ids:
            session(link_id).close("test over")
        faulty_session = context.registry.get(MeterId("311501114066"))
        if faulty_session is not None:
            faulty_session.close("test over")
        await asyncio.gather(*tasks)
    online = {e.meter for e in events.events if isinstance(e, MeterStatus) and e.online}
    assert set(ids) <= online
    assert not any(isinstance(e, ReadingsBatch) for e in events.events)  # polls return, not emit
