"""Per-task and per-thread context read on the hot path: the current step and thread name."""

from __future__ import annotations

import contextvars
import threading

current_span: contextvars.ContextVar[tuple[int, int | None] | None] = contextvars.ContextVar(
    "flightrec_span", default=None
)
"""``(span_id, parent_id)`` of the innermost open step in this task/thread, or None."""

_tls = threading.local()


def thread_name() -> str:
    """The current thread's name, cached per thread (``current_thread()`` is slow), redacted
    by the running recorder's pattern rules (``session-jane@example.com`` is a name too)."""
    try:
        return _tls.name  # type: ignore[no-any-return]
    except AttributeError:
        name = utf8_text(str(threading.current_thread().name))
        from . import api  # (at call time: api imports this module)

        rec = api._recorder
        if rec is not None:
            name = rec.redact_text(name)
        _tls.name = name
        return name


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
