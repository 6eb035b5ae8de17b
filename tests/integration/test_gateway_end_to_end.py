"""The whole gateway over real loopback sockets: a mixed, partly faulty fleet dials in.

DL/T 645, EM114070 and ciphered (HLS-GMAC) DLMS simulators connect to a ``Gateway`` built
from settings exactly as ``serve`` builds it; the test watches the embedded MQTT broker
like a user would, validates every message against the published JSON Schemas, commands
relays over MQTT and checks the simulators' relays, sends garbage from a stranger, and
finally compares the stored history with what the simulators put on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiomqtt
import jsonschema
import pytest

from ivy_gateway.adapters.mqtt import hash_password
from ivy_gateway.adapters.storage import open_store
from ivy_gateway.app import Gateway
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.settings import load_settings
from ivy_gateway.simulators.dlms_meter import DlmsMeter
from ivy_gateway.simulators.dlt645_meter import Dlt645Meter
from ivy_gateway.simulators.em114070_meter import Em114070Meter
from ivy_gateway.simulators.faults import Faults
from ivy_gateway.simulators.fleet import (
    Fleet,
    FleetPlan,
    dlms_address,
    dlt645_address,
    em114070_address,
    gateway_settings_for,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "v1"
PREFIX = "ivy/v1"
PLAN = FleetPlan(dlt645=3, em114070=2, dlms=2, seed=7, dial_rate_per_s=100, reconnect_min_s=0.2)
FLAKY = "000000019999"  # an extra DL/T 645 meter that drops and garbles replies
OPERATOR, PASSWORD = "ops", "correct horse battery staple"  # test-only credentials


def _validator() -> Callable[[str, bytes], dict[str, Any]]:
    cache: dict[str, jsonschema.Draft202012Validator] = {}

    def check(name: str, payload: bytes) -> dict[str, Any]:
        if name not in cache:
            schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
            cache[name] = jsonschema.Draft202012Validator(schema)
        data: dict[str, Any] = json.loads(payload)
        cache[name].validate(data)
        return data

    return check


class Watcher:
    """Everything the broker delivers under the prefix, validated by topic kind."""

    def __init__(self) -> None:
        self.validate = _validator()
        self.by_kind: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        self.changed = asyncio.Event()

    def take(self, topic: str, payload: bytes) -> None:
        parts = topic.removeprefix(PREFIX + "/").split("/")
        if parts[-1] == "request":
            return  # our own requests (some deliberately malformed) echo back to us
        if parts[0] == "meters":
            kind = "/".join(parts[2:])
            schema = {"command/response": "command-response", "command/request": ""}.get(kind, kind)
        else:
            kind = "gateway/" + parts[1]
            schema = {"gateway/status": "gateway-status", "gateway/stats": "gateway-stats"}.get(
                kind, "events"
            )
        data = self.validate(schema, payload)
        self.by_kind[kind].append((topic, data))
        self.changed.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            self.changed.clear()
            remaining = deadline - time.monotonic()
            assert remaining > 0, "timed out waiting for MQTT traffic"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)

    def meters_with(self, kind: str) -> set[str]:
        return {data["meterId"] for _, data in self.by_kind[kind] if "meterId" in data}


@contextlib.asynccontextmanager
async def running_gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = load_settings(
        None,
        {
            **gateway_settings_for(PLAN),
            "meters": {"host": "127.0.0.1", "port": 0, "identify_timeout_s": 1.0},
            "mqtt": {
                "host": "127.0.0.1",
                "port": 0,
                "ws_port": 0,
                # Anonymous clients are read-only: commands need an operator.
                "users": {OPERATOR: {"password_hash": hash_password(PASSWORD), "role": "operator"}},
            },
            "storage": {"url": f"sqlite:///{tmp_path / 'gw.db'}", "batch_interval_s": 0.1},
            "polling": {"interval_scale": 0.02, "timeout_s": 1.0, "retries": 2},
        },
    )
    async with Gateway(settings) as gateway:
        yield gateway


async def _command(
    client: aiomqtt.Client, watcher: Watcher, meter: str, body: dict[str, Any]
) -> dict[str, Any]:
    await client.publish(f"{PREFIX}/meters/{meter}/command/request", json.dumps(body), qos=1)

    def answered() -> bool:
        return any(d.get("id") == body.get("id") for _, d in watcher.by_kind["command/response"])

    await watcher.wait_for(answered, 30)
    return next(d for _, d in watcher.by_kind["command/response"] if d.get("id") == body.get("id"))


async def test_mixed_faulty_fleet_end_to_end(tmp_path: Path) -> None:
    fleet = Fleet(PLAN)
    flaky = Dlt645Meter(
        FLAKY,
        seed=3,
        announce=True,
        faults=Faults(drop_probability=0.3, garbage_probability=0.3, garbage_bytes=20, seed=9),
    )
    watcher = Watcher()
    async with running_gateway(tmp_path) as gateway:
        meter_port = gateway.ports["meters"].port
        mqtt_port = gateway.ports["mqtt"].port
        async with aiomqtt.Client(
            "127.0.0.1", mqtt_port, identifier="e2e-watcher", username=OPERATOR, password=PASSWORD
        ) as client:
            await client.subscribe(f"{PREFIX}/#", qos=1)

            async def listen() -> None:
                async for message in client.messages:
                    watcher.take(str(message.topic), bytes(message.payload))

            async with asyncio.TaskGroup() as tasks:
                listener = tasks.create_task(listen())
                fleet_task = tasks.create_task(fleet.run("127.0.0.1", meter_port))
                flaky_task = tasks.create_task(flaky.connect("127.0.0.1", meter_port))
                try:
                    await _exercise(gateway, client, watcher, fleet, meter_port)
                finally:
                    for task in (listener, fleet_task, flaky_task):
                        task.cancel()
    await _check_history(tmp_path, fleet)


async def _exercise(
    gateway: Gateway, client: aiomqtt.Client, watcher: Watcher, fleet: Fleet, meter_port: int
) -> None:
    everyone = {str(m.address) for m in fleet.meters}
    # Every meter is identified, announced online (retained status) and polled.
    await watcher.wait_for(lambda: everyone <= watcher.meters_with("status"))
    await watcher.wait_for(lambda: everyone <= watcher.meters_with("telemetry"), 30)
    assert {d["online"] for _, d in watcher.by_kind["status"]} == {True}
    protocols = {d["meterId"]: d["protocol"] for _, d in watcher.by_kind["telemetry"]}
    assert protocols[dlt645_address(1)] == "dlt645"
    assert protocols[em114070_address(1)] == protocols[dlms_address(1)] == "dlms"

    def em_voltage() -> list[dict[str, Any]]:
        # Poll groups arrive in any order: wait for the instantaneous one.
        return [
            d
            for _, d in watcher.by_kind["telemetry"]
            if d["meterId"] == em114070_address(1) and "voltage" in d["values"]
        ]

    await watcher.wait_for(lambda: bool(em_voltage()))
    voltage = em_voltage()[0]
    assert voltage["values"]["voltage"]["unit"] == "V"
    assert voltage["values"]["voltage"]["obis"] == "1-0:12.7.0.255"
    assert 200 < voltage["values"]["voltage"]["value"] < 260

    # Relay commands over MQTT, confirmed on the simulators' own relays.
    dlt = _meter(fleet, dlt645_address(2), Dlt645Meter)
    opened = await _command(
        client,
        watcher,
        str(dlt.address),
        {"id": "r1", "method": "relay_control", "params": {"state": "open"}},
    )
    assert opened["success"], opened
    assert opened["result"] == {"state": "open", "confirmed": True}
    assert dlt.relay_open
    closed = await _command(
        client,
        watcher,
        str(dlt.address),
        {"id": "r2", "method": "relay_control", "params": {"state": "close"}},
    )
    assert closed["result"] == {"state": "closed", "confirmed": True}
    assert not dlt.relay_open

    ciphered = _meter(fleet, dlms_address(1), DlmsMeter)
    opened = await _command(
        client,
        watcher,
        ciphered.address,
        {"id": "r3", "method": "relay_control", "params": {"state": "open"}},
    )
    assert opened["success"], opened
    assert opened["result"]["state"] == "open"
    assert not ciphered.relay_closed
    em = _meter(fleet, em114070_address(1), Em114070Meter)
    register = await _command(
        client,
        watcher,
        em.address,
        {"id": "q1", "method": "read_register", "params": {"register": "frequency"}},
    )
    assert register["success"], register
    assert register["result"]["unit"] == "Hz"

    # Bad requests are answered with an errorCode, never dropped.
    await client.publish(f"{PREFIX}/meters/{dlt.address}/command/request", b"{not json", qos=1)
    await watcher.wait_for(
        lambda: any(
            d.get("errorCode") == "invalid_command" for _, d in watcher.by_kind["command/response"]
        )
    )
    offline = await _command(
        client, watcher, "000000000404", {"id": "o1", "method": "read_address"}
    )
    assert offline["errorCode"] == "meter_offline"

    # A stranger sending garbage gets one invalid_traffic event and is cut off.
    reader, writer = await asyncio.open_connection("127.0.0.1", meter_port)
    writer.write(bytes([0x77]) * 1024)
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the gateway
    writer.close()
    await writer.wait_closed()
    await watcher.wait_for(
        lambda: any(d["event"] == "invalid_traffic" for _, d in watcher.by_kind["gateway/events"])
    )
    # The flaky meter did not disturb the others: all still online, still polled.
    assert gateway.telemetry.online_count() >= len(everyone)
    before = len(watcher.by_kind["telemetry"])
    await watcher.wait_for(lambda: len(watcher.by_kind["telemetry"]) >= before + len(everyone))


def _meter(fleet: Fleet, address: str, kind: type[Any]) -> Any:
    meter = next(m for m in fleet.meters if str(m.address) == address)
    assert isinstance(meter, kind)
    return meter


async def _check_history(tmp_path: Path, fleet: Fleet) -> None:
    """What the store holds for a DL/T 645 meter is exactly what the simulator sent."""
    store = await open_store(f"sqlite:///{tmp_path / 'gw.db'}")
    try:
        meter = _meter(fleet, dlt645_address(1), Dlt645Meter)
        sent = {Decimal(str(v.value)) for v in meter.sent if v.di == "02010100"}
        stored = await store.readings(MeterId(dlt645_address(1)), "voltage_l1", 0, 2**62)
        assert stored, "no voltage history stored"
        assert {Decimal(str(p.value)) for p in stored} <= sent
        info = await store.get_meter(MeterId(dlt645_address(1)))
        assert info is not None
        assert info.online is False  # the gateway stopped: every meter went offline
        events = await store.events(MeterId(dlt645_address(2)), 0, 2**62)
        kinds = {e.kind for e in events}
        assert {"meter_online", "relay_opened", "relay_closed"} <= {str(k) for k in kinds}
    finally:
        await store.close()


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:amqtt")
