"""The app on dumps, driven by keys through Textual's Pilot, asserting on what the widgets show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flightrec.tui.app import FlightrecApp
from flightrec.tui.facts import Counts
from flightrec.tui.render import is_error
from flightrec.tui.screens.checkpoints import CheckpointsScreen
from flightrec.tui.screens.detail import DetailScreen
from flightrec.tui.screens.filter import FilterScreen
from flightrec.tui.screens.help import HelpScreen
from flightrec.tui.screens.memory import MemoryScreen
from flightrec.tui.screens.overview import OverviewScreen
from flightrec.tui.screens.resources import ResourcesScreen
from flightrec.tui.screens.steps import StepsScreen
from flightrec.tui.screens.timeline import TimelineScreen
from flightrec.tui.screens.tools import ToolsScreen
from flightrec.tui.sources import open_source
from flightrec.tui.widgets.bars import ZeroSparkline
from flightrec.tui.widgets.event_list import EventList
from flightrec.tui.widgets.plot import LimitPlot
from textual.widgets import DataTable, Input, OptionList, SelectionList, Static, Tree

import flightrec

from .util import screen_text, settle, wait_for

SIZE = (140, 40)


def make_app(path: Path, initial: str = "overview") -> FlightrecApp:
    return FlightrecApp(open_source(path), initial=initial)


def timeline_list(app: FlightrecApp) -> EventList:
    return app.screen.query_one(EventList)


class TestNavigation:
    async def test_number_keys_reach_every_screen(self, real_dump: Path) -> None:
        """1..7 switch between the seven main screens; ? opens help and Escape closes it."""
        app = make_app(real_dump)
        async with app.run_test(size=SIZE) as pilot:
            expected = [
                OverviewScreen,
                TimelineScreen,
                StepsScreen,
                ToolsScreen,
                MemoryScreen,
                CheckpointsScreen,
                ResourcesScreen,
            ]
            for key, cls in zip("1234567", expected, strict=True):
                await pilot.press(key)
                await pilot.pause()
                assert isinstance(app.screen, cls)
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, ResourcesScreen)

    async def test_number_keys_work_over_the_help_and_detail(self, rich_dump: Path) -> None:
        """1..7 work everywhere, as the keys table says: over the help (which held them back,
        so a reader of the table pressing 3 there got nothing) and over Detail."""
        app = make_app(rich_dump, initial="timeline")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("home", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail")
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
            await pilot.press("3")
            await pilot.pause()
            assert isinstance(app.screen, StepsScreen)
            assert not any(isinstance(s, (HelpScreen, DetailScreen)) for s in app.screen_stack)
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
            await pilot.press("6")
            await pilot.pause()
            assert isinstance(app.screen, CheckpointsScreen)

    async def test_command_palette_lists_every_screen(self, real_dump: Path) -> None:
        """The command palette offers a 'Go to' command for each screen."""
        app = make_app(real_dump)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            titles = [c.title for c in app.get_system_commands(app.screen)]
            for name in ("Overview", "Timeline", "Steps", "Tools", "Memory", "Checkpoints", "Resources"):
                assert f"Go to {name}" in titles
            # and it works from the palette itself
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"go to tools")
            await wait_for(pilot, lambda: "Go to Tools" in screen_text(app), what="palette match")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ToolsScreen), what="tools screen")


class TestOverview:
    async def test_shows_process_trigger_exception_and_counts(self, real_dump: Path) -> None:
        """The overview names the trigger, the exception with its traceback, and counts by kind."""
        app = make_app(real_dump)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "findings")
            text = screen_text(app)
            assert "trigger   exception" in text
            assert "ServiceDown: lookup_order failed 2 times" in text
            assert "Traceback (most recent call last)" in text
            assert "tool_call" in text and "step_start" in text
            counts = app.facts["counts"]
            assert isinstance(counts, Counts)
            assert counts.by_kind["tool_call"] == 12

    async def test_a_recovered_cut_dump_shows_when_and_what_is_damaged(self, frdir: Path, tmp_path: Path) -> None:
        """A dump recovered from a kill -9'd ring shows its recovery time; a torn block reads as damage."""
        from tests.conftest import run_child, run_cli

        proc = run_child(
            """
            import os, flightrec
            flightrec.start(size="1MiB", block_size="4KiB", resources=0)
            for i in range(400):
                flightrec.record("note", i=i, text="x" * 100)
            os.kill(os.getpid(), 9)
            """,
            frdir,
        )
        assert proc.returncode == -9
        [ring] = frdir.glob("*.ring")
        result = run_cli("recover", str(ring), "-o", str(tmp_path))
        assert result.returncode == 0, result.stderr
        [recovered] = tmp_path.glob("*.frec")
        cut = tmp_path / "cut.frec"
        data = recovered.read_bytes()
        cut.write_bytes(data[: len(data) * 2 // 3])
        app = make_app(cut)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app)
            lines = screen_text(app).splitlines()
            [when] = [line for line in lines if "recovered " in line]
            assert "?" not in when and "20" in when  # a date
            damage = " ".join(line.strip() for line in lines if "damage" in line)
            assert "damage    1 damaged block(s) skipped; index footer missing" in damage, damage

    async def test_enter_at_once_shows_the_first_findings_events(self, real_dump: Path) -> None:
        """Enter, the first key the findings panel offers, acts on the first finding with no arrow key before."""
        app = make_app(real_dump)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "findings")
            findings = app.facts["findings"]
            assert findings, "the real recording has findings"
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, TimelineScreen)
            lst = timeline_list(app)
            await wait_for(pilot, lambda: not lst.view.scanning, what="filter scan")
            assert [lst.view.event_at(i).seq for i in range(len(lst.view))] == sorted(findings[0].seqs)

    async def test_the_highlighted_finding_stays_when_the_list_is_rebuilt(self, real_dump: Path) -> None:
        """New counts (a live recording) rebuild the findings list; the highlight stays on the same finding."""
        app = make_app(real_dump)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "findings")
            assert len(app.facts["findings"]) >= 2, "the real recording has several findings"
            await pilot.press("down")
            options = app.screen.query_one(OptionList)
            assert options.highlighted == 1
            app.screen.fact_changed("counts")
            await pilot.pause()
            assert options.highlighted == 1

    async def test_enter_on_a_finding_shows_its_events(self, real_dump: Path) -> None:
        """Enter on a finding switches to the timeline, narrowed to the finding's events."""
        app = make_app(real_dump)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "findings")
            findings = app.facts["findings"]
            assert findings, "the real recording has findings"
            options = app.screen.query_one(OptionList)
            options.focus()
            options.highlighted = 0
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, TimelineScreen)
            lst = timeline_list(app)
            await wait_for(pilot, lambda: not lst.view.scanning, what="filter scan")
            shown = [lst.view.event_at(i).seq for i in range(len(lst.view))]
            assert shown == sorted(findings[0].seqs)
            assert "filter: finding" in screen_text(app)


