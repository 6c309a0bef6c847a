"""The agent vocabulary: steps, tool calls and LLM calls.

Every function here is a near-free no-op when no recorder runs (one global read), and
none of them ever raises into the agent because of the recorder: a failure inside the
recorder is counted in ``Recorder.errors`` and the agent's own call proceeds untouched.

Events (the data contract the reader and the TUI rely on):

* ``step_start`` ``{name, attrs}`` and ``step_end`` ``{name, duration_ms, error?, error_type?}``;
  the step's id is the events' ``span``, its parent step the events' ``parent``.
* ``tool_call`` ``{tool, call_id, args, attempt, retry_of?}`` and ``tool_result``
  ``{tool, call_id, result?, result_len?, error?, error_type?, origin?, latency_ms}``.
* ``llm`` ``{model, prompt_tokens, completion_tokens, latency_ms, request?, response?}``.

Failure origins of a tool call (``tool_result.origin``):

* ``invocation``: the call itself was malformed (``TypeError``, ``ValueError``, a pydantic
  ``ValidationError``, HTTP 400/422);
* ``transient``: may succeed on retry (timeouts, connection errors, network ``OSError``\\ s,
  HTTP 408/429/5xx, exception classes named like ``*Timeout*``, ``*RateLimit*``);
* ``response``: the tool ran but answered with an error: raise :class:`ToolResponseError`
  from the tool, or call :func:`tool_error` inside it and return the payload as usual
  (other HTTP 4xx and ``JSONDecodeError`` count too);
* ``reasoning`` / ``interpretation``: the agent's own mistakes, which only the agent can
  mark: ``flightrec.record("error", origin="reasoning", message=...)``.

An exception of any other kind is recorded without an origin.
"""

from __future__ import annotations

import contextvars
import errno
import functools
import inspect
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar, overload

from . import api
from .context import current_span
from .fastpath import load_native

__all__ = [
    "ToolResponseError",
    "classify_error",
    "last_tool_call",
    "llm",
    "step",
    "tool",
    "tool_error",
]

F = TypeVar("F", bound=Callable[..., Any])

_span_ids = itertools.count(1)
_call_ids = itertools.count(1)
_perf_ns = time.perf_counter_ns


