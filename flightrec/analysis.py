"""What a recording says about the agent: steps, tool calls, memory, checkpoints, findings.

:class:`AnalysisMixin` gives :class:`~flightrec.reader.Recording` its agent-level methods.
Everything is computed from the recording alone, in one pass over the relevant events,
and cached on the recording (open a new one to see a live ring's newer events).
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, SupportsIndex

import msgspec

from .checkpoint import ChunkIndex, DiffEntry, diff_states
from .encode import safe_repr
from .errors import MissingChunk, UsageError
from .event import Event

__all__ = [
    "AnalysisMixin",
    "CheckpointInfo",
    "ContextSample",
    "DiffEntry",
    "Finding",
    "MemoryItem",
    "ResourceSample",
    "Step",
    "ToolCall",
    "ToolStats",
]

REPEATED_FAILURES = 3
"""Consecutive failures of one tool that make a ``repeated_tool_failure`` finding."""
LOOP_CALLS = 3
"""Identical calls (same tool, same arguments, not retries) that make a ``tool_loop`` finding."""
CONTEXT_NEAR = 0.9
"""Context usage ratio from which a ``context_near_limit`` finding is made."""
LEAD_UP = 5
"""Events before the first error named by the ``first_error`` finding."""

_KINDS = frozenset(
    {
        "step_start",
        "step_end",
        "tool_call",
        "tool_result",
        "llm",
        "memory",
        "context",
        "checkpoint",
        "chunk",
        "resource",
        "error",
    }
)
_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


# ============================================================================ result types


@dataclass(frozen=True, slots=True)
class Step:
    """One step (``with flightrec.step(...)``); ``end_*`` are None if it never ended.

    A step ended by control flow rather than a failure (a LangGraph interrupt: its
    ``step_end`` is ``benign``) has no ``error``; ``attrs["ended_by"]`` says what ended it.
    """

    id: int
    parent: int | None
    name: str
    start_seq: int
    end_seq: int | None
    start_ns: int
    end_ns: int | None
    duration_ms: float | None
    error: str | None
    thread: str
    attrs: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call and its outcome (``result_seq`` None: no result recorded)."""

    call_id: int
    tool: str
    args: Any
    result: Any
    error: str | None
    origin: str | None
    latency_ms: float | None
    call_seq: int
    result_seq: int | None
    ts_ns: int
    span: int | None
    attempt: int
    retry_of: int | None


@dataclass(frozen=True, slots=True)
class ToolStats:
    """Calls, errors and latency percentiles of one tool."""

    calls: int
    errors: int
    errors_by_origin: dict[str, int]
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None


@dataclass(frozen=True, slots=True)
class ContextSample:
    """Context window usage at one point."""

    seq: int
    ts_ns: int
    used: int
    limit: int


@dataclass(frozen=True, slots=True)
class MemoryItem:
    """An item live in the agent's memory (``retained_seq``: its latest retain)."""

    item_id: Any
    tokens: int | None
    reason: str | None
    source: str | None
    retained_seq: int


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """One checkpoint; ``rebuildable`` is False if a chunk it needs is missing, or if its state
    was not stored (``error`` then says why, e.g. a state too large for the ring)."""

    seq: int
    ts_ns: int
    label: str | None
    size: int
    rebuildable: bool
    error: str | None = None
    root: str | None = None
    """The hash of the state's root chunk: two checkpoints with the same root recorded the
    same state (chunks are content-addressed); None when the state was not stored."""


@dataclass(frozen=True, slots=True)
class ResourceSample:
    """One resource sample of the agent process."""

    seq: int
    ts_ns: int
    rss: int
    cpu_percent: float
    threads: int
    open_files: int


@dataclass(frozen=True, slots=True)
class Finding:
    """Something worth a look, with the events it rests on.

    Attributes:
        kind: ``repeated_tool_failure``, ``tool_loop``, ``context_near_limit``,
            ``evicted_then_needed`` or ``first_error``.
        severity: ``"error"``, ``"warning"`` or ``"info"``.
        message: one human sentence.
        seqs: the events it rests on, oldest first.
    """

    kind: str
    severity: str
    message: str
    seqs: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message


