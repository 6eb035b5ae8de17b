"""Settings → the core's own objects, and the small parts the composition root needs.

``app.Gateway`` wires the gateway; this module holds what translates configuration into
domain values (per-meter options with their secrets read, models with scaled poll
intervals, alarm thresholds) plus the system clock and URL redaction for summaries and errors.
"""

from __future__ import annotations

import dataclasses
import time
from decimal import Decimal
from typing import Any

from ivy_gateway.domain.errors import ConfigError
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.services import AlarmThresholds
from ivy_gateway.sessions.context import MeterOptions
from ivy_gateway.sessions.profiles import ProfileCatalog, RelayMethod
from ivy_gateway.settings import MeterOverride, Settings

__all__ = [
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


def redact_url(url: str) -> str:
    """``scheme://user:***@host/db``: a URL in a summary or log never shows its password."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
