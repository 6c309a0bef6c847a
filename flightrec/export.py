"""Exports of a recording to the formats other tools read.

* **JSON lines** (:func:`write_jsonl`): one event per line, the same objects as
  ``flightrec show --json`` (``seq, ts_ns, kind, thread, span, parent, data``), for jq and
  pandas.
* **Chrome Trace Event JSON** (:func:`chrome_trace`): steps, tool calls and LLM calls as
  matching ``B``/``E`` pairs, other events as instant events, resource samples as
  counters; opens in Perfetto UI and ``chrome://tracing``.
* **OTLP** (:func:`otlp_spans`, :func:`write_otlp`, :func:`send_otlp`): steps, tool calls
  and LLM calls as OpenTelemetry spans with GenAI semantic-convention attributes, every
  other event as a span event, built and sent with the official OpenTelemetry SDK and
  OTLP/HTTP exporter (``pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http``).

All three share one reconstruction, :func:`build_spans`: the span tree of a recording. It
is deterministic, so the trace and span ids derived from it are stable: the trace id is
a hash of the recording's pid and start time, a span id a hash of those and the sequence
number of the span's first event. Exporting the same dump twice yields the same ids, so a
back end deduplicates a re-sent dump instead of showing it twice.

A span whose end is not in the recording (a step still open at the crash) ends at the
dump's time and carries ``flightrec.unfinished = true``; a span whose start was
overwritten in the ring starts at its end minus its measured duration.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import FlightrecError
from .event import Event
from .outputs import display_path
from .reader import Recording

__all__ = [
    "ExportFailed",
    "SpanNode",
    "SpanTree",
    "build_spans",
    "chrome_trace",
    "event_json",
    "open_output",
    "otlp_spans",
    "output_file",
    "send_otlp",
    "write_chrome",
    "write_jsonl",
    "write_otlp",
]

Progress = Callable[[int], None]
"""Called with the number of items just processed (events, then spans)."""

MAX_SPAN_EVENTS = 1000
"""Most events attached to one span in OTLP; the rest are counted in ``flightrec.dropped_events``."""
MAX_ATTR_CHARS = 16 * 1024
"""Longest attribute value (JSON text) in OTLP."""
OTLP_BATCH = 512
"""Spans per OTLP request."""
_SKIP_KINDS = frozenset({"chunk"})
"""Internal events (checkpoint chunk payloads) that are not exported as span events."""


class ExportFailed(FlightrecError):
    """An export could not be done: a missing package, an unreachable endpoint, a bad file."""

    exit_code = 9


def open_output(path: str | Path, binary: bool = False) -> IO[Any]:
    """Open an export file for writing in place, created 0600 like dumps (it holds the same data).

    :func:`output_file` is the safe way to write an export: it leaves nothing partial.

    Raises:
        ExportFailed: it cannot be created or written.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
        return os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")
    except OSError as exc:
        raise ExportFailed(f"cannot write {display_path(path)}: {exc.strerror or exc}") from None


def _write_failed(path: str | Path, exc: OSError) -> ExportFailed:
    return ExportFailed(f"cannot write {display_path(path)}: {exc.strerror or exc}")


def _close_quietly(f: IO[Any]) -> None:
    try:
        f.close()
    except OSError:  # the error being reported already says the write failed
        pass


def _is_special(path: Path) -> bool:
    """True if ``path`` exists and is not a regular file (a device, a FIFO...)."""
    try:
        return path.exists() and not path.is_file()
    except OSError:
        return False


@contextlib.contextmanager
def output_file(path: str | Path, binary: bool = False) -> Iterator[IO[Any]]:
    """A file to write an export to, with nothing partial left behind if the export fails.

    A regular file (or a new one) is written under a hidden temporary name next to it, 0600
    like dumps, and renamed into place once complete: a failed export (a full disk) leaves
    no partial file, and a file that was there unchanged. A device or a FIFO
    (``/dev/stdout``, a named pipe) is written directly.

    Raises:
        ExportFailed: the file cannot be created or written (the OS error said in one line).
    """
    target = Path(path)
    if _is_special(target):
        f = open_output(target, binary)
        try:
            yield f
            f.close()
        except OSError as exc:
            _close_quietly(f)
            raise _write_failed(target, exc) from None
        return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
    except OSError as exc:
        raise _write_failed(target, exc) from None
    f = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")
    try:
        yield f
        f.close()
        os.replace(tmp, target)
    except BaseException as exc:
        _close_quietly(f)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _write_failed(target, exc) from None
        raise


