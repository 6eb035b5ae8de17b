"""Use-cases: telemetry fan-out, polling, commands, alarms, traffic capture.

Imports only ``ivy_gateway.domain``; meters are reached through ``MeterLink`` and
``MeterDirectory``, the outside world through the Protocols of ``domain.ports``.
"""

from .alarms import Alarms, AlarmThresholds
from .audit import AuditEntry, InMemoryCommandAudit
from .capture import Capture, CaptureRecord, capture_files, read_capture
from .commands import CommandService, InvalidCommand, to_json_value
from .polling import Poller, PollerStats
from .telemetry import MeterSnapshot, SinkStats, Telemetry, TelemetryStats

__all__ = [
    "AlarmThresholds",
    "Alarms",
    "AuditEntry",
    "Capture",
    "CaptureRecord",
    "CommandService",
    "InMemoryCommandAudit",
    "InvalidCommand",
    "MeterSnapshot",
    "Poller",
    "PollerStats",
    "SinkStats",
    "Telemetry",
    "TelemetryStats",
    "capture_files",
    "read_capture",
    "to_json_value",
]
