"""Turning one event into MessagePack bytes, whatever the agent handed us.

The fast path is msgspec's MessagePack encoder (measured ~3.5x faster than msgpack's
``Packer`` on a 300-byte event here; its output is plain MessagePack that any reader
decodes). Anything it cannot encode, or an event that comes out larger than
``max_event``, takes the slow path through a sanitizing walk (truncation, repr of unknown
objects, cycle and depth limits) so that the event is still stored, degraded but honest.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

import msgspec

from .context import utf8_text

TRUNCATED_KEY = "_truncated"
"""Data key added to an event that had to be shrunk; its value is the original encoded size."""
DEGRADED_KEY = "_degraded"
"""Data key added to an event whose payload could not be encoded as given; value: the reason."""
_KEPT_FIELDS = 64
"""Most top-level fields looked at to keep the small ones of an event shrunk to a preview."""


def safe_repr(obj: object, limit: int = 4096) -> str:
    """``repr(obj)``, truncated, and never raising.

    A list, tuple, dict or set is written only as far as the limit (the same text as
    ``repr`` up to there): a 50,000-message conversation passed where a label goes must not
    cost a repr of megabytes at every call.
    """
    try:
        if type(obj) in _CONTAINER_TYPES:
            text = _bounded_repr(obj, limit)
            if text is not None:
                return text[:limit] + "…<truncated>"
        text = repr(obj)
    except Exception as exc:  # an agent's object with a broken __repr__ must not break us
        return f"<unrepresentable {type(obj).__name__}: {type(exc).__name__}>"
    if len(text) > limit:
        text = text[:limit] + f"…<truncated {len(text) - limit} chars>"
    return text


_CONTAINER_TYPES = (list, tuple, dict, set, frozenset)
_SEQ_MARKS: dict[type, tuple[str, str]] = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    set: ("{", "}"),
    frozenset: ("frozenset({", "})"),
}


class _Enough(Exception):
    """The bounded repr has written more than its limit."""


def _bounded_repr(obj: object, limit: int) -> str | None:
    """The start of ``repr(obj)`` (a builtin container) if it is longer than ``limit``
    characters, written only that far; None if it is not longer (then ``repr`` is cheap)."""
    out: list[str] = []
    size = 0
    active: set[int] = set()

    def put(text: str) -> None:
        nonlocal size
        out.append(text)
        size += len(text)
        if size > limit:
            raise _Enough

    def walk(o: Any, depth: int) -> None:
        t = type(o)
        if t not in _CONTAINER_TYPES or depth > 100:
            put(repr(o) if not (t is str or t is bytes) or len(o) <= limit else repr(o[: limit + 1]))
            return
        if id(o) in active:  # a reference cycle, as repr writes it
            put("{...}" if t is dict else "[...]" if t is list else "(...)")
            return
        active.add(id(o))
        if t is dict:
            put("{")
            for i, (k, v) in enumerate(o.items()):
                if i:
                    put(", ")
                walk(k, depth + 1)
                put(": ")
                walk(v, depth + 1)
            put("}")
        elif (t is set or t is frozenset) and not o:
            put(f"{t.__name__}()")
        else:
            head, tail = _SEQ_MARKS[t]
            put(head)
            for i, x in enumerate(o):
                if i:
                    put(", ")
                walk(x, depth + 1)
            put("," + tail if t is tuple and len(o) == 1 else tail)
        active.discard(id(o))

    try:
        walk(obj, 0)
    except _Enough:
        return "".join(out)
    return None


_UNKNOWN = object()


def _convert(obj: Any) -> Any:
    """A dataclass or pydantic model as a dict, a path as its text; ``_UNKNOWN`` for anything else."""
    if isinstance(obj, PurePath):
        return str(obj)  # (as the redactor stores it)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name, None) for f in dataclasses.fields(obj)}
    dump = getattr(obj, "model_dump", None)  # pydantic v2, without importing pydantic
    if callable(dump):
        try:
            return dump()
        except Exception:
            pass
    return _UNKNOWN


def _enc_hook(obj: Any) -> Any:
    """msgspec calls this for types it does not know: convert or fall back to repr."""
    converted = _convert(obj)
    return safe_repr(obj) if converted is _UNKNOWN else converted


def _plain(data: Any) -> Any:
    """``data`` itself, or the value a ``msgspec.Raw`` holds (the recorder's redaction cache
    hands payloads over already encoded), so that the slow path walks the payload rather
    than storing the ``repr`` of its wrapper."""
    if isinstance(data, msgspec.Raw):
        try:
            return msgspec.msgpack.decode(data)
        except Exception:
            return data
    return data


def _utf8_clean(value: Any, depth: int = 0) -> Any:
    """``value`` (the sanitizing walk's output: builtins) with every string MessagePack
    cannot carry (a lone surrogate) made UTF-8-clean, so that one such string does not lose
    the whole event. The slow path only: the hot path never pays for it."""
    if type(value) is str:
        return utf8_text(value)
    if depth > 64:
        return value
    if type(value) is dict:
        return {_utf8_clean(k, depth + 1): _utf8_clean(v, depth + 1) for k, v in value.items()}
    if type(value) is list:
        return [_utf8_clean(v, depth + 1) for v in value]
    return value


class EventEncoder:
    """Encode event tuples ``(seq, ts_ns, kind, thread, span, parent, data)`` to bytes."""

    __slots__ = ("_encode", "_max_event", "_sanitize", "degraded", "fast_encode")

    def __init__(self, max_event: int, sanitize: Callable[[Any], Any]) -> None:
        """Args:
        max_event: largest encoded event kept as is.
        sanitize: a walk returning builtins only (with strings truncated), used on the slow path.
        """

        def enc_hook(obj: Any) -> Any:
            converted = _convert(obj)
            if converted is _UNKNOWN:  # stored as its repr: degraded, so counted
                self.degraded += 1
                return safe_repr(obj)
            return converted

        self._encode = msgspec.msgpack.Encoder(enc_hook=enc_hook).encode
        self.fast_encode = msgspec.msgpack.Encoder().encode
        """Encode an event tuple as is, running no code of the agent's (no hook: an unknown
        type raises; it may exceed ``max_event``). The hot path tries this under the
        recorder's lock, and on failure calls :meth:`prepare` without the lock."""
        self._max_event = max_event
        self._sanitize = sanitize
        self.degraded = 0
        """Events that took the slow path, plus values stored as their repr (counted into the
        dump header)."""

    def prepare(self, data: dict[str, Any], kind: str, thread: str) -> Any:
        """``data`` in a form :attr:`fast_encode` takes, converting what it refused.

        Converting runs the agent's code (``model_dump()``, ``__repr__``), which may itself
        record: the recorder calls this without holding its lock. The result is
        ``msgspec.Raw`` of exactly what the hooked encoder writes for ``data``, or, when
        even that fails or would not fit ``max_event``, the slow path's degraded form.
        """
        try:
            raw = self._encode(data)
        except Exception as exc:
            self.degraded += 1
            return self._sanitized(data, type(exc).__name__)
        # The event's other fields take at most this much (array, ints, two str headers).
        envelope = 48 + 4 * (len(kind) + len(thread))
        if len(raw) + envelope > self._max_event:
            self.degraded += 1
            return self._shrunk(data, len(raw) + envelope, self._max_event - envelope)
        return msgspec.Raw(raw)

    def _sanitized(self, data: dict[str, Any], reason: str) -> dict[str, Any]:
        """``data`` through the sanitizing walk, marked degraded with ``reason``."""
        data = _plain(data)
        try:
            clean = _utf8_clean(self._sanitize(data))
            if not isinstance(clean, dict):
                clean = {"value": clean}
            clean[DEGRADED_KEY] = reason
            return clean
        except Exception:
            return {DEGRADED_KEY: reason, "repr": safe_repr(data, 2048)}

    def _shrunk(self, data: dict[str, Any], size: int, budget: int) -> dict[str, Any]:
        """An oversized ``data``: its shape with strings cut short if that encodes within
        ``budget`` bytes, else a preview; marked with the original ``size``."""
        data = _plain(data)
        clean: Any = None
        try:
            clean = _utf8_clean(self._sanitize(data))
            if isinstance(clean, dict):
                clean[TRUNCATED_KEY] = size
                if len(self._encode(clean)) <= budget:
                    return clean
        except Exception:
            pass
        preview = {TRUNCATED_KEY: size, "preview": safe_repr(data, max(256, self._max_event // 8))}
        # The event's small fields (a tool call's tool, call_id, latency, error...) are what a
        # reader links it by: kept beside the preview of the whole.
        scalars = {
            k: v
            for k, v in itertools.islice(clean.items() if isinstance(clean, dict) else (), _KEPT_FIELDS)
            if type(k) is str and (v is None or type(v) in (bool, int, float) or (type(v) is str and len(v) <= 256))
        }
        if scalars:
            try:
                kept = {**scalars, **preview}
                if len(self._encode(kept)) <= budget:
                    return kept
            except Exception:
                pass
        return preview

    def encode(
        self, seq: int, ts: int, kind: str, thread: str, span: int | None, parent: int | None, data: dict[str, Any]
    ) -> bytes:
        """Encode one event; never raises for any ``data``."""
        try:
            out = self._encode((seq, ts, kind, thread, span, parent, data))
        except Exception as exc:
            out = self._slow(seq, ts, kind, thread, span, parent, data, type(exc).__name__)
        if len(out) > self._max_event:
            out = self._shrink(seq, ts, kind, thread, span, parent, data, len(out))
        return out

    def _slow(
        self,
        seq: int,
        ts: int,
        kind: str,
        thread: str,
        span: int | None,
        parent: int | None,
        data: dict[str, Any],
        reason: str,
    ) -> bytes:
        self.degraded += 1
        if isinstance(kind, str):
            kind = utf8_text(kind)  # a kind MessagePack refuses would lose the event whole
        try:
            return self._encode((seq, ts, kind, thread, span, parent, self._sanitized(data, reason)))
        except Exception:
            return self._encode(
                (seq, ts, kind, thread, span, parent, {DEGRADED_KEY: reason, "repr": safe_repr(data, 2048)})
            )

    def _shrink(
        self,
        seq: int,
        ts: int,
        kind: str,
        thread: str,
        span: int | None,
        parent: int | None,
        data: dict[str, Any],
        size: int,
    ) -> bytes:
        """An oversized event: keep its shape with strings cut short, else a preview."""
        self.degraded += 1
        envelope = len(self._encode((seq, ts, kind, thread, span, parent, None)))
        return self._encode((seq, ts, kind, thread, span, parent, self._shrunk(data, size, self._max_event - envelope)))
