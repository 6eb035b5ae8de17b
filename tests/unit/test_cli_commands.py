"""The CLI's operational commands: db, hash-password, serve's start-up errors."""

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner

from ivy_gateway.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    """``serve`` installs its own log handler; give the next tests pytest's back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_help_lists_only_built_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "demo", "simulate", "decode", "db", "hash-password"):
        assert command in result.stdout


def test_db_upgrade_is_idempotent_and_prune_reports(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    first = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert first.exit_code == 0, first.output
    assert "applied 0001_initial" in first.stdout
    again = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert "schema is up to date" in again.stdout
    pruned = runner.invoke(app, ["db", "prune", "--db", url, "--retention-days", "30"])
    assert pruned.exit_code == 0, pruned.output
    assert "readings: 0 rows deleted" in pruned.stdout
    assert "older than 30 days" in pruned.output


def test_db_errors_never_show_the_password() -> None:
    result = runner.invoke(
        app, ["db", "upgrade", "--db", "postgresql://ivy:s3cr3t-pw@127.0.0.1:9/none"]
    )
    assert result.exit_code == 2
    assert "s3cr3t-pw" not in result.output
    assert "ivy:***@127.0.0.1:9" in result.output


def test_hash_password_from_stdin_verifies() -> None:
    result = runner.invoke(app, ["hash-password", "--stdin"], input="hunter2\n")
    assert result.exit_code == 0
    digest = result.stdout.strip()
    assert digest.startswith("$argon2id$")
    assert PasswordHasher().verify(digest, "hunter2")
    assert "hunter2" not in result.stdout


def test_hash_password_refuses_empty() -> None:
    result = runner.invoke(app, ["hash-password", "--stdin"], input="\n")
    assert result.exit_code == 2


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_serve_fails_fast_on_a_taken_explicit_port(taken_port: int, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["serve", "--meter-port", str(taken_port), "--db", f"sqlite:///{tmp_path}/g.db"]
    )
    assert result.exit_code == 2
    assert f"port {taken_port}" in result.output
    assert "--meter-port" in result.output


def test_serve_explains_a_taken_explicit_mqtt_port(taken_port: int, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "serve",
            "--meter-port",
            "0",
            "--mqtt-port",
            str(taken_port),
            "--db",
            f"sqlite:///{tmp_path}/g.db",
        ],
    )
    assert result.exit_code == 2
    assert "--mqtt-url" in result.output


def test_serve_rejects_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[meters]\nport = 'x'\n")
    result = runner.invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code == 2
    assert "meters.port" in result.output


def test_simulate_needs_meters() -> None:
    result = runner.invoke(app, ["simulate"])
    assert result.exit_code == 2
    assert "no meters" in result.output


def test_serve_names_the_setting_when_the_database_is_unreachable(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["serve", "--meter-port", "0", "--db", "postgresql://ivy:s3cr3t@127.0.0.1:9/none"],
    )
    assert result.exit_code == 2
    assert "storage.url (--db)" in result.output
    assert "s3cr3t" not in result.output
    assert "Traceback" not in result.output


def test_serve_turns_mqtt_auth_on_by_default(tmp_path: Path) -> None:
    from ivy_gateway.cli import _mqtt_users
    from ivy_gateway.settings import load_settings

    settings = load_settings(None, {"storage": {"url": f"sqlite:///{tmp_path}/g.db"}})
    first = _mqtt_users(settings)
    assert first is not None
    assert first.path == tmp_path / "ivy-gateway.users.toml"
    assert first.new_password is not None
    assert first.new_password not in first.path.read_text()  # only the hash is stored
    assert first.path.stat().st_mode & 0o077 == 0  # private to the owner
    again = _mqtt_users(settings)
    assert again is not None
    assert again.new_password is None  # shown once, on the start that created it
    assert set(again.users) == {"admin"}


def test_anonymous_broker_only_when_chosen(tmp_path: Path) -> None:
    from ivy_gateway.cli import _mqtt_users
    from ivy_gateway.settings import load_settings

    storage = {"url": f"sqlite:///{tmp_path}/g.db"}
    chosen = load_settings(None, {"storage": storage, "mqtt": {"allow_anonymous": True}})
    assert _mqtt_users(chosen) is None
    external = load_settings(
        None, {"storage": storage, "mqtt": {"mode": "external", "url": "mqtt://127.0.0.1"}}
    )
    assert _mqtt_users(external) is None
    assert not (tmp_path / "ivy-gateway.users.toml").exists()
