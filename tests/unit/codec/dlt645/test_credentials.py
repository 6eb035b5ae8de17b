"""Password and operator code (reference §5)."""

from __future__ import annotations

from typing import Any

import pytest

from ivy_gateway.codec.dlt645 import OperatorCode, Password
from ivy_gateway.codec.errors import DecodeError


def test_password_wire_and_written_forms() -> None:
    password = Password(2, "123456")
    assert password.wire == bytes.fromhex("02563412")
    assert str(password) == "02123456"
    assert Password.parse("02123456") == password
    assert Password.parse("98000000").level == 0x98
    assert Password.from_wire(password.wire) == password


def test_operator_code_wire_form() -> None:
    operator = OperatorCode("12345678")
    assert operator.wire == bytes.fromhex("78563412")
    assert str(operator) == "12345678"
    assert OperatorCode.from_wire(operator.wire) == operator


@pytest.mark.parametrize(
    ("level", "digits"),
    [(-1, "123456"), (256, "123456"), (True, "123456"), (2, "12345"), (2, "12345a")],
)
def test_password_rejects_bad_level_or_digits(level: Any, digits: str) -> None:
    with pytest.raises(ValueError, match="password"):
        Password(level, digits)


@pytest.mark.parametrize("text", ["0212345", "G2123456", "021234567"])
def test_password_parse_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError, match="password"):
        Password.parse(text)


@pytest.mark.parametrize("digits", ["1234567", "1234567x", "١٢٣٤٥٦٧٨"])
def test_operator_code_rejects_non_digits(digits: str) -> None:
    with pytest.raises(ValueError, match="operator"):
        OperatorCode(digits)


def test_from_wire_rejects_wrong_length_and_non_bcd() -> None:
    with pytest.raises(DecodeError, match="4 bytes"):
        Password.from_wire(b"\x02\x56\x34")
    with pytest.raises(DecodeError, match="4 bytes"):
        OperatorCode.from_wire(b"\x78")
    with pytest.raises(DecodeError) as info:
        Password.from_wire(bytes.fromhex("025634A2"), 4)
    assert info.value.offset == 7
    with pytest.raises(DecodeError):
        OperatorCode.from_wire(bytes.fromhex("7856341F"))
