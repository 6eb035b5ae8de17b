"""The DLMS session's pure mappings: values, JSON, identities, notifications."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ivy_gateway.codec.dlms import (
    BitString,
    CompactArray,
    CosemDate,
    CosemDateTime,
    Data,
    DataType,
    Obis,
)
from ivy_gateway.codec.dlms.apdu.notification import (
    decode_data_notification,
    decode_event_notification,
)
from ivy_gateway.codec.dlms.association_events import NotificationReceived
from ivy_gateway.domain.events import MeterEvent, ReadingsBatch
from ivy_gateway.domain.meter import ConnectionInfo, MeterId
from ivy_gateway.sessions.dlms_push import notification_event
from ivy_gateway.sessions.dlms_values import (
    data_to_json,
    meter_id_from_serial,
    reading_value,
    scaler_attribute,
    synthetic_meter_id,
)
from ivy_gateway.sessions.profiles import load_profiles

METER = MeterId("311501114070")
PROFILE = load_profiles()["em114070"]


@pytest.mark.parametrize(
    ("data", "scaler", "divisor", "expected"),
    [
        (Data(DataType.DOUBLE_LONG_UNSIGNED, 23636), -2, 1, Decimal("236.36")),
        (Data(DataType.DOUBLE_LONG_UNSIGNED, 123456), 0, 1000, Decimal("123.456")),
        (Data(DataType.FLOAT32, 1.5), 1, 1, Decimal("15")),
        (Data(DataType.BOOLEAN, True), 0, 1, Decimal(1)),
        (Data(DataType.OCTET_STRING, b"x"), 0, 1, None),
    ],
)
def test_reading_value(data: Data, scaler: int, divisor: int, expected: Decimal | None) -> None:
    assert reading_value(data, scaler, divisor) == expected


def test_scaler_attribute_per_class() -> None:
    assert [scaler_attribute(c) for c in (1, 3, 4, 5, 8)] == [None, 3, 3, 4, None]


def test_data_to_json_covers_every_shape() -> None:
    stamp = CosemDateTime.from_bytes(bytes.fromhex("07EA011E05042213008000FF"))
    wildcard = CosemDateTime.from_bytes(bytes.fromhex("FFFF011E05042213008000FF"))
    value = Data(
        DataType.STRUCTURE,
        (
            Data(DataType.OCTET_STRING, b"YTL1"),
            Data(DataType.OCTET_STRING, b"\x00\x01"),
            Data(DataType.DATE_TIME, stamp),
            Data(DataType.DATE_TIME, wildcard),
            Data(DataType.DATE, CosemDate.from_bytes(bytes.fromhex("07EA011E05"))),
            Data(DataType.BIT_STRING, BitString(b"\x80\x40", 10)),
            Data(DataType.COMPACT_ARRAY, CompactArray(b"\x11", b"\x01\x02")),
            Data(DataType.LONG, -5),
        ),
    )
    assert data_to_json(value) == [
        "YTL1",
        "0001",
        "2026-01-30T04:34:19",
        "FFFF011E05042213008000FF",
        "07EA011E05",
        "1000000001",
        "0102",
        -5,
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Data(DataType.OCTET_STRING, b"123456789012"), "123456789012"),
        (Data(DataType.VISIBLE_STRING, " 123456789012 "), "123456789012"),
        (Data(DataType.OCTET_STRING, b"000000000000"), None),
        (Data(DataType.OCTET_STRING, b"\xff" * 12), None),
        (Data(DataType.OCTET_STRING, b"12345"), None),
        (Data(DataType.UNSIGNED, 5), None),
    ],
)
def test_meter_id_from_serial(value: Data, expected: str | None) -> None:
    found = meter_id_from_serial(value)
    assert (found.value if found else None) == expected


def test_synthetic_id_is_deterministic_and_twelve_digits() -> None:
    first = synthetic_meter_id(ConnectionInfo(1, "127.0.0.1", 40000))
    again = synthetic_meter_id(ConnectionInfo(2, "127.0.0.1", 40000))
    other = synthetic_meter_id(ConnectionInfo(3, "127.0.0.1", 40001))
    assert first == again != other
    assert first.value.startswith("99")


def test_data_notification_maps_known_obis_with_cached_scalers() -> None:
    apdu = bytes.fromhex("0F0000000100020409060100010800FF0600039B48090601000C0700FF0600005C54")
    event = NotificationReceived(decode_data_notification(apdu), apdu)
    batch = notification_event(event, METER, PROFILE, {"1-0:12.7.0.255": -1}, 5)
    assert isinstance(batch, ReadingsBatch)
    [voltage] = batch.readings  # 1-0:1.8.0.255 is no point of the EM114070
    assert voltage.value == Decimal("2363.6")
    empty = bytes.fromhex("0F00000001000600000000")
    nothing = NotificationReceived(decode_data_notification(empty), empty)
    assert notification_event(nothing, METER, PROFILE, {}, 5) is None


def test_data_notification_with_non_numbers_is_dropped() -> None:
    apdu = bytes.fromhex(
        "0F000000010002020906" + Obis(1, 0, 12, 7, 0, 255).to_bytes().hex() + "0A0141"
    )
    event = NotificationReceived(decode_data_notification(apdu), apdu)
    assert notification_event(event, METER, PROFILE, {}, 5) is None


def test_event_notification_with_unspecified_time_keeps_it_raw() -> None:
    apdu = bytes.fromhex("C2010CFFFF011E05042213008000FF00010000600B00FF0212004C")
    event = NotificationReceived(decode_event_notification(apdu), apdu)
    result = notification_event(event, METER, PROFILE, {}, 5)
    assert isinstance(result, MeterEvent)
    assert result.data["time"] == "FFFF011E05042213008000FF"
