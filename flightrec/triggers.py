"""Dump triggers: uncaught exceptions (main thread, threads, asyncio, an IPython/Jupyter
cell), SIGTERM, logging, fatal errors (faulthandler) and exit.

Every hook chains to whatever was installed before it and never swallows it. The hooks
look up the active recorder at call time, so they survive ``stop()``/``start()`` and a
fork (the child's recorder is picked up automatically).
"""

from __future__ import annotations

import asyncio
import atexit
import faulthandler
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from . import api
from .config import Config
from .recorder import Recorder, describe_exception

_installed: set[str] = set()
_prev_excepthook: Any = None
_prev_threading_hook: Any = None
_prev_signal: dict[int, Any] = {}
_orig_call_exception_handler: Any = None
_fault_file: Any = None


def wanted_by(rec: Any, trigger: str) -> bool:
    """Whether the running recorder was started with ``trigger`` on.

    A trigger's hook is installed once per process and stays: a recorder started later
    without it (``triggers="none"``, or another list) must not be dumped by it.
    """
    try:
        return trigger in rec.config.triggers
    except Exception:
        return True


def _on_exception(exc: BaseException, origin: str, reason: str, trigger: str, thread: str | None = None) -> None:
    """Record the exception as an error event and dump (rate-limited)."""
    rec = api._recorder
    if rec is None or isinstance(exc, (KeyboardInterrupt, SystemExit)) or not wanted_by(rec, trigger):
        return
    try:
        info = describe_exception(exc, rec.redact_text)
        info["origin"] = origin
        if thread is not None:
            info["thread"] = rec.redact_text(thread)
        rec.error_info = info
        rec.record("error", info, is_error=True)
        rec.dump(reason=reason, exc=exc, automatic=True)
    except Exception:
        rec.errors += 1


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    _on_exception(exc, "uncaught", "exception", "excepthook")
    prev = _prev_excepthook or sys.__excepthook__
    prev(exc_type, exc, tb)


def _threading_hook(args: Any) -> None:
    if args.exc_value is not None:
        name = args.thread.name if args.thread is not None else None
        _on_exception(args.exc_value, "thread", "thread-exception", "threading", thread=name)
    prev = _prev_threading_hook or threading.__excepthook__
    prev(args)


def _post_run_cell(result: Any) -> None:
    """IPython's ``post_run_cell`` event: a cell that raised as it ran. IPython (a Jupyter
    kernel, the ``ipython`` shell) shows a cell's exception itself and never calls
    ``sys.excepthook``: this is the notebook's uncaught exception. (A cell that did not
    compile, ``error_before_exec``, ran nothing of the agent's and is left alone.)"""
    exc = getattr(result, "error_in_exec", None)
    if isinstance(exc, BaseException):
        _on_exception(exc, "cell", "exception", "excepthook")


def _install_ipython_hook() -> None:
    """Dump on a notebook cell's exception, in a running IPython (never imported here: only
    when the program runs under it, and at each start, since a kernel may start later)."""
    if "ipython" in _installed or "IPython" not in sys.modules:
        return
    try:
        shell = sys.modules["IPython"].get_ipython()
        if shell is None:
            return
        shell.events.register("post_run_cell", _post_run_cell)
        _installed.add("ipython")
    except Exception:
        pass  # (an IPython without events, or a stand-in: the other triggers still work)


