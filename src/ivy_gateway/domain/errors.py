"""The gateway's own exception tree.

GatewayError
 ├── ConfigError            a setting is wrong; the message names the setting
 ├── CommandError           a command cannot be run as asked (bad params, unknown method)
 └── MeterError             talking to one meter failed; other meters are unaffected
      ├── MeterTimeout      no answer in time (after retries)
      ├── MeterRejected     the meter answered with an error code (``code``, ``detail``)
      ├── MeterOffline      no live connection for the meter
      ├── MeterBusy         the meter's session cannot take more work now
      └── ProtocolViolation the meter answered with something we cannot accept
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "CommandError",
    "ConfigError",
    "GatewayError",
    "MeterBusy",
    "MeterError",
    "MeterOffline",
    "MeterRejected",
    "MeterTimeout",
    "ProtocolViolation",
]


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    pass


class CommandError(GatewayError):
    pass


class MeterError(GatewayError):
    pass


class MeterTimeout(MeterError):
    pass


class MeterOffline(MeterError):
    pass


class MeterBusy(MeterError):
    pass


class ProtocolViolation(MeterError):
    pass


class MeterRejected(MeterError):
    """The meter refused; ``code`` is its own error code, ``detail`` decoded flags/names."""

    def __init__(self, message: str, *, code: int, detail: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.detail = dict(detail or {})
