"""Canonical quantities (CONTRACT.md) and the ``Reading`` every protocol maps into."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from .meter import MeterId

__all__ = ["QUANTITIES", "QuantityInfo", "Reading", "ReadingSource", "quantity_unit"]


class ReadingSource(enum.StrEnum):
    POLL = "poll"  # the gateway asked
    PUSH = "push"  # the meter sent it on its own (DLMS notification)
    COMMAND = "command"  # read on behalf of a user command


@dataclass(frozen=True, slots=True)
class QuantityInfo:
    name: str
    unit: str
    group: str  # "energy", "instantaneous", "status"


def _energy(prefix: str) -> list[QuantityInfo]:
    names = [f"{prefix}_total"] + [f"{prefix}_t{t}" for t in range(1, 5)]
    return [QuantityInfo(n, "kWh" if "active" in prefix else "kvarh", "energy") for n in names]


def _phased(prefix: str, unit: str, *, total: bool) -> list[QuantityInfo]:
    names = [f"{prefix}_total"] if total else [prefix]
    names += [f"{prefix}_l{p}" for p in (1, 2, 3)]
    return [QuantityInfo(n, unit, "instantaneous") for n in names]


#: Every canonical quantity name with its one unit (CONTRACT.md "Canonical quantities").
QUANTITIES: dict[str, QuantityInfo] = {
    q.name: q
    for q in [
        *_energy("energy_active_combined"),
        *_energy("energy_active_import"),
        *_energy("energy_active_export"),
        *_energy("energy_active_absolute"),
        *_energy("energy_reactive_combined1"),
        *_energy("energy_reactive_combined2"),
        *_energy("energy_reactive_import"),
        *_energy("energy_reactive_export"),
        *_phased("voltage", "V", total=False),
        *_phased("current", "A", total=False),
        QuantityInfo("current_neutral", "A", "instantaneous"),
        *_phased("power_active", "W", total=True),
        *_phased("power_reactive", "var", total=True),
        *_phased("power_apparent", "VA", total=True),
        *_phased("power_factor", "1", total=True),
        QuantityInfo("frequency", "Hz", "instantaneous"),
        QuantityInfo("demand_active_import_max", "W", "energy"),
        QuantityInfo("demand_active_export_max", "W", "energy"),
        QuantityInfo("balance_money", "CNY", "status"),
        QuantityInfo("balance_energy", "kWh", "status"),
        QuantityInfo("relay_state", "1", "status"),
    ]
}


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
