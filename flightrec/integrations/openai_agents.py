"""OpenAI Agents SDK: a ``TracingProcessor`` that records traces and spans as flightrec events.

:func:`enable` adds :class:`FlightrecTracingProcessor` with ``agents.add_trace_processor``
(the SDK's own exporters keep working beside it). The SDK's spans map onto the agent
vocabulary:

=====================================  ===========================================================
SDK span                               recorded as
=====================================  ===========================================================
trace (a ``Runner.run``)               a step named after the workflow
``agent``                              a step ``agent <name>`` (its tools and hand-offs as attrs)
``generation``, ``response``           a step holding one ``llm`` event (model, input/output
                                       tokens, the last input items, the output)
``function``                           ``tool_call`` / ``tool_result`` (the arguments come from
                                       the model output that asked for the call; failing that,
                                       they are stored on the ``tool_result``)
``handoff``, ``guardrail``,            steps (a triggered guardrail is marked on its end, a
                                       handoff's target agent too: ``to_agent``)
``custom``, ``task``, ``turn``, ...
=====================================  ===========================================================

A span's ``error`` becomes the step's (or tool call's) error. The SDK's span errors are
text only ("Error running tool (non-fatal)", details often redacted), so the exception
itself is taken where the SDK exposes it, and failures then carry what ``@flightrec.tool``
and the LangChain handler record: the exception's message, its class as ``error_type``,
its ``origin`` (:func:`flightrec.agent.classify_error`) and, for a model call, the HTTP
``status``:

* a span that ends while an exception propagates out of the code ending it (a model call
  raising ``openai.RateLimitError``, and the turn, agent and task spans and the trace it
  unwinds through) is failed with that exception, also when the SDK set no error on it;
* a span whose error the SDK sets while it handles an exception (a tool's exception that
  the SDK turns into a message for the model) is failed with that exception: the
  processor wraps the SDK's ``SpanImpl.set_error`` to see it (the SDK's own error text is
  still set on the span, unchanged).

Spans still open at a crash show as steps without an end. Importing this module imports
the ``agents`` package.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import OrderedDict
from types import FrameType
from typing import Any

from agents.tracing import TracingProcessor

from .. import api
from ._bridge import _MISSING, MAX_JSON_MESSAGES, Owners, SpanBridge, maybe_json, tail

__all__ = ["FlightrecTracingProcessor", "enable"]

_LLM_TYPES = frozenset({"generation", "response", "transcription", "speech"})
_owners = Owners()
"""Which processor records a trace or span: the SDK can hold two (the one :func:`enable`
adds and one the app adds itself)."""


_SDK_FRAMES = ("agents.tracing", "contextlib", __name__)
"""Modules between the code that ends a span and this processor: the SDK's tracing, the
``contextlib`` of its ``trace()`` context manager, and this module."""


def _raised_through() -> BaseException | None:
    """The exception propagating through the code that is ending a span right now, if any.

    ``sys.exc_info()`` in a ``finally`` or ``with`` exit that an exception passes through is
    that exception. It is also the one an ``except`` block around the whole run is handling,
    so it counts only if it is being handled in the very frame that ends the span: the
    first frame up the stack that is not the SDK's tracing.
    """
    exc = sys.exc_info()[1]
    if exc is None or isinstance(exc, GeneratorExit):  # (a stream closed early: no failure)
        return None
    tb = exc.__traceback__
    frame: FrameType | None = sys._getframe(1)
    for _ in range(32):
        if frame is None or tb is None:
            return None
        module = frame.f_globals.get("__name__", "")
        if not (isinstance(module, str) and module.startswith(_SDK_FRAMES)):
            return exc if frame is tb.tb_frame else None
        frame = frame.f_back
    return None


_LIMIT = 256
_set_errors: OrderedDict[str, BaseException] = OrderedDict()
"""Span id -> the exception being handled when the SDK set the span's error; taken at the
span's end (the last :data:`_LIMIT`, in case an end never comes)."""
_set_errors_lock = threading.Lock()


