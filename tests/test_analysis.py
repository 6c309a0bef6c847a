"""Analysis of a recording: tool stats, timelines, and each finding on a recording built to contain it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flightrec
from flightrec.analysis import CheckpointInfo, ContextSample, Finding, ResourceSample, ToolStats
from flightrec.cli.show_cmd import summary

from .conftest import child_env, recorded


def findings_of(kind: str) -> list[Finding]:
    """The findings of one kind in a dump of the running recorder."""
    with recorded() as r:
        return [f for f in r.findings() if f.kind == kind]


def make_tool(results: list[Any]) -> Callable[..., Any]:
    """A tool that returns (or raises) the given results in turn."""
    it = iter(results)

    @flightrec.tool(name="lookup")
    def lookup(key: str) -> Any:
        r = next(it)
        if isinstance(r, BaseException):
            raise r
        return r

    return lookup


def call(tool: Callable[..., Any], *args: Any) -> None:
    """Call a tool, swallowing its failure the way an agent loop would."""
    try:
        tool(*args)
    except Exception:
        pass


class TestViews:
    """The agent-level views of a recording have the documented shapes."""

    def test_tool_stats(self, rec: Any) -> None:
        """Calls, errors by origin and latency percentiles per tool."""
        tool = make_tool(["a", TimeoutError(), ValueError(), "b", flightrec.ToolResponseError("no")])
        for k in "vwxyz":
            call(tool, k)
        with recorded() as r:
            stats = r.tool_stats()
        s = stats["lookup"]
        assert isinstance(s, ToolStats)
        assert (s.calls, s.errors, s.errors_by_origin) == (5, 3, {"transient": 1, "invocation": 1, "response": 1})
        assert s.p50_ms is not None and s.p95_ms is not None and s.max_ms is not None
        assert s.p50_ms <= s.p95_ms <= s.max_ms

    def test_timelines_and_checkpoints(self, rec: Any) -> None:
        """Context samples, checkpoint infos and resource samples come back typed, in order."""
        flightrec.memory.context(100, 1000)
        flightrec.memory.context(500, 1000)
        seq = flightrec.checkpoint({"a": 1}, label="x")
        flightrec.record("resource", rss=1, cpu_percent=2.5, threads=3, open_files=4)
        with recorded() as r:
            assert [s.used for s in r.memory_timeline()] == [100, 500]
            assert all(isinstance(s, ContextSample) for s in r.memory_timeline())
            (info,) = r.checkpoints()
            assert isinstance(info, CheckpointInfo) and (seq, "x", True) == (info.seq, info.label, info.rebuildable)
            (res,) = r.resources()
            assert isinstance(res, ResourceSample)
            assert (res.rss, res.cpu_percent, res.threads, res.open_files) == (1, 2.5, 3, 4)

    def test_a_checkpoint_of_the_same_state_has_the_same_root(self, rec: Any) -> None:
        """Chunks are content-addressed: the root says whether two checkpoints hold one state."""
        state: dict[str, Any] = {"messages": ["hi"], "status": "retrying"}
        flightrec.checkpoint(state, label="attempt 1")
        flightrec.checkpoint(state, label="attempt 2")
        state["status"] = "failed"
        flightrec.checkpoint(state, label="gave up")
        with recorded() as r:
            roots = [info.root for info in r.checkpoints()]
        assert roots[0] is not None and roots[0] == roots[1] != roots[2]

    def test_unfinished_steps_and_calls(self, rec: Any) -> None:
        """A step or tool call still open when the dump is taken has no end."""
        s = flightrec.step("open")
        s.__enter__()
        flightrec.record("tool_call", tool="t", call_id=999, args={}, attempt=1)
        with recorded() as r:
            (step,) = r.steps()
            (tc,) = r.tools()
        s.__exit__(None, None, None)
        assert (step.end_seq, step.end_ns, step.duration_ms) == (None, None, None)
        assert (tc.result_seq, tc.latency_ms) == (None, None)

    def test_results_are_cached(self, rec: Any) -> None:
        """Views are computed once per recording object."""
        flightrec.record("note")
        with recorded() as r:
            assert r.findings() == r.findings()
            assert r._analysis() is r._analysis()


class TestFindings:
    """Each finding appears on a recording built to contain it, and not otherwise."""

    def test_repeated_tool_failure(self, rec: Any) -> None:
        """Three failures in a row of one tool make an error finding naming the results."""
        tool = make_tool([TimeoutError("503"), TimeoutError("503"), TimeoutError("503 again")])
        for _ in range(3):
            call(tool, "k")
        (f,) = findings_of("repeated_tool_failure")
        assert f.severity == "error"
        assert len(f.seqs) == 3
        assert "'lookup' failed 3 times in a row (transient)" in str(f)

    def test_no_repeated_failure_when_a_success_interrupts(self, rec: Any) -> None:
        """Failures broken up by a success are not a streak."""
        tool = make_tool([TimeoutError(), TimeoutError(), "ok", TimeoutError(), TimeoutError()])
        for k in "abcde":
            call(tool, k)
        assert findings_of("repeated_tool_failure") == []

    def test_tool_loop(self, rec: Any) -> None:
        """The same successful call made three times is a loop."""
        tool = make_tool(["x", "x", "x"])
        for _ in range(3):
            call(tool, "same")
        (f,) = findings_of("tool_loop")
        assert (f.severity, len(f.seqs)) == ("warning", 3)
        assert "key='same'" in f.message

    def test_no_loop_for_distinct_calls_or_retries(self, rec: Any) -> None:
        """Different arguments, or retries after failures, are not a loop."""
        tool = make_tool(["a", "b", "c", TimeoutError(), TimeoutError(), "d"])
        for k in ("1", "2", "3"):
            call(tool, k)
        with flightrec.step("retrying"):
            for _ in range(3):
                call(tool, "same")
        assert findings_of("tool_loop") == []

    def test_context_near_limit(self, rec: Any) -> None:
        """Usage at or above 90% of the window is a finding; over 100% an error (listed first)."""
        for used in (500, 920, 950, 600, 1010):
            flightrec.memory.context(used, 1000)
        found = findings_of("context_near_limit")
        assert [(f.severity, f.message.split("reached ")[1].split(" ")[0]) for f in found] == [
            ("error", "101%"),
            ("warning", "95%"),
        ]

    def test_no_context_finding_below_the_threshold(self, rec: Any) -> None:
        """Usage below 90% is not a finding."""
        for used in (100, 500, 899):
            flightrec.memory.context(used, 1000)
        assert findings_of("context_near_limit") == []

    def test_evicted_then_retained_again(self, rec: Any) -> None:
        """An item evicted and then retained again under the same id was needed after all."""
        flightrec.memory.retain("policy", tokens=50)
        ev = flightrec.memory.evict("policy", reason="context full")
        again = flightrec.memory.retain("policy", tokens=50)
        (f,) = findings_of("evicted_then_needed")
        assert [ev, again] == f.seqs
        assert "'policy'" in f.message and "context full" in f.message

    def test_evicted_then_its_tool_call_repeated(self, rec: Any) -> None:
        """Repeating the tool call that produced an evicted item means it was needed."""
        tool = make_tool(["refunds: 5 days", "other", "refunds: 5 days"])
        call(tool, "refund policy")
        flightrec.memory.retain("kb:refunds", tokens=20)
        call(tool, "shipping")
        ev = flightrec.memory.evict("kb:refunds")
        call(tool, "refund policy")
        (f,) = findings_of("evicted_then_needed")
        assert ev in f.seqs
        assert "tool call that produced it" in f.message

    def test_no_eviction_finding_when_not_needed_again(self, rec: Any) -> None:
        """Evicting an item that never comes back is just housekeeping."""
        flightrec.memory.retain("a")
        flightrec.memory.evict("a")
        flightrec.memory.retain("b")
        flightrec.memory.summarize(["b"], into="s")
        assert findings_of("evicted_then_needed") == []

    def test_first_error_and_what_led_to_it(self, rec: Any) -> None:
        """The earliest error is named, with the events before it in its thread."""
        flightrec.record("note", n=1)
        flightrec.llm(model="m", prompt_tokens=1, completion_tokens=1, latency_ms=1)
        err = flightrec.record("error", origin="reasoning", message="wrong assumption")
        flightrec.record("error", message="later")
        (f,) = findings_of("first_error")
        assert err == f.seqs[-1]
        assert len(f.seqs) >= 3
        assert "wrong assumption" in f.message and "(reasoning)" in f.message

    def test_a_failed_llm_call_to_an_unnamed_model(self, rec: Any) -> None:
        """A model with no name (a fake one) is not called 'None' in the finding."""
        flightrec.record("llm", model=None, error="rate limited")
        flightrec.llm(model="gpt-x", error="overloaded")
        (f,) = findings_of("first_error")
        assert "LLM call failed: rate limited" in f.message and "None" not in f.message

    def test_no_findings_on_a_clean_run(self, rec: Any) -> None:
        """A run without trouble has no findings at all."""
        tool = make_tool(["a", "b"])
        with flightrec.step("plan"):
            call(tool, "x")
            call(tool, "y")
            flightrec.memory.retain("doc")
            flightrec.memory.context(100, 1000)
            flightrec.checkpoint({"ok": True})
        with recorded() as r:
            assert r.findings() == []

    def test_findings_are_ordered_by_severity_and_shown(self, rec: Any) -> None:
        """Errors come first; ``flightrec show`` prints every finding."""
        for used in (950,):
            flightrec.memory.context(used, 1000)
        tool = make_tool([TimeoutError("t")] * 3)
        for _ in range(3):
            call(tool, "k")
        with recorded() as r:
            found = r.findings()
            text = summary(r)
        assert [f.severity for f in found] == ["error", "error", "warning"]
        for f in found:
            assert str(f) in text


class TestDemo:
    """The bundled demo agent fails as scripted and its dump tells the whole story."""

    def test_demo_dump_has_every_finding(self, frdir: Path) -> None:
        """``python -m flightrec.demo`` dies of an uncaught exception, dumps, and the dump explains why."""
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "flightrec.demo"], env=child_env(frdir), capture_output=True, text=True, timeout=60
        )
        elapsed = time.monotonic() - started
        assert proc.returncode == 1
        assert "CarrierUnavailable" in proc.stderr
        (dump,) = frdir.glob("*.frec")
        with flightrec.load(dump) as r:
            kinds = {f.kind for f in r.findings()}
            assert {"first_error", "context_near_limit", "repeated_tool_failure", "evicted_then_needed"} == kinds
            assert all(c.rebuildable for c in r.checkpoints()) and len(r.checkpoints()) >= 10
            origins = {t.origin for t in r.tools()}
            assert {"invocation", "transient", "response", None} == origins
            assert [t.attempt for t in r.tools() if t.retry_of is not None] == [2, 3, 4, 5]
            assert any(e.data.get("origin") == "reasoning" for e in r.events(["error"]))
            assert {"retain", "evict", "summarize"} <= {e.data["op"] for e in r.memory_events()}
            assert r.meta["trigger"]["reason"] == "exception"
        assert elapsed < 10  # about a second here; generous for slow CI