# ============================================================================ JSON lines


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"$bytes": bytes(obj).hex()}
    code, data = getattr(obj, "code", None), getattr(obj, "data", None)
    if isinstance(code, int) and isinstance(data, bytes):  # a MessagePack extension type, shown as data
        return {"$ext": code, "$bytes": data.hex()}
    return str(obj)


def _number_name(value: float) -> str:
    """A NaN or an infinity as the string that stands for it: JSON has no such numbers."""
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _strict(value: Any) -> Any:
    """``value`` as strict JSON data: every map key a string (MessagePack allows any key;
    JSON does not), and NaN and the infinities as the strings ``"NaN"``, ``"Infinity"``,
    ``"-Infinity"``, as in the Chrome export (jq and most parsers refuse bare ``NaN``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else _number_name(value)
    if isinstance(value, dict):
        return {_strict_key(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def _strict_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, float) and not math.isfinite(key):
        return _number_name(key)
    return str(key)


def _json_text(value: Any) -> str:
    """``value`` as strict JSON text (see :func:`_strict`)."""
    try:  # the common case, at the C encoder's speed: nothing JSON cannot hold
        return json.dumps(value, default=_json_default, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):  # a NaN, an infinity or a key JSON cannot hold
        return json.dumps(_strict(value), default=_json_default, ensure_ascii=False, allow_nan=False)


def event_json(ev: Event) -> str:
    """One event as a JSON object on one line (``flightrec show --json`` and the jsonl export).

    The line is strict JSON: a NaN or an infinity in the data is written as the string
    ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``, a map key that is not a string as its text.
    """
    row = {
        "seq": ev.seq,
        "ts_ns": ev.ts_ns,
        "kind": ev.kind,
        "thread": ev.thread,
        "span": ev.span,
        "parent": ev.parent,
        "data": ev.data,
    }
    try:
        return _json_text(row)
    except (TypeError, ValueError, RecursionError):  # absurd nesting
        row["data"] = {"_degraded": "data not representable as JSON (nested too deeply)"}
        return json.dumps(row, default=_json_default, ensure_ascii=False)


def write_jsonl(rec: Recording, out: IO[str], progress: Progress | None = None) -> int:
    """Write every event of ``rec`` as one JSON line; returns the number written."""
    n = 0
    for ev in rec.events():
        out.write(event_json(ev))
        out.write("\n")
        n += 1
        if progress is not None and n % 1000 == 0:
            progress(1000)
    if progress is not None:
        progress(n % 1000)
    return n


# ============================================================================ span tree

SpanKey = tuple[str, int]


@dataclass(slots=True)
class SpanNode:
    """One span reconstructed from a recording."""

    key: SpanKey
    """``("step", step id)``, ``("tool", call id)``, ``("llm", seq)`` or ``("root", 0)``."""
    kind: str
    """``root``, ``step``, ``tool`` or ``llm``."""
    name: str
    start_ns: int
    end_ns: int | None
    seq: int
    """Sequence number of the span's first event (the root: 0); its id derives from it."""
    thread: str
    parent: SpanKey | None = None
    data: dict[str, Any] = field(default_factory=dict)
    """Fields of its start event (``step_start``/``tool_call``/``llm``)."""
    end_data: dict[str, Any] = field(default_factory=dict)
    """Fields of its end event (``step_end``/``tool_result``)."""
    events: list[Event] = field(default_factory=list)
    """The other events recorded inside it."""
    error: str | None = None
    error_type: str | None = None
    unfinished: bool = False


