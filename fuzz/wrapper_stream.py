"""Fuzz the IVY/DLMS wrapper layer: ``WrapperDecoder`` (stream), ``decode_wrapped``,
``decode_heartbeat``, ``describe_packet``, ``raw_apdu_length`` and ``sniff``.

Properties: the stream decoder never raises, accounts for every byte exactly once (packets
+ skipped + held), holds fewer than ``8 + max_payload`` bytes once drained, and finds the
same packets however the input is split; the single-packet entry points raise only
``DecodeError``.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

from fuzz.harness import fuzz_main, vector_bytes

with atheris.instrument_imports(include=["ivy_gateway"]):
    from ivy_gateway.codec.errors import DecodeError
    from ivy_gateway.codec.ivy.describe import describe_packet
    from ivy_gateway.codec.ivy.heartbeat import Heartbeat, decode_heartbeat
    from ivy_gateway.codec.sniff import sniff
    from ivy_gateway.codec.wrapper import (
        RawApdu,
        WrappedPacket,
        WrapperDecoder,
        decode_wrapped,
        raw_apdu_length,
    )

NAME = "wrapper_stream"
PAYLOAD_LIMITS = (16, 64, 4096)

Packet = WrappedPacket | Heartbeat | RawApdu


def _decode(data: bytes, cuts: list[int], max_payload: int) -> tuple[list[Packet], bytes]:
    decoder = WrapperDecoder(max_payload=max_payload, max_buffer=max_payload + 8 + 64)
    packets: list[Packet] = []
    skipped = bytearray()
    consumed = 0
    for end in [*cuts, len(data)]:
        while consumed < end:  # as a session reads: never more than the free space
            step = min(end - consumed, decoder.free_space)
            decoder.feed(data[consumed : consumed + step])
            consumed += step
            for event in decoder.events():
                if isinstance(event, WrappedPacket | Heartbeat | RawApdu):
                    packets.append(event)
                else:
                    skipped += event.data
            assert len(decoder) < 8 + max_payload, len(decoder)
    total = sum(len(p.apdu if isinstance(p, RawApdu) else p.encode()) for p in packets)
    assert total + len(skipped) + len(decoder) == len(data)
    return packets, bytes(skipped)


def check(data: bytes) -> None:
    for parse in (describe_packet, decode_wrapped, decode_heartbeat, raw_apdu_length):
        with contextlib.suppress(DecodeError):
            parse(data)
    sniff(data)
    if not data:
        return
    max_payload = PAYLOAD_LIMITS[data[0] % len(PAYLOAD_LIMITS)]
    whole = _decode(data, [], max_payload)
    if len(data) > 2:
        cut = 1 + data[-1] % (len(data) - 1)
        assert _decode(data, [cut], max_payload) == whole


def seeds() -> list[bytes]:
    return vector_bytes("ivy.json", "ivy_quirks.json", "dlms.json")


if __name__ == "__main__":
    fuzz_main(NAME, check, seeds())
    sys.exit(0)
