"""Pure helpers of the DLMS session: COSEM values → readings, JSON and meter identities.

* ``reading_value``: a register's raw Data × 10^scaler ÷ the profile's divisor (Wh → kWh),
  exact (``Decimal``); ``None`` for values that are not numbers.
* ``scaler_attribute``: where a class keeps its scaler_unit (3 for Register and Extended
  register, 4 for Demand register; none for the others).
* ``data_to_json``: any COSEM value as JSON-able Python (octet-strings as text when they
  are printable ASCII, else upper-case hex; date-times as ISO 8601 when they name an instant).
* ``synthetic_meter_id``: a 12-digit id for a meter that sent the all-zero placeholder
  address and has no usable serial number — ``99`` + 10 digits of a BLAKE2b hash of the
  peer ``host:port``. It is deterministic for one connection; a reconnect from another
  port gets another id, so such meters should be given an address (or a serial).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from ivy_gateway.codec.dlms import (
    BitString,
    CompactArray,
    CosemDate,
    CosemDateTime,
    CosemTime,
    Data,
    DataType,
)
from ivy_gateway.codec.errors import DecodeError
from ivy_gateway.domain.meter import ConnectionInfo, MeterId

__all__ = [
    "SERIAL_NUMBER_OBIS",
    "data_to_json",
    "meter_id_from_serial",
    "reading_value",
    "scaler_attribute",
    "synthetic_meter_id",
]

#: COSEM "device ID 1, manufacturing number" (em114070.md §1)
SERIAL_NUMBER_OBIS = "0-0:96.1.0.255"
_SCALER_ATTRIBUTES = {3: 3, 4: 3, 5: 4}
_NUMBERS = frozenset(
    {
        DataType.DOUBLE_LONG,
        DataType.DOUBLE_LONG_UNSIGNED,
        DataType.INTEGER,
        DataType.LONG,
        DataType.UNSIGNED,
        DataType.LONG_UNSIGNED,
        DataType.LONG64,
        DataType.LONG64_UNSIGNED,
        DataType.FLOAT32,
        DataType.FLOAT64,
        DataType.ENUM,
        DataType.BOOLEAN,
    }
)


def scaler_attribute(class_id: int) -> int | None:
    return _SCALER_ATTRIBUTES.get(class_id)


def reading_value(data: Data, scaler: int, divisor: int) -> Decimal | None:
    """The physical value of a register's raw ``data``, or None when it is no number."""
    if data.tag not in _NUMBERS:
        return None
    raw = data.value
    if isinstance(raw, float):
        number = Decimal(repr(raw))
    elif isinstance(raw, bool | int):
        number = Decimal(int(raw))
    else:  # pragma: no cover - the numeric tags always decode to int/float/bool
        return None
    value = number.scaleb(scaler)
    return value / divisor if divisor != 1 else value


def data_to_json(data: Data) -> Any:
    """A COSEM value as JSON-able Python (see the module notes)."""
    value = data.value
    if isinstance(value, tuple):
        return [data_to_json(item) for item in value]
    if isinstance(value, bytes):
        if value and all(0x20 <= b < 0x7F for b in value):
            return value.decode("ascii")
        return value.hex().upper()
    if isinstance(value, CosemDateTime):
        try:
            return value.to_datetime().isoformat()
        except DecodeError:
            return value.to_bytes().hex().upper()
    if isinstance(value, CosemDate | CosemTime):
        return value.to_bytes().hex().upper()
    if isinstance(value, BitString):
        bits = "".join(f"{b:08b}" for b in value.data)
        return bits[: value.length]
    if isinstance(value, CompactArray):
        return value.contents.hex().upper()
    return value


def meter_id_from_serial(data: Data) -> MeterId | None:
    """The serial number as a meter id when it is 12 digits and not the placeholder."""
    raw = data.value
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if len(text) != 12 or not text.isdigit() or set(text) == {"0"}:
        return None
    return MeterId(text)


def synthetic_meter_id(connection: ConnectionInfo) -> MeterId:
    digest = hashlib.blake2b(
        f"{connection.peer_host}:{connection.peer_port}".encode(), digest_size=8
    ).digest()
    return MeterId("99" + f"{int.from_bytes(digest, 'big') % 10**10:010d}")