class TestTimeline:
    async def test_filter_by_kind_through_the_dialog(self, real_dump: Path) -> None:
        """F opens the filter dialog; ticking a kind and applying shows only that kind."""
        app = make_app(real_dump, initial="timeline")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app)
            await pilot.press("F")
            await pilot.pause()
            assert isinstance(app.screen, FilterScreen)
            kinds = app.screen.query_one("#fl-kinds", SelectionList)
            kinds.select("tool_result")
            await pilot.press("ctrl+s")
            await pilot.pause()
            lst = timeline_list(app)
            await wait_for(pilot, lambda: not lst.view.scanning, what="filter scan")
            assert len(lst.view) == 12
            assert {lst.view.event_at(i).kind for i in range(len(lst.view))} == {"tool_result"}
            await pilot.press("x")
            await pilot.pause()
            assert len(lst.view) == app.source.index.total

    async def test_filter_by_free_text(self, rich_dump: Path) -> None:
        """The filter's text field keeps only events containing the text."""
        app = make_app(rich_dump, initial="timeline")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app)
            await pilot.press("F")
            await pilot.pause()
            app.screen.query_one("#fl-text", Input).focus()
            await pilot.press(*"search_kb")
            await pilot.press("enter")
            await pilot.pause()
            lst = timeline_list(app)
            await wait_for(pilot, lambda: not lst.view.scanning, what="filter scan")
            assert len(lst.view) == 16
            assert all(lst.view.event_at(i).data.get("tool") == "search_kb" for i in range(len(lst.view)))

    async def test_search_next_and_previous(self, rich_dump: Path) -> None:
        """/ finds the first match at or after the cursor; n and N move between matches."""
        app = make_app(rich_dump, initial="timeline")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            lst = timeline_list(app)
            await pilot.press("slash")
            await pilot.press(*"turn-3")
            await pilot.press("enter")
            await wait_for(
                pilot,
                lambda: lst.selected_event() is not None and lst.selected_event().data.get("label") == "turn-3",
                what="first match",
            )
            await pilot.press("slash")
            app.screen.query_one("#tl-search", Input).value = ""
            await pilot.press(*"lookup_order")
            await pilot.press("enter")
            await wait_for(pilot, lambda: "lookup_order" in repr(lst.selected_event().data), what="search")
            first = lst.selected_event().seq
            await pilot.press("n")
            await wait_for(pilot, lambda: lst.selected_event().seq != first, what="next match")
            second = lst.selected_event().seq
            assert second > first and "lookup_order" in repr(lst.selected_event().data)
            await pilot.press("N")
            await wait_for(pilot, lambda: lst.selected_event().seq == first, what="previous match")
            assert "search: 'lookup_order'" in screen_text(app)

    async def test_jump_to_next_error(self, real_dump: Path) -> None:
        """e selects the next error event; E goes back."""
        app = make_app(real_dump, initial="timeline")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            lst = timeline_list(app)
            await pilot.press("e")
            await wait_for(
                pilot, lambda: lst.selected_event() is not None and is_error(lst.selected_event()), what="first error"
            )
            first = lst.selected_event()
            assert first.kind == "tool_result" and "503" in str(first.data.get("error"))
            await pilot.press("e")
            await wait_for(pilot, lambda: lst.selected_event().seq > first.seq, what="second error")
            assert is_error(lst.selected_event())
            await pilot.press("E")
            await wait_for(pilot, lambda: lst.selected_event().seq == first.seq, what="back to the first")

    async def test_lines_show_step_paths_kinds_and_summaries(self, real_dump: Path) -> None:
        """Each line shows time, thread, step path, kind and a summary."""
        app = make_app(real_dump, initial="timeline")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "steps")
            await pilot.pause()
            text = screen_text(app)
            assert "turn/lookup" in text
            assert "→ lookup_order(" in text
            assert "MainThread" in text

    async def test_a_key_with_a_newline_stays_on_its_line(self, tmp_path: Path) -> None:
        """A payload key holding a newline is shown as ⏎, not as a break that pushes the next lines down."""
        from . import builder

        script = builder.Script()
        script.add("note", **{"first\nsecond": 1})
        script.add("note", nested={"a\nb": 2})
        script.add("note", text="after")
        rows = [line for line in (await timeline_text(script, tmp_path)).splitlines() if " note " in line]
        assert len(rows) == 3
        assert "first⏎ second=1" in rows[0] and "a⏎ b: 2" in rows[1] and "text=after" in rows[2]

    async def test_bidirectional_and_control_characters_are_shown_escaped(self, tmp_path: Path) -> None:
        """A right-to-left override in a value, a step name or a thread name would reorder the
        rest of the line on screen (text reading as something else): shown escaped instead."""
        from . import builder

        script = builder.Script()
        script.add("note", text="pay \u202eevil\u202c now", thread="worker\u2067x")
        script.add("note", text="bell\x07 and\x1b[31m red")
        text = await timeline_text(script, tmp_path)
        assert not any(c in text for c in "\u202e\u202c\u2067\x07\x1b")
        assert "pay \\u202eevil\\u202c now" in text and "bell\\x07 and\\x1b[31m red" in text

    async def test_enter_opens_the_payload_tree(self, real_dump: Path) -> None:
        """Enter opens Detail: a tree of the payload, with redaction markers kept visible."""
        app = make_app(real_dump, initial="timeline")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("enter")  # the first event: the note with a redacted email
            await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), what="the detail screen")
            assert isinstance(app.screen, DetailScreen)
            tree = app.screen.query_one(Tree)
            labels = [str(node.label) for node in tree.root.children]
            assert any(label.startswith("text: ") and "<EMAIL:" in label for label in labels)
            assert "alice@example.com" not in screen_text(app)
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, TimelineScreen)

    async def test_detail_shows_odd_keys_whole_and_escaped(self, tmp_path: Path) -> None:
        """A key with a line break, a control or bidi character, or none at all, is shown on one
        line as a quoted, escaped literal, so it cannot be cut short or pass for another key;
        a plain key stays as it is."""
        from . import builder

        script = builder.Script()
        script.add(
            "note",
            **{"a\nb": 1, "plain key": 2, "'a\\nb'": 3, "": 4, "nested": {"x\u202ey\r\nsecond line": "v"}},
        )
        app = make_app(builder.write_events(tmp_path / "d", script.events), initial="timeline")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail")
            await pilot.pause()
            tree = app.screen.query_one(Tree)
            labels = [node.label.plain for node in tree.root.children]
            nested = next(node for node in tree.root.children if node.label.plain.startswith("nested"))
            assert labels == ["'a\\nb': 1", "plain key: 2", "\"'a\\\\nb'\": 3", "'': 4", "nested  {1}"]
            assert [node.label.plain for node in nested.children] == ["'x\\u202ey\\r\\nsecond line': 'v'"]
            text = screen_text(app)
            assert "'a\\nb': 1" in text and "second line" in text and "\u202e" not in text


