"""Threshold alarms on readings, with hysteresis so a hovering value raises one event.

An "over" rule raises when ``value >= limit`` and clears only when ``value < limit − h``;
an "under" rule raises at ``value <= limit`` and clears at ``value > limit + h``. Both
transitions are events of the rule's kind; ``data.state`` is ``raised`` or ``cleared`` and
a clearing event has severity ``info``. State is kept per (meter, rule, quantity), so one
phase's alarm does not mask another's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from decimal import Decimal

from ivy_gateway.domain.errors import ConfigError
from ivy_gateway.domain.events import EventKind, GatewayEvent, MeterEvent, ReadingsBatch, Severity
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.ports import EventSink
from ivy_gateway.domain.quantities import Reading

from .commands import to_json_value

__all__ = ["AlarmThresholds", "Alarms"]

_VOLTAGES = ("voltage", "voltage_l1", "voltage_l2", "voltage_l3")
_CURRENTS = ("current", "current_l1", "current_l2", "current_l3", "current_neutral")


@dataclass(frozen=True, slots=True)
class AlarmThresholds:
    """Limits in canonical units; ``None`` switches a rule off.

    Voltage defaults are 230 V ± 10 % (EN 50160 supply voltage range). Power and power
    factor are compared as absolute values: export flows are negative on many meters.
    """

    over_voltage_v: Decimal | None = Decimal("253")
    under_voltage_v: Decimal | None = Decimal("207")
    voltage_hysteresis_v: Decimal = Decimal("2")
    # Below this a phase counts as not wired (single-phase meters report L2/L3 as 0 V).
    voltage_absent_v: Decimal = Decimal("10")
    over_current_a: Decimal | None = None
    current_hysteresis_a: Decimal = Decimal("0.5")
    overload_w: Decimal | None = None
    power_hysteresis_w: Decimal = Decimal("100")
    low_power_factor: Decimal | None = None
    power_factor_hysteresis: Decimal = Decimal("0.02")
    # At (almost) no load the power factor is noise; judge it only above this power.
    power_factor_min_load_w: Decimal = Decimal("100")
    low_balance_money: Decimal | None = None
    low_balance_energy_kwh: Decimal | None = None
    balance_hysteresis: Decimal = Decimal("1")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value < 0 and not f.name.startswith("low_balance"):
                raise ConfigError(f"alarms.{f.name} must not be negative, got {value}")
        over, under = self.over_voltage_v, self.under_voltage_v
        if over is not None and under is not None and under >= over:
            raise ConfigError("alarms.under_voltage_v must be below alarms.over_voltage_v")


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: EventKind
    severity: Severity
    quantities: tuple[str, ...]
    over: bool  # True: alarm above the limit; False: below it
    limit: Decimal
    hysteresis: Decimal
    absolute: bool = False
    ignore_below: Decimal | None = None
    min_load_w: Decimal | None = None

    def raises(self, value: Decimal) -> bool:
        return value >= self.limit if self.over else value <= self.limit

    def clears(self, value: Decimal) -> bool:
        if self.over:
            return value < self.limit - self.hysteresis
        return value > self.limit + self.hysteresis


def _rules(t: AlarmThresholds) -> list[_Rule]:
    rules: list[_Rule] = []
    v, i, pf = _VOLTAGES, _CURRENTS, ("power_factor_total",)
    if t.over_voltage_v is not None:
        rules.append(
            _Rule(
                EventKind.OVERVOLTAGE,
                Severity.CRITICAL,
                v,
                True,
                t.over_voltage_v,
                t.voltage_hysteresis_v,
            )
        )
    if t.under_voltage_v is not None:
        rules.append(
            _Rule(
                EventKind.UNDERVOLTAGE,
                Severity.WARNING,
                v,
                False,
                t.under_voltage_v,
                t.voltage_hysteresis_v,
                ignore_below=t.voltage_absent_v,
            )
        )
    if t.over_current_a is not None:
        rules.append(
            _Rule(
                EventKind.OVERCURRENT,
                Severity.WARNING,
                i,
                True,
                t.over_current_a,
                t.current_hysteresis_a,
            )
        )
    if t.overload_w is not None:
        rules.append(
            _Rule(
                EventKind.OVERLOAD,
                Severity.CRITICAL,
                ("power_active_total",),
                True,
                t.overload_w,
                t.power_hysteresis_w,
                absolute=True,
            )
        )
    if t.low_power_factor is not None:
        rules.append(
            _Rule(
                EventKind.LOW_POWER_FACTOR,
                Severity.INFO,
                pf,
                False,
                t.low_power_factor,
                t.power_factor_hysteresis,
                absolute=True,
                min_load_w=t.power_factor_min_load_w,
            )
        )
    if t.low_balance_money is not None:
        rules.append(
            _Rule(
                EventKind.LOW_BALANCE,
                Severity.WARNING,
                ("balance_money_remaining",),
                False,
                t.low_balance_money,
                t.balance_hysteresis,
            )
        )
    if t.low_balance_energy_kwh is not None:
        rules.append(
            _Rule(
                EventKind.LOW_BALANCE,
                Severity.WARNING,
                ("balance_energy_remaining",),
                False,
                t.low_balance_energy_kwh,
                t.balance_hysteresis,
            )
        )
    return rules


class Alarms:
    """Turns ``ReadingsBatch``es into alarm ``MeterEvent``s; a ``TelemetrySink``.

    Wiring: ``telemetry.add_sink("alarms", Alarms(thresholds, telemetry))`` — the events it
    raises go back through telemetry to the store and the publisher.
    """

    def __init__(self, thresholds: AlarmThresholds, sink: EventSink | None = None) -> None:
        self._sink = sink
        self._by_quantity: dict[str, list[_Rule]] = {}
        for rule in _rules(thresholds):
            for quantity in rule.quantities:
                self._by_quantity.setdefault(quantity, []).append(rule)
        self._active: set[tuple[MeterId, EventKind, str]] = set()

    async def handle(self, events: Sequence[GatewayEvent]) -> None:
        for event in events:
            if isinstance(event, ReadingsBatch) and self._sink is not None:
                for alarm in self.evaluate(event):
                    self._sink.emit(alarm)

    def evaluate(self, batch: ReadingsBatch) -> list[MeterEvent]:
        load = next((r.value for r in batch.readings if r.quantity == "power_active_total"), None)
        alarms: list[MeterEvent] = []
        for reading in batch.readings:
            for rule in self._by_quantity.get(reading.quantity, ()):
                alarm = self._apply(rule, reading, load)
                if alarm is not None:
                    alarms.append(alarm)
        return alarms

    def _apply(self, rule: _Rule, reading: Reading, load: Decimal | None) -> MeterEvent | None:
        value = abs(reading.value) if rule.absolute else reading.value
        if rule.ignore_below is not None and value < rule.ignore_below:
            return None
        if rule.min_load_w is not None and load is not None and abs(load) < rule.min_load_w:
            return None
        key = (reading.meter, rule.kind, reading.quantity)
        if key not in self._active and rule.raises(value):
            self._active.add(key)
            return self._event(rule, reading, "raised", rule.severity)
        if key in self._active and rule.clears(value):
            self._active.discard(key)
            return self._event(rule, reading, "cleared", Severity.INFO)
        return None

    @staticmethod
    def _event(rule: _Rule, reading: Reading, state: str, severity: Severity) -> MeterEvent:
        data = {
            "state": state,
            "quantity": reading.quantity,
            "value": to_json_value(reading.value),
            "unit": reading.unit,
            "threshold": to_json_value(rule.limit),
        }
        return MeterEvent(rule.kind, severity, reading.ts_ms, reading.meter, data)

    def active(self) -> list[tuple[MeterId, EventKind, str]]:
        """Alarms raised and not cleared: (meter, kind, quantity)."""
        return sorted(self._active)
