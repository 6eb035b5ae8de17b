"""Data-Notification and Event-Notification-Request (standard and tolerant shapes)."""

from __future__ import annotations

import pytest

from ivy_gateway.codec.dlms.apdu.common import CosemAttributeDescriptor, LongInvokeIdAndPriority
from ivy_gateway.codec.dlms.apdu.notification import (
    DataNotification,
    EventNotificationRequest,
    decode_data_notification,
    decode_event_notification,
    notification_values,
)
from ivy_gateway.codec.dlms.axdr import Data, DataType
from ivy_gateway.codec.dlms.clock import CosemDateTime
from ivy_gateway.codec.dlms.obis import Obis
from ivy_gateway.codec.errors import DecodeError, TruncatedError

STAMP = CosemDateTime.from_bytes(bytes.fromhex("07EA011E05042213008000FF"))
WITHOUT_TIME = "0F0000000100020409060100010800FF0600039B48090601000C0700FF0600005C54"
WITH_TIME = "0F400000020C07EA011E05042213008000FF0600005C54"
EVENT_PLAIN = "C20000030100010800FF020600002710"
EVENT_TIMED = "C2010C07EA011E05042213008000FF00010000600B00FF0212004C"
EVENT_BARE = "C207EA011E05042213008000FF000301000C0700FF020600005C54"


def test_data_notification_without_time_yields_obis_value_pairs() -> None:
    apdu = decode_data_notification(bytes.fromhex(WITHOUT_TIME))
    assert apdu.date_time is None
    assert apdu.long_invoke_id_and_priority.invoke_id == 1
    assert notification_values(apdu.body) == [
        (Obis(1, 0, 1, 8, 0), Data(DataType.DOUBLE_LONG_UNSIGNED, 236360)),
        (Obis(1, 0, 12, 7, 0), Data(DataType.DOUBLE_LONG_UNSIGNED, 23636)),
    ]
    assert apdu.to_bytes().hex().upper() == WITHOUT_TIME


def test_data_notification_with_time() -> None:
    apdu = decode_data_notification(bytes.fromhex(WITH_TIME))
    assert apdu.date_time == STAMP
    assert apdu.long_invoke_id_and_priority.confirmed
    assert not apdu.long_invoke_id_and_priority.high_priority
    assert not apdu.long_invoke_id_and_priority.self_descriptive
    assert not apdu.long_invoke_id_and_priority.processing_option
    assert apdu.to_bytes().hex().upper() == WITH_TIME
    assert notification_values(apdu.body) == []  # a scalar body names no object


def test_notification_values_skips_items_that_are_not_logical_names() -> None:
    body = Data(
        DataType.STRUCTURE,
        (
            Data(DataType.UNSIGNED, 1),
            Data(DataType.OCTET_STRING, bytes.fromhex("0000010000FF")),
            Data(DataType.OCTET_STRING, bytes.fromhex("07EA011E05042213008000FF")),
        ),
    )
    assert notification_values(body) == [
        (
            Obis(0, 0, 1, 0, 0),
            Data(DataType.OCTET_STRING, bytes.fromhex("07EA011E05042213008000FF")),
        )
    ]


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        ("0F0000000105" + "00" * 5 + "00", DecodeError),  # 5-byte date-time
        ("0F000000010C07EA", TruncatedError),
        ("0F00000001", TruncatedError),
        ("0F00000001000000", DecodeError),  # trailing
        ("C2000000", DecodeError),
    ],
)
def test_data_notification_rejects(wire: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_data_notification(bytes.fromhex(wire))


def test_event_notification_standard_forms() -> None:
    plain = decode_event_notification(bytes.fromhex(EVENT_PLAIN), tolerant=False)
    assert plain == EventNotificationRequest(
        CosemAttributeDescriptor(3, Obis(1, 0, 1, 8, 0), 2),
        Data(DataType.DOUBLE_LONG_UNSIGNED, 10000),
    )
    timed = decode_event_notification(bytes.fromhex(EVENT_TIMED))
    assert timed.time == STAMP
    assert timed.standard
    for apdu, wire in ((plain, EVENT_PLAIN), (timed, EVENT_TIMED)):
        assert apdu.to_bytes().hex().upper() == wire


def test_event_notification_bare_time_is_decoded_only_when_tolerant() -> None:
    raw = bytes.fromhex(EVENT_BARE)
    apdu = decode_event_notification(raw)
    assert not apdu.standard
    assert apdu.time == STAMP
    assert apdu.attribute == CosemAttributeDescriptor(3, Obis(1, 0, 12, 7, 0), 2)
    assert apdu.to_bytes() == raw
    with pytest.raises(DecodeError):
        decode_event_notification(raw, tolerant=False)


def test_event_notification_without_flag_nor_time_is_tolerated() -> None:
    raw = bytes.fromhex("C2" + "000301000C0700FF02" + "0600005C54")
    apdu = decode_event_notification(raw)
    assert not apdu.standard
    assert apdu.time is None
    assert apdu.attribute.class_id == 3
    assert apdu.to_bytes() == raw


@pytest.mark.parametrize(
    ("wire", "tolerant"),
    [
        ("C20200030100010800FF020600002710", False),  # bad time flag
        ("C2010B07EA011E05042213008000FF00010000600B00FF0212004C", False),  # length 11
        ("C201", True),
        ("C4000003", True),
    ],
)
def test_event_notification_rejects(wire: str, tolerant: bool) -> None:
    with pytest.raises(DecodeError):
        decode_event_notification(bytes.fromhex(wire), tolerant=tolerant)


def test_long_invoke_id_validator_rejects() -> None:
    with pytest.raises(ValueError, match="uint32"):
        LongInvokeIdAndPriority(2**32)
    assert DataNotification(LongInvokeIdAndPriority(0), None, Data(DataType.NULL_DATA)).to_bytes()
