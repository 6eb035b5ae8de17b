"""DLMS physical units and the scaler_unit attribute (Blue Book §4.3.2, dlms.md Part F).

Registers (classes 3, 4, 5) carry a raw integer in attribute 2 and
``scaler_unit = structure{integer scaler, enum unit}`` in attribute 3: the physical value is
``raw × 10^scaler`` in ``unit``. Values are exact ``Decimal``s, never floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum

from ..errors import DecodeError
from .axdr import Data, DataType, decode_data

__all__ = ["ScalerUnit", "Unit", "decode_scaler_unit"]


class Unit(IntEnum):
    """Unit enumeration of the Blue Book (numbers are the wire values; gaps are unused)."""

    YEAR = 1
    MONTH = 2
    WEEK = 3
    DAY = 4
    HOUR = 5
    MINUTE = 6
    SECOND = 7
    DEGREE = 8
    DEGREE_CELSIUS = 9
    CURRENCY = 10
    METRE = 11
    METRE_PER_SECOND = 12
    CUBIC_METRE = 13
    CUBIC_METRE_CORRECTED = 14
    CUBIC_METRE_PER_HOUR = 15
    CUBIC_METRE_PER_HOUR_CORRECTED = 16
    CUBIC_METRE_PER_DAY = 17
    CUBIC_METRE_PER_DAY_CORRECTED = 18
    LITRE = 19
    KILOGRAM = 20
    NEWTON = 21
    NEWTON_METRE = 22
    PASCAL = 23
    BAR = 24
    JOULE = 25
    JOULE_PER_HOUR = 26
    WATT = 27
    VOLT_AMPERE = 28
    VAR = 29
    WATT_HOUR = 30
    VOLT_AMPERE_HOUR = 31
    VAR_HOUR = 32
    AMPERE = 33
    COULOMB = 34
    VOLT = 35
    VOLT_PER_METRE = 36
    FARAD = 37
    OHM = 38
    OHM_METRE = 39
    WEBER = 40
    TESLA = 41
    AMPERE_PER_METRE = 42
    HENRY = 43
    HERTZ = 44
    PER_WATT_HOUR = 45
    PER_VAR_HOUR = 46
    PER_VOLT_AMPERE_HOUR = 47
    VOLT_SQUARED_HOUR = 48
    AMPERE_SQUARED_HOUR = 49
    KILOGRAM_PER_SECOND = 50
    SIEMENS = 51
    KELVIN = 52
    PER_VOLT_SQUARED_HOUR = 53
    PER_AMPERE_SQUARED_HOUR = 54
    PER_CUBIC_METRE = 55
    PERCENT = 56
    AMPERE_HOUR = 57
    WATT_HOUR_PER_CUBIC_METRE = 60
    JOULE_PER_CUBIC_METRE = 61
    MOLE_PERCENT = 62
    GRAM_PER_CUBIC_METRE = 63
    PASCAL_SECOND = 64
    JOULE_PER_KILOGRAM = 65
    GRAM_PER_SQUARE_CENTIMETRE = 66
    ATMOSPHERE = 67
    DBM = 70
    DB_MICROVOLT = 71
    DB = 72
    RESERVED = 253
    OTHER = 254
    COUNT = 255  # "count" / no unit (dimensionless)

    @property
    def symbol(self) -> str:
        """The printed symbol (``""`` for a dimensionless count)."""
        return _SYMBOLS.get(self, self.name.lower())


_SYMBOLS: dict[Unit, str] = {
    Unit.YEAR: "a",
    Unit.MONTH: "mo",
    Unit.WEEK: "wk",
    Unit.DAY: "d",
    Unit.HOUR: "h",
    Unit.MINUTE: "min",
    Unit.SECOND: "s",
    Unit.DEGREE: "°",
    Unit.DEGREE_CELSIUS: "°C",
    Unit.METRE: "m",
    Unit.METRE_PER_SECOND: "m/s",
    Unit.CUBIC_METRE: "m³",
    Unit.CUBIC_METRE_CORRECTED: "m³",
    Unit.CUBIC_METRE_PER_HOUR: "m³/h",
    Unit.CUBIC_METRE_PER_HOUR_CORRECTED: "m³/h",
    Unit.CUBIC_METRE_PER_DAY: "m³/d",
    Unit.CUBIC_METRE_PER_DAY_CORRECTED: "m³/d",
    Unit.LITRE: "l",
    Unit.KILOGRAM: "kg",
    Unit.NEWTON: "N",
    Unit.NEWTON_METRE: "Nm",
    Unit.PASCAL: "Pa",
    Unit.BAR: "bar",
    Unit.JOULE: "J",
    Unit.JOULE_PER_HOUR: "J/h",
    Unit.WATT: "W",
    Unit.VOLT_AMPERE: "VA",
    Unit.VAR: "var",
    Unit.WATT_HOUR: "Wh",
    Unit.VOLT_AMPERE_HOUR: "VAh",
    Unit.VAR_HOUR: "varh",
    Unit.AMPERE: "A",
    Unit.COULOMB: "C",
    Unit.VOLT: "V",
    Unit.VOLT_PER_METRE: "V/m",
    Unit.FARAD: "F",
    Unit.OHM: "Ω",
    Unit.OHM_METRE: "Ωm²/m",
    Unit.WEBER: "Wb",
    Unit.TESLA: "T",
    Unit.AMPERE_PER_METRE: "A/m",
    Unit.HENRY: "H",
    Unit.HERTZ: "Hz",
    Unit.PER_WATT_HOUR: "1/(Wh)",
    Unit.PER_VAR_HOUR: "1/(varh)",
    Unit.PER_VOLT_AMPERE_HOUR: "1/(VAh)",
    Unit.VOLT_SQUARED_HOUR: "V²h",
    Unit.AMPERE_SQUARED_HOUR: "A²h",
    Unit.KILOGRAM_PER_SECOND: "kg/s",
    Unit.SIEMENS: "S",
    Unit.KELVIN: "K",
    Unit.PER_VOLT_SQUARED_HOUR: "1/(V²h)",
    Unit.PER_AMPERE_SQUARED_HOUR: "1/(A²h)",
    Unit.PER_CUBIC_METRE: "1/m³",
    Unit.PERCENT: "%",
    Unit.AMPERE_HOUR: "Ah",
    Unit.WATT_HOUR_PER_CUBIC_METRE: "Wh/m³",
    Unit.JOULE_PER_CUBIC_METRE: "J/m³",
    Unit.MOLE_PERCENT: "mol %",
    Unit.GRAM_PER_CUBIC_METRE: "g/m³",
    Unit.PASCAL_SECOND: "Pa s",
    Unit.JOULE_PER_KILOGRAM: "J/kg",
    Unit.GRAM_PER_SQUARE_CENTIMETRE: "g/cm²",
    Unit.ATMOSPHERE: "atm",
    Unit.DBM: "dBm",
    Unit.DB_MICROVOLT: "dBµV",
    Unit.DB: "dB",
    Unit.COUNT: "",
}

# CONTRACT.md "Canonical quantities": energies are published in k-units, dimensionless
# quantities (power factor) in "1"; (decimal exponent shift, canonical symbol).
_CANONICAL: dict[Unit, tuple[int, str]] = {
    Unit.WATT_HOUR: (-3, "kWh"),
    Unit.VAR_HOUR: (-3, "kvarh"),
    Unit.VOLT_AMPERE_HOUR: (-3, "kVAh"),
    Unit.COUNT: (0, "1"),
}


@dataclass(frozen=True, slots=True)
class ScalerUnit:
    """Attribute 3 of a register: ``raw × 10^scaler`` in ``unit``."""

    scaler: int
    unit: Unit

    def __post_init__(self) -> None:
        if not -128 <= self.scaler <= 127:  # the scaler is an A-XDR integer (int8)
            raise ValueError(f"scaler {self.scaler} outside -128..127")

    def apply(self, raw: int) -> Decimal:
        """The physical value in ``unit``, exact."""
        return Decimal(raw).scaleb(self.scaler)

    def to_canonical(self, raw: int) -> tuple[Decimal, str]:
        """The value and symbol in the gateway's canonical unit (Wh → kWh, varh → kvarh)."""
        shift, symbol = _CANONICAL.get(self.unit, (0, self.unit.symbol))
        return Decimal(raw).scaleb(self.scaler + shift), symbol

    @classmethod
    def from_data(cls, data: Data) -> ScalerUnit:
        """From the decoded attribute: ``structure{integer, enum}``."""
        items = data.value
        if (
            data.tag != DataType.STRUCTURE
            or type(items) is not tuple
            or len(items) != 2
            or items[0].tag != DataType.INTEGER
            or items[1].tag != DataType.ENUM
        ):
            raise DecodeError(f"scaler_unit must be structure{{integer, enum}}, got {data!r}")
        scaler, unit_number = items[0].value, items[1].value
        # INTEGER and ENUM always decode to int (checked tags above)
        assert type(scaler) is int
        assert type(unit_number) is int
        try:
            unit = Unit(unit_number)
        except ValueError:
            raise DecodeError(f"unknown unit {unit_number}") from None
        return cls(scaler, unit)

    def to_data(self) -> Data:
        return Data(
            DataType.STRUCTURE,
            (Data(DataType.INTEGER, self.scaler), Data(DataType.ENUM, int(self.unit))),
        )


def decode_scaler_unit(buf: bytes | memoryview) -> ScalerUnit:
    """Decode the A-XDR bytes of a scaler_unit attribute (e.g. ``02 02 0F FE 16 23``)."""
    data, end = decode_data(buf)
    if end != len(buf):
        raise DecodeError("trailing bytes after scaler_unit", offset=end)
    return ScalerUnit.from_data(data)
