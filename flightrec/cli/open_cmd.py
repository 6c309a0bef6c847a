"""``flightrec open FILE``: a dump (or a ring file) in the TUI."""

from __future__ import annotations

import argparse
import os

from ..errors import RecordingNotFound


def configure(p: argparse.ArgumentParser) -> None:
    """Add the verb's arguments."""
    p.add_argument("file", help="a .frec dump or a ring file")
    p.add_argument(
        "--screen",
        default="overview",
        choices=["overview", "timeline", "steps", "tools", "memory", "checkpoints", "resources"],
        help="the screen to start on (default: overview)",
    )


def open_in_tui(path: str | os.PathLike[str], screen: str = "overview") -> int:
    """Open ``path`` in the TUI and return the exit code once the user quits.

    Raises:
        FlightrecError: the file is missing, not a recording, too new, or there is no terminal.
    """
    # The TUI (and textual) are imported only here: `import flightrec` and the other verbs stay light.
    from ..tui.app import FlightrecApp, run_app
    from ..tui.sources import open_source

    source = open_source(path)
    return run_app(FlightrecApp(source, initial="timeline" if source.is_live and screen == "overview" else screen))


def run(args: argparse.Namespace) -> int:
    """Open the file."""
    if not args.file:  # (not found, exit 5, as `show ''` says it)
        raise RecordingNotFound("the path is empty: give a dump or ring file (`flightrec ls` lists the dumps)")
    return open_in_tui(args.file, args.screen)
