"""The EM114070 heartbeat / registration packet (dlms.md §A2, em114070.md §2).

The meter sends it right after connecting (and possibly again later). It is a valid DLMS
wrapper packet whose 18-byte payload is not an APDU::

    offset  0     2     4     6     8        11                        23   24    26
            +-----+-----+-----+-----+--------+-------------------------+----+-----+
            |00 01|00 01|00 01|00 12|0A 02 0C| 12 ASCII digits         | 0D | ? ? |
            +-----+-----+-----+-----+--------+-------------------------+----+-----+
             ver   src   dst   len   fixed;   meter address            sep  trailer
                                     0C = 12  e.g. "311501114070"

Detection is exactly the §A2 rule: 26 bytes, the first 11 fixed, bytes 11..22 ASCII digits.
The separator is *not* insisted on and the trailer ("CRC" in the reference project, algorithm
unknown) is not validated (see ``quirks``). No APDU tag is ``0A``, so a payload starting
``0A 02 0C`` is never mistaken for an APDU.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DecodeError, EncodeError, TruncatedError

__all__ = [
    "ADDRESS_LENGTH",
    "HEARTBEAT_PREFIX",
    "HEARTBEAT_SIZE",
    "PLACEHOLDER_ADDRESS",
    "Heartbeat",
    "decode_heartbeat",
    "encode_heartbeat",
    "is_heartbeat",
]

#: Digits in the meter address; also the third fixed payload byte (``0C``).
ADDRESS_LENGTH = 12
#: Wrapper header ``0001 0001 0001 0012`` followed by the fixed payload start ``0A 02 0C``.
HEARTBEAT_PREFIX = bytes.fromhex("00010001000100120A020C")
HEARTBEAT_SIZE = 26
#: Sent by an unconfigured meter (em114070.md §1): not unique, identify the meter otherwise.
PLACEHOLDER_ADDRESS = "0" * ADDRESS_LENGTH
#: The separator value the reference notes document (others were seen: accepted anyway).
DEFAULT_SEPARATOR = 0x0D

_PAYLOAD_LENGTH = HEARTBEAT_SIZE - 8
_ADDRESS_START = len(HEARTBEAT_PREFIX)
_ADDRESS_END = _ADDRESS_START + ADDRESS_LENGTH


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    """One registration packet. The header fields can only take the values the detection
    rule accepts; they are kept so a decoded packet describes itself completely."""

    version: int = 1
    source: int = 1
    destination: int = 1
    length: int = _PAYLOAD_LENGTH
    meter_address: str
    separator: int = DEFAULT_SEPARATOR
    trailer: bytes = b"\x00\x00"

    def __post_init__(self) -> None:
        if (self.version, self.source, self.destination, self.length) != (1, 1, 1, 18):
            raise EncodeError("a heartbeat header is always version 1, 1 -> 1, length 18")
        address = self.meter_address
        if len(address) != ADDRESS_LENGTH or not (address.isascii() and address.isdigit()):
            raise EncodeError(f"meter address must be 12 ASCII digits, got {address!r}")
        if not 0 <= self.separator <= 0xFF:
            raise EncodeError(f"separator {self.separator} is not a byte")
        if len(self.trailer) != 2:
            raise EncodeError(f"trailer must be 2 bytes, got {len(self.trailer)}")

    @property
    def is_placeholder(self) -> bool:
        """True for the all-zero address of an unconfigured meter (not an identity)."""
        return self.meter_address == PLACEHOLDER_ADDRESS

    def encode(self) -> bytes:
        return (
            HEARTBEAT_PREFIX
            + self.meter_address.encode("ascii")
            + bytes((self.separator,))
            + self.trailer
        )


def is_heartbeat(data: bytes) -> bool:
    """The §A2 detection rule on one complete packet."""
    return (
        len(data) == HEARTBEAT_SIZE
        and data.startswith(HEARTBEAT_PREFIX)
        and data[_ADDRESS_START:_ADDRESS_END].isdigit()  # bytes.isdigit: ASCII digits only
    )


def decode_heartbeat(data: bytes) -> Heartbeat:
    """Decode exactly one 26-byte heartbeat; ``DecodeError`` (with the offending offset)
    for anything the §A2 rule rejects, ``TruncatedError`` for a prefix of one."""
    size = min(len(data), HEARTBEAT_SIZE)
    for offset in range(min(size, _ADDRESS_START)):
        if data[offset] != HEARTBEAT_PREFIX[offset]:
            raise DecodeError("not a heartbeat: fixed prefix differs", offset=offset)
    for offset in range(_ADDRESS_START, min(size, _ADDRESS_END)):
        if not 0x30 <= data[offset] <= 0x39:
            raise DecodeError("heartbeat meter address is not ASCII digits", offset=offset)
    if len(data) < HEARTBEAT_SIZE:
        raise TruncatedError(f"heartbeat needs {HEARTBEAT_SIZE} bytes", offset=len(data))
    if len(data) > HEARTBEAT_SIZE:
        raise DecodeError("bytes after the heartbeat", offset=HEARTBEAT_SIZE)
    return Heartbeat(
        meter_address=data[_ADDRESS_START:_ADDRESS_END].decode("ascii"),
        separator=data[_ADDRESS_END],
        trailer=bytes(data[_ADDRESS_END + 1 :]),
    )


def encode_heartbeat(
    meter_address: str, *, separator: int = DEFAULT_SEPARATOR, trailer: bytes = b"\x00\x00"
) -> bytes:
    """The 26 bytes a (simulated) meter sends after connecting."""
    return Heartbeat(meter_address=meter_address, separator=separator, trailer=trailer).encode()
