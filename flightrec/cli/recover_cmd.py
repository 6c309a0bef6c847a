"""``flightrec recover``: turn ring files left by dead processes into dumps."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..dump import recover_ring
from ..errors import FlightrecError
from ..paths import default_dump_dir
from ..reader import open_recording
from .discovery import dump_dirs, find_rings, read_ring_info


def configure(p: argparse.ArgumentParser) -> None:
    """Add the verb's arguments."""
    p.add_argument("rings", nargs="*", help="ring files to recover (default: every orphaned ring)")
    p.add_argument("--dir", help="ring directory to search (default: FLIGHTREC_DIR or the per-user dir)")
    p.add_argument("-o", "--out", help="directory for the dumps (default: the dump directory)")
    p.add_argument("--keep", action="store_true", help="keep the ring files after recovering them")


def recover_file(path: Path, out_dir: Path, keep: bool = False) -> Path:
    """Recover one ring file into ``out_dir``; remove the ring (and its fatal log) unless ``keep``."""
    rec = open_recording(path)
    try:
        if rec.kind != "ring":
            raise FlightrecError(f"{path} is already a dump, not a ring file")
        fatal = path.with_suffix(".fatal")
        if fatal.exists():
            try:
                text = fatal.read_text(errors="replace")[-65536:]
                if text.strip():
                    rec.meta["fatal_error"] = text
            except OSError:
                pass
        out = recover_ring(rec, out_dir)
    finally:
        rec.close()
    if not keep:
        for p in (path, path.with_suffix(".fatal")):
            try:
                os.unlink(p)
            except OSError:
                pass
    return out


def run(args: argparse.Namespace) -> int:
    """Recover the named rings, or every ring whose process is gone."""
    out_dir = Path(args.out).expanduser() if args.out else (dump_dirs()[0] if dump_dirs() else default_dump_dir())
    targets: list[Path] = []
    if args.rings:
        for r in args.rings:
            p = Path(r)
            info = read_ring_info(p) if p.is_file() else None
            if info is None:
                open_recording(p)  # raises the precise error for a missing or foreign file
                raise FlightrecError(f"{p} is not a ring file")
            if info.alive and not info.closed:
                raise FlightrecError(f"{p}: pid {info.pid} is still running; use `flightrec dump {info.pid}`")
            targets.append(p)
    else:
        targets = [r.path for r in find_rings(args.dir) if not r.alive or r.closed]
    if not targets:
        print("nothing to recover: no ring file of a dead process found")
        return 0
    code = 0
    for p in targets:
        try:
            out = recover_file(p, out_dir, args.keep)
        except FlightrecError as exc:
            print(f"flightrec: error: could not recover {p}: {exc}", file=sys.stderr)
            code = exc.exit_code
            continue
        print(f"recovered {p} -> {out}")
    return code