@dataclass(slots=True)
class SpanTree:
    """All spans of a recording: the root first, then by start time."""

    root: SpanNode
    spans: list[SpanNode]
    pid: int
    start_ns: int
    meta: dict[str, Any]

    def __iter__(self) -> Iterator[SpanNode]:
        yield self.root
        yield from self.spans

    def __len__(self) -> int:
        return 1 + len(self.spans)


def _start_before(ev: Event, duration_ms: Any) -> int:
    """The start of a span known only from its end event and its recorded duration.

    A duration that is not a finite number of milliseconds at least 0 (NaN, infinite,
    negative: whatever the agent passed as ``latency_ms``) counts as 0, and a start cannot
    go before the epoch.
    """
    if not _finite(duration_ms) or duration_ms <= 0:
        return ev.ts_ns
    return max(0, ev.ts_ns - int(min(duration_ms * 1e6, float(ev.ts_ns))))


def _take_error(node: SpanNode, data: dict[str, Any], default_type: str) -> None:
    """Mark ``node`` failed when its event carries an error."""
    if data.get("error") is not None:
        node.error = str(data["error"])
        node.error_type = str(data.get("error_type") or default_type)


def _finite(value: Any) -> bool:
    """Whether ``value`` is a finite number (not a bool)."""
    number = _num(value)
    return number is not None and math.isfinite(number)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def build_spans(rec: Recording, progress: Progress | None = None) -> SpanTree:
    """Reconstruct the span tree of a recording (steps, tool calls, LLM calls under one root)."""
    meta = rec.meta or {}
    pid = int(meta.get("pid") or 0)
    start_ns = int(meta.get("start_ns") or 0)
    spans: dict[SpanKey, SpanNode] = {}
    loose: dict[int | None, list[Event]] = {}
    in_call: dict[SpanKey, SpanKey] = {}
    """A step (or tool call) an integration started inside a tool call (``in_call``: a
    sub-agent run by the tool) -> that call's span, its parent when the call is there."""
    first_ts: int | None = None
    last_ts = 0
    n = 0
    for ev in rec.events():
        n += 1
        if progress is not None and n % 1000 == 0:
            progress(1000)
        if first_ts is None:
            first_ts = ev.ts_ns
        last_ts = max(last_ts, ev.ts_ns)
        data = ev.data
        kind = ev.kind
        step_of = ("step", ev.span) if ev.span is not None else None
        if kind == "step_start" and ev.span is not None:
            key: SpanKey = ("step", ev.span)
            node = spans.get(key)
            if node is None:
                spans[key] = SpanNode(
                    key,
                    "step",
                    str(data.get("name", "step")),
                    ev.ts_ns,
                    None,
                    ev.seq,
                    ev.thread,
                    ("step", ev.parent) if ev.parent is not None else None,
                    dict(data),
                )
                attrs = data.get("attrs")
                if isinstance(attrs, dict) and isinstance(attrs.get("in_call"), int):
                    in_call[key] = ("tool", attrs["in_call"])
        elif kind == "step_end" and ev.span is not None:
            key = ("step", ev.span)
            node = spans.get(key)
            if node is None:  # its start was overwritten in the ring
                node = spans[key] = SpanNode(
                    key,
                    "step",
                    str(data.get("name", "step")),
                    _start_before(ev, data.get("duration_ms")),
                    None,
                    ev.seq,
                    ev.thread,
                    ("step", ev.parent) if ev.parent is not None else None,
                )
            node.end_ns = ev.ts_ns
            node.end_data = dict(data)
            if not data.get("benign"):
                _take_error(node, data, "Error")
        elif kind == "tool_call" and isinstance(data.get("call_id"), int):
            key = ("tool", data["call_id"])
            spans[key] = SpanNode(
                key, "tool", str(data.get("tool", "tool")), ev.ts_ns, None, ev.seq, ev.thread, step_of, dict(data)
            )
            if isinstance(data.get("in_call"), int):
                in_call[key] = ("tool", data["in_call"])
        elif kind == "tool_result" and isinstance(data.get("call_id"), int):
            key = ("tool", data["call_id"])
            node = spans.get(key)
            if node is None:
                node = spans[key] = SpanNode(
                    key,
                    "tool",
                    str(data.get("tool", "tool")),
                    _start_before(ev, data.get("latency_ms")),
                    None,
                    ev.seq,
                    ev.thread,
                    step_of,
                )
            node.end_ns = ev.ts_ns
            node.end_data = dict(data)
            _take_error(node, data, "ToolError")
        elif kind == "llm" and (folded := _llm_step(spans.get(("step", ev.span or 0)))) is not None:
            # An integration's LLM step and the one llm event inside it are one LLM span.
            folded.kind = "llm"
            folded.data = {**data, "attrs": folded.data.get("attrs") or {}}
            _take_error(folded, data, "LLMError")
        elif kind == "llm":
            key = ("llm", ev.seq)
            node = spans[key] = SpanNode(
                key,
                "llm",
                f"chat {data.get('model') or 'llm'}",
                _start_before(ev, data.get("latency_ms")),
                ev.ts_ns,
                ev.seq,
                ev.thread,
                step_of,
                dict(data),
            )
            _take_error(node, data, "LLMError")
        elif kind not in _SKIP_KINDS:
            if kind == "checkpoint" and "inline" in data:  # its root chunk's bytes: as a chunk event's, not exported
                ev = ev._replace(data={k: v for k, v in data.items() if k != "inline"})
            loose.setdefault(ev.span, []).append(ev)
    if progress is not None:
        progress(n % 1000)
    end_ns = int(meta.get("dump_ns") or 0) or last_ts
    end_ns = max(end_ns, last_ts)
    root_start = first_ts if first_ts is not None else (start_ns or end_ns)
    root = SpanNode(("root", 0), "root", _root_name(meta), root_start, end_ns, 0, "MainThread")
    exc = meta.get("exception")
    if isinstance(exc, dict):
        root.error = str(exc.get("message") or exc.get("type") or "error")
        root.error_type = str(exc.get("type") or "Exception")
    for sid, evs in loose.items():
        owner = spans.get(("step", sid)) if sid is not None else None
        (owner or root).events.extend(evs)
    for key, call in in_call.items():
        if call in spans and not _above(spans, call, key):  # (a crafted file's cycle: not followed)
            spans[key].parent = call
    for node in spans.values():
        if node.parent is None or node.parent not in spans:
            node.parent = root.key
        if node.end_ns is None:
            node.end_ns = max(end_ns, node.start_ns)
            node.unfinished = True
        if node.start_ns < start_ns:  # a measured duration longer than the process has run
            node.start_ns = min(start_ns, node.end_ns)
    # A child's start comes from its own event or a measured latency (its end time less its
    # duration): kept from before its parent's start (parents first: a parent's first event
    # precedes its children's). Its end is its own: a task started in a step may run on after
    # the step ends, which the trace must show as it was.
    for node in sorted(spans.values(), key=lambda s: s.seq):
        parent = spans.get(node.parent) if node.parent is not None else None
        if parent is not None:
            node.start_ns = min(max(node.start_ns, parent.start_ns), node.end_ns or node.start_ns)
            node.end_ns = max(node.end_ns or node.start_ns, node.start_ns)
        root.start_ns = min(root.start_ns, node.start_ns)
    ordered = sorted(spans.values(), key=lambda s: (s.start_ns, s.seq))
    return SpanTree(root, ordered, pid, start_ns, meta)