async def timeline_text(script: Any, directory: Path) -> str:
    """What the timeline shows of a dump of ``script``'s events (tests/tui/builder.py)."""
    from . import builder

    app = make_app(builder.write_events(directory / "d", script.events), initial="timeline")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.pause()
        return screen_text(app)


class TestSteps:
    async def test_tree_and_enter_filters_the_timeline(self, real_dump: Path) -> None:
        """The steps tree shows durations and errors; Enter narrows the timeline to that step."""
        app = make_app(real_dump, initial="steps")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "steps")
            tree = app.screen.query_one(Tree)
            assert "12 steps, 2 failed" in str(tree.root.label)
            labels = [str(n.label) for n in tree.root.children]
            assert labels[0].startswith("turn")
            nodes = [tree.get_node_at_line(i) for i in range(tree.last_line + 1)]
            failing = next(n for n in nodes if n is not None and "✗" in str(n.label))
            assert str(failing.label).startswith("lookup")
            # The screen opens on the first failure, its details beside the tree.
            await wait_for(pilot, lambda: tree.cursor_node is failing, what="cursor on the failed step")
            await wait_for(pilot, lambda: "error" in screen_text(app).split("Enter:")[0], what="its details")
            assert f"#{failing.data.id}" in screen_text(app)
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, TimelineScreen)
            lst = timeline_list(app)
            await wait_for(pilot, lambda: not lst.view.scanning, what="filter scan")
            step = failing.data
            seqs = [lst.view.event_at(i).seq for i in range(len(lst.view))]
            assert seqs[0] == step.start_seq and seqs[-1] == step.end_seq
            assert "filter: step: lookup" in screen_text(app)
            assert {lst.view.event_at(i).kind for i in range(len(lst.view))} >= {"step_start", "tool_call", "step_end"}

    async def test_a_rebuild_keeps_the_cursor_on_its_step(self, real_dump: Path) -> None:
        """New steps arriving live rebuild the tree: the cursor stays on the user's step."""
        app = make_app(real_dump, initial="steps")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "steps")
            tree = app.screen.query_one(Tree)
            await wait_for(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.data is not None)
            first = tree.get_node_at_line(1)
            assert first is not None and first is not tree.cursor_node
            tree.move_cursor(first)
            chosen = first.data.id
            screen = app.screen
            assert isinstance(screen, StepsScreen)
            await wait_for(pilot, lambda: screen._on == chosen, what="the highlight handled")
            screen.fact_changed("steps")  # what a live recording's new steps do
            await pilot.pause()
            await wait_for(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.data is not None)
            assert tree.cursor_node.data.id == chosen

    async def test_coming_back_keeps_the_cursor(self, real_dump: Path) -> None:
        """Back from the timeline (Enter on a step, then 3), the tree is where the user left it."""
        app = make_app(real_dump, initial="steps")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "steps")
            tree = app.screen.query_one(Tree)
            await wait_for(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.data, what="cursor")
            await pilot.press("home", "down")
            chosen = tree.cursor_node
            assert chosen is not None and not chosen.data.error  # not where the screen opened
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, TimelineScreen)
            await pilot.press("3")
            await wait_for(pilot, lambda: isinstance(app.screen, StepsScreen), what="the steps screen")
            assert isinstance(app.screen, StepsScreen)
            assert app.screen.query_one(Tree).cursor_node is chosen


