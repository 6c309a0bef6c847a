"""The end-to-end benchmark itself: every recorder records the same information, checked.

The figures in the README come from ``benchmarks/agent_overhead.py``; a recorder that stopped
recording (or recorded less) would look cheap. This runs it briefly, as a user would, and
checks its own verification of each recorder's output, and the paired overhead's arithmetic.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import flightrec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import agent_overhead  # noqa: E402


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    """benchmarks/agent_overhead.py with ``args``, as a user runs it."""
    script = str(ROOT / "benchmarks" / "agent_overhead.py")
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.mark.parametrize("processes", ["1", "2"])
def test_every_recorder_records_everything(processes: str) -> None:
    # (with --processes 2: the table gathered from two processes, each checking its recorders)
    proc = run_script("--steps", "6", "--reps", "2", "--processes", processes)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("|")[1].strip(): line for line in proc.stdout.splitlines() if line.startswith("| ")}
    for name in ("flightrec", "otel", "logging", "sentry", "deque"):
        verdict = rows[name].rstrip(" |").rsplit("|", 1)[1].strip()
        assert verdict.startswith("ok") and ";" not in verdict, rows[name]
    assert ("processes" in proc.stdout) == (processes == "2") and "none (A/A)" in rows


def test_ablation_takes_out_the_points_it_names(tmp_path: Path) -> None:
    """--ablate: flightrec whole (its recording checked), and variants that really leave
    their points out (none of theirs reaches the ring)."""
    proc = run_script("--ablate", "--steps", "4", "--reps", "1")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("|")[1].strip() for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert rows[1:] == [
        "none",
        "flightrec",
        "flightrec without checkpoint",
        "flightrec without step, llm, tool, memory",
        "flightrec without any point",
        "deque, newest message only",
        "none (A/A)",
    ]
    assert proc.stdout.count("| ok") == 2  # flightrec, and the newest-message deque's checkpoints
    without = agent_overhead.flightrec_without("checkpoint", "memory")
    without.setup(tmp_path)
    try:
        agent_overhead.run_agent(without, 3)
        with flightrec.load(without.rec.ring_path) as recording:
            kinds = {e.kind for e in recording.events()}
    finally:
        without.teardown()
    assert "checkpoint" not in kinds and "memory" not in kinds
    assert {"llm", "tool_call", "step_start"} <= kinds


def test_overhead_is_paired_per_repetition() -> None:
    # Two repetitions on a machine that slowed down between them: the recorder is 10% slower
    # than the bare loop of its own repetition both times, whatever the drift.
    r = agent_overhead.Result([1.1, 2.2], [1.1, 2.2], [1.0, 2.0], [1.0, 2.0], "ok")
    assert r.overhead() == pytest.approx(0.10)
    assert r.overhead(cpu=True) == pytest.approx(0.10)
    lo, hi = agent_overhead.Result([1.1, 2.2, 3.6], [1, 1, 1], [1.0, 2.0, 3.0], [1, 1, 1], "ok").spread()
    assert lo == pytest.approx(0.10) and hi > lo
    one = agent_overhead.Result([1.1], [1.2], [1.0], [1.0], "ok")  # one repetition: no range
    assert one.spread() == pytest.approx((0.10, 0.10)) and one.spread(cpu=True) == pytest.approx((0.20, 0.20))


class _Logged(agent_overhead.Recorder):
    """Notes, in one shared log, which loop entered a step."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def step(self, name: str) -> object:
        self.log.append(self.name)
        return super().step(name)


def test_each_run_is_interleaved_with_its_own_bare_run(tmp_path: Path) -> None:
    # 25 steps in chunks of 10, 10 and 5; who goes first alternates, so neither run always
    # follows the other: bare 10, x 10 | x 10, bare 10 | bare 5, x 5.
    log: list[str] = []
    results = agent_overhead.measure([_Logged("bare", log), _Logged("x", log)], 25, 1, tmp_path, chunk=10)
    counted = log[50:]  # repetition 0 warms up
    runs = [(counted[0], 1)]
    for who in counted[1:]:
        runs[-1:] = [(who, runs[-1][1] + 1)] if who == runs[-1][0] else [runs[-1], (who, 1)]
    assert runs == [("bare", 10), ("x", 20), ("bare", 15), ("x", 5)]
    assert set(results) == {"bare", "x"} and len(results["x"].wall_ratios) == 1


@pytest.mark.parametrize(
    ("flag", "value", "said"),
    [("--steps", "many", "invalid int value"), ("--steps", "0", "at least 1"), ("--reps", "0", "at least 1")],
)
def test_bad_flags_are_refused(flag: str, value: str, said: str) -> None:
    proc = run_script(flag, value)
    assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr


def test_the_instruction_count_child_runs_zero_steps() -> None:
    # --instructions subtracts a 0-step run of each recorder (set-up alone) from its counted run
    proc = run_script("--child", "flightrec", "--steps", "0")
    assert proc.returncode == 0, proc.stderr


class _SlowLlm(agent_overhead.Recorder):
    """Sleeps in its LLM point: time outside the agent's own work."""

    name = "slow llm"

    def llm(self, reply: dict[str, object], latency_ms: float) -> None:
        time.sleep(0.005)


def test_the_agents_own_work_is_timed_apart_from_the_points(tmp_path: Path) -> None:
    """The overhead's split: ``in_work`` sums work() alone (the LLM latency the loop measures),
    never a recording point's time; measure() keeps, per repetition, how much slower that
    work ran than in the bare run."""
    in_work = [0.0]
    t0 = time.perf_counter()
    loop = agent_overhead.agent_loop(_SlowLlm(), 4, in_work)
    for _ in loop:
        pass
    wall = time.perf_counter() - t0
    assert 0 < in_work[0] <= wall - 4 * 0.005  # the sleeps are outside it
    results = agent_overhead.measure([agent_overhead.Recorder(), _SlowLlm()], 4, 2, tmp_path, chunk=2)
    assert len(results["slow llm"].work_slower) == 2
    figures = agent_overhead._figures(results["slow llm"], 4)
    assert figures["in_work"] < figures["wall"]  # the sleeps are the overhead, not the work
    proc = run_script("--steps", "4", "--reps", "1")
    assert proc.returncode == 0, proc.stderr
    assert "where the wall overhead goes" in proc.stdout and "flightrec " in proc.stdout.split("goes")[1]
