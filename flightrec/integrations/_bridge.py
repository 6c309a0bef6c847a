"""The shared half of every tracing integration: external spans -> flightrec events.

OpenTelemetry spans, LangChain runs and OpenAI Agents SDK spans all have the same shape: a
start and an end, an id, a parent id. :class:`SpanBridge` turns them into the agent
vocabulary (see :mod:`flightrec.agent`) with one mapping:

* a *step* (an agent, a chain, a graph node, any span without a GenAI meaning) records
  ``step_start`` when it starts and ``step_end`` when it ends, so a span still open at a
  crash shows in the dump as a step without an end;
* an *LLM call* is a step too (named after the span), holding one ``llm`` event recorded
  when the call ends;
* a *tool call* records ``tool_call`` when it starts and ``tool_result`` when it ends, both
  inside the enclosing step, like ``@flightrec.tool`` does.

Events are attributed to their step by setting :data:`flightrec.context.current_span` around
each ``record`` call, so integration steps and ``with flightrec.step(...)`` steps form one
tree: a span whose parent is unknown to the bridge hangs under the innermost open
``flightrec.step`` of the context that started it.

A tool call is not a step: a span started inside one (a sub-agent or a graph run by the
tool) is a step of the tool call's own step, and says which call it runs in:
``attrs.in_call`` (the call id) and ``attrs.in_tool`` on its ``step_start`` (``in_call`` on
the ``tool_call`` of a tool called by a tool). Exports nest it under the tool call's span.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from .. import api
from ..context import current_span

_perf_ns = time.perf_counter_ns
_MISSING: Any = object()

MAX_OPEN = 10_000
"""Most spans tracked at once; the oldest are forgotten beyond it (a leak guard for spans
whose end never comes)."""

MAX_MESSAGES = 16
"""Most trailing messages of an LLM request that are stored."""

MAX_JSON = 64 * 1024
"""Longest JSON text that :func:`maybe_json` decodes. A tool's arguments or result travel as
JSON text in OpenTelemetry attributes and Agents SDK spans, and can be megabytes (a query's
rows): decoding that, and walking the decoded data, cost the agent a second per call. Longer
text is stored as text, cut like any long value (see :func:`bounded`)."""

MAX_JSON_MESSAGES = 1024 * 1024
"""Longest JSON text of LLM messages that is decoded (only the last :data:`MAX_MESSAGES` are
kept, so a long conversation is worth decoding)."""

_TRANSIENT = ("timeout", "ratelimit", "rate_limit", "throttl", "unavailable", "connection", "temporar")
_INVOCATION = ("validation", "typeerror", "valueerror", "invalidargument", "badrequest")


def _counters() -> tuple[Iterator[int], Iterator[int]]:
    """Span and call id counters, shared with :mod:`flightrec.agent` so that ids never collide."""
    try:
        from .. import agent

        return agent._span_ids, agent._call_ids
    except (ImportError, AttributeError):  # agent vocabulary absent: a disjoint range
        return itertools.count(1 << 40), itertools.count(1 << 40)


_span_ids, _call_ids = _counters()


def origin_of(error_type: str | None, exc: BaseException | None = None) -> str | None:
    """The failure origin (transient / invocation / response) of a tool error, if it can tell.

    Uses :func:`flightrec.agent.classify_error` when the exception object is at hand, else
    the error type's name, which for HTTP failures is the status code (GenAI conventions).
    """
    if exc is not None:
        try:
            from ..agent import classify_error

            return classify_error(exc)
        except ImportError:
            pass
    if not error_type:
        return None
    name = error_type.lower()
    if name.isdigit():
        status = int(name)
        if status in (408, 429) or status >= 500:
            return "transient"
        if status in (400, 422):
            return "invocation"
        return "response" if status >= 400 else None
    if any(k in name for k in _TRANSIENT):
        return "transient"
    if any(k in name for k in _INVOCATION):
        return "invocation"
    return None


def status_of(exc: BaseException | None) -> int | None:
    """The HTTP status code an exception carries (``status_code`` or ``status``, on it or on
    its ``response``: OpenAI, Anthropic, httpx, requests errors), if any."""
    if exc is None:
        return None
    try:
        from ..agent import _status

        return _status(exc)
    except Exception:
        return None


def maybe_json(value: Any, limit: int = MAX_JSON) -> Any:
    """Decode a JSON string (tool arguments and results often travel as one) of at most
    ``limit`` characters; else as is."""
    if isinstance(value, str) and value[:1] in ("{", "[") and len(value) <= limit:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def error_text(exc: BaseException | str, limit: int = 2000) -> str:
    """An exception's message, bounded (never raises)."""
    try:
        text = exc if isinstance(exc, str) else str(exc)
    except Exception:
        text = f"<unprintable {type(exc).__name__}>"
    return text if len(text) <= limit else text[:limit] + "…"


