"""The control byte (reference §3)."""

from __future__ import annotations

import pytest

from ivy_gateway.codec.dlt645 import ControlCode, Direction, Function
from ivy_gateway.codec.errors import EncodeError


def test_every_byte_round_trips() -> None:
    for value in range(256):
        assert ControlCode.from_byte(value).to_byte() == value


@pytest.mark.parametrize(
    ("value", "function", "direction", "abnormal", "follow_up"),
    [
        (0x11, Function.READ_DATA, Direction.MASTER_TO_SLAVE, False, False),
        (0x91, Function.READ_DATA, Direction.SLAVE_TO_MASTER, False, False),
        (0xB1, Function.READ_DATA, Direction.SLAVE_TO_MASTER, False, True),
        (0xD1, Function.READ_DATA, Direction.SLAVE_TO_MASTER, True, False),
        (0x9C, Function.RELAY_CONTROL, Direction.SLAVE_TO_MASTER, False, False),
    ],
)
def test_from_byte_splits_the_bits(
    value: int, function: Function, direction: Direction, abnormal: bool, follow_up: bool
) -> None:
    control = ControlCode.from_byte(value)
    assert control == ControlCode(function, direction, abnormal, follow_up)
    assert control.is_reply == (direction is Direction.SLAVE_TO_MASTER)


def test_unknown_function_codes_stay_plain_ints() -> None:
    control = ControlCode.from_byte(0x01)  # the 1997 edition's read
    assert control.function == 1
    assert not isinstance(control.function, Function)


def test_constructors_build_the_documented_bytes() -> None:
    assert ControlCode.request(Function.READ_DATA).to_byte() == 0x11
    assert ControlCode.reply(Function.READ_DATA).to_byte() == 0x91
    assert ControlCode.reply(Function.READ_FOLLOW_UP, follow_up=True).to_byte() == 0xB2
    assert ControlCode.error_reply(Function.WRITE_DATA).to_byte() == 0xD4


@pytest.mark.parametrize("code", [-1, 0x20])
def test_control_code_rejects_function_codes_outside_five_bits(code: int) -> None:
    with pytest.raises(EncodeError):
        ControlCode(code)
