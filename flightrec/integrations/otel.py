"""OpenTelemetry: record every span an instrumented library emits.

Add :class:`FlightrecSpanProcessor` to a ``TracerProvider`` (or call :func:`enable`) and
everything instrumented with OpenTelemetry (pydantic-ai, OpenLLMetry, Logfire- or
OpenInference-instrumented code, HTTP clients...) lands in the flight recorder. Spans
following the GenAI semantic conventions get the agent vocabulary:

==============================================  ==============================================
``gen_ai.operation.name``                       recorded as
==============================================  ==============================================
``chat``, ``text_completion``,                  a step holding one ``llm`` event (model from
``generate_content``, ``embeddings``            ``gen_ai.response.model`` / ``.request.model``,
                                                tokens from ``gen_ai.usage.input_tokens`` /
                                                ``output_tokens``, messages from
                                                ``gen_ai.input.messages`` / ``output.messages``)
``execute_tool``                                ``tool_call`` / ``tool_result`` (name from
                                                ``gen_ai.tool.name``, ``gen_ai.tool.call.arguments``
                                                / ``.result``; the error from the span status)
``invoke_agent``, ``create_agent``, any other   a step named after the span
==============================================  ==============================================

Spans of OpenInference instrumentors (``openinference.span.kind`` LLM / EMBEDDING / TOOL /
AGENT, ``llm.model_name``, ``llm.token_count.*``, ``llm.input_messages.N.message.*``,
``tool.name``, ``input.value`` / ``output.value``) and of OpenLLMetry (``llm.request.type``,
``traceloop.span.kind`` tool / agent, ``traceloop.entity.*``, ``gen_ai.prompt.N.*``) are read
as their GenAI equivalents (see ``_conventions``).

A span is recorded when it starts and when it ends, so a span still open when the process
crashes appears in the dump as a step (or tool call) without an end.

Importing this module imports ``opentelemetry-sdk``; ``flightrec`` itself never does
(``flightrec.auto`` imports this module only once the application imports the SDK).
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor

from ._bridge import _MISSING, Owners, SpanBridge, maybe_json, tail
from ._bridge import MAX_JSON_MESSAGES as _MESSAGES
from ._conventions import as_genai

__all__ = ["FlightrecSpanProcessor", "disable", "enable"]

LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
TOOL_OPERATION = "execute_tool"

_CONSUMED = frozenset(
    {
        "gen_ai.operation.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.tool.name",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.tool.call.id",
    }
)
"""Attributes that become event fields, not step attributes."""


_MAX_TRACKED = 10_000
_owners = Owners()
"""Which processor records a span: a provider can hold two (the one :func:`enable` adds to
every provider, and one the app adds itself)."""


def _attrs(span: Any) -> dict[str, Any]:
    raw = getattr(span, "attributes", None)
    if not raw:
        return {}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in raw.items()}


def _first(attrs: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = attrs.get(name)
        if value is not None:
            return value
    return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class FlightrecSpanProcessor(SpanProcessor):
    """An OpenTelemetry ``SpanProcessor`` that records spans into the running flight recorder.

    It does nothing while no recorder runs, never raises into the tracer, and keeps no span
    after it ended. Add it with ``provider.add_span_processor(FlightrecSpanProcessor())``.
    """

    def __init__(self) -> None:
        self.bridge = SpanBridge("otel")
        self._start_attrs: dict[int, dict[str, Any]] = {}
        """Attributes a step started with, so that its end stores only what changed."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        """Record the span's start (a step, an LLM call's step, or a tool call)."""
        try:
            ctx = span.get_span_context()
            key = ctx.span_id
            if not _owners.claim(key, self):
                return
            parent = span.parent.span_id if span.parent is not None else None
            attrs = as_genai(_attrs(span))
            op = attrs.get("gen_ai.operation.name")
            if op == TOOL_OPERATION:
                args = attrs.get("gen_ai.tool.call.arguments", _MISSING)
                extra = {"ext_call_id": attrs["gen_ai.tool.call.id"]} if "gen_ai.tool.call.id" in attrs else None
                tool = _first(attrs, "gen_ai.tool.name") or span.name
                self.bridge.tool_start(key, parent, str(tool), maybe_json(args), extra)
                return
            step_attrs = {k: v for k, v in attrs.items() if k not in _CONSUMED}
            step_attrs["otel.trace_id"] = f"{ctx.trace_id:032x}"
            step_attrs["otel.span_id"] = f"{key:016x}"
            if op in LLM_OPERATIONS:
                step_attrs["gen_ai.operation.name"] = op
                model = _first(attrs, "gen_ai.request.model")
                if model is not None:
                    step_attrs["model"] = model
                self.bridge.llm_start(key, parent, span.name, step_attrs)
            else:
                if op is not None:
                    step_attrs["gen_ai.operation.name"] = op
                self.bridge.step_start(key, parent, span.name, step_attrs)
                if len(self._start_attrs) < _MAX_TRACKED:
                    self._start_attrs[key] = attrs
        except Exception:
            self._count_error()

    def _on_ending(self, span: Any) -> None:
        """Nothing to do before the span is frozen (newer SDKs call this)."""

    def on_end(self, span: Any) -> None:
        """Record the span's end: ``step_end``, ``llm`` + ``step_end``, or ``tool_result``."""
        try:
            key = span.context.span_id
            if not _owners.owns(key, self):
                return
            parent = span.parent.span_id if span.parent is not None else None
            attrs = as_genai(_attrs(span))
            op = attrs.get("gen_ai.operation.name")
            duration_ms = None
            if span.start_time is not None and span.end_time is not None:
                duration_ms = (span.end_time - span.start_time) / 1e6
            error, error_type = self._error(span, attrs)
            # (taken out whatever the span turned out to be: a span named an LLM call or a tool
            # only after it started was tracked as a step, and would stay tracked for good)
            before = self._start_attrs.pop(key, {})
            if op == TOOL_OPERATION:
                result = attrs.get("gen_ai.tool.call.result", _MISSING)
                args = attrs.get("gen_ai.tool.call.arguments", _MISSING)
                late = self.bridge.kind_of(key) == "step"  # named a tool late: the call goes in that step
                self.bridge.tool_end(
                    (key, TOOL_OPERATION) if late else key,
                    key if late else parent,
                    tool=str(_first(attrs, "gen_ai.tool.name") or span.name),
                    result=maybe_json(result),
                    args=maybe_json(args),
                    error=error,
                    error_type=error_type,
                    latency_ms=duration_ms,
                )
                if late:
                    self.bridge.step_end(key, error=error, error_type=error_type, duration_ms=duration_ms)
            elif op in LLM_OPERATIONS:
                prompt = _first(attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
                completion = _first(attrs, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
                self.bridge.llm_end(
                    key,
                    parent,
                    model=_first(attrs, "gen_ai.response.model", "gen_ai.request.model"),
                    prompt_tokens=_int(prompt),
                    completion_tokens=_int(completion),
                    latency_ms=duration_ms,
                    request=tail(maybe_json(_first(attrs, "gen_ai.input.messages", "gen_ai.prompt"), _MESSAGES)),
                    response=maybe_json(_first(attrs, "gen_ai.output.messages", "gen_ai.completion"), _MESSAGES),
                    error=error,
                    error_type=error_type,
                )
            else:
                later = {k: v for k, v in attrs.items() if k not in _CONSUMED and before.get(k, _MISSING) != v}
                self.bridge.step_end(
                    key, error=error, error_type=error_type, duration_ms=duration_ms, attrs=later or None
                )
        except Exception:
            self._count_error()

    @staticmethod
    def _error(span: Any, attrs: dict[str, Any]) -> tuple[str | None, str | None]:
        """The span's failure, from its status, ``error.type`` and exception events."""
        status = getattr(span, "status", None)
        failed = status is not None and getattr(status.status_code, "name", "") == "ERROR"
        error_type = attrs.get("error.type")
        message = getattr(status, "description", None) if failed else None
        for event in getattr(span, "events", ()) or ():
            if event.name == "exception":
                ev_attrs = event.attributes or {}
                error_type = error_type or ev_attrs.get("exception.type")
                message = message or ev_attrs.get("exception.message")
        if not failed and error_type is None:
            return None, None
        type_name = str(error_type).rsplit(".", 1)[-1] if error_type else None
        return str(message or error_type or "error"), type_name

    @staticmethod
    def _count_error() -> None:
        from .. import api

        rec = api._recorder
        if rec is not None:
            rec.errors += 1

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Events are in the ring as soon as they are recorded: nothing to flush."""
        return True


_processor: FlightrecSpanProcessor | None = None
_patched = False
_lock = threading.Lock()


def processor() -> FlightrecSpanProcessor:
    """The process-wide processor that :func:`enable` adds to providers."""
    global _processor
    with _lock:
        if _processor is None:
            _processor = FlightrecSpanProcessor()
        return _processor


def _attach(provider: Any) -> bool:
    """Add the processor to an SDK provider once; False for a provider that takes none."""
    add = getattr(provider, "add_span_processor", None)
    if add is None:
        return False
    proc = processor()
    active = getattr(provider, "_active_span_processor", None)
    if proc in tuple(getattr(active, "_span_processors", ())):
        return True
    add(proc)
    return True


def enable(provider: Any = None, *, future_providers: bool = True) -> FlightrecSpanProcessor:
    """Record OpenTelemetry spans.

    Args:
        provider: the SDK ``TracerProvider`` to add the processor to; by default the global
            one, when it is an SDK provider.
        future_providers: also add it to every SDK ``TracerProvider`` created from now on
            (the application usually configures OpenTelemetry after ``import flightrec.auto``).

    Returns:
        The processor.
    """
    global _patched
    from opentelemetry import trace

    proc = processor()
    _attach(provider if provider is not None else trace.get_tracer_provider())
    if future_providers and not _patched:
        from opentelemetry.sdk.trace import TracerProvider

        original = TracerProvider.__init__

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            if _patched:
                try:
                    _attach(self)
                except Exception:
                    pass

        __init__.__wrapped__ = original  # type: ignore[attr-defined]
        TracerProvider.__init__ = __init__  # type: ignore[method-assign]
        _patched = True
    return proc


def disable(provider: Any = None) -> None:
    """Stop adding the processor to new providers (and remove it from ``provider``'s list)."""
    global _patched
    if _patched:
        from opentelemetry.sdk.trace import TracerProvider

        wrapped = getattr(TracerProvider.__init__, "__wrapped__", None)
        if wrapped is not None:
            TracerProvider.__init__ = wrapped  # type: ignore[method-assign]
        _patched = False
    if provider is not None and _processor is not None:
        active: Any = getattr(provider, "_active_span_processor", None)
        procs = getattr(active, "_span_processors", None)
        if isinstance(procs, tuple) and _processor in procs:
            active._span_processors = tuple(p for p in procs if p is not _processor)