def _ms_since(t0: int) -> float:
    """Milliseconds since ``t0`` (a ``perf_counter_ns``), to the microsecond.

    Integer rounding (half up) rather than ``round(x, 3)``, which formats the float to round
    it and costs several times more; the C fast path computes the same.
    """
    return ((_perf_ns() - t0 + 500) // 1000) / 1000


RESULT_ITEMS = 100
"""Most list items or dict entries of a tool result that are stored."""


def _message(exc: BaseException, limit: int = 2000) -> str:
    """The exception's text, or its type's name when it has none (a CancelledError, a bare
    KeyboardInterrupt: an empty error would read as no error)."""
    try:
        text = str(exc) or type(exc).__name__
    except Exception:
        text = f"<unprintable {type(exc).__name__}>"
    return text if len(text) <= limit else text[:limit] + "…"


# ============================================================================ steps


class step:
    """A named step of the agent's work; steps nest into a tree.

    Use it as a context manager (``with`` or ``async with``) or as a decorator. The
    current step is held in a context variable, so steps nest across ``await`` and
    asyncio tasks (a task started inside a step is a child of it) and are per thread.
    An exception leaving the step is recorded on its ``step_end`` and re-raised unchanged.

    Args:
        name: what the step does, e.g. ``"plan"``.
        **attrs: extra fields stored on the ``step_start`` event.
    """

    __slots__ = ("_id", "_rec", "_t0", "_token", "attrs", "name")

    def __init__(self, name: str, /, **attrs: Any) -> None:
        """Describe the step; nothing is recorded until it is entered."""
        self.name = name
        self.attrs = attrs
        self._rec: Any = None
        self._token: contextvars.Token[tuple[int, int | None] | None] | None = None
        self._id: int | None = None
        self._t0 = 0

    @property
    def id(self) -> int | None:
        """The step's span id once entered (None when not recording)."""
        return self._id

    def _enter_python(self) -> step:
        rec = api._recorder
        if rec is None:
            return self
        try:
            outer = current_span.get()
            sid = next(_span_ids)
            self._token = current_span.set((sid, outer[0] if outer is not None else None))
            self._id = sid
            _open_step(sid)
            self._rec = rec
            self._t0 = _perf_ns()
            rec.record("step_start", {"name": self.name, "attrs": self.attrs})
        except Exception:
            rec.errors += 1
        return self

    def _exit_python(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        rec = self._rec
        if rec is None:
            return
        self._rec = None
        _open_steps.discard(self._id)  # type: ignore[arg-type]
        current = current_span.get()
        # Out of order: the current span is a step entered after this one and still open. (A
        # current span of a step that has ended, left by an exit in another context, is not.)
        in_order = current is None or current[0] == self._id or current[0] not in _open_steps
        own = None
        try:
            if not in_order and self._id is not None:
                # Left while a step entered after it is still open (two generators stepping in
                # turn): its end carries its own span, not that step's.
                outer = _span_before(self._token)
                own = current_span.set((self._id, outer[0] if outer is not None else None))
            data: dict[str, Any] = {"name": self.name, "duration_ms": _ms_since(self._t0)}
            if exc is not None and not isinstance(exc, GeneratorExit):  # (a generator closed early)
                data["error"] = _message(exc)
                data["error_type"] = type(exc).__name__
            if isinstance(exc, Exception):
                rec.record("step_end", data, False, True)
            else:  # a duration: never the same payload twice, so no payload cache
                rec.record_fresh("step_end", data)
        except Exception:
            rec.errors += 1
        finally:
            if own is not None:
                current_span.reset(own)
            token, self._token = self._token, None
            if token is not None and in_order:
                try:
                    current_span.reset(token)
                except ValueError:  # exited in another context than entered: restore by value
                    _restore_span(token)
                _skip_exited()
            elif token is not None and self._id is not None:
                # The current span is a step still open: left as it is. When it ends, what it
                # restores (this step) stands for the span this one was entered in.
                if len(_exited_early) >= _EXITED_EARLY_MAX:
                    del _exited_early[next(iter(_exited_early))]
                _exited_early[self._id] = _span_before(token)

    # Replaced by their C twins (flightrec/_fastpath.c, step_enter/step_exit) when those are
    # built: see the end of this module.
    __enter__ = _enter_python
    __exit__ = _exit_python

    async def __aenter__(self) -> step:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, fn: F) -> F:
        """Use the step as a decorator: every call of ``fn`` runs in a fresh step (for a
        generator function, every iteration of the generator it returns, start to end)."""
        name, attrs = self.name, self.attrs
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gstep(*args: Any, **kwargs: Any) -> Any:
                with step(name, **attrs):
                    return (yield from fn(*args, **kwargs))  # (send, throw and close go through)

            return gstep  # type: ignore[return-value]
        if inspect.isasyncgenfunction(fn):

            @functools.wraps(fn)
            async def agstep(*args: Any, **kwargs: Any) -> Any:
                with step(name, **attrs):
                    async for item in fn(*args, **kwargs):
                        yield item

            return agstep  # type: ignore[return-value]
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def astep(*args: Any, **kwargs: Any) -> Any:
                with step(name, **attrs):
                    return await fn(*args, **kwargs)

            return astep  # type: ignore[return-value]

        @functools.wraps(fn)
        def sstep(*args: Any, **kwargs: Any) -> Any:
            with step(name, **attrs):
                return fn(*args, **kwargs)

        return sstep  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"step({self.name!r}, id={self._id})"


# ============================================================================ tool failures


class ToolResponseError(Exception):
    """Raise from a tool when the service answered with an error (origin ``response``).

    Args:
        message: what went wrong.
        payload: the error payload the service returned, if any (recorded, redacted).
    """

    def __init__(self, message: str, payload: Any = None) -> None:
        super().__init__(message)
        self.payload = payload


_NETWORK_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNRESET",
        "ECONNREFUSED",
        "ECONNABORTED",
        "ETIMEDOUT",
        "EHOSTUNREACH",
        "ENETUNREACH",
        "ENETDOWN",
        "ENETRESET",
        "EPIPE",
        "EHOSTDOWN",
        "EAGAIN",
        "ENOTCONN",
    )
    if hasattr(errno, name)
)
_TRANSIENT_NAMES = (
    "timeout",
    "ratelimit",
    "rate_limit",
    "throttl",
    "toomanyrequests",
    "unavailable",
    "connectionerror",
    "temporar",
)


