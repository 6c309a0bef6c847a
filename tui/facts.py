"""What the screens show beyond raw events, computed off the UI thread.

The agent-semantics analysis (steps, tools, memory, checkpoints, resources, findings) lives
on :class:`~flightrec.reader.Recording` as methods. Each one is a pass over the events, so
the app runs them one at a time in a worker thread on a separate snapshot of the
recording (its own mapping and cache) and publishes the results. A recording read by a
flightrec that has no analysis API yet yields :data:`UNAVAILABLE`, which the screens
show as such instead of failing.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flightrec.reader import Recording

from .index import BlockCache, EventIndex
from .render import is_error


class _Unavailable:
    """Marker: this recording (or this flightrec) cannot provide the fact."""

    def __reduce__(self) -> str:
        return "UNAVAILABLE"  # unpickles as the module's singleton

    def __repr__(self) -> str:
        return "UNAVAILABLE"

    def __bool__(self) -> bool:
        return False


UNAVAILABLE: Any = _Unavailable()


class Failed(_Unavailable):
    """Marker: computing the fact failed (``reason`` says how); shown as such, not as missing."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Failed({self.reason!r})"


@dataclass(slots=True)
class Counts:
    """One pass over every event: counts by kind, threads, tools, errors."""

    by_kind: Counter[str] = field(default_factory=Counter)
    threads: Counter[str] = field(default_factory=Counter)
    tools: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    first_error_seq: int | None = None
    total: int = 0
    step_names: dict[int, str] = field(default_factory=dict)
    """Span id -> step name, from ``step_start`` events (used until the analysis' steps arrive)."""
    step_parents: dict[int, int | None] = field(default_factory=dict)


def count_events(rec: Recording, pause: Callable[[], None] | None = None) -> Counts:
    """Count events by kind, thread and tool (one decoding pass, yielding between blocks)."""
    out = Counts()
    by_kind, threads, tools = out.by_kind, out.threads, out.tools
    index = EventIndex(rec, BlockCache(4))
    for seg in index.segments:
        evs = index.segment_events(seg)
        if pause is not None and seg.block >= 0:
            pause()
        for ev in evs:
            by_kind[ev.kind] += 1
            threads[ev.thread] += 1
            tool = ev.data.get("tool") if ev.kind in ("tool_call", "tool_result") else None
            if tool is not None:
                tools[str(tool)] += 1
            if is_error(ev):
                out.errors += 1
                if out.first_error_seq is None:
                    out.first_error_seq = ev.seq
            if ev.kind == "step_start" and ev.span is not None:
                out.step_names[ev.span] = str(ev.data.get("name", "?"))
                out.step_parents[ev.span] = ev.parent
    out.total = sum(by_kind.values())
    return out


ANALYSES: dict[str, str] = {
    "steps": "steps",
    "tools": "tools",
    "tool_stats": "tool_stats",
    "memory_timeline": "memory_timeline",
    "memory_events": "memory_events",
    "checkpoints": "checkpoints",
    "resources": "resources",
    "findings": "findings",
}
"""Fact name -> Recording method computing it."""


def compute(name: str, rec: Recording) -> Any:
    """Compute one fact on ``rec`` (UNAVAILABLE when the recording has no such method)."""
    if name == "counts":
        return count_events(rec, lambda: time.sleep(0))
    if name == "memory":
        return memory_data(rec, lambda: time.sleep(0))
    method = getattr(rec, ANALYSES.get(name, ""), None)
    if method is None and name == "resources":
        return resource_rows(rec, lambda: time.sleep(0))
    if method is None:
        return UNAVAILABLE
    return method()


OFFLOAD_EVENTS = 50_000
"""Recordings with more events than this are analysed in a separate process."""


class Cancelled(Exception):
    """The app is closing: the computation was abandoned."""


def compute_file(path: str, name: str) -> Any:
    """Open ``path`` and compute one fact (runs in the analysis process)."""
    from flightrec.reader import open_recording

    rec = open_recording(path)
    try:
        return compute(name, rec)
    finally:
        rec.close()