class TestTools:
    async def test_stats_and_calls(self, real_dump: Path) -> None:
        """The tools table shows calls, errors and percentiles; Enter lists the calls; Enter again jumps."""
        app = make_app(real_dump, initial="tools")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "tool_stats")
            stats = app.screen.query_one("#tk-stats", DataTable)
            assert stats.row_count == 2
            first_row = [str(c) for c in stats.get_row_at(0)]
            assert first_row[0] == "lookup_order" and first_row[1] == "6" and first_row[2] == "2"
            stats.focus()
            stats.move_cursor(row=0)
            await pilot.press("enter")
            calls = app.screen.query_one("#tk-calls", DataTable)
            await wait_for(pilot, lambda: calls.row_count == 6, what="calls listed")
            assert "503 Service Unavailable" in screen_text(app)
            calls.move_cursor(row=5)
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, TimelineScreen)
            lst = timeline_list(app)
            await wait_for(
                pilot,
                lambda: lst.selected_event() is not None and lst.selected_event().kind == "tool_call",
                what="jump to call",
            )
            assert lst.selected_event().data["tool"] == "lookup_order"


class TestMemory:
    async def test_plot_items_and_evicted_then_needed(self, real_dump: Path) -> None:
        """The memory screen plots usage, lists live items at the cursor, flags evicted-then-needed."""
        app = make_app(real_dump, initial="memory")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "memory")
            text = screen_text(app)
            assert "context samples, peak" in text
            assert "evicted then needed again" in text
            items = app.screen.query_one("#mm-items", DataTable)
            await wait_for(pilot, lambda: items.row_count == 6, what="live items at the end")
            plot = app.screen.query_one(LimitPlot)
            plot.focus()
            await pilot.press("home")
            await wait_for(pilot, lambda: items.row_count == 1, what="live items at the start")
            assert "Live items at seq" in screen_text(app)

    async def test_arrows_move_one_sample(self, real_dump: Path) -> None:
        """← and → go to the previous and next sample, however many columns a sample spans."""
        app = make_app(real_dump, initial="memory")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "memory")
            plot = app.screen.query_one(LimitPlot)
            plot.focus()
            await pilot.pause()
            last = plot.selected_index()
            assert last is not None and last >= 2 and len(plot.values) < plot.content_region.width - 8
            await pilot.press("left")
            assert plot.selected_index() == last - 1
            await pilot.press("left", "right")
            assert plot.selected_index() == last - 1
            await pilot.press("home", "right")
            assert plot.selected_index() == 1

    async def test_coming_back_keeps_the_selected_point(self, real_dump: Path) -> None:
        """The live items stay those of the point under the plot's cursor after visiting another screen."""
        app = make_app(real_dump, initial="memory")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "memory")
            items = app.screen.query_one("#mm-items", DataTable)
            await wait_for(pilot, lambda: items.row_count == 6, what="live items at the end")
            app.screen.query_one(LimitPlot).focus()
            await pilot.press("home")
            await wait_for(pilot, lambda: items.row_count == 1, what="live items at the start")
            await pilot.press("2")
            await pilot.pause()
            await pilot.press("5")
            await wait_for(pilot, lambda: isinstance(app.screen, MemoryScreen), what="the memory screen")
            shown = app.screen
            assert isinstance(shown, MemoryScreen)
            await wait_for(pilot, lambda: shown.query_one("#mm-items", DataTable).row_count == 1, what="the one item")

    async def test_thousands_of_live_items_list_the_newest(self, frdir: Path) -> None:
        """Over MAX_ITEM_ROWS live items: the newest are listed after a line counting the rest,
        and the title counts them all; moving the cursor back lists fewer."""
        from flightrec.tui.screens.memory import MAX_ITEM_ROWS

        flightrec.start(dir=frdir, triggers=False, resources=0)
        for i in range(MAX_ITEM_ROWS + 200):
            flightrec.memory.retain(f"doc:{i}", tokens=10, reason="kept")
            if i % 100 == 99:
                flightrec.memory.context(10 * (i + 1), 100_000)
        path = flightrec.dump()
        flightrec.stop()
        assert path is not None
        app = make_app(path, initial="memory")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "memory")
            items = app.screen.query_one("#mm-items", DataTable)
            await wait_for(pilot, lambda: items.row_count == MAX_ITEM_ROWS + 1, what="the newest items")
            assert str(items.get_row_at(0)[0]) == "… 200 older items not listed"
            assert str(items.get_row_at(MAX_ITEM_ROWS)[0]) == f"doc:{MAX_ITEM_ROWS + 199}"
            title = app.screen.query_one("#mm-items-title", Static)
            assert f"{MAX_ITEM_ROWS + 200} items" in str(title.render())
            app.screen.query_one(LimitPlot).focus()
            await pilot.press("home")
            await wait_for(pilot, lambda: items.row_count == 100, what="the items at the first sample")


