"""The DI catalogue (reference §7): contract names, canonical units, every format round-trips."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivy_gateway.codec.dlt645 import (
    BY_QUANTITY,
    CATALOG,
    DataId,
    Demand,
    OperationStatus,
    Reading,
    decode_reading,
    lookup,
)
from ivy_gateway.codec.dlt645.data import (
    AsciiFormat,
    BitFieldFormat,
    ClockFormat,
    DemandFormat,
    DigitsFormat,
    NumberFormat,
    Value,
    ValueFormat,
)
from ivy_gateway.codec.errors import DecodeError, EncodeError

#: CONTRACT.md "Canonical quantities": name → (DI, canonical unit).
CONTRACT = {
    "energy_active_combined_total": ("00000000", "kWh"),
    "energy_active_import_total": ("00010000", "kWh"),
    "energy_active_export_total": ("00020000", "kWh"),
    "energy_active_import_t1": ("00010100", "kWh"),
    "energy_active_import_t4": ("00010400", "kWh"),
    "voltage_l1": ("02010100", "V"),
    "voltage_l3": ("02010300", "V"),
    "current_l1": ("02020100", "A"),
    "current_l3": ("02020300", "A"),
    "current_neutral": ("02800001", "A"),
    "power_active_total": ("02030000", "W"),
    "power_active_l2": ("02030200", "W"),
    "power_reactive_total": ("02040000", "var"),
    "power_apparent_total": ("02050000", "VA"),
    "power_factor_total": ("02060000", "1"),
    "power_factor_l3": ("02060300", "1"),
    "frequency": ("02800002", "Hz"),
}


@pytest.mark.parametrize(("name", "expected"), CONTRACT.items())
def test_contract_quantities_map_to_their_di(name: str, expected: tuple[str, str]) -> None:
    entry = BY_QUANTITY[name]
    assert (str(entry.di), entry.canonical_unit) == expected
    assert lookup(entry.di) is entry


def test_quantity_names_are_unique_and_snake_case() -> None:
    names = [e.quantity for e in CATALOG.values() if e.quantity is not None]
    assert len(names) == len(set(names)) == len(BY_QUANTITY)
    assert all(n == n.lower() and " " not in n for n in names)


def test_catalogue_covers_tariffs_demand_phases_and_status() -> None:
    for di in ("00020400", "0001000C", "01010400", "02070300", "04000503"):
        assert DataId.parse(di) in CATALOG
    assert lookup(DataId.parse("0001FF00")) is None  # blocks are not single values
    assert CATALOG[DataId.parse("0001000C")].quantity is None  # 12th previous period


def test_catalogue_is_read_only() -> None:
    with pytest.raises(TypeError):
        CATALOG[DataId(0)] = CATALOG[DataId(0)]  # type: ignore[index]


def test_power_reading_is_in_watts() -> None:
    reading = decode_reading(DataId.parse("02030000"), bytes.fromhex("214380"))
    assert reading == Reading(
        DataId.parse("02030000"), "power_active_total", Decimal("-432.1"), "W"
    )


def test_energy_reading_is_in_kwh() -> None:
    reading = decode_reading(DataId.parse("00010000"), bytes.fromhex("56341200"))
    assert (reading.value, reading.unit) == (Decimal("1234.56"), "kWh")


def test_demand_reading_is_in_watts_with_its_time() -> None:
    reading = decode_reading(DataId.parse("01010000"), bytes.fromhex("5634123014150324"))
    assert reading.value == Demand(Decimal("12345.6"), datetime(2024, 3, 15, 14, 30))
    assert reading.quantity == "demand_active_import_max_total"


def test_decode_reading_rejects_unknown_di_and_wrong_length() -> None:
    with pytest.raises(DecodeError, match="catalogue"):
        decode_reading(DataId.parse("04010001"), b"\x01")
    with pytest.raises(DecodeError, match="needs 4"):
        decode_reading(DataId.parse("00010000"), b"\x01")


def test_encode_canonical_scales_back_to_the_meter_unit() -> None:
    power = BY_QUANTITY["power_active_total"]
    assert power.encode_canonical(Decimal("-432.1")) == bytes.fromhex("214380")
    assert power.encode_canonical(1500) == bytes.fromhex("005001")
    demand = BY_QUANTITY["demand_active_import_max_total"]
    moment = datetime(2024, 3, 15, 14, 30)
    assert demand.encode_canonical(Demand(Decimal("12345.6"), moment)) == bytes.fromhex(
        "5634123014150324"
    )
    voltage = BY_QUANTITY["voltage_l1"]
    assert voltage.encode_canonical(Decimal("220.5")) == voltage.encode(Decimal("220.5"))


def test_encode_canonical_rejects_non_numbers_for_scaled_entries() -> None:
    with pytest.raises(EncodeError):
        BY_QUANTITY["power_active_total"].encode_canonical("1")
    with pytest.raises(EncodeError):
        BY_QUANTITY["power_active_total"].encode_canonical(True)


def test_relay_state_bits_of_status_word_3() -> None:
    word = CATALOG[DataId.parse("04000503")].decode(bytes.fromhex("1000"))
    assert isinstance(word, int)
    status = OperationStatus(word)
    assert OperationStatus.RELAY_OPEN in status
    assert OperationStatus.RELAY_COMMAND_TRIP not in status


moments = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31, 23, 59)).map(
    lambda d: d.replace(second=0, microsecond=0)
)


def _values(fmt: ValueFormat) -> st.SearchStrategy[Value]:
    if isinstance(fmt, NumberFormat):
        limit = 8 * 10 ** (2 * fmt.size - 1) if fmt.signed else 10 ** (2 * fmt.size)
        low = -(limit - 1) if fmt.signed else 0
        return st.integers(low, limit - 1).map(lambda n: Decimal(n).scaleb(-fmt.decimals))
    if isinstance(fmt, DemandFormat):
        return st.builds(Demand, _values(fmt.number), st.one_of(st.none(), moments))
    if isinstance(fmt, ClockFormat):
        if fmt.label == "YYMMDDWW":
            return moments.map(lambda m: m.date())
        if fmt.label == "hhmmss":
            return st.times().map(lambda t: t.replace(microsecond=0))
        return moments
    if isinstance(fmt, DigitsFormat):
        return st.text("0123456789", min_size=2 * fmt.size, max_size=2 * fmt.size)
    if isinstance(fmt, BitFieldFormat):
        return st.integers(0, (1 << (8 * fmt.size)) - 1)
    assert isinstance(fmt, AsciiFormat)
    return st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=fmt.size)


FORMATS = sorted({e.format for e in CATALOG.values()}, key=lambda f: (type(f).__name__, repr(f)))


def test_every_format_kind_is_catalogued() -> None:
    kinds = {type(f) for f in FORMATS}
    expected = {NumberFormat, DemandFormat, ClockFormat, DigitsFormat, BitFieldFormat}
    assert kinds == expected | {AsciiFormat}


@pytest.mark.parametrize("fmt", FORMATS, ids=[f.label for f in FORMATS])
@given(data=st.data())
def test_every_catalogue_format_round_trips(fmt: ValueFormat, data: st.DataObject) -> None:
    value = data.draw(_values(fmt))
    raw = fmt.encode(value)
    assert len(raw) == fmt.size
    decoded = fmt.decode(raw)
    assert decoded == value or (isinstance(value, str) and decoded == value.rstrip("\x00"))
    assert isinstance(decoded, Decimal | Demand | date | time | str | int)


@given(st.sampled_from(sorted(CATALOG)), st.data())
def test_every_entry_round_trips_in_canonical_units(di: DataId, data: st.DataObject) -> None:
    entry = CATALOG[di]
    value = data.draw(_values(entry.format))
    raw = entry.encode(value)
    reading = decode_reading(di, raw)
    assert reading.quantity == entry.quantity
    assert entry.encode_canonical(reading.value) == raw
