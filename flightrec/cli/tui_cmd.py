"""``flightrec tui``: the TUI's start screen, listing live recorders and dumps."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    """Add the verb's arguments."""
    p.add_argument("--dir", help="list only this directory (default: FLIGHTREC_DIR or the per-user dirs)")


def run(args: argparse.Namespace) -> int:
    """Start the app on the list."""
    from ..tui.app import FlightrecApp, run_app
    from .discovery import require_dir

    require_dir(args.dir)
    return run_app(FlightrecApp(start_dir=args.dir))
