"""Abuse on loopback: many idle connections, slowloris, oversized length fields, garbage.

Each case runs against a whole ``Gateway`` (``served_gateway``) whose good meter must keep
answering throughout, and whose resident memory must stay bounded. Flooding one IP with
new connections is covered by tests/integration/test_bad_input.py
(``test_two_thousand_connections_from_one_ip``) and the transport tests; one MiB of
frame-like junk on an unidentified connection by ``test_one_megabyte_burst_…`` there.

``IVY_SOAK=1`` (``make soak``) runs the long variants: the idle connections are held for
two minutes and slowloris lasts five.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ivy_gateway.codec.dlt645 import Address, ReadAddressReply, encode_message
from ivy_gateway.codec.ivy.heartbeat import encode_heartbeat
from ivy_gateway.domain.events import EventKind
from ivy_gateway.domain.meter import MeterId

from .conftest import ATTACKER_IP, SOAK, Served, assert_served, rss_mib, served_gateway, until

IDLE_CONNECTIONS = 10_000
IDLE_HOLD_S = 120.0 if SOAK else 5.0
SLOWLORIS_CONNECTIONS = 100
SLOWLORIS_PER_IP = 64
SLOWLORIS_INTERVAL_S = 10.0  # one byte per connection every ten seconds
SLOWLORIS_RUN_S = 300.0 if SOAK else 21.0
IDLE_CLIENTS = Path(__file__).with_name("idle_clients.py")


def _start_clients(port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(IDLE_CLIENTS), "127.0.0.1", str(port), str(IDLE_CONNECTIONS),
         ATTACKER_IP],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


@pytest.mark.slow
async def test_ten_thousand_idle_connections_leave_the_good_meter_served(
    tmp_path: Path,
) -> None:
    async with served_gateway(
        tmp_path,
        max_connections=IDLE_CONNECTIONS + 100,
        max_connections_per_ip=IDLE_CONNECTIONS,
        new_connections_per_ip=IDLE_CONNECTIONS,
        identify_timeout_s=600.0,  # silent sockets are not asked who they are meanwhile
    ) as served:
        server = served.gateway.server
        assert server is not None
        before_mib = rss_mib()
        # The clients live in a child process: 10,000 sockets on each side would not fit
        # one process's descriptor limit (20,000 here).
        clients = _start_clients(served.port)
        try:
            assert clients.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(clients.stdout.readline), 120)
            held = int(line.split()[1])
            await until(
                lambda: server.stats.open >= IDLE_CONNECTIONS + 1,
                timeout_s=60,
                what=lambda: (line, server.stats),
            )
            latencies = []
            end = time.monotonic() + IDLE_HOLD_S
            while True:
                latencies.append(await assert_served(served.gateway))
                if time.monotonic() >= end:
                    break
                await asyncio.sleep(1.0)
            held_mib = rss_mib()
            open_now = server.stats.open
        finally:
            if clients.stdin is not None:
                clients.stdin.close()
            try:
                clients.wait(30)
            finally:
                clients.kill()
                clients.wait()
                if clients.stdout is not None:
                    clients.stdout.close()
        await until(lambda: server.stats.open <= 1, timeout_s=60, what=lambda: server.stats)
        per_connection_kib = (held_mib - before_mib) * 1024 / IDLE_CONNECTIONS
        print(
            f"\nidle connections: held {held} (gateway open {open_now}) for {IDLE_HOLD_S:.0f} s; "
            f"RSS {before_mib:.0f} → {held_mib:.0f} MiB ({per_connection_kib:.1f} KiB/conn); "
            f"good meter answered {len(latencies)} commands, slowest {max(latencies):.3f} s"
        )
        assert held == IDLE_CONNECTIONS
        assert open_now == IDLE_CONNECTIONS + 1
        # Bounded memory: an idle connection costs a few KiB, never its receive buffer cap.
        assert per_connection_kib < 48
        assert max(latencies) < 2.0


@pytest.mark.slow
async def test_slowloris_is_capped_per_ip_and_the_good_meter_stays_served(
    tmp_path: Path,
) -> None:
    # One byte of a plausible DL/T 645 request every ten seconds, from one address.
    trickle = encode_message(
        Address.parse("000000000099"), ReadAddressReply(Address.parse("000000000099"))
    )
    async with served_gateway(
        tmp_path,
        max_connections_per_ip=SLOWLORIS_PER_IP,
        new_connections_per_ip=1_000,
        identify_timeout_s=5.0,
    ) as served:
        server = served.gateway.server
        assert server is not None
        before_mib = rss_mib()
        writers: list[asyncio.StreamWriter] = []
        for _ in range(SLOWLORIS_CONNECTIONS):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(
                    "127.0.0.1", served.port, local_addr=(ATTACKER_IP, 0)
                )
                writers.append(writer)
        latencies: list[float] = []
        sent_bytes = 0
        try:
            started = time.monotonic()
            position = 0
            while time.monotonic() - started < SLOWLORIS_RUN_S:
                byte = trickle[position % len(trickle) : position % len(trickle) + 1]
                for writer in writers:
                    if not writer.is_closing():
                        with contextlib.suppress(ConnectionError, OSError):
                            writer.write(byte)
                            sent_bytes += 1
                position += 1
                tick = time.monotonic()
                while time.monotonic() - tick < SLOWLORIS_INTERVAL_S:
                    latencies.append(await assert_served(served.gateway))
                    await asyncio.sleep(2.0)
            attackers_open = server.stats.open - 1
            peak_mib = rss_mib()
        finally:
            for writer in writers:
                await _close(writer)
        refused = server.stats.refused_per_ip
        print(
            f"\nslowloris: {SLOWLORIS_CONNECTIONS} connections from one IP at 1 byte/"
            f"{SLOWLORIS_INTERVAL_S:.0f} s for {SLOWLORIS_RUN_S:.0f} s ({sent_bytes} bytes); "
            f"{refused} refused by the per-IP cap, {attackers_open} still open at the end; "
            f"RSS {before_mib:.0f} → {peak_mib:.0f} MiB; good meter answered "
            f"{len(latencies)} commands, slowest {max(latencies):.3f} s"
        )
        assert refused >= SLOWLORIS_CONNECTIONS - SLOWLORIS_PER_IP
        assert attackers_open <= SLOWLORIS_PER_IP
        assert max(latencies) < 2.0
        assert peak_mib - before_mib < 32


async def test_oversized_length_fields_are_not_buffered(tmp_path: Path) -> None:
    """A wrapper length of 65,535 and DL/T 645 frames with L = 255 and nonsense behind it."""
    meter = Address.parse("000000000077")
    huge_wrapper = bytes.fromhex("0001 0001 0001 FFFF") + bytes(range(256)) * 300  # ~77 KB
    huge_dlt645 = (
        b"\x68" + meter.wire + b"\x68\x91\xff" + bytes([0x55]) * 255 + b"\x00\x16"
    ) * 400  # bad checksum, 266 bytes each: ~106 KB
    async with served_gateway(tmp_path) as served:
        before_mib = rss_mib()
        outcomes: dict[str, str] = {}
        for name, prefix, payload in (
            ("wrapper, unidentified", b"", huge_wrapper),
            ("wrapper, after heartbeat", encode_heartbeat("410000000077"), huge_wrapper),
            ("dlt645, unidentified", b"", huge_dlt645),
            ("dlt645, identified", encode_message(meter, ReadAddressReply(meter)), huge_dlt645),
        ):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", served.port, local_addr=(ATTACKER_IP, 0)
            )
            try:
                writer.write(prefix)
                await writer.drain()
                await asyncio.sleep(0.2)
                with contextlib.suppress(ConnectionError, OSError):
                    for start in range(0, len(payload), 8192):
                        writer.write(payload[start : start + 8192])
                        await writer.drain()
                await assert_served(served.gateway)
                try:
                    closed = await asyncio.wait_for(reader.read(), 3) == b""
                except (TimeoutError, ConnectionError):
                    closed = False
                outcomes[name] = "closed by the gateway" if closed else "held, bytes skipped"
            finally:
                await _close(writer)
        await until(lambda: len(served.tap.kinds(EventKind.INVALID_TRAFFIC)) >= 1)
        grown = rss_mib() - before_mib
        print(f"\noversized length fields: {outcomes}; RSS growth {grown:.1f} MiB")
        assert grown < 16
        assert served.gateway.context.registry.get(MeterId("000000000042")) is not None


async def _push(
    port: int, prefix: bytes, garbage: bytes, served: Served
) -> tuple[int, int, list[float]]:
    """Write all of ``garbage`` after ``prefix``; dial again whenever the gateway hangs up.

    Returns (connections used, bytes the gateway took, command latencies meanwhile).
    """
    taken = 0
    connections = 0
    latencies: list[float] = []
    checked = 0
    while taken < len(garbage):
        connections += 1
        _, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(ATTACKER_IP, 0))
        try:
            writer.write(prefix)
            await writer.drain()
            await asyncio.sleep(0.05)  # identified before the garbage starts
            with contextlib.suppress(ConnectionError, OSError):
                while taken < len(garbage):
                    chunk = garbage[taken : taken + 16_384]
                    writer.write(chunk)
                    await writer.drain()
                    taken += len(chunk)
                    if taken - checked >= 250_000:
                        checked = taken
                        latencies.append(await assert_served(served.gateway))
        finally:
            await _close(writer)
    return connections, taken, latencies


async def test_a_million_random_bytes_into_identified_sessions(tmp_path: Path) -> None:
    """10^6 random bytes into a DLMS session (after its heartbeat) and into a DL/T 645 one.

    The gateway cuts a connection off once it has seen enough bytes that no protocol
    accepts (``unknown_traffic_limit_bytes``); the attacker simply dials again, so the
    whole million goes through the decoders.
    """
    rng = random.Random(0x6450_1E6)
    garbage = rng.randbytes(1_000_000)
    dlt645 = Address.parse("000000000078")
    prefixes = {
        "dlms": encode_heartbeat("410000000078"),
        "dlt645": encode_message(dlt645, ReadAddressReply(dlt645)),
    }
    async with served_gateway(tmp_path) as served:
        server = served.gateway.server
        assert server is not None
        bytes_before = server.stats.bytes_in
        before_mib = rss_mib()
        started = time.monotonic()
        report = {}
        latencies: list[float] = []
        for name, prefix in prefixes.items():
            connections, taken, seen = await _push(served.port, prefix, garbage, served)
            report[name] = f"{taken:,} bytes over {connections} connection(s)"
            latencies += seen
        # Every byte really went through the gateway's reads, not just into socket buffers.
        await until(lambda: server.stats.bytes_in - bytes_before >= 2 * len(garbage))
        elapsed = time.monotonic() - started
        grown = rss_mib() - before_mib
        invalid = served.tap.kinds(EventKind.INVALID_TRAFFIC)
        print(
            f"\na million garbage bytes: {report}, read by the gateway in {elapsed:.1f} s; "
            f"RSS growth {grown:.1f} MiB; invalid_traffic events {len(invalid)}; good meter "
            f"answered {len(latencies)} checks, slowest {max(latencies):.3f} s"
        )
        assert grown < 16
        assert latencies
        assert max(latencies) < 2.0
        await until(lambda: bool(served.tap.kinds(EventKind.INVALID_TRAFFIC)))
