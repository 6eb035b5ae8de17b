"""OBIS value object and the object catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivy_gateway.codec.dlms.axdr import DataType
from ivy_gateway.codec.dlms.enums import InterfaceClass
from ivy_gateway.codec.dlms.obis import DEFAULT_CATALOGUE, Catalogue, CosemObject, Obis
from ivy_gateway.codec.dlms.units import ScalerUnit, Unit


@pytest.mark.parametrize(
    "text", ["1-0:12.7.0.255", "1.0.12.7.0.255", "1-0:12.7.0", " 1-0:12.7.0*255 "]
)
def test_parse_accepts_the_usual_spellings(text: str) -> None:
    assert Obis.parse(text) == Obis(1, 0, 12, 7, 0, 255)


def test_text_and_bytes_forms() -> None:
    obis = Obis(0, 0, 96, 3, 10, 255)
    assert str(obis) == "0-0:96.3.10.255"
    assert obis.to_bytes() == bytes.fromhex("000060030AFF")
    assert Obis.from_bytes(bytes.fromhex("000060030AFF")) == obis
    assert Obis.coerce(obis) is obis
    assert Obis.coerce("0-0:96.3.10.255") == obis
    assert Obis.coerce(bytes.fromhex("000060030AFF")) == obis


@pytest.mark.parametrize(
    "text", ["", "1-0:12.7", "1-0:12.7.0.256", "a-0:1.8.0.255", "1-0:1.8.0.255.1"]
)
def test_parse_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError, match="OBIS"):
        Obis.parse(text)


@pytest.mark.parametrize(
    "groups", [(256, 0, 0, 0, 0, 0), (0, -1, 0, 0, 0, 0), (0, 0, 0, 0, 0, 1.0)]
)
def test_constructor_rejects_out_of_range_groups(groups: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="value group"):
        Obis(*groups)


@pytest.mark.parametrize("raw", [b"", bytes(5), bytes(7)])
def test_from_bytes_rejects_wrong_length(raw: bytes) -> None:
    with pytest.raises(ValueError, match="6 bytes"):
        Obis.from_bytes(raw)


@given(st.tuples(*[st.integers(0, 255)] * 6))
def test_obis_round_trips_through_text_and_bytes(groups: tuple[int, ...]) -> None:
    obis = Obis(*groups)
    assert Obis.parse(str(obis)) == obis
    assert Obis.from_bytes(obis.to_bytes()) == obis


@pytest.mark.parametrize(
    ("obis", "quantity"),
    [
        ("1-0:12.7.0.255", "voltage"),
        ("1-0:32.7.0.255", "voltage_l1"),
        ("1-0:1.8.0.255", "energy_active_import_total"),
        ("1-0:1.8.3.255", "energy_active_import_t3"),
        ("1-0:91.7.0.255", "current_neutral"),
        ("1-0:14.7.0.255", "frequency"),
    ],
)
def test_catalogue_maps_obis_to_canonical_quantities(obis: str, quantity: str) -> None:
    row = DEFAULT_CATALOGUE.get(obis)
    assert row is not None
    assert row.quantity == quantity
    assert DEFAULT_CATALOGUE.by_quantity(quantity) is row


def test_catalogue_holds_the_em114070_objects_with_their_scalers() -> None:
    voltage = DEFAULT_CATALOGUE.get(bytes.fromhex("01000C0700FF"))
    assert voltage is not None
    assert voltage.class_id == InterfaceClass.REGISTER
    assert voltage.scaler_unit == ScalerUnit(-2, Unit.VOLT)
    assert voltage.data_type == DataType.DOUBLE_LONG_UNSIGNED
    clock = DEFAULT_CATALOGUE.get("0-0:1.0.0.255")
    assert clock is not None
    assert clock.class_id == InterfaceClass.CLOCK
    assert Obis.parse("0-0:42.0.0.255") in DEFAULT_CATALOGUE
    assert DEFAULT_CATALOGUE.get("9-9:9.9.9.9") is None
    assert DEFAULT_CATALOGUE.by_quantity("no_such_quantity") is None
    assert len(DEFAULT_CATALOGUE) == len(list(DEFAULT_CATALOGUE))


def test_catalogue_matches_the_scanned_object_list() -> None:
    path = Path("/work/shared/reference/em114070-objects.json")
    if not path.exists():
        pytest.skip("shared reference not mounted")
    for entry in json.loads(path.read_text(encoding="utf-8"))["objects"]:
        row = DEFAULT_CATALOGUE.get(entry["obis"])
        assert row is not None, entry["obis"]
        assert row.class_id == entry["class_id"]
        assert row.data_type == entry["dlms_tag"]
        if "scaler" in entry:
            assert row.scaler_unit == ScalerUnit(entry["scaler"], Unit(entry["unit"]))


def test_catalogue_rejects_duplicates() -> None:
    row = CosemObject(Obis(1, 0, 1, 8, 0), InterfaceClass.REGISTER, "a", "q")
    with pytest.raises(ValueError, match="duplicate OBIS"):
        Catalogue([row, row])
    other = CosemObject(Obis(1, 0, 2, 8, 0), InterfaceClass.REGISTER, "b", "q")
    with pytest.raises(ValueError, match="duplicate quantity"):
        Catalogue([row, other])
