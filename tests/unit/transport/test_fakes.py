from __future__ import annotations

import asyncio

import pytest

from ivy_gateway.domain.errors import MeterOffline
from ivy_gateway.domain.meter import ConnectionInfo
from ivy_gateway.transport import ByteStream, StreamClosed
from ivy_gateway.transport.fakes import LoopbackPair, MemoryStream, ScriptedStream


async def read_all(stream: ByteStream, max_bytes: int = 4096) -> list[bytes]:
    chunks = []
    while chunk := await stream.read(max_bytes):
        chunks.append(chunk)
    return chunks


async def test_scripted_stream_replays_chunks_then_eof() -> None:
    stream = ScriptedStream([b"\x68\x01", b"", b"\x16"])
    assert await read_all(stream) == [b"\x68\x01", b"\x16"]
    assert await stream.read() == b""
    assert stream.bytes_in == 3


async def test_scripted_stream_splits_chunks_longer_than_max_bytes() -> None:
    stream = ScriptedStream([b"abcdefg", b"hi"])
    assert await read_all(stream, max_bytes=3) == [b"abc", b"def", b"g", b"hi"]


async def test_scripted_stream_records_writes() -> None:
    stream = ScriptedStream()
    await stream.write(b"ab")
    await stream.write(bytearray(b"cd"))
    assert stream.written == [b"ab", b"cd"]
    assert stream.output == b"abcd"
    assert stream.bytes_out == 4


async def test_scripted_stream_blocks_until_fed_when_asked() -> None:
    stream = ScriptedStream([b"first"], at_end="block")
    assert await stream.read() == b"first"
    pending = asyncio.create_task(stream.read())
    await asyncio.sleep(0.01)
    assert not pending.done()
    stream.feed(b"second")
    assert await asyncio.wait_for(pending, 1) == b"second"
    stream.feed_eof()
    assert await stream.read() == b""
    with pytest.raises(RuntimeError):
        stream.feed(b"late")


async def test_scripted_stream_close_ends_reads_and_refuses_writes() -> None:
    stream = ScriptedStream([b"unread"], at_end="block")
    await stream.aclose()
    assert stream.closed
    assert await stream.read() == b""
    with pytest.raises(StreamClosed):
        await stream.write(b"x")


async def test_scripted_stream_close_wakes_a_blocked_read() -> None:
    stream = ScriptedStream(at_end="block")
    pending = asyncio.create_task(stream.read())
    await asyncio.sleep(0)
    stream.close()
    assert await asyncio.wait_for(pending, 1) == b""


async def test_stream_closed_is_a_meter_offline_error() -> None:
    assert issubclass(StreamClosed, MeterOffline)


async def test_loopback_carries_bytes_both_ways() -> None:
    async with LoopbackPair() as pair:
        await pair.meter.write(b"\x68hello")
        assert await pair.gateway.read() == b"\x68hello"
        await pair.gateway.write(b"ack")
        assert await pair.meter.read(2) == b"ac"
        assert await pair.meter.read() == b"k"
        assert pair.meter.bytes_out == pair.gateway.bytes_in == 6
        assert pair.gateway.bytes_out == pair.meter.bytes_in == 3


async def test_loopback_close_gives_peer_remaining_bytes_then_eof() -> None:
    pair = LoopbackPair()
    await pair.meter.write(b"last words")
    await pair.meter.aclose()
    assert await read_all(pair.gateway) == [b"last words"]
    with pytest.raises(StreamClosed):
        await pair.gateway.write(b"too late")
    with pytest.raises(StreamClosed):
        await pair.meter.write(b"also too late")


async def test_loopback_close_wakes_a_blocked_reader() -> None:
    pair = LoopbackPair()
    pending = asyncio.create_task(pair.gateway.read())
    await asyncio.sleep(0)
    pair.meter.close()
    assert await asyncio.wait_for(pending, 1) == b""


async def test_loopback_write_waits_while_peer_does_not_read() -> None:
    pair = LoopbackPair(high_water_bytes=10)
    await pair.gateway.write(b"0123456789")  # at the mark: returns at once
    writer = asyncio.create_task(pair.gateway.write(b"abcdef"))
    await asyncio.sleep(0.01)
    assert not writer.done()
    assert pair.meter.buffered == 16
    assert await pair.meter.read(8) == b"01234567"
    await asyncio.wait_for(writer, 1)
    pair.close()


async def test_loopback_blocked_write_raises_when_peer_closes() -> None:
    pair = LoopbackPair(high_water_bytes=1)
    writer = asyncio.create_task(pair.gateway.write(b"never read"))
    await asyncio.sleep(0.01)
    pair.meter.close()
    with pytest.raises(StreamClosed):
        await asyncio.wait_for(writer, 1)


async def test_loopback_uses_given_connection_info() -> None:
    info = ConnectionInfo(7, "127.0.0.1", 40000)
    pair = LoopbackPair(gateway_info=info)
    assert pair.gateway.info == info
    assert pair.meter.info.connection_id != info.connection_id
    pair.close()


async def test_fakes_satisfy_the_byte_stream_protocol() -> None:
    streams: list[ByteStream] = [ScriptedStream(), LoopbackPair().meter]
    assert all(s.bytes_in == 0 for s in streams)
    assert isinstance(streams[1], MemoryStream)


async def test_reads_reject_non_positive_sizes() -> None:
    with pytest.raises(ValueError, match="positive"):
        await ScriptedStream([b"x"]).read(0)
    with pytest.raises(ValueError, match="positive"):
        await LoopbackPair().meter.read(0)
