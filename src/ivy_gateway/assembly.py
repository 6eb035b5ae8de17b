"""Settings → the core's own objects, and the small parts the composition root needs.

``app.Gateway`` wires the gateway; this module holds what translates configuration into
domain values (per-meter options with their secrets read, models with scaled poll
intervals, alarm thresholds) plus the system clock, the readings-per-second counter and
URL redaction for summaries and errors.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ivy_gateway.domain.errors import ConfigError
from ivy_gateway.domain.events import GatewayEvent, ReadingsBatch
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.services import AlarmThresholds
from ivy_gateway.sessions.context import MeterOptions
from ivy_gateway.sessions.profiles import ProfileCatalog, RelayMethod
from ivy_gateway.settings import MeterOverride, Settings

__all__ = [
    "ReadingRate",
    "SystemClock",
    "alarm_thresholds",
    "meter_options_from_settings",
    "redact_url",
    "scaled_profiles",
]


class SystemClock:
    """Wall clock for timestamps, monotonic clock for everything that measures time."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


def _hex_secret(override: MeterOverride, name: str, meter: str, size: int) -> bytes | None:
    value = override.secret(name)
    if value is None:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ConfigError(f'profiles.meters."{meter}".{name}: must be hex') from None
    if len(raw) != size:
        raise ConfigError(f'profiles.meters."{meter}".{name}: must be {size} bytes')
    return raw


def meter_options_from_settings(settings: Settings) -> dict[MeterId, MeterOptions]:
    """Per-meter options with every secret read (from the value or its ``_file``)."""
    options: dict[MeterId, MeterOptions] = {}
    defaults = MeterOptions()
    for meter, override in settings.profiles.meters.items():
        password = override.secret("dlt645_password")
        if password is not None and (len(password) != 8 or not password.isdigit()):
            raise ConfigError(f'profiles.meters."{meter}".dlt645_password: 8 digits (PA + PPPPPP)')
        title = override.dlms_system_title
        options[MeterId(meter)] = MeterOptions(
            model=override.model,
            relay_method=RelayMethod(override.relay_method) if override.relay_method else None,
            dlt645_password=password or defaults.dlt645_password,
            dlt645_operator=override.dlt645_operator or defaults.dlt645_operator,
            vendor_aes_key=_hex_secret(override, "vendor_aes_key", meter, 16),
            dlms_ek=_hex_secret(override, "dlms_ek", meter, 16),
            dlms_ak=_hex_secret(override, "dlms_ak", meter, 16),
            dlms_system_title=bytes.fromhex(title) if title else None,
        )
    return options


def scaled_profiles(catalog: ProfileCatalog, factor: float) -> ProfileCatalog:
    if factor == 1.0:
        return catalog
    profiles = []
    for name in catalog.names():
        profile = catalog[name]
        groups = tuple(
            dataclasses.replace(g, interval_s=g.interval_s * factor) for g in profile.groups
        )
        profiles.append(dataclasses.replace(profile, groups=groups))
    return ProfileCatalog(profiles)


def alarm_thresholds(settings: Settings) -> AlarmThresholds:
    values: dict[str, Any] = {}
    for name, value in settings.alarms.model_dump().items():
        values[name] = None if value is None else Decimal(str(value))
    return AlarmThresholds(**values)


class ReadingRate:
    """A telemetry sink that only counts readings, for ``readingsPerS`` in the stats."""

    def __init__(self, clock: SystemClock, window_s: float = 10.0) -> None:
        self._clock = clock
        self._window_s = window_s
        self.total = 0
        self._marks: deque[tuple[float, int]] = deque([(clock.monotonic(), 0)])

    async def handle(self, events: Sequence[GatewayEvent]) -> None:
        self.total += sum(len(e.readings) for e in events if isinstance(e, ReadingsBatch))
        now = self._clock.monotonic()
        self._marks.append((now, self.total))
        while len(self._marks) > 2 and now - self._marks[1][0] >= self._window_s:
            self._marks.popleft()

    def per_second(self) -> float:
        """Readings per second over about the last ``window_s``; reading it changes nothing."""
        since, total_then = self._marks[0]
        elapsed = self._clock.monotonic() - since
        return (self.total - total_then) / elapsed if elapsed > 0 else 0.0


def redact_url(url: str) -> str:
    """``scheme://user:***@host/db``: a URL in a summary or log never shows its password."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
