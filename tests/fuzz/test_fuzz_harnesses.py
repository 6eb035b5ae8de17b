"""The CI job for the coverage-guided fuzz harnesses in ``fuzz/`` (atheris + libFuzzer).

Each harness runs in a child process for ``IVY_FUZZ_SECONDS`` (default 4 s), starting from
a fresh corpus seeded with the test vectors, and must end clean: libFuzzer exits 0 and
writes no crash input. The long runs (one million executions each) are ``make soak``;
their results are in docs/reliability.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
HARNESSES = ("dlt645_frames", "wrapper_stream", "dlms_apdu", "axdr_data", "mqtt_command")
SECONDS = int(os.environ.get("IVY_FUZZ_SECONDS", "4"))
# Fewer executions than this in SECONDS means the harness is not really fuzzing.
MIN_EXECUTIONS = 1_000

pytest.importorskip("atheris", reason="atheris is a dev dependency (pip install -e '.[dev]')")


def _fuzz(harness: str, corpus: Path, artifacts: Path, *extra: str) -> tuple[int, str]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            f"fuzz.{harness}",
            f"-max_total_time={SECONDS}",
            "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/",
            *extra,
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 60,
        check=False,
        cwd=FUZZ.parent,
    )
    return proc.returncode, proc.stderr + proc.stdout


@pytest.mark.parametrize("harness", HARNESSES)
def test_harness_runs_clean_from_the_vector_seeds(harness: str, tmp_path: Path) -> None:
    corpus, artifacts = tmp_path / "corpus", tmp_path / "crashes"
    artifacts.mkdir()
    code, output = _fuzz(harness, corpus, artifacts)
    assert code == 0, output[-3000:]
    assert list(artifacts.iterdir()) == [], output[-3000:]
    executed = re.search(r"stat::number_of_executed_units:\s*(\d+)", output)
    assert executed is not None, output[-3000:]
    assert int(executed.group(1)) >= MIN_EXECUTIONS
    # Seeded from tests/vectors (or the contract's examples): the run starts with a corpus.
    seeded = re.search(r"INFO: seed corpus: files: (\d+)", output)
    assert seeded is not None, output[:3000]
    assert int(seeded.group(1)) >= 10
    assert "Instrumenting ivy_gateway.codec" in output or harness == "mqtt_command"


def test_a_failing_property_is_reported_as_a_crash_with_its_input(tmp_path: Path) -> None:
    """The harnesses' failure path works: a crash exits non-zero and leaves the input."""
    corpus, artifacts = tmp_path / "corpus", tmp_path / "crashes"
    artifacts.mkdir()
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(FUZZ.parent)!r})\n"
        "from fuzz.harness import fuzz_main\n"
        "def check(data: bytes) -> None:\n"
        "    assert len(data) < 16 or data[0] != 0x68, 'planted bug'\n"
        "fuzz_main('probe', check, [bytes.fromhex('6834120000000068110433333333F7')])\n"
    )
    proc = subprocess.run(
        [sys.executable, str(probe), "-runs=2000000", f"-artifact_prefix={artifacts}/",
         str(corpus)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    crashes = list(artifacts.iterdir())
    assert len(crashes) == 1
    planted = crashes[0].read_bytes()
    assert len(planted) >= 16
    assert planted[0] == 0x68
