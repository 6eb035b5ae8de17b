"""Exceptions raised by the codecs.

    CodecError
     ├── DecodeError            bytes that no rule of the standard accepts
     │    ├── TruncatedError        the input ended before the message did (a stream decoder
     │    │                         turns this into "need more data", never into a resync)
     │    ├── BufferOverflowError   a receive buffer would grow past its hard cap
     │    └── SecurityError         a ciphered APDU failed authentication or replay checks
     └── EncodeError            a message that cannot be put on the wire (value out of range)

Decoders raise only ``DecodeError`` (or a subclass) for bad input, never ``IndexError``,
``struct.error`` or ``UnicodeDecodeError``: callers catch one type and stay up.
"""

from __future__ import annotations

__all__ = [
    "BufferOverflowError",
    "CodecError",
    "DecodeError",
    "EncodeError",
    "SecurityError",
    "TruncatedError",
]


class CodecError(Exception):
    """Base of every error raised by ``ivy_gateway.codec``."""


class DecodeError(CodecError, ValueError):
    """Input bytes are not a valid message.

    ``offset`` is the byte offset (in the input given to the decoder) where the problem was
    found, when it is known.
    """

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"{message} (at byte {offset})")
        self.reason = message
        self.offset = offset


class TruncatedError(DecodeError):
    """The input stops in the middle of a message: more bytes may make it whole."""


class BufferOverflowError(DecodeError):
    """A receive buffer would exceed its configured hard size."""


class SecurityError(DecodeError):
    """A ciphered APDU could not be authenticated/deciphered, or replayed an old counter."""


class EncodeError(CodecError, ValueError):
    """A message cannot be encoded (a field out of range for the wire format)."""
