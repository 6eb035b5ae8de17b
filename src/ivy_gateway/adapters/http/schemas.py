"""Pydantic models of the API's JSON, for the OpenAPI document and for tests.

Routes build plain dicts and return them as ``Response``s (fast for 1,000 meters), so these
models describe rather than serialise; ``tests/unit/adapters/http`` validates real answers
against them, which keeps the two in step. JSON names are camelCase, as in MQTT.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ivy_gateway.domain.commands import CommandMethod

__all__ = [
    "CommandAccepted",
    "CommandRecordOut",
    "CommandRequest",
    "CommandResponse",
    "ErrorOut",
    "EventList",
    "GatewayOut",
    "HealthOut",
    "MeterList",
    "MeterOut",
    "ReadingsOut",
    "ReadyOut",
]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ErrorDetail(_Model):
    code: str
    message: str


class ErrorOut(_Model):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")
    error: ErrorDetail


class HealthOut(_Model):
    status: Literal["ok"]


class ReadyOut(_Model):
    status: Literal["ready"]
    checks: dict[str, str] = Field(description='"ok" or why a dependency is not ready')


class ValueOut(_Model):
    value: float | int | None
    unit: str
    ts: int = Field(description="when the value was read, ms since the Unix epoch (UTC)")


class MeterOut(_Model):
    meter_id: str = Field(examples=["000000001234"])
    online: bool
    protocol: Literal["dlt645", "dlms"] | None
    model: str | None
    ip: str | None
    first_seen: int | None
    last_seen: int | None
    values: dict[str, ValueOut] = Field(description="newest value per canonical quantity")


class MeterList(_Model):
    meters: list[MeterOut]
    count: int


class SeriesOut(_Model):
    unit: str
    points: list[tuple[int, float | None]] = Field(
        description="[ts, value] pairs, oldest first; with a bucket ts is the bucket start"
    )


class ReadingsOut(_Model):
    meter_id: str
    from_ms: int = Field(alias="from")
    to: int
    bucket: int | None = Field(description="bucket length in seconds, null for raw readings")
    agg: Literal["avg", "min", "max", "first", "last"] | None
    series: dict[str, SeriesOut]


class EventOut(_Model):
    id: int
    ts: int
    meter_id: str | None
    event: str
    severity: Literal["info", "warning", "critical"]
    data: dict[str, Any]


class EventList(_Model):
    meter_id: str
    from_ms: int = Field(alias="from")
    to: int
    events: list[EventOut] = Field(description="newest first")


class CommandRequest(_Model):
    """The MQTT ``command/request`` payload; ``id`` is optional over HTTP."""

    id: str | None = Field(None, description="echoed in the response; generated when absent")
    method: CommandMethod
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_ms: int | None = Field(None, gt=0)


class CommandResponse(_Model):
    """The MQTT ``command/response`` payload; absent keys are left out."""

    ts: int
    id: str
    success: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    error_code: (
        Literal[
            "invalid_command",
            "meter_offline",
            "timeout",
            "meter_rejected",
            "busy",
            "unauthorized",
            "internal",
        ]
        | None
    ) = None


class CommandAccepted(_Model):
    id: str
    state: Literal["pending"]
    location: str


class CommandRecordOut(_Model):
    id: str
    meter_id: str
    method: str
    params: dict[str, Any]
    requested_by: str
    requested_at: int
    finished_at: int | None
    state: Literal["pending", "succeeded", "failed"]
    response: CommandResponse | None = Field(description="null while the command runs")


class GatewayOut(_Model):
    ts: int
    gateway_id: str
    version: str
    uptime_s: float
    store_mode: Literal["sqlite", "postgresql", "timescaledb"]
    cluster_members: list[str]
    counters: dict[str, float]
