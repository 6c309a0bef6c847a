"""Redaction's cost on the real hot path: ``flightrec.record`` with ``redact`` on vs. off.

Run: ``.venv/bin/python benchmarks/redact.py``. In one run, the median per-event CPU time
of recording ~300-byte events that are clean and never seen before, full of PII, and
repeated (the cache hit), each with redaction on and off; then the corpus recall and
false-positive table (``benchmarks/redact_core.py`` has the redactor alone).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import no_options
from redact_core import build_corpus, clean_event, corpus_report, format_report, pii_event

import flightrec


def _per_event_ns(events: list[dict[str, object]]) -> float:
    record = flightrec.record
    t0 = time.thread_time_ns()
    for e in events:
        record("tool_call", **e)
    return (time.thread_time_ns() - t0) / len(events)


def run(n: int = 2000, rounds: int = 9) -> dict[str, float]:
    """Median ns per event for each (case, redact) pair, interleaved round by round."""
    rng = random.Random(3)
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o700)
        for _ in range(rounds):
            cases = {
                "clean, never seen": [clean_event(rng) for _ in range(n)],
                "PII, never seen": [pii_event(rng) for _ in range(n)],
                "repeated (cache hit)": [clean_event(random.Random(1))] * n,
            }
            for redact in (False, True):
                for case, events in cases.items():
                    # A fresh recorder per batch: a new redactor, so "never seen" misses its caches.
                    flightrec.start(dir=Path(d), redact=redact, triggers=False, resources=0)
                    if case.startswith("repeated"):
                        _per_event_ns(events[:50])  # warm the cache once
                    samples.setdefault(f"{case}|{redact}", []).append(_per_event_ns(events))
                    flightrec.stop()
    return {k: statistics.median(v) for k, v in samples.items()}


def main() -> None:
    res = run()
    print("flightrec.record of a ~300-byte event, median CPU ns per event (9 interleaved rounds)")
    print(f"  {'case':<22} {'redact off':>11} {'redact on':>11} {'extra':>9}  goal")
    goals = {"clean, never seen": 8000, "PII, never seen": 30000, "repeated (cache hit)": 1000}
    for case, goal in goals.items():
        off, on = res[f"{case}|False"], res[f"{case}|True"]
        print(f"  {case:<22} {off:>11.0f} {on:>11.0f} {on - off:>9.0f}  <= {goal} ns extra")
    print("\nlabelled corpus (seed 1234): recall per PII kind, share of look-alikes changed")
    print(format_report(corpus_report(cases=build_corpus())))


if __name__ == "__main__":
    no_options(__doc__)
    main()
