"""JSON payloads of the MQTT contract v1 (CONTRACT.md; schemas in ``docs/schemas/v1``).

Every builder returns compact UTF-8 JSON bytes. ``ts`` is milliseconds since the Unix epoch
(UTC). Meter values are ``Decimal``; they become JSON numbers through the services'
``to_json_value`` (``int`` when the Decimal has no fractional digits, else the shortest
float that round-trips the decimal text: ``Decimal("230.5")`` → ``230.5``, never
``230.49999``). Non-finite values become ``null``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ivy_gateway.domain.commands import CommandResult
from ivy_gateway.domain.events import MeterEvent, MeterStatus, ReadingsBatch
from ivy_gateway.domain.meter import ProtocolKind
from ivy_gateway.services.commands import to_json_value

__all__ = [
    "command_response",
    "dumps",
    "event",
    "gateway_stats",
    "gateway_status",
    "meter_status",
    "telemetry",
]


def dumps(data: Mapping[str, Any]) -> bytes:
    """Compact JSON; anything not JSON-native goes through ``to_json_value`` first."""
    return json.dumps(to_json_value(data), separators=(",", ":"), allow_nan=False).encode()


def _address_key(protocol: ProtocolKind) -> str:
    # DL/T 645 readings carry a 4-byte DI ("02010100"); DLMS ones an OBIS code.
    return "di" if protocol is ProtocolKind.DLT645 else "obis"


def telemetry(batch: ReadingsBatch) -> bytes:
    """One message per batch: ``{ts, meterId, protocol, source, values{name: {...}}}``."""
    key = _address_key(batch.protocol)
    values: dict[str, dict[str, Any]] = {}
    for reading in batch.readings:
        entry: dict[str, Any] = {"value": to_json_value(reading.value), "unit": reading.unit}
        if reading.address:
            entry[key] = reading.address
        values[reading.quantity] = entry
    return dumps(
        {
            "ts": batch.ts_ms,
            "meterId": batch.meter.value,
            "protocol": batch.protocol.value,
            "source": batch.source.value,
            "values": values,
        }
    )


def meter_status(status: MeterStatus, gateway_id: str) -> bytes:
    """Retained: ``{ts, meterId, online, protocol, model, ip, gatewayId}``."""
    return dumps(
        {
            "ts": status.ts_ms,
            "meterId": status.meter.value,
            "online": status.online,
            "protocol": status.protocol.value,
            "model": status.model,
            "ip": status.connection.peer_host if status.connection else None,
            "gatewayId": gateway_id,
        }
    )


def event(ev: MeterEvent) -> bytes:
    """``{ts, meterId, event, severity, data}``; ``meterId`` is null for gateway events."""
    return dumps(
        {
            "ts": ev.ts_ms,
            "meterId": ev.meter.value if ev.meter is not None else None,
            "event": ev.kind.value,
            "severity": ev.severity.value,
            "data": dict(ev.data),
        }
    )


def command_response(result: CommandResult, ts_ms: int) -> bytes:
    """``{ts, id, success, result?, error?, errorCode?}``: absent keys are left out."""
    body: dict[str, Any] = {"ts": ts_ms, "id": result.id, "success": result.success}
    if result.result is not None:
        body["result"] = dict(result.result)
    if result.error is not None:
        body["error"] = result.error
    if result.error_code is not None:
        body["errorCode"] = result.error_code.value
    return dumps(body)


def gateway_status(
    *, gateway_id: str, online: bool, version: str, uptime_s: float, ts_ms: int
) -> bytes:
    """Retained: ``{ts, gatewayId, status: online|offline, version, uptimeS}``."""
    return dumps(
        {
            "ts": ts_ms,
            "gatewayId": gateway_id,
            "status": "online" if online else "offline",
            "version": version,
            "uptimeS": round(uptime_s, 3),
        }
    )


def gateway_stats(*, gateway_id: str, ts_ms: int, counters: Mapping[str, float]) -> bytes:
    """``{ts, gatewayId, <counter>: number, ...}``; counters never override ts/gatewayId."""
    body: dict[str, Any] = {k: v for k, v in counters.items() if k not in ("ts", "gatewayId")}
    body["ts"] = ts_ms
    body["gatewayId"] = gateway_id
    return dumps(body)
