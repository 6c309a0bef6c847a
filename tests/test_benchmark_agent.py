"""The end-to-end benchmark itself: every recorder records the same information, checked.

The figures in the README come from ``benchmarks/agent_overhead.py``; a recorder that stopped
recording (or recorded less) would look cheap. This runs it briefly, as a user would, and
checks its own verification of each recorder's output, and the paired overhead's arithmetic.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import agent_overhead  # noqa: E402


def test_every_recorder_records_everything() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "agent_overhead.py"), "--steps", "6", "--reps", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("|")[1].strip(): line for line in proc.stdout.splitlines() if line.startswith("| ")}
    for name in ("flightrec", "otel", "logging", "sentry"):
        verdict = rows[name].rstrip(" |").rsplit("|", 1)[1].strip()
        assert verdict.startswith("ok"), rows[name]


def test_overhead_is_paired_per_repetition() -> None:
    # Two repetitions on a machine that slowed down between them: the recorder is 10% slower
    # than the bare loop of its own repetition both times, whatever the drift.
    r = agent_overhead.Result([1.1, 2.2], [1.1, 2.2], [1.0, 2.0], [1.0, 2.0], "ok")
    assert r.overhead() == pytest.approx(0.10)
    assert r.overhead(cpu=True) == pytest.approx(0.10)
    lo, hi = agent_overhead.Result([1.1, 2.2, 3.6], [1, 1, 1], [1.0, 2.0, 3.0], [1, 1, 1], "ok").spread()
    assert lo == pytest.approx(0.10) and hi > lo


def test_bad_flags_are_refused() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "agent_overhead.py"), "--steps", "many"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "invalid int value" in proc.stderr
