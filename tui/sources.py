"""Where the TUI's events come from: one :class:`Source` interface, two implementations.

A :class:`DumpSource` is a ``.frec`` file (or an orphaned ring file) that never changes. A
:class:`LiveSource` is the ring file of a running recorder, mapped read-only and re-read
on each :meth:`Source.poll` (called from a worker in the app, never inside the agent): the
agent pays nothing for being watched. Both go through the one reader,
:func:`flightrec.reader.open_recording`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flightrec.errors import FlightrecError, RecordingNotFound
from flightrec.format import RingField
from flightrec.paths import pid_alive
from flightrec.reader import Recording, open_recording, ring_u64

from .index import BlockCache, EventIndex
from .render import one_line, total
from .ringtail import RingTail

STALL_NS = 5_000_000_000
"""A live recorder whose heartbeat is older than this is reported as not responding."""


@dataclass(frozen=True, slots=True)
class PollResult:
    """What changed in a live source since the previous poll."""

    index: EventIndex
    evicted: int
    """Rows dropped from the front (the ring wrapped over them)."""
    added: int
    """Rows appended at the end."""
    status: str
    rate: float
    """Events recorded per second since the previous poll (by the recorder's counter)."""


@dataclass
class Source:
    """A recording the app shows; subclasses say whether and how it grows.

    Attributes:
        path: the dump or ring file.
        index: the current snapshot's event index.
        status: ``"dump"``, ``"ring"`` (an orphaned ring opened as a file), ``"live"``,
            ``"stalled"``, ``"exited"`` or ``"killed"``.
    """

    path: Path
    index: EventIndex
    status: str = "dump"
    rate: float = 0.0
    cache: BlockCache = field(default_factory=BlockCache)

    live_capable = False
    """True for sources that can grow (poll, follow, dump now)."""

    @property
    def recording(self) -> Recording:
        """The current snapshot's recording."""
        return self.index.recording

    @property
    def meta(self) -> dict[str, Any]:
        """The recording's header metadata."""
        return self.recording.meta

    @property
    def pid(self) -> int:
        """The recorded process's pid (0 if unknown)."""
        try:
            return int(self.meta.get("pid") or 0)
        except (TypeError, ValueError):
            return 0

    @property
    def counters(self) -> dict[str, Any]:
        """The recorder's counters (recorded, dropped, errors...)."""
        return dict(self.meta.get("counters") or {})

    @property
    def is_live(self) -> bool:
        """True while the recorded process is running (events may still arrive)."""
        return self.status in ("live", "stalled")

    def poll(self) -> PollResult | None:
        """Re-read the source; None when nothing can change (a dump)."""
        return None

    def open_snapshot(self) -> Recording:
        """A separate :class:`Recording` of the same file, for background analysis.

        Analysis runs in a worker thread with its own mapping and cache, so it never races
        the UI's decoding. For a process that is gone, the UI's own snapshot is returned.
        """
        try:
            return open_recording(self.path)
        except FlightrecError:
            rec = self.recording  # the file is gone: share the mapping, not the decoding cache
            return Recording(
                path=rec.path,
                kind=rec.kind,
                meta=rec.meta,
                blocks=list(rec.blocks),
                pinned=list(rec.pinned),
                open_events=list(rec.open_events),
                _buf=rec._buf,
            )

    def title(self) -> str:
        """A one-line description for the header."""
        meta = self.meta
        prog = meta.get("prog") or Path(str((meta.get("argv") or ["?"])[0])).name
        return one_line(f"{prog} (pid {self.pid})  {self.path.name}")


class DumpSource(Source):
    """A recording file opened once: a dump, or a ring file whose process is gone."""

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> DumpSource:
        """Open ``path``.

        Raises:
            FlightrecError: a subclass of it for a missing, foreign, too new or broken file.
        """
        rec = open_recording(path)
        cache = BlockCache()
        src = cls(path=Path(path), index=EventIndex(rec, cache), cache=cache)
        src.status = "dump" if rec.kind == "dump" else "ring"
        return src


def process_alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie does not count: :func:`flightrec.paths.pid_alive`)."""
    return pid_alive(pid)


class LiveSource(Source):
    """The ring file of a running recorder, re-read on every poll.

    Nothing runs inside the agent: the ring is mapped read-only by the reader, torn reads
    are caught by its CRC and seqlock checks, and the recorder's own housekeeping thread
    publishes the counters we show.
    """

    live_capable = True

    def __init__(self, path: Path, index: EventIndex, cache: BlockCache, tail: RingTail | None = None) -> None:
        """Use :meth:`attach`."""
        super().__init__(path=path, index=index, status="live", cache=cache)
        self.tail = tail
        self._last_poll = time.monotonic()
        self._last_recorded = total(self.counters.get("recorded"))
        self.exit_reason = ""

    @classmethod
    def attach(cls, path: str | os.PathLike[str]) -> LiveSource:
        """Map a live ring file.

        Raises:
            FlightrecError: not a ring file, or unreadable.
        """
        rec = open_recording(path)  # the reader's precise errors for a missing or foreign file
        if rec.kind != "ring":
            raise FlightrecError(f"{path} is a dump, not a live recorder's ring file (use `flightrec open`)")
        rec.close()
        try:
            tail = RingTail(path)
        except OSError as exc:
            raise FlightrecError(f"{path}: cannot map it ({exc})") from None
        cache = BlockCache()
        rec = tail.snapshot()
        src = cls(Path(path), EventIndex(rec, cache), cache, tail)
        src._update_status(rec)
        return src

    def _update_status(self, rec: Recording) -> None:
        buf = rec._buf
        closed = bool(rec.meta.get("closed"))
        if buf is not None:
            try:
                closed = closed or bool(ring_u64(buf, RingField.CLOSED))
            except (ValueError, TypeError):
                pass
        if closed:
            self.status, self.exit_reason = "exited", "the recorder stopped (the process exited cleanly)"
        elif not process_alive(self.pid):
            self.status = "killed"
            self.exit_reason = "the process died without stopping its recorder (killed or crashed)"
        else:
            beat = 0
            if buf is not None:
                try:
                    beat = ring_u64(buf, RingField.HEARTBEAT_NS)
                except (ValueError, TypeError):
                    beat = 0
            stalled = beat and time.time_ns() - beat > STALL_NS
            self.status = "stalled" if stalled else "live"

    def poll(self) -> PollResult | None:
        """Re-read the ring; returns what changed (None once the process is gone and nothing changed).

        Safe to call from a worker thread: it builds a new :class:`EventIndex` and leaves
        swapping it in (``source.index = result.index``) to the caller's thread.
        """
        if not self.is_live:
            return None
        old = self.index
        if self.tail is not None:
            # Our read-only mapping outlives the file: a recorder that stops cleanly removes its
            # ring, and what it had written stays readable here (and recoverable).
            rec = self.tail.snapshot()
            if not self.path.exists() and not rec.meta.get("closed"):
                rec.meta["closed"] = True
        else:
            try:
                rec = open_recording(self.path)
            except RecordingNotFound:
                self.status = "exited"
                self.exit_reason = "the ring file is gone: the recorder stopped"
                return PollResult(old, 0, 0, self.status, 0.0)
            except FlightrecError:
                return None
        self._update_status(rec)
        new = EventIndex(rec, self.cache)
        now = time.monotonic()
        recorded = total(rec.meta.get("counters", {}).get("recorded"))
        dt = now - self._last_poll
        if dt > 0.05:
            self.rate = max(0.0, (recorded - self._last_recorded) / dt)
            self._last_poll, self._last_recorded = now, recorded
        evicted = new.rows_evicted_since(old)
        added = new.total - (old.total - evicted)
        return PollResult(new, evicted, added, self.status, self.rate)


def open_source(path: str | os.PathLike[str]) -> Source:
    """The source for a file: a :class:`LiveSource` for a ring, a :class:`DumpSource` for a dump.

    A ring left by a dead process opens as a (finished) live source, so it can be recovered.

    Raises:
        FlightrecError: the file is missing, not ours, or too new.
    """
    p = Path(path)
    src = DumpSource.open(p)
    if src.recording.kind == "ring":
        src.recording.close()
        return LiveSource.attach(p)
    return src