def bounded(value: Any) -> tuple[Any, int | None]:
    """A tool result as stored, and its full length when it had to be cut: text cut to the
    recorder's ``max_value``, lists and dicts to their first 100 items, as ``@flightrec.tool``
    stores results (the full length goes in ``result_len``)."""
    try:
        from ..agent import _bounded_result
    except ImportError:
        return value, None
    rec = api._recorder
    return _bounded_result(value, rec.config.max_value if rec is not None else 4096)


def tail(messages: Any, limit: int = MAX_MESSAGES) -> Any:
    """The last ``limit`` items of a message list (prompts grow with the conversation)."""
    if isinstance(messages, (list, tuple)) and len(messages) > limit:
        return list(messages[-limit:])
    return messages


def checkpoint(state: Any, label: str) -> None:
    """Record a state snapshot with the agent vocabulary's checkpoint, when it is there."""
    import flightrec

    fn: Callable[..., Any] | None = getattr(flightrec, "checkpoint", None)
    if not callable(fn):
        try:
            from ..checkpoint import checkpoint as fn
        except ImportError:
            fn = None
    if fn is not None:
        fn(state, label=label)
    else:
        api.record("checkpoint", label=label, state=state)


class Owners:
    """Which of several instances of one integration records a span: the first to see it start.

    An app can end up with two: the one ``import flightrec.auto`` installs and one it adds
    itself (``callbacks=[FlightrecCallbackHandler()]`` on a model, ``add_span_processor(
    FlightrecSpanProcessor())``); each span must still be recorded once. Claims are kept for
    the last ``limit`` spans, not dropped at a span's end: the other instances see the end
    after the owner did.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._owners: dict[Hashable, object] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def claim(self, key: Hashable, who: object) -> bool:
        """A span starts: whether ``who`` records it (no other instance claimed it first)."""
        with self._lock:
            owner = self._owners.setdefault(key, who)
            if owner is who and len(self._owners) > self._limit:
                del self._owners[next(iter(self._owners))]
        return owner is who

    def owns(self, key: Hashable, who: object) -> bool:
        """Whether ``who`` records the span ``key`` (also when no instance saw it start)."""
        return self._owners.get(key, who) is who


class _Open:
    """One span in flight."""

    __slots__ = ("args_known", "attempt", "call_id", "ctx", "ext", "in_call", "kind", "name", "rkey", "t0", "tool")

    def __init__(self, kind: str, ctx: tuple[int, int | None] | None, name: str) -> None:
        self.kind = kind
        self.ctx = ctx
        """Context its events are recorded in: its own (sid, parent) for a step or an LLM
        call, the enclosing step's for a tool call or a pass-through span."""
        self.name = name
        self.t0 = _perf_ns()
        self.call_id = 0
        self.tool = ""
        self.args_known = True
        self.attempt = 1
        self.rkey: tuple[Any, ...] | None = None
        self.ext: Any = None
        """The framework's own id of the call (the model's tool call id), if any."""
        self.in_call: tuple[int, str] | None = None
        """(call id, tool) of the tool call a pass-through span runs in, if any."""


