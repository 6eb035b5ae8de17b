"""The load benchmark engine on a small fleet: it holds, polls, counts and cleans up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ivy_gateway.codec.dlt645 import (
    WILDCARD,
    Address,
    DataId,
    ReadAddressRequest,
    ReadRequest,
    decode_frame,
    decode_message,
    encode_message,
)
from ivy_gateway.codec.dlt645.services import ReadAddressReply, ReadReply
from ivy_gateway.loadtest import LoadPlan, MeterSwarm, format_report, meter_address, run_load


def _children() -> set[int]:
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids.update(int(p) for p in (task / "children").read_text().split())
    return pids


@pytest.mark.slow
def test_small_fleet_is_held_polled_and_counted() -> None:
    before = _children()
    plan = LoadPlan(meters=50, duration_s=3.0, poll_interval_s=2.0, warmup_s=1.0, progress_s=1.0)
    lines: list[str] = []

    report = run_load(plan, lines.append)

    assert report.held == 50
    assert report.connections == 50
    assert report.client_lost == 0
    # 50 meters × 14 quantities every 2 s ≈ 350 readings/s by the schedule.
    assert 0.5 * plan.expected_readings_per_s < report.readings_per_s
    assert report.readings_per_s < 1.5 * plan.expected_readings_per_s
    assert report.rows_stored >= report.readings  # the graceful stop drained the store
    assert report.dropped == report.sink_errors == 0
    assert report.polls > 0
    assert 13 <= report.quantities_per_poll <= 14
    assert 0 < report.poll_p50_ms <= report.poll_p99_ms <= report.poll_max_ms < 5_000
    assert 0 < report.rss_per_connection_kb < 1_000
    assert any(line.startswith("t=") for line in lines), "progress lines while measuring"
    table = "\n".join(format_report(report))
    assert "readings/s (end to end)" in table
    assert "p99 < 200 ms" in table
    assert _children() <= before, "every child process has exited"


def test_swarm_answers_reads_as_a_three_phase_meter_from_its_own_address() -> None:
    swarm = MeterSwarm()
    address = Address.parse(meter_address(7))
    request = decode_frame(encode_message(address, ReadRequest(DataId(0x02010200))))

    reply = decode_message(decode_frame(swarm.reply_for(address, request)))

    assert isinstance(reply, ReadReply)
    assert reply.di == DataId(0x02010200)
    who = decode_frame(encode_message(WILDCARD, ReadAddressRequest()))
    frame = decode_frame(swarm.reply_for(address, who))
    assert frame.address == address
    assert decode_message(frame) == ReadAddressReply(address)


def test_plan_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="meters"):
        LoadPlan(meters=0)
    with pytest.raises(ValueError, match="poll_interval_s"):
        LoadPlan(poll_interval_s=0)
    assert LoadPlan(meters=1, poll_interval_s=None).expected_readings_per_s == 0
