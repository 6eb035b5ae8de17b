"""The control byte C of a DL/T 645-2007 frame (reference §3).

```
 bit  7          6           5           4 3 2 1 0
    direction  abnormal   follow-up     function code
    0 = master  1 = error  1 = more      (Function)
    1 = meter   reply      frames follow
```

A normal reply is ``request | 0x80``, an error reply ``request | 0xC0`` and a reply that
announces more data ``request | 0xA0``. A parser accepts every byte value: function codes
without a ``Function`` member (the 1997 edition's ``01``/``04``, reserved ``00``) stay
plain ints so an old meter never crashes the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ..errors import EncodeError

__all__ = ["ControlCode", "Direction", "Function"]


class Direction(IntEnum):
    """Bit 7 of the control byte."""

    MASTER_TO_SLAVE = 0
    SLAVE_TO_MASTER = 1


class Function(IntEnum):
    """Function codes (bits 4-0), numbered as in the standard's table (reference §3)."""

    SECURITY_AUTHENTICATION = 0x03  #: State Grid ESAM profile only
    BROADCAST_TIME = 0x08
    READ_DATA = 0x11
    READ_FOLLOW_UP = 0x12
    READ_ADDRESS = 0x13
    WRITE_DATA = 0x14
    WRITE_ADDRESS = 0x15
    FREEZE = 0x16
    CHANGE_BAUD = 0x17
    CHANGE_PASSWORD = 0x18
    CLEAR_DEMAND = 0x19
    CLEAR_METER = 0x1A
    CLEAR_EVENTS = 0x1B
    RELAY_CONTROL = 0x1C  #: trip / close / alarm / keep-power (remote-control profile)
    OUTPUT_SELECT = 0x1D  #: multi-function output terminal (remote-control profile)


_FUNCTIONS = {int(f): f for f in Function}

_DIRECTION_BIT = 0x80
_ABNORMAL_BIT = 0x40
_FOLLOW_UP_BIT = 0x20
_FUNCTION_MASK = 0x1F


@dataclass(frozen=True, slots=True)
class ControlCode:
    """One decoded control byte. ``function`` is a ``Function`` when the code is known."""

    function: Function | int
    direction: Direction = Direction.MASTER_TO_SLAVE
    abnormal: bool = False
    follow_up: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.function <= _FUNCTION_MASK:
            raise EncodeError(f"function code {self.function} is not 0..31")

    @classmethod
    def request(cls, function: Function) -> ControlCode:
        return cls(function)

    @classmethod
    def reply(cls, function: Function, *, follow_up: bool = False) -> ControlCode:
        return cls(function, Direction.SLAVE_TO_MASTER, follow_up=follow_up)

    @classmethod
    def error_reply(cls, function: Function) -> ControlCode:
        return cls(function, Direction.SLAVE_TO_MASTER, abnormal=True)

    @staticmethod
    def from_byte(value: int) -> ControlCode:
        """The control code for a wire byte (0..255); a table lookup, no allocation."""
        return _BY_BYTE[value]

    @property
    def is_reply(self) -> bool:
        return self.direction is Direction.SLAVE_TO_MASTER

    def to_byte(self) -> int:
        return (
            (_DIRECTION_BIT if self.direction else 0)
            | (_ABNORMAL_BIT if self.abnormal else 0)
            | (_FOLLOW_UP_BIT if self.follow_up else 0)
            | self.function
        )


def _parse(value: int) -> ControlCode:
    code = value & _FUNCTION_MASK
    return ControlCode(
        _FUNCTIONS.get(code, code),
        Direction(value >> 7),
        bool(value & _ABNORMAL_BIT),
        bool(value & _FOLLOW_UP_BIT),
    )


#: Every control byte decoded once at import: decoding a frame is then an index, which
#: matters on the hot path (one frame per meter reply).
_BY_BYTE: tuple[ControlCode, ...] = tuple(_parse(b) for b in range(256))