def _serve(conn: Any) -> None:
    """The analysis process: compute each (path, name, keep) received, send back (ok, value).

    With ``keep`` (a file that does not change: a dump) the recording stays open for the next
    request, so the facts after the first share its one analysis pass (a pass over a full
    64 MiB ring is seconds; each fact opening the file again repeated it for every screen).
    """
    import gc

    # The analysis keeps every decoded event (acyclic values, freed by reference counting):
    # the cyclic collector only walks that growing heap again and again (3x the pass's time).
    gc.disable()
    kept: tuple[str, Recording] | None = None
    while True:
        try:
            path, name, keep = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if kept is not None and (kept[0] != path or not keep):
                kept[1].close()
                kept = None
            if keep:
                if kept is None:
                    from flightrec.reader import open_recording

                    kept = (path, open_recording(path))
                reply: tuple[bool, Any] = (True, compute(name, kept[1]))
            else:
                reply = (True, compute_file(path, name))
        except Exception as exc:
            reply = (False, exc)
        try:
            conn.send(reply)
        except Exception as exc:  # an unpicklable result or exception
            conn.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


class AnalysisProcess:
    """One worker process that computes facts of big recordings, off this process's GIL.

    A pass over a million events holds the GIL for seconds; in a thread it would make every
    key press wait. The process is spawned (the app has threads) on first use, serves one
    request at a time, and is terminated when the app closes, so quitting never waits for a
    long analysis.
    """

    def __init__(self) -> None:
        """Nothing runs until the first :meth:`compute`."""
        self._proc: Any = None
        self._conn: Any = None
        self._lock = threading.Lock()

    def _start(self) -> None:
        import multiprocessing
        import sys

        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        # Spawning needs real stdio descriptors; a running Textual app has replaced sys.std*.
        saved = sys.stdout, sys.stderr
        try:
            sys.stdout, sys.stderr = sys.__stdout__ or saved[0], sys.__stderr__ or saved[1]
            proc = ctx.Process(target=_serve, args=(child,), name="flightrec-analysis", daemon=True)
            proc.start()
        finally:
            sys.stdout, sys.stderr = saved
        child.close()
        self._proc, self._conn = proc, parent

    def compute(self, path: str, name: str, stop: Callable[[], bool], keep: bool = False) -> Any:
        """Compute fact ``name`` of the file at ``path`` in the process (blocks this thread).

        ``keep``: the file does not change (a dump); the process keeps it open, and its
        analysis, for the next fact.

        Raises:
            Cancelled: ``stop()`` became true while waiting.
            Exception: whatever the computation raised (FlightrecError if the file is gone).
        """
        with self._lock:
            if self._proc is None or not self._proc.is_alive():
                self._start()
            conn = self._conn
            conn.send((path, name, keep))
            while not conn.poll(0.05):
                if stop():
                    self.terminate()
                    raise Cancelled(name)
                if not self._proc.is_alive():
                    self._proc = None
                    raise RuntimeError("the analysis process died")
            ok, value = conn.recv()
        if ok:
            return value
        raise value

    def terminate(self) -> None:
        """Stop the process now (whatever it is computing)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.is_alive():
            proc.terminate()
            proc.join(timeout=2)
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def available(rec: Recording, name: str) -> bool:
    """True when ``rec`` can compute ``name``."""
    return name in ("counts", "memory", "resources") or hasattr(rec, ANALYSES.get(name, "-"))


def counted_paths(counts: Counts) -> dict[int, str]:
    """Span id -> step path from the names seen in ``step_start`` events."""
    out: dict[int, str] = {}
    for span in counts.step_names:
        parts: list[str] = []
        cur: int | None = span
        while cur is not None and len(parts) < 32 and cur in counts.step_names:
            parts.append(counts.step_names[cur])
            cur = counts.step_parents.get(cur)
        out[span] = "/".join(reversed(parts))
    return out


def span_paths(steps: Any) -> dict[int, str]:
    """Step id -> ``outer/inner`` path, from the analysis' step list."""
    if not steps:
        return {}
    by_id = {s.id: s for s in steps}
    out: dict[int, str] = {}
    for s in steps:
        parts: list[str] = []
        cur = s
        guard = 0
        while cur is not None and guard < 32:
            parts.append(str(cur.name))
            cur = by_id.get(cur.parent) if cur.parent is not None else None
            guard += 1
        out[s.id] = "/".join(reversed(parts))
    return out


def subtree(steps: Any, root: int) -> frozenset[int]:
    """A step's id and all its descendants' ids."""
    children: dict[int | None, list[int]] = {}
    for s in steps or []:
        children.setdefault(s.parent, []).append(s.id)
    out = {root}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class MemoryOp:
    """One retain / evict / summarize event."""

    seq: int
    ts_ns: int
    op: str
    ids: tuple[str, ...]
    tokens: Any
    reason: Any


