"""deploy/: the example TOML documents every setting, and each one loads."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from ivy_gateway.settings import Settings, load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
#: "# key = value" or "# [table]" (a setting or a table, commented out); prose is "# Text".
_COMMENTED = re.compile(r'^# (\[[\w."]+\](?=\s*(?:#.*)?$)|"?[\w.]+"? = .*)')


def uncommented(text: str) -> str:
    lines = []
    for line in text.splitlines():
        match = _COMMENTED.match(line)
        if match:
            lines.append(match.group(1))
    return "\n".join(lines) + "\n"


def setting_names(model: type[BaseModel], prefix: str = "") -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names |= setting_names(kind, f"{prefix}{name}.")
        else:
            names.add(f"{prefix}{name}")
    return names


def test_the_example_toml_loads_with_every_setting_uncommented(tmp_path: Path) -> None:
    config = tmp_path / "all.toml"
    config.write_text(uncommented((DEPLOY / "ivy-gateway.example.toml").read_text()))
    settings = load_settings(config)
    assert settings.cluster.gateway_id == "gw1"
    assert "000000001234" in settings.profiles.meters
    assert settings.http.tokens["ops"].get_secret_value().startswith("sha256:")


def test_the_example_toml_names_every_setting() -> None:
    text = (DEPLOY / "ivy-gateway.example.toml").read_text()
    section = ""
    documented = set()
    for line in uncommented(text).splitlines():
        if line.startswith("["):
            section = line.strip("[]")
            documented.add(section)  # a table of names (http.tokens, logging.modules)
            continue
        documented.add(f"{section}.{line.split(' = ')[0]}")
    missing = {
        name
        for name in setting_names(Settings)
        if name not in documented and not name.startswith(("profiles.meters", "mqtt.users"))
    }
    assert not missing, f"deploy/ivy-gateway.example.toml lacks {sorted(missing)}"


def test_the_systemd_unit_raises_the_file_limit() -> None:
    unit = (DEPLOY / "ivy-gateway.service").read_text()
    assert re.search(r"^LimitNOFILE=\d{5,}$", unit, re.MULTILINE)
    assert "ExecStart=" in unit


def test_haproxy_balances_meters_over_several_instances() -> None:
    config = (DEPLOY / "haproxy.cfg").read_text()
    assert len(re.findall(r"^\s+server gw\d ", config, re.MULTILINE)) >= 3
    assert "mode tcp" in config
