from __future__ import annotations

from decimal import Decimal

import pytest

from ivy_gateway.domain.errors import ConfigError
from ivy_gateway.domain.events import (
    EventKind,
    GatewayEvent,
    MeterEvent,
    MeterStatus,
    ReadingsBatch,
    Severity,
)
from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.domain.quantities import QUANTITIES, Reading, ReadingSource
from ivy_gateway.services.alarms import Alarms, AlarmThresholds

METER = MeterId("000000001234")
OTHER = MeterId("000000005678")


class EventList:
    def __init__(self) -> None:
        self.events: list[GatewayEvent] = []

    def emit(self, event: GatewayEvent) -> None:
        self.events.append(event)


def readings_batch(meter: MeterId = METER, ts_ms: int = 1000, **values: str) -> ReadingsBatch:
    readings = [
        Reading(meter, q, Decimal(v), QUANTITIES[q].unit, ts_ms, ReadingSource.POLL, "x")
        for q, v in values.items()
    ]
    return ReadingsBatch(meter, ProtocolKind.DLT645, ReadingSource.POLL, ts_ms, readings)


def states(events: list[MeterEvent]) -> list[tuple[EventKind, str]]:
    return [(e.kind, e.data["state"]) for e in events]


def test_a_value_hovering_at_the_threshold_raises_one_alarm() -> None:
    alarms = Alarms(
        AlarmThresholds(over_voltage_v=Decimal("253"), voltage_hysteresis_v=Decimal("2"))
    )
    events: list[MeterEvent] = []
    for value in ["252.9", "253.0", "252.5", "253.4", "251.5", "253.1", "252.0"]:
        events += alarms.evaluate(readings_batch(voltage_l1=value))
    assert states(events) == [(EventKind.OVERVOLTAGE, "raised")]
    assert events[0].severity is Severity.CRITICAL
    assert events[0].data == {
        "state": "raised",
        "quantity": "voltage_l1",
        "value": 253.0,
        "unit": "V",
        "threshold": 253,
    }
    assert alarms.active() == [(METER, EventKind.OVERVOLTAGE, "voltage_l1")]


def test_an_alarm_clears_only_past_the_hysteresis_band() -> None:
    alarms = Alarms(AlarmThresholds())
    events: list[MeterEvent] = []
    for value in ["254", "251.5", "250.9"]:
        events += alarms.evaluate(readings_batch(voltage_l1=value, ts_ms=int(Decimal(value))))
    assert states(events) == [(EventKind.OVERVOLTAGE, "raised"), (EventKind.OVERVOLTAGE, "cleared")]
    assert events[1].severity is Severity.INFO
    assert events[1].ts_ms == 250
    assert alarms.active() == []


def test_phases_and_meters_have_their_own_alarm_state() -> None:
    alarms = Alarms(AlarmThresholds())
    first = alarms.evaluate(readings_batch(voltage_l1="260", voltage_l2="230"))
    second = alarms.evaluate(readings_batch(voltage_l1="260", voltage_l2="260"))
    third = alarms.evaluate(readings_batch(OTHER, voltage_l1="260"))
    assert [e.data["quantity"] for e in first + second] == ["voltage_l1", "voltage_l2"]
    assert [e.meter for e in third] == [OTHER]


def test_undervoltage_ignores_a_phase_that_is_not_wired() -> None:
    alarms = Alarms(AlarmThresholds())
    assert alarms.evaluate(readings_batch(voltage_l2="0", voltage_l3="0.3")) == []
    events = alarms.evaluate(readings_batch(voltage_l1="200"))
    assert states(events) == [(EventKind.UNDERVOLTAGE, "raised")]
    assert events[0].severity is Severity.WARNING
    assert alarms.evaluate(readings_batch(voltage_l1="208")) == []
    assert states(alarms.evaluate(readings_batch(voltage_l1="209.5"))) == [
        (EventKind.UNDERVOLTAGE, "cleared")
    ]


