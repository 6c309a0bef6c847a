"""The plain ``openai`` client: one ``llm`` event per ``create`` call.

:func:`instrument` wraps ``Completions.create`` and ``AsyncCompletions.create`` (chat), and
``Responses.create`` / ``AsyncResponses.create`` when the installed ``openai`` has them (and
their ``parse``, for structured outputs; the ``stream()`` helpers call ``create``), on their
classes: every client, made before or after, is recorded. ``import flightrec.auto``
calls it when the application imports ``openai``. Each call records one ``llm`` event in
the ``flightrec.step`` it was made in:

* ``model`` (as requested; ``response_model``: the version that answered), ``prompt_tokens``,
  ``completion_tokens``, ``latency_ms``; ``request`` (the last messages, or the Responses
  ``input``), ``response`` (``{"role": "assistant", "content": text, "tool_calls": [{"name",
  "args", "id"}]}``), ``finish_reason``, ``source: "openai"``, ``api`` (``chat.completions``
  or ``responses``), the reply's ``response_id`` and the server's ``request_id``;
* a failure (``APIStatusError`` such as a 429 or a 500, a timeout, a connection error):
  ``error``, ``error_type``, ``status`` and ``origin`` (:func:`flightrec.agent.classify_error`),
  and the exception is re-raised unchanged; a call cancelled while it waits (a task
  cancelled, ``KeyboardInterrupt``) is marked ``cancelled``, not failed;
* ``stream=True``: the returned stream is the library's own object, watched as it is read;
  the event is recorded when it ends (with ``stream: true`` and ``ttft_ms``, the time to the
  first text or tool-call delta), also when the reader stops early (``stream_closed``: a
  ``break`` then ``close()`` or the end of its ``with`` block, or the stream being dropped
  and collected) or the stream fails. Text is kept only up to the recorder's ``max_value``
  (``response_len`` then holds the full length);
* ``with_raw_response`` / ``with_streaming_response``: the body is the caller's to read, so
  the event has no reply (``raw_response: true``).

A call made while a higher-level integration records it (the OpenAI Agents SDK's models,
LangChain's ``ChatOpenAI``, an OpenTelemetry instrumentor's ``chat`` span) is left to that
integration: it is recorded once, as its LLM call. The wrapper never raises into the caller,
and returns what the library returned.

Importing this module does not import ``openai``; :func:`instrument` does.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from types import FrameType
from typing import Any

from .. import api
from ..context import current_span
from ._bridge import error_text, maybe_json, tail

__all__ = ["instrument", "instrumented", "uninstrument"]

_perf_ns = time.perf_counter_ns

MAX_TOOL_CALLS = 64
"""Most tool calls of one streamed reply that are assembled (a stream could name thousands)."""

_TARGETS = (
    # (module, class, api name)
    ("openai.resources.chat.completions", "Completions", "chat.completions"),
    ("openai.resources.chat.completions", "AsyncCompletions", "chat.completions"),
    ("openai.resources.responses", "Responses", "responses"),
    ("openai.resources.responses", "AsyncResponses", "responses"),
)

_METHODS = ("create", "parse")
"""What is wrapped on each class: ``parse`` (structured outputs) posts the request itself,
without going through ``create``; ``stream()`` goes through ``create(stream=True)``."""

_lock = threading.Lock()
_patched: dict[tuple[type, str], tuple[Any, Any, list[bool]]] = {}
"""(class, attribute) -> (the original function, its wrapper, the wrapper's on switch), for
every method :func:`instrument` wrapped."""


# ============================================================================ reading requests and replies


def _get(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``: the library's objects, or dicts in their place."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _request(api_name: str, kwargs: dict[str, Any]) -> Any:
    """The prompt as recorded: the last messages (a list, never a one-shot iterator, is read)."""
    value = kwargs.get("messages") if api_name == "chat.completions" else kwargs.get("input")
    if isinstance(value, (list, tuple)):
        return tail(value)
    return value if isinstance(value, str) else None


class _Call:
    """One ``create`` call in flight: what is known of it, and, for a stream, what was read."""

    __slots__ = (
        "api",
        "completion",
        "ctx",
        "done",
        "extra",
        "finish",
        "kept",
        "limit",
        "model",
        "parts",
        "prompt",
        "rec",
        "request",
        "request_id",
        "resp_model",
        "response_id",
        "t0",
        "text_len",
        "tools",
        "ttft_ns",
    )

    def __init__(self, rec: Any, api_name: str, kwargs: dict[str, Any]) -> None:
        self.rec = rec
        self.api = api_name
        self.ctx = current_span.get()
        """The step the call was made in: a stream may be read (and end) elsewhere."""
        model = kwargs.get("model")
        self.model = model if isinstance(model, str) else None
        self.request = _request(api_name, kwargs)
        self.extra: dict[str, Any] = {}
        if api_name == "responses" and isinstance(kwargs.get("instructions"), str):
            self.extra["instructions"] = kwargs["instructions"]
        self.done = False
        self.resp_model: str | None = None
        self.prompt: int | None = None
        self.completion: int | None = None
        self.finish: str | None = None
        self.request_id: str | None = None
        self.response_id: str | None = None
        self.parts: list[str] = []
        self.kept = 0
        self.text_len = 0
        self.limit = 4096
        self.tools: dict[Any, dict[str, Any]] = {}
        self.ttft_ns: int | None = None
        self.t0 = _perf_ns()

    # ------------------------------------------------------------------ the end
    def record(
        self,
        response: Any = None,
        error: BaseException | None = None,
        **extra: Any,
    ) -> None:
        """Record the call's ``llm`` event, once. Never raises."""
        if self.done:
            return
        self.done = True
        rec = self.rec
        try:
            data: dict[str, Any] = {
                "model": self.model or self.resp_model,
                "prompt_tokens": self.prompt,
                "completion_tokens": self.completion,
                "latency_ms": round((_perf_ns() - self.t0) / 1e6, 3),
                "source": "openai",
                "api": self.api,
            }
            if self.request is not None:
                data["request"] = self.request
            if response is not None:
                data["response"] = response
            if self.resp_model is not None and self.resp_model != self.model:
                data["response_model"] = self.resp_model  # the dated version that answered
            if self.finish is not None:
                data["finish_reason"] = self.finish
            if self.response_id is not None:
                data["response_id"] = self.response_id
            if self.request_id is not None:
                data["request_id"] = self.request_id
            if error is not None:
                data["error"] = error_text(error)
                data["error_type"] = type(error).__name__
                status = getattr(error, "status_code", None)
                if isinstance(status, int):
                    data["status"] = status
                rid = _str(getattr(error, "request_id", None))
                if rid is not None:
                    data["request_id"] = rid
                try:
                    from ..agent import classify_error

                    origin = classify_error(error)
                except Exception:
                    origin = None
                if origin is not None:
                    data["origin"] = origin
            data.update(self.extra)
            data.update(extra)
            token = current_span.set(self.ctx)
            try:
                rec.record("llm", data, False, error is not None)
            finally:
                current_span.reset(token)
        except Exception:
            rec.errors += 1

    def returned(self, result: Any) -> Any:
        """The call returned ``result``: record it, or watch it when it is a stream.

        Returns ``result`` itself, always.
        """
        try:
            if hasattr(result, "_iterator") and hasattr(result, "response"):
                return self._watch(result)
            self.request_id = _str(getattr(result, "_request_id", None))
            self.response_id = _str(_get(result, "id"))
            if self.api == "chat.completions" and hasattr(result, "choices"):
                self.record(self._chat_reply(result))
            elif self.api == "responses" and hasattr(result, "output"):
                self.record(self._responses_reply(result))
            else:  # with_raw_response / with_streaming_response: the body is the caller's to read
                self.record(raw_response=True)
        except Exception:
            self.rec.errors += 1
        return result

    def failed(self, exc: BaseException, response: Any = None) -> None:
        """The call (or its stream) raised ``exc``, which the caller re-raises.

        A task cancelled while it waited (``asyncio.wait_for``, a ``TaskGroup`` failing),
        a ``KeyboardInterrupt``: the call did not fail, it was stopped; recorded as
        ``cancelled`` with the exception's name, not as a failed call.
        """
        if isinstance(exc, Exception):
            self.record(response, exc)
        else:
            self.record(response, cancelled=type(exc).__name__)

    # ------------------------------------------------------------------ whole replies
    def _usage(self, usage: Any) -> None:
        if usage is None:
            return
        prompt = _int(_get(usage, "prompt_tokens"))
        completion = _int(_get(usage, "completion_tokens"))
        self.prompt = prompt if prompt is not None else _int(_get(usage, "input_tokens"))
        self.completion = completion if completion is not None else _int(_get(usage, "output_tokens"))

    def _chat_reply(self, result: Any) -> dict[str, Any] | None:
        self.resp_model = _str(_get(result, "model"))
        self._usage(_get(result, "usage"))
        choices = _get(result, "choices") or ()
        if not choices:
            return None
        choice = choices[0]
        finish = _get(choice, "finish_reason")
        self.finish = finish if isinstance(finish, str) else None
        message = _get(choice, "message")
        reply: dict[str, Any] = {"role": "assistant", "content": _get(message, "content")}
        refusal = _get(message, "refusal")
        if refusal:
            reply["refusal"] = refusal
        calls = []
        for call in (_get(message, "tool_calls") or ())[:MAX_TOOL_CALLS]:
            fn = _get(call, "function")
            if fn is not None:
                calls.append(
                    {"name": _get(fn, "name"), "args": maybe_json(_get(fn, "arguments")), "id": _get(call, "id")}
                )
        if calls:
            reply["tool_calls"] = calls
        if len(choices) > 1:
            self.extra["choices"] = len(choices)
        return reply

    def _responses_reply(self, result: Any) -> dict[str, Any]:
        self.resp_model = _str(_get(result, "model")) or self.resp_model
        self.response_id = _str(_get(result, "id")) or self.response_id
        self._usage(_get(result, "usage"))
        status = _get(result, "status")
        reason = _get(_get(result, "incomplete_details"), "reason")
        finish = reason if isinstance(reason, str) else status
        self.finish = finish if isinstance(finish, str) else None
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for item in _get(result, "output") or ():
            kind = _get(item, "type")
            if kind == "message":
                for part in _get(item, "content") or ():
                    text = _get(part, "text")
                    if _get(part, "type") == "output_text" and isinstance(text, str):
                        texts.append(text)
            elif kind == "function_call" and len(calls) < MAX_TOOL_CALLS:
                calls.append(
                    {
                        "name": _get(item, "name"),
                        "args": maybe_json(_get(item, "arguments")),
                        "id": _get(item, "call_id"),
                    }
                )
        reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
        if calls:
            reply["tool_calls"] = calls
        return reply

    # ------------------------------------------------------------------ streams
    def _watch(self, stream: Any) -> Any:
        """Read ``stream`` as its consumer does: its iterator and its ``close`` are wrapped on the
        object itself, so the caller still holds the library's own ``Stream`` / ``AsyncStream``."""
        rec = self.rec
        self.limit = rec.config.max_value
        self.extra["stream"] = True
        try:
            self.request_id = _str(stream.response.headers.get("x-request-id"))
        except Exception:
            pass
        inner = stream._iterator
        close = stream.close
        if hasattr(inner, "__anext__"):
            stream._iterator = self._aread(inner)

            async def aclose() -> None:
                self.record(self._streamed(), stream_closed=True)
                await close()

            hook: Any = aclose
        else:
            stream._iterator = self._read(inner)

            def sclose() -> None:
                self.record(self._streamed(), stream_closed=True)
                close()

            hook = sclose
        if "close" not in vars(stream):  # (a close already replaced on the object is left alone)
            stream.close = hook
        return stream

    def _read(self, inner: Iterator[Any]) -> Iterator[Any]:
        try:
            for chunk in inner:
                self._chunk(chunk)
                yield chunk
        except GeneratorExit:  # the reader stopped (close(), or the stream was dropped)
            self.record(self._streamed(), stream_closed=True)
            raise
        except BaseException as exc:
            self.failed(exc, self._streamed())
            raise
        self.record(self._streamed())

    async def _aread(self, inner: AsyncIterator[Any]) -> AsyncIterator[Any]:
        try:
            async for chunk in inner:
                self._chunk(chunk)
                yield chunk
        except GeneratorExit:
            self.record(self._streamed(), stream_closed=True)
            raise
        except BaseException as exc:
            self.failed(exc, self._streamed())
            raise
        self.record(self._streamed())

    def _text(self, delta: str) -> None:
        """Keep streamed text up to one character past the recorder's limit (the recorder cuts it
        with its marker); beyond that, only count it."""
        self.text_len += len(delta)
        room = self.limit + 1 - self.kept
        if room > 0:
            piece = delta[:room]
            self.parts.append(piece)
            self.kept += len(piece)

    def _first(self) -> None:
        if self.ttft_ns is None:
            self.ttft_ns = _perf_ns() - self.t0

    def _tool_delta(self, key: Any, name: Any = None, args: Any = None, call_id: Any = None) -> None:
        call = self.tools.get(key)
        if call is None:
            if len(self.tools) >= MAX_TOOL_CALLS:
                return
            call = self.tools[key] = {"name": None, "args": "", "id": None}
        if isinstance(name, str) and name:
            call["name"] = name
        if isinstance(call_id, str) and call_id:
            call["id"] = call_id
        if isinstance(args, str) and args and len(call["args"]) <= self.limit:
            call["args"] += args[: self.limit + 1 - len(call["args"])]

    def _chunk(self, chunk: Any) -> None:
        """Take what one streamed chunk (chat) or event (Responses) says. Never raises."""
        try:
            if self.api == "chat.completions":
                self._chat_chunk(chunk)
            else:
                self._responses_event(chunk)
        except Exception:
            self.rec.errors += 1

    def _chat_chunk(self, chunk: Any) -> None:
        if self.resp_model is None:
            self.resp_model = _str(_get(chunk, "model"))
            self.response_id = _str(_get(chunk, "id"))
        usage = _get(chunk, "usage")
        if usage is not None:
            self._usage(usage)
        for choice in _get(chunk, "choices") or ():
            if _get(choice, "index") not in (0, None):
                continue
            delta = _get(choice, "delta")
            content = _get(delta, "content")
            if isinstance(content, str) and content:
                self._first()
                self._text(content)
            for call in _get(delta, "tool_calls") or ():
                self._first()
                fn = _get(call, "function")
                self._tool_delta(_get(call, "index"), _get(fn, "name"), _get(fn, "arguments"), _get(call, "id"))
            finish = _get(choice, "finish_reason")
            if isinstance(finish, str):
                self.finish = finish

    def _responses_event(self, event: Any) -> None:
        kind = _get(event, "type")
        if kind == "response.output_text.delta":
            delta = _get(event, "delta")
            if isinstance(delta, str) and delta:
                self._first()
                self._text(delta)
        elif kind == "response.output_item.added":
            item = _get(event, "item")
            if _get(item, "type") == "function_call":
                self._first()
                key = _get(event, "output_index")
                self._tool_delta(key, _get(item, "name"), _get(item, "arguments"), _get(item, "call_id"))
        elif kind == "response.function_call_arguments.delta":
            self._first()
            self._tool_delta(_get(event, "output_index"), args=_get(event, "delta"))
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            response = _get(event, "response")
            if response is not None:
                final = self._responses_reply(response)
                # the whole reply is there: it replaces what was assembled from deltas
                self.parts = [final["content"]] if isinstance(final.get("content"), str) else []
                self.kept = self.text_len = len(self.parts[0]) if self.parts else 0
                self.tools = {i: c for i, c in enumerate(final.get("tool_calls") or ())}
                error = _get(response, "error")
                if error is not None:
                    self.extra["response_error"] = _get(error, "message") or str(error)
        elif kind in ("response.created", "response.in_progress"):
            response = _get(event, "response")
            self.resp_model = _str(_get(response, "model")) or self.resp_model
            self.response_id = _str(_get(response, "id")) or self.response_id

    def _streamed(self) -> dict[str, Any] | None:
        """The reply assembled from what was read of the stream, if anything was. Never raises."""
        try:
            return self._assembled()
        except Exception:
            self.rec.errors += 1
            return None

    def _assembled(self) -> dict[str, Any] | None:
        if self.ttft_ns is not None:
            self.extra["ttft_ms"] = round(self.ttft_ns / 1e6, 3)
        if self.text_len > self.kept:
            self.extra["response_len"] = self.text_len
        if not self.parts and not self.tools:
            return None
        reply: dict[str, Any] = {"role": "assistant", "content": "".join(self.parts) if self.parts else None}
        if self.tools:
            reply["tool_calls"] = [
                {"name": c["name"], "args": maybe_json(c["args"]), "id": c["id"]} for c in self.tools.values()
            ]
        return reply


# ============================================================================ calls a higher level records


def _owner_of(module: Any, key: Any) -> Any:
    """The instance of ``module``'s integration that recorded the span ``key`` start, if any."""
    owners = getattr(getattr(module, "_owners", None), "_owners", None)
    return owners.get(key) if isinstance(owners, dict) else None


def _llm_open(module: Any, key: Any) -> bool:
    owner = _owner_of(module, key)
    bridge = getattr(owner, "bridge", None)
    return bridge is not None and bridge.kind_of(key) == "llm"


def _agents_recording(module: Any) -> bool:
    """The OpenAI Agents SDK's current span is a generation/response span flightrec records."""
    tracing = sys.modules.get("agents.tracing")
    span = tracing.get_current_span() if tracing is not None else None
    return span is not None and _llm_open(module, getattr(span, "span_id", None))


def _otel_recording(module: Any) -> bool:
    """The current OpenTelemetry span is one flightrec records as an LLM call."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return False
    ctx = trace.get_current_span().get_span_context()
    return bool(ctx.is_valid) and _llm_open(module, ctx.span_id)


_LC_DEPTH = 16
"""Frames walked up from ``create`` to LangChain's ``_generate(..., run_manager)``."""


def _langchain_recording(module: Any) -> bool:
    """A LangChain chat model flightrec records as an LLM call is the caller.

    LangChain keeps no context variable of the run in progress: the model's ``_generate`` /
    ``_agenerate`` (ChatOpenAI's, which calls this client) has it as its ``run_manager``
    argument, a few frames up. Only frames whose code has a ``run_manager`` variable are read.
    """
    owners = getattr(getattr(module, "_owners", None), "_owners", None)
    if not owners:
        return False
    frame: FrameType | None = sys._getframe(3)
    for _ in range(_LC_DEPTH):
        if frame is None:
            return False
        if "run_manager" in frame.f_code.co_varnames:
            run_id = getattr(frame.f_locals.get("run_manager"), "run_id", None)
            if run_id is not None:
                return _llm_open(module, run_id)
        frame = frame.f_back
    return False


_HIGHER: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("flightrec.integrations.openai_agents", _agents_recording),
    ("flightrec.integrations.otel", _otel_recording),
    ("flightrec.integrations.langchain", _langchain_recording),
)


