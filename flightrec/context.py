"""Per-task and per-thread context read on the hot path: the current step and thread name."""

from __future__ import annotations

import contextvars
import sys
import threading
import weakref
from typing import Any

current_span: contextvars.ContextVar[tuple[int, int | None] | None] = contextvars.ContextVar(
    "flightrec_span", default=None
)
"""``(span_id, parent_id)`` of the innermost open step in this task/thread, or None."""

_tls = threading.local()


def thread_name() -> str:
    """The current thread's name, cached per thread (``current_thread()`` is slow), redacted
    by the running recorder's pattern rules (``session-jane@example.com`` is a name too).

    A rename (``thread.name = "worker-3"``, from any thread) drops that thread's cached name,
    through the hook :func:`_watch_renames` puts on ``Thread.name``'s setter: the events after
    it carry the new name, and no event pays for a check.
    """
    try:
        return _tls.name  # type: ignore[no-any-return]
    except AttributeError:
        if not _renames_watched:
            _watch_renames()
        thread = threading.current_thread()
        name = utf8_text(str(thread.name))
        from . import api  # (at call time: api imports this module)

        rec = api._recorder
        if rec is not None:
            name = rec.redact_text(name)
        _tls.name = name
        try:
            _cached_by_thread[thread] = _tls.__dict__  # (this thread's: for a rename from another one)
        except TypeError:  # a Thread subclass that cannot be weakly referenced: its renames go unseen
            pass
        return name


_cached_by_thread: weakref.WeakKeyDictionary[threading.Thread, dict[str, Any]] = weakref.WeakKeyDictionary()
"""Thread -> its own ``_tls`` dict, where :func:`thread_name` keeps its name."""
_renames_watched = False


def _watch_renames() -> None:
    """Wrap ``threading.Thread.name``'s setter so that a rename drops the renamed thread's
    cached name (once per process; a no-op if the property is not the usual one)."""
    global _renames_watched
    _renames_watched = True
    prop = threading.Thread.__dict__.get("name")
    if not isinstance(prop, property) or prop.fset is None or getattr(prop.fset, "_flightrec", False):
        return
    set_name = prop.fset

    def renamed(thread: threading.Thread, name: str) -> None:
        set_name(thread, name)
        _forget_name(thread)

    renamed._flightrec = True  # type: ignore[attr-defined]
    threading.Thread.name = property(prop.fget, renamed, prop.fdel, prop.__doc__)  # type: ignore[method-assign,assignment]


def _forget_name(thread: threading.Thread) -> None:
    """Drop ``thread``'s cached name, here and in the C hot path's one-entry cache (never raises)."""
    try:
        cached = _cached_by_thread.get(thread)
        if cached is not None:
            cached.pop("name", None)
        native = sys.modules.get(f"{__package__}._fastpath")
        if native is not None:
            native.forget_thread_name()
    except Exception:
        pass  # (a rename must never fail because of the recorder)


def utf8_text(text: str) -> str:
    """``text`` itself, or with lone surrogates (a name decoded from bytes with
    ``surrogateescape``) replaced: MessagePack carries only UTF-8, and an event whose kind or
    thread name cannot be encoded would be lost whole."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape" if _escaped_only(text) else "replace").decode("utf-8", "replace")
    return text


def _escaped_only(text: str) -> bool:
    """Whether every surrogate in ``text`` is one ``surrogateescape`` made (U+DC80..U+DCFF)."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)
