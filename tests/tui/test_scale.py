"""The app on big and hostile recordings: every screen gets its answer, nothing hangs or crashes."""

from __future__ import annotations

from pathlib import Path

from flightrec.tui.app import FlightrecApp
from flightrec.tui.sources import open_source
from textual.widgets import OptionList

from . import builder
from .util import wait_for

SIZE = (140, 40)


def make_app(path: Path, initial: str = "overview") -> FlightrecApp:
    return FlightrecApp(open_source(path), initial=initial)


class TestBusyAgent:
    async def test_findings_of_an_agent_that_evicts_as_it_goes(self, tmp_path: Path) -> None:
        """An agent that retains and evicts an item at every tool call (20,000 of each) gets its
        findings on the overview: looking for evicted-then-needed items compared every call with
        every item evicted so far, and the overview said 'computing' for hours."""
        # GIVEN a long run in which each call's result is retained, then evicted; the first
        # item is needed again at the end
        s = builder.Script(step_ns=1_000_000)
        n = 20_000
        for i in range(n):
            s.add("tool_call", tool="search", call_id=i, args={"q": i}, attempt=1)
            s.add("tool_result", tool="search", call_id=i, result={"hits": i % 7}, latency_ms=3.0)
            s.add("memory", op="retain", item_id=f"doc:{i}", tokens=100, reason="hit", call_id=i)
            s.add("memory", op="evict", item_id=f"doc:{i}", tokens=100, reason="context full")
        s.add("memory", op="retain", item_id="doc:0", tokens=100, reason="needed again")
        dump = builder.write_events(tmp_path, s.events, per_block=512)
        # WHEN the overview opens on it
        app = make_app(dump)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "findings" in app.facts, timeout=60, what="findings")
            await pilot.pause(0.2)
            # THEN the finding is listed
            findings = app.screen.query_one("#ov-findings", OptionList)
            prompt = str(findings.get_option_at_index(0).prompt)
            assert "item 'doc:0' was evicted at seq 4 (context full) and retained again at seq 80001" in prompt
