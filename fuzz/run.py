"""Run every fuzz harness for a bounded time or number of executions; print a result table.

::

    python fuzz/run.py --seconds 10                 # CI: each harness for 10 s
    python fuzz/run.py --runs 1000000               # soak: one million executions each
    python fuzz/run.py --runs 1000000 --only axdr_data --parallel 2

Each harness runs in its own process (libFuzzer owns the process and exits it). Exit
status: 0 when every harness finished clean, 1 when any found a crash (its input is in
``fuzz/crashes/``: turn it into a test vector, fix, re-run).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HARNESSES = ("dlt645_frames", "wrapper_stream", "dlms_apdu", "axdr_data", "mqtt_command")

_DONE = re.compile(r"Done (\d+) runs in (\d+) second")
_EXECUTED = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_COVERAGE = re.compile(r"cov: (\d+) ft: (\d+) corp: (\d+)")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")


@dataclass(frozen=True, slots=True)
class FuzzResult:
    harness: str
    executions: int
    seconds: float
    coverage: int
    corpus: int
    exit_code: int
    artifact: str | None

    @property
    def clean(self) -> bool:
        return self.exit_code == 0 and self.artifact is None

    def row(self) -> str:
        rate = self.executions / self.seconds if self.seconds > 0 else 0.0
        outcome = "clean" if self.clean else f"CRASH (exit {self.exit_code}) {self.artifact or ''}"
        return (
            f"| {self.harness:<15} | {self.executions:>10,} | {self.seconds:>8.1f} | "
            f"{rate:>8,.0f} | {self.coverage:>5} | {self.corpus:>6} | {outcome} |"
        )


def run_harness(
    name: str, *, seconds: float | None, runs: int | None, timeout_s: float | None = None
) -> FuzzResult:
    """One harness in a child process; its libFuzzer output parsed into a ``FuzzResult``."""
    command = [sys.executable, "-m", f"fuzz.{name}", "-print_final_stats=1"]
    if runs is not None:
        command.append(f"-runs={runs}")
    if seconds is not None:
        command.append(f"-max_total_time={max(1, round(seconds))}")
    started = time.monotonic()
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout_s, check=False, cwd=ROOT
    )
    elapsed = time.monotonic() - started
    output = proc.stderr + proc.stdout
    executed = _EXECUTED.search(output)
    done = _DONE.search(output)
    executions = int(executed.group(1)) if executed else int(done.group(1)) if done else 0
    coverage = _COVERAGE.findall(output)
    artifact = _ARTIFACT.search(output)
    if proc.returncode != 0:
        sys.stderr.write(output[-4000:])
    return FuzzResult(
        harness=name,
        executions=executions,
        seconds=elapsed,
        coverage=int(coverage[-1][0]) if coverage else 0,
        corpus=int(coverage[-1][2]) if coverage else 0,
        exit_code=proc.returncode,
        artifact=artifact.group(1) if artifact else None,
    )


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, help="time limit per harness")
    parser.add_argument("--runs", type=int, help="executions per harness")
    parser.add_argument("--only", action="append", choices=HARNESSES, help="repeatable")
    parser.add_argument("--parallel", type=int, default=1, help="harnesses at once")
    args = parser.parse_args(argv)
    if args.seconds is None and args.runs is None:
        parser.error("give --seconds and/or --runs (a bound)")
    names = args.only or list(HARNESSES)
    _say("| harness         | executions |  seconds |   exec/s |   cov | corpus | result |")
    _say("|-----------------|-----------:|---------:|---------:|------:|-------:|--------|")
    results: list[FuzzResult] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        futures = [
            pool.submit(run_harness, name, seconds=args.seconds, runs=args.runs) for name in names
        ]
        for future in futures:
            result = future.result()
            results.append(result)
            _say(result.row())
    return 0 if all(r.clean for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
