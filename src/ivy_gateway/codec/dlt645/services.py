"""Requests and replies of every DL/T 645-2007 function, as typed messages (reference §5).

Each message is a frozen dataclass that knows its control code and its plain data field
(the 0x33 offset is the frame's business). ``encode_message(address, msg)`` gives wire
bytes; ``decode_message(frame)`` gives the message back, raising ``DecodeError`` when the
data field fits no layout of the frame's function (offsets relative to the data field).

Data fields, plain (``DI`` = DI0..DI3, ``PW`` = PA P0 P1 P2, ``OP`` = C0..C3):

====  =========================  ======================================================
code  request                    normal reply
====  =========================  ======================================================
11    DI [N [mm hh DD MM YY]]    91/B1: DI value
12    DI SEQ                     92/B2: DI value SEQ
13    (empty, to AA..AA)         93: address A0..A5
14    DI PW OP value             94: empty
15    new address A0..A5         95: empty (from the new address)
08    ss mm hh DD MM YY          none (broadcast)
16    mm hh DD MM (99 = every)   96: empty
17    Z (one baud bit)           97: Z
18    DI old-PW new-PW           98: new-PW
19    PW OP                      99: empty
1A    PW OP                      9A: empty
1B    PW OP DI                   9B: empty
1C    see ``relay.py``           9C: empty
====  =========================  ======================================================

Every function's abnormal reply (``C | 0xC0``) is one ERR byte: ``ErrorReply``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from ..bcd import decode_bcd, encode_bcd
from ..errors import DecodeError, EncodeError
from .address import Address
from .control import ControlCode, Direction, Function
from .credentials import OperatorCode, Password
from .data import ClockFormat, DataId
from .errors import ErrorFlags
from .frame import Frame, encode_frame
from .management import (
    BroadcastTimeRequest,
    ChangeBaudReply,
    ChangeBaudRequest,
    ChangePasswordReply,
    ChangePasswordRequest,
    ClearDemandRequest,
    ClearEventsRequest,
    ClearMeterRequest,
    FreezeRequest,
    WriteAddressRequest,
    layout_error,
    parse_address,
    parse_datetime,
)
from .relay import RelayRequest, parse_relay_request

__all__ = [
    "AckReply",
    "BroadcastTimeRequest",
    "ChangeBaudReply",
    "ChangeBaudRequest",
    "ChangePasswordReply",
    "ChangePasswordRequest",
    "ClearDemandRequest",
    "ClearEventsRequest",
    "ClearMeterRequest",
    "ErrorReply",
    "FreezeRequest",
    "Message",
    "ReadAddressReply",
    "ReadAddressRequest",
    "ReadFollowUpReply",
    "ReadFollowUpRequest",
    "ReadReply",
    "ReadRequest",
    "WriteAddressRequest",
    "WriteRequest",
    "decode_message",
    "encode_message",
]

_RECORDS_FROM = ClockFormat(("mm", "hh", "DD", "MM", "YY"))


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """0x11. ``records`` (+ ``start``) select load-profile records; plain reads omit them."""

    FUNCTION: ClassVar[Function] = Function.READ_DATA

    di: DataId
    records: int | None = None
    start: datetime | None = None

    def control(self) -> ControlCode:
        return ControlCode.request(self.FUNCTION)

    def data(self) -> bytes:
        if self.records is None:
            if self.start is not None:
                raise EncodeError("a start time needs a record count")
            return self.di.wire
        tail = b"" if self.start is None else _RECORDS_FROM.encode(self.start)
        return self.di.wire + encode_bcd(self.records, 1) + tail

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> ReadRequest:
        if len(data) not in (4, 5, 10):
            raise layout_error("read request", data)
        di = DataId.from_wire(data[:4])
        if len(data) == 4:
            return cls(di)
        records = decode_bcd(data[4:5], offset=4)
        start = parse_datetime(_RECORDS_FROM, data[5:], 5) if len(data) == 10 else None
        return cls(di, records, start)


@dataclass(frozen=True, slots=True)
class ReadReply:
    """0x91, or 0xB1 when ``follow_up`` (the master then sends ``ReadFollowUpRequest``)."""

    FUNCTION: ClassVar[Function] = Function.READ_DATA

    di: DataId
    value: bytes  #: plain value bytes, LSB first; decode with the catalogue
    follow_up: bool = False

    def control(self) -> ControlCode:
        return ControlCode.reply(self.FUNCTION, follow_up=self.follow_up)

    def data(self) -> bytes:
        return self.di.wire + self.value

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> ReadReply:
        if len(data) < 4:
            raise layout_error("read reply", data)
        return cls(DataId.from_wire(data[:4]), data[4:], control.follow_up)


@dataclass(frozen=True, slots=True)
class ReadFollowUpRequest:
    """0x12: the next part of a reply that had the follow-up bit; ``seq`` starts at 1."""

    FUNCTION: ClassVar[Function] = Function.READ_FOLLOW_UP

    di: DataId
    seq: int

    def control(self) -> ControlCode:
        return ControlCode.request(self.FUNCTION)

    def data(self) -> bytes:
        if not 0 <= self.seq <= 0xFF:
            raise EncodeError(f"SEQ {self.seq} is not a byte")
        return self.di.wire + bytes((self.seq,))

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> ReadFollowUpRequest:
        if len(data) != 5:
            raise layout_error("follow-up request", data)
        return cls(DataId.from_wire(data[:4]), data[4])


@dataclass(frozen=True, slots=True)
class ReadFollowUpReply:
    """0x92 (last part) or 0xB2 (more follows): DI, value part, SEQ."""

    FUNCTION: ClassVar[Function] = Function.READ_FOLLOW_UP

    di: DataId
    value: bytes
    seq: int
    follow_up: bool = False

    def control(self) -> ControlCode:
        return ControlCode.reply(self.FUNCTION, follow_up=self.follow_up)

    def data(self) -> bytes:
        if not 0 <= self.seq <= 0xFF:
            raise EncodeError(f"SEQ {self.seq} is not a byte")
        return self.di.wire + self.value + bytes((self.seq,))

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> ReadFollowUpReply:
        if len(data) < 5:
            raise layout_error("follow-up reply", data)
        return cls(DataId.from_wire(data[:4]), data[4:-1], data[-1], control.follow_up)


@dataclass(frozen=True, slots=True)
class ReadAddressRequest:
    """0x13, sent to the wildcard address: "who are you?"."""

    FUNCTION: ClassVar[Function] = Function.READ_ADDRESS

    def control(self) -> ControlCode:
        return ControlCode.request(self.FUNCTION)

    def data(self) -> bytes:
        return b""

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> ReadAddressRequest:
        if data:
            raise layout_error("read-address request", data)
        return cls()


@dataclass(frozen=True, slots=True)
class ReadAddressReply:
    """0x93: the meter's address, also in the frame's address field."""

    FUNCTION: ClassVar[Function] = Function.READ_ADDRESS

    address: Address

    def control(self) -> ControlCode:
        return ControlCode.reply(self.FUNCTION)

    def data(self) -> bytes:
        return self.address.wire

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> ReadAddressReply:
        return cls(parse_address(data, "read-address reply"))


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """0x14: DI, password, operator code, then the value bytes (the DI's read format)."""

    FUNCTION: ClassVar[Function] = Function.WRITE_DATA

    di: DataId
    password: Password
    operator: OperatorCode
    value: bytes

    def control(self) -> ControlCode:
        return ControlCode.request(self.FUNCTION)

    def data(self) -> bytes:
        return self.di.wire + self.password.wire + self.operator.wire + self.value

    @classmethod
    def parse(cls, data: bytes, control: ControlCode) -> WriteRequest:
        if len(data) < 12:
            raise layout_error("write request", data)
        return cls(
            DataId.from_wire(data[:4]),
            Password.from_wire(data[4:8], 4),
            OperatorCode.from_wire(data[8:12], 8),
            data[12:],
        )


@dataclass(frozen=True, slots=True)
class AckReply:
    """The empty normal reply of write, write-address, freeze, clear and relay requests."""

    function: Function

    def control(self) -> ControlCode:
        return ControlCode.reply(self.function)

    def data(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """The abnormal reply (``C | 0xC0``) of any function: one ERR byte."""

    function: Function
    error: ErrorFlags

    def control(self) -> ControlCode:
        return ControlCode.error_reply(self.function)

    def data(self) -> bytes:
        return bytes((self.error,))


Message = (
    ReadRequest
    | ReadReply
    | ReadFollowUpRequest
    | ReadFollowUpReply
    | ReadAddressRequest
    | ReadAddressReply
    | WriteRequest
    | WriteAddressRequest
    | BroadcastTimeRequest
    | FreezeRequest
    | ChangeBaudRequest
    | ChangeBaudReply
    | ChangePasswordRequest
    | ChangePasswordReply
    | ClearDemandRequest
    | ClearMeterRequest
    | ClearEventsRequest
    | AckReply
    | ErrorReply
    | RelayRequest
)

_Parser = Callable[[bytes, ControlCode], Message]
_M, _S = Direction.MASTER_TO_SLAVE, Direction.SLAVE_TO_MASTER

#: (direction, function) → data-field parser. Functions whose normal reply is empty map to
#: ``AckReply``; 0x08 has no reply at all; 0x03 and 0x1D have no layout here.
_PARSERS: dict[tuple[Direction, int], _Parser] = {
    (_M, Function.READ_DATA): ReadRequest.parse,
    (_S, Function.READ_DATA): ReadReply.parse,
    (_M, Function.READ_FOLLOW_UP): ReadFollowUpRequest.parse,
    (_S, Function.READ_FOLLOW_UP): ReadFollowUpReply.parse,
    (_M, Function.READ_ADDRESS): ReadAddressRequest.parse,
    (_S, Function.READ_ADDRESS): ReadAddressReply.parse,
    (_M, Function.WRITE_DATA): WriteRequest.parse,
    (_M, Function.WRITE_ADDRESS): WriteAddressRequest.parse,
    (_M, Function.BROADCAST_TIME): BroadcastTimeRequest.parse,
    (_M, Function.FREEZE): FreezeRequest.parse,
    (_M, Function.CHANGE_BAUD): ChangeBaudRequest.parse,
    (_S, Function.CHANGE_BAUD): ChangeBaudReply.parse,
    (_M, Function.CHANGE_PASSWORD): ChangePasswordRequest.parse,
    (_S, Function.CHANGE_PASSWORD): ChangePasswordReply.parse,
    (_M, Function.CLEAR_DEMAND): ClearDemandRequest.parse,
    (_M, Function.CLEAR_METER): ClearMeterRequest.parse,
    (_M, Function.CLEAR_EVENTS): ClearEventsRequest.parse,
    (_M, Function.RELAY_CONTROL): lambda data, _: parse_relay_request(data),
}
_ACK_FUNCTIONS = (
    Function.WRITE_DATA,
    Function.WRITE_ADDRESS,
    Function.FREEZE,
    Function.CLEAR_DEMAND,
    Function.CLEAR_METER,
    Function.CLEAR_EVENTS,
    Function.RELAY_CONTROL,
)


def _parse_ack(data: bytes, control: ControlCode) -> AckReply:
    if data:
        raise layout_error("acknowledgement", data)
    assert isinstance(control.function, Function)  # only registered for known functions
    return AckReply(control.function)


for _function in _ACK_FUNCTIONS:
    _PARSERS[(_S, _function)] = _parse_ack


def has_layout(control: ControlCode) -> bool:
    """Whether ``decode_message`` knows the data layout of frames with this control code."""
    if control.abnormal and control.is_reply:
        return isinstance(control.function, Function)
    return (control.direction, control.function) in _PARSERS


def decode_message(frame: Frame) -> Message:
    """The typed message carried by ``frame``; ``DecodeError`` if its data fits no layout."""
    control = frame.control
    if control.abnormal and control.is_reply:
        if len(frame.data) != 1 or not isinstance(control.function, Function):
            raise layout_error("abnormal reply", frame.data)
        return ErrorReply(control.function, ErrorFlags(frame.data[0]))
    parser = _PARSERS.get((control.direction, control.function))
    if parser is None:
        raise DecodeError(f"no data layout for control code {control.to_byte():02X}", offset=0)
    return parser(frame.data, control)


def encode_message(address: Address, message: Message, *, preamble_len: int = 0) -> bytes:
    """Wire bytes of ``message`` addressed to (request) or from (reply) ``address``.

    Requests to serial-bridged meters are safer with ``preamble_len=4`` (reference §1).
    """
    return encode_frame(Frame(address, message.control(), message.data(), preamble_len))
