"""The data-identifier catalogue (reference §7) as typed data.

Each ``CatalogEntry`` says how to read one DI: its value format, the unit the meter
uses (``kW``), the canonical quantity name and unit of the gateway's contract
(``power_active_total`` in ``W``) and the factor between the two. The table is built
from the standard's numbering schemes (DI3 = class, DI2 = type, DI1 = tariff/phase,
DI0 = billing period) by comprehension, not by ``if`` chains.

Canonical names follow ``<measure>_<qualifier>_<phase|total|tN>`` (CONTRACT.md); names
outside the contract's table (demand, quadrants, balance, status words) are defined here.
Previous billing periods are catalogued without a canonical name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import IntFlag
from types import MappingProxyType

from ..errors import DecodeError, EncodeError
from .data import (
    AsciiFormat,
    BitFieldFormat,
    ClockFormat,
    DataId,
    Demand,
    DemandFormat,
    DigitsFormat,
    NumberFormat,
    Value,
    ValueFormat,
)

__all__ = [
    "BY_QUANTITY",
    "CATALOG",
    "CatalogEntry",
    "OperationStatus",
    "Reading",
    "decode_reading",
    "lookup",
]


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """How to read and write one data identifier."""

    di: DataId
    description: str
    format: ValueFormat
    #: The unit as the meter counts it (``"kW"``); ``""`` for dimensionless or non-numeric.
    unit: str = ""
    #: Canonical quantity name from the contract, or None (identity, parameters, history).
    quantity: str | None = None
    #: The contract's unit for ``quantity``; canonical = native × 10 ** ``exponent``
    #: (3 for kW → W). A power of ten keeps Decimals exact: 0.4321 kW is 432.1 W.
    canonical_unit: str = ""
    exponent: int = 0

    def decode(self, raw: bytes, offset: int = 0) -> Value:
        """The value in the meter's own unit (``Decimal`` kW for power)."""
        return self.format.decode(raw, offset)

    def encode(self, value: Value) -> bytes:
        """Value bytes (plain, LSB first) for a value in the meter's own unit."""
        return self.format.encode(value)

    def to_canonical(self, value: Value) -> Value:
        if not self.exponent:
            return value
        if isinstance(value, Demand):
            return Demand(value.value.scaleb(self.exponent), value.time)
        assert isinstance(value, Decimal)  # only numeric formats carry an exponent
        return value.scaleb(self.exponent)

    def encode_canonical(self, value: Value) -> bytes:
        """Value bytes for a value in the canonical unit (W for power)."""
        if self.exponent:
            if isinstance(value, Demand):
                value = Demand(value.value.scaleb(-self.exponent), value.time)
            elif isinstance(value, Decimal | int) and not isinstance(value, bool):
                value = Decimal(value).scaleb(-self.exponent)
            else:
                raise EncodeError(f"{self.di} needs a number, not {type(value).__name__}")
        return self.format.encode(value)


@dataclass(frozen=True, slots=True)
class Reading:
    """A decoded register value in the canonical unit."""

    di: DataId
    quantity: str | None
    value: Value
    unit: str


class OperationStatus(IntFlag):
    """Running status word 3, ``04000503`` (reference §7.5)."""

    SECOND_TIME_PERIOD_TABLE = 0x0001
    SUPPLY_AUXILIARY = 0x0002  #: bits 1-2: 00 mains, 01 auxiliary, 10 battery
    SUPPLY_BATTERY = 0x0004
    PROGRAMMING_ENABLED = 0x0008
    RELAY_OPEN = 0x0010  #: 0 = closed (power on), 1 = open (power off)
    RELAY_COMMAND_TRIP = 0x0040  #: remote-control profile: a trip command is active
    PRE_TRIP_ALARM = 0x0080
    ENERGY_PREPAID = 0x0100  #: bits 8-9: 00 not prepaid, 01 energy, 10 money
    MONEY_PREPAID = 0x0200


_ENERGY = NumberFormat(4, 2)
_ENERGY_SIGNED = NumberFormat(4, 2, signed=True)
_POWER = NumberFormat(3, 4, signed=True)

