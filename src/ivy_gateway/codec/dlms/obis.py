"""OBIS codes (IEC 62056-6-1) and the catalogue of COSEM objects the gateway knows.

An OBIS code is six value groups ``A-B:C.D.E.F``, each 0..255, carried on the wire as a
6-byte octet-string (a COSEM logical name). ``Obis`` parses the usual spellings
(``"1-0:12.7.0.255"``, ``"1.0.12.7.0.255"``, ``"1-0:12.7.0"`` with F defaulting to 255)
and validates itself.

The catalogue is typed data (one ``CosemObject`` row per object), not ``if`` chains: the
generic IEC 62056-6-1 electricity codes mapped to the canonical quantity names of
CONTRACT.md, plus the 14 objects scanned on the EM114070 (em114070-objects.json) with the
scaler/unit the reference gateway uses for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .axdr import DataType
from .enums import InterfaceClass
from .units import ScalerUnit, Unit

__all__ = ["DEFAULT_CATALOGUE", "Catalogue", "CosemObject", "Obis"]

_TEXT = re.compile(r"^(\d{1,3})[-.](\d{1,3})[:.](\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:[.*](\d{1,3}))?$")


@dataclass(frozen=True, slots=True, order=True)
class Obis:
    """A validated OBIS code; ``str()`` gives ``A-B:C.D.E.F``."""

    a: int
    b: int
    c: int
    d: int
    e: int
    f: int = 255

    def __post_init__(self) -> None:
        for group in (self.a, self.b, self.c, self.d, self.e, self.f):
            if type(group) is not int or not 0 <= group <= 255:
                raise ValueError(f"OBIS value group {group!r} is not an integer 0..255")

    @classmethod
    def parse(cls, text: str) -> Obis:
        """Parse ``"1-0:12.7.0.255"``, ``"1.0.12.7.0.255"`` or ``"1-0:12.7.0"`` (F = 255)."""
        match = _TEXT.match(text.strip())
        if match is None:
            raise ValueError(f"not an OBIS code: {text!r}")
        groups = [int(g) for g in match.groups(default="255")]
        return cls(*groups)

    @classmethod
    def from_bytes(cls, raw: bytes | memoryview) -> Obis:
        """From a 6-byte logical name."""
        if len(raw) != 6:
            raise ValueError(f"an OBIS code is 6 bytes, got {len(raw)}")
        return cls(*raw)

    @classmethod
    def coerce(cls, value: Obis | str | bytes) -> Obis:
        """Accept an ``Obis``, its text or its 6 bytes."""
        if isinstance(value, Obis):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        return cls.from_bytes(value)

    def to_bytes(self) -> bytes:
        return bytes((self.a, self.b, self.c, self.d, self.e, self.f))

    def __str__(self) -> str:
        return f"{self.a}-{self.b}:{self.c}.{self.d}.{self.e}.{self.f}"


@dataclass(frozen=True, slots=True)
class CosemObject:
    """One catalogue row: where a value lives and what it means."""

    obis: Obis
    class_id: InterfaceClass
    name: str
    quantity: str | None = None  # canonical quantity name (CONTRACT.md), if it is one
    scaler_unit: ScalerUnit | None = None  # default when attribute 3 is not read
    data_type: DataType | None = None  # the attribute-2 type observed on the EM114070


class Catalogue:
    """An immutable lookup of ``CosemObject``s by OBIS code and by canonical quantity."""

    __slots__ = ("_by_obis", "_by_quantity")

    def __init__(self, objects: Iterable[CosemObject]) -> None:
        by_obis: dict[Obis, CosemObject] = {}
        by_quantity: dict[str, CosemObject] = {}
        for obj in objects:
            if obj.obis in by_obis:
                raise ValueError(f"duplicate OBIS code {obj.obis}")
            by_obis[obj.obis] = obj
            if obj.quantity is not None:
                if obj.quantity in by_quantity:
                    raise ValueError(f"duplicate quantity {obj.quantity}")
                by_quantity[obj.quantity] = obj
        self._by_obis: Mapping[Obis, CosemObject] = MappingProxyType(by_obis)
        self._by_quantity: Mapping[str, CosemObject] = MappingProxyType(by_quantity)

    def __len__(self) -> int:
        return len(self._by_obis)

    def __iter__(self) -> Iterator[CosemObject]:
        return iter(self._by_obis.values())

    def __contains__(self, obis: object) -> bool:
        return obis in self._by_obis

    def get(self, obis: Obis | str | bytes) -> CosemObject | None:
        """The row for ``obis`` (any spelling), or ``None``."""
        return self._by_obis.get(Obis.coerce(obis))

    def by_quantity(self, quantity: str) -> CosemObject | None:
        """The row publishing ``quantity`` (e.g. ``"voltage"``), or ``None``."""
        return self._by_quantity.get(quantity)


def _row(
    obis: str,
    class_id: InterfaceClass,
    name: str,
    quantity: str | None = None,
    scaler: int | None = None,
    unit: Unit | None = None,
    data_type: DataType | None = None,
) -> CosemObject:
    scaler_unit = None if unit is None else ScalerUnit(scaler or 0, unit)
    return CosemObject(Obis.parse(obis), class_id, name, quantity, scaler_unit, data_type)


_REG = InterfaceClass.REGISTER
_DATA = InterfaceClass.DATA
_U32 = DataType.DOUBLE_LONG_UNSIGNED
_I32 = DataType.DOUBLE_LONG
_OCTETS = DataType.OCTET_STRING

_ROWS: tuple[CosemObject, ...] = (
    # -- the 14 objects found on the EM114070 (em114070-objects.json); scalers inferred --
    _row(
        "1-0:1.7.0.255", _REG, "active power import (+P)", "power_active_total", 0, Unit.WATT, _I32
    ),
    _row(
        "1-0:3.7.0.255",
        _REG,
        "reactive power import (+Q)",
        "power_reactive_total",
        0,
        Unit.VAR,
        _I32,
    ),
    _row(
        "1-0:9.7.0.255",
        _REG,
        "apparent power import",
        "power_apparent_total",
        0,
        Unit.VOLT_AMPERE,
        _U32,
    ),
    _row("1-0:11.7.0.255", _REG, "current (sum / single phase)", "current", -3, Unit.AMPERE, _U32),
    _row("1-0:12.7.0.255", _REG, "voltage (single phase)", "voltage", -2, Unit.VOLT, _U32),
    _row("1-0:13.7.0.255", _REG, "power factor", "power_factor_total", -3, Unit.COUNT, _I32),
    _row("1-0:14.7.0.255", _REG, "supply frequency", "frequency", -2, Unit.HERTZ, _U32),
    _row(
        "1-0:15.8.0.255",
        _REG,
        "active energy |+A|+|-A| total",
        "energy_active_absolute_total",
        0,
        Unit.WATT_HOUR,
        _U32,
    ),
    _row("1-0:91.7.0.255", _REG, "neutral current", "current_neutral", -3, Unit.AMPERE, _U32),
    _row("0-0:1.0.0.255", InterfaceClass.CLOCK, "clock", data_type=_OCTETS),
    _row("0-0:96.1.0.255", _DATA, "device ID 1 / meter serial number", data_type=_OCTETS),
    _row("0-0:96.14.0.255", _DATA, "currently active tariff", data_type=DataType.UNSIGNED),
    _row("0-0:42.0.0.255", _DATA, "COSEM logical device name", data_type=_OCTETS),
    _row("0-0:96.1.1.255", _DATA, "device ID 2 (manufacturer name)", data_type=_OCTETS),
    # -- generic IEC 62056-6-1 codes with a canonical quantity (CONTRACT.md) --
    _row(
        "1-0:1.8.0.255",
        _REG,
        "active energy import (+A) total",
        "energy_active_import_total",
        0,
        Unit.WATT_HOUR,
    ),
    _row(
        "1-0:2.8.0.255",
        _REG,
        "active energy export (-A) total",
        "energy_active_export_total",
        0,
        Unit.WATT_HOUR,
    ),
    *(
        _row(
            f"1-0:1.8.{t}.255",
            _REG,
            f"active energy import (+A) tariff {t}",
            f"energy_active_import_t{t}",
            0,
            Unit.WATT_HOUR,
        )
        for t in range(1, 5)
    ),
    _row("1-0:32.7.0.255", _REG, "voltage L1", "voltage_l1", -1, Unit.VOLT),
    _row("1-0:52.7.0.255", _REG, "voltage L2", "voltage_l2", -1, Unit.VOLT),
    _row("1-0:72.7.0.255", _REG, "voltage L3", "voltage_l3", -1, Unit.VOLT),
    _row("1-0:31.7.0.255", _REG, "current L1", "current_l1", -3, Unit.AMPERE),
    _row("1-0:51.7.0.255", _REG, "current L2", "current_l2", -3, Unit.AMPERE),
    _row("1-0:71.7.0.255", _REG, "current L3", "current_l3", -3, Unit.AMPERE),
    _row("1-0:21.7.0.255", _REG, "active power import L1", "power_active_l1", 0, Unit.WATT),
    _row("1-0:41.7.0.255", _REG, "active power import L2", "power_active_l2", 0, Unit.WATT),
    _row("1-0:61.7.0.255", _REG, "active power import L3", "power_active_l3", 0, Unit.WATT),
    _row("1-0:33.7.0.255", _REG, "power factor L1", "power_factor_l1", -3, Unit.COUNT),
    _row("1-0:53.7.0.255", _REG, "power factor L2", "power_factor_l2", -3, Unit.COUNT),
    _row("1-0:73.7.0.255", _REG, "power factor L3", "power_factor_l3", -3, Unit.COUNT),
    # -- objects addressed by the gateway's services --
    _row("0-0:96.3.10.255", InterfaceClass.DISCONNECT_CONTROL, "disconnect control"),
    _row("0-0:40.0.0.255", InterfaceClass.ASSOCIATION_LN, "current association"),
    _row("1-0:99.1.0.255", InterfaceClass.PROFILE_GENERIC, "load profile 1"),
    _row("0-0:96.11.0.255", _DATA, "event code"),
)

#: The catalogue the gateway ships with; profiles may build their own ``Catalogue``.
DEFAULT_CATALOGUE = Catalogue(_ROWS)
