"""The reading API (``flightrec.load`` and a Recording's methods) on wrong arguments.

As the README says, everything flightrec raises derives from ``FlightrecError``: a wrong
argument raises ``UsageError`` with a message naming it, never a bare ``TypeError`` or a
silently empty answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import flightrec
from flightrec import FlightrecError, RecordingNotFound, UsageError


@pytest.fixture
def rec(frdir: Path) -> Iterator[flightrec.Recording]:
    """A dump with notes, tool calls, a memory item and two checkpoints, opened."""
    flightrec.start(dir=frdir, triggers=False, resources=0)
    for i in range(5):
        flightrec.record("note", i=i)
        flightrec.record("tool_call", tool="search", args={"q": i})
    flightrec.memory.retain("doc:1", content="text", tokens=10)
    flightrec.checkpoint({"turn": 1}, label="one")
    flightrec.checkpoint({"turn": 2}, label="two")
    path = flightrec.dump("test")
    flightrec.stop()
    assert path is not None
    with flightrec.load(path) as recording:
        yield recording


@pytest.mark.parametrize("path", [None, 123, 1.5, b"x.frec", object()])
def test_load_of_a_non_path_is_a_usage_error(path: Any) -> None:
    """load(None) / load(123): UsageError naming the type, not TypeError."""
    with pytest.raises(UsageError, match=f"not {type(path).__name__}"):
        flightrec.load(path)


def test_load_of_an_empty_path_is_not_found() -> None:
    """load(""): not the current directory, but a missing path."""
    with pytest.raises(RecordingNotFound, match="empty"):
        flightrec.load("")


def test_events_takes_one_kind_as_a_str(rec: flightrec.Recording) -> None:
    """events("tool_call") is events(["tool_call"]), not a filter on its characters."""
    one = [e.seq for e in rec.events("tool_call")]
    assert len(one) == 5
    assert one == [e.seq for e in rec.events(["tool_call"])]
    assert len(list(rec.events(("tool_call", "note")))) == 10


@pytest.mark.parametrize("kinds", [5, [1], ["note", None]])
def test_events_refuses_kinds_that_are_not_strings(rec: flightrec.Recording, kinds: Any) -> None:
    """A number, or a list holding one, is a UsageError (it used to yield nothing, silently)."""
    with pytest.raises(UsageError, match="events"):
        list(rec.events(kinds))


CALLS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "state_at": ("state_at", lambda r: r.state_at("x")),
    "state_at_bool": ("state_at", lambda r: r.state_at(True)),
    "diff": ("diff", lambda r: r.diff(None, None)),
    "diff_second": ("diff", lambda r: r.diff(1, "b")),
    "live_items": ("live_items", lambda r: r.live_items("a")),
    "live_items_float": ("live_items", lambda r: r.live_items(1.5)),
}


@pytest.mark.parametrize("case", list(CALLS))
def test_seq_arguments_must_be_ints(rec: flightrec.Recording, case: str) -> None:
    """state_at / diff / live_items with a non-int seq: UsageError naming the method and the type."""
    method, call = CALLS[case]
    with pytest.raises(UsageError, match=rf"{method}\(") as info:
        call(rec)
    assert isinstance(info.value, FlightrecError)
    assert "must be an event sequence number (an int)" in str(info.value)


def test_int_seqs_still_work(rec: flightrec.Recording) -> None:
    """The checks accept what worked before."""
    last = max(e.seq for e in rec.events())
    assert rec.state_at(last) == {"turn": 2}
    assert rec.diff(0, last)
    assert "doc:1" in rec.live_items(last)
