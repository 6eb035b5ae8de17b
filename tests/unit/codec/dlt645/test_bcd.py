"""Packed BCD (codec/bcd.py): both byte orders, round trips, every rejection."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivy_gateway.codec.bcd import (
    decode_bcd,
    decode_bcd_digits,
    encode_bcd,
    encode_bcd_digits,
    is_bcd,
)
from ivy_gateway.codec.errors import DecodeError, EncodeError


def test_decode_bcd_reads_both_byte_orders() -> None:
    assert decode_bcd(b"\x12\x34") == 1234
    assert decode_bcd(b"\x12\x34", byteorder="little") == 3412
    assert decode_bcd(b"") == 0


def test_decode_bcd_digits_keeps_leading_zeros() -> None:
    assert decode_bcd_digits(b"\x34\x12\x00", byteorder="little") == "001234"


@pytest.mark.parametrize(("raw", "bad"), [(b"\x1a", 0), (b"\x12\xa1", 1), (b"\x00\x00\xff", 2)])
def test_decode_bcd_rejects_non_digit_nibbles_with_offset(raw: bytes, bad: int) -> None:
    with pytest.raises(DecodeError) as info:
        decode_bcd(raw, offset=10)
    assert info.value.offset == 10 + bad


def test_is_bcd() -> None:
    assert is_bcd(b"\x99\x00")
    assert not is_bcd(b"\x9a")


@pytest.mark.parametrize(
    ("value", "length"), [(-1, 2), (10000, 2), (1, -1), (True, 1), (1.0, 2), ("12", 1)]
)
def test_encode_bcd_rejects_what_does_not_fit(value: Any, length: int) -> None:
    with pytest.raises(EncodeError):
        encode_bcd(value, length)


def test_encode_bcd_zero_length_is_empty() -> None:
    assert encode_bcd(0, 0) == b""


@pytest.mark.parametrize("digits", ["123", "12a4", "", "١٢"])
def test_encode_bcd_digits_rejects_non_digits_and_odd_lengths(digits: str) -> None:
    with pytest.raises(EncodeError):
        encode_bcd_digits(digits)


@given(
    st.integers(1, 8).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, 10 ** (2 * n) - 1)))
)
def test_bcd_round_trips(case: tuple[int, int]) -> None:
    length, value = case
    for order in ("big", "little"):
        raw = encode_bcd(value, length, byteorder=order)
        assert len(raw) == length
        assert is_bcd(raw)
        assert decode_bcd(raw, byteorder=order) == value
        digits = decode_bcd_digits(raw, byteorder=order)
        assert encode_bcd_digits(digits, byteorder=order) == raw


@given(st.binary(max_size=8))
def test_decode_bcd_accepts_exactly_the_bcd_bytes(raw: bytes) -> None:
    valid = all(b >> 4 < 10 and b & 15 < 10 for b in raw)
    assert is_bcd(raw) == valid
    if valid:
        assert encode_bcd(decode_bcd(raw), len(raw)) == raw
    else:
        with pytest.raises(DecodeError):
            decode_bcd(raw)
