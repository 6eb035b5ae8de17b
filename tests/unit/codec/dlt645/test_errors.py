"""The ERR byte of abnormal replies (reference §6)."""

from __future__ import annotations

from ivy_gateway.codec.dlt645 import ErrorFlags


def test_error_flags_name_each_set_bit_lowest_first() -> None:
    assert ErrorFlags(0x05).names() == ["other", "password_or_unauthorized"]
    assert ErrorFlags(0x02).names() == ["no_requested_data"]
    assert ErrorFlags(0).names() == []
    assert len(ErrorFlags(0xFF).names()) == 8


def test_error_flags_match_the_standard_bit_numbers() -> None:
    assert ErrorFlags.BAUD_RATE_NOT_CHANGEABLE == 1 << 3
    assert ErrorFlags.TARIFFS_EXCEEDED == 1 << 6
