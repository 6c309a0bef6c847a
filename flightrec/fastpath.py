"""The optional C hot path: ``Recorder.record()`` and ``flightrec.record()`` in C.

``flightrec/_fastpath.c`` does what the Python ``Recorder.record`` does for the common event
(not pinned, not an error, of a kind the sampler keeps whole), on the recorder's own lock,
seq counter and ring state, and hands everything else to the Python code. It halves the
cost of an enabled call (see the README's figures). It is built when a C compiler is
there; without it, or with ``FLIGHTREC_PURE_PYTHON=1``, flightrec is pure Python and
behaves the same.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .context import _tls, current_span, thread_name
from .format import RingField

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = ["AVAILABLE", "activate", "attach", "defer", "load_native", "module_record", "new_lock"]


def load_native(name: str) -> Any:
    """The optional C extension ``flightrec.<name>``, or None.

    None when it was not built (no compiler at install time) or when ``FLIGHTREC_PURE_PYTHON``
    asks for pure Python; the caller then runs its Python twin.
    """
    if os.environ.get("FLIGHTREC_PURE_PYTHON", "").strip().lower() in ("1", "true", "yes", "on"):
        return None
    try:
        return importlib.import_module(f"{__package__}.{name}")
    except ImportError:
        return None


_native: Any = load_native("_fastpath")

AVAILABLE: bool = _native is not None
"""Whether the C hot path is in use in this process."""

module_record: Callable[..., int | None] | None = _native.record if _native is not None else None
"""The C ``flightrec.record(kind, /, *, pin=False, **data)``, when available."""

_native_lock: Any = load_native("_lock")


def new_lock() -> Any:
    """A new mutex for the recorder's hot path: ``flightrec._lock.Lock`` when built, else ``threading.Lock``.

    Both behave the same (``acquire(blocking, timeout)``, ``release``, ``locked``, ``with``);
    the C one takes and lets go without parsing arguments, which every recorded event does once.
    """
    return _native_lock.Lock() if _native_lock is not None else threading.Lock()


def attach(rec: Recorder) -> Any:
    """The C fast path bound to ``rec``'s objects, or None (pure Python, or it cannot attach)."""
    if _native is None:
        return None
    try:
        return _native.Fast(
            rec=rec,
            ring=rec.ring,
            fast=rec.sampler._fast,
            span_var=current_span,
            tls=_tls,
            thread_name=thread_name,
            acquire=rec._lock.acquire,
            release=rec._lock.release,
            encode=rec._encoder.fast_encode,
            encode_safe=rec._encoder.encode,
            prepare=rec._encoder.prepare,
            redacted=rec._redacted if rec.redactor is not None else None,
            redact=rec.redactor.redact if rec.redactor is not None else None,
            dict_walk=_dict_walk_for(rec.redactor),
            redactor=rec.redactor,
            max_value=rec.config.max_value,
            payload_cache=_payload_cache(rec),
            slow=type(rec).record.__get__(rec),  # the Python method, not the C one set on rec
            mm=rec.ring._mm,
            max_event=rec.config.max_event,
            len_field=int(RingField.OPEN_LEN),
        )
    except Exception:  # an unexpected layout: record in Python rather than not at all
        return None


def _payload_cache(rec: Recorder) -> tuple[Any, ...] | None:
    """What the C twin of ``Recorder._redacted`` needs: the recorder's own cache objects."""
    if rec.redactor is None:
        return None
    import msgspec

    from .recorder import _CACHE_GIVE_UP

    return (rec._cache_misses, rec._redact_cache, rec._encode_data, msgspec.Raw, _CACHE_GIVE_UP)


def _dict_walk_for(redactor: Any) -> Any:
    """The C dict walk, when ``redactor.redact`` would hand every dict to it (else None)."""
    from .redact.redactor import _dict_walk

    if redactor is None or _dict_walk is None or not redactor._enabled or redactor._need_path:
        return None
    return _dict_walk


def activate(rec: Recorder | None, python_record: Callable[..., int | None]) -> None:
    """Make the C ``flightrec.record`` serve ``rec`` (the active recorder, or None).

    A recorder without a fast path of its own (it could not attach) is served by
    ``python_record``, called with the same arguments.
    """
    if _native is None:
        return
    fast = getattr(rec, "_fast", None) if rec is not None else None
    _native.set_active(fast, python_record if rec is not None and fast is None else None)


def defer(python_record: Callable[..., int | None]) -> None:
    """No recorder yet, but one made on first use (a forked child's): the C ``flightrec.record``,
    tools and steps hand every call to the Python side (``python_record``), which makes it."""
    if _native is not None:
        _native.set_active(None, python_record)
