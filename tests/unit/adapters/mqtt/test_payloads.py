from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import jsonschema
import pytest

from ivy_gateway.adapters.mqtt import payloads
from ivy_gateway.domain.commands import CommandResult, ErrorCode
from ivy_gateway.domain.events import EventKind, MeterEvent, MeterStatus, ReadingsBatch, Severity
from ivy_gateway.domain.meter import ConnectionInfo, MeterId, ProtocolKind
from ivy_gateway.domain.quantities import Reading, ReadingSource

Validate = Callable[[str, bytes | dict[str, Any]], dict[str, Any]]
METER = MeterId("000000001234")
TS = 1764201600000


def _reading(q: str, value: str, unit: str, address: str) -> Reading:
    return Reading(METER, q, Decimal(value), unit, TS, ReadingSource.POLL, address)


def test_dlt645_telemetry_matches_the_contract_example(validate: Validate) -> None:
    batch = ReadingsBatch(
        METER,
        ProtocolKind.DLT645,
        ReadingSource.POLL,
        TS,
        [
            _reading("voltage_l1", "230.5", "V", "02010100"),
            _reading("energy_active_import_total", "1234.56", "kWh", "00010000"),
        ],
    )
    data = validate("telemetry", payloads.telemetry(batch))
    assert data == {
        "ts": TS,
        "meterId": "000000001234",
        "protocol": "dlt645",
        "source": "poll",
        "values": {
            "voltage_l1": {"value": 230.5, "unit": "V", "di": "02010100"},
            "energy_active_import_total": {"value": 1234.56, "unit": "kWh", "di": "00010000"},
        },
    }


def test_dlms_telemetry_carries_obis_not_di(validate: Validate) -> None:
    batch = ReadingsBatch(
        METER,
        ProtocolKind.DLMS,
        ReadingSource.PUSH,
        TS,
        [_reading("voltage", "229.9", "V", "1-0:12.7.0.255")],
    )
    data = validate("telemetry", payloads.telemetry(batch))
    assert data["values"]["voltage"] == {"value": 229.9, "unit": "V", "obis": "1-0:12.7.0.255"}
    assert data["source"] == "push"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("230.5", "230.5"),
        ("230.50", "230.5"),
        ("0.1", "0.1"),
        ("1234.56", "1234.56"),
        ("100", "100"),
        ("-0.003", "-0.003"),
        ("99999999.99", "99999999.99"),
    ],
)
def test_decimal_values_become_json_numbers_without_float_noise(value: str, text: str) -> None:
    batch = ReadingsBatch(
        METER, ProtocolKind.DLT645, ReadingSource.POLL, TS, [_reading("x", value, "V", "")]
    )
    raw = payloads.telemetry(batch).decode()
    assert f'"value":{text},' in raw


def test_non_finite_value_becomes_null(validate: Validate) -> None:
    batch = ReadingsBatch(
        METER, ProtocolKind.DLT645, ReadingSource.POLL, TS, [_reading("x", "NaN", "V", "")]
    )
    assert validate("telemetry", payloads.telemetry(batch))["values"]["x"]["value"] is None


def test_telemetry_schema_rejects_di_on_a_dlms_message(validate: Validate) -> None:
    bad = {
        "ts": TS,
        "meterId": "000000001234",
        "protocol": "dlms",
        "source": "poll",
        "values": {"voltage": {"value": 1, "unit": "V", "di": "02010100"}},
    }
    with pytest.raises(jsonschema.ValidationError):
        validate("telemetry", bad)


def test_status_carries_ip_and_gateway_id(validate: Validate) -> None:
    status = MeterStatus(
        METER, True, ProtocolKind.DLMS, "em114070", ConnectionInfo(7, "10.1.2.3", 40000), TS
    )
    data = validate("status", payloads.meter_status(status, "gw-1"))
    assert data == {
        "ts": TS,
        "meterId": "000000001234",
        "online": True,
        "protocol": "dlms",
        "model": "em114070",
        "ip": "10.1.2.3",
        "gatewayId": "gw-1",
    }


def test_offline_status_without_connection_has_null_ip(validate: Validate) -> None:
    status = MeterStatus(METER, False, ProtocolKind.DLT645, "x", None, TS)
    assert validate("status", payloads.meter_status(status, "gw"))["ip"] is None


def test_event_with_and_without_meter(validate: Validate) -> None:
    ev = MeterEvent(EventKind.OVERVOLTAGE, Severity.WARNING, TS, METER, {"v": Decimal("260.1")})
    data = validate("events", payloads.event(ev))
    assert data["data"] == {"v": 260.1}
    assert data["meterId"] == "000000001234"
    anon = MeterEvent(EventKind.INVALID_TRAFFIC, Severity.INFO, TS, None, {"peer": "10.0.0.1"})
    assert validate("events", payloads.event(anon))["meterId"] is None


def test_command_responses_validate(validate: Validate) -> None:
    ok = CommandResult.ok("c1", {"register": "voltage_l1", "value": Decimal("230.5"), "ts": TS})
    data = validate("command-response", payloads.command_response(ok, TS))
    assert data == {
        "ts": TS,
        "id": "c1",
        "success": True,
        "result": {"register": "voltage_l1", "value": 230.5, "ts": TS},
    }
    bad = CommandResult.failed("c2", ErrorCode.INVALID_COMMAND, "unknown method 'x'")
    data = validate("command-response", payloads.command_response(bad, TS))
    assert data["errorCode"] == "invalid_command"
    assert "result" not in data


def test_response_schema_rejects_failure_without_error_code(validate: Validate) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate("command-response", {"ts": TS, "id": "x", "success": False, "error": "e"})


def test_gateway_status_and_stats_validate(validate: Validate) -> None:
    status = payloads.gateway_status(
        gateway_id="gw", online=False, version="0.1.0", uptime_s=12.34567, ts_ms=TS
    )
    assert validate("gateway-status", status)["status"] == "offline"
    stats = payloads.gateway_stats(
        gateway_id="gw",
        ts_ms=TS,
        counters={"connections": 3, "publishQueue": 0, "notPublished": 2, "ts": -1},
    )
    data = validate("gateway-stats", stats)
    assert data["ts"] == TS
    assert data["notPublished"] == 2


def test_request_schema_accepts_contract_requests_and_rejects_bad_ones(validate: Validate) -> None:
    validate("command-request", {"id": "1", "method": "relay_control", "params": {"state": "open"}})
    validate("command-request", {"id": "2", "method": "read_register", "params": {"obis": "x"}})
    for bad in (
        {"method": "read_address"},
        {"id": "3", "method": "explode"},
        {"id": "4", "method": "relay_control", "params": {"state": "half"}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate("command-request", bad)


def test_payloads_are_compact_utf8_json() -> None:
    raw = payloads.dumps({"a": "ü", "b": [1, 2]})
    assert raw == json.dumps({"a": "ü", "b": [1, 2]}, separators=(",", ":")).encode()
