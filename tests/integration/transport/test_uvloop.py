"""The server on uvloop, as `serve` runs it with the `fast` extra installed.

uvloop's transports are not asyncio.Transport subclasses; an isinstance check in the
protocol once refused every connection under uvloop, unnoticed because the suite ran on
the stock loop only.
"""

import asyncio

import pytest

from ivy_gateway.transport import ByteStream, StreamServer

uvloop = pytest.importorskip("uvloop", reason="uvloop (the `fast` extra) is not installed")


async def _echo(stream: ByteStream) -> None:
    while data := await stream.read():
        await stream.write(data)


async def _round_trips() -> list[bytes]:
    async with StreamServer(_echo, host="127.0.0.1", port=0) as server:
        replies = []
        for n in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"ping %d" % n)
            await writer.drain()
            async with asyncio.timeout(5):  # a refused connection must fail, not hang
                replies.append(await reader.readexactly(6))
            writer.close()
            await writer.wait_closed()
        assert server.stats.accepted == 3
        return replies


def test_server_echoes_on_uvloop() -> None:
    runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    with runner:
        assert runner.run(_round_trips()) == [b"ping 0", b"ping 1", b"ping 2"]
