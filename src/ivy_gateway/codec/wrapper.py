"""The DLMS/COSEM TCP wrapper (the "IVY header", dlms.md §A1) and the stream decoder.

Wrapper header, 8 bytes, big-endian::

    offset  0          2           4                6          8
            +----------+-----------+----------------+----------+----------------
            | version  | source    | destination    | length   | APDU (length bytes)
            | 00 01    | wPort     | wPort          |          |
            +----------+-----------+----------------+----------+----------------

The EM114070 always sends source = destination = 1 and answers only packets that carry the
same (``ivy.quirks``). On one socket it may also send bare APDUs and its heartbeat
(dlms.md §A2, §A3), so ``WrapperDecoder`` finds three kinds of packet in the byte stream:

* ``00 01 <source> <destination>`` + length + APDU → ``WrappedPacket`` (or ``Heartbeat``);
* an APDU tag from §A3 → its length from the tag's rule → ``RawApdu``;
* anything else is dropped byte by byte up to the next header or known tag, reported as
  one ``Skipped`` event per run and counted.

A header is recognised by version *and* both wPorts (``00 01 00 01 00 01`` for the
EM114070), not only by the ``00 01 00 01`` of §A1: the bytes after a dropped header's first
byte are ``01 00 01 00 01 LL LL``, and a 4-byte search would take its destination and
length (``00 01 LL LL``) for a new header and swallow the packet that follows.

"Need more data" (``NEED_DATA``) and "invalid" (resync) are distinct results (STYLE.md).
"""

from __future__ import annotations

import enum
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from .buffer import ReceiveBuffer
from .dlms.axdr import decode_length as decode_var_length
from .dlms.axdr import skip_data
from .dlms.ber import decode_length as decode_ber_length
from .errors import DecodeError, EncodeError, TruncatedError
from .ivy.heartbeat import HEARTBEAT_PREFIX, HEARTBEAT_SIZE, Heartbeat, decode_heartbeat

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "HEADER_SIZE",
    "MANAGEMENT_WPORT",
    "NEED_DATA",
    "PUBLIC_CLIENT_WPORT",
    "RAW_APDU_TAGS",
    "WRAPPER_VERSION",
    "NeedData",
    "RawApdu",
    "Skipped",
    "WrappedPacket",
    "WrapperDecoder",
    "WrapperEvent",
    "WrapperHeader",
    "decode_header",
    "decode_wrapped",
    "encode_wrapped",
    "raw_apdu_length",
]

HEADER_SIZE: Final = 8
WRAPPER_VERSION: Final = 1
#: The reference gateway's sanity cap on the length field (dlms.md §A1); larger → resync.
DEFAULT_MAX_PAYLOAD: Final = 4096
#: Standard wPorts (§A1): the meter's management logical device and the public client.
MANAGEMENT_WPORT: Final = 0x0001
PUBLIC_CLIENT_WPORT: Final = 0x0010

_HEADER = struct.Struct(">HHHH")
_MAGIC = struct.Struct(">HHH")  # version, source, destination: how a header is recognised
_U16_MAX = 0xFFFF


@dataclass(frozen=True, slots=True)
class WrapperHeader:
    version: int
    source: int
    destination: int
    length: int

    def __post_init__(self) -> None:
        if self.version != WRAPPER_VERSION:
            raise EncodeError(f"wrapper version is always 1, got {self.version}")
        for name in ("source", "destination", "length"):
            if not 0 <= getattr(self, name) <= _U16_MAX:
                raise EncodeError(f"wrapper {name} {getattr(self, name)} outside 0..65535")

    def encode(self) -> bytes:
        return _HEADER.pack(self.version, self.source, self.destination, self.length)


