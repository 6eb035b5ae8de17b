"""Fuzz the MQTT command intake's parsing: the request topic and the JSON request body.

An input is ``topic NUL payload`` (no NUL: the payload, on a valid topic). Properties: the
topic parser raises only ``ValueError``; ``parse_command`` returns a ``Command`` or raises
``InvalidCommand`` (which always becomes an ``invalid_command`` result) — never anything
else, whatever the JSON nesting, numbers, strings or encodings; the request id read for
early answers never raises; every rejection becomes a ``command/response`` payload with
``success: false`` and ``errorCode: "invalid_command"``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import atheris

from fuzz.harness import ROOT, fuzz_main

with atheris.instrument_imports(include=["ivy_gateway"]):
    from ivy_gateway.adapters.mqtt.commands import _request_id
    from ivy_gateway.adapters.mqtt.payloads import command_response
    from ivy_gateway.adapters.mqtt.topics import Topics
    from ivy_gateway.domain.commands import ErrorCode
    from ivy_gateway.services.commands import CommandService, InvalidCommand

NAME = "mqtt_command"
TOPICS = Topics("ivy/v1")
DEFAULT_TOPIC = "ivy/v1/meters/000000001234/command/request"


class _Clock:
    def now_ms(self) -> int:
        return 1_764_201_600_000

    def monotonic(self) -> float:
        return 0.0


class _Nothing:
    """Parsing never reaches the meter directory or the event sink."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"parse_command touched {name}")


SERVICE = CommandService(_Nothing(), _Nothing(), _Clock())  # type: ignore[arg-type]


def check(data: bytes) -> None:
    topic_bytes, sep, payload = data.partition(b"\x00")
    if not sep:
        topic_bytes, payload = DEFAULT_TOPIC.encode(), data
    try:
        meter = TOPICS.parse_command_request(topic_bytes.decode("utf-8", "replace"))
    except ValueError:
        return
    _request_id(payload)
    try:
        command = SERVICE.parse_command(meter.value, payload, "fuzz")
    except InvalidCommand as exc:
        result = exc.to_result()
        assert result.error_code is ErrorCode.INVALID_COMMAND
        answer = json.loads(command_response(result, 0))
        assert answer["errorCode"] == "invalid_command"
        assert answer["success"] is False
    else:
        assert command.meter == meter
        assert command.timeout_s > 0


def seeds() -> list[bytes]:
    """Every method of the contract with valid and edge-case params (CONTRACT.md)."""
    requests: list[object] = [
        {"id": "1", "method": "read_register", "params": {"register": "voltage_l1"}},
        {"id": 2, "method": "read_register", "params": {"dataId": "02010100"}},
        {
            "id": "3",
            "method": "read_register",
            "params": {"obis": "1-0:32.7.0.255", "classId": 3, "attribute": 2},
        },
        {"id": "4", "method": "read_all", "params": {"group": "energy"}},
        {"id": "5", "method": "read_all", "params": {"registers": ["voltage_l1", "current_l1"]}},
        {"id": "6", "method": "read_address"},
        {"id": "7", "method": "relay_control", "params": {"state": "open"}, "timeoutMs": 30000},
        {"id": "8", "method": "relay_control", "params": {"state": "close"}},
        {"id": "9", "method": "read_relay_state", "params": None},
        {"id": "10", "method": "sync_time", "params": {"time": "2025-11-27T00:00:00+00:00"}},
        {"id": "11", "method": "sync_time", "params": {}},
        {"id": "", "method": "nope"},
        [],
        "text",
    ]
    out = [json.dumps(r).encode() for r in requests]
    out.append(b"ivy/v1/meters/000000000001/command/request\x00" + out[0])
    out.append(b"ivy/v1/meters/+/command/request\x00" + out[0])
    schema = ROOT / "docs" / "schemas" / "v1" / "command-request.schema.json"
    out.append(Path(schema).read_bytes())
    return out


if __name__ == "__main__":
    fuzz_main(NAME, check, seeds())
    sys.exit(0)
