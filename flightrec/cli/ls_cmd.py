"""``flightrec ls``: live recorders and dumps of the current user."""

from __future__ import annotations

import argparse
import time

from ..outputs import terminal_safe
from .discovery import RingInfo, find_dumps, find_rings, human_age, human_size, require_dir


def configure(p: argparse.ArgumentParser) -> None:
    """Add the verb's arguments."""
    p.add_argument("--dir", help="look only in this directory (default: FLIGHTREC_DIR or the per-user dirs)")


def run(args: argparse.Namespace) -> int:
    """List recorders and dumps; exit 0 even when there are none (2 or 5 for a bad ``--dir``)."""
    require_dir(args.dir)
    rings = find_rings(args.dir)
    print("RECORDERS")
    if not rings:
        print("  (none)")
    for r in rings:
        print_ring(r)
    dumps = find_dumps(args.dir)
    print("DUMPS")
    if not dumps:
        print("  (none)")
    for d in dumps:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d.mtime))
        print(f"  {when}  {human_size(d.size):>9}  {_shown(d.path)}")
    return 0


def _shown(text: object) -> str:
    """A command line read from a ring header, or a file name, fit for a terminal: an escape
    sequence in it (an agent's argv, a file named by someone else) is shown escaped, as
    ``show`` shows it, never sent to the terminal."""
    return terminal_safe(str(text))


def print_ring(r: RingInfo) -> None:
    """Two lines (three for a damaged header) about one ring file."""
    command = _shown(r.command[:80])
    if r.damaged:
        print(f"  {'?':>7}  damaged  age {'?':>7}  {human_size(r.size):>9}  {command}")
        print(f"           {_shown(r.path)}")
        print(f"           damaged header ({r.problem}): `flightrec recover {_shown(r.path)}` tries to salvage it")
        return
    # A ring its process closed and kept (a dump failed, FLIGHTREC_KEEP_RING) is recovered as
    # a dead one is: both say what turns them into a dump.
    state = "live" if r.alive and not r.closed else ("closed" if r.closed else "dead") + ": run `flightrec recover`"
    print(f"  {r.pid:>7}  {state:<6}  age {human_age(r.age_s):>7}  {human_size(r.size):>9}  {command}")
    print(f"           {_shown(r.path)}")
