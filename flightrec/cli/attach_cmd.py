"""``flightrec attach [PID]``: the TUI on a running recorder, live."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import FlightrecError, RecordingNotFound
from .discovery import find_ring_for_pid, find_rings, require_dir


def configure(p: argparse.ArgumentParser) -> None:
    """Add the verb's arguments."""
    p.add_argument(
        "target",
        nargs="?",
        help="pid of the recorded process, or its ring file (default: pick from the running recorders)",
    )
    p.add_argument("--dir", help="ring directory (default: FLIGHTREC_DIR or the per-user dir)")


def resolve_ring(target: str | None, directory: str | None) -> Path | None:
    """The ring file to attach to; None when the user must pick among several.

    Raises:
        RecordingNotFound: no such pid or file, or no live recorder at all.
        FlightrecError: the process is not running any more.
    """
    from ..tui.sources import process_alive

    if target is None:
        rings = find_rings(directory)
        live = [r for r in rings if r.alive and not r.closed and not r.damaged and process_alive(r.pid)]
        if not live:
            raise RecordingNotFound("no running flightrec recorder found (see `flightrec ls`)")
        return live[0].path if len(live) == 1 else None
    if not target:  # (Path("") is ".": "is a directory" would be a puzzle)
        raise RecordingNotFound("the path is empty: give a pid or a ring file")
    if target.isdigit():
        info = find_ring_for_pid(int(target), directory)
        if info is None:
            raise RecordingNotFound(f"no flightrec recorder found for pid {target} (see `flightrec ls`)")
        if info.closed or not process_alive(info.pid):
            raise FlightrecError(
                f"pid {target} is not running any more; `flightrec open {info.path}` shows "
                "what it recorded and `flightrec recover` turns it into a dump"
            )
        return info.path
    path = Path(target)
    if not path.exists():
        raise RecordingNotFound(f"{target}: no such pid or ring file")
    return path


def run(args: argparse.Namespace) -> int:
    """Attach to the recorder (or let the user pick one)."""
    require_dir(args.dir)
    ring = resolve_ring(args.target, args.dir)
    from ..tui.app import FlightrecApp, run_app
    from ..tui.sources import LiveSource

    if ring is None:
        return run_app(FlightrecApp(start_dir=args.dir))
    source = LiveSource.attach(ring)
    return run_app(FlightrecApp(source, initial="timeline"))
