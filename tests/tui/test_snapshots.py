"""SVG snapshots of the main screens (pytest-textual-snapshot), on the deterministic dump.

Update them after a deliberate change with ``pytest tests/tui/test_snapshots.py --snapshot-update``
and review the SVGs. The dump has fixed times and pids and the zone is pinned to UTC, and
each snapshot waits for the background analysis, so runs are byte-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pytest_textual_snapshot")

from flightrec.tui.app import FlightrecApp
from flightrec.tui.sources import open_source

from .util import wait_for

SIZE = (130, 36)


def app_and_wait(path: Path, initial: str, *facts: str) -> tuple[FlightrecApp, Callable[[Any], Any]]:
    """An app on ``path`` and a ``run_before`` that waits for its background facts."""
    app = FlightrecApp(open_source(path), initial=initial)

    async def run_before(pilot: Any) -> None:
        await wait_for(pilot, lambda: all(f in app.facts for f in ("counts", *facts)), what=str(facts))
        # The screens redraw from the facts on the next turns of the event loop: let them all
        # run (one pause was not always enough on a loaded machine).
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        # What the screens do once their facts are in also takes turns of the loop, timers
        # and idle callbacks (a DataTable sizes its columns to its rows when the loop is next
        # idle, the steps tree moves its cursor once drawn, the memory items follow the plot
        # after it rests): on a loaded machine, a snapshot taken too soon caught them half
        # done. Wait until the screen has not changed for 0.3 s (3 s at most).
        shown, still = app.export_screenshot(), 0
        for _ in range(60):
            await pilot.pause(0.05)
            now = app.export_screenshot()
            still = still + 1 if now == shown else 0
            shown = now
            if still >= 6:
                break
        await pilot.pause()

    return app, run_before


def test_overview(snap_compare: Any, rich_dump: Path) -> None:
    """Overview: process, trigger, exception with traceback, counts, findings."""
    app, before = app_and_wait(rich_dump, "overview", "findings")
    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_timeline_at_the_first_error(snap_compare: Any, rich_dump: Path) -> None:
    """Timeline after `e`: the cursor on the first error, errors in red, step paths."""
    app, before = app_and_wait(rich_dump, "timeline", "steps")
    assert snap_compare(app, press=["e", "_"], terminal_size=SIZE, run_before=before)


def test_detail(snap_compare: Any, rich_dump: Path) -> None:
    """Detail of the first event: the payload tree with redaction markers."""
    app, before = app_and_wait(rich_dump, "timeline", "steps")
    assert snap_compare(app, press=["enter", "_"], terminal_size=SIZE, run_before=before)


def test_steps(snap_compare: Any, rich_dump: Path) -> None:
    """Steps: the tree with durations and failures."""
    app, before = app_and_wait(rich_dump, "steps", "steps")
    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_tools(snap_compare: Any, rich_dump: Path) -> None:
    """Tools: per-tool stats, and the calls of the failing tool."""
    app, before = app_and_wait(rich_dump, "tools", "tool_stats", "tools")
    assert snap_compare(app, press=["enter", "_"], terminal_size=SIZE, run_before=before)


def test_memory(snap_compare: Any, rich_dump: Path) -> None:
    """Memory: usage against the limit, operations, live items."""
    app, before = app_and_wait(rich_dump, "memory", "memory")
    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_resources(snap_compare: Any, rich_dump: Path) -> None:
    """Resources: sparklines."""
    app, before = app_and_wait(rich_dump, "resources", "resources")
    assert snap_compare(app, terminal_size=SIZE, run_before=before)
