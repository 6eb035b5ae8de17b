import re
import struct

import pytest

from ivy_gateway.codec.buffer import ReceiveBuffer
from ivy_gateway.codec.errors import BufferOverflowError, TruncatedError


def test_buffer_rejects_non_positive_size() -> None:
    with pytest.raises(ValueError, match="positive"):
        ReceiveBuffer(0)


def test_empty_buffer_is_falsy_and_zero_length() -> None:
    buf = ReceiveBuffer()
    assert len(buf) == 0
    assert not buf
    assert buf.peek() == b""


def test_feed_appends_and_peek_copies() -> None:
    buf = ReceiveBuffer(16)
    buf.feed(b"abc")
    buf.feed(bytearray(b"de"))
    buf.feed(memoryview(b"f"))
    assert len(buf) == 6
    assert buf
    assert buf.peek() == b"abcdef"
    assert buf.peek(2) == b"ab"
    assert buf.peek(100) == b"abcdef"


def test_feed_past_cap_raises_and_appends_nothing() -> None:
    buf = ReceiveBuffer(4)
    buf.feed(b"abc")
    with pytest.raises(BufferOverflowError, match="cap is 4"):
        buf.feed(b"de")
    assert buf.peek() == b"abc"
    buf.feed(b"d")  # exactly at the cap is allowed
    assert len(buf) == 4


def test_cap_counts_only_unconsumed_bytes() -> None:
    buf = ReceiveBuffer(4)
    buf.feed(b"abcd")
    buf.skip(1)  # start moves; nothing compacted yet (1 consumed < 3 left)
    buf.feed(b"e")
    assert buf.peek() == b"bcde"


def test_getitem_indexes_unconsumed_bytes_and_rejects_out_of_range() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"\x01\x02\x03")
    buf.skip(1)
    assert buf[0] == 2
    assert buf[1] == 3
    with pytest.raises(IndexError):
        buf[2]
    with pytest.raises(IndexError):
        buf[-1]


def test_view_is_zero_copy_of_unconsumed_part() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"xyz")
    buf.skip(1)
    with buf.view() as view:
        assert bytes(view) == b"yz"


def test_find_is_relative_to_unconsumed_part() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"aXbX")
    buf.skip(1)
    assert buf.find(b"X") == 0
    assert buf.find(b"X", 1) == 2
    assert buf.find(ord("b")) == 1
    assert buf.find(b"Q") == -1


def test_startswith_checks_from_offset() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"--\x00\x01\x00\x01")
    buf.skip(2)
    assert buf.startswith(b"\x00\x01")
    assert buf.startswith((b"zz", b"\x00\x01\x00"))
    assert not buf.startswith(b"\x01")
    assert buf.startswith(b"\x00\x01", 2)


def test_unpack_from_reads_without_consuming() -> None:
    layout = struct.Struct(">HH")
    buf = ReceiveBuffer()
    buf.feed(b"\xff\x00\x01\x00\x02\x03")
    buf.skip(1)
    assert buf.unpack_from(layout) == (1, 2)
    assert buf.unpack_from(struct.Struct(">B"), 4) == (3,)
    assert len(buf) == 5


def test_unpack_from_rejects_short_or_negative_offsets() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"\x00\x01\x00")
    with pytest.raises(TruncatedError):
        buf.unpack_from(struct.Struct(">HH"))
    with pytest.raises(TruncatedError):
        buf.unpack_from(struct.Struct(">B"), -1)


def test_search_returns_relative_index_or_minus_one() -> None:
    pattern = re.compile(rb"\x00\x01|\x00\Z")
    buf = ReceiveBuffer()
    buf.feed(b"\x00\x01ab\x00\x01c\x00")
    buf.skip(2)
    assert buf.search(pattern) == 2
    assert buf.search(pattern, 3) == 5  # the lone 00 at the very end
    assert buf.search(re.compile(rb"Q")) == -1


def test_take_returns_and_consumes_at_most_what_is_buffered() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"hello")
    assert buf.take(2) == b"he"
    assert buf.take(10) == b"llo"
    assert len(buf) == 0
    assert buf.take(1) == b""


def test_skip_everything_resets_storage() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"abc")
    buf.skip(99)
    assert not buf
    assert buf._start == 0
    assert len(buf._data) == 0


def test_skip_compacts_when_consumed_prefix_outgrows_the_rest() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"0123456789")
    buf.skip(4)  # 4 consumed, 6 left: no compaction yet
    assert buf._start == 4
    assert len(buf._data) == 10
    buf.skip(2)  # 6 consumed, 4 left: compact
    assert buf._start == 0
    assert bytes(buf._data) == b"6789"
    assert buf.peek() == b"6789"


def test_storage_stays_bounded_under_many_small_reads() -> None:
    buf = ReceiveBuffer(64)
    for i in range(10_000):
        buf.feed(bytes((i & 0xFF,)) * 3)
        buf.skip(len(buf) - 5 if len(buf) > 40 else 2)
        # consumed prefix never outgrows the live part by more than one step
        assert len(buf._data) <= 2 * 64 + 3
    assert len(buf) <= 64


def test_clear_drops_everything() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"abc")
    buf.skip(1)
    buf.clear()
    assert not buf
    assert buf._start == 0
    buf.feed(b"z")
    assert buf.peek() == b"z"
