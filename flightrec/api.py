"""The module-level API: ``start``, ``stop``, ``record``, ``dump``, ``load``.

The active recorder lives in the module global ``_recorder``; every public call reads it
once, so a disabled or never-started recorder costs one global lookup and a compare.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from . import fastpath
from .config import Config, resolve_config
from .recorder import Recorder

if TYPE_CHECKING:  # the reader (and its analysis) load on first use: `import flightrec` stays cheap
    from .reader import Recording

_recorder: Recorder | None = None
_stopping: Recorder | None = None
"""The recorder :func:`stop` is closing (after its exit dump, if any): a fatal signal in the
middle of that cuts a clean exit short, and the signal handler finishes removing its ring."""
_start_lock = threading.Lock()
_fork_hook_installed = False


def start(
    size: str | int | None = None,
    dir: str | os.PathLike[str] | None = None,
    *,
    triggers: bool | tuple[str, ...] | list[str] | None = None,
    redact: bool | str | None = None,
    sampling: str | None = None,
    **options: Any,
) -> Recorder | None:
    """Start recording this process (idempotent: a second call returns the running recorder).

    Arguments left out are taken from ``FLIGHTREC_*`` environment variables, then defaults.

    Args:
        size: ring file size, e.g. ``"64MiB"`` (``FLIGHTREC_SIZE``).
        dir: directory for the ring and dumps (``FLIGHTREC_DIR``).
        triggers: install dump triggers (excepthooks, SIGTERM, logging, faulthandler,
            atexit): True/False or a list of names (``FLIGHTREC_TRIGGERS``). Default: all.
        redact: PII/secret redaction on or off (``FLIGHTREC_REDACT``). Default: on.
        sampling: a sampling spec such as ``"token=rate:20,note=fraction:0.5"``.
        **options: any other :class:`~flightrec.config.Config` field.

    Returns:
        The running :class:`Recorder`, or None when disabled (``FLIGHTREC_DISABLE=1``) or
        when no ring file can be created (the reason is printed on stderr).

    Raises:
        ConfigError: an argument or environment variable is invalid.
    """
    global _recorder
    _settle_fork()
    with _start_lock:
        if isinstance(_recorder, _Deferred):  # a forked child's, not made yet: the one to return
            made = _materialize_locked(_recorder)
            if made is not None:
                return made
        if isinstance(_recorder, _Forking):  # (started from another fork hook, in the parent)
            return _recorder._rec
        if _recorder is not None and not _recorder.closed:
            return _recorder
        config = resolve_config(size=size, dir=dir, triggers=triggers, redact=redact, sampling=sampling, **options)
        if config.disabled:
            return None
        try:
            rec = Recorder(config)
        except Exception as exc:  # no usable ring directory, disk full...: the agent runs on, unrecorded
            print(f"flightrec: not recording: {exc}", file=sys.stderr)
            return None
        _recorder = rec
        fastpath.activate(rec, _python_record)
        _install_fork_hook()
        # A forkserver child starts its recorder here, importing the main module before it
        # runs its target (and ends with os._exit() too); in any other process this only
        # concerns the multiprocessing children it forks, which stop at their exit anyway.
        _stop_at_multiprocessing_exit()
        if config.triggers:
            from . import triggers as _triggers

            _triggers.install(rec, config)
        return rec


def _install_fork_hook() -> None:
    global _fork_hook_installed
    if _fork_hook_installed or not hasattr(os, "register_at_fork"):
        return
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)
    _fork_hook_installed = True


_FORK_IMPORT_WAIT = 10.0
"""Seconds a fork waits at most for the resource thread's import of psutil (once, at start)."""


def _before_fork() -> None:
    """Hand ``_recorder`` to a :class:`_Forking` stand-in until the fork is over.

    The after-fork hooks registered before :func:`start` (``os.register_at_fork``, by the
    agent or a library) run in the child before ours: an event they record went into the
    parent's ring, whose memory the child shares. The stand-in sees the pid change at the
    first use of the recorder in the child and makes the child's switch then. (Before-fork
    hooks run in reverse order of registration: ours comes before those registered earlier.)
    """
    global _recorder
    rec = _recorder
    if rec is None or isinstance(rec, (_Deferred, _Forking)) or rec.closed:
        return  # (a _Deferred checks the pid itself, on its first use)
    resources = getattr(rec, "_resources", None)
    if resources is not None:  # a fork right after start(): let its thread's import end first
        resources.wait_imported(_FORK_IMPORT_WAIT)
    _recorder = cast(Recorder, _Forking(rec))
    fastpath.defer(_python_record)  # the C record, tools and steps: through the stand-in too


def _after_fork_in_parent() -> None:
    """The fork is over, in the parent: its recorder is ``_recorder`` again (unless stopped meanwhile)."""
    global _recorder
    forking = _recorder
    if isinstance(forking, _Forking):
        _recorder = forking._rec
        fastpath.activate(forking._rec, _python_record)