def _above(spans: dict[SpanKey, SpanNode], start: SpanKey, key: SpanKey) -> bool:
    """Whether ``key`` is ``start`` or one of its ancestors."""
    seen: set[SpanKey] = set()
    cur: SpanKey | None = start
    while cur is not None and cur not in seen:
        if cur == key:
            return True
        seen.add(cur)
        node = spans.get(cur)
        cur = node.parent if node is not None else None
    return False


def _llm_step(node: SpanNode | None) -> SpanNode | None:
    """The step if it is an integration's LLM step still waiting for its llm event."""
    if node is None or node.kind != "step":
        return None
    attrs = node.data.get("attrs")
    return node if isinstance(attrs, dict) and attrs.get("span_kind") == "llm" else None


def _root_name(meta: dict[str, Any]) -> str:
    prog = meta.get("prog") or "python"
    return f"{prog} (pid {meta.get('pid', '?')})"


# ============================================================================ Chrome trace


@dataclass(slots=True)
class _Lane:
    tid: int
    stack: list[SpanNode] = field(default_factory=list)


def _contains(outer: SpanNode, inner: SpanNode) -> bool:
    return outer.start_ns <= inner.start_ns and (inner.end_ns or 0) <= (outer.end_ns or 0)


def _finished_before(done: SpanNode, node: SpanNode) -> bool:
    return not _contains(done, node) and (done.end_ns or 0) <= node.start_ns


