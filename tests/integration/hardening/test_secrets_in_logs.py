"""No configured secret ever reaches the logs of a full run (DEBUG, every library too).

A child ``python -m ivy_gateway serve`` runs with a config that sets every kind of secret:
an MQTT operator's password hash (the test's MQTT client logs in with the password), an
HTTP bearer token (hashed in the config, sent by the test), the DLMS EK/AK of a ciphered
simulated meter, a DL/T 645 password (used by relay commands), and a PostgreSQL password
read from ``storage.password_file``. A DL/T 645 and a ciphered DLMS meter dial in, get
polled, and take commands over MQTT and HTTP — including failed logins with wrong
credentials. Then stdout and stderr of the whole run are searched for every secret, in
plain form and in the encodings it travels in (hex of keys, the DL/T 645 wire form).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from ivy_gateway.adapters.http.auth import hash_token
from ivy_gateway.adapters.mqtt.access import hash_password
from ivy_gateway.codec.dlms.security import SecurityKeys
from ivy_gateway.simulators.dlms_meter import DlmsMeter
from ivy_gateway.simulators.dlt645_meter import Dlt645Meter
from ivy_gateway.simulators.fleet import DEMO_CLIENT_TITLE

pytestmark = [pytest.mark.service, pytest.mark.slow]

PG_URL = os.environ.get("IVY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
DLT645_METER = "000000005501"
DLMS_METER = "410000005502"
PREFIX = "ivy/v1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def _fresh_database() -> AsyncIterator[str]:
    try:
        admin = await asyncpg.connect(PG_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL unreachable at {PG_URL}: {exc}")
    name = f"ivy_secrets_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _serve(config: Path, stdout: Path, stderr: Path) -> subprocess.Popen[bytes]:
    with stdout.open("wb") as out, stderr.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "ivy_gateway", "serve", "--config", str(config)],
            stdout=out,
            stderr=err,
            cwd=config.parent,
        )


def _dlt645_wire_password(password: str) -> str:
    """PA P0 P1 P2 (digits LSB first) + 0x33 per byte, as hex: how it travels."""
    level, digits = password[:2], password[2:]
    raw = bytes([int(level, 16)]) + bytes.fromhex(digits)[::-1]
    return bytes((b + 0x33) & 0xFF for b in raw).hex()


async def _wait_http(client: httpx.AsyncClient, url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(url)).status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


async def _meters_online(client: httpx.AsyncClient, base: str, wanted: set[str]) -> None:
    async with asyncio.timeout(30):
        while True:
            body = (await client.get(f"{base}/api/v1/meters")).json()
            items = body["meters"] if isinstance(body, dict) else body
            online = {m["meterId"] for m in items if m.get("online")}
            if wanted <= online:
                return
            await asyncio.sleep(0.2)


async def test_no_configured_secret_appears_in_the_logs_of_a_full_run(tmp_path: Path) -> None:
    mqtt_password = "mqtt-" + secrets.token_urlsafe(16)
    http_token = secrets.token_urlsafe(32)
    db_password = "db-" + secrets.token_urlsafe(16)
    dlt645_password = "02918273"
    keys = SecurityKeys(ek=secrets.token_bytes(16), ak=secrets.token_bytes(16))
    password_hash = hash_password(mqtt_password)
    token_hash = hash_token(http_token)
    ports = {name: _free_port() for name in ("meters", "mqtt", "ws", "http")}
    (tmp_path / "db.password").write_text(db_password + "\n")
    (tmp_path / "dlms.ek").write_text(keys.ek.hex())

    async with _fresh_database() as database:
        base_url = PG_URL.rsplit("/", 1)[0].replace(
            "postgresql://postgres@", "postgresql://postgres@"
        )
        config = tmp_path / "gateway.toml"
        config.write_text(
            f"""
