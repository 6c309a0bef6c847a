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
import importlib.util
import os
import runpy
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType

from .. import api, triggers
from ..config import parse_bool, parse_size
from ..errors import ConfigError, RecordingNotFound, UsageError
from ..outputs import display_path
from ..paths import check_private_dir
from ..recorder import Recorder


class ProgramNotFound(RecordingNotFound):
    """The script or module to run does not exist (exit code 5, like any "not found")."""


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
    """(script path, module name, the program's argv).

    Raises:
        UsageError: nothing to run, or a module name ``python -m`` would refuse (relative, empty).
        ProgramNotFound: the script does not exist (a module is looked for on its sys.path).
    """
    if args.module is not None:
        if not args.module:
            raise UsageError("-m needs a module name")
        module = args.module[0]
        if not module or module.startswith("."):
            raise UsageError(f"-m {module!r}: not an absolute module name (relative names are not supported)")
        return None, module, [module, *args.module[1:]]
    program = list(args.program or [])
    if program and program[0] == "--":
        program = program[1:]
    if not program:
        raise UsageError("nothing to run: give a script (flightrec run agent.py ...) or -m MODULE")
    script = program[0]
    _check_script(script)
    return script, None, program


def _check_script(script: str) -> None:
    """Raise ProgramNotFound unless ``script`` is something ``python script`` would run."""
    path = Path(script)
    if not path.exists():
        raise ProgramNotFound(f"{script}: no such file")
    if path.is_dir() and not any((path / name).is_file() for name in ("__main__.py", "__main__.pyc")):
        raise ProgramNotFound(f"{script}: a directory without a __main__.py")


def _check_top_level(name: str) -> None:
    """Raise ProgramNotFound if the first part of a module name cannot be found.

    Looking a top-level name up runs none of the program's code, so this is done before the
    recorder starts: a mistyped module leaves no ring and no dump behind, whatever the
    configuration. Deeper parts are looked for by :func:`find_module`, recorded.
    """
    top = name.partition(".")[0]
    try:
        missing = importlib.util.find_spec(top) is None
    except (ImportError, ValueError):
        return  # left to find_module and runpy, which report it in context
    if missing:
        raise ProgramNotFound(f"-m {name}: no module named {top!r}")


def find_module(name: str) -> None:
    """Raise ProgramNotFound unless ``python -m name`` would find something to run.

    As ``python -m`` (runpy) does, this first imports the parent package of a dotted name,
    and the package itself when ``name`` is one (to find its ``__main__``): an error raised
    while importing them is the program's own and propagates, as does one raised later by
    the module itself; only a name that leads nowhere is "not found".
    """
    parent = name.rpartition(".")[0]
    if parent:
        try:
            __import__(parent)
        except ImportError as exc:
            if exc.name is None or not (parent == exc.name or parent.startswith(exc.name + ".")):
                raise  # the package imports something missing: that is the program's own crash
    hint = f"; to run the file, drop the .py: -m {name[:-3]}" if name.endswith(".py") else ""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        raise ProgramNotFound(f"-m {name}: cannot find it ({type(exc).__name__}: {exc}){hint}") from None
    if spec is None:
        raise ProgramNotFound(f"-m {name}: no module named {name!r}{hint}")
    if spec.submodule_search_locations is not None:
        if name == "__main__" or name.endswith(".__main__"):
            raise ProgramNotFound(f"-m {name}: a package cannot be run as __main__")
        try:
            find_module(name + ".__main__")
        except ProgramNotFound:
            raise ProgramNotFound(f"-m {name}: a package without a __main__ module") from None
    elif spec.loader is None:
        raise ProgramNotFound(f"-m {name}: a namespace package, nothing to run")


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
        if args.dir == "":  # (start(dir="") would record into the default directory, unsaid)
            raise UsageError("--dir: empty path")
        if args.dir is not None and os.path.exists(args.dir) and not os.path.isdir(args.dir):
            # Asked for on the command line: not the silent fallback of a FLIGHTREC_DIR the
            # recorder cannot use, which would leave the dump where the user does not look.
            raise UsageError(f"--dir {args.dir}: not a directory")
        if args.dir is not None and os.path.isdir(os.path.expanduser(args.dir)):
            # Nor one it would refuse (writable by others, not ours, a symlink): the program
            # would run recorded elsewhere and its dumps fail; refused as `demo --dir` does (8).
            check_private_dir(Path(args.dir).expanduser())
        if args.size is not None:
            parse_size(args.size, "--size")  # refused as the flag the user wrote (start() says "size")
        if module is not None:
            _check_top_level(module)  # on the program's sys.path, before any ring exists
        try:
            rec = api.start(size=args.size, dir=args.dir, redact=False if args.no_redact else None)
        except ConfigError as exc:
            if args.size is not None and str(exc).startswith("size: "):  # (the flag the user wrote)
                raise ConfigError(f"--size: {str(exc).removeprefix('size: ')}") from None
            raise
    except BaseException:
        sys.argv = saved_argv
        if saved_path0 is not None and sys.path:
            sys.path[0] = saved_path0
        raise
    if rec is None and parse_bool(os.environ.get("FLIGHTREC_DISABLE", "0"), "FLIGHTREC_DISABLE"):
        # (asked for a recorded run: say once that it is not, rather than run silently unrecorded)
        print("flightrec: FLIGHTREC_DISABLE is set: running the program unrecorded", file=sys.stderr)
    if not args.no_integrations and rec is not None:
        try:
            from ..integrations.auto import enable_all

            enable_all()
        except Exception as exc:
            print(f"flightrec: integrations not enabled: {exc}", file=sys.stderr)
    triggers.on_fatal_dump = _say_where  # a fatal signal ends the process before the finally
    pid = os.getpid()
    try:
        code = _run_program(script, module)
        _join_threads()
    finally:
        triggers.on_fatal_dump = None
        if os.getpid() != pid:
            # A child the program forked, ending in the program's code: `rec` is its parent's
            # recorder (whose dumps the parent reports); the child's own, if it recorded, is
            # the one made after the fork. (A _Deferred child never recorded: nothing to say.)
            current = api._recorder
            rec = current if isinstance(current, Recorder) else None
        dumps = list(rec.dumps) if rec is not None else []
        api.stop()
        if rec is not None:
            dumps += [d for d in rec.dumps if d not in dumps]
        for path in dumps:
            _say_where(path)
        sys.argv = saved_argv
        if saved_path0 is not None and sys.path:
            sys.path[0] = saved_path0
    return code


def _say_where(path: Path) -> None:
    print(f"flightrec: dump written to {display_path(path)}", file=sys.stderr, flush=True)


def _run_program(script: str | None, module: str | None) -> int:
    """Run the program; return its exit code. ProgramNotFound (no such module) propagates."""
    try:
        if module is not None:
            find_module(module)
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            assert script is not None
            runpy.run_path(script, run_name="__main__")
    except ProgramNotFound:
        raise
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
