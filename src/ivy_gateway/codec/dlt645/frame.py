"""One DL/T 645-2007 frame: encode, decode, checksum, the 0x33 offset (reference §1, §4).

```
[FE ... FE]  68  A0 A1 A2 A3 A4 A5  68  C  L  D0 ... D(L-1)  CS  16
 preamble    0   1 ............. 6  7   8  9  10 ...... 9+L  10+L 11+L   (offsets after FE)
```

* The preamble (any run of ``FE``) wakes a serial line; it is not part of the frame and
  not in the checksum.
* ``CS`` = sum of every byte from the first ``68`` to the last data byte, modulo 256 —
  over the data *as transmitted*, i.e. with the offset applied.
* Every data byte travels as ``(value + 0x33) mod 256``; ``Frame.data`` holds the plain
  bytes (offset removed), so nothing above this module ever sees the offset.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DecodeError, EncodeError, TruncatedError
from .address import Address
from .control import ControlCode

__all__ = [
    "END",
    "MAX_DATA_LEN",
    "MIN_FRAME_LEN",
    "PREAMBLE",
    "START",
    "Frame",
    "checksum",
    "decode_frame",
    "encode_frame",
    "looks_like_dlt645",
]

START = 0x68
END = 0x16
PREAMBLE = 0xFE
#: ``68`` + address + ``68`` + C + L + CS + ``16`` with no data.
MIN_FRAME_LEN = 12
#: L is one byte; the standard caps it lower per function, a parser accepts up to 255 (§1).
MAX_DATA_LEN = 255

#: The §4 offset as translation tables: one C-level pass over the data field per frame.
_PLUS_33 = bytes((b + 0x33) & 0xFF for b in range(256))
_MINUS_33 = bytes((b - 0x33) & 0xFF for b in range(256))


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame with its data field in plain form (0x33 already removed).

    ``preamble_len`` is the number of ``FE`` bytes that preceded it on the wire (decoding)
    or that ``encode_frame`` puts in front of it (encoding).
    """

    address: Address
    control: ControlCode
    data: bytes = b""
    preamble_len: int = 0


def checksum(frame_bytes: bytes) -> int:
    """CS of a frame (from the first ``68``) given without the trailing ``CS 16``."""
    return sum(frame_bytes) & 0xFF


def encode_frame(frame: Frame) -> bytes:
    """The wire bytes of ``frame``, with ``frame.preamble_len`` ``FE`` bytes in front."""
    if len(frame.data) > MAX_DATA_LEN:
        raise EncodeError(f"data field of {len(frame.data)} bytes exceeds {MAX_DATA_LEN}")
    if frame.preamble_len < 0:
        raise EncodeError(f"preamble length {frame.preamble_len} is negative")
    body = (
        b"\x68"
        + frame.address.wire
        + bytes((START, frame.control.to_byte(), len(frame.data)))
        + frame.data.translate(_PLUS_33)
    )
    return b"\xfe" * frame.preamble_len + body + bytes((sum(body) & 0xFF, END))


def frame_error(raw: bytes, start: int) -> tuple[str, int] | None:
    """Why the complete candidate frame at ``raw[start:]`` is invalid, or None if it is valid.

    The caller has checked that ``raw[start]`` is ``68`` and that ``raw`` holds at least
    ``12 + L`` bytes from ``start``. Returns (reason, offset of the offending byte).
    """
    end = start + MIN_FRAME_LEN + raw[start + 9]
    if raw[start + 7] != START:
        return ("second start byte is not 68", start + 7)
    if raw[end - 1] != END:
        return ("end byte is not 16", end - 1)
    if sum(raw[start : end - 2]) & 0xFF != raw[end - 2]:
        return ("checksum mismatch", end - 2)
    if raw[start + 1 : start + 7].translate(None, _ADDRESS_OK):
        return ("address is not BCD or AA", start + 1)
    return None


#: See ``address._VALID``; duplicated as a table here so the hot path avoids a try/except.
_ADDRESS_OK = bytes(b for b in range(256) if (b >> 4 < 10 and b & 0x0F < 10) or b == 0xAA)


def frame_at(raw: bytes, start: int, preamble_len: int, address: Address | None = None) -> Frame:
    """The ``Frame`` at ``raw[start:]``, which ``frame_error`` has accepted.

    ``address`` may be passed when the caller already holds the (equal) ``Address``: the
    stream decoder reuses one object per meter instead of building it per frame.
    """
    data_end = start + 10 + raw[start + 9]
    return Frame(
        address or Address(raw[start + 1 : start + 7]),
        ControlCode.from_byte(raw[start + 8]),
        raw[start + 10 : data_end].translate(_MINUS_33),
        preamble_len,
    )


def decode_frame(data: bytes | bytearray | memoryview) -> Frame:
    """Decode exactly one frame, optionally preceded by any number of ``FE`` bytes.

    Raises ``TruncatedError`` when the input stops inside the frame and ``DecodeError``
    (with the offset of the offending byte) for anything else: a first byte that is not
    ``68``, a bad second start or end byte, a checksum mismatch, trailing bytes.
    """
    raw = data if isinstance(data, bytes) else bytes(data)
    size = len(raw)
    start = size - len(raw.lstrip(b"\xfe"))
    if start == size:
        raise TruncatedError("no frame start after the preamble", offset=size)
    if raw[start] != START:
        raise DecodeError(f"frame must start with 68, not {raw[start]:02X}", offset=start)
    if size - start < 10:
        raise TruncatedError("input ends inside the frame header", offset=size)
    end = start + MIN_FRAME_LEN + raw[start + 9]
    if size < end:
        raise TruncatedError(f"frame needs {end - start} bytes, got {size - start}", offset=size)
    problem = frame_error(raw, start)
    if problem is not None:
        raise DecodeError(problem[0], offset=problem[1])
    if size > end:
        raise DecodeError(f"{size - end} byte(s) after the end of the frame", offset=end)
    return frame_at(raw, start, start)


def looks_like_dlt645(prefix: bytes) -> bool | None:
    """Protocol detection on a connection's first bytes (dlms.md §A4 step 1).

    Skip any ``FE`` preamble; the first other byte decides: ``68`` → True, anything else →
    False. None when ``prefix`` is empty or all ``FE`` (need more bytes).
    """
    rest = prefix.lstrip(b"\xfe")
    if not rest:
        return None
    return rest[0] == START