def _watch_span_errors() -> None:
    """Wrap the SDK's ``SpanImpl.set_error`` (once) to keep the exception being handled.

    The SDK sets a span's error from inside the ``except`` block that caught the exception
    (a tool's, a model call's) but keeps only text, often redacted; the exception itself is
    ``sys.exc_info()`` there and nowhere else once the block is left. Nothing is kept while
    no recorder runs; the SDK's own ``set_error`` always runs, unchanged.
    """
    from agents.tracing.spans import SpanImpl

    original = SpanImpl.set_error
    if getattr(original, "__flightrec__", False):
        return

    def set_error(self: Any, error: Any) -> None:
        try:
            exc = sys.exc_info()[1]
            if exc is not None and api._recorder is not None:
                with _set_errors_lock:
                    _set_errors[self.span_id] = exc
                    while len(_set_errors) > _LIMIT:
                        _set_errors.popitem(last=False)
        except Exception:
            pass
        original(self, error)

    set_error.__flightrec__ = True  # type: ignore[attr-defined]
    set_error.__wrapped__ = original  # type: ignore[attr-defined]
    SpanImpl.set_error = set_error  # type: ignore[method-assign]


def _error_set_with(span_id: str) -> BaseException | None:
    """The exception being handled when the span's error was set, if one was (taken once)."""
    if not _set_errors:
        return None
    with _set_errors_lock:
        return _set_errors.pop(span_id, None)


def _usage(usage: Any) -> tuple[int | None, int | None]:
    if usage is None:
        return None, None
    get = usage.get if isinstance(usage, dict) else (lambda k, d=None: getattr(usage, k, d))
    prompt = get("input_tokens", None)
    completion = get("output_tokens", None)
    if prompt is None:
        prompt = get("prompt_tokens", None)
    if completion is None:
        completion = get("completion_tokens", None)
    return prompt, completion


def _requested_calls(items: Any) -> list[tuple[str, Any, Any]]:
    """``(tool name, arguments, call id)`` of the tool calls in a model's output items.

    Handles Responses items (``type == "function_call"``) and Chat Completions messages
    (``tool_calls[].function``).
    """
    out: list[tuple[str, Any, Any]] = []
    for item in items if isinstance(items, (list, tuple)) else ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call" and item.get("name"):
            out.append((str(item["name"]), maybe_json(item.get("arguments")), item.get("call_id")))
        for call in item.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and fn.get("name"):
                out.append((str(fn["name"]), maybe_json(fn.get("arguments")), call.get("id")))
    return out


def _sent(exc: BaseException) -> tuple[str | None, Any]:
    """The model and the input of the request a failed OpenAI call sent (an ``openai``
    ``APIStatusError`` holds its ``httpx.Request``), as far as they can be read."""
    try:
        content = exc.request.content  # type: ignore[attr-defined]
        if not isinstance(content, bytes) or len(content) > MAX_JSON_MESSAGES:
            return None, None
        body = json.loads(content)
    except Exception:
        return None, None
    if not isinstance(body, dict):
        return None, None
    model = body.get("model")
    sent = body.get("input", body.get("messages"))
    if isinstance(body.get("instructions"), str) and isinstance(sent, list):
        sent = [{"role": "system", "content": body["instructions"]}, *sent]
    return (str(model) if model else None), sent


def _details_shown(span_error: Any, exc: BaseException) -> bool:
    """Whether the SDK put the failure's details in its span (``trace_include_sensitive_data``):
    only then is the request it kept out of the span taken from the exception."""
    try:
        data = span_error.get("data") if isinstance(span_error, dict) else None
        return isinstance(data, dict) and data.get("error") == str(exc)
    except Exception:
        return False