@dataclass(frozen=True, slots=True)
class WrappedPacket:
    """A wrapper header and the APDU it carries (``len(apdu) == header.length``)."""

    header: WrapperHeader
    apdu: bytes

    def __post_init__(self) -> None:
        if len(self.apdu) != self.header.length:
            raise EncodeError(f"header says {self.header.length} bytes, APDU has {len(self.apdu)}")

    def encode(self) -> bytes:
        return self.header.encode() + self.apdu


@dataclass(frozen=True, slots=True)
class RawApdu:
    """An APDU found on the stream without a wrapper header (dlms.md §A3)."""

    apdu: bytes


@dataclass(frozen=True, slots=True)
class Skipped:
    """Bytes dropped while resynchronising; worth logging, never an error."""

    data: bytes


class NeedData(enum.Enum):
    NEED_DATA = "need_data"


#: Returned by ``WrapperDecoder.next_event`` when the buffered bytes hold no whole packet.
NEED_DATA: Final = NeedData.NEED_DATA

WrapperEvent = WrappedPacket | Heartbeat | RawApdu | Skipped


def decode_header(data: bytes | memoryview, offset: int = 0) -> WrapperHeader:
    """The header at ``offset``: ``TruncatedError`` if short, ``DecodeError`` if not version 1."""
    if len(data) - offset < HEADER_SIZE:
        raise TruncatedError("wrapper header needs 8 bytes", offset=len(data))
    version, source, destination, length = _HEADER.unpack_from(data, offset)
    if version != WRAPPER_VERSION:
        raise DecodeError(f"wrapper version {version}, expected 1", offset=offset)
    return WrapperHeader(version, source, destination, length)


def decode_wrapped(data: bytes) -> WrappedPacket:
    """Exactly one wrapped packet (any source/destination); the length must match exactly."""
    header = decode_header(data)
    end = HEADER_SIZE + header.length
    if len(data) < end:
        raise TruncatedError(f"wrapper announces {header.length} payload bytes", offset=len(data))
    if len(data) > end:
        raise DecodeError("bytes after the wrapped APDU", offset=end)
    return WrappedPacket(header, data[HEADER_SIZE:])


def encode_wrapped(apdu: bytes, *, source: int, destination: int) -> bytes:
    """Header + ``apdu``. The EM114070 needs ``source=1, destination=1`` in both directions
    (``ivy.quirks.EM114070_WPORT``); a standard client would send source 0x0010."""
    return WrapperHeader(WRAPPER_VERSION, source, destination, len(apdu)).encode() + apdu


# -- bare APDUs (dlms.md §A3) -----------------------------------------------------------

_BER_LENGTH_TAGS = frozenset(
    {
        *(0x60, 0x61, 0x62, 0x63),  # AARQ, AARE, RLRQ, RLRE (Part D, BER)
        *(0xC8, 0xC9, 0xCA, 0xCB, 0xCC, 0xCD, 0xCF),  # glo-ciphered (Part B; CE is no tag)
        *(0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD7),  # ded-ciphered (Part B; D6 is no tag)
    }
)
#: First bytes that §A3 gives a length rule for. §A4 abbreviates these as ranges
#: (``C0..C7``, ``C8..DB``); only real tags are listed so that detection never picks a
#: decoder that then cannot frame the first APDU.
RAW_APDU_TAGS: Final = _BER_LENGTH_TAGS | frozenset(
    (0x0F, 0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC7, 0xD8, 0xDB)
)
_GENERAL_GLO_CIPHERING = 0xDB
_SYSTEM_TITLE_SIZE = 8  # DB: 1 + 1 + 8 + BER length (dlms.md §A3): an 8-byte system-title
_COSEM_DATE_TIME_SIZE = 12
_INVOCATION_COUNTER_ERROR = 0x06  # D8: 4-byte expected counter follows (dlms.md §E7)
_ATTRIBUTE_DESCRIPTOR_END = 12  # C0/C1/C3 01: tag, variant, iid, class(2), OBIS(6), attr(1)


def _need(data: bytes | memoryview, size: int) -> None:
    if len(data) < size:
        raise TruncatedError(f"APDU needs at least {size} bytes", offset=len(data))


