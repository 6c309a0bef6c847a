"""Helpers for driving the app in tests: waiting for background work, reading the screen."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console


async def wait_for(pilot: Any, condition: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:
    """Pause the app until ``condition()`` holds (background workers, live polls)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.05)


def screen_text(app: Any) -> str:
    """The text a person would see on the app's current screen."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
    )
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


async def settle(pilot: Any, app: Any, *facts: str) -> None:
    """Wait until the named facts (and the event counts) are computed."""
    await wait_for(pilot, lambda: all(f in app.facts for f in ("counts", *facts)), what=f"facts {facts}")
    await pilot.pause()
