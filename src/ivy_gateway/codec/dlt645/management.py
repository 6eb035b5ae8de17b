"""Meter management functions: write address, broadcast time, freeze, baud rate,
password, clear demand / meter / events (reference §5.5-§5.11).

The read and write functions, the acknowledgement and error replies and the dispatch
table live in ``services.py``; the layouts are drawn there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from ..bcd import decode_bcd, encode_bcd
from ..errors import DecodeError, EncodeError
from .address import Address
from .control import ControlCode, Function
from .credentials import OperatorCode, Password
from .data import ClockFormat, DataId

__all__ = [
    "ALL_EVENTS",
    "BroadcastTimeRequest",
    "ChangeBaudReply",
    "ChangeBaudRequest",
    "ChangePasswordReply",
    "ChangePasswordRequest",
    "ClearDemandRequest",
    "ClearEventsRequest",
    "ClearMeterRequest",
    "FreezeRequest",
    "WriteAddressRequest",
]

_TIMESTAMP = ClockFormat(("ss", "mm", "hh", "DD", "MM", "YY"))
#: Bits of the baud-rate word Z (reference §5.8); bits 0 and 7 are reserved.
_BAUD_BITS = {600: 0x02, 1200: 0x04, 2400: 0x08, 4800: 0x10, 9600: 0x20, 19200: 0x40}
_BAUD_BY_BIT = {bit: baud for baud, bit in _BAUD_BITS.items()}


def layout_error(name: str, data: bytes) -> DecodeError:
    return DecodeError(f"{name}: a data field of {len(data)} bytes fits no layout", offset=0)


def parse_datetime(fmt: ClockFormat, raw: bytes, offset: int) -> datetime:
    value = fmt.decode(raw, offset)
    assert isinstance(value, datetime)  # callers pass formats with date and time fields
    return value


def parse_address(data: bytes, what: str) -> Address:
    if len(data) != 6:
        raise layout_error(what, data)
    try:
        return Address(data)
    except ValueError as exc:
        raise DecodeError(str(exc), offset=0) from None


@dataclass(frozen=True, slots=True)
class WriteAddressRequest:
    """0x15, sent to the wildcard address; the meter must be in programming mode."""

    FUNCTION: ClassVar[Function] = Function.WRITE_ADDRESS

    new_address: Address

    def control(self) -> ControlCode:
        return ControlCode.request(self.FUNCTION)

    def data(self) -> bytes:
        return self.new_address.wire

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> WriteAddressRequest:
        return cls(parse_address(data, "write-address request"))


@dataclass(frozen=True, slots=True)
class BroadcastTimeRequest:
    """0x08 to ``999999999999``: set the clock (small corrections only); never answered."""

    FUNCTION: ClassVar[Function] = Function.BROADCAST_TIME

    time: datetime

    def control(self) -> ControlCode:
        return ControlCode.request(self.FUNCTION)

    def data(self) -> bytes:
        return _TIMESTAMP.encode(self.time)

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> BroadcastTimeRequest:
        if len(data) != 6:
            raise layout_error("broadcast time", data)
        return cls(parse_datetime(_TIMESTAMP, data, 0))


#: FreezeRequest fields: (name, lowest, highest) in wire order; None on the wire is 99.
_FREEZE_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12))
_EVERY = 99


@dataclass(frozen=True, slots=True)
class FreezeRequest:
    """0x16: freeze at ``mm hh DD MM``; None = every (all None = freeze now)."""

    FUNCTION: ClassVar[Function] = Function.FREEZE

    minute: int | None = None
    hour: int | None = None
    day: int | None = None
    month: int | None = None

    def control(self) -> ControlCode:
        return ControlCode.request(self.FUNCTION)

    def data(self) -> bytes:
        out = bytearray()
        for (name, low, high), value in zip(_FREEZE_FIELDS, self._fields(), strict=True):
            if value is not None and not low <= value <= high:
                raise EncodeError(f"freeze {name} {value} is not {low}..{high}")
            out += encode_bcd(_EVERY if value is None else value, 1)
        return bytes(out)

    def _fields(self) -> tuple[int | None, ...]:
        return (self.minute, self.hour, self.day, self.month)

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> FreezeRequest:
        if len(data) != 4:
            raise layout_error("freeze request", data)
        fields: list[int | None] = []
        for i, (name, low, high) in enumerate(_FREEZE_FIELDS):
            value = decode_bcd(data[i : i + 1], offset=i)
            if value != _EVERY and not low <= value <= high:
                raise DecodeError(f"freeze {name} {value} is not {low}..{high}", offset=i)
            fields.append(None if value == _EVERY else value)
        return cls(*fields)


def _baud_word(baud: int) -> bytes:
    if baud not in _BAUD_BITS:
        raise EncodeError(f"{baud} bit/s is not one of {sorted(_BAUD_BITS)}")
    return bytes((_BAUD_BITS[baud],))


def _parse_baud(data: bytes, what: str) -> int:
    if len(data) != 1:
        raise layout_error(what, data)
    if data[0] not in _BAUD_BY_BIT:
        raise DecodeError(f"baud-rate word {data[0]:02X} is not one known bit", offset=0)
    return _BAUD_BY_BIT[data[0]]


@dataclass(frozen=True, slots=True)
class ChangeBaudRequest:
    """0x17: switch the serial line to ``baud`` bit/s (meaningless over 4G)."""

    FUNCTION: ClassVar[Function] = Function.CHANGE_BAUD

    baud: int

    def control(self) -> ControlCode:
        return ControlCode.request(self.FUNCTION)

    def data(self) -> bytes:
        return _baud_word(self.baud)

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> ChangeBaudRequest:
        return cls(_parse_baud(data, "baud request"))


@dataclass(frozen=True, slots=True)
class ChangeBaudReply:
    """0x97: the accepted baud rate; the meter switches after sending it."""

    FUNCTION: ClassVar[Function] = Function.CHANGE_BAUD

    baud: int

    def control(self) -> ControlCode:
        return ControlCode.reply(self.FUNCTION)

    def data(self) -> bytes:
        return _baud_word(self.baud)

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> ChangeBaudReply:
        return cls(_parse_baud(data, "baud reply"))


@dataclass(frozen=True, slots=True)
class ChangePasswordRequest:
    """0x18: ``di`` = 04000C01..04000C0A names the level being changed."""

    FUNCTION: ClassVar[Function] = Function.CHANGE_PASSWORD

    di: DataId
    old: Password
    new: Password

    def control(self) -> ControlCode:
        return ControlCode.request(self.FUNCTION)

    def data(self) -> bytes:
        return self.di.wire + self.old.wire + self.new.wire

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> ChangePasswordRequest:
        if len(data) != 12:
            raise layout_error("change-password request", data)
        old = Password.from_wire(data[4:8], 4)
        return cls(DataId.from_wire(data[:4]), old, Password.from_wire(data[8:12], 8))


@dataclass(frozen=True, slots=True)
class ChangePasswordReply:
    """0x98: echoes the new password."""

    FUNCTION: ClassVar[Function] = Function.CHANGE_PASSWORD

    new: Password

    def control(self) -> ControlCode:
        return ControlCode.reply(self.FUNCTION)

    def data(self) -> bytes:
        return self.new.wire

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> ChangePasswordReply:
        if len(data) != 4:
            raise layout_error("change-password reply", data)
        return cls(Password.from_wire(data))


def _credentials(data: bytes) -> tuple[Password, OperatorCode]:
    return Password.from_wire(data[0:4]), OperatorCode.from_wire(data[4:8], 4)


@dataclass(frozen=True, slots=True)
class ClearDemandRequest:
    """0x19: reset maximum demand."""

    FUNCTION: ClassVar[Function] = Function.CLEAR_DEMAND

    password: Password
    operator: OperatorCode

    def control(self) -> ControlCode:
        return ControlCode.request(self.FUNCTION)

    def data(self) -> bytes:
        return self.password.wire + self.operator.wire

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> ClearDemandRequest:
        if len(data) != 8:
            raise layout_error("clear-demand request", data)
        return cls(*_credentials(data))


@dataclass(frozen=True, slots=True)
class ClearMeterRequest:
    """0x1A: erase energy registers and records. Never send it from production code."""

    FUNCTION: ClassVar[Function] = Function.CLEAR_METER

    password: Password
    operator: OperatorCode

    def control(self) -> ControlCode:
        return ControlCode.request(self.FUNCTION)

    def data(self) -> bytes:
        return self.password.wire + self.operator.wire

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> ClearMeterRequest:
        if len(data) != 8:
            raise layout_error("clear-meter request", data)
        return cls(*_credentials(data))


#: ``FFFFFFFF`` clears every event record (reference §5.11).
ALL_EVENTS = DataId(0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class ClearEventsRequest:
    """0x1B: ``event`` names the record; ``ALL_EVENTS``, or DI0 = FF for one event type."""

    FUNCTION: ClassVar[Function] = Function.CLEAR_EVENTS

    password: Password
    operator: OperatorCode
    event: DataId = ALL_EVENTS

    def control(self) -> ControlCode:
        return ControlCode.request(self.FUNCTION)

    def data(self) -> bytes:
        return self.password.wire + self.operator.wire + self.event.wire

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> ClearEventsRequest:
        if len(data) != 12:
            raise layout_error("clear-events request", data)
        return cls(*_credentials(data), DataId.from_wire(data[8:12]))
