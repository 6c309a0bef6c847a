"""Entry point of the ``flightrec`` command: parse, dispatch, turn errors into one line."""

from __future__ import annotations

import argparse
import errno
import importlib
import io
import os
import sys
from collections.abc import Sequence

from ..errors import FlightrecError
from ..outputs import terminal_safe

VERBS: dict[str, str] = {
    "ls": "List live recorders (with pid, command, age, size) and dumps",
    "show": "Summarize a dump or ring file (--json streams its events)",
    "dump": "Ask a running recorder for a dump",
    "recover": "Turn ring files of dead processes into dumps",
    "scrub": "Write a copy of a dump with the current redaction rules (and fields/kinds removed)",
    "demo": "Run the bundled demo agent, recorded, then open its dump",
    "open": "Open a dump (or ring file) in the TUI",
    "attach": "Attach the TUI to a running recorder",
    "tui": "Start the TUI on a list of live recorders and dumps",
    "run": "Run a Python program (script or -m module) with the recorder and integrations on",
    "export": "Export a recording as JSON lines, OTLP (file or OTLP/HTTP endpoint) or Chrome trace JSON",
}


def build_parser() -> argparse.ArgumentParser:
    """The full parser, each verb contributed by its own module."""
    parser = argparse.ArgumentParser(prog="flightrec", description="In-process flight recorder for AI agents.")
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"flightrec {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND")
    for verb, help_text in VERBS.items():
        module = importlib.import_module(f".{verb}_cmd", __package__)
        p = sub.add_parser(verb, help=help_text, description=help_text)
        module.configure(p)
        p.set_defaults(run=module.run, verb_parser=p)
    return parser


class _ClosedOutput(io.RawIOBase):
    """Standard output of a process started with it closed (``flightrec show x >&-``, where
    Python makes ``sys.stdout`` None): every write fails as one to a closed descriptor does,
    so a verb that prints says so in one line (exit 1), as for a full disk."""

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (also used by ``python -m flightrec``)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # (parse_args would report them with the top-level usage; the command's is the useful one)
        sub = getattr(args, "verb_parser", None)
        (sub or parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "verb", None):
        parser.print_help()
        return 2
    if sys.stdout is None and args.verb != "run":  # (`run` leaves the program python's None)
        sys.stdout = io.TextIOWrapper(_ClosedOutput(), encoding="utf-8", write_through=True)  # type: ignore[arg-type]
    try:
        code = args.run(args)
        if sys.stdout is not None:
            sys.stdout.flush()  # a full disk or closed pipe shows here, not in the interpreter's exit
    except FlightrecError as exc:
        # (terminal_safe: a message may quote a file name, or a path read from a file)
        print(f"flightrec: error: {terminal_safe(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `flightrec show --json x | head`: the reader went away; that is not an error.
        try:
            sys.stdout = None  # type: ignore[assignment]
        except Exception:
            pass
        return 0
    except OSError as exc:
        # Writing the output failed (`flightrec show x > /dev/full`): one line, not a traceback.
        _discard_stdout()
        what = terminal_safe(str(exc.filename)) if exc.filename else "cannot write to standard output"
        print(f"flightrec: error: {what}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return int(code or 0)


def _discard_stdout() -> None:
    """Drop what standard output still buffers, so the exit does not fail writing it again."""
    try:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 -- replaces stdout until the exit
    except OSError:
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
