"""Commands users send to meters, and their results (CONTRACT.md "Command methods")."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .meter import MeterId

__all__ = ["Command", "CommandMethod", "CommandResult", "ErrorCode", "RegisterRef", "RelayState"]


class CommandMethod(enum.StrEnum):
    READ_REGISTER = "read_register"
    READ_ALL = "read_all"
    READ_ADDRESS = "read_address"
    RELAY_CONTROL = "relay_control"
    READ_RELAY_STATE = "read_relay_state"
    SYNC_TIME = "sync_time"


class ErrorCode(enum.StrEnum):
    INVALID_COMMAND = "invalid_command"
    METER_OFFLINE = "meter_offline"
    TIMEOUT = "timeout"
    METER_REJECTED = "meter_rejected"
    BUSY = "busy"
    UNAUTHORIZED = "unauthorized"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class Command:
    id: str
    meter: MeterId
    method: CommandMethod
    params: Mapping[str, Any] = field(default_factory=dict)
    timeout_s: float = 30.0
    requested_by: str = "unknown"


@dataclass(frozen=True, slots=True)
class CommandResult:
    id: str
    success: bool
    result: Mapping[str, Any] | None = None
    error: str | None = None
    error_code: ErrorCode | None = None

    @classmethod
    def ok(cls, command_id: str, result: Mapping[str, Any]) -> CommandResult:
        return cls(command_id, True, result=result)

    @classmethod
    def failed(
        cls,
        command_id: str,
        code: ErrorCode,
        message: str,
        result: Mapping[str, Any] | None = None,
    ) -> CommandResult:
        return cls(command_id, False, result=result, error=message, error_code=code)


class RelayState(enum.StrEnum):
    """Relay position as users see it: ``open`` = load disconnected, ``closed`` = supplied."""

    OPEN = "open"
    CLOSED = "closed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class RegisterRef:
    """Which register a ``read_register`` command means: exactly one of the three ways.

    ``quantity`` is a canonical name; ``data_id`` a DL/T 645 DI as 8 hex digits; ``obis`` an
    OBIS code with the COSEM ``class_id`` and ``attribute`` to GET.
    """

    quantity: str | None = None
    data_id: str | None = None
    obis: str | None = None
    class_id: int = 3
    attribute: int = 2

    def __post_init__(self) -> None:
        given = [x for x in (self.quantity, self.data_id, self.obis) if x is not None]
        if len(given) != 1:
            raise ValueError("name exactly one of register, dataId or obis")
