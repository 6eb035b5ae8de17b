"""What every harness shares: seeds from ``tests/vectors``, a seeded corpus, atheris start-up.

A harness module defines ``check(data: bytes) -> None`` (raises ``AssertionError`` or any
unexpected exception for a bug) and calls ``fuzz_main(name, check, seeds)`` under
``if __name__ == "__main__"``. Run one by hand::

    python -m fuzz.dlt645_frames -runs=100000            # corpus: fuzz/corpus/dlt645_frames
    python -m fuzz.dlt645_frames -max_total_time=60 CORPUS_DIR

(from the repository root: the harnesses are modules of the ``fuzz`` package).

Arguments are libFuzzer's. The seeds are written into the corpus directory first (the
default one, ``fuzz/corpus/<name>``, is kept between runs and ignored by git), so every run
starts from at least the test vectors. Crash inputs land in
``fuzz/crashes/<name>-crash-<sha1>`` (``-artifact_prefix``); each one found becomes a test
vector (see docs/reliability.md).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors"
CRASHES = Path(__file__).resolve().parent / "crashes"
CORPORA = Path(__file__).resolve().parent / "corpus"


def vector_bytes(
    *files: str, keep: Callable[[dict[str, object]], bool] = lambda v: True
) -> list[bytes]:
    """The ``hex`` of every vector in ``files`` (and of their ``chunks``) that ``keep`` accepts."""
    out: list[bytes] = []
    for name in files:
        data = json.loads((VECTORS / name).read_text(encoding="utf-8"))
        for vector in data["vectors"]:
            if not keep(vector):
                continue
            text = vector.get("hex")
            if isinstance(text, str):
                out.append(bytes.fromhex(text))
            chunks = vector.get("chunks")
            if isinstance(chunks, list):
                out.extend(bytes.fromhex(c) for c in chunks if isinstance(c, str))
    return out


def write_corpus(directory: Path, seeds: Iterable[bytes]) -> int:
    """Write each distinct seed as a file named by its SHA-1; returns how many were written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for seed in seeds:
        path = directory / hashlib.sha1(seed).hexdigest()  # a file name, not security
        if not path.exists():
            path.write_bytes(seed)
            written += 1
    return written


def _has_corpus_argument(argv: list[str]) -> bool:
    return any(not a.startswith("-") for a in argv[1:])


def fuzz_main(name: str, check: Callable[[bytes], None], seeds: Iterable[bytes]) -> None:
    """Seed a corpus, set libFuzzer options and fuzz ``check`` until a limit or a crash."""
    import atheris  # only the harness process needs it (and libFuzzer)

    argv = list(sys.argv)
    if not _has_corpus_argument(argv):
        argv.append(str(CORPORA / name))
    corpus = Path(next(a for a in argv[1:] if not a.startswith("-")))
    write_corpus(corpus, seeds)
    if not any(a.startswith("-artifact_prefix=") for a in argv):
        CRASHES.mkdir(exist_ok=True)
        argv.insert(1, f"-artifact_prefix={CRASHES}/{name}-")
    dictionary = Path(__file__).with_name(f"{name}.dict")
    if dictionary.exists() and not any(a.startswith("-dict=") for a in argv):
        argv.insert(1, f"-dict={dictionary}")
    # Inputs past a few KiB add nothing the stream tests do not cover, and slow every run.
    if not any(a.startswith("-max_len=") for a in argv):
        argv.insert(1, "-max_len=4096")
    atheris.Setup(argv, check)
    atheris.Fuzz()  # libFuzzer exits the process: 0 at a limit, non-zero on a crash