def _call_exception_handler(self: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    exc = context.get("exception")
    if isinstance(exc, BaseException):
        _on_exception(exc, "asyncio", "asyncio-exception", "asyncio")
    _orig_call_exception_handler(self, context)


on_fatal_dump: Callable[[Path], None] | None = None
"""Called with the dump's path just before a fatal signal's default action ends the process
(``flightrec run`` prints it there: its own printing, after the program, never comes)."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    rec = api._recorder
    if isinstance(rec, api._Forking):  # forking: the parent's recorder in the parent; in the child, as below
        rec = rec._rec if rec._pid == os.getpid() else None
    if isinstance(rec, api._Deferred):
        # A forked child that has recorded nothing: no ring to dump, and none made now (a
        # handler may have interrupted its making, under a lock that is not reentrant).
        rec = None
    if rec is not None and not wanted_by(rec, "signals"):
        rec = None  # (installed for an earlier recorder: this one dies as it would without us)
    name = signal.Signals(signum).name
    dumped = None
    busy = False
    if rec is not None:
        try:
            busy = _recorder_busy(rec, frame)
            if not busy:
                rec.record("signal", {"signal": name}, is_error=True)
                dumped = rec.dump(reason=name)
                busy = dumped is None and rec._dump_lock.locked()  # a dump under way, which dying would cut
            if busy:
                dumped = rec.dump_unlocked(reason=name)
        except Exception:
            rec.errors += 1
    prev = _prev_signal.get(signum, signal.SIG_DFL)
    if callable(prev):
        prev(signum, frame)
        return
    if prev == signal.SIG_IGN:
        return
    # Default disposition: the process dies of the signal, as it would have without us.
    if rec is not None and dumped is not None:
        # The dump holds everything: don't leave the ring for `recover`. (Not through stop()
        # when the recorder is busy: closing takes the lock the interrupted frame holds.)
        if busy:
            _remove_ring_files(rec)
        else:
            api.stop()
    if rec is None and api._stopping is not None:
        # stop() was closing the recorder when the signal came (a multiprocessing pool's
        # terminate() meets workers that are already exiting): the exit was a clean one, so
        # its ring is not left for `recover` to dump as if it had crashed.
        _discard_ring(api._stopping)
    if dumped is not None and on_fatal_dump is not None:
        try:
            on_fatal_dump(dumped)
        except Exception:
            pass  # (saying where the dump went must not keep the process from dying)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _recorder_busy(rec: Recorder, frame: FrameType | None, wait: float = 2.0) -> bool:
    """Whether the signal interrupted a thread holding the recorder's lock, or the lock stays taken.

    The handler runs in the main thread between two bytecodes of whatever it interrupted:
    if that was the recorder (an append, a flush listener, a dump), the lock is held by this
    very thread and waiting for it would never end. Taken by another thread, it is let go
    within microseconds.
    """
    lock = rec._lock
    if lock.acquire(False):
        lock.release()
        return False
    if frame is not None and str(frame.f_globals.get("__name__", "")).startswith("flightrec."):
        return True  # interrupted inside the recorder's own code: the holder is us
    if lock.acquire(True, wait):
        lock.release()
        return False
    return True


def _discard_ring(rec: Recorder) -> None:
    """Remove ``rec``'s ring and its empty fatal log, as its close would have, unless it is to
    be kept (``keep_ring``, or a failed dump whose only copy it is)."""
    if not (rec.config.keep_ring or rec._unsaved_failure):
        _remove_ring_files(rec)


def _remove_ring_files(rec: Recorder) -> None:
    """Delete ``rec``'s ring file, and its fatal log if nothing was written to it."""
    _unlink_quietly(rec.ring_path)
    fatal = rec.ring_path.with_suffix(".fatal")
    try:
        if fatal.stat().st_size == 0:
            _unlink_quietly(fatal)
    except OSError:
        pass


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _at_exit() -> None:
    api.stop()


def install(rec: Recorder, config: Config) -> None:
    """Install the configured triggers (each at most once per process)."""
    global _prev_excepthook, _prev_threading_hook, _orig_call_exception_handler
    wanted = set(config.triggers)
    if "excepthook" in wanted and "excepthook" not in _installed:
        _prev_excepthook = sys.excepthook
        sys.excepthook = _excepthook
        _installed.add("excepthook")
    if "excepthook" in wanted:
        _install_ipython_hook()
    if "threading" in wanted and "threading" not in _installed:
        _prev_threading_hook = threading.excepthook
        threading.excepthook = _threading_hook
        _installed.add("threading")
    if "asyncio" in wanted and "asyncio" not in _installed:
        base = asyncio.BaseEventLoop
        _orig_call_exception_handler = base.call_exception_handler
        base.call_exception_handler = _call_exception_handler  # type: ignore[method-assign,assignment]
        _installed.add("asyncio")
    if "signals" in wanted and "signals" not in _installed and threading.current_thread() is threading.main_thread():
        try:
            _prev_signal[signal.SIGTERM] = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, _on_signal)
            _installed.add("signals")
        except (ValueError, OSError):
            pass
    if "logging" in wanted:
        # Through the log record factory, not a root handler: the app's logging stays as it was.
        # (Again at every start: the dump level is this recorder's.)
        from .integrations.logging import install_trigger

        install_trigger(level=logging.WARNING, dump_level=config.log_level)
        _installed.add("logging")
    if "faulthandler" in wanted:
        _install_faulthandler(rec)
    if "atexit" in wanted and "atexit" not in _installed:
        atexit.register(_at_exit)
        _installed.add("atexit")


def _install_faulthandler(rec: Recorder) -> None:
    """Write fatal-error tracebacks to ``<ring>.fatal``, where ``recover`` finds them (at most
    once per process, and not over a faulthandler the program enabled itself)."""
    global _fault_file
    if "faulthandler" in _installed or faulthandler.is_enabled():
        return
    try:
        path = rec.ring_path.with_suffix(".fatal")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        _fault_file = os.fdopen(fd, "w")
        faulthandler.enable(file=_fault_file, all_threads=True)
        _installed.add("faulthandler")
    except (OSError, ValueError, RuntimeError):
        pass


def forked() -> None:
    """In a forked child, before its recorder is made: stop writing fatal errors to the parent's
    ``.fatal`` file (the child's crash was written there, next to the parent's ring, and left
    there after the parent's clean exit; ``recover`` of the child's ring never saw it)."""
    global _fault_file
    if _fault_file is None or "faulthandler" not in _installed:
        return
    try:
        faulthandler.disable()
        _fault_file.close()  # (the child's copy of the descriptor: the parent's stays open)
    except (OSError, ValueError):
        pass
    _fault_file = None
    _installed.discard("faulthandler")


def rebind(rec: Recorder) -> None:
    """A forked child's recorder was made: the hooks already look up the new recorder; fatal
    errors now go to the ``.fatal`` file next to its ring."""
    if "faulthandler" in rec.config.triggers:
        _install_faulthandler(rec)


def unbind(rec: Recorder) -> None:
    """At stop: the hooks become no-ops while no recorder runs; remove an empty fatal log."""
    global _fault_file
    if _fault_file is not None and "faulthandler" in _installed:
        try:
            path = rec.ring_path.with_suffix(".fatal")
            if path.exists() and path.stat().st_size == 0:
                faulthandler.disable()
                _fault_file.close()
                _fault_file = None
                _installed.discard("faulthandler")
                path.unlink()
        except (OSError, ValueError):
            pass
