"""Security features end to end: TLS on the MQTT and HTTP listeners, the MQTT users file.

A self-signed certificate for 127.0.0.1 is made in the test (``cryptography``); clients
trust exactly that certificate. Auth, ACLs, hashed HTTP tokens and the relay rate limit
have their own tests (tests/integration/mqtt/test_embedded.py,
tests/unit/adapters/http, tests/unit/services); the secrets-in-logs check of a full run is
in test_secrets_in_logs.py.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import stat
from pathlib import Path

import aiomqtt
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI

from ivy_gateway.adapters.http.server import HttpServer
from ivy_gateway.adapters.mqtt.access import verify_password
from ivy_gateway.adapters.mqtt.broker import BrokerConfig, EmbeddedBroker
from ivy_gateway.adapters.mqtt.users_file import ADMIN_USER, ensure_users_file
from ivy_gateway.app import Gateway
from ivy_gateway.domain.errors import ConfigError
from ivy_gateway.settings import load_settings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def make_self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate and key (PEM) for 127.0.0.1, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ivy-gateway test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_embedded_broker_speaks_tls_and_refuses_plain_mqtt(tmp_path: Path) -> None:
    cert_file, key_file = make_self_signed(tmp_path)
    config = BrokerConfig(
        host="127.0.0.1", port=0, ws_port=None, cert_file=cert_file, key_file=key_file
    )
    assert config.to_amqtt()["listeners"]["default"]["ssl"] is True
    async with EmbeddedBroker(config) as broker:
        port = broker.tcp_port
        assert port is not None
        context = ssl.create_default_context(cafile=str(cert_file))
        async with aiomqtt.Client(
            "127.0.0.1", port, tls_context=context, protocol=aiomqtt.ProtocolVersion.V311
        ) as client:
            assert list(await client.subscribe("ivy/v1/#", qos=1)) == [1]
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(
                "127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V311, timeout=3
            ):
                pass


def test_broker_tls_needs_both_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="both"):
        BrokerConfig(cert_file=tmp_path / "cert.pem")


async def test_http_server_serves_https_with_the_configured_certificate(tmp_path: Path) -> None:
    cert_file, key_file = make_self_signed(tmp_path)
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    async with HttpServer(app, "127.0.0.1", 0, cert_file=cert_file, key_file=key_file) as server:
        context = ssl.create_default_context(cafile=str(cert_file))
        async with httpx.AsyncClient(verify=context) as client:
            response = await client.get(f"https://127.0.0.1:{server.port}/health")
            assert response.json() == {"status": "ok"}
            with pytest.raises(httpx.HTTPError):
                await client.get(f"http://127.0.0.1:{server.port}/health", timeout=3)
    with pytest.raises(ValueError, match="both"):
        HttpServer(app, key_file=key_file)


async def test_first_start_creates_an_admin_whose_password_is_only_returned_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "ivy-gateway.users.toml"
    first = ensure_users_file(path)
    assert first.new_password is not None
    text = path.read_text()
    assert first.new_password not in text
    assert "$argon2id$" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert verify_password(first.users[ADMIN_USER].password_hash, first.new_password)
    again = ensure_users_file(path)
    assert again.new_password is None
    assert again.users == first.users
    # The users file turns auth on: no anonymous client, the admin gets in.
    config = BrokerConfig(host="127.0.0.1", port=0, ws_port=None, users=again.users)
    async with EmbeddedBroker(config) as broker:
        port = broker.tcp_port
        assert port is not None
        with pytest.raises(aiomqtt.MqttCodeError):
            async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V311):
                pass
        async with aiomqtt.Client(
            "127.0.0.1",
            port,
            username=ADMIN_USER,
            password=first.new_password,
            protocol=aiomqtt.ProtocolVersion.V311,
        ) as admin:
            assert list(await admin.subscribe("#", qos=1)) == [1]


def test_a_broken_users_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "ivy-gateway.users.toml"
    path.write_text('[users.ann]\nrole = "reader"\n')
    with pytest.raises(ConfigError, match="password_hash"):
        ensure_users_file(path)


async def test_a_gateway_with_tls_settings_serves_mqtts_and_https(tmp_path: Path) -> None:
    cert_file, key_file = make_self_signed(tmp_path)
    settings = load_settings(
        None,
        {
            "meters": {"host": "127.0.0.1", "port": 0},
            "mqtt": {
                "host": "127.0.0.1",
                "port": 0,
                "ws_port": 0,
                "listener_cert_file": str(cert_file),
                "listener_key_file": str(key_file),
            },
            "http": {
                "host": "127.0.0.1",
                "port": 0,
                "cert_file": str(cert_file),
                "key_file": str(key_file),
            },
            "storage": {"url": f"sqlite:///{tmp_path / 'gw.db'}"},
        },
    )
    context = ssl.create_default_context(cafile=str(cert_file))
    async with Gateway(settings) as gateway:
        summary = "\n".join(gateway.summary())
        assert "(TLS)" in summary
        http_port = gateway.ports["http"].port
        mqtt_port = gateway.ports["mqtt"].port
        async with httpx.AsyncClient(verify=context) as client:
            response = await client.get(f"https://127.0.0.1:{http_port}/health")
            assert response.status_code == 200
        async with aiomqtt.Client(
            "127.0.0.1", mqtt_port, tls_context=context, protocol=aiomqtt.ProtocolVersion.V311
        ) as client:
            assert list(await client.subscribe("ivy/v1/#", qos=1)) == [1]


def test_tls_settings_need_both_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="go together"):
        load_settings(None, {"http": {"cert_file": str(tmp_path / "cert.pem")}})
    with pytest.raises(ConfigError, match="go together"):
        load_settings(None, {"mqtt": {"listener_key_file": str(tmp_path / "key.pem")}})
