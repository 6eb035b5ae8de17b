"""JSON-ready views of IVY/DLMS transport bytes, for ``ivy-gateway decode --json``.

Keys and values match the ``decoded`` objects of ``tests/vectors/ivy.json`` exactly, plus
``"protocol": "ivy_dlms"`` at the top level. Hex is upper case, as in the vectors.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import DecodeError
from ..wrapper import (
    DEFAULT_MAX_PAYLOAD,
    HEADER_SIZE,
    MANAGEMENT_WPORT,
    RawApdu,
    WrappedPacket,
    WrapperDecoder,
    decode_wrapped,
    raw_apdu_length,
)
from .heartbeat import Heartbeat, decode_heartbeat, is_heartbeat

__all__ = ["PROTOCOL", "describe_packet", "describe_stream"]

PROTOCOL = "ivy_dlms"
# A single bare APDU is framed by its own length rule; no stream cap applies to it.
_NO_CAP = 1 << 40


def describe_packet(data: bytes) -> dict[str, object]:
    """One complete packet: heartbeat, wrapped APDU (any wPorts) or bare APDU.

    ``TruncatedError`` if ``data`` is the start of a packet, ``DecodeError`` otherwise
    (including bytes left after the packet: use ``describe_stream``).
    """
    if is_heartbeat(data):
        heartbeat = decode_heartbeat(data)
        return {
            "protocol": PROTOCOL,
            "type": "heartbeat",
            "version": heartbeat.version,
            "source": heartbeat.source,
            "destination": heartbeat.destination,
            "length": heartbeat.length,
            "meter_address": heartbeat.meter_address,
            "separator": f"{heartbeat.separator:02X}",
            "trailer": heartbeat.trailer.hex().upper(),
        }
    if data[:1] == b"\x00":  # no APDU tag is 00: a wrapper header (§A1)
        packet = decode_wrapped(data)
        header = packet.header
        return {
            "protocol": PROTOCOL,
            "type": "dlms",
            "version": header.version,
            "source": header.source,
            "destination": header.destination,
            "length": header.length,
            "apdu": packet.apdu.hex().upper(),
        }
    end = raw_apdu_length(data, _NO_CAP)
    if end != len(data):
        raise DecodeError("bytes after the APDU", offset=end)
    return {"protocol": PROTOCOL, "type": "raw_dlms", "apdu": data.hex().upper()}


def describe_stream(
    data: bytes,
    *,
    accepted_wports: Iterable[tuple[int, int]] = ((MANAGEMENT_WPORT, MANAGEMENT_WPORT),),
) -> dict[str, object]:
    """Everything ``WrapperDecoder`` finds in ``data``; never raises for bad bytes.

    ``skipped`` (all resync-dropped bytes) appears only when something was skipped, as in
    the vectors; ``leftover`` is the incomplete tail.
    """
    decoder = WrapperDecoder(
        max_buffer=max(len(data), HEADER_SIZE + DEFAULT_MAX_PAYLOAD),
        accepted_wports=accepted_wports,
    )
    decoder.feed(data)
    packets: list[dict[str, str]] = []
    skipped = bytearray()
    for event in decoder.events():
        if isinstance(event, Heartbeat):
            packets.append({"type": "heartbeat", "meter_address": event.meter_address})
        elif isinstance(event, WrappedPacket):
            packets.append({"type": "dlms", "apdu": event.apdu.hex().upper()})
        elif isinstance(event, RawApdu):
            packets.append({"type": "raw_dlms", "apdu": event.apdu.hex().upper()})
        else:
            skipped += event.data
    result: dict[str, object] = {"protocol": PROTOCOL, "packets": packets}
    if skipped:
        result["skipped"] = skipped.hex().upper()
    result["leftover"] = decoder.pending.hex().upper()
    return result
