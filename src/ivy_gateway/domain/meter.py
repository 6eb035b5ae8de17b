"""Meter identity and connection facts."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ConnectionInfo", "MeterId", "ProtocolKind"]


class ProtocolKind(enum.StrEnum):
    """What a connection speaks, as published in ``status`` and ``telemetry`` payloads."""

    DLT645 = "dlt645"
    DLMS = "dlms"


@dataclass(frozen=True, slots=True, order=True)
class MeterId:
    """A meter's 12-digit address as printed on the meter (high digit first).

    It becomes part of MQTT topics, so it can never carry ``+``, ``#`` or ``/``.
    """

    value: str

    def __post_init__(self) -> None:
        if len(self.value) != 12 or not self.value.isascii() or not self.value.isdigit():
            raise ValueError(f"a meter id is 12 decimal digits, got {self.value!r}")

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """Where a meter connection comes from; ``connection_id`` is unique per process."""

    connection_id: int
    peer_host: str
    peer_port: int

    def __str__(self) -> str:
        return f"conn#{self.connection_id} {self.peer_host}:{self.peer_port}"
