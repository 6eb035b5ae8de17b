"""Meter-initiated DLMS notifications → gateway events (passive mode).

* Data-Notification: the (logical name, value) pairs of its body (``notification_values``)
  whose OBIS code is a point of the meter's profile become one ``ReadingsBatch`` with
  ``source=push``; the scaler is the one read from attribute 3 when cached, else the
  profile's fallback, and the profile's divisor converts Wh → kWh.
* Event-Notification: one ``MeterEvent(meter_event)`` with the object, its value as JSON,
  the meter's time stamp when it sent one and the raw APDU in hex (em114070.md §6: keep
  the raw bytes of the first notifications from the field).
"""

from __future__ import annotations

from collections.abc import Mapping

from ivy_gateway.codec.dlms import notification_values
from ivy_gateway.codec.dlms.apdu.notification import DataNotification
from ivy_gateway.codec.dlms.association_events import NotificationReceived
from ivy_gateway.codec.errors import DecodeError
from ivy_gateway.domain.events import EventKind, MeterEvent, ReadingsBatch, Severity
from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.domain.quantities import Reading, ReadingSource, quantity_unit

from .dlms_values import data_to_json, reading_value
from .profiles import DlmsPoint, MeterProfile

__all__ = ["notification_event"]


def notification_event(
    event: NotificationReceived,
    meter: MeterId,
    profile: MeterProfile,
    scalers: Mapping[str, int],
    ts_ms: int,
) -> ReadingsBatch | MeterEvent | None:
    notification = event.notification
    if isinstance(notification, DataNotification):
        return _readings(notification, meter, profile, scalers, ts_ms)
    stamp = None
    if notification.time is not None:
        try:
            stamp = notification.time.to_datetime().isoformat()
        except DecodeError:
            stamp = notification.time.to_bytes().hex().upper()
    attribute = notification.attribute
    return MeterEvent(
        kind=EventKind.METER_EVENT,
        severity=Severity.INFO,
        ts_ms=ts_ms,
        meter=meter,
        data={
            "obis": str(attribute.obis),
            "class_id": attribute.class_id,
            "attribute": attribute.attribute_id,
            "value": data_to_json(notification.value),
            "time": stamp,
            "raw": event.apdu.hex().upper(),
        },
    )


def _readings(
    notification: DataNotification,
    meter: MeterId,
    profile: MeterProfile,
    scalers: Mapping[str, int],
    ts_ms: int,
) -> ReadingsBatch | None:
    by_obis = {p.obis: p for p in profile.points.values() if isinstance(p, DlmsPoint)}
    readings = []
    for obis, data in notification_values(notification.body):
        point = by_obis.get(str(obis))
        if point is None:
            continue
        value = reading_value(data, scalers.get(point.obis, point.scaler), point.divisor)
        if value is None:
            continue
        unit = quantity_unit(point.quantity)
        readings.append(
            Reading(meter, point.quantity, value, unit, ts_ms, ReadingSource.PUSH, point.obis)
        )
    if not readings:
        return None
    return ReadingsBatch(meter, ProtocolKind.DLMS, ReadingSource.PUSH, ts_ms, tuple(readings))
