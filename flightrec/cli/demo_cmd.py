"""``flightrec demo``: run the bundled demo agent under the recorder, then show its dump."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import FlightrecError, UsageError
from ..paths import ensure_private_dir


def configure(p: argparse.ArgumentParser) -> None:
    """Add the verb's arguments."""
    p.add_argument("--dir", help="where the demo's ring and dump go (default: a new temp dir)")
    p.add_argument("--no-tui", action="store_true", help="print the dump's summary instead of opening the TUI")


def run_demo_agent(directory: Path) -> Path:
    """Run the demo agent in a child process; return the dump it wrote when it failed."""
    env = dict(os.environ, FLIGHTREC_DIR=str(directory))
    proc = subprocess.run([sys.executable, "-m", "flightrec.demo"], env=env, capture_output=True, text=True)
    dumps = sorted(directory.glob("*.frec"), key=lambda p: p.stat().st_mtime)
    if not dumps:
        raise FlightrecError(f"the demo agent wrote no dump (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    sys.stdout.write(proc.stdout)
    return dumps[-1]


def demo_dir(explicit: str | None) -> Path:
    """The directory for the demo's ring and dump: ``explicit``, else a new temporary one.

    An existing directory is used as it is: its permissions are the user's, never changed
    (one writable by others is refused, as the recorder would refuse it); a new one is made
    0700.

    Raises:
        UsageError: ``explicit`` is empty or names something that is not a directory.
        UnsafeDirectory: the directory is a symlink, not the user's, or writable by others.
    """
    if explicit == "":  # (not "no --dir": a new temporary directory would not be what was asked)
        raise UsageError("--dir: empty path")
    if explicit is None:
        return Path(tempfile.mkdtemp(prefix="flightrec-demo-"))  # (0700)
    path = Path(explicit).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"--dir {explicit}: not a directory")
    return ensure_private_dir(path)


def run(args: argparse.Namespace) -> int:
    """Run the demo, then open (or summarize) the dump."""
    dump = run_demo_agent(demo_dir(args.dir))
    print(f"demo agent failed as planned; dump written to {dump}")
    if args.no_tui or not sys.stdout.isatty():
        from ..reader import open_recording
        from .show_cmd import summary

        with open_recording(dump) as rec:
            print(summary(rec))
        return 0
    try:
        from .open_cmd import open_in_tui  # type: ignore[attr-defined]
    except ImportError:
        from ..reader import open_recording
        from .show_cmd import summary

        with open_recording(dump) as rec:
            print(summary(rec))
        return 0
    return int(open_in_tui(dump))
