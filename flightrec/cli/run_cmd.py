"""``flightrec run [options] script.py args...`` / ``flightrec run -m module args...``.

Runs a Python program in this process (like ``python script.py`` / ``python -m module``,
and like ``memray run``) with the recorder started, every dump trigger installed and
every importable integration enabled, so an agent is recorded without a code change. The
program sees the ``sys.argv`` and ``sys.path[0]`` it would have seen under ``python``;
its exit code is passed through (1 after an uncaught exception, which the excepthook has
dumped); where each dump went is printed on stderr.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType

from .. import api
from ..errors import FlightrecError


class ProgramNotFound(FlightrecError):
    """The script to run does not exist, or no program was given."""

    exit_code = 2


def configure(p: argparse.ArgumentParser) -> None:
    """Add the verb's arguments."""
    p.add_argument("--size", help="ring size, e.g. 64MiB (default: FLIGHTREC_SIZE, else 64MiB)")
    p.add_argument("--dir", help="directory for the ring and dumps (default: FLIGHTREC_DIR, else per-user)")
    p.add_argument("--no-redact", action="store_true", help="store values unredacted (default: redaction on)")
    p.add_argument(
        "--no-integrations", action="store_true", help="don't enable the OpenTelemetry/LangChain/Agents integrations"
    )
    p.add_argument(
        "-m",
        dest="module",
        nargs=argparse.REMAINDER,
        metavar="MODULE",
        help="run a library module as a script, like python -m (the rest of the line is its arguments)",
    )
    p.add_argument("program", nargs=argparse.REMAINDER, help="the script to run, then its arguments")


def _program(args: argparse.Namespace) -> tuple[str | None, str | None, list[str]]:
    """(script path, module name, the program's argv)."""
    if args.module:
        return None, args.module[0], [args.module[0], *args.module[1:]]
    program = list(args.program or [])
    if program and program[0] == "--":
        program = program[1:]
    if not program:
        raise ProgramNotFound("nothing to run: give a script (flightrec run agent.py ...) or -m MODULE")
    script = program[0]
    if not Path(script).exists():
        raise ProgramNotFound(f"{script}: no such file")
    return script, None, program


def _trim(tb: TracebackType | None) -> TracebackType | None:
    """Drop this module's and runpy's frames from the head of a traceback."""
    skip = {os.path.abspath(__file__), os.path.abspath(runpy.__file__), "<frozen runpy>"}
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename not in skip and os.path.abspath(filename) not in skip:
            break
        tb = tb.tb_next
    return tb


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _join_threads() -> None:
    """Wait for the program's non-daemon threads, as the interpreter would at exit."""
    current = threading.current_thread()
    for t in threading.enumerate():
        if t is not current and not t.daemon and t.is_alive():
            try:
                t.join()
            except Exception:
                pass


def run(args: argparse.Namespace) -> int:
    """Run the program recorded; return its exit code."""
    script, module, argv = _program(args)
    saved_argv, saved_path0 = list(sys.argv), sys.path[0] if sys.path else None
    # Set before start(): the ring header (what `flightrec ls` shows) names the program.
    sys.argv = list(argv)
    if sys.path:
        sys.path[0] = os.path.dirname(os.path.abspath(script)) if script is not None else os.getcwd()
    try:
        rec = api.start(size=args.size, dir=args.dir, redact=False if args.no_redact else None)
    except BaseException:
        sys.argv = saved_argv
        raise
    if not args.no_integrations and rec is not None:
        try:
            from ..integrations.auto import enable_all

            enable_all()
        except Exception as exc:
            print(f"flightrec: integrations not enabled: {exc}", file=sys.stderr)
    code = _run_program(script, module)
    _join_threads()
    dumps = list(rec.dumps) if rec is not None else []
    api.stop()
    if rec is not None:
        dumps += [d for d in rec.dumps if d not in dumps]
    for path in dumps:
        print(f"flightrec: dump written to {path}", file=sys.stderr)
    sys.argv = saved_argv
    if saved_path0 is not None and sys.path:
        sys.path[0] = saved_path0
    return code


def _run_program(script: str | None, module: str | None) -> int:
    try:
        if module is not None:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            assert script is not None
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        return _exit_code(exc)
    except KeyboardInterrupt as exc:
        _report(exc)
        return 130
    except BaseException as exc:
        _report(exc)
        return 1
    finally:
        try:
            sys.stdout.flush()
        except Exception:
            pass
    return 0


def _report(exc: BaseException) -> None:
    """Hand an uncaught exception to sys.excepthook, as the interpreter would (it dumps)."""
    tb = _trim(exc.__traceback__)
    try:
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
    except Exception:
        traceback.print_exception(type(exc), exc, tb)
