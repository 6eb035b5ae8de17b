"""Fleet: the whole gateway under load — meters held, RSS per meter, readings/s, poll latency.

Runs ``ivy_gateway.loadtest`` (the engine behind ``ivy-gateway bench``): the gateway in one
child process, the meter swarm in another, over 127.0.0.1. Three runs, about a minute in all:

* 1,000 and 10,000 idle meters (identified and held, polling off): gateway RSS per meter;
* 2,000 three-phase meters polled every 4.8 s (≈ 6,000 readings/s by their schedule) for
  20 s: readings/s counted by the gateway, p50/p99 poll-group latency measured inside it.

Longer or larger runs: ``ivy-gateway bench --meters 10000 --duration 120 ...``.
"""

from __future__ import annotations

import resource
import sys

from harness import Row
from ivy_gateway.loadtest import LoadPlan, LoadReport, run_load

SUSTAINED = LoadPlan(meters=2_000, duration_s=20.0, poll_interval_s=4.8)


def _say(line: str) -> None:
    print(f"  fleet: {line}", file=sys.stderr, flush=True)


def _idle_rows(report: LoadReport) -> list[Row]:
    n = report.plan.meters
    note = f"{report.held:,} of {n:,} held; dial+identify {report.dial_s:.1f} s"
    return [
        Row(
            "fleet",
            f"gateway RSS per idle meter @ {n:,}",
            report.rss_per_connection_kb,
            "KB/meter",
            "< 20 KB" if n == 10_000 else "",
            f"{note}; {report.event_loop} loop",
        ),
        Row(
            "fleet", f"meters held @ {n:,}", report.held, "meters", "10,000" if n >= 10_000 else ""
        ),
    ]


def _sustained_rows(report: LoadReport) -> list[Row]:
    plan = report.plan
    what = f"{plan.meters:,} meters, group every {plan.poll_interval_s:g} s"
    note = f"{report.polls:,} polls of {report.quantities_per_poll:.1f} quantities"
    return [
        Row(
            "fleet",
            f"readings/s end to end ({what})",
            report.readings_per_s,
            "readings/s",
            "≥ 5,000",
            f"schedule {plan.expected_readings_per_s:,.0f}/s; {report.rows_stored:,} rows stored",
        ),
        Row("fleet", "poll latency p50", report.poll_p50_ms, "ms", "", note),
        Row("fleet", "poll latency p99", report.poll_p99_ms, "ms", "< 200 ms", note),
        Row(
            "fleet",
            "gateway RSS per polled meter",
            report.rss_per_meter_end_kb,
            "KB/meter",
            "< 20 KB",
            f"end of the {report.window_s:.0f} s window; store queue {report.store_queue:,}",
        ),
    ]


def results() -> list[Row]:
    soft_limit, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    rows: list[Row] = []
    for n in (1_000, 10_000):
        if n + 200 > soft_limit:
            rows.append(
                Row("fleet", f"{n:,} idle meters", 0, "skipped", "", f"ulimit -n {soft_limit}")
            )
            continue
        rows += _idle_rows(run_load(LoadPlan(meters=n, duration_s=0, poll_interval_s=None), _say))
    rows += _sustained_rows(run_load(SUSTAINED, _say))
    return rows


if __name__ == "__main__":
    for row in results():
        print(row)