#: DI2 of energy (DI3 = 00) and demand (DI3 = 01): (qualifier, energy unit, power unit, signed)
_TYPES: dict[int, tuple[str, str, str, bool]] = {
    0x00: ("active_combined", "kWh", "kW", True),
    0x01: ("active_import", "kWh", "kW", False),
    0x02: ("active_export", "kWh", "kW", False),
    0x03: ("reactive_combined1", "kvarh", "kvar", True),
    0x04: ("reactive_combined2", "kvarh", "kvar", True),
    0x05: ("reactive_q1", "kvarh", "kvar", False),
    0x06: ("reactive_q2", "kvarh", "kvar", False),
    0x07: ("reactive_q3", "kvarh", "kvar", False),
    0x08: ("reactive_q4", "kvarh", "kvar", False),
    0x09: ("apparent_import", "kVAh", "kVA", False),
    0x0A: ("apparent_export", "kVAh", "kVA", False),
}
#: DI1 of energy/demand: total and tariffs 1-4 (the four Chinese tariffs, §7.1).
_TARIFFS = {0: "total", 1: "t1", 2: "t2", 3: "t3", 4: "t4"}
#: Power units as the meter counts them → (canonical unit, factor) — CONTRACT.md.
_CANONICAL_POWER = {"kW": ("W", 3), "kvar": ("var", 3), "kVA": ("VA", 3)}
_PHASES = {1: "l1", 2: "l2", 3: "l3"}


def _di(di3: int, di2: int, di1: int, di0: int) -> DataId:
    return DataId(di3 << 24 | di2 << 16 | di1 << 8 | di0)


def _energy() -> list[CatalogEntry]:
    entries = []
    for tt, (qualifier, unit, _, signed) in _TYPES.items():
        fmt = _ENERGY_SIGNED if signed else _ENERGY
        for rr, tariff in _TARIFFS.items():
            for period in range(13):  # 0 = current, 1..12 = previous billing periods
                name = f"energy_{qualifier}_{tariff}" if period == 0 else None
                text = f"{qualifier.replace('_', ' ')} energy {tariff}, period -{period}"
                entries.append(CatalogEntry(_di(0, tt, rr, period), text, fmt, unit, name, unit))
    # Per-phase forward/reverse active energy (§7.1): DI2 = 15/16, 29/2A, 3D/3E.
    for di2, phase in ((0x15, "l1"), (0x29, "l2"), (0x3D, "l3")):
        for delta, qualifier in ((0, "active_import"), (1, "active_export")):
            name = f"energy_{qualifier}_{phase}"
            di = _di(0, di2 + delta, 0, 0)
            entries.append(CatalogEntry(di, name, _ENERGY, "kWh", name, "kWh"))
    prepaid = (
        (0x00900100, "balance_energy_remaining", "kWh"),
        (0x00900101, "balance_energy_overdraft", "kWh"),
        (0x00900200, "balance_money_remaining", "currency"),
        (0x00900201, "balance_money_overdraft", "currency"),
    )
    for code, name, unit in prepaid:
        entries.append(CatalogEntry(DataId(code), name, _ENERGY, unit, name, unit))
    return entries


def _demand() -> list[CatalogEntry]:
    entries = []
    for tt, (qualifier, _, unit, signed) in _TYPES.items():
        if tt == 0:
            continue  # DL/T 645-2007 has no combined active maximum demand
        fmt = DemandFormat(NumberFormat(3, 4, signed))
        canonical, scale = _CANONICAL_POWER[unit]
        for rr, tariff in _TARIFFS.items():
            name = f"demand_{qualifier}_max_{tariff}"
            entries.append(CatalogEntry(_di(1, tt, rr, 0), name, fmt, unit, name, canonical, scale))
    return entries