def _choice(data: bytes | memoryview, offset: int) -> int:
    """A one-byte OPTIONAL flag or CHOICE that may only be 0 or 1 in the rules below."""
    _need(data, offset + 1)
    value = data[offset]
    if value > 1:
        raise DecodeError(f"choice byte {value:#04x} is neither 00 nor 01", offset=offset)
    return value


def _apdu_end(data: bytes | memoryview) -> int:
    """Where the APDU at offset 0 ends, per §A3. The result may lie past ``len(data)`` when a
    length field announces bytes not received yet; ``TruncatedError`` means "cannot tell yet"."""
    _need(data, 2)
    tag, variant = data[0], data[1]
    if tag in _BER_LENGTH_TAGS:  # 1 + length octets + length
        length, pos = decode_ber_length(bytes(data[:6]), 1)
        return pos + length
    if tag == _GENERAL_GLO_CIPHERING:  # DB, system-title, BER-length ciphered content
        if variant != _SYSTEM_TITLE_SIZE:
            raise DecodeError("general-glo-ciphering system-title is not 8 bytes", offset=1)
        length, pos = decode_ber_length(bytes(data[:15]), 2 + _SYSTEM_TITLE_SIZE)
        return pos + length
    if tag == 0xD8:  # Exception-Response: state-error, service-error [counter]
        _need(data, 3)
        return 7 if data[2] == _INVOCATION_COUNTER_ERROR else 3
    if tag == 0xC2:  # Event-Notification-Request: time OPTIONAL, class, OBIS, attr, Data
        pos = 2
        if _choice(data, 1):
            _need(data, 3)
            if data[2] != _COSEM_DATE_TIME_SIZE:
                raise DecodeError("event notification time is not 12 bytes", offset=2)
            pos = 3 + _COSEM_DATE_TIME_SIZE
        return skip_data(data, pos + 9)
    if tag == 0x0F:  # Data-Notification: long-invoke-id(4), date-time octet-string, Data
        _need(data, 6)
        if data[5] not in (0, _COSEM_DATE_TIME_SIZE):
            raise DecodeError("data notification date-time is neither absent nor 12", offset=5)
        return skip_data(data, 6 + data[5])
    if tag == 0xC4 and variant == 1:  # GET-Response-Normal: iid, 00 Data | 01 dar
        return skip_data(data, 4) if _choice(data, 3) == 0 else 5
    if tag == 0xC4 and variant == 2:  # with-datablock: iid, last, block(4), 00 raw | 01 dar
        if _choice(data, 8):
            return 10
        length, pos = decode_var_length(data, 9)
        return pos + length
    if tag == 0xC0 and variant == 2:  # GET-Request-Next: iid, block-number(4)
        return 7
    if variant != 1:  # other variants (lists, blocks) have no §A3 rule: resync over them
        raise DecodeError(f"no length rule for APDU {tag:02X} {variant:02X}", offset=1)
    if tag == 0xC5:  # SET-Response-Normal: iid, result
        return 4
    if tag == 0xC7:  # ACTION-Response-Normal: iid, result, 00 | 01 (00 Data | 01 dar)
        if not _choice(data, 4):
            return 5
        return skip_data(data, 6) if _choice(data, 5) == 0 else 7
    # GET/SET/ACTION-Request-Normal: attribute/method descriptor, then per service:
    selective = _choice(data, _ATTRIBUTE_DESCRIPTOR_END)
    pos = _ATTRIBUTE_DESCRIPTOR_END + 1
    if tag == 0xC3:  # ACTION: 00 | 01 Data (parameters)
        return skip_data(data, pos) if selective else pos
    if selective:  # access-selection: selector(1), parameters Data
        pos = skip_data(data, pos + 1)
    return skip_data(data, pos) if tag == 0xC1 else pos  # SET carries the value too


