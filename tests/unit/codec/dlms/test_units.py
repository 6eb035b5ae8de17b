"""Units and scaler_unit: symbols, exact scaling, canonical k-units."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ivy_gateway.codec.dlms.axdr import Data, DataType, encode_data
from ivy_gateway.codec.dlms.units import ScalerUnit, Unit, decode_scaler_unit
from ivy_gateway.codec.errors import DecodeError


@pytest.mark.parametrize(
    ("unit", "number", "symbol"),
    [(Unit.WATT, 27, "W"), (Unit.WATT_HOUR, 30, "Wh"), (Unit.AMPERE, 33, "A"),
     (Unit.VOLT, 35, "V"), (Unit.HERTZ, 44, "Hz"), (Unit.VAR_HOUR, 32, "varh"),
     (Unit.COUNT, 255, ""), (Unit.OTHER, 254, "other")],
)  # fmt: skip
def test_units_carry_spec_numbers_and_symbols(unit: Unit, number: int, symbol: str) -> None:
    assert unit == number
    assert unit.symbol == symbol


def test_voltage_scaler_unit_from_the_reference() -> None:
    scaler_unit = decode_scaler_unit(bytes.fromhex("02020FFE1623"))
    assert scaler_unit == ScalerUnit(-2, Unit.VOLT)
    assert scaler_unit.apply(23636) == Decimal("236.36")
    assert scaler_unit.to_canonical(23636) == (Decimal("236.36"), "V")
    assert encode_data(scaler_unit.to_data()) == bytes.fromhex("02020FFE1623")


@pytest.mark.parametrize(
    ("scaler_unit", "raw", "expected"),
    [
        (ScalerUnit(0, Unit.WATT_HOUR), 12345, (Decimal("12.345"), "kWh")),
        (ScalerUnit(1, Unit.VAR_HOUR), 5, (Decimal("0.05"), "kvarh")),
        (ScalerUnit(0, Unit.VOLT_AMPERE_HOUR), 1000, (Decimal("1.000"), "kVAh")),
        (ScalerUnit(-3, Unit.COUNT), 987, (Decimal("0.987"), "1")),
        (ScalerUnit(3, Unit.WATT), 2, (Decimal("2E+3"), "W")),
    ],
)
def test_canonical_units(scaler_unit: ScalerUnit, raw: int, expected: tuple[Decimal, str]) -> None:
    assert scaler_unit.to_canonical(raw) == expected


@pytest.mark.parametrize("scaler", [-129, 128])
def test_scaler_out_of_int8_is_rejected(scaler: int) -> None:
    with pytest.raises(ValueError, match="scaler"):
        ScalerUnit(scaler, Unit.VOLT)


@pytest.mark.parametrize(
    "wire",
    [
        "0F FE",  # not a structure
        "02 01 0F FE",  # one element
        "02 02 10 FFFE 16 23",  # long instead of integer
        "02 02 0F FE 11 23",  # unsigned instead of enum
        "01 02 0F FE 16 23",  # array
    ],
)
def test_malformed_scaler_unit_is_rejected(wire: str) -> None:
    with pytest.raises(DecodeError, match="scaler_unit"):
        decode_scaler_unit(bytes.fromhex(wire.replace(" ", "")))


def test_unknown_unit_and_trailing_bytes_are_rejected() -> None:
    with pytest.raises(DecodeError, match="unknown unit 58"):
        decode_scaler_unit(bytes.fromhex("02020F00163A"))
    with pytest.raises(DecodeError, match="trailing"):
        decode_scaler_unit(bytes.fromhex("02020FFE162300"))


def test_from_data_rejects_non_tuple_value() -> None:
    with pytest.raises(DecodeError):
        ScalerUnit.from_data(Data(DataType.STRUCTURE, None))
