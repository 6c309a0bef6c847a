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
from textual.widgets import DataTable

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
        # A DataTable sizes its columns to the rows added when the loop is next idle; on a
        # loaded machine that can come after the pauses above, and a snapshot then shows the
        # columns cut at their titles' width.
        await wait_for(
            pilot,
            lambda: not any(getattr(t, "_require_update_dimensions", False) for t in app.screen.query(DataTable)),
            what="tables sized",
        )
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