class TestCheckpoints:
    async def test_pick_two_and_see_the_diff(self, real_dump: Path) -> None:
        """a and b pick two checkpoints; the diff shows added paths and a text diff of changed strings."""
        app = make_app(real_dump, initial="checkpoints")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "checkpoints")
            table = app.screen.query_one("#ck-table", DataTable)
            assert table.row_count == 6
            table.focus()
            table.move_cursor(row=3)  # turn-4: status "working"
            await pilot.press("a")
            table.move_cursor(row=5)  # turn-6: status "failing"
            await pilot.press("b")
            diff = app.screen.query_one("#ck-diff", Static)
            await wait_for(pilot, lambda: "change(s) from" in screen_text(app), what="diff")
            text = screen_text(app)
            assert "A turn-4" in text and "B turn-6" in text
            assert "+ messages[4]" in text and "~ status" in text
            assert "- working" in text and "+ failing" in text
            assert diff is not None

    async def test_picks_reuse_one_snapshot(self, real_dump: Path) -> None:
        """Each pick diffs on the same snapshot: a new one would analyse the whole recording again."""
        app = make_app(real_dump, initial="checkpoints")
        src = app.source
        assert src is not None
        opened: list[object] = []
        open_snapshot = src.open_snapshot

        def counting() -> object:
            opened.append(1)
            return open_snapshot()

        src.open_snapshot = counting  # type: ignore[method-assign]
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "checkpoints")
            await wait_for(pilot, lambda: "change(s) from" in screen_text(app), what="first diff")
            opened.clear()  # the analysis' own snapshot and the first diff's
            table = app.screen.query_one("#ck-table", DataTable)
            table.focus()
            for row, side in ((1, "a"), (4, "b"), (2, "a")):
                table.move_cursor(row=row)
                await pilot.press(side)
                a, b = app.screen.picked["a"], app.screen.picked["b"]
                await wait_for(pilot, lambda a=a, b=b: f"(seq {a.seq}) to B" in screen_text(app), what="diff")
            assert opened == []

    async def test_no_checkpoints_names_the_real_call(self, tmp_path: Path) -> None:
        """The hint on an empty screen can be copied: checkpoint() takes the state first."""
        import inspect

        import flightrec

        from . import builder

        script = builder.Script()
        script.add("note", text="no checkpoint here")
        path = builder.write_events(tmp_path / "d", script.events)
        assert list(inspect.signature(flightrec.checkpoint).parameters)[:2] == ["state", "label"]
        app = make_app(path, initial="checkpoints")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "checkpoints")
            await pilot.pause()
            assert "flightrec.checkpoint(state, label=...)" in screen_text(app)


