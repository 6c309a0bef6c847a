"""A lazy, seq-addressed index over a :class:`~flightrec.reader.Recording`.

Opening a million-event dump must not decode a million events: the index is built from the
block headers alone (each knows its event count and seq range), and a block is decoded only
when one of its rows is shown or scanned. Decoded blocks are kept in a small LRU keyed by the
block's ``block_seq``, which stays valid across the re-reads of a live ring (a block with a
given seq never changes), so following a live recorder re-decodes only new blocks.
"""

from __future__ import annotations

import gc
import threading
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass

from flightrec.event import Event
from flightrec.reader import Recording


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of consecutive rows: one block, the pinned events, or the open block."""

    start: int
    """Row of the first event."""
    count: int
    first_seq: int
    last_seq: int
    block: int
    """Index in ``Recording.blocks``, or -1 for an in-memory list (pinned, open block)."""
    key: int
    """Cache key: the block's ``block_seq`` (negative for in-memory lists)."""


class BlockCache:
    """Decoded blocks shared by successive indexes of one source (thread-safe)."""

    def __init__(self, capacity: int = 256) -> None:
        """Keep at most ``capacity`` decoded blocks."""
        self.capacity = capacity
        self.lock = threading.RLock()
        self._blocks: OrderedDict[int, list[Event]] = OrderedDict()
        self.step_names: dict[int, str] = {}
        """Span id -> step name, from every ``step_start`` decoded so far (cheap step paths)."""
        self.step_parents: dict[int, int | None] = {}

    def get(self, key: int) -> list[Event] | None:
        """A cached block, marked as recently used."""
        events = self._blocks.get(key)
        if events is not None:
            self._blocks.move_to_end(key)
        return events

    def put(self, key: int, events: list[Event]) -> None:
        """Remember a decoded block (and the names of the steps it starts)."""
        self._blocks[key] = events
        for ev in events:
            if ev.kind == "step_start" and ev.span is not None:
                self.step_names[ev.span] = str(ev.data.get("name", "?"))
                self.step_parents[ev.span] = ev.parent
        if len(self._blocks) > self.capacity:
            self._blocks.popitem(last=False)