# ============================================================================ the index


@dataclass
class _Index:
    steps: list[Step]
    tools: list[ToolCall]
    context: list[ContextSample]
    memory: list[Event]
    checkpoints: list[tuple[int, int, str | None, int, str | None, str | None]]  # seq, ts, label, size, root, error
    chunks: ChunkIndex
    resources: list[ResourceSample]
    errors: list[tuple[Event, str]]  # the event and a one-line description
    first_seq: int | None


def _int(v: Any, default: int = 0) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _build(events: Iterable[Event]) -> _Index:
    starts: dict[int, Event] = {}
    ends: dict[int, Event] = {}
    calls: dict[Any, Event] = {}
    results: dict[Any, Event] = {}
    context: list[ContextSample] = []
    memory: list[Event] = []
    checkpoints: list[tuple[int, int, str | None, int, str | None, str | None]] = []
    chunk_events: list[Event] = []
    resources: list[ResourceSample] = []
    errors: list[tuple[Event, str]] = []
    first_seq: int | None = None
    for ev in events:
        if first_seq is None:
            first_seq = ev.seq
        kind, d = ev.kind, ev.data
        if kind == "chunk":
            chunk_events.append(ev)
        elif kind == "step_start":
            if ev.span is not None:
                starts[ev.span] = ev
        elif kind == "step_end":
            if ev.span is not None:
                ends[ev.span] = ev
            if d.get("error") is not None and not d.get("benign"):  # (benign: control flow, an interrupt)
                errors.append((ev, f"step {d.get('name')!r} failed: {d.get('error_type', 'error')}: {d['error']}"))
        elif kind == "tool_call":
            calls[d.get("call_id")] = ev
        elif kind == "tool_result":
            results[d.get("call_id")] = ev
            if d.get("error") is not None:
                origin = f" ({d['origin']})" if d.get("origin") else ""
                errors.append(
                    (ev, f"tool {d.get('tool')!r} failed{origin}: {d.get('error_type', 'error')}: {d['error']}")
                )
        elif kind == "memory":
            memory.append(ev)
        elif kind == "context":
            context.append(ContextSample(ev.seq, ev.ts_ns, _int(d.get("used_tokens")), _int(d.get("limit_tokens"))))
        elif kind == "checkpoint":
            if "inline" in d:
                chunk_events.append(ev)  # its root chunk
            root, error = d.get("root"), d.get("error")
            if isinstance(root, str) or isinstance(error, str):  # (error: not stored, e.g. too large)
                label = d.get("label")
                checkpoints.append(
                    (
                        ev.seq,
                        ev.ts_ns,
                        label if isinstance(label, str) else None,
                        _int(d.get("size")),
                        root if isinstance(root, str) else None,
                        error if isinstance(error, str) else None,
                    )
                )
        elif kind == "resource":
            resources.append(
                ResourceSample(
                    ev.seq,
                    ev.ts_ns,
                    _int(d.get("rss")),
                    _num(d.get("cpu_percent")) or 0.0,
                    _int(d.get("threads")),
                    _int(d.get("open_files")),
                )
            )
        elif kind == "error":
            origin = f" ({d['origin']})" if d.get("origin") else ""
            what = d.get("type") or d.get("error_type") or "error"
            errors.append((ev, f"{what}{origin}: {d.get('message', d.get('error', ''))}"))
        elif kind == "llm" and d.get("error") is not None:
            model = d.get("model")
            to = "" if model is None else f" to {model!r}"  # (a fake or unnamed model)
            errors.append((ev, f"LLM call{to} failed: {d['error']}"))

    steps: list[Step] = []
    for sid, s in starts.items():
        e = ends.get(sid)
        sd = s.data
        attrs = sd.get("attrs")
        attrs = attrs if isinstance(attrs, dict) else {}
        error = e.data.get("error") if e is not None else None
        if error is not None and e is not None and e.data.get("benign"):
            # control flow (a LangGraph interrupt waiting for a human), not a failure: said, not counted
            attrs = {**attrs, "ended_by": f"{e.data.get('error_type', 'error')}: {error}"}
            error = None
        steps.append(
            Step(
                id=sid,
                parent=s.parent,
                name=str(sd.get("name", "?")),
                start_seq=s.seq,
                end_seq=e.seq if e is not None else None,
                start_ns=s.ts_ns,
                end_ns=e.ts_ns if e is not None else None,
                duration_ms=_num(e.data.get("duration_ms")) if e is not None else None,
                error=error,
                thread=s.thread,
                attrs=attrs,
            )
        )
    steps.sort(key=lambda st: st.start_seq)

    tools: list[ToolCall] = []
    for cid, c in calls.items():
        r = results.get(cid)
        cd = c.data
        rd = r.data if r is not None else {}
        retry_of = cd.get("retry_of")
        tools.append(
            ToolCall(
                call_id=_int(cid, -1),
                tool=str(cd.get("tool", "?")),
                args=cd.get("args"),
                result=rd.get("result"),
                error=rd.get("error"),
                origin=rd.get("origin"),
                latency_ms=_num(rd.get("latency_ms")),
                call_seq=c.seq,
                result_seq=r.seq if r is not None else None,
                ts_ns=c.ts_ns,
                span=c.span,
                attempt=_int(cd.get("attempt"), 1),
                retry_of=retry_of if isinstance(retry_of, int) else None,
            )
        )
    tools.sort(key=lambda t: t.call_seq)
    errors.sort(key=lambda e: e[0].seq)
    return _Index(steps, tools, context, memory, checkpoints, ChunkIndex(chunk_events), resources, errors, first_seq)


