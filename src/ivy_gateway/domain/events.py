"""What the runtime tells the rest of the gateway: status changes, readings, meter events.

Sessions produce these; ``services`` fan them out to the store, the publisher and alarms.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .meter import ConnectionInfo, MeterId, ProtocolKind
from .quantities import Reading, ReadingSource

__all__ = [
    "EventKind",
    "GatewayEvent",
    "MeterEvent",
    "MeterStatus",
    "ReadingsBatch",
    "Severity",
]


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class EventKind(enum.StrEnum):
    """Event names of the MQTT ``events`` topic (CONTRACT.md)."""

    METER_ONLINE = "meter_online"
    METER_OFFLINE = "meter_offline"
    COMMUNICATION_LOST = "communication_lost"
    OVERVOLTAGE = "overvoltage"
    UNDERVOLTAGE = "undervoltage"
    OVERCURRENT = "overcurrent"
    OVERLOAD = "overload"
    LOW_POWER_FACTOR = "low_power_factor"
    LOW_BALANCE = "low_balance"
    RELAY_OPENED = "relay_opened"
    RELAY_CLOSED = "relay_closed"
    METER_EVENT = "meter_event"
    INVALID_TRAFFIC = "invalid_traffic"
    #: Added in v1: the store was down long enough that its bounded backlog overflowed.
    STORE_BACKLOG_FULL = "store_backlog_full"
    #: Added in v1: cluster mode lost Redis (instances keep serving their own meters).
    CLUSTER_DEGRADED = "cluster_degraded"
    CLUSTER_RESTORED = "cluster_restored"


@dataclass(frozen=True, slots=True)
class MeterStatus:
    """A meter came online (identified on a connection) or went offline."""

    meter: MeterId
    online: bool
    protocol: ProtocolKind
    model: str
    connection: ConnectionInfo | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class ReadingsBatch:
    """Readings taken together (one poll round or one notification): one telemetry message."""

    meter: MeterId
    protocol: ProtocolKind
    source: ReadingSource
    ts_ms: int
    readings: Sequence[Reading]


@dataclass(frozen=True, slots=True)
class MeterEvent:
    """Something worth telling a person. ``meter`` is None for traffic nobody identified."""

    kind: EventKind
    severity: Severity
    ts_ms: int
    meter: MeterId | None
    data: Mapping[str, Any] = field(default_factory=dict)


GatewayEvent = MeterStatus | ReadingsBatch | MeterEvent
