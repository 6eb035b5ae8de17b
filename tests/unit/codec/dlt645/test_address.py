"""The address field (reference §2)."""

from __future__ import annotations

import pytest

from ivy_gateway.codec.dlt645 import BROADCAST, WILDCARD, Address


def test_address_prints_high_digit_first_and_sends_low_byte_first() -> None:
    address = Address.parse("000000001234")
    assert address.wire == bytes.fromhex("341200000000")
    assert str(address) == "000000001234"


def test_short_labels_are_zero_padded() -> None:
    assert Address.parse("1234") == Address.parse("000000001234")


def test_special_addresses() -> None:
    assert str(BROADCAST) == "999999999999"
    assert BROADCAST.is_broadcast
    assert str(WILDCARD) == "AAAAAAAAAAAA"
    assert WILDCARD.is_wildcard
    abbreviated = Address.parse("aaaaaaaa1234")
    assert abbreviated.wire == bytes.fromhex("3412AAAAAAAA")
    assert abbreviated.is_wildcard
    assert not abbreviated.is_broadcast
    assert not Address.parse("1234").is_wildcard


def test_matches_follows_wildcards_and_broadcast() -> None:
    meter = Address.parse("000000001234")
    assert Address.parse("AAAAAAAA1234").matches(meter)
    assert WILDCARD.matches(meter)
    assert BROADCAST.matches(meter)
    assert meter.matches(meter)
    assert not Address.parse("AAAAAAAA5678").matches(meter)


@pytest.mark.parametrize("text", ["1234567890123", "12345678901X", "0000000012 4", "1A"])
def test_parse_rejects_non_addresses(text: str) -> None:
    with pytest.raises(ValueError, match="address"):
        Address.parse(text)


@pytest.mark.parametrize("wire", [b"\x12" * 5, b"\x12" * 7, bytes.fromhex("3F1200000000")])
def test_address_rejects_wrong_length_and_non_bcd_bytes(wire: bytes) -> None:
    with pytest.raises(ValueError, match="address"):
        Address(wire)