def raw_apdu_length(data: bytes | memoryview, max_size: int = DEFAULT_MAX_PAYLOAD) -> int:
    """Length of the bare APDU at the start of ``data`` (dlms.md §A3).

    ``TruncatedError``: the bytes may still complete it. ``DecodeError``: no rule accepts it,
    or it is longer than ``max_size`` (also when that is certain before it is complete).
    """
    if data and data[0] not in RAW_APDU_TAGS:
        raise DecodeError(f"{data[0]:02X} is not an APDU tag with a length rule", offset=0)
    try:
        end = _apdu_end(data)
    except TruncatedError:
        if len(data) >= max_size:
            raise DecodeError(f"bare APDU longer than {max_size} bytes", offset=0) from None
        raise
    if end > max_size:
        raise DecodeError(f"bare APDU of {end} bytes exceeds {max_size}", offset=0)
    if end > len(data):
        raise TruncatedError(f"APDU announces {end} bytes", offset=len(data))
    return end


# -- the stream decoder -----------------------------------------------------------------


@lru_cache(maxsize=16)
def _resync_pattern(magics: tuple[bytes, ...]) -> re.Pattern[bytes]:
    """Where a packet may start: a wrapper magic, a known tag, or (only at the very end of
    the buffer) a proper prefix of a magic, which is kept for the next read (§A3)."""
    prefixes = sorted({m[:k] for m in magics for k in range(1, len(m))}, key=len, reverse=True)
    tags = b"".join(re.escape(bytes((t,))) for t in sorted(RAW_APDU_TAGS))
    alternatives = [re.escape(m) for m in magics] + [re.escape(p) + rb"\Z" for p in prefixes]
    return re.compile(b"|".join(alternatives) + b"|[" + tags + b"]")