def test_overcurrent_and_overload_with_export_power_counted_by_magnitude() -> None:
    thresholds = AlarmThresholds(over_current_a=Decimal("60"), overload_w=Decimal("13000"))
    alarms = Alarms(thresholds)
    events = alarms.evaluate(readings_batch(current_l3="61", power_active_total="-13500"))
    assert states(events) == [(EventKind.OVERCURRENT, "raised"), (EventKind.OVERLOAD, "raised")]
    assert [e.severity for e in events] == [Severity.WARNING, Severity.CRITICAL]
    events = alarms.evaluate(readings_batch(current_l3="59", power_active_total="-12800"))
    assert states(events) == [(EventKind.OVERCURRENT, "cleared"), (EventKind.OVERLOAD, "cleared")]


def test_low_power_factor_is_judged_only_under_load() -> None:
    alarms = Alarms(AlarmThresholds(low_power_factor=Decimal("0.8")))
    idle = readings_batch(power_factor_total="0.2", power_active_total="5")
    assert alarms.evaluate(idle) == []
    loaded = readings_batch(power_factor_total="-0.7", power_active_total="2000")
    events = alarms.evaluate(loaded)
    assert states(events) == [(EventKind.LOW_POWER_FACTOR, "raised")]
    assert events[0].severity is Severity.INFO
    # Without a power reading in the batch the factor is judged on its own.
    assert states(alarms.evaluate(readings_batch(power_factor_total="0.83"))) == [
        (EventKind.LOW_POWER_FACTOR, "cleared")
    ]


def test_low_balance_in_money_and_in_energy() -> None:
    thresholds = AlarmThresholds(
        low_balance_money=Decimal("10"), low_balance_energy_kwh=Decimal("5")
    )
    alarms = Alarms(thresholds)
    events = alarms.evaluate(
        readings_batch(balance_money_remaining="-3.50", balance_energy_remaining="4")
    )
    assert states(events) == [(EventKind.LOW_BALANCE, "raised"), (EventKind.LOW_BALANCE, "raised")]
    assert alarms.evaluate(readings_batch(balance_money_remaining="10.5")) == []
    assert states(alarms.evaluate(readings_batch(balance_money_remaining="11.5"))) == [
        (EventKind.LOW_BALANCE, "cleared")
    ]


def test_rules_switched_off_never_fire() -> None:
    alarms = Alarms(AlarmThresholds(over_voltage_v=None, under_voltage_v=None))
    batch = readings_batch(voltage_l1="400", current_l1="500", power_active_total="1E+6")
    assert alarms.evaluate(batch) == []


async def test_as_a_telemetry_sink_alarms_go_to_the_event_sink() -> None:
    sink = EventList()
    alarms = Alarms(AlarmThresholds(), sink)
    status = MeterStatus(METER, True, ProtocolKind.DLT645, "DDS666", None, 0)
    await alarms.handle([status, readings_batch(voltage_l1="300")])
    assert [e.kind for e in sink.events if isinstance(e, MeterEvent)] == [EventKind.OVERVOLTAGE]


async def test_without_an_event_sink_handle_only_evaluates_nothing() -> None:
    alarms = Alarms(AlarmThresholds())
    await alarms.handle([readings_batch(voltage_l1="300")])
    assert alarms.active() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"voltage_hysteresis_v": Decimal("-1")}, "voltage_hysteresis_v"),
        ({"over_current_a": Decimal("-5")}, "over_current_a"),
        ({"under_voltage_v": Decimal("260")}, "under_voltage_v must be below"),
    ],
)
def test_thresholds_are_validated(kwargs: dict[str, Decimal], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AlarmThresholds(**kwargs)


def test_a_negative_low_balance_limit_is_allowed_for_credit_meters() -> None:
    assert AlarmThresholds(low_balance_money=Decimal("-50")).low_balance_money == Decimal("-50")
