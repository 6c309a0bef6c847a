"""``flightrec recover``: turn ring files left by dead processes into dumps."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ..dump import recorded_dump_dir, recover_ring
from ..errors import (
    CorruptRecording,
    DumpFailed,
    FlightrecError,
    RecordingNotFound,
    UnsupportedVersion,
    UsageError,
)
from ..outputs import display_path, terminal_safe
from ..paths import check_private_dir
from ..reader import Recording, open_recording
from .discovery import RingInfo, dump_dirs, find_rings, read_ring_info, require_dir


def configure(p: argparse.ArgumentParser) -> None:
    """Add the verb's arguments."""
    p.add_argument("rings", nargs="*", help="ring files to recover (default: every orphaned ring)")
    p.add_argument("--dir", help="ring directory to search (default: FLIGHTREC_DIR or the per-user dir)")
    p.add_argument(
        "-o",
        "--out",
        help="directory for the dumps, made (0700) if missing (default: where each ring's process wrote its dumps, "
        "else the dump directory)",
    )
    p.add_argument("--keep", action="store_true", help="keep the ring files after recovering them")


def recover_file(
    path: Path, out_dir: Path | None, keep: bool = False, note: Callable[[str], None] | None = None
) -> Path:
    """Recover one ring file into ``out_dir`` (None: see :func:`recover_into`, which tells
    ``note`` why a dump does not go beside its process's own); remove the ring (and its
    fatal log) unless ``keep``."""
    rec = open_recording(path)
    try:
        if rec.kind != "ring":
            raise FlightrecError(f"{path} is already a dump, not a ring file")
        if (rec.damaged or rec.warnings) and not (rec.blocks or rec.open_events or rec.pinned):
            # a dump of nothing would read as a success; the ring is left for another try
            raise CorruptRecording(f"{path}: damaged, and nothing could be salvaged")
        fatal = path.with_suffix(".fatal")
        if fatal.exists():
            try:
                text = fatal.read_text(errors="replace")[-65536:]
                if text.strip():
                    rec.meta["fatal_error"] = text
            except OSError:
                pass
        out = recover_into(rec, out_dir, note)
    finally:
        rec.close()
    if not keep:
        for p in (path, path.with_suffix(".fatal")):
            try:
                os.unlink(p)
            except OSError:
                pass
    return out


def recover_into(rec: Recording, out_dir: Path | None, note: Callable[[str], None] | None = None) -> Path:
    """Write the dump of the opened ring ``rec`` into ``out_dir``; with None, where its
    process wrote its own dumps (its ring header says: ``flightrec run --dir D`` then
    ``flightrec recover --dir D`` puts the dump in D, beside the others), or, when the header
    does not say or that directory cannot be used, into this user's dump directory: then
    ``note`` is told why, as the user looks for the dump beside the others."""
    if out_dir is not None:
        return recover_ring(rec, out_dir)
    fallback = default_out_dir()
    recorded = recorded_dump_dir(rec.meta)
    if recorded is not None and recorded != fallback:
        try:
            return recover_ring(rec, recorded)
        except DumpFailed as exc:  # (not ours, writable by others, full): this user's, as without it
            if note is not None:
                note(f"{exc}; the dump goes to {fallback} instead")
    elif recorded is None and note is not None:
        config = rec.meta.get("config")
        said = config.get("dump_dir") if isinstance(config, dict) else None
        if isinstance(said, str) and os.path.isabs(said) and Path(said) != fallback:
            note(f"its dump directory {said} is gone; the dump goes to {fallback} instead")
    return recover_ring(rec, fallback)


def default_out_dir() -> Path:
    """This user's dump directory (``FLIGHTREC_DUMP_DIR``, ``FLIGHTREC_DIR``, else the
    per-user default: :func:`dump_dirs` always ends with it)."""
    return dump_dirs()[0]


def run(args: argparse.Namespace) -> int:
    """Recover the named rings, or every ring whose process is gone."""
    require_dir(args.dir)
    out_dir = _out_dir(args.out)
    made = out_dir is not None and not os.path.lexists(out_dir)
    if args.rings:
        targets = [_named_ring(r) for r in args.rings]
    else:
        targets = [r for r in find_rings(args.dir) if not r.alive or r.closed]
    if not targets:
        print("nothing to recover: no ring file of a dead process found")
        return 0
    code = 0
    for info in targets:
        try:
            out: Path | None = _recover_one(info, out_dir, args.keep, _say)
        except FlightrecError as exc:
            out = None
            # (the reader's errors begin with the path too: "could not recover X: X: damaged" otherwise)
            why = str(exc).removeprefix(f"{display_path(info.path)}: ")
            print(f"flightrec: error: {terminal_safe(f'could not recover {info.path}: {why}')}", file=sys.stderr)
            code = exc.exit_code
        if made and out_dir is not None and out_dir.is_dir():
            # (made, 0700, as the first dump was written into it: as `run --dir` and `demo --dir` make theirs)
            _say(f"made the directory {out_dir}")
            made = False
        if out is not None:
            print(f"recovered {info.path} -> {out}")
    return code


def _out_dir(out: str | None) -> Path | None:
    """The ``-o`` directory, checked before any ring is read: a missing one is made (0700) as
    the first dump is written into it; an empty path or a file is a usage error.

    Raises:
        UsageError: ``out`` is empty, or names something that is not a directory.
        UnsafeDirectory: the directory is writable by others, not the user's, or a symlink.
    """
    if out is None:
        return None
    if not out:
        raise UsageError("-o: empty path")
    path = Path(out).expanduser()
    try:
        is_file = path.exists() and not path.is_dir()
    except OSError as exc:  # e.g. a name too long
        raise UsageError(f"-o {out}: cannot use it ({exc.strerror})") from None
    if is_file:
        raise UsageError(f"-o {out}: not a directory")
    if path.is_dir():
        check_private_dir(path)  # (writable by others, not ours, a symlink: once, as run --dir and demo --dir say it)
    return path


def _say(note: str) -> None:
    print(f"flightrec: {terminal_safe(note)}", file=sys.stderr)  # (it may quote a path read from the ring)


def _named_ring(name: str) -> RingInfo:
    """The ring file named on the command line, refused if it is not one or its process runs."""
    if not name:  # (Path("") is ".": "is a directory" would be a puzzle)
        raise RecordingNotFound("the path is empty: give a ring file")
    p = Path(name)
    info = read_ring_info(p) if p.is_file() else None
    if info is None:
        with open_recording(p) as rec:  # raises the precise error for a missing or foreign file
            kind = rec.kind
        if kind == "dump":
            raise UsageError(
                f"{p} is a dump already, not a ring file: nothing to recover (`flightrec show {p}` reads it)"
            )
        raise FlightrecError(f"{p} is not a ring file")
    if info.alive and not info.closed and not info.damaged:  # a damaged header's pid means nothing
        raise FlightrecError(f"{p}: pid {info.pid} is still running; use `flightrec dump {info.pid}`")
    return info


def _recover_one(info: RingInfo, out_dir: Path | None, keep: bool, note: Callable[[str], None]) -> Path:
    """:func:`recover_file`; a ring whose header discovery found damaged fails as corrupt.

    The reader takes the header's format version at its word (a newer flightrec's ring), but
    with other impossible values beside it the version is garbage too: not "upgrade flightrec".
    """
    try:
        return recover_file(info.path, out_dir, keep, note)
    except (UnsupportedVersion, CorruptRecording) as exc:
        if not info.damaged or all(p.startswith("format version") for p in info.problems):
            raise
        raise CorruptRecording(f"damaged ring header ({info.problem}); nothing could be salvaged") from exc