class TestResources:
    async def test_sparklines(self, rich_dump: Path) -> None:
        """RSS and CPU sparklines hold one value per sample."""
        app = make_app(rich_dump, initial="resources")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "resources")
            await pilot.pause()
            assert len(app.screen.query_one("#rs-rss", ZeroSparkline).data) == 9
            assert "max 50.0%" in screen_text(app)


class TestUnavailable:
    async def test_screens_say_when_analysis_is_missing(self, rich_dump: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without the analysis API, steps and tools say so instead of failing."""
        from flightrec.tui import app as app_module

        monkeypatch.setattr(app_module, "available", lambda rec, name: name in ("counts", "memory", "resources"))
        app = make_app(rich_dump, initial="steps")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app)
            assert "not available in this recording" in screen_text(app)
            await pilot.press("4")
            await pilot.pause()
            assert "not available in this recording" in screen_text(app)

    async def test_a_failed_analysis_says_it_failed(self, rich_dump: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """An analysis that raises is shown as failed, with why, not as missing from the recording."""
        from flightrec.tui import app as app_module

        real = app_module.compute

        def compute(name: str, rec: object) -> object:
            if name == "steps":
                raise RuntimeError("the analysis process died")
            return real(name, rec)

        monkeypatch.setattr(app_module, "compute", compute)
        app = make_app(rich_dump, initial="steps")
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "the analysis failed" in screen_text(app), what="the failure said")
            assert "RuntimeError: the analysis process died" in screen_text(app)
            assert "not available in this recording" not in screen_text(app)


class TestStartScreen:
    async def test_a_damaged_ring_is_listed_as_damaged(self, frdir: Path, tmp_path: Path) -> None:
        """A ring whose header is garbage shows as damaged, not as a dead recorder with a garbage pid."""
        from flightrec.tui.screens.start import StartScreen

        from tests.conftest import run_child
        from tests.test_cli_process import RECORDING_CHILD, _scramble

        proc = run_child(
            RECORDING_CHILD.replace("time.sleep(", "import os; os.kill(os.getpid(), 9); time.sleep("), frdir
        )
        assert proc.returncode == -9, proc.stderr
        [ring] = frdir.glob("*.ring")
        listing = tmp_path / "rings"
        listing.mkdir(mode=0o700)
        _scramble(ring, listing / "x.ring")
        app = FlightrecApp(start_dir=str(listing))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, StartScreen)
            text = screen_text(app)
            assert "damaged" in text and "x.ring" in text and "dead" not in text
            await pilot.press("enter")  # opening it must not take the app down
            await pilot.pause()
            assert app.is_running

    async def test_lists_dumps_and_opens_one(self, rich_dump: Path) -> None:
        """`flightrec tui`: the start screen lists the dump; Enter opens it on the overview."""
        from flightrec.tui.screens.start import StartScreen

        app = FlightrecApp(start_dir=str(rich_dump.parent))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, StartScreen)
            table = app.screen.query_one(DataTable)
            assert table.row_count == 1
            assert "agent.frec" in screen_text(app)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen), what="overview")
            assert app.source is not None and app.source.path == rich_dump
            await pilot.press("2")
            await pilot.pause()
            assert isinstance(app.screen, TimelineScreen)
            await pilot.press("backspace")
            await wait_for(pilot, lambda: isinstance(app.screen, StartScreen), what="back to the list")
            assert app.source is None


class TestDemoDump:
    async def test_walk_through_the_demo_failure(self, demo_dump: Path) -> None:
        """On the demo's dump: findings on the overview, the error in the timeline, a checkpoint diff."""
        app = make_app(demo_dump)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "findings")
            assert app.facts["findings"], "the demo's failure yields findings"
            assert "Findings" in screen_text(app)
            await pilot.press("2")
            await pilot.pause()
            lst = timeline_list(app)
            await pilot.press("e")
            await wait_for(
                pilot, lambda: lst.selected_event() is not None and is_error(lst.selected_event()), what="first error"
            )
            await pilot.press("6")
            await settle(pilot, app, "checkpoints")
            table = app.screen.query_one("#ck-table", DataTable)
            assert table.row_count >= 2
            await wait_for(pilot, lambda: "change(s) from" in screen_text(app), what="default diff")
            # The demo retries a tool, checkpointing one state five times: the first diff is the
            # last checkpoint against the latest with another state, not "identical".
            screen = app.screen
            assert isinstance(screen, CheckpointsScreen)
            cps = screen._checkpoints()
            a, b = screen.picked["a"], screen.picked["b"]
            between = cps[cps.index(a) + 1 :]
            assert b is cps[-1] and len(between) >= 2 and a.root != b.root
            assert all(cp.root == b.root for cp in between)
            assert "the two states are identical" not in screen_text(app) and "unchanged" in screen_text(app)
            assert table.cursor_row == table.row_count - 1  # on B
            for key in "34577":
                await pilot.press(key)
                await pilot.pause()
            assert isinstance(app.screen, ResourcesScreen)