def chrome_trace(rec: Recording, progress: Progress | None = None) -> dict[str, Any]:
    """The recording as a Chrome Trace Event document (a dict ready for ``json.dump``).

    Spans become ``B``/``E`` pairs on one track per thread; spans that overlap without
    nesting on one thread (asyncio tasks interleave) go to extra tracks of that thread
    (``MainThread #2``), so every track's pairs nest properly. Other events are instant
    events (``i``) on their thread; numeric fields of ``resource`` events are counters.
    """
    tree = build_spans(rec, progress)
    pid = tree.pid or 1
    t0 = tree.root.start_ns
    out: list[dict[str, Any]] = []
    tids: dict[str, int] = {}
    lanes: dict[str, list[_Lane]] = {}

    def us(ns: int) -> float:
        return round((ns - t0) / 1000, 3)

    def tid_for(name: str) -> int:
        if name not in tids:
            tids[name] = len(tids) + 1
            out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tids[name], "args": {"name": name}})
        return tids[name]

    out.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": tree.root.name}})
    nodes = sorted(tree.spans, key=lambda s: (s.start_ns, -(s.end_ns or 0), s.seq))
    placed: dict[int, list[SpanNode]] = {}
    for node in nodes:
        thread_lanes = lanes.setdefault(node.thread, [])
        for lane in thread_lanes:
            while lane.stack and _finished_before(lane.stack[-1], node):
                lane.stack.pop()
            if not lane.stack or _contains(lane.stack[-1], node):
                break  # nests here; a partial overlap tries the next track
        else:
            suffix = f" #{len(thread_lanes) + 1}" if thread_lanes else ""
            lane = _Lane(tid_for(node.thread + suffix))
            thread_lanes.append(lane)
        lane.stack.append(node)
        placed.setdefault(lane.tid, []).append(node)
    for tid, group in placed.items():
        stack: list[SpanNode] = []
        for node in group:  # already in nesting order: emit E for finished ancestors first
            while stack and _finished_before(stack[-1], node):
                done = stack.pop()
                out.append({"ph": "E", "name": done.name, "pid": pid, "tid": tid, "ts": us(done.end_ns or 0)})
            out.append(
                {
                    "ph": "B",
                    "name": node.name,
                    "cat": node.kind,
                    "pid": pid,
                    "tid": tid,
                    "ts": us(node.start_ns),
                    "args": _chrome_args(node),
                }
            )
            stack.append(node)
        while stack:
            done = stack.pop()
            out.append({"ph": "E", "name": done.name, "pid": pid, "tid": tid, "ts": us(done.end_ns or 0)})
    for node in tree:
        for ev in node.events:
            if ev.kind == "resource":
                counters = {k: v for k, v in ev.data.items() if _finite(v)}
                if counters:
                    out.append(
                        {"ph": "C", "name": "resources", "pid": pid, "tid": 0, "ts": us(ev.ts_ns), "args": counters}
                    )
                continue
            out.append(
                {
                    "ph": "i",
                    "s": "t",
                    "name": ev.kind,
                    "cat": "event",
                    "pid": pid,
                    "tid": tid_for(ev.thread),
                    "ts": us(ev.ts_ns),
                    "args": _jsonable({"seq": ev.seq, **ev.data}),
                }
            )
    return {
        "traceEvents": out,
        "displayTimeUnit": "ms",
        "otherData": {
            "source": "flightrec",
            "recording": str(rec.path),
            "pid": tree.pid,
            "trigger": (tree.meta.get("trigger") or {}).get("reason"),
        },
    }


