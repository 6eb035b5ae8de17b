"""Child process for the abuse tests: hold many idle TCP connections to the gateway.

``python idle_clients.py HOST PORT COUNT [SOURCE_IP]`` connects ``COUNT`` sockets (from
``SOURCE_IP``, a loopback address, when given), prints ``held N failed M``, then keeps them
open and silent until its stdin closes, and exits. It runs in its own process so that the
gateway under test and its clients do not share one file-descriptor limit.
"""

from __future__ import annotations

import asyncio
import resource
import sys

_CONCURRENT_DIALS = 256


async def _hold(host: str, port: int, count: int, source: str | None) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 256)), hard))
    gate = asyncio.Semaphore(_CONCURRENT_DIALS)
    writers: list[asyncio.StreamWriter] = []
    failed = 0

    async def dial() -> None:
        nonlocal failed
        async with gate:
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port, local_addr=(source, 0) if source else None),
                    30,
                )
            except (OSError, TimeoutError):
                failed += 1
                return
            writers.append(writer)

    await asyncio.gather(*(dial() for _ in range(count)))
    print(f"held {len(writers)} failed {failed}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the test closes our stdin
    for writer in writers:
        writer.close()


def main() -> None:
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    source = sys.argv[4] if len(sys.argv) > 4 else None
    asyncio.run(_hold(host, port, count, source))


if __name__ == "__main__":
    main()
