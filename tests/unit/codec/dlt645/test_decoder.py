"""The streaming decoder: chunking, resync, counters, the buffer bound (reference §1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivy_gateway.codec.dlt645 import (
    NEED_DATA,
    Address,
    ControlCode,
    Frame,
    FrameDecoder,
    Function,
    RejectedFrame,
    decode_frame,
    encode_frame,
)
from ivy_gateway.codec.errors import BufferOverflowError

VOLTAGE = bytes.fromhex("683412000000006891063334343538550A16")
FREQUENCY = bytes.fromhex("683412000000006891063533B3353583B516")
BAD_CHECKSUM = bytes.fromhex("68341200000000689106333434353855F516")


def _events(decoder: FrameDecoder) -> list[Frame | RejectedFrame]:
    out: list[Frame | RejectedFrame] = []
    while (event := decoder.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def test_empty_decoder_needs_data() -> None:
    decoder = FrameDecoder()
    assert decoder.next_event() is NEED_DATA
    assert (decoder.frames_decoded, decoder.frames_rejected, decoder.bytes_skipped) == (0, 0, 0)


def test_decoder_resyncs_after_garbage_and_counts_it() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"\x00\x55\xfe\xfe" + BAD_CHECKSUM + FREQUENCY)
    events = _events(decoder)
    assert events[0] == RejectedFrame(BAD_CHECKSUM, "checksum mismatch")
    assert events[1] == decode_frame(FREQUENCY)
    assert decoder.frames_rejected == 1
    assert decoder.frames_decoded == 1
    # 00 55, the FE FE before the rejected frame, then its 17 remaining bytes.
    assert decoder.bytes_skipped == 2 + 2 + len(BAD_CHECKSUM) - 1


def test_preamble_counts_fe_right_before_the_frame_across_chunks() -> None:
    decoder = FrameDecoder()
    for chunk in (b"\x01\xfe", b"\xfe\xfe", b"", b"\xfe" + VOLTAGE[:3], VOLTAGE[3:]):
        decoder.feed(chunk)
        events = _events(decoder)
    assert events == [decode_frame(b"\xfe" * 4 + VOLTAGE)]
    assert decoder.bytes_skipped == 1


def test_fe_bytes_before_garbage_count_as_garbage() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"\xfe\xfe\x01" + VOLTAGE)
    assert _events(decoder) == [decode_frame(VOLTAGE)]
    assert decoder.bytes_skipped == 3


def test_stray_68_is_skipped_as_garbage_not_rejected() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"\x68\x01\x02\x03\x04\x05\x06\x07" + VOLTAGE)
    assert _events(decoder) == [decode_frame(VOLTAGE)]
    assert decoder.frames_rejected == 0
    assert decoder.bytes_skipped == 8


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        (VOLTAGE[:-1] + b"\x17", "end byte is not 16"),
        (BAD_CHECKSUM, "checksum mismatch"),
        (bytes.fromhex("683F1200000000689106333434353855150016")[:-1], "address"),
    ],
)
def test_decoder_rejects_framed_candidates(candidate: bytes, reason: str) -> None:
    if reason == "address":  # fix the checksum so only the address is wrong
        body = candidate[:-2]
        candidate = body + bytes((sum(body) & 0xFF, 0x16))
    decoder = FrameDecoder()
    decoder.feed(candidate + VOLTAGE)
    events = _events(decoder)
    assert isinstance(events[0], RejectedFrame)
    assert reason in events[0].reason
    assert events[1:] == [decode_frame(VOLTAGE)]


def test_partial_frame_stays_pending() -> None:
    decoder = FrameDecoder()
    decoder.feed(VOLTAGE + VOLTAGE[:7])
    assert _events(decoder) == [decode_frame(VOLTAGE)]
    assert decoder.pending == VOLTAGE[:7]
    decoder.feed(VOLTAGE[7:12])
    assert decoder.next_event() is NEED_DATA  # L known, body still missing
    decoder.feed(VOLTAGE[12:])
    assert _events(decoder) == [decode_frame(VOLTAGE)]


def test_buffer_is_bounded() -> None:
    decoder = FrameDecoder(max_buffer=300)
    with pytest.raises(BufferOverflowError):
        decoder.feed(bytes(301))
    decoder.feed(bytes(300))
    assert decoder.next_event() is NEED_DATA
    assert decoder.pending == b""  # garbage is dropped, not kept
    decoder.feed(b"\xfe" * 300)  # a preamble flood does not grow memory either
    assert decoder.next_event() is NEED_DATA
    assert decoder.pending == b""


def test_runaway_header_holds_at_most_one_maximal_frame() -> None:
    decoder = FrameDecoder(max_buffer=267)
    decoder.feed(bytes.fromhex("68341200000000681CFF") + bytes(200))
    assert decoder.next_event() is NEED_DATA
    assert len(decoder.pending) == 210


def test_max_buffer_must_hold_one_frame() -> None:
    with pytest.raises(ValueError, match="max_buffer"):
        FrameDecoder(max_buffer=266)


@given(st.lists(st.sampled_from([VOLTAGE, FREQUENCY, BAD_CHECKSUM, b"\x00", b"\xfe\xfe", b"\x68"])),
       st.data())  # fmt: skip
def test_decoder_output_does_not_depend_on_chunking(
    parts: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(parts)
    whole = FrameDecoder()
    whole.feed(stream)
    expected = _events(whole)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    chunked = FrameDecoder()
    got: list[Frame | RejectedFrame] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        chunked.feed(stream[start:end])
        got += _events(chunked)
    assert got == expected
    assert chunked.pending == whole.pending
    assert chunked.bytes_skipped == whole.bytes_skipped


def test_many_meters_on_one_stream_decode_with_a_bounded_address_cache() -> None:
    frames = [
        Frame(Address.parse(f"{n:012d}"), ControlCode.request(Function.READ_ADDRESS))
        for n in range(40)
    ]
    decoder = FrameDecoder()
    decoder.feed(b"".join(encode_frame(f) for f in frames * 2))
    assert _events(decoder) == frames * 2