def _status(exc: BaseException) -> int | None:
    for obj in (exc, getattr(exc, "response", None)):
        if obj is None:
            continue
        for attr in ("status_code", "status"):
            value = getattr(obj, attr, None)
            if isinstance(value, int) and not isinstance(value, bool) and 100 <= value < 600:
                return value
    return None


def classify_error(exc: BaseException) -> str | None:
    """The origin of a tool failure: invocation, transient or response (None: unknown).

    See the module docstring for the rules.
    """
    if isinstance(exc, ToolResponseError):
        return "response"
    status = _status(exc)
    if status is not None:
        if status in (408, 429) or status >= 500:
            return "transient"
        if status in (400, 422):
            return "invocation"
        if status >= 400:
            return "response"
    names = [c.__name__.lower() for c in type(exc).__mro__]
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return "transient"
    if isinstance(exc, OSError) and (exc.errno in _NETWORK_ERRNOS or "gaierror" in names):
        return "transient"
    if any(key in n for n in names for key in _TRANSIENT_NAMES):
        return "transient"
    if "jsondecodeerror" in names:
        return "response"
    if "validationerror" in names or isinstance(exc, (TypeError, ValueError)):
        return "invocation"
    return None


# ============================================================================ tools


class _Call:
    """One tool call in flight."""

    __slots__ = ("args", "attempt", "call_id", "key", "marked", "step", "t0", "tool")

    def __init__(
        self, tool: str, call_id: int, key: tuple[Any, ...] | None, attempt: int, step: int | None, args: Any
    ) -> None:
        self.tool = tool
        self.call_id = call_id
        self.key = key
        self.attempt = attempt
        self.step = step
        self.args = args
        self.marked: dict[str, Any] | None = None
        self.t0 = _perf_ns()

    def retry_key(self) -> tuple[Any, ...] | None:
        """(step, tool, args fingerprint): what a retry of this call would repeat."""
        if self.key is None:
            fp = _fingerprint(self.args)
            self.key = (self.step, self.tool, fp) if fp is not None else None
        return self.key


_current_call: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("flightrec_tool_call", default=None)
_last_call: contextvars.ContextVar[tuple[int, str] | None] = contextvars.ContextVar(
    "flightrec_last_tool_call", default=None
)
_failed: OrderedDict[tuple[Any, ...], tuple[int, int]] = OrderedDict()
"""(step, tool, args fingerprint) -> (call_id, attempt) of the latest failed call."""
_failed_lock = threading.Lock()
_FAILED_MAX = 1024
_encode: Any = None
_hash: Any = None


def _fingerprint(args: Any) -> int | None:
    global _encode, _hash
    try:
        if _encode is None or _hash is None:  # imported on first use: `import flightrec` stays light
            import msgspec
            import xxhash

            from .encode import _enc_hook

            _hash = xxhash.xxh3_64_intdigest
            _encode = msgspec.msgpack.Encoder(enc_hook=_enc_hook).encode
        return _hash(_encode(args))  # type: ignore[no-any-return]
    except Exception:
        return None