[meters]
host = "127.0.0.1"
port = {ports["meters"]}
identify_timeout_s = 1.0
[polling]
interval_scale = 0.02
timeout_s = 2.0
[storage]
url = "{base_url}/{database}"
password_file = "{tmp_path / "db.password"}"
batch_interval_s = 0.2
[mqtt]
host = "127.0.0.1"
port = {ports["mqtt"]}
ws_port = {ports["ws"]}
[mqtt.users.operator]
password_hash = "{password_hash}"
role = "operator"
[http]
host = "127.0.0.1"
port = {ports["http"]}
access_log = true
[http.tokens]
ops = "{token_hash}"
[logging]
level = "DEBUG"
json_format = true
[logging.modules]
amqtt = "DEBUG"
websockets = "DEBUG"
transitions = "DEBUG"
uvicorn = "DEBUG"
asyncpg = "DEBUG"
[profiles.meters."{DLT645_METER}"]
dlt645_password = "{dlt645_password}"
[profiles.meters."{DLMS_METER}"]
model = "dlms-three-phase"
dlms_ek_file = "{tmp_path / "dlms.ek"}"
dlms_ak = "{keys.ak.hex()}"
dlms_system_title = "{DEMO_CLIENT_TITLE}"
"""
        )
        log_out, log_err = tmp_path / "stdout.log", tmp_path / "stderr.log"
        child = _serve(config, log_out, log_err)
        meters: list[Dlt645Meter | DlmsMeter] = [
            Dlt645Meter(DLT645_METER, seed=3, announce=True, password=dlt645_password),
            DlmsMeter(DLMS_METER, keys=keys, seed=4),
        ]
        tasks: list[asyncio.Task[None]] = []
        answers: dict[str, dict[str, object]] = {}
        try:
            base = f"http://127.0.0.1:{ports['http']}"
            async with httpx.AsyncClient(timeout=30) as client:
                await _wait_http(client, f"{base}/health")
                tasks = [
                    asyncio.create_task(m.connect("127.0.0.1", ports["meters"])) for m in meters
                ]
                await _meters_online(client, base, {DLT645_METER, DLMS_METER})
                await asyncio.sleep(2)  # a few poll rounds
                # HTTP: wrong token, then the right one.
                command = {"id": "h1", "method": "relay_control", "params": {"state": "open"}}
                url = f"{base}/api/v1/meters/{DLT645_METER}/commands"
                wrong = await client.post(
                    url, json=command, headers={"Authorization": "Bearer x" + http_token}
                )
                assert wrong.status_code == 401
                headers = {"Authorization": f"Bearer {http_token}"}
                answers["h1"] = (await client.post(url, json=command, headers=headers)).json()
                read = {"id": "h2", "method": "read_register", "params": {"register": "voltage_l1"}}
                answers["h2"] = (
                    await client.post(
                        f"{base}/api/v1/meters/{DLMS_METER}/commands", json=read, headers=headers
                    )
                ).json()
            # MQTT: a wrong password is refused; the operator's right one runs commands.
            with pytest.raises(aiomqtt.MqttCodeError):
                async with aiomqtt.Client(
                    "127.0.0.1", ports["mqtt"], username="operator", password=mqtt_password + "x"
                ):
                    pass
            async with aiomqtt.Client(
                "127.0.0.1",
                ports["mqtt"],
                username="operator",
                password=mqtt_password,
                protocol=aiomqtt.ProtocolVersion.V311,
            ) as mqtt:
                await mqtt.subscribe(f"{PREFIX}/meters/+/command/response", qos=1)
                requests = {
                    "m1": (DLT645_METER, {"method": "relay_control", "params": {"state": "close"}}),
                    "m2": (DLMS_METER, {"method": "relay_control", "params": {"state": "open"}}),
                }
                for command_id, (meter, body) in requests.items():
                    await mqtt.publish(
                        f"{PREFIX}/meters/{meter}/command/request",
                        json.dumps({"id": command_id, **body}),
                        qos=1,
                    )
                async with asyncio.timeout(60):
                    async for message in mqtt.messages:
                        data = json.loads(message.payload)
                        answers[data["id"]] = data
                        if {"m1", "m2"} <= answers.keys():
                            break
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(60)
            finally:
                child.kill()
                child.wait()

    text = log_out.read_text() + log_err.read_text()
    # The run really used every secret: commands that need them succeeded.
    for command_id in ("h1", "h2", "m1", "m2"):
        assert answers[command_id].get("success") is True, (command_id, answers[command_id])
    assert "DEBUG" in text or '"level": "debug"' in text.lower(), "DEBUG logging was not on"
    forms = {
        "mqtt password": [mqtt_password],
        "mqtt password hash": [password_hash, password_hash.rsplit("$", 1)[-1]],
        "http token": [http_token],
        "http token hash": [token_hash.removeprefix("sha256:")],
        "database password": [db_password],
        "dlms ek": [keys.ek.hex()],
        "dlms ak": [keys.ak.hex()],
        "dlt645 password": [dlt645_password, _dlt645_wire_password(dlt645_password)],
    }
    haystacks = (text, text.lower(), text.lower().replace(" ", ""))
    leaks = [
        name
        for name, values in forms.items()
        for value in values
        if any(value.lower() in h or value in h for h in haystacks)
    ]
    lines = len(text.splitlines())
    print(f"\nsecrets-in-logs: {lines} log lines, {len(forms)} secrets, leaks {leaks}")
    assert leaks == []