class WrapperDecoder:
    """Sans-IO decoder for one meter connection: ``feed(bytes)``, then ``next_event()``
    until it returns ``NEED_DATA``.

    ``accepted_wports`` are the (source, destination) pairs that mark a header: ``(1, 1)``
    is what the EM114070 sends; a simulated meter listening to a standard client adds
    ``(PUBLIC_CLIENT_WPORT, MANAGEMENT_WPORT)``. Longer payloads than ``max_payload``
    are treated as garbage. ``max_buffer`` caps the unconsumed bytes: ``feed`` raises
    ``BufferOverflowError`` past it, so read at most ``free_space`` bytes per call. After
    ``next_event`` returned ``NEED_DATA`` fewer than ``8 + max_payload`` bytes are held.
    """

    __slots__ = (
        "_buffer",
        "_magics",
        "_pattern",
        "_pending",
        "heartbeats",
        "max_payload",
        "oversize_headers",
        "raw_apdus",
        "resyncs",
        "skipped_bytes",
        "wrapped_packets",
    )

    def __init__(
        self,
        *,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        max_buffer: int = 65536,
        accepted_wports: Iterable[tuple[int, int]] = ((MANAGEMENT_WPORT, MANAGEMENT_WPORT),),
    ) -> None:
        if not 0 < max_payload <= _U16_MAX:
            raise ValueError(f"max_payload {max_payload} outside 1..65535")
        if max_buffer < HEADER_SIZE + max_payload:
            raise ValueError("max_buffer must hold one header and the largest payload")
        pairs = tuple(sorted(set(accepted_wports)))
        if not pairs or not all(0 <= p <= _U16_MAX for pair in pairs for p in pair):
            raise ValueError(f"accepted_wports must be pairs of 0..65535, got {pairs}")
        self.max_payload = max_payload
        self._buffer = ReceiveBuffer(max_buffer)
        self._magics = tuple(_MAGIC.pack(WRAPPER_VERSION, *pair) for pair in pairs)
        self._pattern = _resync_pattern(self._magics)
        self._pending: WrapperEvent | None = None
        #: Counters for metrics; read them, do not write them.
        self.wrapped_packets = 0  # heartbeats not included
        self.heartbeats = 0
        self.raw_apdus = 0
        self.skipped_bytes = 0
        self.resyncs = 0  # Skipped events
        self.oversize_headers = 0  # headers whose length exceeded max_payload

    def __len__(self) -> int:
        """Bytes buffered and not yet decoded."""
        return len(self._buffer)

    @property
    def free_space(self) -> int:
        return self._buffer.max_size - len(self._buffer)

    @property
    def pending(self) -> bytes:
        """A copy of the undecoded bytes (an incomplete packet at the end of a stream)."""
        return self._buffer.peek()

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer.feed(data)

    def events(self) -> Iterator[WrapperEvent]:
        """Every event decodable from the bytes fed so far."""
        while (event := self.next_event()) is not NEED_DATA:
            yield event

    def resync(self) -> None:
        """Give up on the packet at the front (e.g. after a read timeout with a partial bare
        APDU buffered): its first byte is dropped and reported by the next ``next_event``."""
        if self._pending is None and self._buffer:
            self._pending = Skipped(self._buffer.take(1))
            self.skipped_bytes += 1
            self.resyncs += 1

    def next_event(self) -> WrapperEvent | Literal[NeedData.NEED_DATA]:
        if self._pending is not None:
            event, self._pending = self._pending, None
            return event
        result = self._parse()
        if not isinstance(result, int):  # the common case: a packet or NEED_DATA
            return result
        dropped = bytearray()
        while isinstance(result, int):
            dropped += self._buffer.take(result)
            result = self._parse()
        if result is not NEED_DATA:
            self._pending = result
        self.skipped_bytes += len(dropped)
        self.resyncs += 1
        return Skipped(bytes(dropped))

    def _parse(self) -> WrapperEvent | Literal[NeedData.NEED_DATA] | int:
        """The packet at the front (consumed), NEED_DATA, or how many garbage bytes to drop."""
        buf = self._buffer
        size = len(buf)
        if not size:
            return NEED_DATA
        if buf.startswith(self._magics):
            if size < HEADER_SIZE:
                return NEED_DATA
            version, source, destination, length = buf.unpack_from(_HEADER)
            if length > self.max_payload:
                self.oversize_headers += 1
                return self._garbage()
            if size < HEADER_SIZE + length:
                return NEED_DATA
            if length == HEARTBEAT_SIZE - HEADER_SIZE and buf.startswith(HEARTBEAT_PREFIX):
                heartbeat = self._heartbeat()
                if heartbeat is not None:
                    return heartbeat
            buf.skip(HEADER_SIZE)
            self.wrapped_packets += 1
            header = WrapperHeader(version, source, destination, length)
            return WrappedPacket(header, buf.take(length))
        first = buf[0]
        if first in RAW_APDU_TAGS:
            with buf.view() as view:
                try:
                    end = raw_apdu_length(view, self.max_payload)
                except TruncatedError:
                    return NEED_DATA
                except DecodeError:
                    end = 0
            if not end:
                return self._garbage()
            self.raw_apdus += 1
            return RawApdu(buf.take(end))
        if size < _MAGIC.size and any(magic.startswith(buf.peek()) for magic in self._magics):
            return NEED_DATA  # a header's start at the end of a read: 00, 00 01, ... (§A3)
        return self._garbage()

    def _heartbeat(self) -> Heartbeat | None:
        try:
            heartbeat = decode_heartbeat(self._buffer.peek(HEARTBEAT_SIZE))
        except DecodeError:
            return None  # not digits: an ordinary wrapped payload
        self._buffer.skip(HEARTBEAT_SIZE)
        self.heartbeats += 1
        return heartbeat

    def _garbage(self) -> int:
        """Drop the first byte and everything up to the next possible packet start."""
        found = self._buffer.search(self._pattern, 1)
        return len(self._buffer) if found < 0 else found