class TestPalette:
    async def test_timeline_actions_from_the_palette(self, rich_dump: Path) -> None:
        """'Timeline: next error' from the command palette switches screens and selects the error."""
        app = make_app(rich_dump)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app)
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"next error")
            await wait_for(pilot, lambda: "Timeline: next error" in screen_text(app), what="palette match")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, TimelineScreen), what="timeline")
            lst = timeline_list(app)
            await wait_for(
                pilot,
                lambda: lst.selected_event() is not None and is_error(lst.selected_event()),
                what="error selected",
            )


class TestOffload:
    async def test_big_recordings_are_analysed_in_another_process(
        self, real_dump: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Above the size threshold the analysis runs in a worker process; results are the same."""
        from flightrec.tui import app as app_module

        from flightrec.reader import open_recording

        monkeypatch.setattr(app_module, "OFFLOAD_EVENTS", 0)
        app = make_app(real_dump, initial="tools")
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: {"counts", "tool_stats"} <= set(app.facts), timeout=60, what="facts")
            assert app.facts["tool_stats"] == open_recording(real_dump).tool_stats()
            assert app.facts["counts"].by_kind["tool_call"] == 12


class TestHostileText:
    async def test_no_screen_lets_recorded_text_drive_the_terminal(self, frdir: Path) -> None:
        """Names, labels, ids, messages and states from a recording are shown with control and
        bidi characters escaped on every screen, as in the timeline: an ESC sequence in a tool's
        name or an exception must not clear the screen, recolour it or retitle the window."""
        from ..conftest import run_child

        result = run_child(
            """
            import threading, flightrec.auto, flightrec
            EVIL = "\\x1b[2J\\x1b]0;pwned\\x07\\u202e\\r\\x9b31m"

            @flightrec.tool(name="search" + EVIL)
            def search(q):
                raise TimeoutError("timed out" + EVIL)

            threading.current_thread().name = "main[/]" + EVIL
            with flightrec.step("plan" + EVIL, goal="answer" + EVIL, **{"[/]" + EVIL: 1}):
                flightrec.record("kind[/]" + EVIL, text="x")
                flightrec.memory.retain("doc" + EVIL, tokens=400, reason="why" + EVIL, source="s" + EVIL)
                flightrec.memory.context(used_tokens=400, limit_tokens=1000)
                flightrec.checkpoint({"notes": ["a" + EVIL]}, label="first" + EVIL)
                flightrec.checkpoint({"notes": ["b" + EVIL], "new" + EVIL: 1}, label="second" + EVIL)
                try:
                    search("q")
                except TimeoutError:
                    pass
                raise RuntimeError("fatal" + EVIL)
            """,
            frdir,
        )
        assert result.returncode == 1, result.stderr
        [dump] = frdir.glob("*.frec")
        bad = set("\x1b\x07\r\x9b\u202e")
        app = make_app(dump)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app, "findings")
            seen = {}
            for key, fact in zip("1234567", ("", "", "steps", "tool_stats", "memory", "checkpoints", ""), strict=True):
                await pilot.press(key)
                if fact:
                    await settle(pilot, app, fact)
                await pilot.pause(0.2)
                seen[key] = screen_text(app)
            await pilot.press("4")
            await pilot.pause()
            stats = app.screen.query_one("#tk-stats", DataTable)
            stats.focus()
            stats.move_cursor(row=0)
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.screen.query_one("#tk-calls", DataTable).row_count == 1, what="calls")
            seen["calls"] = screen_text(app)
            await pilot.press("2")
            await pilot.press("home", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail")
            await pilot.pause()
            seen["detail"] = screen_text(app)
            await pilot.press("escape", "F")
            await wait_for(pilot, lambda: isinstance(app.screen, FilterScreen), what="filter")
            await pilot.pause()
            seen["filter"] = screen_text(app)
        leaks = {screen: [line for line in text.splitlines() if set(line) & bad] for screen, text in seen.items()}
        assert {screen: lines for screen, lines in leaks.items() if lines} == {}
        assert "fatal\\x1b[2J" in seen["1"] and "plan\\x1b[2J" in seen["3"] and "search\\x1b[2J" in seen["4"]
        assert "doc\\x1b[2J" in seen["5"] and "second\\x1b[2J" in seen["6"] and "timed out\\x1b[2J" in seen["calls"]
        assert "main[/]\\x1b[2J" in seen["detail"] and "kind[/]\\x1b[2J" in seen["filter"]
