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
    """The current thread's name, cached per thread (``current_thread()`` is slow)."""
    try:
        return _tls.name  # type: ignore[no-any-return]
    except AttributeError:
        name = threading.current_thread().name
        _tls.name = name
        return name
