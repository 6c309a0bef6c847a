"""The timeline's view model: the index, optionally narrowed by a filter.

Unfiltered, a position is a row of the :class:`~tui.index.EventIndex`. Filtered, the
matching events are found by a background scan that appends their seqs to
:attr:`TimelineView.matches`; a position is an offset into that list. Seqs, unlike rows,
survive a live ring wrapping over its oldest blocks.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from flightrec.event import Event

from .index import EventIndex
from .render import is_error, searchable


@dataclass(frozen=True)
class EventFilter:
    """Which events the timeline shows (every set condition must hold)."""

    kinds: frozenset[str] = frozenset()
    threads: frozenset[str] = frozenset()
    tools: frozenset[str] = frozenset()
    spans: frozenset[int] = frozenset()
    """A step and its descendants (span ids)."""
    seq_range: tuple[int, int] | None = None
    seqs: frozenset[int] = frozenset()
    """Exactly these events (a finding's evidence)."""
    include: frozenset[int] = frozenset()
    """Events shown whatever the other conditions say (a step's own start and end)."""
    text: str = ""
    errors_only: bool = False
    label: str = ""
    """How the filter came about, e.g. ``step: fetch_order``."""
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def empty(self) -> bool:
        """True when the filter lets everything through."""
        return not (
            self.kinds
            or self.threads
            or self.tools
            or self.spans
            or self.seq_range
            or self.seqs
            or self.text
            or self.errors_only
        )

    def describe(self) -> str:
        """A short human description for the status bar."""
        parts: list[str] = []
        if self.label:
            parts.append(self.label)
        if self.kinds:
            parts.append("kind=" + ",".join(sorted(self.kinds)))
        if self.threads:
            parts.append("thread=" + ",".join(sorted(self.threads)))
        if self.tools:
            parts.append("tool=" + ",".join(sorted(self.tools)))
        if self.seqs and not self.label:
            parts.append(f"{len(self.seqs)} events")
        if self.text:
            parts.append(f"text~{self.text!r}")
        if self.errors_only:
            parts.append("errors only")
        return "  ".join(parts) or "all events"

    def predicate(self) -> Callable[[Event], bool]:
        """A fast test for one event."""
        kinds, threads, tools, spans = self.kinds, self.threads, self.tools, self.spans
        lo, hi = self.seq_range if self.seq_range else (None, None)
        seqs = self.seqs
        text = self.text.lower()
        errors_only = self.errors_only
        include = self.include

        def match(ev: Event) -> bool:
            if include and ev.seq in include:
                return True
            if seqs and ev.seq not in seqs:
                return False
            if lo is not None and not (lo <= ev.seq <= hi):  # type: ignore[operator]
                return False
            if kinds and ev.kind not in kinds:
                return False
            if threads and ev.thread not in threads:
                return False
            if tools and ev.data.get("tool") not in tools:
                return False
            if spans and ev.span not in spans:
                return False
            if errors_only and not is_error(ev):
                return False
            return not (text and text not in searchable(ev))

        return match


class TimelineView:
    """Positions -> events, for the whole recording or for the events matching a filter."""

    def __init__(self, index: EventIndex, flt: EventFilter | None = None) -> None:
        """Show ``index``, narrowed by ``flt`` if given (the caller runs the scan)."""
        self.index = index
        self.filter = flt if flt is not None and not flt.empty else None
        self.matches: array[int] = array("q")
        self.scanned_seq = -1
        """Seqs up to this one have been tested against the filter."""
        self.scanning = self.filter is not None

    @property
    def filtered(self) -> bool:
        """True when a filter narrows the view."""
        return self.filter is not None

    def __len__(self) -> int:
        return len(self.matches) if self.filter is not None else self.index.total

    def event_at(self, pos: int) -> Event | None:
        """The event at a view position."""
        if self.filter is None:
            return self.index.event_at(pos)
        if 0 <= pos < len(self.matches):
            return self.index.event_by_seq(self.matches[pos])
        return None

    def pos_of_seq(self, seq: int) -> int | None:
        """The view position of ``seq`` (or the next shown event), None past the end."""
        if self.filter is None:
            return self.index.row_of_seq(seq)
        i = bisect_left(self.matches, seq)
        return i if i < len(self.matches) else None

    def add_matches(self, seqs: list[int], scanned_seq: int) -> None:
        """Append the seqs a scan found (called on the UI thread)."""
        if seqs:
            last = self.matches[-1] if self.matches else -1
            self.matches.extend(s for s in seqs if s > last)
        self.scanned_seq = max(self.scanned_seq, scanned_seq)

    def rebase(self, index: EventIndex) -> int:
        """Switch to a newer snapshot of a live ring; returns positions dropped at the front."""
        old = self.index
        self.index = index
        if self.filter is None:
            return index.rows_evicted_since(old)
        cut = bisect_left(self.matches, index.first_seq)
        if cut:
            del self.matches[:cut]
        return cut

    def scan(self, start_seq: int, stop: Callable[[], bool]) -> Iterator[tuple[list[int], int]]:
        """Test events after ``start_seq`` against the filter; yields (matching seqs, last seq tested).

        Runs in a worker thread; decoding goes through the index's lock.
        """
        assert self.filter is not None
        match = self.filter.predicate()
        index = self.index
        seqs_only = self.filter.seqs if self.filter.seqs and not self.filter.text else None
        for seg in index.segments:
            if seg.last_seq <= start_seq:
                continue
            if stop():
                return
            if seqs_only is not None and not any(seg.first_seq <= s <= seg.last_seq for s in seqs_only):
                yield [], seg.last_seq
                continue
            found = [ev.seq for ev in index.segment_events(seg) if ev.seq > start_seq and match(ev)]
            yield found, seg.last_seq

    def iter_from(self, pos: int, step: int) -> Iterator[tuple[int, Event]]:
        """(position, event) pairs from ``pos`` going forward (``step=1``) or back (``-1``)."""
        if self.filter is not None:
            while 0 <= pos < len(self.matches):
                ev = self.index.event_by_seq(self.matches[pos])
                if ev is not None:
                    yield pos, ev
                pos += step
            return
        index = self.index
        while 0 <= pos < index.total:
            seg = index.segment_of_row(pos)
            if seg is None:
                return
            events = index.segment_events(seg)
            offset = pos - seg.start
            if step > 0:
                for o in range(offset, len(events)):
                    yield seg.start + o, events[o]
                pos = seg.start + seg.count
            else:
                for o in range(min(offset, len(events) - 1), -1, -1):
                    yield seg.start + o, events[o]
                pos = seg.start - 1