def _recorded_above() -> bool:
    """Whether an integration above this client records the call being made (only the
    integrations in use, i.e. imported, are asked)."""
    modules = sys.modules
    for name, check in _HIGHER:
        module = modules.get(name)
        if module is not None:
            try:
                if check(module):
                    return True
            except Exception:
                pass
    return False


# ============================================================================ wrappers


def _begin(api_name: str, kwargs: dict[str, Any]) -> _Call | None:
    """A :class:`_Call` for this call, or None: not recording, or recorded above. Never raises."""
    rec = api._recorder
    if rec is None:
        return None
    try:
        if _recorded_above():
            return None
        return _Call(rec, api_name, kwargs)
    except Exception:
        rec.errors += 1
        return None


def _wrap_sync(original: Callable[..., Any], api_name: str, on: list[bool]) -> Callable[..., Any]:
    @functools.wraps(original)
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = _begin(api_name, kwargs) if on[0] else None
        if call is None:
            return original(self, *args, **kwargs)
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            call.failed(exc)
            raise
        return call.returned(result)

    create.__flightrec_original__ = original  # type: ignore[attr-defined]
    return create


def _wrap_async(original: Callable[..., Any], api_name: str, on: list[bool]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = _begin(api_name, kwargs) if on[0] else None
        if call is None:
            return await original(self, *args, **kwargs)
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            call.failed(exc)
            raise
        return call.returned(result)

    create.__flightrec_original__ = original  # type: ignore[attr-defined]
    return create


def instrument() -> list[str]:
    """Record the ``openai`` client's calls (idempotent). Imports ``openai``.

    Returns:
        The methods wrapped, as ``"Class.create"`` and ``"Class.parse"`` (those of this
        version of ``openai``).
    """
    import importlib

    with _lock:
        for module_name, class_name, api_name in _TARGETS:
            try:
                cls = getattr(importlib.import_module(module_name), class_name)
            except (ImportError, AttributeError):
                continue  # an older openai without the Responses API
            wrap = _wrap_async if class_name.startswith("Async") else _wrap_sync
            for attr in _METHODS:
                key = (cls, attr)
                original = cls.__dict__.get(attr)
                if key in _patched or original is None:
                    continue
                on = [True]
                wrapper = wrap(original, api_name, on)
                setattr(cls, attr, wrapper)
                _patched[key] = (original, wrapper, on)
        return instrumented()


def uninstrument() -> None:
    """Put back the ``openai`` methods :func:`instrument` wrapped (idempotent).

    A method another library wrapped in turn (Sentry's, Logfire's OpenAI integrations patch
    the same classes) is left as that library made it: flightrec's wrapper inside it only
    stops recording.
    """
    with _lock:
        for (cls, attr), (original, wrapper, on) in list(_patched.items()):
            on[0] = False
            if cls.__dict__.get(attr) is wrapper:
                setattr(cls, attr, original)
            del _patched[(cls, attr)]


def instrumented() -> list[str]:
    """The methods wrapped now, as ``"Class.create"``."""
    return sorted(f"{cls.__name__}.{attr}" for cls, attr in _patched)


def enable() -> list[str]:
    """What ``import flightrec.auto`` calls: :func:`instrument`."""
    return instrument()
