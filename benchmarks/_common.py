"""Small timing helpers shared by the benchmark scripts (medians of batches, printed tables)."""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable


def per_call_ns(fn: Callable[[], object], batch: int = 2000, repeats: int = 60) -> float:
    """Median CPU cost of one ``fn()`` call in ns, over ``repeats`` batches of ``batch`` calls.

    Thread CPU time, not wall time: on a shared machine the benchmark gets descheduled, and
    wall time would count the waiting.
    """
    for _ in range(batch):  # warm up
        fn()
    samples = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            t0 = time.thread_time_ns()
            for _ in range(batch):
                fn()
            samples.append((time.thread_time_ns() - t0) / batch)
    finally:
        if gc_was:
            gc.enable()
    return statistics.median(samples)


def median_s(fn: Callable[[], object], repeats: int = 7) -> float:
    """Median wall time of ``fn()`` in seconds."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def table(rows: list[tuple[str, float]], unit: str = "ns", ref: str | None = None) -> str:
    """Format ``(name, value)`` rows with ratios to ``ref`` (default: the first row)."""
    base = dict(rows)[ref] if ref else rows[0][1]
    width = max(len(n) for n, _ in rows)
    out = []
    for name, value in rows:
        ratio = value / base if base else float("nan")
        out.append(f"  {name:<{width}}  {value:>10.1f} {unit}   x{ratio:>6.2f}")
    return "\n".join(out)


def no_options(doc: str | None) -> None:
    """Parse a benchmark's command line, which takes no options: ``--help`` shows ``doc``, anything else is an error."""
    argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
