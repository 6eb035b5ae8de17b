"""Relay control 0x1C: the standard frame and the two reference-gateway variants."""

from __future__ import annotations

from datetime import datetime

import pytest

from ivy_gateway.codec.dlt645 import (
    Address,
    OperatorCode,
    Password,
    RelayCommand,
    RelayControlRequest,
    SimpleRelayRequest,
    VendorAesRelayRequest,
    VendorRelayPlaintext,
    decode_frame,
    decode_message,
    encode_message,
)
from ivy_gateway.codec.dlt645.relay import parse_relay_request
from ivy_gateway.codec.errors import DecodeError, EncodeError

METER = Address.parse("000000001234")
PASSWORD = Password(2, "123456")
OPERATOR = OperatorCode("12345678")
KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
STAMP = datetime(2026, 2, 1, 9, 15, 42)


def test_standard_trip_matches_the_worked_example() -> None:
    request = RelayControlRequest(PASSWORD, OPERATOR, RelayCommand.TRIP, datetime(2026, 2, 1, 12))
    wire = encode_message(METER, request)
    assert wire.hex().upper() == "68341200000000681C1035896745AB8967454D333333453435597916"
    assert decode_message(decode_frame(wire)) == request


def test_standard_request_rejects_bad_reserved_byte_and_unknown_command() -> None:
    request = RelayControlRequest(PASSWORD, OPERATOR, RelayCommand.TRIP, STAMP, reserved=256)
    with pytest.raises(EncodeError):
        request.data()
    data = bytearray(RelayControlRequest(PASSWORD, OPERATOR, RelayCommand.TRIP, STAMP).data())
    data[8] = 0x99
    with pytest.raises(DecodeError, match="relay command 99") as info:
        parse_relay_request(bytes(data))
    assert info.value.offset == 8


def test_vendor_aes_frame_matches_the_reference_vector() -> None:
    plain = VendorRelayPlaintext(STAMP, "12345678", "02123456", RelayCommand.TRIP)
    assert plain.to_bytes().hex().upper() == "26020109154212345678021234561A00"
    request = plain.encrypt(KEY)
    assert request.ciphertext.hex().upper() == "6B9014B7999831A28033946B07F53383"
    wire = encode_message(METER, request)
    assert wire.hex().upper() == (
        "68341200000000681C14343E33379EC347EACCCB64D5B366C79E3A2866B68016"
    )
    decoded = decode_message(decode_frame(wire))
    assert isinstance(decoded, VendorAesRelayRequest)
    assert decoded.decrypt(KEY) == plain


def test_vendor_aes_rejects_bad_keys_fields_and_blocks() -> None:
    plain = VendorRelayPlaintext(STAMP, "12345678", "02123456", RelayCommand.CLOSE_PERMITTED)
    with pytest.raises(ValueError, match="16 bytes"):
        plain.encrypt(KEY[:15])
    with pytest.raises(EncodeError, match="operator code"):
        VendorRelayPlaintext(STAMP, "1234567", "02123456", RelayCommand.TRIP).to_bytes()
    with pytest.raises(EncodeError, match="password"):
        VendorRelayPlaintext(STAMP, "12345678", "0212345Z", RelayCommand.TRIP).to_bytes()
    with pytest.raises(DecodeError, match="16"):
        VendorRelayPlaintext.from_bytes(bytes(15))
    with pytest.raises(ValueError, match="16-byte"):
        VendorAesRelayRequest(bytes(15))


def test_vendor_aes_with_the_wrong_key_does_not_decode() -> None:
    request = VendorRelayPlaintext(STAMP, "12345678", "02123456", RelayCommand.TRIP).encrypt(KEY)
    with pytest.raises(DecodeError):
        request.decrypt(bytes(16))


def test_simple_relay_frame_of_the_reference_gateway() -> None:
    wire = encode_message(METER, SimpleRelayRequest(RelayCommand.TRIP))
    assert wire.hex().upper() == "68341200000000681C014D8016"
    assert decode_message(decode_frame(wire)) == SimpleRelayRequest(RelayCommand.TRIP)


@pytest.mark.parametrize(
    "data",
    [b"", bytes(2), bytes(17), bytes(20), b"\x99"],
    ids=["empty", "two", "seventeen", "twenty-without-di", "unknown-command"],
)
def test_relay_request_layouts_reject_everything_else(data: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_relay_request(data)
