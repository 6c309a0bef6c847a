"""Helpers for users testing their own instrumentation.

Example::

    from flightrec.testing import capture

    def test_my_agent_records_its_tool_calls():
        with capture() as events:
            run_my_agent()
        assert [e.data["tool"] for e in events if e.kind == "tool_call"] == ["search"]
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import api
from .errors import FlightrecError
from .event import Event
from .reader import open_recording


@contextmanager
def capture(**options: Any) -> Iterator[list[Event]]:
    """Record into a temporary ring for the ``with`` block; the list fills with the events at exit.

    Args:
        **options: passed to :func:`flightrec.start` (triggers default to off, redaction on).

    Raises:
        FlightrecError: a recorder is already running in this process.
    """
    if api.get_recorder() is not None:
        raise FlightrecError("capture() needs no recorder running; call flightrec.stop() first")
    tmp = Path(tempfile.mkdtemp(prefix="flightrec-capture-"))
    options.setdefault("triggers", False)
    options.setdefault("resources", 0)
    options.setdefault("size", "8MiB")
    events: list[Event] = []
    rec = api.start(dir=tmp, keep_ring=True, **options)
    try:
        yield events
    finally:
        api.stop()
        if rec is not None:
            with open_recording(rec.ring_path) as recording:
                events.extend(recording.events())
        shutil.rmtree(tmp, ignore_errors=True)