def _dump(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(exclude_none=True)
        except Exception:
            return repr(value)
    return value


class FlightrecTracingProcessor(TracingProcessor):
    """Records OpenAI Agents SDK traces and spans into the running flight recorder.

    Does nothing while no recorder runs and never raises into the SDK.
    """

    def __init__(self) -> None:
        self.bridge = SpanBridge("openai_agents")
        _watch_span_errors()
        self._handled_at_start: dict[str, BaseException] = {}
        """Span or trace id -> the exception being handled when it started (rare: a run
        started in an ``except`` block); that one is not the span's failure at its end."""
        self._requested: dict[str, dict[str, list[tuple[Any, Any]]]] = {}
        """Parent span id -> tool -> arguments and call ids the model asked for, not yet
        started. Keyed by the span that holds both the generation and the calls it asks for
        (a turn, an agent): runs sharing one trace (``with trace(...)`` around concurrent
        ``Runner.run``) ask for the same tool at the same time, and each call must take the
        arguments of its own run's model."""

    def on_trace_start(self, trace: Any) -> None:
        """A run started: a step named after the workflow."""
        if not _owners.claim(trace.trace_id, self):
            return
        self._note_handled(trace.trace_id)
        attrs: dict[str, Any] = {"trace_id": trace.trace_id}
        try:
            exported = trace.export() or {}
            if exported.get("group_id"):
                attrs["group_id"] = exported["group_id"]
            if exported.get("metadata"):
                attrs["metadata"] = exported["metadata"]
        except Exception:
            pass
        self.bridge.step_start(trace.trace_id, None, str(trace.name or "trace"), attrs)

    def on_trace_end(self, trace: Any) -> None:
        """A run ended."""
        if not _owners.owns(trace.trace_id, self):
            return
        try:
            self.bridge.step_end(trace.trace_id, error=self._failure(trace.trace_id))
        except Exception:
            self._count_error()
        self._requested.pop(trace.trace_id, None)

    def on_span_start(self, span: Any) -> None:
        """A span started: a step, an LLM call's step, or a tool call."""
        try:
            if not _owners.claim(span.span_id, self):
                return
            self._note_handled(span.span_id)
            data = span.span_data
            kind = data.type
            key = span.span_id
            parent = span.parent_id or span.trace_id
            if kind == "function":
                args: Any = maybe_json(data.input) if data.input is not None else _MISSING
                extra = None
                queue = self._requested.get(parent, {}).get(str(data.name))
                if queue:
                    requested, call_id = queue.pop(0)
                    if args is _MISSING:
                        args = requested
                    if call_id:
                        extra = {"ext_call_id": call_id}
                self.bridge.tool_start(key, parent, str(data.name), args, extra)
                return
            attrs: dict[str, Any] = {"span_id": key, "type": kind}
            if kind in _LLM_TYPES:
                model = getattr(data, "model", None)
                if model:
                    attrs["model"] = model
                name = f"{kind} {model}" if model else kind
                self.bridge.llm_start(key, parent, name, attrs)
                return
            if kind == "agent":
                name = f"agent {data.name}"
                attrs.update(tools=data.tools, handoffs=data.handoffs, output_type=data.output_type)
            elif kind == "handoff":  # (the SDK sets to_agent after the start: it goes on the end)
                to = f" -> {data.to_agent}" if data.to_agent else ""
                name = f"handoff {data.from_agent}{to}"
            elif kind == "turn":
                name = f"turn {data.turn}"
                attrs["agent"] = data.agent_name
            else:
                name = str(getattr(data, "name", None) or kind)
                if kind == "custom":
                    attrs["data"] = getattr(data, "data", None)
            self.bridge.step_start(key, parent, name, attrs)
        except Exception:
            self._count_error()

    def on_span_end(self, span: Any) -> None:
        """A span ended: ``step_end``, ``llm`` + ``step_end``, or ``tool_result``."""
        try:
            if not _owners.owns(span.span_id, self):
                return
            data = span.span_data
            kind = data.type
            key = span.span_id
            parent = span.parent_id or span.trace_id
            err = span.error
            error: BaseException | str | None = None
            if err:
                error = str(err.get("message") or "error")
                detail = err.get("data")
                if detail:
                    error = f"{error}: {detail}"[:2000]
            exc = self._failure(key, error is not None)
            if kind == "function":
                output = data.output
                self.bridge.tool_end(
                    key,
                    parent,
                    tool=str(data.name),
                    args=maybe_json(data.input) if data.input is not None else _MISSING,
                    result=maybe_json(output) if output is not None else _MISSING,
                    error=exc if exc is not None else error,
                    error_type=None if exc is not None else "ToolError" if error else None,
                )
            elif kind in _LLM_TYPES:
                self._llm_end(key, parent, data, exc if exc is not None else error, err)
            else:
                attrs: dict[str, Any] | None = None
                if kind == "agent" and (data.tools or data.handoffs):
                    attrs = {"tools": data.tools, "handoffs": data.handoffs}
                elif kind == "handoff" and data.to_agent:
                    attrs = {"to_agent": data.to_agent}
                elif kind == "guardrail":
                    attrs = {"triggered": bool(data.triggered)}
                elif kind in ("task", "turn") and getattr(data, "usage", None):
                    attrs = {"usage": data.usage}
                if exc is not None:
                    error = exc
                self.bridge.step_end(
                    key, error=error, error_type="AgentsError" if isinstance(error, str) else None, attrs=attrs
                )
                self._requested.pop(key, None)  # calls asked for in it and never run (hand-offs)
        except Exception:
            self._count_error()

    def _note_handled(self, key: str) -> None:
        """Remember the exception being handled as the span ``key`` starts, if any."""
        exc = sys.exc_info()[1]
        if exc is not None and len(self._handled_at_start) < 10_000:
            self._handled_at_start[key] = exc

    def _failure(self, key: str, has_error: bool = False) -> BaseException | None:
        """The exception the span ``key`` failed with, if it can be known: the one being
        handled when the SDK set its error (``has_error``), else the one propagating through
        the code that ends it (see :func:`_raised_through`). The exception that was already
        being handled when the span started is none of its business."""
        before = self._handled_at_start.pop(key, None) if self._handled_at_start else None
        set_with = _error_set_with(key)
        for exc in (set_with if has_error else None, _raised_through()):
            if exc is not None and exc is not before:
                return exc
        return None

    def _llm_end(
        self, key: str, parent: str, data: Any, error: BaseException | str | None, span_error: Any = None
    ) -> None:
        kind = data.type
        model = getattr(data, "model", None)
        request: Any = getattr(data, "input", None)
        response: Any = getattr(data, "output", None)
        usage = getattr(data, "usage", None)
        if kind == "response":
            resp = data.response
            if resp is not None:
                model = model or getattr(resp, "model", None)
                usage = usage or getattr(resp, "usage", None)
                response = [_dump(item) for item in getattr(resp, "output", None) or ()]
        if isinstance(error, BaseException) and (model is None or request is None):
            # A failed Responses call's span holds neither: the request the client sent does.
            sent_model, sent_input = _sent(error)
            model = model or sent_model
            if request is None and _details_shown(span_error, error):
                request = sent_input
        prompt, completion = _usage(usage)
        if len(self._requested) < 1000:
            for tool, args, call_id in _requested_calls(response):
                self._requested.setdefault(parent, {}).setdefault(tool, []).append((args, call_id))
        self.bridge.llm_end(
            key,
            parent,
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            request=tail(request) if not isinstance(request, str) else request,
            response=response,
            error=error,
            error_type="ModelError" if isinstance(error, str) else None,
        )

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self) -> None:
        """Events are in the ring as soon as they are recorded: nothing to flush."""

    @staticmethod
    def _count_error() -> None:
        from .. import api

        rec = api._recorder
        if rec is not None:
            rec.errors += 1


_processor: FlightrecTracingProcessor | None = None


def enable() -> FlightrecTracingProcessor:
    """Add the processor to the SDK's trace provider (idempotent).

    Returns:
        The processor.
    """
    global _processor
    if _processor is None:
        from agents import add_trace_processor

        _processor = FlightrecTracingProcessor()
        add_trace_processor(_processor)
    return _processor
