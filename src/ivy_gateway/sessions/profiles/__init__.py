"""Meter models as data: which quantities a model has, where, how often, how its relay works.

A model is one TOML file (the built-in ones sit beside this module; ``profiles.paths`` adds
folders). Loading validates everything up front — quantity names against the canonical list,
DIs as 8 hex digits, OBIS codes, poll groups naming known points — and every problem is a
``ConfigError`` naming the file and the key. ``docs/recipes/add-a-meter-model.md`` is the
how-to.
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivy_gateway.domain.errors import ConfigError
from ivy_gateway.domain.meter import ProtocolKind
from ivy_gateway.domain.quantities import QUANTITIES

__all__ = [
    "DlmsPoint",
    "DltPoint",
    "MeterProfile",
    "PollGroupSpec",
    "ProfileCatalog",
    "RelayMethod",
    "SecurityMode",
    "load_profiles",
]

BUILTIN_DIR = Path(__file__).resolve().parent

_DI = re.compile(r"^[0-9A-Fa-f]{8}$")
_OBIS = re.compile(r"^(\d{1,3})-(\d{1,3}):(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")

#: Raw units a DLMS meter may report, with the factor into the canonical unit.
UNIT_FACTORS: Mapping[tuple[str, str], int] = {
    ("Wh", "kWh"): 1000,
    ("varh", "kvarh"): 1000,
}


class RelayMethod(enum.StrEnum):
    DLT645_STANDARD = "dlt645-standard"  # 0x1C, the standard 16-byte frame
    DLT645_VENDOR_AES = "dlt645-vendor-aes"  # the old gateway's AES-ECB block; opt-in only
    DLMS_CLASS70 = "dlms-class70"  # disconnect control, methods 1/2
    NONE = "none"


class SecurityMode(enum.StrEnum):
    NONE = "none"  # LN, no ciphering, no authentication
    HLS_GMAC = "hls-gmac"  # suite 0: ciphered LN context, mechanism 5 (when keys are set)


@dataclass(frozen=True, slots=True)
class DltPoint:
    quantity: str
    di: str  # 8 hex digits, DI3 first (as printed, not as on the wire)


@dataclass(frozen=True, slots=True)
class DlmsPoint:
    quantity: str
    obis: str
    class_id: int
    attribute: int
    scaler: int  # fallback when attribute 3 cannot be read
    unit: str  # the meter's raw unit (e.g. "Wh"); the session converts to the canonical one

    @property
    def divisor(self) -> int:
        """Raw-unit → canonical-unit divisor (1000 for Wh → kWh)."""
        return UNIT_FACTORS.get((self.unit, QUANTITIES[self.quantity].unit), 1)


@dataclass(frozen=True, slots=True)
class PollGroupSpec:
    name: str
    interval_s: float
    quantities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MeterProfile:
    name: str
    protocol: ProtocolKind
    description: str
    relay: RelayMethod
    security: SecurityMode
    points: Mapping[str, DltPoint | DlmsPoint]
    groups: tuple[PollGroupSpec, ...]
    wrapper_source: int = 1
    wrapper_destination: int = 1
    source_file: str = ""


class ProfileCatalog:
    """Model name → ``MeterProfile``; later folders override earlier ones by name."""

    def __init__(self, profiles: Iterable[MeterProfile]) -> None:
        self._profiles = {p.name: p for p in profiles}

    def __getitem__(self, name: str) -> MeterProfile:
        try:
            return self._profiles[name]
        except KeyError:
            known = ", ".join(sorted(self._profiles))
            raise ConfigError(f"unknown meter model {name!r} (known: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._profiles

    def names(self) -> list[str]:
        return sorted(self._profiles)


def load_profiles(extra_dirs: Iterable[Path] = ()) -> ProfileCatalog:
    profiles: list[MeterProfile] = []
    for folder in (BUILTIN_DIR, *extra_dirs):
        if not folder.is_dir():
            raise ConfigError(f"profiles.paths: {folder} is not a folder")
        profiles.extend(load_profile_file(path) for path in sorted(folder.glob("*.toml")))
    return ProfileCatalog(profiles)


def load_profile_file(path: Path) -> MeterProfile:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"meter model {path}: {exc}") from exc
    try:
        return parse_profile(raw, source=str(path))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"meter model {path}: {exc}") from exc


def parse_profile(raw: Mapping[str, Any], *, source: str = "<memory>") -> MeterProfile:
    unknown = set(raw) - {
        "name",
        "protocol",
        "description",
        "relay",
        "security",
        "points",
        "groups",
        "wrapper_source",
        "wrapper_destination",
    }
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    protocol = ProtocolKind(raw["protocol"])
    points: dict[str, DltPoint | DlmsPoint] = {}
    for quantity, spec in dict(raw.get("points", {})).items():
        if quantity not in QUANTITIES:
            raise ValueError(f"points.{quantity}: not a canonical quantity name")
        points[quantity] = (
            _dlt_point(quantity, spec)
            if protocol is ProtocolKind.DLT645
            else _dlms_point(quantity, spec)
        )
    groups = []
    for group in raw.get("groups", []):
        names = tuple(group["quantities"])
        missing = [q for q in names if q not in points]
        if missing:
            raise ValueError(f"groups.{group['name']}: quantities without a point: {missing}")
        interval = float(group["interval_s"])
        if interval <= 0:
            raise ValueError(f"groups.{group['name']}.interval_s must be positive")
        groups.append(PollGroupSpec(str(group["name"]), interval, names))
    return MeterProfile(
        name=str(raw["name"]),
        protocol=protocol,
        description=str(raw.get("description", "")),
        relay=RelayMethod(raw.get("relay", "none")),
        security=SecurityMode(raw.get("security", "none")),
        points=points,
        groups=tuple(groups),
        wrapper_source=_wport(raw.get("wrapper_source", 1), "wrapper_source"),
        wrapper_destination=_wport(raw.get("wrapper_destination", 1), "wrapper_destination"),
        source_file=source,
    )


def _wport(value: object, key: str) -> int:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise ValueError(f"{key} must be an integer 0..65535")
    return value


def _dlt_point(quantity: str, spec: object) -> DltPoint:
    if not isinstance(spec, str) or not _DI.match(spec):
        raise ValueError(f"points.{quantity}: a DL/T 645 DI is 8 hex digits, got {spec!r}")
    return DltPoint(quantity, spec.upper())


def _dlms_point(quantity: str, spec: object) -> DlmsPoint:
    if not isinstance(spec, Mapping):
        raise TypeError(f"points.{quantity}: expected a table with obis/class_id/attribute")
    obis = str(spec["obis"])
    match = _OBIS.match(obis)
    if match is None or any(int(g) > 255 for g in match.groups()):
        raise ValueError(f"points.{quantity}.obis: {obis!r} is not A-B:C.D.E.F")
    return DlmsPoint(
        quantity=quantity,
        obis=obis,
        class_id=int(spec.get("class_id", 3)),
        attribute=int(spec.get("attribute", 2)),
        scaler=int(spec.get("scaler", 0)),
        unit=str(spec.get("unit", QUANTITIES[quantity].unit)),
    )
