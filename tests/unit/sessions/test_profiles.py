from pathlib import Path
from typing import Any

import pytest

from ivy_gateway.domain.errors import ConfigError
from ivy_gateway.domain.meter import ProtocolKind
from ivy_gateway.sessions.profiles import (
    DlmsPoint,
    DltPoint,
    RelayMethod,
    load_profiles,
    parse_profile,
)


def test_builtin_models_load() -> None:
    catalog = load_profiles()
    assert catalog.names() == [
        "dlms-three-phase",
        "dlt645-single-phase",
        "dlt645-three-phase",
        "em114070",
    ]
    em = catalog["em114070"]
    assert em.protocol is ProtocolKind.DLMS
    assert em.relay is RelayMethod.DLMS_CLASS70
    voltage = em.points["voltage"]
    assert isinstance(voltage, DlmsPoint)
    assert (voltage.obis, voltage.class_id, voltage.attribute, voltage.scaler) == (
        "1-0:12.7.0.255",
        3,
        2,
        -2,
    )
    energy = em.points["energy_active_absolute_total"]
    assert isinstance(energy, DlmsPoint)
    assert energy.divisor == 1000  # Wh on the wire, kWh published
    dlt = catalog["dlt645-single-phase"]
    assert dlt.points["voltage_l1"] == DltPoint("voltage_l1", "02010100")
    assert all(q in dlt.points for g in dlt.groups for q in g.quantities)


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known: dlms-three-phase"):
        load_profiles()["no-such-model"]


def test_extra_folder_overrides_by_name(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(
        'name = "em114070"\nprotocol = "dlms"\n[points.voltage]\nobis = "1-0:12.7.0.255"\n'
    )
    catalog = load_profiles([tmp_path])
    assert catalog["em114070"].source_file.endswith("mine.toml")
    assert "em114070" in catalog


def _dlt(**extra: Any) -> dict[str, Any]:
    return {"name": "x", "protocol": "dlt645", "points": {"voltage_l1": "02010100"}, **extra}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_dlt(points={"volts": "02010100"}), "not a canonical quantity"),
        (_dlt(points={"voltage_l1": "0201"}), "8 hex digits"),
        (_dlt(groups=[{"name": "g", "interval_s": 5, "quantities": ["frequency"]}]), "without"),
        (_dlt(groups=[{"name": "g", "interval_s": 0, "quantities": ["voltage_l1"]}]), "positive"),
        (_dlt(colour="red"), "unknown keys"),
        (_dlt(wrapper_source=70000), "0..65535"),
        ({"name": "x", "protocol": "dlms", "points": {"voltage": "1-0:12"}}, "table"),
        ({"name": "x", "protocol": "dlms", "points": {"voltage": {"obis": "1-0:12.7"}}}, "A-B"),
        (
            {"name": "x", "protocol": "dlms", "points": {"voltage": {"obis": "1-0:12.7.0.256"}}},
            "A-B",
        ),
        ({"name": "x", "protocol": "modbus"}, "modbus"),
    ],
)
def test_invalid_models_are_rejected(raw: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        parse_profile(raw)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nprotocol = "dlt645"\n[points]\nvolts = "02010100"\n')
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_profiles([tmp_path])
    with pytest.raises(ConfigError, match="not a folder"):
        load_profiles([tmp_path / "absent"])
    bad.write_text("not toml [")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_profiles([tmp_path])