_PLAIN_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class _Binder:
    """Names a tool's call arguments by its parameters, as ``Signature.bind`` would.

    Only the arguments given (no defaults applied), without ``self``/``cls``. Made once
    per decorated function: a plain signature (no ``*args``, ``**kwargs`` or
    positional-only parameters) binds by zipping names, which costs a fraction of
    ``bind()`` (~10 us) and gives the same result; anything else goes to ``bind()``, and
    arguments it refuses are stored as ``args``/``kwargs``.
    """

    __slots__ = ("drop", "name_set", "names", "sig")

    def __init__(self, fn: Callable[..., Any]) -> None:
        try:
            self.sig: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):
            self.sig = None
        params = self.sig.parameters if self.sig is not None else None
        plain = params is not None and all(p.kind in _PLAIN_KINDS for p in params.values())
        self.names: tuple[str, ...] | None = tuple(params) if plain and params is not None else None
        self.name_set = frozenset(self.names or ())
        self.drop = bool(self.name_set & {"self", "cls"})

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        names = self.names
        if names is not None and len(args) <= len(names) and self.name_set.issuperset(kwargs):
            # Fewer args than names: the rest are keywords or defaults.
            bound: dict[str, Any] = dict(zip(names, args, strict=False)) if args else {}
            if not bound or bound.keys().isdisjoint(kwargs):
                bound.update(kwargs)
                if self.drop:
                    bound.pop("self", None)
                    bound.pop("cls", None)
                return bound
        if self.sig is not None:
            try:
                full = self.sig.bind(*args, **kwargs)
            except TypeError:
                pass
            else:
                return {k: v for k, v in full.arguments.items() if k not in ("self", "cls")}
        out: dict[str, Any] = {}
        if args:
            out["args"] = list(args)
        if kwargs:
            out["kwargs"] = kwargs
        return out


