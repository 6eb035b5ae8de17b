"""DL/T 645 codec throughput: frame decode (one-shot and streaming), encode, value decode.

The typical frame is the 20-byte forward-active-energy reply of reference §8, sent with
the ``FE FE FE FE`` preamble as serial-bridged 4G meters do. Target: ≥150,000 frames/s
decoded on one core.
"""

from __future__ import annotations

from harness import Row, rate
from ivy_gateway.codec.dlt645 import (
    NEED_DATA,
    Address,
    DataId,
    FrameDecoder,
    ReadRequest,
    decode_frame,
    decode_message,
    decode_reading,
    encode_message,
)

#: Vector ``read_response_with_preamble``: 1234.56 kWh, 4 FE + 20 frame bytes.
REPLY = bytes.fromhex("FEFEFEFE683412000000006891083333343389674533E416")
TARGET = "≥150,000/s"
_BATCH = 100


def results() -> list[Row]:
    address = Address.parse("000000001234")
    di = DataId.parse("00010000")
    request = ReadRequest(di)
    value = bytes.fromhex("56341200")

    decoder = FrameDecoder()
    batch = REPLY * _BATCH

    def stream() -> None:
        decoder.feed(batch)
        while decoder.next_event() is not NEED_DATA:
            pass

    single = FrameDecoder()

    def stream_one() -> None:  # one TCP read per reply, the common case for a meter socket
        single.feed(REPLY)
        while single.next_event() is not NEED_DATA:
            pass

    def full_reply() -> None:
        message = decode_message(decode_frame(REPLY))
        decode_reading(message.di, message.value)  # type: ignore[union-attr]

    return [
        Row(
            "dlt645",
            "decode_frame, 20-byte reply + FE preamble",
            rate(lambda: decode_frame(REPLY)),
            "frames/s",
            TARGET,
        ),
        Row(
            "dlt645",
            "FrameDecoder, same reply, 100 per feed",
            rate(stream) * _BATCH,
            "frames/s",
            TARGET,
        ),
        Row("dlt645", "FrameDecoder, same reply, 1 per feed", rate(stream_one), "frames/s", TARGET),
        Row(
            "dlt645",
            "decode_frame + decode_message + decode_reading",
            rate(full_reply),
            "replies/s",
        ),
        Row(
            "dlt645",
            "encode_message, read request with preamble",
            rate(lambda: encode_message(address, request, preamble_len=4)),
            "frames/s",
        ),
        Row(
            "dlt645",
            "decode_reading, 00010000 (XXXXXX.XX → kWh)",
            rate(lambda: decode_reading(di, value)),
            "values/s",
        ),
    ]
