"""Dlt645Session commands against the simulated meter: relay, clock, registers, address."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ivy_gateway.codec.dlt645 import (
    Demand,
    ErrorFlags,
    RelayCommand,
    RelayControlRequest,
    VendorAesRelayRequest,
    WriteRequest,
)
from ivy_gateway.domain.commands import RegisterRef, RelayState
from ivy_gateway.domain.errors import CommandError, ConfigError, MeterRejected
from ivy_gateway.domain.events import GatewayEvent
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.quantities import Reading, ReadingSource
from ivy_gateway.sessions.context import MeterOptions, SessionContext, SessionTimings
from ivy_gateway.sessions.dlt645 import Dlt645Session
from ivy_gateway.sessions.profiles import (
    ProfileCatalog,
    RelayMethod,
    load_profiles,
    parse_profile,
)
from ivy_gateway.simulators.dlt645_meter import Dlt645Meter
from ivy_gateway.transport.fakes import LoopbackPair

ADDRESS = "000000001234"
METER = MeterId(ADDRESS)
PASSWORD = "02123456"
KEY = bytes(range(16))
FAST = SessionTimings(request_timeout_s=0.2, retries=1, identify_timeout_s=0.1)


class Events:
    def __init__(self) -> None:
        self.events: list[GatewayEvent] = []

    def emit(self, event: GatewayEvent) -> None:
        self.events.append(event)


class Clock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


@asynccontextmanager
async def connected(
    meter: Dlt645Meter, options: MeterOptions | None = None, profiles: ProfileCatalog | None = None
) -> AsyncIterator[Dlt645Session]:
    context = SessionContext(
        sink=Events(),
        clock=Clock(),
        profiles=profiles or load_profiles(),
        timings=FAST,
        meter_options={METER: options or MeterOptions(dlt645_password=PASSWORD)},
    )
    async with LoopbackPair() as pair:
        served = asyncio.create_task(meter.serve(pair.meter))
        session = Dlt645Session(pair.gateway, context, b"")
        task = asyncio.create_task(session.run())
        async with asyncio.timeout(2):
            while context.registry.get(METER) is not session:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        try:
            yield session
        finally:
            session.close("test finished")
            await asyncio.wait_for(asyncio.gather(task, served), 2)


def relay_commands(meter: Dlt645Meter) -> list[RelayCommand]:
    return [r.command for r in meter.requests if isinstance(r, RelayControlRequest)]


# -- relay --------------------------------------------------------------------------------


async def test_relay_open_and_close_are_confirmed_by_the_meter() -> None:
    meter = Dlt645Meter(ADDRESS, password=PASSWORD)
    relay_open = []
    async with connected(meter) as session:
        assert await session.read_relay_state() is RelayState.CLOSED
        assert await session.relay_control(RelayState.OPEN) is RelayState.OPEN
        relay_open.append(meter.relay_open)
        [power] = await session.read(["power_active_total"], ReadingSource.POLL)
        assert power.value == 0
        assert await session.relay_control(RelayState.CLOSED) is RelayState.CLOSED
        relay_open.append(meter.relay_open)
    assert relay_open == [True, False]
    assert relay_commands(meter) == [RelayCommand.TRIP, RelayCommand.CLOSE_DIRECT]
    [trip, _] = [r for r in meter.requests if isinstance(r, RelayControlRequest)]
    assert str(trip.password) == PASSWORD
    assert str(trip.operator) == "00000000"
    # §5.12: "now + a few minutes" in the meter's local time.
    assert timedelta(minutes=4) < trip.valid_until - meter.now() <= timedelta(minutes=5)


async def test_older_meter_gets_close_permitted_and_stays_open_until_the_button() -> None:
    meter = Dlt645Meter(ADDRESS, password=PASSWORD, accepts_close_direct=False)
    async with connected(meter) as session:
        await session.relay_control(RelayState.OPEN)
        assert await session.relay_control(RelayState.CLOSED) is RelayState.OPEN
        meter.press_button()
        assert await session.read_relay_state() is RelayState.CLOSED
    assert relay_commands(meter) == [
        RelayCommand.TRIP,
        RelayCommand.CLOSE_DIRECT,
        RelayCommand.CLOSE_PERMITTED,
    ]


async def test_wrong_password_is_rejected_without_fallback() -> None:
    meter = Dlt645Meter(ADDRESS, password="02999999")
    async with connected(meter) as session:
        with pytest.raises(MeterRejected) as caught:
            await session.relay_control(RelayState.CLOSED)
        assert caught.value.detail == {"flags": ["password_or_unauthorized"]}
    assert relay_commands(meter) == [RelayCommand.CLOSE_DIRECT]


async def test_vendor_aes_relay_only_when_configured_with_a_key() -> None:
    meter = Dlt645Meter(ADDRESS, password=PASSWORD, vendor_aes_key=KEY)
    options = MeterOptions(
        relay_method=RelayMethod.DLT645_VENDOR_AES, dlt645_password=PASSWORD, vendor_aes_key=KEY
    )
    async with connected(meter, options) as session:
        assert await session.relay_control(RelayState.OPEN) is RelayState.OPEN
    [request] = [r for r in meter.requests if isinstance(r, VendorAesRelayRequest)]
    plain = request.decrypt(KEY)
    assert plain.command is RelayCommand.TRIP
    assert plain.password == PASSWORD
    assert relay_commands(meter) == []


async def test_vendor_aes_without_a_key_sends_the_standard_frame() -> None:
    meter = Dlt645Meter(ADDRESS, password=PASSWORD)
    options = MeterOptions(relay_method=RelayMethod.DLT645_VENDOR_AES, dlt645_password=PASSWORD)
    async with connected(meter, options) as session:
        assert await session.relay_control(RelayState.OPEN) is RelayState.OPEN
    assert relay_commands(meter) == [RelayCommand.TRIP]


async def test_relay_requests_that_cannot_be_made() -> None:
    meter = Dlt645Meter(ADDRESS, password=PASSWORD)
    async with connected(meter, MeterOptions(relay_method=RelayMethod.NONE)) as session:
        with pytest.raises(CommandError, match="no DL/T 645 relay"):
            await session.relay_control(RelayState.OPEN)
        with pytest.raises(CommandError, match="open or closed"):
            await session.relay_control(RelayState.UNKNOWN)
    async with connected(meter, MeterOptions(dlt645_password="not a password")) as session:
        with pytest.raises(ConfigError, match="password"):
            await session.relay_control(RelayState.OPEN)
    assert meter.requests.count(meter.requests[0]) == 2  # only the two read-address


@pytest.mark.parametrize(
    ("flags", "expected"),
    [(ErrorFlags.NO_REQUESTED_DATA, RelayState.UNKNOWN), (ErrorFlags.OTHER, None)],
)
async def test_relay_state_of_a_meter_without_status_word_3(
    flags: ErrorFlags, expected: RelayState | None
) -> None:
    meter = Dlt645Meter(ADDRESS, errors={"04000503": flags})
    async with connected(meter) as session:
        if expected is None:
            with pytest.raises(MeterRejected):
                await session.read_relay_state()
        else:
            assert await session.read_relay_state() is expected


# -- clock --------------------------------------------------------------------------------


async def test_sync_time_writes_time_then_date_and_returns_the_meter_clock() -> None:
    meter = Dlt645Meter(
        ADDRESS, password=PASSWORD, clock=lambda: datetime.now() - timedelta(hours=30)
    )
    target = datetime.now(UTC).replace(microsecond=0)
    async with connected(meter) as session:
        applied = await session.sync_time(target)
    assert abs(applied - target) <= timedelta(seconds=2)
    assert applied.tzinfo is not None
    assert abs(meter.now() - target.astimezone().replace(tzinfo=None)) <= timedelta(seconds=2)
    writes = [str(r.di) for r in meter.requests if isinstance(r, WriteRequest)]
    assert writes == ["04000102", "04000101"]


async def test_sync_time_with_the_wrong_password_is_rejected() -> None:
    meter = Dlt645Meter(ADDRESS, password="02999999")
    async with connected(meter) as session:
        with pytest.raises(MeterRejected, match="password"):
            await session.sync_time(datetime.now(UTC))


# -- registers and address ----------------------------------------------------------------


async def test_read_register_by_quantity_and_by_data_id() -> None:
    meter = Dlt645Meter(ADDRESS)
    async with connected(meter) as session:
        voltage = await session.read_register(RegisterRef(quantity="voltage_l2"))
        assert isinstance(voltage, Reading)
        assert (voltage.quantity, voltage.unit, voltage.address) == ("voltage_l2", "V", "02010200")
        assert voltage.source is ReadingSource.COMMAND
        assert voltage.value == meter.last_sent("02010200").value
        # Not in the profile, but catalogued: read from its catalogue DI.
        reactive = await session.read_register(RegisterRef(quantity="power_reactive_l1"))
        assert isinstance(reactive, Reading)
        assert reactive.address == "02040100"
        energy = await session.read_register(RegisterRef(data_id="00010000"))
        assert isinstance(energy, Reading)
        assert energy.quantity == "energy_active_import_total"
        status = await session.read_register(RegisterRef(data_id="04000503"))
        assert isinstance(status, Reading)
        assert status.value == Decimal(0)
        day = await session.read_register(RegisterRef(data_id="04000101"))
        assert not isinstance(day, Reading)
        assert day["value"] == meter.now().date().isoformat()
        assert (day["di"], day["unit"]) == ("04000101", "")
        constant = await session.read_register(RegisterRef(data_id="04000409"))
        assert not isinstance(constant, Reading)  # catalogued, but no canonical name
        assert constant["value"] == Decimal(1600)


async def test_read_register_refuses_what_a_dlt645_meter_cannot_have() -> None:
    meter = Dlt645Meter(ADDRESS)
    async with connected(meter) as session:
        with pytest.raises(CommandError, match="DLMS"):
            await session.read_register(RegisterRef(obis="1-0:32.7.0.255"))
        with pytest.raises(CommandError, match="8 hex digits"):
            await session.read_register(RegisterRef(data_id="xyz"))
        with pytest.raises(CommandError, match="not in the DL/T 645 catalogue"):
            await session.read_register(RegisterRef(data_id="12345678"))
        with pytest.raises(CommandError, match="no DL/T 645 register"):
            await session.read_register(RegisterRef(quantity="energy_active_absolute_total"))


async def test_read_address_asks_the_meter() -> None:
    async with connected(Dlt645Meter(ADDRESS)) as session:
        assert await session.read_address() == ADDRESS


async def test_maximum_demand_reads_as_its_value_in_watts() -> None:
    meter = Dlt645Meter(ADDRESS)
    async with connected(meter) as session:
        await session.read(["power_active_total"], ReadingSource.POLL)
        demand = await session.read_register(RegisterRef(quantity="demand_active_import_max_total"))
    assert isinstance(demand, Reading)
    assert demand.unit == "W"
    sent = meter.last_sent("01010000").value
    assert isinstance(sent, Demand)
    assert demand.value == sent.value > 0


async def test_a_profile_point_that_is_not_a_number_is_left_out() -> None:
    profile = parse_profile(
        {
            "name": "odd",
            "protocol": "dlt645",
            "points": {"voltage_l1": "04000101", "voltage_l2": "02010200"},
        }
    )
    meter = Dlt645Meter(ADDRESS)
    builtin = load_profiles()
    profiles = ProfileCatalog([*(builtin[name] for name in builtin.names()), profile])
    async with connected(meter, MeterOptions(model="odd"), profiles) as session:
        readings = await session.read(["voltage_l1", "voltage_l2"], ReadingSource.POLL)
    assert [r.quantity for r in readings] == ["voltage_l2"]