def _chrome_args(node: SpanNode) -> dict[str, Any]:
    args: dict[str, Any] = {"seq": node.seq}
    args.update(node.data)
    args.update({f"end.{k}": v for k, v in node.end_data.items() if k not in ("name", "tool", "call_id")})
    if node.unfinished:
        args["unfinished"] = True
    return _jsonable(args)  # type: ignore[no-any-return]


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON data; NaN and the infinities as the strings ``"NaN"``,
    ``"Infinity"``, ``"-Infinity"`` (JSON has no such numbers: Perfetto's and browsers'
    parsers refuse a trace holding them)."""
    return json.loads(json.dumps(value, default=_json_default, ensure_ascii=False), parse_constant=str)


def write_chrome(rec: Recording, out: IO[str], progress: Progress | None = None) -> int:
    """Write the Chrome trace JSON of ``rec``; returns the number of trace events."""
    doc = chrome_trace(rec, progress)
    json.dump(doc, out, ensure_ascii=False, allow_nan=False)
    return len(doc["traceEvents"])


# ============================================================================ OTLP

_OTLP_HINT = "pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http"


def _require_otel() -> None:
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as exc:
        raise ExportFailed(f"OTLP export needs the OpenTelemetry SDK and OTLP exporter ({_OTLP_HINT}): {exc}") from None


def _hash_id(text: str, size: int) -> int:
    value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=size).digest(), "big")
    return value or 1  # an all-zero id is invalid in OTLP


def _attr(value: Any) -> Any:
    """An OTel attribute value: primitives as they are, anything else as bounded JSON text."""
    if isinstance(value, (str, bool, int, float)):
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            return str(value)
        return value[:MAX_ATTR_CHARS] if isinstance(value, str) else value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return [v[:MAX_ATTR_CHARS] for v in value]
    return _json_text(value)[:MAX_ATTR_CHARS]


def _put(attrs: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        attrs[key] = _attr(value)


def _put_json(attrs: dict[str, Any], key: str, value: Any) -> None:
    """Content attributes (tool arguments and results, messages) are JSON text by convention."""
    if value is not None:
        text = value if isinstance(value, str) else _json_text(value)
        attrs[key] = text[:MAX_ATTR_CHARS]


def _span_attributes(node: SpanNode, meta: dict[str, Any]) -> dict[str, Any]:
    a: dict[str, Any] = {"flightrec.kind": node.kind, "flightrec.seq": node.seq}
    d, e = node.data, node.end_data
    if node.kind == "tool":
        a["gen_ai.operation.name"] = "execute_tool"
        _put(a, "gen_ai.tool.name", d.get("tool") or e.get("tool"))
        _put(a, "gen_ai.tool.call.id", d.get("ext_call_id") or node.key[1])
        args = d.get("args") if d.get("args") is not None else e.get("args")
        _put_json(a, "gen_ai.tool.call.arguments", args)
        if "result" in e:
            _put_json(a, "gen_ai.tool.call.result", e["result"])
        _put(a, "flightrec.tool.attempt", d.get("attempt"))
        _put(a, "flightrec.tool.retry_of", d.get("retry_of"))
        _put(a, "flightrec.tool.origin", e.get("origin"))
        _put(a, "flightrec.latency_ms", e.get("latency_ms"))
    elif node.kind == "llm":
        step_attrs = d.get("attrs") or {}
        a["gen_ai.operation.name"] = str(step_attrs.get("gen_ai.operation.name") or "chat")
        for k, v in step_attrs.items():
            if k not in ("span_kind", "gen_ai.operation.name", "model"):
                _put(a, k if "." in k else f"flightrec.attr.{k}", v)
        _put(a, "gen_ai.request.model", d.get("model"))
        _put(a, "gen_ai.response.model", d.get("model"))
        _put(a, "gen_ai.usage.input_tokens", d.get("prompt_tokens"))
        _put(a, "gen_ai.usage.output_tokens", d.get("completion_tokens"))
        _put_json(a, "gen_ai.input.messages", d.get("request"))
        _put_json(a, "gen_ai.output.messages", d.get("response"))
        for k, v in d.items():
            if k not in (
                "model",
                "prompt_tokens",
                "completion_tokens",
                "request",
                "response",
                "latency_ms",
                "error",
                "error_type",
                "attrs",
            ):
                _put(a, f"flightrec.llm.{k}", v)
    elif node.kind == "step":
        _put(a, "flightrec.step.id", node.key[1])
        for k, v in (d.get("attrs") or {}).items():
            _put(a, k if "." in k else f"flightrec.attr.{k}", v)
        for k, v in (e.get("attrs") or {}).items():
            _put(a, k if "." in k else f"flightrec.attr.{k}", v)
    else:  # the root: the recorded process, one agent
        a["gen_ai.operation.name"] = "invoke_agent"
        _put(a, "gen_ai.agent.name", meta.get("prog"))
        _put(a, "flightrec.trigger", (meta.get("trigger") or {}).get("reason"))
        _put(a, "flightrec.counters", meta.get("counters"))
        exc = meta.get("exception")
        if isinstance(exc, dict):
            _put(a, "exception.type", exc.get("type"))
            _put(a, "exception.message", exc.get("message"))
            _put(a, "exception.stacktrace", exc.get("traceback"))
    if node.error_type is not None:
        a["error.type"] = node.error_type
    if node.unfinished:
        a["flightrec.unfinished"] = True
    return a


def otlp_spans(rec: Recording, progress: Progress | None = None) -> list[Any]:
    """The recording as OpenTelemetry SDK ``ReadableSpan`` objects, root first.

    Raises:
        ExportFailed: the OpenTelemetry SDK is not installed.
    """
    _require_otel()
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event as OtelEvent
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    from . import __version__

    tree = build_spans(rec, progress)
    meta = tree.meta
    base = f"{tree.pid}:{tree.start_ns}"
    trace_id = _hash_id(base, 16)
    resource = Resource.create(
        {
            k: v
            for k, v in {
                "service.name": str(meta.get("prog") or "flightrec"),
                "service.instance.id": f"{meta.get('host', '')}:{base}",
                "process.pid": tree.pid,
                "host.name": meta.get("host"),
                "process.runtime.version": meta.get("python"),
                "process.command_args": [str(x) for x in meta.get("argv") or []] or None,
                "flightrec.recording": str(rec.path),
            }.items()
            if v is not None
        }
    )
    scope = InstrumentationScope("flightrec", __version__)
    ids: dict[SpanKey, int] = {n.key: _hash_id(f"{base}:{n.seq}", 8) for n in tree}
    flags = TraceFlags(TraceFlags.SAMPLED)
    out: list[Any] = []
    for node in tree:
        ctx = SpanContext(trace_id, ids[node.key], is_remote=False, trace_flags=flags)
        parent = SpanContext(trace_id, ids[node.parent], is_remote=False, trace_flags=flags) if node.parent else None
        events = [
            OtelEvent(
                ev.kind,
                {
                    "flightrec.seq": ev.seq,
                    "thread.name": ev.thread,
                    **{k: _attr(v) for k, v in ev.data.items() if v is not None},
                },
                ev.ts_ns,
            )
            for ev in node.events[:MAX_SPAN_EVENTS]
        ]
        attrs = _span_attributes(node, meta)
        attrs["thread.name"] = node.thread
        if len(node.events) > MAX_SPAN_EVENTS:
            attrs["flightrec.dropped_events"] = len(node.events) - MAX_SPAN_EVENTS
        status = Status(StatusCode.ERROR, node.error) if node.error is not None else Status(StatusCode.UNSET)
        name = node.name
        if node.kind == "tool":
            name = f"execute_tool {node.name}"
        elif node.kind == "root":
            name = f"invoke_agent {node.name}"
        out.append(
            ReadableSpan(
                name=name,
                context=ctx,
                parent=parent,
                resource=resource,
                attributes=attrs,
                events=events,
                kind=SpanKind.CLIENT if node.kind == "llm" else SpanKind.INTERNAL,
                status=status,
                start_time=node.start_ns,
                end_time=max(node.end_ns or node.start_ns, node.start_ns),
                instrumentation_scope=scope,
            )
        )
    return out


def _batches(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _hexify_ids(obj: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex, where protobuf's JSON mapping uses base64."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                obj[key] = base64.b64decode(value).hex()
            else:
                _hexify_ids(value)
    elif isinstance(obj, list):
        for item in obj:
            _hexify_ids(item)
    return obj


def write_otlp(rec: Recording, out: str | Path | IO[str], progress: Progress | None = None) -> int:
    """Write the recording's spans as OTLP; returns the number of spans.

    To a path ending in ``.pb`` / ``.bin``: binary protobuf, one ``ExportTraceServiceRequest``
    (as POSTed to ``/v1/traces``). To any other path or a text stream: OTLP/JSON lines, one
    ``ExportTraceServiceRequest`` of up to 512 spans per line: the format of the
    OpenTelemetry Collector's file exporter, which its ``otlpjsonfile`` receiver reads back
    (ids in hex, enums as numbers, as OTLP/JSON requires).

    Raises:
        ExportFailed: the OpenTelemetry packages are missing, or the file cannot be written.
    """
    spans = otlp_spans(rec, progress)
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    def json_lines() -> Iterator[str]:
        for batch in _batches(spans, OTLP_BATCH):
            doc = _hexify_ids(MessageToDict(encode_spans(batch), use_integers_for_enums=True))
            yield json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"

    if not isinstance(out, (str, Path)):
        out.writelines(json_lines())
        return len(spans)
    target = Path(out)
    if target.suffix.lower() in (".pb", ".bin", ".protobuf"):
        with output_file(target, binary=True) as f:
            for batch in _batches(spans, OTLP_BATCH):
                # Concatenated protobuf messages parse as one, their repeated fields joined.
                f.write(encode_spans(batch).SerializeToString())
    else:
        with output_file(target) as t:
            t.writelines(json_lines())
    return len(spans)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.messages.append(record.getMessage())
        except Exception:
            pass


def _reason(messages: list[str]) -> str:
    """The useful part of the exporter's log: the OS error, else its first message."""
    found = re.search(r"\[Errno -?\d+\] [^\"')]+", " ".join(messages))
    if found:
        return found.group(0).strip()
    return messages[0][:300] if messages else "no details"