class SpanBridge:
    """Maps one tracer's spans onto flightrec events; see the module docstring.

    Args:
        source: which integration this is (``"otel"``, ``"langchain"``, ``"openai_agents"``),
            stored on every step's attributes.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._open: OrderedDict[Hashable, _Open] = OrderedDict()
        self._lock = threading.Lock()
        self._failed: OrderedDict[tuple[Any, ...], tuple[int, int]] = OrderedDict()

    # ------------------------------------------------------------------ plumbing
    def _emit(
        self, rec: Any, kind: str, data: dict[str, Any], ctx: tuple[int, int | None] | None, is_error: bool = False
    ) -> None:
        token = current_span.set(ctx)
        try:
            rec.record(kind, data, False, is_error)
        finally:
            current_span.reset(token)

    def _enclosing(self, parent_key: Hashable | None) -> tuple[int, int | None] | None:
        if parent_key is not None:
            with self._lock:
                parent = self._open.get(parent_key)
            if parent is not None:
                return parent.ctx
        return current_span.get()

    def _call_of(self, parent_key: Hashable | None) -> tuple[int, str] | None:
        """(call id, tool) of the tool call that the parent span is, or runs in (through spans
        that record nothing), if any."""
        if parent_key is None:
            return None
        parent = self._open.get(parent_key)
        if parent is None:
            return None
        if parent.kind == "tool":
            return parent.call_id, parent.tool
        return parent.in_call if parent.kind == "pass" else None

    def _track(self, key: Hashable, entry: _Open) -> None:
        with self._lock:
            self._open[key] = entry
            while len(self._open) > MAX_OPEN:
                self._open.popitem(last=False)

    def _pop(self, key: Hashable) -> _Open | None:
        with self._lock:
            return self._open.pop(key, None)

    def is_open(self, key: Hashable) -> bool:
        """Whether the span ``key`` started and has not ended yet."""
        return key in self._open

    def kind_of(self, key: Hashable) -> str | None:
        """What the open span ``key`` was recorded as (``step``, ``llm``, ``tool``...), if open."""
        entry = self._open.get(key)
        return entry.kind if entry is not None else None

    def started_ns(self, key: Hashable) -> int | None:
        """When the open span ``key`` started (``time.perf_counter_ns``), if it is open."""
        entry = self._open.get(key)
        return entry.t0 if entry is not None else None

    def context_of(self, key: Hashable) -> tuple[int, int | None] | None:
        """The ``(step id, parent id)`` that events inside the span ``key`` belong to."""
        entry = self._open.get(key)
        return entry.ctx if entry is not None else current_span.get()

    def event(self, key: Hashable, kind: str, data: dict[str, Any], is_error: bool = False) -> None:
        """Record an event of ``kind`` inside the span ``key`` (or the current step)."""
        rec = api._recorder
        if rec is None:
            return
        try:
            self._emit(rec, kind, data, self.context_of(key), is_error)
        except Exception:
            rec.errors += 1

    # ------------------------------------------------------------------ steps
    def step_start(
        self,
        key: Hashable,
        parent_key: Hashable | None,
        name: str,
        attrs: dict[str, Any] | None = None,
        kind: str = "step",
    ) -> None:
        """A span that is a step started: record ``step_start``."""
        rec = api._recorder
        if rec is None:
            return
        try:
            outer = self._enclosing(parent_key)
            sid = next(_span_ids)
            entry = _Open(kind, (sid, outer[0] if outer is not None else None), name)
            self._track(key, entry)
            step_attrs: dict[str, Any] = {"source": self.source}
            if attrs:
                step_attrs.update(attrs)
            call = self._call_of(parent_key)
            if call is not None:
                step_attrs["in_call"], step_attrs["in_tool"] = call
            self._emit(rec, "step_start", {"name": name, "attrs": step_attrs}, entry.ctx)
        except Exception:
            rec.errors += 1

    def step_end(
        self,
        key: Hashable,
        *,
        error: BaseException | str | None = None,
        error_type: str | None = None,
        duration_ms: float | None = None,
        attrs: dict[str, Any] | None = None,
        benign: bool = False,
    ) -> None:
        """The step ``key`` ended: record ``step_end`` (with the error, if it failed).

        Args:
            key: the span's id.
            error: the exception or message it failed with.
            error_type: the error's class name (taken from ``error`` when it is an exception).
            duration_ms: the tracer's own measure; else the time since ``step_start``.
            attrs: attributes learned during the span.
            benign: the "error" is control flow (an interrupt), not a failure.
        """
        rec = api._recorder
        if rec is None:
            return
        entry = self._pop(key)
        if entry is None or entry.kind == "pass":
            return
        try:
            self._end_step(rec, entry, error, error_type, duration_ms, attrs, benign)
        except Exception:
            rec.errors += 1

    def _end_step(
        self,
        rec: Any,
        entry: _Open,
        error: BaseException | str | None,
        error_type: str | None,
        duration_ms: float | None,
        attrs: dict[str, Any] | None,
        benign: bool,
    ) -> None:
        if duration_ms is None:
            duration_ms = (_perf_ns() - entry.t0) / 1e6
        data: dict[str, Any] = {"name": entry.name, "duration_ms": round(duration_ms, 3)}
        failed = error is not None
        if failed:
            data["error"] = error_text(error)  # type: ignore[arg-type]
            data["error_type"] = error_type or (type(error).__name__ if isinstance(error, BaseException) else "Error")
            if benign:
                data["benign"] = True
        if attrs:
            data["attrs"] = attrs
        self._emit(rec, "step_end", data, entry.ctx, failed and not benign)

    def passthrough(self, key: Hashable, parent_key: Hashable | None) -> None:
        """A span that records nothing itself (a hidden internal run); its children go up."""
        if api._recorder is None:
            return
        entry = _Open("pass", self._enclosing(parent_key), "")
        entry.in_call = self._call_of(parent_key)
        self._track(key, entry)

    def forget(self, key: Hashable) -> None:
        """Drop a span without recording its end."""
        self._pop(key)

    # ------------------------------------------------------------------ LLM calls
    def llm_start(
        self, key: Hashable, parent_key: Hashable | None, name: str, attrs: dict[str, Any] | None = None
    ) -> None:
        """An LLM call started: a step named ``name`` that will hold the ``llm`` event.

        The step is marked ``attrs.span_kind = "llm"``, so that exports fold the two into
        one LLM span.
        """
        self.step_start(key, parent_key, name, {**(attrs or {}), "span_kind": "llm"}, kind="llm")

    def llm_end(
        self,
        key: Hashable,
        parent_key: Hashable | None = None,
        *,
        model: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        latency_ms: float | None = None,
        request: Any = _MISSING,
        response: Any = _MISSING,
        error: BaseException | str | None = None,
        error_type: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """The LLM call ``key`` ended: record ``llm`` inside its step, then ``step_end``.

        A failed call carries ``error`` and ``error_type``, and, as a failed tool call does,
        the failure's ``origin`` (``transient`` for a 429, a 5xx, a timeout...) and the HTTP
        ``status`` when the exception has one. A call whose start was not seen is recorded in
        the enclosing step, without a step.
        """
        rec = api._recorder
        if rec is None:
            return
        entry = self._pop(key)
        try:
            if entry is None:
                ctx = self._enclosing(parent_key)
            else:
                ctx = entry.ctx
                if latency_ms is None:
                    latency_ms = (_perf_ns() - entry.t0) / 1e6
            data: dict[str, Any] = {
                "model": model,
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "latency_ms": round(latency_ms, 3) if latency_ms is not None else None,
            }
            if request is not _MISSING and request is not None:
                data["request"] = request
            if response is not _MISSING and response is not None:
                data["response"] = response
            if error is not None:
                exc = error if isinstance(error, BaseException) else None
                data["error"] = error_text(error)
                data["error_type"] = error_type or (type(exc).__name__ if exc is not None else None)
                status = status_of(exc)
                if status is not None:
                    data["status"] = status
                origin = origin_of(error_type, exc)
                if origin is not None:
                    data["origin"] = origin
            if extra:
                data.update(extra)
            self._emit(rec, "llm", data, ctx, error is not None)
            if entry is not None:
                self._end_step(rec, entry, error, error_type, latency_ms, None, False)
        except Exception:
            rec.errors += 1

    # ------------------------------------------------------------------ tool calls
    def tool_start(
        self,
        key: Hashable,
        parent_key: Hashable | None,
        tool: str,
        args: Any = _MISSING,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """A tool call started: record ``tool_call`` in the enclosing step.

        Args:
            key: the span's id.
            parent_key: its parent span's id.
            tool: the tool's name.
            args: its arguments; leave out when the tracer only knows them at the end
                (they are then stored on the ``tool_result``).
            extra: more fields (e.g. the framework's own call id as ``ext_call_id``).
        """
        rec = api._recorder
        if rec is None:
            return
        try:
            ctx = self._enclosing(parent_key)
            entry = _Open("tool", ctx, tool)
            entry.tool = tool
            entry.call_id = next(_call_ids)
            entry.args_known = args is not _MISSING
            entry.ext = extra.get("ext_call_id") if extra else None
            data: dict[str, Any] = {
                "tool": tool,
                "call_id": entry.call_id,
                "args": args if entry.args_known else None,
                "attempt": 1,
            }
            if entry.args_known:
                entry.rkey = self._retry_key(ctx, tool, args, entry.ext)
                with self._lock:
                    prev = self._failed.get(entry.rkey)
                if prev is not None:
                    entry.attempt = data["attempt"] = prev[1] + 1
                    data["retry_of"] = prev[0]
            if extra:
                data.update(extra)
            outer = self._call_of(parent_key)
            if outer is not None:
                data["in_call"] = outer[0]
            self._track(key, entry)
            self._emit(rec, "tool_call", data, ctx)
            entry.t0 = _perf_ns()
        except Exception:
            rec.errors += 1

    def tool_end(
        self,
        key: Hashable,
        parent_key: Hashable | None = None,
        *,
        tool: str | None = None,
        result: Any = _MISSING,
        args: Any = _MISSING,
        error: BaseException | str | None = None,
        error_type: str | None = None,
        latency_ms: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """The tool call ``key`` ended: record ``tool_result`` (result or error, origin, latency).

        A call whose start was not seen records its ``tool_call`` now.
        """
        rec = api._recorder
        if rec is None:
            return
        entry = self._pop(key)
        if entry is not None and entry.kind != "tool":
            return
        try:
            if entry is None:
                self.tool_start(key, parent_key, tool or "tool", args)
                entry = self._pop(key)
                if entry is None:
                    return
            if latency_ms is None:
                latency_ms = (_perf_ns() - entry.t0) / 1e6
            data: dict[str, Any] = {"tool": entry.tool, "call_id": entry.call_id, "latency_ms": round(latency_ms, 3)}
            if not entry.args_known and args is not _MISSING:
                data["args"] = args
            if result is not _MISSING:
                data["result"], full = bounded(result)
                if full is not None:
                    data["result_len"] = full
            if error is not None:
                exc = error if isinstance(error, BaseException) else None
                data["error"] = error_text(error)
                data["error_type"] = error_type or (type(error).__name__ if exc is not None else "ToolError")
                origin = origin_of(error_type, exc)
                if origin is not None:
                    data["origin"] = origin
            if extra:
                data.update(extra)
            if entry.rkey is None and args is not _MISSING:
                entry.rkey = self._retry_key(entry.ctx, entry.tool, args, entry.ext)
            if entry.rkey is not None:
                self._note_outcome(entry.rkey, entry, error is not None)
            self._emit(rec, "tool_result", data, entry.ctx, error is not None)
        except Exception:
            rec.errors += 1

    # ------------------------------------------------------------------ retries
    @staticmethod
    def _retry_key(ctx: tuple[int, int | None] | None, tool: str, args: Any, ext: Any = None) -> tuple[Any, ...]:
        """What a retry of this call repeats: the model's call id when the framework gives one
        (a LangGraph RetryPolicy re-runs the tools node, a new step, with the same call), else
        the step, the tool and the arguments."""
        if isinstance(ext, (str, int)) and ext:
            return ("call", tool, ext)
        # The fingerprint @flightrec.tool uses (MessagePack + xxh3): megabytes of arguments
        # cost a millisecond, where json.dumps took 40 ms for 11 MB.
        try:
            from ..agent import _fingerprint

            fp: Any = _fingerprint(args)
        except ImportError:
            fp = None
        if fp is None:
            try:
                fp = hash(repr(args))
            except Exception:
                fp = id(args)
        return (ctx[0] if ctx is not None else None, tool, fp)

    def _note_outcome(self, rkey: tuple[Any, ...], entry: _Open, failed: bool) -> None:
        """Remember failed calls so that a retry with the same arguments is linked to them."""
        with self._lock:
            if failed:
                self._failed[rkey] = (entry.call_id, entry.attempt)
                self._failed.move_to_end(rkey)
                if len(self._failed) > 1024:
                    self._failed.popitem(last=False)
            else:
                self._failed.pop(rkey, None)
