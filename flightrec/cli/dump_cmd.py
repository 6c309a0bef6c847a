"""``flightrec dump PID``: ask a running recorder for a dump through its ring header."""

from __future__ import annotations

import argparse
import mmap
import os
import time

from ..errors import FlightrecError, RecordingNotFound
from ..format import LAST_DUMP_PATH_SIZE, U64, RingField
from .discovery import find_ring_for_pid


def configure(p: argparse.ArgumentParser) -> None:
    """Add the verb's arguments."""
    p.add_argument("pid", type=int, help="process id of the recorded agent")
    p.add_argument("--dir", help="ring directory (default: FLIGHTREC_DIR or the per-user dir)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the dump (default 10)")


def request_dump(ring_path: os.PathLike[str] | str, timeout: float = 10.0) -> str:
    """Bump the ring's dump-request counter and wait for the recorder to serve it.

    Returns the dump's path. Raises FlightrecError on timeout.
    """
    with open(ring_path, "r+b") as f:
        mm = mmap.mmap(f.fileno(), 0)
        try:
            request = U64.unpack_from(mm, RingField.DUMP_REQUEST)[0] + 1
            U64.pack_into(mm, RingField.DUMP_REQUEST, request)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if U64.unpack_from(mm, RingField.DUMP_ACK)[0] >= request:
                    raw = bytes(mm[RingField.LAST_DUMP_PATH : RingField.LAST_DUMP_PATH + LAST_DUMP_PATH_SIZE])
                    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")
                time.sleep(0.05)
        finally:
            mm.close()
    raise FlightrecError(f"the recorder did not answer within {timeout:.0f}s (is the process stopped or busy?)")


def run(args: argparse.Namespace) -> int:
    """Request the dump and print where it went."""
    info = find_ring_for_pid(args.pid, args.dir)
    if info is None:
        raise RecordingNotFound(f"no flightrec recorder found for pid {args.pid} (see `flightrec ls`)")
    if not info.alive or info.closed:
        raise RecordingNotFound(
            f"pid {args.pid} is not running any more; use `flightrec recover` to turn its ring into a dump"
        )
    path = request_dump(info.path, args.timeout)
    if not path:
        raise FlightrecError("the recorder answered but could not write the dump (see the agent's stderr)")
    print(path)
    return 0