def otlp_endpoint(url: str) -> str:
    """The traces URL for an OTLP/HTTP endpoint given as a base URL (``/v1/traces`` added)."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    if url.rstrip("/").endswith("/v1/traces"):
        return url
    return url.rstrip("/") + "/v1/traces"


def send_otlp(
    rec: Recording,
    endpoint: str,
    *,
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> int:
    """POST the recording's spans to an OTLP/HTTP collector; returns the number of spans sent.

    Args:
        rec: the recording.
        endpoint: the collector, e.g. ``http://localhost:4318`` (``/v1/traces`` is added
            unless the URL already ends with it).
        timeout: seconds per request.
        headers: extra HTTP headers (e.g. an API key for a hosted back end).
        progress: called with the number of spans of each batch sent.

    Raises:
        ExportFailed: the packages are missing or the collector did not accept the spans.
    """
    spans = otlp_spans(rec)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    url = otlp_endpoint(endpoint)
    capture = _Capture()
    otel_logger = logging.getLogger("opentelemetry.exporter.otlp")
    propagate = otel_logger.propagate
    otel_logger.addHandler(capture)
    otel_logger.propagate = False  # the exporter's retry chatter becomes our one-line error
    exporter = OTLPSpanExporter(endpoint=url, timeout=timeout, headers=headers)
    try:
        sent = 0
        for batch in _batches(spans, OTLP_BATCH):
            result = exporter.export(batch)
            if result is not SpanExportResult.SUCCESS:
                reason = _reason(capture.messages)
                raise ExportFailed(f"OTLP export to {url} failed after {sent} of {len(spans)} spans: {reason}")
            sent += len(batch)
            if progress is not None:
                progress(len(batch))
        return sent
    finally:
        otel_logger.removeHandler(capture)
        otel_logger.propagate = propagate
        exporter.shutdown()
