"""Relay (trip / close / alarm / keep-power) requests, function 0x1C.

Standard frame (reference §5.12), data field of 16 bytes before the 0x33 offset::

    PA P0 P1 P2 | C0 C1 C2 C3 | N1 | N2 | ss mm hh DD MM YY
    password      operator      cmd  00   command expiry (meter's local time)

The meter answers ``9C`` (L = 0) or ``DC`` + ERR. The relay state is read back from
running status word 3 (``OperationStatus.RELAY_OPEN``).

Two non-standard forms exist only because the reference JavaScript gateway sends them;
they are separate classes so that nothing picks them by accident:

* ``VendorAesRelayRequest`` (reference §5.13) — DI ``04000B01`` + one AES-128-ECB block::

      plaintext: YY MM DD hh mm ss | operator (4, as written) | password (4, as written) | cmd | 00

  No known meter is shown to accept it; use only behind a per-meter
  ``relay_frame = vendor_aes`` option.
* ``SimpleRelayRequest`` — one data byte, the command. No standard meter accepts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import ClassVar

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..errors import DecodeError, EncodeError
from .control import ControlCode, Function
from .credentials import OperatorCode, Password
from .data import ClockFormat, DataId

__all__ = [
    "VENDOR_RELAY_DI",
    "RelayCommand",
    "RelayControlRequest",
    "SimpleRelayRequest",
    "VendorAesRelayRequest",
    "VendorRelayPlaintext",
    "parse_relay_request",
]

_STANDARD_LEN = 16
_VENDOR_LEN = 20
_AES_BLOCK = 16


class RelayCommand(IntEnum):
    """N1, the control type (reference §5.12)."""

    TRIP = 0x1A  #: open the relay
    CLOSE_PERMITTED = 0x1B  #: customer may close it (button / card)
    CLOSE_DIRECT = 0x1C  #: close now (later State Grid profile; older meters reject it)
    ALARM_ON = 0x2A
    ALARM_OFF = 0x2B
    KEEP_POWER_ON = 0x3A  #: refuse any trip until released
    KEEP_POWER_OFF = 0x3B


def _command(value: int, offset: int) -> RelayCommand:
    try:
        return RelayCommand(value)
    except ValueError:
        raise DecodeError(f"relay command {value:02X} is unknown", offset=offset) from None


_EXPIRY = ClockFormat(("ss", "mm", "hh", "DD", "MM", "YY"))


@dataclass(frozen=True, slots=True)
class RelayControlRequest:
    """The standard 16-byte 0x1C request."""

    FUNCTION: ClassVar[Function] = Function.RELAY_CONTROL

    password: Password
    operator: OperatorCode
    command: RelayCommand
    #: The meter ignores the command after this time: send "now + a few minutes".
    valid_until: datetime
    reserved: int = 0  #: N2, ``00`` in the standard

    def control(self) -> ControlCode:
        return ControlCode.request(self.FUNCTION)

    def data(self) -> bytes:
        if not 0 <= self.reserved <= 0xFF:
            raise EncodeError(f"N2 {self.reserved} is not a byte")
        head = self.password.wire + self.operator.wire
        return head + bytes((self.command, self.reserved)) + _EXPIRY.encode(self.valid_until)

    @classmethod
    def parse(cls, data: bytes) -> RelayControlRequest:
        expiry = _EXPIRY.decode(data[10:16], 10)
        assert isinstance(expiry, datetime)  # the format has date and time fields
        return cls(
            Password.from_wire(data[0:4]),
            OperatorCode.from_wire(data[4:8], 4),
            _command(data[8], 8),
            expiry,
            data[9],
        )


#: The DI the reference gateway puts in front of its ciphertext (in the standard it is
#: "first monthly billing day", a parameter — the clash is why this form is opt-in).
VENDOR_RELAY_DI = DataId(0x04000B01)
_VENDOR_CLOCK = ClockFormat(("YY", "MM", "DD", "hh", "mm", "ss"))  # year first (§5.13)


def _ecb(key: bytes) -> Cipher[modes.ECB]:
    if len(key) != _AES_BLOCK:
        raise ValueError(f"the vendor relay key is 16 bytes (AES-128), not {len(key)}")
    return Cipher(algorithms.AES(key), modes.ECB())


def _hex_field(text: str, name: str) -> bytes:
    if len(text) != 8 or text.strip("0123456789abcdefABCDEF"):
        raise EncodeError(f"{name} must be 8 hex digits, not {text!r}")
    return bytes.fromhex(text)


@dataclass(frozen=True, slots=True)
class VendorRelayPlaintext:
    """The 16-byte block the reference gateway encrypts (reference §5.13)."""

    timestamp: datetime
    operator_code: str  #: 8 digits as written, sent pairwise in written order
    password: str  #: 8 digits as written, level first (``"02123456"``)
    command: RelayCommand

    def to_bytes(self) -> bytes:
        return (
            _VENDOR_CLOCK.encode(self.timestamp)
            + _hex_field(self.operator_code, "operator code")
            + _hex_field(self.password, "password")
            + bytes((self.command, 0))
        )

    @classmethod
    def from_bytes(cls, block: bytes) -> VendorRelayPlaintext:
        if len(block) != _AES_BLOCK:
            raise DecodeError(f"plaintext block is {len(block)} bytes, not 16")
        stamp = _VENDOR_CLOCK.decode(block[0:6])
        assert isinstance(stamp, datetime)  # the format has date and time fields
        operator, password = block[6:10].hex().upper(), block[10:14].hex().upper()
        return cls(stamp, operator, password, _command(block[14], 14))

    def encrypt(self, key: bytes) -> VendorAesRelayRequest:
        encryptor = _ecb(key).encryptor()
        return VendorAesRelayRequest(encryptor.update(self.to_bytes()) + encryptor.finalize())


@dataclass(frozen=True, slots=True)
class VendorAesRelayRequest:
    """NOT DL/T 645: the reference gateway's AES-128-ECB relay frame (reference §5.13)."""

    FUNCTION: ClassVar[Function] = Function.RELAY_CONTROL

    ciphertext: bytes

    def __post_init__(self) -> None:
        if len(self.ciphertext) != _AES_BLOCK:
            raise ValueError("the vendor relay ciphertext is one 16-byte AES block")

    def control(self) -> ControlCode:
        return ControlCode.request(self.FUNCTION)

    def data(self) -> bytes:
        return VENDOR_RELAY_DI.wire + self.ciphertext

    def decrypt_block(self, key: bytes) -> bytes:
        """The raw plaintext block (garbage if the key is wrong: ECB has no integrity)."""
        decryptor = _ecb(key).decryptor()
        return decryptor.update(self.ciphertext) + decryptor.finalize()

    def decrypt(self, key: bytes) -> VendorRelayPlaintext:
        return VendorRelayPlaintext.from_bytes(self.decrypt_block(key))


@dataclass(frozen=True, slots=True)
class SimpleRelayRequest:
    """NOT DL/T 645: the reference gateway's one-byte 0x1C frame (``1A`` / ``1B``)."""

    FUNCTION: ClassVar[Function] = Function.RELAY_CONTROL

    command: RelayCommand

    def control(self) -> ControlCode:
        return ControlCode.request(self.FUNCTION)

    def data(self) -> bytes:
        return bytes((self.command,))


RelayRequest = RelayControlRequest | VendorAesRelayRequest | SimpleRelayRequest


def parse_relay_request(data: bytes) -> RelayRequest:
    """Tell the three 0x1C layouts apart by length (16 standard, 20 vendor, 1 simple)."""
    if len(data) == _STANDARD_LEN:
        return RelayControlRequest.parse(data)
    if len(data) == _VENDOR_LEN:
        if data[:4] != VENDOR_RELAY_DI.wire:
            raise DecodeError("20-byte relay request without DI 04000B01", offset=0)
        return VendorAesRelayRequest(data[4:])
    if len(data) == 1:
        return SimpleRelayRequest(_command(data[0], 0))
    raise DecodeError(f"relay request of {len(data)} bytes matches no layout", offset=0)
