"""Meter-initiated (push) APDUs, unconfirmed (Green Book xDLMS, dlms.md §E6)::

    Data-Notification           0F long-invoke-id(4) date-time body(Data)
                                   date-time = octet-string: 00 (empty) | 0C + 12 bytes
    Event-Notification-Request  C2 time descriptor(9) value(Data)
                                   time = 00 (absent) | 01 0C + 12 bytes

Non-standard Event-Notification (``standard=False``): the reference JavaScript gateway
accepts the 12 time bytes right after ``C2`` without flag and length, or the class-id
right after ``C2`` when there is no time. No capture shows the EM114070 sending it; the
decoder tries the standard form first and falls back to those shapes only when the
standard parse fails or does not consume the APDU exactly (``tolerant=True``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import DecodeError, TruncatedError
from ..axdr import Data, DataType, decode_data, encode_data
from ..clock import CosemDateTime
from ..obis import Obis
from .common import (
    CosemAttributeDescriptor,
    LongInvokeIdAndPriority,
    byte_at,
    check_end,
    decode_attribute_descriptor,
    u32_at,
)
from .tags import ApduTag

__all__ = [
    "DataNotification",
    "EventNotificationRequest",
    "decode_data_notification",
    "decode_event_notification",
    "notification_values",
]

_DATE_TIME_SIZE = 12


@dataclass(frozen=True, slots=True)
class DataNotification:
    long_invoke_id_and_priority: LongInvokeIdAndPriority
    date_time: CosemDateTime | None
    body: Data

    def to_bytes(self) -> bytes:
        head = bytes((ApduTag.DATA_NOTIFICATION,))
        head += self.long_invoke_id_and_priority.value.to_bytes(4, "big")
        stamp = b"\x00" if self.date_time is None else b"\x0c" + self.date_time.to_bytes()
        return head + stamp + encode_data(self.body)


@dataclass(frozen=True, slots=True)
class EventNotificationRequest:
    attribute: CosemAttributeDescriptor
    value: Data
    time: CosemDateTime | None = None
    standard: bool = True  # False: the bare-time shape of the reference gateway

    def to_bytes(self) -> bytes:
        out = bytearray((ApduTag.EVENT_NOTIFICATION_REQUEST,))
        if self.time is not None:
            out += (b"\x01\x0c" if self.standard else b"") + self.time.to_bytes()
        elif self.standard:
            out.append(0)
        out += self.attribute.to_bytes() + encode_data(self.value)
        return bytes(out)


def _date_time_at(buf: bytes | memoryview, offset: int) -> CosemDateTime:
    end = offset + _DATE_TIME_SIZE
    if end > len(buf):
        raise TruncatedError("date-time truncated", offset=len(buf))
    return CosemDateTime.from_bytes(buf[offset:end])


def decode_data_notification(buf: bytes | memoryview) -> DataNotification:
    """Decode a whole Data-Notification APDU (``0F …``)."""
    if byte_at(buf, 0) != ApduTag.DATA_NOTIFICATION:
        raise DecodeError(f"not a Data-Notification: tag 0x{buf[0]:02X}", offset=0)
    long_iid = LongInvokeIdAndPriority(u32_at(buf, 1))
    length = byte_at(buf, 5)
    date_time: CosemDateTime | None = None
    if length == _DATE_TIME_SIZE:
        date_time = _date_time_at(buf, 6)
    elif length != 0:
        raise DecodeError(f"date-time must be 0 or 12 bytes, got {length}", offset=5)
    body, end = decode_data(buf, 6 + length)
    check_end(buf, end)
    return DataNotification(long_iid, date_time, body)


def decode_event_notification(
    buf: bytes | memoryview, *, tolerant: bool = True
) -> EventNotificationRequest:
    """Decode a whole Event-Notification-Request (``C2 …``); see the module notes."""
    if byte_at(buf, 0) != ApduTag.EVENT_NOTIFICATION_REQUEST:
        raise DecodeError(f"not an Event-Notification-Request: tag 0x{buf[0]:02X}", offset=0)
    try:
        return _decode_event(buf, standard=True)
    except DecodeError as error:
        if not tolerant:
            raise
        standard_error = error
    # fall back to the non-standard shapes, bare time first (the one the vectors show)
    for bare_time in (True, False):
        try:
            return _decode_event(buf, standard=False, bare_time=bare_time)
        except DecodeError:
            continue
    raise standard_error


def _decode_event(
    buf: bytes | memoryview, *, standard: bool, bare_time: bool = False
) -> EventNotificationRequest:
    time: CosemDateTime | None = None
    offset = 1
    if standard:
        flag = byte_at(buf, 1)
        if flag == 1:
            if byte_at(buf, 2) != _DATE_TIME_SIZE:
                raise DecodeError("event time must be a 12-byte octet-string", offset=2)
            time, offset = _date_time_at(buf, 3), 3 + _DATE_TIME_SIZE
        elif flag == 0:
            offset = 2
        else:
            raise DecodeError(f"time flag must be 0 or 1, got {flag}", offset=1)
    elif bare_time:
        time, offset = _date_time_at(buf, 1), 1 + _DATE_TIME_SIZE
    attribute, offset = decode_attribute_descriptor(buf, offset)
    value, offset = decode_data(buf, offset)
    check_end(buf, offset)
    return EventNotificationRequest(attribute, value, time, standard)


def notification_values(body: Data) -> list[tuple[Obis, Data]]:
    """(OBIS, value) pairs from a push body laid out as logical-name/value couples.

    A Push setup (class 40) sends ``structure{…}`` of the objects in its push_object_list;
    meters that push registers usually alternate ``octet-string(6)`` logical names with
    the values (vector ``data_notification_without_datetime``). Items that do not fit
    that pattern are skipped; an empty list means the body has no self-described names.
    """
    items = body.value
    if type(items) is not tuple:
        return []
    pairs: list[tuple[Obis, Data]] = []
    index = 0
    while index + 1 < len(items):
        name = items[index]
        raw = name.value
        if name.tag == DataType.OCTET_STRING and isinstance(raw, bytes) and len(raw) == 6:
            pairs.append((Obis.from_bytes(raw), items[index + 1]))
            index += 2
        else:
            index += 1
    return pairs
