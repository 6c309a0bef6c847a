"""``flightrec dump PID``: ask a running recorder for a dump through its ring header."""

from __future__ import annotations

import argparse
import math
import mmap
import os
import time

from ..errors import FlightrecError, RecordingNotFound
from ..format import LAST_DUMP_PATH_SIZE, U64, RingField
from .discovery import find_ring_for_pid, require_dir


def positive_seconds(text: str) -> float:
    """argparse type of ``--timeout``: a finite number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text!r}")
    return value


def configure(p: argparse.ArgumentParser) -> None:
    """Add the verb's arguments."""
    p.add_argument("pid", type=int, help="process id of the recorded agent")
    p.add_argument("--dir", help="ring directory (default: FLIGHTREC_DIR or the per-user dir)")
    p.add_argument("--timeout", type=positive_seconds, default=10.0, help="seconds to wait for the dump (default 10)")


def request_dump(ring_path: os.PathLike[str] | str, timeout: float = 10.0) -> str:
    """Ask the recorder of a ring for a dump through its header and wait for it to answer.

    The recorder serves the header's dump-request counter when it exceeds the last one it
    served, then sets the acknowledgement counter to it. A request is the larger of the two
    plus one (so a withdrawn request that was served anyway is never mistaken for a new one).
    When the time is up the request is withdrawn: the counter is put back, unless another
    viewer asked since. A recorder that had already begun the dump still writes it.

    Returns the dump's path ("" if the recorder could not write it).

    Raises:
        ValueError: ``timeout`` is not a finite number of seconds above zero.
        FlightrecError: no answer in time.
    """
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a finite number of seconds above 0, not {timeout!r}")
    with open(ring_path, "r+b") as f:
        mm = mmap.mmap(f.fileno(), 0)
        try:
            before = _u64(mm, RingField.DUMP_REQUEST)
            request = max(before, _u64(mm, RingField.DUMP_ACK)) + 1
            U64.pack_into(mm, RingField.DUMP_REQUEST, request)
            answer = _wait_for_answer(mm, request, time.monotonic() + timeout)
            if answer is None:
                answer = _withdraw(mm, request, before)
        finally:
            mm.close()
    if answer is None:
        raise FlightrecError(
            f"the recorder did not answer within {timeout:g}s (is the process stopped or busy?); "
            "request withdrawn, but a dump it had already begun will still appear"
        )
    return answer


def _u64(mm: mmap.mmap, field: int) -> int:
    return int(U64.unpack_from(mm, field)[0])


def _answer(mm: mmap.mmap, request: int) -> str | None:
    """The path the recorder published if it has served ``request``, else None."""
    if _u64(mm, RingField.DUMP_ACK) < request:
        return None
    raw = bytes(mm[RingField.LAST_DUMP_PATH : RingField.LAST_DUMP_PATH + LAST_DUMP_PATH_SIZE])
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _wait_for_answer(mm: mmap.mmap, request: int, deadline: float) -> str | None:
    """Poll until the recorder serves ``request`` or the (monotonic) deadline passes."""
    while True:
        answer = _answer(mm, request)
        if answer is not None or time.monotonic() >= deadline:
            return answer
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


def _withdraw(mm: mmap.mmap, request: int, before: int) -> str | None:
    """Put the request counter back to ``before`` if it still holds our unserved ``request``.

    Returns the dump's path if the recorder served the request meanwhile after all.
    """
    if _u64(mm, RingField.DUMP_REQUEST) == request and _u64(mm, RingField.DUMP_ACK) < request:
        U64.pack_into(mm, RingField.DUMP_REQUEST, before)
    return _answer(mm, request)


def run(args: argparse.Namespace) -> int:
    """Request the dump and print where it went."""
    require_dir(args.dir)
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
