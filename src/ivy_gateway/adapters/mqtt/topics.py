"""Every MQTT topic of the gateway, built in one place from the configurable prefix.

CONTRACT.md "MQTT" (``{p}`` is the prefix, ``ivy/v1`` by default)::

    {p}/meters/{meterId}/telemetry          out  QoS 1
    {p}/meters/{meterId}/status             out  QoS 1  retained
    {p}/meters/{meterId}/events             out  QoS 1
    {p}/meters/{meterId}/command/request    in   QoS 1
    {p}/meters/{meterId}/command/response   out  QoS 1
    {p}/gateway/status                      out  QoS 1  retained (offline = last will)
    {p}/gateway/stats                       out  QoS 0
    {p}/gateway/events                      out  QoS 1  (addition: events of no meter)

A topic level only ever holds a validated ``MeterId`` (12 digits), so no ``+``, ``#`` or
``/`` from a meter or a user can reach a topic name.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivy_gateway.domain.meter import MeterId

__all__ = ["Topics", "validate_prefix"]


def validate_prefix(prefix: str) -> str:
    """``prefix`` if it is usable as the first levels of every topic, else ValueError."""
    if not prefix or prefix.startswith(("/", "$")) or prefix.endswith("/"):
        raise ValueError(f"topic prefix must not be empty or start/end with '/' or '$': {prefix!r}")
    levels = prefix.split("/")
    if any(not level for level in levels):
        raise ValueError(f"topic prefix has an empty level: {prefix!r}")
    if any(ch in prefix for ch in "+#\x00"):
        raise ValueError(f"topic prefix must not contain '+', '#' or NUL: {prefix!r}")
    return prefix


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names under one prefix; the only code that formats a topic."""

    prefix: str = "ivy/v1"

    def __post_init__(self) -> None:
        validate_prefix(self.prefix)

    def _meter(self, meter: MeterId, leaf: str) -> str:
        # MeterId validated itself (12 ASCII digits); re-checking the type keeps a plain
        # str (which could carry a wildcard) from sneaking in through an ``Any``.
        if not isinstance(meter, MeterId):
            raise TypeError(f"expected a MeterId, got {type(meter).__name__}")
        return f"{self.prefix}/meters/{meter.value}/{leaf}"

    def telemetry(self, meter: MeterId) -> str:
        return self._meter(meter, "telemetry")

    def status(self, meter: MeterId) -> str:
        return self._meter(meter, "status")

    def events(self, meter: MeterId) -> str:
        return self._meter(meter, "events")

    def command_request(self, meter: MeterId) -> str:
        return self._meter(meter, "command/request")

    def command_response(self, meter: MeterId) -> str:
        return self._meter(meter, "command/response")

    @property
    def command_request_filter(self) -> str:
        """The subscription filter for command requests of every meter."""
        return f"{self.prefix}/meters/+/command/request"

    @property
    def all_filter(self) -> str:
        """Everything under the prefix (what a ``reader`` may subscribe to)."""
        return f"{self.prefix}/#"

    @property
    def gateway_status(self) -> str:
        return f"{self.prefix}/gateway/status"

    @property
    def gateway_stats(self) -> str:
        return f"{self.prefix}/gateway/stats"

    @property
    def gateway_events(self) -> str:
        """Events that belong to no meter (e.g. ``invalid_traffic``): an addition to v1."""
        return f"{self.prefix}/gateway/events"

    def parse_command_request(self, topic: str) -> MeterId:
        """The meter of a ``command/request`` topic; ValueError for any other topic."""
        head = f"{self.prefix}/meters/"
        tail = "/command/request"
        if not topic.startswith(head) or not topic.endswith(tail):
            raise ValueError(f"not a command request topic: {topic!r}")
        middle = topic[len(head) : len(topic) - len(tail)]
        return MeterId(middle)  # ValueError unless exactly 12 digits (so no '/', '+', '#')
