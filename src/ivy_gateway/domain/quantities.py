"""Canonical quantities (CONTRACT.md) and the ``Reading`` every protocol maps into."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from .meter import MeterId

__all__ = ["GROUPS", "QUANTITIES", "QuantityInfo", "Reading", "ReadingSource", "quantity_unit"]


class ReadingSource(enum.StrEnum):
    POLL = "poll"  # the gateway asked
    PUSH = "push"  # the meter sent it on its own (DLMS notification)
    COMMAND = "command"  # read on behalf of a user command


@dataclass(frozen=True, slots=True)
class QuantityInfo:
    name: str
    unit: str
    group: str  # "energy", "demand", "instantaneous", "balance", "status"


_TARIFFS = ("total", "t1", "t2", "t3", "t4")
_PHASES = ("l1", "l2", "l3")


def _family(prefix: str, suffixes: tuple[str, ...], unit: str, group: str) -> list[QuantityInfo]:
    return [QuantityInfo(f"{prefix}_{s}", unit, group) for s in suffixes]


def _build() -> list[QuantityInfo]:
    out: list[QuantityInfo] = []
    # Energy registers per tariff; active energy also per phase (DL/T 645 §7.1, IEC 62056).
    for kind in ("combined", "import", "export", "absolute"):
        out += _family(f"energy_active_{kind}", _TARIFFS, "kWh", "energy")
    for kind in ("import", "export"):
        out += _family(f"energy_active_{kind}", _PHASES, "kWh", "energy")
        out += _family(f"energy_apparent_{kind}", _TARIFFS, "kVAh", "energy")
    for kind in ("combined1", "combined2", "import", "export", "q1", "q2", "q3", "q4"):
        out += _family(f"energy_reactive_{kind}", _TARIFFS, "kvarh", "energy")
    # Maximum demand per tariff (DL/T 645 §7.2) and present demand.
    for kind, unit in (("active", "W"), ("apparent", "VA")):
        for direction in ("import", "export"):
            out += _family(f"demand_{kind}_{direction}_max", _TARIFFS, unit, "demand")
    for kind in ("combined1", "combined2", "q1", "q2", "q3", "q4"):
        out += _family(f"demand_reactive_{kind}_max", _TARIFFS, "var", "demand")
    out += [
        QuantityInfo("demand_active_present_total", "W", "demand"),
        QuantityInfo("demand_reactive_present_total", "var", "demand"),
        QuantityInfo("demand_apparent_present_total", "VA", "demand"),
    ]
    # Instantaneous values: single-phase meters publish the phase-less names.
    out += [
        QuantityInfo("voltage", "V", "instantaneous"),
        QuantityInfo("current", "A", "instantaneous"),
    ]
    out += _family("voltage", _PHASES, "V", "instantaneous")
    out += _family("current", (*_PHASES, "neutral"), "A", "instantaneous")
    out += _family("power_active", ("total", *_PHASES), "W", "instantaneous")
    out += _family("power_reactive", ("total", *_PHASES), "var", "instantaneous")
    out += _family("power_apparent", ("total", *_PHASES), "VA", "instantaneous")
    out += _family("power_factor", ("total", *_PHASES), "1", "instantaneous")
    out += _family("phase_angle", _PHASES, "°", "instantaneous")
    out += [
        QuantityInfo("power_active_average_total", "W", "instantaneous"),
        QuantityInfo("frequency", "Hz", "instantaneous"),
        QuantityInfo("temperature_internal", "°C", "instantaneous"),
        QuantityInfo("voltage_battery_clock", "V", "status"),
        QuantityInfo("voltage_battery_reading", "V", "status"),
        QuantityInfo("battery_operating_time", "min", "status"),
    ]
    # Prepaid balance (DL/T 645 §7.1, 0090xxxx) and running status words (§7.5).
    out += _family("balance_money", ("remaining", "overdraft"), "currency", "balance")
    out += _family("balance_energy", ("remaining", "overdraft"), "kWh", "balance")
    out += _family("status_word", tuple(str(i) for i in range(1, 8)), "", "status")
    return out


#: Every canonical quantity name with its one unit (CONTRACT.md "Canonical quantities";
#: the families beyond its table are documented in docs/quantities.md).
QUANTITIES: dict[str, QuantityInfo] = {q.name: q for q in _build()}

#: The groups a ``read_all`` command can name, besides ``all``.
GROUPS = frozenset(q.group for q in QUANTITIES.values())


def quantity_unit(name: str) -> str:
    """The canonical unit of ``name``; KeyError for a name that is not canonical."""
    return QUANTITIES[name].unit


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one quantity of one meter at one time.

    ``address`` says where it came from on the wire: a DL/T 645 DI (``"02010100"``) or an
    OBIS code (``"1-0:32.7.0.255"``); ``ts_ms`` is milliseconds since the Unix epoch (UTC).
    """

    meter: MeterId
    quantity: str
    value: Decimal
    unit: str
    ts_ms: int
    source: ReadingSource
    address: str