def _percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(p * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def _canonical(args: Any) -> bytes:
    try:
        return msgspec.msgpack.encode(args, enc_hook=safe_repr)
    except Exception:
        return safe_repr(args).encode()


def _fmt_args(args: Any) -> str:
    if isinstance(args, dict):
        return ", ".join(f"{k}={safe_repr(v, 40)}" for k, v in args.items())
    return safe_repr(args, 80)


# ============================================================================ the mixin


class AnalysisMixin:
    """Agent-level views of a recording, mixed into :class:`~flightrec.reader.Recording`."""

    def events(self, kinds: Iterable[str] | None = None) -> Iterator[Event]:  # pragma: no cover - provided
        raise NotImplementedError

    def _analysis(self) -> _Index:
        cache = self.__dict__.get("_fr_analysis")
        if cache is None:
            cache = _build(self.events(_KINDS))
            self.__dict__["_fr_analysis"] = cache
        return cache  # type: ignore[no-any-return]

    def _memo(self, name: str, compute: Any) -> Any:
        memo = self.__dict__.setdefault("_fr_memo", {})
        if name not in memo:
            memo[name] = compute()
        return memo[name]

    # ------------------------------------------------------------ steps and tools
    def steps(self) -> list[Step]:
        """Every step whose start is in the recording, ordered by start."""
        return list(self._analysis().steps)

    def tools(self) -> list[ToolCall]:
        """Every tool call whose call event is in the recording, in call order."""
        return list(self._analysis().tools)

    def tool_stats(self) -> dict[str, ToolStats]:
        """Per tool: calls, errors (by origin) and latency p50/p95/max."""

        def compute() -> dict[str, ToolStats]:
            groups: dict[str, list[ToolCall]] = {}
            for t in self._analysis().tools:
                groups.setdefault(t.tool, []).append(t)
            out: dict[str, ToolStats] = {}
            for name, calls in sorted(groups.items()):
                lat = sorted(t.latency_ms for t in calls if t.latency_ms is not None)
                by_origin: dict[str, int] = {}
                for t in calls:
                    if t.error is not None:
                        key = t.origin or "other"
                        by_origin[key] = by_origin.get(key, 0) + 1
                out[name] = ToolStats(
                    calls=len(calls),
                    errors=sum(by_origin.values()),
                    errors_by_origin=by_origin,
                    p50_ms=_percentile(lat, 0.5),
                    p95_ms=_percentile(lat, 0.95),
                    max_ms=lat[-1] if lat else None,
                )
            return out

        return dict(self._memo("tool_stats", compute))

    # ------------------------------------------------------------ memory
    def memory_timeline(self) -> list[ContextSample]:
        """Every context-usage sample, oldest first."""
        return list(self._analysis().context)

    def memory_events(self) -> list[Event]:
        """Every ``memory`` event (retain, evict, summarize; carried retains included)."""
        return list(self._analysis().memory)

    def live_items(self, seq: int) -> dict[Hashable, MemoryItem]:
        """The items live in the agent's memory just after event ``seq``.

        Exact for any seq in the recording, even after wrap-around: an item retained before
        the oldest event still in the recording is known from its carried retain.

        Raises:
            UsageError: ``seq`` is not an int.
        """
        check_seq(seq, "live_items(seq)")
        items: dict[Hashable, MemoryItem] = {}
        memory = self._analysis().memory
        later: list[Event] = []
        for ev in memory:
            if ev.seq > seq:
                later.append(ev)
                continue
            _apply(items, ev)
        for ev in later:  # carried retains after seq vouch for items live since before it
            d = ev.data
            origin = d.get("carried")
            if d.get("op") == "retain" and isinstance(origin, int) and origin <= seq:
                key = _hkey(d.get("item_id"))
                if key not in items:
                    items[key] = _item(d, origin)
        return items

    # ------------------------------------------------------------ checkpoints
    def checkpoints(self) -> list[CheckpointInfo]:
        """Every checkpoint, oldest first, and whether it can be rebuilt (one whose state was
        not stored, e.g. too large for the ring, is listed with its ``error``)."""
        a = self._analysis()
        return [
            CheckpointInfo(seq, ts, label, size, root is not None and a.chunks.complete(root), error, root)
            for seq, ts, label, size, root, error in a.checkpoints
        ]

    def state_at(self, seq: int) -> Any:
        """The state of the latest checkpoint at or before ``seq`` (None if there is none).

        Raises:
            MissingChunk: that checkpoint cannot be rebuilt (a chunk is missing, or its state
                was not stored: see ``CheckpointInfo.error``).
            UsageError: ``seq`` is not an int.
        """
        check_seq(seq, "state_at(seq)")
        a = self._analysis()
        seqs = [c[0] for c in a.checkpoints]
        i = bisect.bisect_right(seqs, seq) - 1
        if i < 0:
            return None
        cp_seq, _, _, _, root, error = a.checkpoints[i]
        if root is None:
            raise MissingChunk(f"checkpoint {cp_seq} has no state: {error}")
        return a.chunks.rebuild(root)

    def diff(self, seq_a: int, seq_b: int) -> list[DiffEntry]:
        """What changed between the states at ``seq_a`` and ``seq_b`` (see :meth:`state_at`).

        Raises:
            MissingChunk: one of the checkpoints cannot be rebuilt.
            UsageError: ``seq_a`` or ``seq_b`` is not an int.
        """
        check_seq(seq_a, "diff(seq_a, seq_b): seq_a")
        check_seq(seq_b, "diff(seq_a, seq_b): seq_b")
        return diff_states(self.state_at(seq_a), self.state_at(seq_b))

    # ------------------------------------------------------------ resources
    def resources(self) -> list[ResourceSample]:
        """Every resource sample, oldest first."""
        return list(self._analysis().resources)

    # ------------------------------------------------------------ findings
    def findings(self) -> list[Finding]:
        """What looks wrong, most severe first; each finding names the events it rests on."""

        def compute() -> list[Finding]:
            a = self._analysis()
            out: list[Finding] = []
            out += _repeated_failures(a.tools)
            out += _loops(a.tools)
            out += _context_near_limit(a.context)
            out += _evicted_then_needed(a.memory, a.tools)
            first = self._first_error(a)
            if first is not None:
                out.append(first)
            out.sort(key=lambda f: (_SEVERITY_RANK.get(f.severity, 3), f.seqs[0] if f.seqs else 0))
            return out

        return list(self._memo("findings", compute))

    def _first_error(self, a: _Index) -> Finding | None:
        if not a.errors:
            return None
        ev, text = a.errors[0]
        lead: deque[Event] = deque(maxlen=LEAD_UP)
        for e in self.events():
            if e.seq >= ev.seq:
                break
            if e.kind in ("chunk", "resource") or e.thread != ev.thread:
                continue
            lead.append(e)
        before = ", ".join(f"{e.kind}#{e.seq}" for e in lead)
        msg = f"first error at seq {ev.seq}: {text}"
        if before:
            msg += f" (after {before})"
        return Finding("first_error", "error", msg, [*(e.seq for e in lead), ev.seq])


def _hkey(item_id: Any) -> Hashable:
    try:
        hash(item_id)
        return item_id  # type: ignore[no-any-return]
    except TypeError:
        return repr(item_id)


def check_seq(seq: object, what: str) -> None:
    """Refuse a sequence number that is not an integer (a str, None, a bool, a float...).

    Raises:
        UsageError: naming ``what`` and the type given.
    """
    if isinstance(seq, SupportsIndex) and not isinstance(seq, bool):  # an int, or numpy's and the like
        return
    raise UsageError(f"{what} must be an event sequence number (an int), not {type(seq).__name__}: {seq!r:.60}")


def _item(d: dict[str, Any], retained_seq: int) -> MemoryItem:
    tokens = d.get("tokens")
    return MemoryItem(
        d.get("item_id"), tokens if isinstance(tokens, int) else None, d.get("reason"), d.get("source"), retained_seq
    )


def _apply(items: dict[Hashable, MemoryItem], ev: Event) -> None:
    d = ev.data
    op = d.get("op")
    if op == "retain":
        origin = d.get("carried")
        items[_hkey(d.get("item_id"))] = _item(d, origin if isinstance(origin, int) else ev.seq)
    elif op == "evict":
        items.pop(_hkey(d.get("item_id")), None)
    elif op == "summarize":
        ids = d.get("item_ids")
        for i in ids if isinstance(ids, list) else ():
            items.pop(_hkey(i), None)
        into = d.get("into")
        tokens = d.get("tokens")
        items[_hkey(into)] = MemoryItem(
            into, tokens if isinstance(tokens, int) else None, d.get("reason") or "summarize", None, ev.seq
        )


# ============================================================================ findings


def _repeated_failures(tools: list[ToolCall]) -> list[Finding]:
    out: list[Finding] = []
    streaks: dict[str, list[ToolCall]] = {}

    def close(name: str) -> None:
        streak = streaks.pop(name, [])
        if len(streak) >= REPEATED_FAILURES:
            origins = sorted({t.origin or "other" for t in streak})
            last = streak[-1]
            out.append(
                Finding(
                    "repeated_tool_failure",
                    "error",
                    f"tool {name!r} failed {len(streak)} times in a row ({', '.join(origins)}); "
                    f"last error: {last.error}",
                    [t.result_seq if t.result_seq is not None else t.call_seq for t in streak],
                )
            )

    for t in tools:
        if t.result_seq is None:
            continue
        if t.error is not None:
            streaks.setdefault(t.tool, []).append(t)
        else:
            close(t.tool)
    for name in list(streaks):
        close(name)
    return out


def _loops(tools: list[ToolCall]) -> list[Finding]:
    groups: dict[tuple[str, bytes], list[ToolCall]] = {}
    for t in tools:
        if t.retry_of is None:
            groups.setdefault((t.tool, _canonical(t.args)), []).append(t)
    out: list[Finding] = []
    for (name, _), calls in groups.items():
        if len(calls) >= LOOP_CALLS:
            out.append(
                Finding(
                    "tool_loop",
                    "warning",
                    f"tool {name!r} was called {len(calls)} times with the same arguments ({_fmt_args(calls[0].args)})",
                    [t.call_seq for t in calls],
                )
            )
    return out


def _context_near_limit(samples: list[ContextSample]) -> list[Finding]:
    out: list[Finding] = []
    run: list[ContextSample] = []

    def close() -> None:
        if not run:
            return
        peak = max(run, key=lambda s: s.used / s.limit)
        ratio = peak.used / peak.limit
        severity = "error" if ratio >= 1.0 else "warning"
        out.append(
            Finding(
                "context_near_limit",
                severity,
                f"context reached {ratio:.0%} of its {peak.limit:,}-token limit ({peak.used:,} tokens) "
                f"at seq {peak.seq}",
                sorted({run[0].seq, peak.seq}),
            )
        )
        run.clear()

    for s in samples:
        if s.limit > 0 and s.used / s.limit >= CONTEXT_NEAR:
            run.append(s)
        else:
            close()
    close()
    return out


def _evicted_then_needed(memory: list[Event], tools: list[ToolCall]) -> list[Finding]:
    by_id = {t.call_id: t for t in tools}
    # merge memory events and tool calls in seq order
    timeline: list[tuple[int, str, Any]] = [(ev.seq, "memory", ev) for ev in memory]
    timeline += [(t.call_seq, "call", t) for t in tools]
    timeline.sort(key=lambda x: x[0])
    producer: dict[Hashable, tuple[str, bytes, ToolCall]] = {}  # live item -> the call that produced it
    evicted: dict[Hashable, tuple[Event, tuple[str, bytes, ToolCall] | None]] = {}
    # Evicted items by the (tool, arguments) of the call that produced them, so that a call
    # looks only at the items it could have produced: scanning every evicted item at every
    # call made an agent that evicts as it goes (thousands of items, thousands of calls)
    # take minutes. ``order`` keeps the findings of one call in eviction order.
    waiting: dict[tuple[str, bytes], set[Hashable]] = {}
    order: dict[Hashable, int] = {}
    ticket = itertools.count()
    out: list[Finding] = []

    def put(item: Hashable, ev: Event, prod: tuple[str, bytes, ToolCall] | None) -> None:
        old = evicted.get(item)
        if old is None:
            order[item] = next(ticket)
        elif old[1] is not None:
            waiting[(old[1][0], old[1][1])].discard(item)
        evicted[item] = (ev, prod)
        if prod is not None:
            waiting.setdefault((prod[0], prod[1]), set()).add(item)

    def take(item: Hashable) -> tuple[Event, tuple[str, bytes, ToolCall] | None] | None:
        gone = evicted.pop(item, None)
        if gone is not None:
            del order[item]
            if gone[1] is not None:
                waiting[(gone[1][0], gone[1][1])].discard(item)
        return gone

    for seq, what, obj in timeline:
        if what == "call":
            t: ToolCall = obj
            key = (t.tool, _canonical(t.args))
            for item in sorted(waiting.get(key, ()), key=order.__getitem__):
                ev, prod = evicted[item]
                if prod is not None and prod[2].call_id != t.call_id:
                    out.append(
                        Finding(
                            "evicted_then_needed",
                            "warning",
                            f"item {safe_repr(item, 60)} was evicted at seq {ev.seq}, then the tool call that "
                            f"produced it ({t.tool}: {_fmt_args(t.args)}) was made again at seq {seq}",
                            [prod[2].call_seq, ev.seq, seq],
                        )
                    )
                    take(item)
            continue
        ev = obj
        d = ev.data
        op = d.get("op")
        if op == "retain":
            item = _hkey(d.get("item_id"))
            if "carried" in d:
                continue
            gone = take(item)
            if gone is not None:
                out.append(
                    Finding(
                        "evicted_then_needed",
                        "warning",
                        f"item {safe_repr(item, 60)} was evicted at seq {gone[0].seq}"
                        f"{' (' + str(gone[0].data.get('reason')) + ')' if gone[0].data.get('reason') else ''}"
                        f" and retained again at seq {seq}",
                        [gone[0].seq, seq],
                    )
                )
            call = by_id.get(d.get("call_id")) if isinstance(d.get("call_id"), int) else None
            if call is not None:
                producer[item] = (call.tool, _canonical(call.args), call)
            else:
                producer.pop(item, None)
        elif op == "evict":
            item = _hkey(d.get("item_id"))
            put(item, ev, producer.pop(item, None))
        elif op == "summarize":
            ids = d.get("item_ids")
            for i in ids if isinstance(ids, list) else ():
                item = _hkey(i)
                put(item, ev, producer.pop(item, None))
    return out
