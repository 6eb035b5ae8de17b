"""Shared timing helpers for ``make bench``: every benchmark module exposes ``results()``.

``results()`` returns ``Row``s; ``benchmarks/run.py`` prints them as one table. Figures are
single-core wall-clock rates on whatever machine runs them: compare, don't assert.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Row", "rate"]


@dataclass(frozen=True, slots=True)
class Row:
    area: str
    what: str
    value: float
    unit: str
    target: str = ""
    note: str = ""


def rate(fn: Callable[[], object], *, min_time_s: float = 1.0, repeat: int = 3) -> float:
    """Best-of-``repeat`` calls per second of ``fn``, each round lasting ~``min_time_s``."""
    n = 1
    while True:  # calibrate the batch size so one timed round lasts about min_time_s
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time_s / 5:
            break
        n *= 2
    best = 0.0
    batch = max(1, int(n * (min_time_s / max(elapsed, 1e-9))))
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        best = max(best, batch / (time.perf_counter() - t0))
    return best
