"""Fuzz the DL/T 645 decoders: stream ``FrameDecoder``, ``decode_frame``, ``decode_message``,
``describe_frame``.

Properties checked for every input:
- the one-shot decoders raise nothing but ``DecodeError``;
- a decoded frame encodes back to the same bytes (without its ``FE`` preamble);
- the stream decoder never raises, finds the same frames however the input is split, and
  holds fewer than one maximal frame (267 bytes incl. preamble slack) once drained.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

from fuzz.harness import fuzz_main, vector_bytes

with atheris.instrument_imports(include=["ivy_gateway"]):
    from ivy_gateway.codec.dlt645 import (
        NEED_DATA,
        FrameDecoder,
        RejectedFrame,
        decode_frame,
        decode_message,
        describe_frame,
    )
    from ivy_gateway.codec.dlt645.frame import encode_frame
    from ivy_gateway.codec.errors import DecodeError

NAME = "dlt645_frames"
VENDOR_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
MAX_HELD = 267


def _stream(data: bytes, cut: int) -> list[bytes]:
    decoder = FrameDecoder(max_buffer=4096)
    found: list[bytes] = []
    for part in (data[:cut], data[cut:]):
        decoder.feed(part)
        while (event := decoder.next_event()) is not NEED_DATA:
            if isinstance(event, RejectedFrame):
                found.append(b"rejected:" + bytes(event.raw))
            else:
                found.append(encode_frame(event))
        assert len(decoder.pending) < MAX_HELD, len(decoder.pending)
    return found


def check(data: bytes) -> None:
    try:
        frame = decode_frame(data)
    except DecodeError:
        pass
    else:
        assert encode_frame(frame).lstrip(b"\xfe") == data.lstrip(b"\xfe")
        with contextlib.suppress(DecodeError):
            decode_message(frame)
    with contextlib.suppress(DecodeError):
        describe_frame(data, vendor_key=VENDOR_KEY)
    if len(data) > 1:
        cut = data[0] % len(data)
        assert _stream(data, cut) == _stream(data, len(data))


def seeds() -> list[bytes]:
    return vector_bytes("dlt645.json")


if __name__ == "__main__":
    fuzz_main(NAME, check, seeds())
    sys.exit(0)
