"""``make bench``: run every ``benchmarks/bench_*.py`` and print one results table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import Row  # noqa: E402


def _load_rows(path: Path) -> list[Row]:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows: list[Row] = module.results()
    return rows


def main(argv: list[str]) -> int:
    selected = set(argv)
    rows: list[Row] = []
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if selected and name not in selected:
            continue
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        rows.extend(_load_rows(path))
    header = ("area", "what", "value", "unit", "target", "note")
    table = [header] + [
        (
            r.area,
            r.what,
            f"{r.value:,.0f}" if r.value >= 100 else f"{r.value:,.2f}",
            r.unit,
            r.target,
            r.note,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
