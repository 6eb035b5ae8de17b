"""Frames as JSON-able dicts, for ``ivy-gateway decode --json`` and the test vectors.

The keys and value formats are those of ``tests/vectors/dlt645.json`` (``decoded``):
hex fields are upper-case strings, the address is printed high digit first, values are
in the meter's own unit (kW, not W) as JSON numbers, dates and times in ISO 8601.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, time
from decimal import Decimal
from functools import singledispatch

from ..errors import DecodeError
from .catalog import CATALOG, OperationStatus
from .control import Direction
from .data import ClockFormat, Demand, Value
from .decoder import NEED_DATA, FrameDecoder, RejectedFrame
from .frame import decode_frame, encode_frame
from .relay import VENDOR_RELAY_DI, RelayControlRequest, SimpleRelayRequest, VendorAesRelayRequest
from .services import (
    AckReply,
    BroadcastTimeRequest,
    ChangeBaudReply,
    ChangeBaudRequest,
    ChangePasswordReply,
    ChangePasswordRequest,
    ClearDemandRequest,
    ClearEventsRequest,
    ClearMeterRequest,
    ErrorReply,
    FreezeRequest,
    Message,
    ReadAddressReply,
    ReadAddressRequest,
    ReadFollowUpReply,
    ReadFollowUpRequest,
    ReadReply,
    ReadRequest,
    WriteAddressRequest,
    WriteRequest,
    decode_message,
    has_layout,
)

__all__ = ["describe_frame", "describe_stream"]

Fields = dict[str, object]
_DIRECTIONS = {
    Direction.MASTER_TO_SLAVE: "master_to_slave",
    Direction.SLAVE_TO_MASTER: "slave_to_master",
}
_STREAM_CHUNK = 4096


def describe_frame(data: bytes, *, vendor_key: bytes | None = None) -> Fields:
    """One frame (optionally after an ``FE`` preamble) as a dict.

    ``vendor_key`` (16 bytes) decrypts the reference gateway's AES relay frame; without it
    only the ciphertext is shown. Raises ``DecodeError`` with the offset of the bad byte.
    """
    frame = decode_frame(data)
    start = frame.preamble_len
    control = frame.control
    length = len(frame.data)
    out: Fields = {
        "protocol": "dlt645",
        "preamble_len": start,
        "address": str(frame.address),
        "control": f"{control.to_byte():02X}",
        "direction": _DIRECTIONS[control.direction],
        "abnormal": control.abnormal,
        "follow_up": control.follow_up,
        "function": f"{control.function:02X}",
        "length": length,
        "data_plain": frame.data.hex().upper(),
        "checksum": f"{data[start + 10 + length]:02X}",
    }
    if has_layout(control):
        base = start + 10  # offsets from the message layer count from the data field
        try:
            out.update(_describe(decode_message(frame), vendor_key))
        except DecodeError as exc:
            # Every message-layer error carries an offset within the data field.
            raise DecodeError(exc.reason, offset=base + (exc.offset or 0)) from exc
    return out


def describe_stream(data: bytes) -> Fields:
    """Every frame in a byte stream, the rejected candidates and the undecoded tail."""
    decoder = FrameDecoder()
    frames: list[str] = []
    rejected: list[str] = []
    for pos in range(0, len(data), _STREAM_CHUNK):
        decoder.feed(data[pos : pos + _STREAM_CHUNK])
        while (event := decoder.next_event()) is not NEED_DATA:
            if isinstance(event, RejectedFrame):
                rejected.append(event.raw.hex().upper())
            else:
                frames.append(encode_frame(replace(event, preamble_len=0)).hex().upper())
    return {
        "protocol": "dlt645",
        "frames": frames,
        "rejected": rejected,
        "leftover": decoder.pending.hex().upper(),
    }


def _json_value(value: Value) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    return value  # int (bit field) or str (digits, text); Demand is split by the caller


@singledispatch
def _describe(message: Message, key: bytes | None) -> Fields:
    # Messages without fields of their own: read-address request, acknowledgements.
    assert isinstance(message, ReadAddressRequest | AckReply), message
    return {}


@_describe.register
def _(message: ReadRequest, key: bytes | None) -> Fields:
    out: Fields = {"di": str(message.di)}
    if message.records is not None:
        out["records"] = message.records
    if message.start is not None:
        out["start"] = message.start.isoformat(timespec="minutes")
    return out


_DATE = ClockFormat(("WW", "DD", "MM", "YY"))


@_describe.register
def _(message: ReadReply, key: bytes | None) -> Fields:
    out: Fields = {"di": str(message.di), "value_raw": message.value.hex().upper()}
    entry = CATALOG.get(message.di)
    if entry is None or message.follow_up:
        return out  # unknown DI, or only the first part of a longer value
    value = entry.decode(message.value, 4)
    out.update(format=entry.format.label, unit=entry.unit)
    if isinstance(value, Demand):
        out["value"] = float(value.value)
        out["demand_time"] = None if value.time is None else value.time.isoformat("T", "minutes")
    else:
        out["value"] = _json_value(value)
    if entry.format == _DATE:
        out["weekday"] = message.value[0]  # WW was checked to be 0..6: BCD = binary
    if entry.quantity == "status_word_3":
        assert isinstance(value, int)  # status words use BitFieldFormat
        status = OperationStatus(value)
        out["relay_open"] = OperationStatus.RELAY_OPEN in status
        out["relay_command_trip"] = OperationStatus.RELAY_COMMAND_TRIP in status
    return out


@_describe.register
def _(message: ReadFollowUpRequest, key: bytes | None) -> Fields:
    return {"di": str(message.di), "seq": message.seq}


@_describe.register
def _(message: ReadFollowUpReply, key: bytes | None) -> Fields:
    return {"di": str(message.di), "value_raw": message.value.hex().upper(), "seq": message.seq}


@_describe.register
def _(message: ReadAddressReply, key: bytes | None) -> Fields:
    return {"reported_address": str(message.address)}


def _credentials(
    message: ClearDemandRequest | ClearMeterRequest | ClearEventsRequest | WriteRequest,
) -> Fields:
    return {
        "password_level": message.password.level,
        "password": message.password.digits,
        "operator_code": message.operator.digits,
    }


@_describe.register
def _(message: WriteRequest, key: bytes | None) -> Fields:
    return {
        "di": str(message.di),
        **_credentials(message),
        "value_raw": message.value.hex().upper(),
    }


@_describe.register
def _(message: WriteAddressRequest, key: bytes | None) -> Fields:
    return {"new_address": str(message.new_address)}


@_describe.register
def _(message: BroadcastTimeRequest, key: bytes | None) -> Fields:
    return {"datetime": message.time.isoformat()}


@_describe.register
def _(message: FreezeRequest, key: bytes | None) -> Fields:
    return {"freeze_mmhhDDMM": message.data().hex().upper()}


@_describe.register(ChangeBaudRequest)
@_describe.register(ChangeBaudReply)
def _(message: ChangeBaudRequest | ChangeBaudReply, key: bytes | None) -> Fields:
    return {"baud": message.baud}


@_describe.register
def _(message: ChangePasswordRequest, key: bytes | None) -> Fields:
    return {
        "di": str(message.di),
        "old_password": str(message.old),
        "new_password": str(message.new),
    }


@_describe.register
def _(message: ChangePasswordReply, key: bytes | None) -> Fields:
    return {"new_password": str(message.new)}


@_describe.register(ClearDemandRequest)
@_describe.register(ClearMeterRequest)
def _(message: ClearDemandRequest | ClearMeterRequest, key: bytes | None) -> Fields:
    return _credentials(message)


@_describe.register
def _(message: ClearEventsRequest, key: bytes | None) -> Fields:
    return {**_credentials(message), "event_di": str(message.event)}


@_describe.register
def _(message: RelayControlRequest, key: bytes | None) -> Fields:
    return {
        "password_level": message.password.level,
        "password": message.password.digits,
        "operator_code": message.operator.digits,
        "n1": f"{message.command:02X}",
        "n2": f"{message.reserved:02X}",
        "valid_until": message.valid_until.isoformat(),
    }


@_describe.register
def _(message: VendorAesRelayRequest, key: bytes | None) -> Fields:
    out: Fields = {
        "vendor_variant": "reference-js-aes-ecb",
        "di": str(VENDOR_RELAY_DI),
        "ciphertext": message.ciphertext.hex().upper(),
    }
    if key is not None:
        block = message.decrypt_block(key)
        out["plaintext"] = block.hex().upper()
        out["command"] = f"{block[14]:02X}"
    return out


@_describe.register
def _(message: SimpleRelayRequest, key: bytes | None) -> Fields:
    return {"vendor_variant": "reference-js-simple", "command": f"{message.command:02X}"}


@_describe.register
def _(message: ErrorReply, key: bytes | None) -> Fields:
    return {"error_byte": f"{message.error:02X}", "error_bits": message.error.names()}
