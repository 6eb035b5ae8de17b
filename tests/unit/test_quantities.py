"""Every protocol maps into one canonical quantity list with one unit per name."""

from ivy_gateway.codec.dlms.obis import DEFAULT_CATALOGUE
from ivy_gateway.codec.dlt645 import CATALOG, DataId
from ivy_gateway.domain.quantities import GROUPS, QUANTITIES, quantity_unit
from ivy_gateway.sessions.profiles import load_profiles


def test_contract_table_names_and_units() -> None:
    # CONTRACT.md "Canonical quantities": the names and units users rely on.
    expected = {
        "energy_active_combined_total": "kWh",
        "energy_active_import_total": "kWh",
        "energy_active_export_total": "kWh",
        "energy_active_absolute_total": "kWh",
        "energy_active_import_t4": "kWh",
        "voltage_l1": "V",
        "voltage": "V",
        "current_l3": "A",
        "current_neutral": "A",
        "power_active_total": "W",
        "power_reactive_total": "var",
        "power_apparent_total": "VA",
        "power_factor_l2": "1",
        "frequency": "Hz",
    }
    assert {name: quantity_unit(name) for name in expected} == expected
    assert {"energy", "instantaneous"} <= GROUPS


def test_dlt645_catalogue_uses_canonical_names_and_units() -> None:
    for entry in CATALOG.values():
        if entry.quantity is not None:
            assert entry.quantity in QUANTITIES, entry.di
            assert QUANTITIES[entry.quantity].unit == entry.canonical_unit, entry.di


def test_obis_catalogue_uses_canonical_names() -> None:
    for obj in DEFAULT_CATALOGUE:
        if obj.quantity is not None:
            assert obj.quantity in QUANTITIES, str(obj.obis)


def test_profiles_point_at_catalogued_addresses() -> None:
    for name in load_profiles().names():
        profile = load_profiles()[name]
        for point in profile.points.values():
            di = getattr(point, "di", None)
            if di is not None:
                assert CATALOG[DataId.parse(di)].quantity == point.quantity, (name, di)
