"""DlmsSession over in-memory streams against the EM114070 and the ciphered DLMS simulators."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Literal

import pytest

from ivy_gateway.codec.dlms import Obis, decode_data
from ivy_gateway.codec.dlms.security import SecurityKeys
from ivy_gateway.codec.wrapper import encode_wrapped
from ivy_gateway.domain.commands import RegisterRef, RelayState
from ivy_gateway.domain.errors import (
    CommandError,
    MeterOffline,
    MeterRejected,
    MeterTimeout,
)
from ivy_gateway.domain.events import (
    EventKind,
    GatewayEvent,
    MeterEvent,
    MeterStatus,
    ReadingsBatch,
)
from ivy_gateway.domain.meter import ConnectionInfo, MeterId
from ivy_gateway.domain.quantities import ReadingSource
from ivy_gateway.sessions.context import MeterOptions, SessionContext, SessionTimings
from ivy_gateway.sessions.dlms import DlmsSession
from ivy_gateway.sessions.profiles import load_profiles
from ivy_gateway.simulators.cosem_server import ApduServer
from ivy_gateway.simulators.dlms_meter import LOAD_PROFILE_OBIS, DlmsMeter
from ivy_gateway.simulators.em114070_meter import Em114070Meter
from ivy_gateway.simulators.faults import Faults
from ivy_gateway.transport.fakes import LoopbackPair

EK = bytes(range(16))
AK = bytes(range(16, 32))
THREE_PHASE = MeterId("410000000001")
PROFILES = load_profiles()


class Events:
    def __init__(self) -> None:
        self.events: list[GatewayEvent] = []

    def emit(self, event: GatewayEvent) -> None:
        self.events.append(event)

    def statuses(self) -> list[MeterStatus]:
        return [e for e in self.events if isinstance(e, MeterStatus)]

    def meter_events(self, kind: EventKind = EventKind.METER_EVENT) -> list[MeterEvent]:
        return [e for e in self.events if isinstance(e, MeterEvent) and e.kind is kind]

    def batches(self) -> list[ReadingsBatch]:
        return [e for e in self.events if isinstance(e, ReadingsBatch)]


class Clock:
    def now_ms(self) -> int:
        return 1_764_201_600_000

    def monotonic(self) -> float:
        return 0.0


class Capture:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes]] = []

    def is_enabled(self, meter: MeterId) -> bool:
        return True

    def record(
        self,
        meter: MeterId,
        direction: Literal["rx", "tx"],
        data: bytes,
        connection: ConnectionInfo | None = None,
    ) -> None:
        self.records.append((direction, data))


async def eventually(condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
    for _ in range(int(timeout_s / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met in time")


class Harness:
    """A meter simulator and a session joined by a LoopbackPair, both running."""

    def __init__(
        self,
        meter: ApduServer,
        *,
        options: Mapping[MeterId, MeterOptions] | None = None,
        timings: SessionTimings | None = None,
        capture: Capture | None = None,
    ) -> None:
        self.meter = meter
        self.events = Events()
        self.context = SessionContext(
            sink=self.events,
            clock=Clock(),
            profiles=PROFILES,
            timings=timings or SessionTimings(request_timeout_s=0.5, identify_timeout_s=0.3),
            meter_options=options,
            capture=capture,
        )
        self.pair = LoopbackPair()
        self.session = DlmsSession(self.pair.gateway, self.context, b"")

    async def __aenter__(self) -> Harness:
        self._meter_task = asyncio.create_task(self.meter.serve(self.pair.meter))
        self._session_task = asyncio.create_task(self.session.run())
        await eventually(lambda: self.session.identified)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.pair.close()
        await asyncio.gather(self._meter_task, self._session_task)


def _ciphered_options(ek: bytes = EK) -> dict[MeterId, MeterOptions]:
    return {
        THREE_PHASE: MeterOptions(
            model="dlms-three-phase", dlms_ek=ek, dlms_ak=AK, dlms_system_title=b"GWTEST01"
        )
    }


def _closed(meter: DlmsMeter | Em114070Meter) -> bool:
    return meter.relay_closed


def _raw_value(meter: ApduServer, invoke_byte: int) -> int:
    """The raw integer the meter sent in its GET.response with that invoke-id byte."""
    for apdu in reversed(meter.sent):
        if apdu[:3] == bytes((0xC4, 0x01, invoke_byte)):
            data, _ = decode_data(apdu, 4)
            assert isinstance(data.value, int)
            return data.value
    raise AssertionError("no such response")


# -- identification ---------------------------------------------------------------------------


async def test_heartbeat_identifies_and_claims_the_meter() -> None:
    async with Harness(Em114070Meter("311501114070")) as h:
        assert h.session.meter == MeterId("311501114070")
        assert await h.session.read_address() == "311501114070"
        assert h.session.model == "em114070"
        assert [g.name for g in h.session.poll_groups] == ["instantaneous", "energy"]
        online = h.events.statuses()
        assert len(online) == 1
        assert online[0].online
    statuses = h.events.statuses()
    assert [s.online for s in statuses] == [True, False]


async def test_placeholder_address_reads_the_serial_number() -> None:
    meter = Em114070Meter("000000000000", serial="123456789012")
    async with Harness(meter) as h:
        assert h.session.meter == MeterId("123456789012")
        assert await h.session.read_address() == "000000000000"


async def test_placeholder_without_serial_gets_a_stable_synthetic_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with Harness(Em114070Meter("000000000000")) as h:
        meter_id = h.session.meter.value
        assert meter_id.startswith("99")
        assert "synthetic id" in caplog.text


async def test_meter_without_heartbeat_is_identified_by_serial() -> None:
    meter = DlmsMeter("410000000002", heartbeat=False)
    async with Harness(meter) as h:
        assert h.session.meter == MeterId("410000000002")


# -- passive mode -----------------------------------------------------------------------------


@pytest.mark.parametrize("with_time", [True, False])
async def test_event_notification_becomes_a_meter_event(with_time: bool) -> None:
    meter = Em114070Meter()
    async with Harness(meter) as h:
        assert await meter.push_event(0x4C, with_time=with_time)
        await eventually(lambda: bool(h.events.meter_events()))
    event = h.events.meter_events()[0]
    assert isinstance(event, MeterEvent)
    assert event.kind is EventKind.METER_EVENT
    assert event.data["obis"] == "0-0:96.11.0.255"
    assert event.data["value"] == 0x4C
    assert (event.data["time"] is not None) is with_time
    assert event.data["raw"].startswith("C201" if with_time else "C200")


async def test_data_notification_becomes_push_readings() -> None:
    meter = Em114070Meter()
    async with Harness(meter) as h:
        await meter.push_data(with_time=True)
        await eventually(lambda: bool(h.events.batches()))
    batch = h.events.batches()[0]
    assert isinstance(batch, ReadingsBatch)
    assert batch.source is ReadingSource.PUSH
    values = {r.quantity: r for r in batch.readings}
    assert set(values) == {"voltage", "frequency", "energy_active_absolute_total"}
    assert values["voltage"].value.as_tuple().exponent == -2
    assert values["energy_active_absolute_total"].unit == "kWh"
    assert values["energy_active_absolute_total"].address == "1-0:15.8.0.255"


# -- active mode ------------------------------------------------------------------------------


async def test_reads_every_em114070_quantity_with_its_scaler() -> None:
    meter = Em114070Meter()
    async with Harness(meter) as h:
        names = list(PROFILES["em114070"].points)
        readings = await h.session.read(names, ReadingSource.POLL)
        assert sorted(r.quantity for r in readings) == sorted(names)
        voltage = next(r for r in readings if r.quantity == "voltage")
        energy = next(r for r in readings if r.quantity == "energy_active_absolute_total")
        assert voltage.unit == "V"
        assert Decimal(225) < voltage.value < Decimal(245)
        assert energy.value == Decimal(int(energy.value * 1000)) / 1000
        # the sequential path: no GET-with-list (not granted), scaler_unit read once
        assert not any(a[:2] == b"\xc0\x03" for a in meter.received)
        scaler_reads = [a for a in meter.received if a[:2] == b"\xc0\x01" and a[-2] == 3]
        assert len(scaler_reads) == len(names)
        await h.session.read(names, ReadingSource.POLL)
        again = [a for a in meter.received if a[:2] == b"\xc0\x01" and a[-2] == 3]
        assert len(again) == len(names)


async def test_reading_value_is_raw_times_ten_to_the_scaler() -> None:
    meter = Em114070Meter()
    async with Harness(meter) as h:
        [voltage] = await h.session.read(["voltage"], ReadingSource.POLL)
        raw = _raw_value(meter, meter.sent[-2][2])  # the GET before the RLRE
        assert voltage.value == Decimal(raw).scaleb(-2)


async def test_profile_scaler_is_the_fallback_when_attribute_3_is_refused() -> None:
    meter = Em114070Meter()
    found = meter.store.find(3, Obis.parse("1-0:14.7.0.255"))
    assert found is not None
    del found.attributes[3]
    async with Harness(meter) as h:
        [frequency] = await h.session.read(["frequency"], ReadingSource.POLL)
        assert Decimal("49.8") < frequency.value < Decimal("50.2")


async def test_three_phase_meter_uses_get_with_list() -> None:
    meter = DlmsMeter()
    options = {THREE_PHASE: MeterOptions(model="dlms-three-phase")}
    async with Harness(meter, options=options) as h:
        names = list(PROFILES["dlms-three-phase"].points)
        readings = await h.session.read(names, ReadingSource.POLL)
        assert len(readings) == len(names)
        assert any(a[:2] == b"\xc0\x03" for a in meter.received)
        energy = next(r for r in readings if r.quantity == "energy_active_import_total")
        assert energy.unit == "kWh"


async def test_ciphered_hls_gmac_association_reads_and_switches_the_relay() -> None:
    meter = DlmsMeter(keys=SecurityKeys(EK, AK))
    async with Harness(meter, options=_ciphered_options()) as h:
        readings = await h.session.read(["voltage_l1", "frequency"], ReadingSource.POLL)
        assert len(readings) == 2
        assert all(a[0] in (0x60, 0x62, 0xC3, 0xC8, 0xCB, 0xC9) for a in meter.received)
        assert await h.session.relay_control(RelayState.OPEN) is RelayState.OPEN
        assert not _closed(meter)
        assert await h.session.read_relay_state() is RelayState.OPEN
        assert await h.session.relay_control(RelayState.CLOSED) is RelayState.CLOSED
        assert _closed(meter)
        value = await h.session.read_register(RegisterRef(obis=str(LOAD_PROFILE_OBIS), class_id=7))
        assert isinstance(value, Mapping)
        assert len(value["value"]) == meter.profile_entries  # block transfer


async def test_wrong_keys_are_a_clear_rejection_and_no_crash() -> None:
    meter = DlmsMeter(keys=SecurityKeys(EK, AK))
    async with Harness(meter, options=_ciphered_options(bytes(16))) as h:
        with pytest.raises(MeterRejected, match="AUTHENTICATION_FAILURE"):
            await h.session.read(["voltage_l1"], ReadingSource.POLL)
        assert await h.session.read_address() == "410000000001"
        with pytest.raises(MeterRejected):
            await h.session.read(["voltage_l1"], ReadingSource.POLL)


async def test_em114070_relay_with_disconnect_control() -> None:
    meter = Em114070Meter(disconnect_control=True)
    async with Harness(meter) as h:
        assert await h.session.relay_control(RelayState.OPEN) is RelayState.OPEN
        assert not meter.relay_closed
        [power] = await h.session.read(["power_active_total"], ReadingSource.POLL)
        assert power.value == 0
        assert await h.session.relay_control(RelayState.CLOSED) is RelayState.CLOSED
        with pytest.raises(CommandError):
            await h.session.relay_control(RelayState.UNKNOWN)


async def test_em114070_without_class_70_rejects_relay_commands() -> None:
    async with Harness(Em114070Meter()) as h:
        with pytest.raises(MeterRejected, match="OBJECT_UNDEFINED"):
            await h.session.relay_control(RelayState.OPEN)


async def test_relay_commands_need_a_class_70_model() -> None:
    options = {MeterId("311501114070"): MeterOptions(relay_method=None, model="em114070")}
    async with Harness(Em114070Meter(), options=options) as h:
        object.__setattr__(h.session, "_profile", PROFILES["dlt645-three-phase"])
        with pytest.raises(CommandError, match="relay control"):
            await h.session.read_relay_state()


async def test_read_register_by_quantity_obis_and_data_id() -> None:
    async with Harness(Em114070Meter(serial="123456789012")) as h:
        reading = await h.session.read_register(RegisterRef(quantity="voltage"))
        assert getattr(reading, "unit", None) == "V"
        raw = await h.session.read_register(RegisterRef(obis="0-0:96.1.0.255", class_id=1))
        assert raw == {
            "obis": "0-0:96.1.0.255",
            "class_id": 1,
            "attribute": 2,
            "value": "123456789012",
        }
        with pytest.raises(CommandError, match="DL/T 645"):
            await h.session.read_register(RegisterRef(data_id="02010100"))
        with pytest.raises(CommandError, match="no register"):
            await h.session.read_register(RegisterRef(quantity="voltage_l3"))
        with pytest.raises(CommandError):
            await h.session.read_register(RegisterRef(obis="nonsense"))
        with pytest.raises(MeterRejected, match="OBJECT_UNDEFINED"):
            await h.session.read_register(RegisterRef(obis="1-0:32.7.0.255"))


async def test_sync_time_sets_and_reads_back_the_clock() -> None:
    async with Harness(Em114070Meter()) as h:
        when = dt.datetime(2026, 1, 30, 12, 0, 0, tzinfo=dt.UTC)
        assert await h.session.sync_time(when) == when


async def test_unwrapped_replies_are_accepted() -> None:
    async with Harness(Em114070Meter(unwrapped_probability=1.0)) as h:
        readings = await h.session.read(["voltage", "frequency"], ReadingSource.POLL)
        assert len(readings) == 2


async def test_wrong_invoke_id_is_counted_and_dropped() -> None:
    async with Harness(Em114070Meter()) as h:
        stray = bytes.fromhex("C401C9000600005C54")
        await h.pair.meter.write(encode_wrapped(stray, source=1, destination=1))
        await asyncio.sleep(0.02)
        assert h.session.unexpected_responses == 1
        assert len(await h.session.read(["voltage"], ReadingSource.POLL)) == 1


async def test_garbage_is_reported_once() -> None:
    meter = Em114070Meter(faults=Faults(garbage_probability=1.0, seed=3))
    async with Harness(meter) as h:
        await h.session.read(["voltage", "frequency"], ReadingSource.POLL)
        assert h.session.garbage_bytes > 8
    invalid = h.events.meter_events(EventKind.INVALID_TRAFFIC)
    assert len(invalid) == 1


async def test_disconnect_mid_command_fails_promptly() -> None:
    meter = Em114070Meter(faults=Faults(disconnect_after=2, disconnect_mid_reply=True))
    timings = SessionTimings(request_timeout_s=5, identify_timeout_s=0.3)
    async with Harness(meter, timings=timings) as h:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(MeterOffline):
            await h.session.read(["voltage"], ReadingSource.POLL)
        assert loop.time() - started < 1
        with pytest.raises(MeterOffline):
            await h.session.read(["voltage"], ReadingSource.POLL)


async def test_silent_meter_times_out_after_retries() -> None:
    meter = Em114070Meter(faults=Faults(drop_probability=1.0))
    meter.heartbeat = None
    timings = SessionTimings(request_timeout_s=0.05, retries=1, identify_timeout_s=0.05)
    async with Harness(meter, timings=timings) as h:
        assert h.session.meter.value.startswith("99")
        with pytest.raises(MeterTimeout):
            await h.session.read(["voltage"], ReadingSource.POLL)


class _Refusing(Em114070Meter):
    """Answers the AARQ, then an Exception-Response to everything."""

    def answer(self, apdu: bytes) -> list[bytes]:
        if apdu[0] in (0x60, 0x62):
            return super().answer(apdu)
        return [bytes.fromhex("D80102")]


async def test_exception_response_is_a_rejection() -> None:
    async with Harness(_Refusing()) as h:
        with pytest.raises(MeterRejected, match="meter answered") as caught:
            await h.session.read(["voltage"], ReadingSource.POLL)
        assert caught.value.code == 2


async def test_concurrent_callers_share_one_association() -> None:
    meter = Em114070Meter()
    async with Harness(meter) as h:
        results = await asyncio.gather(
            *(h.session.read(["voltage"], ReadingSource.POLL) for _ in range(4))
        )
        assert all(len(r) == 1 for r in results)
        assert sum(1 for a in meter.received if a[0] == 0x60) == 1
        assert sum(1 for a in meter.received if a[0] == 0x62) == 1


async def test_capture_records_both_directions_and_close_is_idempotent() -> None:
    capture = Capture()
    async with Harness(Em114070Meter(), capture=capture) as h:
        await h.session.read(["voltage"], ReadingSource.POLL)
        h.session.close("test")
        h.session.close("test again")
    assert {d for d, _ in capture.records} == {"rx", "tx"}
    assert h.session.connection == h.pair.gateway.info
