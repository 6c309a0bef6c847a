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

    A rename (``thread.name = "worker-3"``, from any thread, through ``Thread.name`` or a
    subclass's own ``name`` property) drops that thread's cached name, through the hook
    :func:`_watch_renames` puts on their setters: the events after it carry the new name, and
    no event pays for a check.
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
    """Wrap ``threading.Thread.name``'s setter, and that of every ``Thread`` subclass that
    defines a ``name`` property of its own (those there now, and those made later), so that a
    rename drops the renamed thread's cached name (once per process).

    At the setter, not at the store into ``thread._name``: hooking every attribute store on a
    thread (``Thread.__setattr__``) made each thread's creation cost a third more, and a
    descriptor on ``Thread._name`` slowed every attribute read on every thread. So a
    ``thread._name = ...`` set directly goes unseen (see the README).
    """
    global _renames_watched
    _renames_watched = True
    _watch_name_property(threading.Thread)
    pending = threading.Thread.__subclasses__()
    while pending:
        cls = pending.pop()
        _watch_name_property(cls)
        pending.extend(cls.__subclasses__())
    own = threading.Thread.__dict__.get("__init_subclass__")
    if own is not None:  # someone's own: theirs runs, the subclasses it makes go unwatched
        return

    def init_subclass(cls: type[threading.Thread], **kwargs: Any) -> None:
        super(threading.Thread, cls).__init_subclass__(**kwargs)
        _watch_name_property(cls)

    threading.Thread.__init_subclass__ = classmethod(init_subclass)  # type: ignore[assignment,method-assign]


def _watch_name_property(cls: type) -> None:
    """Wrap the setter of ``cls``'s own ``name`` property, if it has one (a no-op otherwise,
    or if it is wrapped already): after it runs, the thread's cached name is dropped."""
    prop = cls.__dict__.get("name")
    if not isinstance(prop, property) or prop.fset is None or getattr(prop.fset, "_flightrec", False):
        return
    set_name = prop.fset

    def renamed(thread: threading.Thread, name: Any) -> None:
        set_name(thread, name)
        _forget_name(thread)

    renamed._flightrec = True  # type: ignore[attr-defined]
    try:
        cls.name = property(prop.fget, renamed, prop.fdel, prop.__doc__)  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # a class that refuses new attributes: its renames go unseen
        pass


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