class _Forking:
    """``_recorder`` while the process forks (see :func:`_before_fork`): in the parent, its
    recorder; in the child, the child's own, switched to (:func:`_after_fork_in_child`) at the
    first use. Only the recording calls made during the fork pay the pid check."""

    __slots__ = ("_pid", "_rec")

    def __init__(self, rec: Recorder) -> None:
        object.__setattr__(self, "_rec", rec)
        object.__setattr__(self, "_pid", os.getpid())

    def _current(self) -> Any:
        if os.getpid() == self._pid:
            return self._rec
        _after_fork_in_child()
        rec = _recorder
        return _UNRECORDED if rec is None or rec is self else rec

    def __getattr__(self, name: str) -> Any:
        return getattr(self._current(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._current(), name, value)


def _settle_fork() -> None:
    """In a forked child whose switch has not run yet (a fork hook calls :func:`start` or
    :func:`stop`): run it now, so that they act on the child's recorder, not the parent's."""
    forking = _recorder
    if isinstance(forking, _Forking) and os.getpid() != forking._pid:
        _after_fork_in_child()


_forked_in: int | None = None
"""The pid of the process :func:`_after_fork_in_child` last ran in (it runs once per child)."""


def _after_fork_in_child() -> None:
    """A forked child records into a ring of its own, made on its first use; the parent's is left untouched.

    Not made here: a child forked only to ``exec`` another program, or that ends with
    ``os._exit()`` (``subprocess`` with ``preexec_fn``, ``pty.spawn``), runs no cleanup, and
    the ring made at fork time was left behind on every such fork, for ``flightrec ls`` to
    list as dead. A child that records nothing now makes nothing (no file, no thread).
    """
    global _recorder, _start_lock, _making, _forked_in
    pid = os.getpid()
    if _forked_in == pid:  # done already, at the first recording call in this child
        return
    _forked_in = pid
    _start_lock = threading.Lock()
    _making = None
    old = _recorder
    if isinstance(old, _Forking):
        old = _recorder = old._rec
    if old is None:
        return
    if isinstance(old, _Deferred):  # forked again before recording: the grandchild defers too
        config = old._config
    elif old.closed:
        return
    else:
        old.abandon_after_fork()
        config = old.config
    _recorder = cast(Recorder, _Deferred(config))  # it stands for the recorder it will make
    fastpath.defer(_python_record)  # flightrec.record() and the C tools and steps: to the Python path
    _stop_at_multiprocessing_exit()
    if config.triggers:
        from . import triggers as _triggers

        _triggers.forked()


class _Deferred:
    """A forked child's recorder before anything used it: made on first use, then out of the way.

    Every recording call reads ``api._recorder`` and uses an attribute of it (``record``,
    ``errors``, ``extension``...): the first such use makes the recorder (ring file, threads),
    puts it in ``api._recorder`` and ``fastpath.activate``, and is answered by it. So later
    events meet the real recorder directly and pay nothing for this; no per-event check was
    added anywhere. :func:`stop` drops an unused one without making anything.
    """

    __slots__ = ("_config", "_done", "_pid", "_real")

    def __init__(self, config: Config) -> None:
        object.__setattr__(self, "_config", config)
        object.__setattr__(self, "_real", None)
        object.__setattr__(self, "_done", False)  # made, failed, or dropped by stop()
        object.__setattr__(self, "_pid", os.getpid())  # the child it is for

    def __getattr__(self, name: str) -> Any:
        rec = _materialize(self)
        return getattr(_UNRECORDED if rec is None else rec, name)

    def __setattr__(self, name: str, value: Any) -> None:
        rec = _materialize(self)  # (``rec.errors += 1`` after a failure: counted in no recorder)
        if rec is not None:
            setattr(rec, name, value)


class _Unrecorded:
    """What a caller holding a :class:`_Deferred` meets when its recorder could not be made
    (or was stopped first): recording calls return None, as with no recorder at all."""

    errors = 0
    closed = True

    @staticmethod
    def record(*args: Any, **kwargs: Any) -> None:
        return None

    record_fresh = dump = dump_unlocked = record

    @staticmethod
    def redact_text(text: str) -> str:
        return text


_UNRECORDED = _Unrecorded()
_making: int | None = None
"""The thread making a deferred recorder: a use of it from inside its own making finds none."""


def _materialize(pending: _Deferred) -> Recorder | None:
    """The recorder ``pending`` stands for, made now if it was not yet (None if it cannot be)."""
    if pending._done:
        return pending._real  # type: ignore[no-any-return]
    if pending._pid != os.getpid():
        # Forked again before it was made, and a fork hook registered before ours records in
        # the grandchild: the grandchild's switch first (else its ring, made here, was
        # abandoned by our hook a moment later, with the events in it).
        _after_fork_in_child()
        current = _recorder
        if not isinstance(current, _Deferred):  # made already in this process, or stopped
            return current
        if current is pending:
            return None
        pending = current
    if _making == threading.get_ident():
        return None
    with _start_lock:
        return _materialize_locked(pending)


def _materialize_locked(pending: _Deferred) -> Recorder | None:
    global _recorder, _making
    if pending._done:
        return pending._real  # type: ignore[no-any-return]
    if _recorder is not pending:  # stopped (or replaced) while this caller held it
        object.__setattr__(pending, "_done", True)
        return None
    _making = threading.get_ident()
    try:
        rec: Recorder | None = Recorder(pending._config)
    except Exception as exc:  # the child runs on, unrecorded
        print(f"flightrec: could not start a recorder in the forked child: {exc}", file=sys.stderr)
        rec = None
    finally:
        _making = None
    object.__setattr__(pending, "_real", rec)
    object.__setattr__(pending, "_done", True)
    _recorder = rec
    fastpath.activate(rec, _python_record)
    if rec is not None and rec.config.triggers:
        from . import triggers as _triggers

        _triggers.rebind(rec)
    return rec


def _stop_at_multiprocessing_exit() -> None:
    """In a forked child that turns out to be a ``multiprocessing`` process: stop at its exit.

    (Called from :func:`start` too: a forkserver child starts recording when it imports the
    main module, before its bootstrap.)

    Such a child (a ``Process`` or a ``Pool`` worker, with the fork start method) ends with
    ``os._exit()``, which runs no ``atexit`` handler: its ring, 64 MiB of RAM-backed file by
    default, was left behind on every run, for ``recover`` to turn into a dump of nothing
    wrong. multiprocessing runs its own exit finalizers first; the child's bootstrap clears
    those inherited from the parent, then calls its after-fork hooks, where the finalizer is
    registered.
    """
    util = sys.modules.get("multiprocessing.util")
    if util is None:  # not imported: this child cannot be a multiprocessing process
        return
    try:
        util.register_after_fork(_MP_EXIT, _register_mp_finalizer)
    except Exception:
        pass


class _MpExit:
    """The key under which :func:`_register_mp_finalizer` waits in multiprocessing's after-fork registry."""


_MP_EXIT = _MpExit()


def _register_mp_finalizer(_: object) -> None:
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.Finalize(None, stop, exitpriority=100)  # first: the pool may SIGTERM a worker that is exiting


def stop() -> None:
    """Flush and close the recorder; remove its ring file unless configured to keep it."""
    global _recorder
    _settle_fork()
    with _start_lock:
        rec, _recorder = _recorder, None
        fastpath.activate(None, _python_record)
    if isinstance(rec, _Forking):  # (stopped from another fork hook, in the parent)
        rec = rec._rec
    if rec is None:
        return
    if isinstance(rec, _Deferred):  # a forked child that never recorded: nothing made, nothing to close
        object.__setattr__(rec, "_done", True)
        return
    global _stopping
    from . import triggers as _triggers

    if rec.config.dump_on_exit:
        _triggers.unbind(rec)
        rec.dump(reason="exit")
        _stopping = rec  # (not before: until the exit dump is written, the ring is its only copy)
    else:
        _stopping = rec
        _triggers.unbind(rec)
    try:
        rec.close()
    finally:
        _stopping = None


def _python_record(kind: str, /, *, pin: bool = False, **data: Any) -> int | None:
    """Record one event of ``kind`` with arbitrary fields.

    Args:
        kind: what happened, e.g. ``"note"``.
        pin: keep this event in the pinned area, which the ring never overwrites.
        **data: the event's fields (anything; unserializable values are stored as repr).

    Returns:
        The event's sequence number, or None when not recording or sampled out.
    """
    rec = _recorder
    if rec is None:
        return None
    return rec.record(kind, data, pin)


# The C twin when it is built (it reads the recorder that start/stop/fork hand it through
# fastpath.activate): one call less between the agent and the ring.
if TYPE_CHECKING:
    record = _python_record
else:
    record = fastpath.module_record or _python_record


def dump(reason: str = "manual", path: str | os.PathLike[str] | None = None) -> Path | None:
    """Write the ring to a ``.frec`` dump now and return its path.

    Returns None when not recording, or when the dump could not be written (the reason is
    printed on stderr and counted); this never raises.
    """
    rec = _recorder
    if rec is None:
        return None
    return rec.dump(reason=reason, path=path)


def load(path: str | os.PathLike[str]) -> Recording:
    """Open a dump or ring file for reading.

    Raises:
        FlightrecError: a subclass of it for a missing, foreign, too new or unsalvageable file.
    """
    from .reader import open_recording

    return open_recording(path)


def get_recorder() -> Recorder | None:
    """The running recorder, if any (in a forked child that has not recorded yet: made now)."""
    _settle_fork()
    rec = _recorder
    if isinstance(rec, _Forking):  # (asked from another fork hook, in the parent)
        return rec._rec
    if isinstance(rec, _Deferred):
        return _materialize(rec)
    return rec