@dataclass(slots=True)
class MemoryData:
    """Context usage samples and memory operations, from the raw events."""

    samples: list[tuple[int, int, float, float]] = field(default_factory=list)
    """(seq, ts_ns, used tokens, limit tokens)."""
    ops: list[MemoryOp] = field(default_factory=list)
    needed_again: dict[int, int] = field(default_factory=dict)
    """Seq of an evict -> seq where the same item was retained again (it was needed)."""


def _op_of(seq: int, ts_ns: int, d: dict[str, Any]) -> MemoryOp:
    raw = d.get("item_ids") if d.get("item_ids") is not None else d.get("item_id")
    ids = tuple(str(i) for i in raw) if isinstance(raw, (list, tuple)) else ((str(raw),) if raw is not None else ())
    return MemoryOp(seq, ts_ns, str(d.get("op", "?")), ids, d.get("tokens"), d.get("reason"))


def memory_data(rec: Recording, pause: Callable[[], None] | None = None) -> MemoryData:
    """Context samples, memory operations and evicted-then-needed items.

    From the analysis API when the recording has it (its findings also catch an evicted
    item whose producing tool call is made again), else from one pass over the raw events.
    """
    if hasattr(rec, "memory_timeline") and hasattr(rec, "memory_events"):
        out = MemoryData()
        out.samples = [(s.seq, s.ts_ns, float(s.used or 0), float(s.limit or 0)) for s in rec.memory_timeline()]  # type: ignore[attr-defined]
        out.ops = [_op_of(ev.seq, ev.ts_ns, ev.data) for ev in rec.memory_events()]  # type: ignore[attr-defined]
        evict_seqs = {op.seq for op in out.ops if op.op in ("evict", "summarize")}
        for f in rec.findings() if hasattr(rec, "findings") else []:  # type: ignore[attr-defined]
            if f.kind == "evicted_then_needed" and len(f.seqs) >= 2:
                evicted = next((s for s in f.seqs if s in evict_seqs), f.seqs[-2])
                out.needed_again[evicted] = f.seqs[-1]
        return out
    out = MemoryData()
    index = EventIndex(rec, BlockCache(4))
    evicted_at: dict[str, int] = {}
    for seg in index.segments:
        if pause is not None and seg.block >= 0:
            pause()
        for ev in index.segment_events(seg):
            kind = ev.kind
            if kind == "context":
                d = ev.data
                try:
                    out.samples.append(
                        (ev.seq, ev.ts_ns, float(d.get("used_tokens") or 0), float(d.get("limit_tokens") or 0))
                    )
                except (TypeError, ValueError):
                    continue
            elif kind == "memory":
                mop = _op_of(ev.seq, ev.ts_ns, ev.data)
                out.ops.append(mop)
                op, ids = mop.op, mop.ids
                if op == "evict":
                    for i in ids:
                        evicted_at[i] = ev.seq
                elif op == "retain":
                    for i in ids:
                        if i in evicted_at:
                            out.needed_again[evicted_at.pop(i)] = ev.seq
    return out


def replay_items(ops: list[MemoryOp], seq: int) -> dict[str, tuple[Any, Any, int]]:
    """Items in memory after ``seq``: id -> (tokens, reason, seq retained)."""
    items: dict[str, tuple[Any, Any, int]] = {}
    for op in ops:
        if op.seq > seq:
            break
        if op.op == "retain":
            for i in op.ids:
                items[i] = (op.tokens, op.reason, op.seq)
        elif op.op == "evict" or op.op == "summarize":
            for i in op.ids:
                items.pop(i, None)
    return items


@dataclass(frozen=True, slots=True)
class ResourceRow:
    """One resource sample (the analysis API's ResourceSample has the same fields)."""

    seq: int
    ts_ns: int
    rss: float
    cpu_percent: float
    threads: float
    open_files: float


def resource_rows(rec: Recording, pause: Callable[[], None] | None = None) -> list[ResourceRow]:
    """Resource samples from the raw ``resource`` events."""
    out: list[ResourceRow] = []
    index = EventIndex(rec, BlockCache(4))
    for seg in index.segments:
        if pause is not None and seg.block >= 0:
            pause()
        for ev in index.segment_events(seg):
            if ev.kind == "resource":
                d = ev.data

                def num(key: str, d: dict[str, Any] = d) -> float:
                    try:
                        return float(d.get(key) or 0)
                    except (TypeError, ValueError):
                        return 0.0

                out.append(
                    ResourceRow(ev.seq, ev.ts_ns, num("rss"), num("cpu_percent"), num("threads"), num("open_files"))
                )
    return out
