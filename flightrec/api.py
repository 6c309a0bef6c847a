"""The module-level API: ``start``, ``stop``, ``record``, ``dump``, ``load``.

The active recorder lives in the module global ``_recorder``; every public call reads it
once, so a disabled or never-started recorder costs one global lookup and a compare.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import fastpath
from .config import resolve_config
from .recorder import Recorder

if TYPE_CHECKING:  # the reader (and its analysis) load on first use: `import flightrec` stays cheap
    from .reader import Recording

_recorder: Recorder | None = None
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
    with _start_lock:
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
        if config.triggers:
            from . import triggers as _triggers

            _triggers.install(rec, config)
        return rec


def _install_fork_hook() -> None:
    global _fork_hook_installed
    if _fork_hook_installed or not hasattr(os, "register_at_fork"):
        return
    os.register_at_fork(after_in_child=_after_fork_in_child)
    _fork_hook_installed = True


def _after_fork_in_child() -> None:
    """A forked child records into a ring of its own; the parent's is left untouched."""
    global _recorder, _start_lock
    _start_lock = threading.Lock()
    old = _recorder
    if old is None or old.closed:
        return
    old.abandon_after_fork()
    _recorder = None
    fastpath.activate(None, _python_record)
    try:
        rec = Recorder(old.config)
    except Exception as exc:
        print(f"flightrec: could not start a recorder in the forked child: {exc}", file=sys.stderr)
        return
    _recorder = rec
    fastpath.activate(rec, _python_record)
    _stop_at_multiprocessing_exit()
    if old.config.triggers:
        from . import triggers as _triggers

        _triggers.rebind(rec)


def _stop_at_multiprocessing_exit() -> None:
    """In a forked child that turns out to be a ``multiprocessing`` process: stop at its exit.

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
    with _start_lock:
        rec, _recorder = _recorder, None
        fastpath.activate(None, _python_record)
    if rec is None:
        return
    from . import triggers as _triggers

    _triggers.unbind(rec)
    if rec.config.dump_on_exit:
        rec.dump(reason="exit")
    rec.close()


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
    """The running recorder, if any."""
    return _recorder
