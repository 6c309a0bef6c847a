"""``flightrec export FILE --format jsonl|otlp|chrome [-o OUT] [--endpoint URL]``.

* ``jsonl``: one event per line (stdout, or ``-o``);
* ``chrome``: Trace Event JSON for Perfetto UI / ``chrome://tracing`` (stdout, or ``-o``);
* ``otlp``: OpenTelemetry spans with GenAI attributes: ``--endpoint URL`` POSTs them to an
  OTLP/HTTP collector; ``-o FILE`` writes OTLP/JSON lines (``.pb``/``.bin``: protobuf);
  neither writes OTLP/JSON to stdout.

``-o FILE`` replaces FILE once the export is complete (a failed export leaves no partial
file); it may be a device or FIFO, never the input itself; ``-o -`` is standard output.
Flags that would be ignored are refused: ``--endpoint`` with ``-o`` or another format,
``--header``/``--timeout`` without ``--endpoint``.

A progress bar is shown on stderr when it is a terminal, never when piped, nor when the export
itself goes to the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from .. import export
from ..errors import UsageError
from ..outputs import check_output, display_path
from ..reader import Recording, open_recording
from .dump_cmd import positive_seconds

FORMATS = ("jsonl", "otlp", "chrome")


def configure(p: argparse.ArgumentParser) -> None:
    """Add the verb's arguments."""
    p.add_argument("file", help="a .frec dump or a ring file")
    p.add_argument("--format", "-f", choices=FORMATS, default="jsonl", help="output format (default: jsonl)")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument(
        "--endpoint",
        help="with --format otlp: POST to this OTLP/HTTP collector, e.g. http://localhost:4318 (/v1/traces added)",
    )
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --endpoint: an extra HTTP header (repeatable)",
    )
    p.add_argument("--timeout", type=positive_seconds, help="with --endpoint: seconds per request (default 10)")


@contextlib.contextmanager
def _progress(total: int, label: str, to_stdout: bool = False) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on a terminal; nothing when stderr is piped or rich is missing, nor
    when the export itself goes to the terminal (``to_stdout``, standard output a terminal):
    the bar's live display would take over standard output and re-wrap every JSON line at the
    terminal's width, line breaks added and blanks lost, so what is copied from it is not JSON."""
    if not sys.stderr.isatty() or (to_stdout and _stdout_is_a_terminal()):
        yield None
        return
    try:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    except ImportError:
        yield None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        task = bar.add_task(label, total=total or None)
        yield lambda n: bar.advance(task, n)


def _stdout_is_a_terminal() -> bool:
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except (OSError, ValueError):  # (closed)
        return False


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    """Standard output (``path`` None), or the file, written through :func:`export.output_file`."""
    if path is not None:
        with export.output_file(path) as f:
            yield f
        return
    try:
        yield sys.stdout
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        _discard_stdout()
        raise export.ExportFailed(f"cannot write to standard output: {exc.strerror or exc}") from None


def _discard_stdout() -> None:
    """Drop what standard output still buffers, so the exit does not fail writing it again."""
    try:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 -- replaces stdout until the exit
    except OSError:
        pass


def _headers(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--header {item!r}: expected KEY=VALUE")
        if any(c in item for c in "\r\n\0"):  # (the HTTP library refuses it only at the first request)
            raise UsageError(f"--header {item!r}: a header cannot hold a line break or NUL")
        out[key.strip()] = value.strip()
    return out


def check_flags(args: argparse.Namespace) -> None:
    """Refuse flags that conflict or would be ignored.

    Raises:
        UsageError: ``--endpoint`` with another format than otlp or with ``-o``, or not an
            http(s) URL with a host (and a port from 0 to 65535, if any); a ``--header`` with a line break;
            ``--header`` or ``--timeout`` without ``--endpoint``.
    """
    if args.endpoint is not None:
        if args.format != "otlp":
            raise UsageError("--endpoint needs --format otlp")
        if args.output is not None:
            raise UsageError("--endpoint sends to a collector and -o writes a file: give one of them")
        # (A bare host:port is taken as http://.) Anything else would only fail at the first
        # request, as an export that failed (9) with the HTTP library's words for it.
        try:
            url = urllib.parse.urlsplit(export.otlp_endpoint(args.endpoint))
            url.port  # noqa: B018 -- raises for a port that is not a number from 0 to 65535
        except ValueError as exc:  # (`http://[::1`, `host:99999`, `host:abc`)
            raise UsageError(f"--endpoint {args.endpoint!r}: not a valid URL ({exc})") from None
        if url.scheme.lower() not in ("http", "https"):
            raise UsageError(f"--endpoint {args.endpoint}: not an http:// or https:// URL")
        if not url.hostname:
            raise UsageError(f"--endpoint {args.endpoint!r}: no host to send to")
        return
    if args.header:
        raise UsageError("--header needs --endpoint (HTTP headers are only sent to a collector)")
    if args.timeout is not None:
        raise UsageError("--timeout needs --endpoint")


def run(args: argparse.Namespace) -> int:
    """Export the recording."""
    check_flags(args)
    headers = _headers(args.header)
    rec = open_recording(args.file)
    try:
        target = None
        if args.output is not None and args.output != "-":
            target = check_output(args.output, args.file, export.ExportFailed, special_ok=True)
        summary = _export(rec, args, target, headers)
        if target is not None or args.endpoint:
            where = "" if args.endpoint else f" to {display_path(args.output)}"
            print(f"flightrec: exported {summary}{where}", file=sys.stderr)
    finally:
        rec.close()
    return 0


def _export(rec: Recording, args: argparse.Namespace, target: Path | None, headers: dict[str, str]) -> str:
    """Write (or send) the export; returns what was exported, e.g. ``"120 events"``."""
    total = rec.event_count
    fmt = args.format
    if fmt == "jsonl":
        with _progress(total, "events", to_stdout=target is None) as advance, _output(target) as out:
            return f"{export.write_jsonl(rec, out, advance)} events"
    if fmt == "chrome":
        with _progress(total, "events", to_stdout=target is None) as advance, _output(target) as out:
            return f"{export.write_chrome(rec, out, advance)} trace events"
    if args.endpoint:
        with _progress(total, "events") as advance:
            spans = len(export.otlp_spans(rec, advance))
        timeout = 10.0 if args.timeout is None else args.timeout
        with _progress(spans, "spans") as advance:
            sent = export.send_otlp(rec, args.endpoint, timeout=timeout, headers=headers, progress=advance)
        return f"{sent} spans sent to {export.otlp_endpoint(args.endpoint)}"
    if target is not None:
        with _progress(total, "events") as advance:
            return f"{export.write_otlp(rec, target, advance)} spans"
    with _output(None) as out:
        return f"{export.write_otlp(rec, out)} spans"
