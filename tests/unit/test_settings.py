from pathlib import Path

import pytest

from ivy_gateway.domain.errors import ConfigError
from ivy_gateway.settings import is_explicit, load_settings


def test_defaults_serve_with_zero_configuration() -> None:
    settings = load_settings()
    assert settings.meters.port == 8899
    assert not is_explicit(settings, "meters", "port")


def test_file_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "ivy.toml"
    config.write_text("[meters]\nport = 7000\nidle_timeout_s = 12\n")
    assert load_settings(config).meters.port == 7000
    monkeypatch.setenv("IVY_METERS__PORT", "7100")
    settings = load_settings(config)
    assert (settings.meters.port, settings.meters.idle_timeout_s) == (7100, 12)
    settings = load_settings(config, {"meters": {"port": 7200}})
    assert settings.meters.port == 7200
    assert settings.meters.idle_timeout_s == 12
    assert is_explicit(settings, "meters", "port")


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[meters\nport = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--config"):
        load_settings(tmp_path / "absent.toml")


def test_invalid_value_names_the_setting(tmp_path: Path) -> None:
    config = tmp_path / "ivy.toml"
    config.write_text("[meters]\nport = 70000\n")
    with pytest.raises(ConfigError, match=r"meters\.port"):
        load_settings(config)


def test_unknown_setting_is_rejected(tmp_path: Path) -> None:
    config = tmp_path / "ivy.toml"
    config.write_text("[meters]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"meters\.prot"):
        load_settings(config)


def test_secrets_never_appear_in_repr_or_errors(tmp_path: Path) -> None:
    key_file = tmp_path / "ek"
    key_file.write_text("000102030405060708090A0B0C0D0E0F\n")
    config = tmp_path / "ivy.toml"
    config.write_text(
        '[profiles.meters."000000001234"]\n'
        'dlms_ak = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"\n'
        f'dlms_ek_file = "{key_file}"\n'
    )
    settings = load_settings(config)
    override = settings.profiles.meters["000000001234"]
    assert override.secret("dlms_ek") == "000102030405060708090A0B0C0D0E0F"
    assert override.secret("dlms_ak") == "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
    assert override.secret("dlt645_password") is None
    assert "D0D1D2D3" not in repr(settings)
    assert "D0D1D2D3" not in str(settings.model_dump())


def test_unreadable_secret_file_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "ivy.toml"
    config.write_text(f'[profiles.meters."000000001234"]\ndlms_ek_file = "{tmp_path / "nope"}"\n')
    with pytest.raises(ConfigError, match="dlms_ek_file"):
        load_settings(config).profiles.meters["000000001234"].secret("dlms_ek")


def test_meter_override_ids_are_validated(tmp_path: Path) -> None:
    config = tmp_path / "ivy.toml"
    config.write_text('[profiles.meters."12+4"]\nmodel = "em114070"\n')
    with pytest.raises(ConfigError, match="12-digit"):
        load_settings(config)
