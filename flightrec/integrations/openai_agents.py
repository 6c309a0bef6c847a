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

A span's ``error`` becomes the step's (or tool call's) error. Spans still open at a crash
show as steps without an end. Importing this module imports the ``agents`` package.
"""

from __future__ import annotations

from typing import Any

from agents.tracing import TracingProcessor

from ._bridge import _MISSING, Owners, SpanBridge, maybe_json, tail

__all__ = ["FlightrecTracingProcessor", "enable"]

_LLM_TYPES = frozenset({"generation", "response", "transcription", "speech"})
_owners = Owners()
"""Which processor records a trace or span: the SDK can hold two (the one :func:`enable`
adds and one the app adds itself)."""


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
        self.bridge.step_end(trace.trace_id)
        self._requested.pop(trace.trace_id, None)

    def on_span_start(self, span: Any) -> None:
        """A span started: a step, an LLM call's step, or a tool call."""
        try:
            if not _owners.claim(span.span_id, self):
                return
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
            error = None
            if err:
                error = str(err.get("message") or "error")
                detail = err.get("data")
                if detail:
                    error = f"{error}: {detail}"[:2000]
            if kind == "function":
                output = data.output
                self.bridge.tool_end(
                    key,
                    parent,
                    tool=str(data.name),
                    args=maybe_json(data.input) if data.input is not None else _MISSING,
                    result=maybe_json(output) if output is not None else _MISSING,
                    error=error,
                    error_type="ToolError" if error else None,
                )
            elif kind in _LLM_TYPES:
                self._llm_end(key, parent, data, error)
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
                self.bridge.step_end(key, error=error, error_type="AgentsError" if error else None, attrs=attrs)
                self._requested.pop(key, None)  # calls asked for in it and never run (hand-offs)
        except Exception:
            self._count_error()

    def _llm_end(self, key: str, parent: str, data: Any, error: str | None) -> None:
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
            error_type="ModelError" if error else None,
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