def _instantaneous() -> list[CatalogEntry]:
    entries = []
    per_phase = (
        (0x01, "voltage", NumberFormat(2, 1), "V"),
        (0x02, "current", NumberFormat(3, 3, signed=True), "A"),
        (0x07, "phase_angle", NumberFormat(2, 1), "°"),
    )
    for di2, measure, fmt, unit in per_phase:
        for di1, phase in _PHASES.items():
            name = f"{measure}_{phase}"
            entries.append(CatalogEntry(_di(2, di2, di1, 0), name, fmt, unit, name, unit))
    powers = (
        (0x03, "power_active", _POWER, "kW"),
        (0x04, "power_reactive", _POWER, "kvar"),
        (0x05, "power_apparent", _POWER, "kVA"),
        (0x06, "power_factor", NumberFormat(2, 3, signed=True), ""),
    )
    for di2, measure, fmt, unit in powers:
        canonical, scale = _CANONICAL_POWER.get(unit, ("1", 0))
        for di1, phase in {0: "total", **_PHASES}.items():
            name = f"{measure}_{phase}"
            entries.append(
                CatalogEntry(_di(2, di2, di1, 0), name, fmt, unit, name, canonical, scale)
            )
    extra: tuple[tuple[int, str, NumberFormat, str, str, int], ...] = (
        (0x01, "current_neutral", NumberFormat(3, 3, signed=True), "A", "A", 0),
        (0x02, "frequency", NumberFormat(2, 2), "Hz", "Hz", 0),
        (0x03, "power_active_average_total", _POWER, "kW", "W", 3),
        (0x04, "demand_active_present_total", _POWER, "kW", "W", 3),
        (0x05, "demand_reactive_present_total", _POWER, "kvar", "var", 3),
        (0x06, "demand_apparent_present_total", _POWER, "kVA", "VA", 3),
        (0x07, "temperature_internal", NumberFormat(2, 1, signed=True), "°C", "°C", 0),
        (0x08, "voltage_battery_clock", NumberFormat(2, 2), "V", "V", 0),
        (0x09, "voltage_battery_reading", NumberFormat(2, 2), "V", "V", 0),
        (0x0A, "battery_operating_time", NumberFormat(4), "min", "min", 0),
    )
    for di0, name, fmt, unit, canonical, scale in extra:
        entries.append(CatalogEntry(_di(2, 0x80, 0, di0), name, fmt, unit, name, canonical, scale))
    return entries


def _parameters() -> list[CatalogEntry]:
    entries = [
        CatalogEntry(DataId(0x04000101), "date", ClockFormat(("WW", "DD", "MM", "YY"))),
        CatalogEntry(DataId(0x04000102), "time", ClockFormat(("ss", "mm", "hh"))),
        CatalogEntry(
            DataId(0x0400010C),
            "date and time",
            ClockFormat(("ss", "mm", "hh", "WW", "DD", "MM", "YY")),
        ),
        CatalogEntry(DataId(0x04000401), "address", DigitsFormat(6, "NNNNNNNNNNNN")),
        CatalogEntry(DataId(0x04000402), "meter number", DigitsFormat(6, "NNNNNNNNNNNN")),
        CatalogEntry(DataId(0x04000403), "asset management code", AsciiFormat(32)),
        CatalogEntry(DataId(0x04000409), "active constant", NumberFormat(3), "imp/kWh"),
        CatalogEntry(DataId(0x04000B01), "first billing day", DigitsFormat(2, "DDhh")),
    ]
    for level in range(10):
        fmt = DigitsFormat(4, "PAP0P1P2")
        entries.append(CatalogEntry(_di(4, 0, 0x0C, level + 1), f"password {level}", fmt))
    for word in range(1, 8):
        name = f"status_word_{word}"
        entries.append(CatalogEntry(_di(4, 0, 5, word), name, BitFieldFormat(2), "", name))
    return entries


#: Every catalogued DI. Read-only: a catalogue is data, not a registry to patch at run time.
CATALOG: Mapping[DataId, CatalogEntry] = MappingProxyType(
    {e.di: e for e in (*_energy(), *_demand(), *_instantaneous(), *_parameters())}
)
#: The same entries by canonical quantity name.
BY_QUANTITY: Mapping[str, CatalogEntry] = MappingProxyType(
    {e.quantity: e for e in CATALOG.values() if e.quantity is not None}
)


def lookup(di: DataId) -> CatalogEntry | None:
    return CATALOG.get(di)


def decode_reading(di: DataId, raw: bytes) -> Reading:
    """Decode a read reply's value bytes into the canonical unit.

    Raises ``DecodeError`` for an uncatalogued DI or bytes that do not fit its format.
    """
    entry = CATALOG.get(di)
    if entry is None:
        raise DecodeError(f"data identifier {di} is not in the catalogue")
    value = entry.to_canonical(entry.decode(raw))
    return Reading(di, entry.quantity, value, entry.canonical_unit)