def _begin(
    rec: Any, name: str, bind: _Binder, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[_Call | None, contextvars.Token[_Call | None] | None]:
    try:
        bound = bind(args, kwargs)
        call_id = next(_call_ids)
        ctx = current_span.get()
        call = _Call(name, call_id, None, 1, ctx[0] if ctx is not None else None, bound)
        retry_of = None
        # The arguments' fingerprint (an encode and a hash) is needed only to link a retry to
        # a failed call: while nothing has failed (no lock needed to see that), it is taken
        # later, and only if this call fails.
        if _failed:
            key = call.retry_key()
            if key is not None:
                with _failed_lock:
                    prev = _failed.get(key)
                if prev is not None:
                    retry_of, call.attempt = prev[0], prev[1] + 1
        attempt = call.attempt
        data: dict[str, Any] = {"tool": name, "call_id": call_id, "args": bound, "attempt": attempt}
        if retry_of is not None:
            data["retry_of"] = retry_of
        rec.record_fresh("tool_call", data)  # (a call id: never the same payload twice)
        call.t0 = _perf_ns()
        return call, _current_call.set(call)
    except Exception:
        rec.errors += 1
        return None, None


def _bounded_result(result: Any, limit: int) -> tuple[Any, int | None]:
    """The result as stored, and its full length when it had to be cut."""
    if isinstance(result, (str, bytes, bytearray)):
        if len(result) > limit:
            return result[:limit], len(result)
        return result, None
    if isinstance(result, (list, tuple)) and len(result) > RESULT_ITEMS:
        return list(result[:RESULT_ITEMS]), len(result)
    if isinstance(result, dict) and len(result) > RESULT_ITEMS:
        return dict(itertools.islice(result.items(), RESULT_ITEMS)), len(result)
    return result, None


def _end(
    rec: Any, call: _Call | None, token: contextvars.Token[_Call | None] | None, result: Any, exc: BaseException | None
) -> None:
    if call is None:
        return
    try:
        if token is not None:
            try:
                _current_call.reset(token)
            except ValueError:
                _current_call.set(None)
        latency = _ms_since(call.t0)
        data: dict[str, Any] = {"tool": call.tool, "call_id": call.call_id, "latency_ms": latency}
        failed = True
        if exc is not None:
            data["error"] = _message(exc)
            data["error_type"] = type(exc).__name__
            origin = classify_error(exc)
            if origin is not None:
                data["origin"] = origin
            payload = getattr(exc, "payload", None) if isinstance(exc, ToolResponseError) else None
            if payload is not None:
                data["result"] = payload
        else:
            stored, full = _bounded_result(result, rec.config.max_value)
            data["result"] = stored
            if full is not None:
                data["result_len"] = full
            if call.marked is not None:
                data.update(call.marked)
            else:
                failed = False
        key = call.retry_key() if failed or _failed else None
        if key is not None:
            with _failed_lock:
                if failed:
                    _failed[key] = (call.call_id, call.attempt)
                    _failed.move_to_end(key)
                    if len(_failed) > _FAILED_MAX:
                        _failed.popitem(last=False)
                else:
                    _failed.pop(key, None)
        if not failed:
            _last_call.set((call.call_id, call.tool))
        if failed and (isinstance(exc, Exception) or exc is None):  # (exc None: marked by tool_error())
            rec.record("tool_result", data, False, True)
        else:
            rec.record_fresh("tool_result", data)
    except Exception:
        rec.errors += 1


@overload
def tool(fn: F, /) -> F: ...
@overload
def tool(fn: str | None = None, /, *, name: str | None = None) -> Callable[[F], F]: ...


def tool(fn: Any = None, /, *, name: str | None = None) -> Any:
    """Record every call of the decorated function as a tool call.

    Works on plain and ``async`` functions: ``@flightrec.tool``, ``@flightrec.tool("search")``
    or ``@flightrec.tool(name="search")``. Each call records a ``tool_call`` (arguments
    bound to parameter names) and a ``tool_result`` (result, cut to ``max_value``
    characters or 100 items with the full length in ``result_len``; or the exception, its
    type and its origin; and the latency). A call repeating a failed call with the same
    arguments in the same step is linked to it (``retry_of``, ``attempt``). Exceptions
    are re-raised unchanged.
    """
    if fn is None or isinstance(fn, str):
        label = name if name is not None else fn

        def deco(f: F) -> F:
            return _wrap(f, label)

        return deco
    return _wrap(fn, name)


def _wrap(fn: F, name: str | None) -> F:
    if isinstance(fn, (classmethod, staticmethod)):
        # `@flightrec.tool` above `@classmethod`/`@staticmethod`: wrap the function, keep the descriptor
        return type(fn)(_wrap(fn.__func__, name))  # type: ignore[return-value]
    inner = fn.func if isinstance(fn, functools.partial) else fn
    tname = name or getattr(fn, "__name__", None) or getattr(inner, "__name__", None) or "tool"
    bind = _Binder(fn)

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def atool(*args: Any, **kwargs: Any) -> Any:
            rec = api._recorder
            if rec is None:
                return await fn(*args, **kwargs)
            call, token = _begin(rec, tname, bind, args, kwargs)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                _end(rec, call, token, None, exc)
                raise
            _end(rec, call, token, result, None)
            return result

        return atool  # type: ignore[return-value]

    def slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        rec = api._recorder
        if rec is None:
            return fn(*args, **kwargs)
        call, token = _begin(rec, tname, bind, args, kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            _end(rec, call, token, None, exc)
            raise
        _end(rec, call, token, result, None)
        return result

    native = _native_tool(fn, tname, bind, slow)
    if native is not None:
        # The common case in C (flightrec/_fastpath.c, Tool): the same events, a fraction
        # of the cost; it hands every other case to `slow`, or to _end once begun.
        @functools.wraps(fn)
        def ctool(*args: Any, **kwargs: Any) -> Any:
            return native(args, kwargs)

        return ctool  # type: ignore[return-value]

    @functools.wraps(fn)
    def stool(*args: Any, **kwargs: Any) -> Any:
        return slow(args, kwargs)

    return stool  # type: ignore[return-value]


def _native_tool(fn: Callable[..., Any], tname: str, bind: _Binder, slow: Callable[..., Any]) -> Any:
    """The C twin of a tool's call path, or None (pure Python, or a signature it does not bind)."""
    if _fastpath is None or bind.names is None or bind.drop:
        return None
    try:
        return _fastpath.Tool(fn, tname, bind.names, bind.name_set, slow)
    except Exception:
        return None


_fastpath: Any = load_native("_fastpath")
if _fastpath is not None:
    try:
        _fastpath.configure_tools(_failed, _call_ids, _Call, _current_call, _last_call, current_span, _perf_ns, _end)
    except Exception:  # an older build without Tool: the Python path
        _fastpath = None


def _restore_span(token: contextvars.Token[tuple[int, int | None] | None]) -> None:
    """Leave a step exited in another context than it was entered: restore the span by value."""
    current_span.set(_span_before(token))


def _span_before(token: contextvars.Token[tuple[int, int | None] | None] | None) -> tuple[int, int | None] | None:
    """The span that was current when the step holding ``token`` was entered."""
    if token is None or token.old_value is contextvars.Token.MISSING:
        return None
    return token.old_value


_open_steps: set[int] = set()
"""The ids of the steps entered and not yet left (to tell an exit out of order)."""
_OPEN_STEPS_MAX = 1 << 16


def _open_step(sid: int) -> None:
    if len(_open_steps) >= _OPEN_STEPS_MAX:  # steps entered and never left (abandoned by hand)
        _open_steps.clear()
    _open_steps.add(sid)


_exited_early: dict[int, tuple[int, int | None] | None] = {}
"""Steps that ended while a step entered after them was still current (their exits out of
order): step id -> the span current when it was entered, which stands in for it when that
later step ends and restores it. Bounded (oldest first out); empty in well-nested code."""
_EXITED_EARLY_MAX = 4096


def _skip_exited() -> None:
    """After a step restored the span it was entered in: if that step has ended already (see
    _exited_early), go on to the span it was entered in, and so on."""
    if not _exited_early:
        return
    span = current_span.get()
    skipped = False
    for _ in range(256):  # (a chain of out-of-order exits; bounded against a cycle)
        if span is None or span[0] not in _exited_early:
            break
        span = _exited_early[span[0]]
        skipped = True
    if skipped:
        current_span.set(span)


if _fastpath is not None:
    try:
        _fastpath.configure_steps(
            _span_ids, step._enter_python, step._exit_python, _restore_span, _exited_early, _skip_exited, _open_steps
        )
        step.__enter__ = _fastpath.as_method(_fastpath.step_enter)  # type: ignore[method-assign]
        step.__exit__ = _fastpath.as_method(_fastpath.step_exit)  # type: ignore[method-assign]
    except Exception:  # an older build without them: the Python methods stay
        pass


def tool_error(message: str, origin: str = "response", **data: Any) -> None:
    """Mark the tool call in progress as failed although the tool returned normally.

    Call it inside a ``@flightrec.tool`` function whose service answered with an error
    payload: the call's ``tool_result`` then carries ``error=message`` and ``origin``
    beside the returned result. Outside a tool call it records an ``error`` event.

    Args:
        message: what the error was.
        origin: ``"response"`` (default), or another origin from the module docstring.
        **data: extra fields for the result (or the error event).
    """
    rec = api._recorder
    if rec is None:
        return
    try:
        call = _current_call.get()
        if call is not None:
            call.marked = {
                "error": message,
                "error_type": data.pop("error_type", "ToolError"),
                "origin": origin,
                **data,
            }
        else:
            rec.record("error", {"message": message, "origin": origin, **data}, False, True)
    except Exception:
        rec.errors += 1


def last_tool_call() -> tuple[int, str] | None:
    """``(call_id, tool)`` of the latest tool call that succeeded in this context, if any."""
    return _last_call.get()


# ============================================================================ llm


def llm(
    model: str | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    latency_ms: float | None = None,
    request: Any = None,
    response: Any = None,
    **extra: Any,
) -> int | None:
    """Record one LLM call.

    Args:
        model: the model name.
        prompt_tokens: tokens sent.
        completion_tokens: tokens received.
        latency_ms: how long the call took.
        request: the request (messages, parameters); redacted and cut like any value.
        response: the response.
        **extra: more fields (e.g. ``error=...``, ``stop_reason=...``).

    Returns:
        The event's seq, or None when not recording.
    """
    rec = api._recorder
    if rec is None:
        return None
    try:
        data: dict[str, Any] = {
            "model": model,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "latency_ms": latency_ms,
        }
        if request is not None:
            data["request"] = request
        if response is not None:
            data["response"] = response
        if extra:
            data.update(extra)
        if "error" in extra:
            return rec.record("llm", data, False, True)  # type: ignore[no-any-return]
        return rec.record_fresh("llm", data)  # type: ignore[no-any-return]
    except Exception:
        rec.errors += 1
        return None