class EventIndex:
    """Row- and seq-addressed access to every event of one snapshot of a recording.

    Rows are positions in recording order (0 = oldest event kept). Access is thread-safe:
    background scans (filters, search) and the UI thread share one lock around decoding.
    """

    def __init__(self, recording: Recording, cache: BlockCache | None = None) -> None:
        """Index ``recording`` from its block headers (no decoding)."""
        self.recording = recording
        self.cache = cache or BlockCache()
        segments: list[Segment] = []
        row = 0
        self._lists: dict[int, list[Event]] = {}
        self._noted: set[int] = set()
        first_block_seq = recording.blocks[0].header.first_seq if recording.blocks else None
        pinned = [e for e in recording.pinned if first_block_seq is None or e.seq < first_block_seq]
        if recording.open_events:
            pinned = [e for e in pinned if e.seq < recording.open_events[0].seq]
        last_seq = -1
        if pinned:
            self._lists[-1] = pinned
            segments.append(Segment(row, len(pinned), pinned[0].seq, pinned[-1].seq, -1, -1))
            row += len(pinned)
            last_seq = pinned[-1].seq
        for i, ref in enumerate(recording.blocks):
            h = ref.header
            if h.count <= 0 or h.last_seq <= last_seq:
                continue
            segments.append(Segment(row, h.count, h.first_seq, h.last_seq, i, h.block_seq))
            row += h.count
            last_seq = h.last_seq
        tail = [e for e in recording.open_events if e.seq > last_seq]
        if tail:
            self._lists[-2] = tail
            segments.append(Segment(row, len(tail), tail[0].seq, tail[-1].seq, -1, -2))
            row += len(tail)
        self.segments = segments
        self.total = row
        self._starts = [s.start for s in segments]
        self._first_seqs = [s.first_seq for s in segments]

    # ------------------------------------------------------------------ facts
    @property
    def first_seq(self) -> int:
        """Seq of the oldest event (0 when empty)."""
        return self.segments[0].first_seq if self.segments else 0

    @property
    def last_seq(self) -> int:
        """Seq of the newest event (0 when empty)."""
        return self.segments[-1].last_seq if self.segments else 0

    @property
    def first_ts(self) -> int | None:
        """Timestamp of the oldest event, from headers when possible."""
        if not self.segments:
            return None
        seg = self.segments[0]
        if seg.block >= 0:
            return self.recording.blocks[seg.block].header.first_ts
        return self._lists[seg.key][0].ts_ns

    @property
    def last_ts(self) -> int | None:
        """Timestamp of the newest event, from headers when possible."""
        if not self.segments:
            return None
        seg = self.segments[-1]
        if seg.block >= 0:
            return self.recording.blocks[seg.block].header.last_ts
        return self._lists[seg.key][-1].ts_ns

    # ------------------------------------------------------------------ access
    def step_path(self, span: int) -> str | None:
        """``outer/inner`` names of a step from the ``step_start`` events decoded so far."""
        names, parents = self.cache.step_names, self.cache.step_parents
        if span not in names:
            return None
        parts: list[str] = []
        cur: int | None = span
        while cur is not None and cur in names and len(parts) < 16:
            parts.append(names[cur])
            cur = parents.get(cur)
        return "/".join(reversed(parts))

    def segment_events(self, seg: Segment) -> list[Event]:
        """The decoded events of one segment (from the cache when possible)."""
        if seg.block < 0:
            events = self._lists[seg.key]
            if seg.key not in self._noted:
                self._noted.add(seg.key)
                with self.cache.lock:
                    for ev in events:
                        if ev.kind == "step_start" and ev.span is not None:
                            self.cache.step_names[ev.span] = str(ev.data.get("name", "?"))
                            self.cache.step_parents[ev.span] = ev.parent
            return events
        cache = self.cache
        with cache.lock:
            cached = cache.get(seg.key)
            if cached is not None:
                return cached
            decoded = self.recording.block_events(seg.block)
            cache.put(seg.key, decoded)
            # Decoded events are acyclic values freed by reference counting; keeping
            # them out of the cyclic collector spares the UI multi-100 ms GC pauses.
            gc.freeze()
            return decoded

    def segment_of_row(self, row: int) -> Segment | None:
        """The segment holding ``row``."""
        if row < 0 or row >= self.total:
            return None
        return self.segments[bisect_right(self._starts, row) - 1]

    def event_at(self, row: int) -> Event | None:
        """The event at ``row``; None past the end or in a damaged block."""
        seg = self.segment_of_row(row)
        if seg is None:
            return None
        events = self.segment_events(seg)
        offset = row - seg.start
        return events[offset] if offset < len(events) else None

    def damaged_at(self, row: int) -> Segment | None:
        """The segment if ``row`` lies in a block that could not be decoded, else None."""
        seg = self.segment_of_row(row)
        if seg is None:
            return None
        return seg if row - seg.start >= len(self.segment_events(seg)) else None

    def row_of_seq(self, seq: int) -> int | None:
        """The row of the event with ``seq`` (or of the next one kept), None past the end."""
        if not self.segments or seq > self.last_seq:
            return None
        i = max(0, bisect_right(self._first_seqs, seq) - 1)
        seg = self.segments[i]
        if seq < seg.first_seq:
            return seg.start
        if seq > seg.last_seq:
            return seg.start + seg.count if i + 1 < len(self.segments) else None
        events = self.segment_events(seg)
        guess = seq - seg.first_seq
        if guess < len(events) and events[guess].seq == seq:
            return seg.start + guess
        lo, hi = 0, len(events)
        while lo < hi:
            mid = (lo + hi) // 2
            if events[mid].seq < seq:
                lo = mid + 1
            else:
                hi = mid
        return seg.start + min(lo, seg.count - 1)

    def event_by_seq(self, seq: int) -> Event | None:
        """The event with exactly ``seq``, if kept."""
        row = self.row_of_seq(seq)
        if row is None:
            return None
        ev = self.event_at(row)
        return ev if ev is not None and ev.seq == seq else None

    def rows_evicted_since(self, older: EventIndex) -> int:
        """How many of ``older``'s rows are gone from the front of this (newer) index."""
        if not older.segments:
            return 0
        if not self.segments:
            return older.total
        first = self.first_seq
        row = older.row_of_seq(first)
        return older.total if row is None else row
