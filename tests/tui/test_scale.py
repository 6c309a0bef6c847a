"""The app on big and hostile recordings: every screen gets its answer, nothing hangs or crashes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from flightrec.tui.app import FlightrecApp
from flightrec.tui.screens.detail import DetailScreen
from flightrec.tui.sources import open_source
from flightrec.tui.widgets.event_list import EventList
from textual.widgets import OptionList, Tree

from flightrec.event import Event

from . import builder
from .util import screen_text, wait_for

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


def deep(levels: int) -> object:
    """``{"k": {"k": ... "bottom"}}``, ``levels`` maps deep (about as deep as the reader decodes)."""
    value: object = "bottom"
    for _ in range(levels):
        value = {"k": value}
    return value


class TestHostileData:
    async def test_data_nested_900_levels_deep_is_shown_and_searched(self, tmp_path: Path) -> None:
        """An event nested 900 levels deep (a hand-made dump: the recorder cuts far earlier)
        gets its timeline line, is found by search and opens in Detail; the one-line summary
        and the search text recursed into it and crashed the app with RecursionError."""
        s = builder.Script()
        s.add("note", text="before")
        s.add("note", text="deep", nested=deep(900))
        s.add("note", text="after")
        dump = builder.write_events(tmp_path, s.events)
        app = make_app(dump, initial="timeline")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert "nested={k: {k: {k: {…}}}}" in screen_text(app)
            await pilot.press("slash", *"bottom", "enter")
            lst = app.screen.query_one(EventList)
            await wait_for(pilot, lambda: lst.cursor == 1, what="the search to find the deep event")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail")
            node = app.screen.query_one(Tree).root
            levels = 0
            while node.children:
                node = node.children[-1]
                levels += 1
            assert levels == 65  # "nested" (depth 0), then "k" at depths 1..64, the last one a leaf
            assert str(node.label) == "k  {k: {k: {k: {…}}}}  (nested too deep to show)"
            await pilot.press("plus")
            await pilot.pause()
            assert app.is_running

    async def test_detail_of_a_huge_list_map_and_string_shows_their_start(self, tmp_path: Path) -> None:
        """Detail of an event holding 300,000 items, a 200,000-key map and a 20 MB string (which
        the recorder would have cut) shows the first 1,000 of each and says what is left out:
        it made a tree node per item (seconds of a frozen UI, more for bigger values)."""
        s = builder.Script()
        s.add("note", text="x" * 20_000_000, items=list(range(300_000)), table={f"k{i}": i for i in range(200_000)})
        dump = builder.write_events(tmp_path, s.events)
        app = make_app(dump, initial="timeline")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail")
            root = app.screen.query_one(Tree).root
            by_key = {str(node.label).split()[0]: node for node in root.children}
            text, items, table = by_key["text"], by_key["items"], by_key["table"]
            assert "str, 20,000,000 chars" in str(text.label)
            assert len(text.children) == 1001
            assert str(text.children[-1].label) == "… the rest of the 20,000,000 characters is not shown"
            assert len(items.children) == 1001 and str(items.children[-1].label) == "… 299,000 more items not shown"
            assert str(items.children[999].label) == "[999]: 999"
            assert len(table.children) == 1001 and str(table.children[-1].label) == "… 199,000 more entries not shown"


class TestAnalysisProcess:
    async def test_facts_of_a_dump_come_from_one_reading_of_it(
        self, rich_dump: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A big dump's facts are computed in the analysis process from one opening of the file,
        as the screens' events come from one mapping: each fact opened the file again and
        repeated the whole analysis pass (on a full 64 MiB ring ~10 s per screen), and a file
        replaced meanwhile gave the Tools screen another recording than the timeline's."""
        from flightrec.tui import app as app_module

        monkeypatch.setattr(app_module, "OFFLOAD_EVENTS", 0)  # every dump is "big"
        other = builder.write_events(tmp_path / "other", [_note()])
        app = make_app(rich_dump)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "findings" in app.facts, timeout=60, what="findings")
            os.replace(other, rich_dump)  # the same path, another recording
            await pilot.press("4")
            await wait_for(pilot, lambda: "tool_stats" in app.facts, timeout=60, what="tool stats")
            assert set(app.facts["tool_stats"]) == {"lookup_order", "search_kb"}


def _note() -> Event:
    return Event(1, builder.T0, "note", "MainThread", None, None, {"text": "another recording"})


class TestFirstShow:
    async def test_a_screen_whose_fact_is_ready_is_built_once(
        self, rich_dump: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A screen first shown after its analysis is done builds its widgets once: its mount
        showed the fact, then its resume delivered the same fact again and it was rebuilt (on a
        full 64 MiB ring: two 20,000-node step trees, 4 s of frozen UI instead of 2)."""
        clears: list[str | None] = []
        real_clear = Tree.clear

        def counting_clear(tree: Tree[object]) -> Tree[object]:
            clears.append(tree.id)
            return real_clear(tree)

        monkeypatch.setattr(Tree, "clear", counting_clear)  # Textual's, counted (and done)
        app = make_app(rich_dump)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "findings" in app.facts, what="findings")
            app.request_fact("steps")
            await wait_for(pilot, lambda: "steps" in app.facts, what="steps")
            await pilot.press("3")
            await pilot.pause(0.2)
            tree = app.screen.query_one("#st-tree", Tree)
            assert len(tree.root.children) == 8  # the eight turns
            assert clears.count("st-tree") == 1
