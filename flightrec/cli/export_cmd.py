"""``flightrec export FILE --format jsonl|otlp|chrome [-o OUT] [--endpoint URL]``.

* ``jsonl``: one event per line (stdout, or ``-o``);
* ``chrome``: Trace Event JSON for Perfetto UI / ``chrome://tracing`` (stdout, or ``-o``);
* ``otlp``: OpenTelemetry spans with GenAI attributes: ``--endpoint URL`` POSTs them to an
  OTLP/HTTP collector; ``-o FILE`` writes OTLP/JSON lines (``.pb``/``.bin``: protobuf);
  neither writes OTLP/JSON to stdout.

A progress bar is shown on stderr when it is a terminal, never when piped.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .. import export
from ..reader import open_recording

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
    p.add_argument("--timeout", type=float, default=10.0, help="with --endpoint: seconds per request (default 10)")


@contextlib.contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on a terminal; nothing when stderr is piped or rich is missing."""
    if not sys.stderr.isatty():
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


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    if path is None or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    with export.open_output(path) as f:
        yield f


def _headers(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise export.ExportFailed(f"--header {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def run(args: argparse.Namespace) -> int:
    """Export the recording."""
    if args.endpoint and args.format != "otlp":
        raise export.ExportFailed("--endpoint needs --format otlp")
    rec = open_recording(args.file)
    try:
        total = rec.event_count
        fmt = args.format
        summary: Any
        if fmt == "jsonl":
            with _progress(total, "events") as advance, _output(args.output) as out:
                summary = f"{export.write_jsonl(rec, out, advance)} events"
        elif fmt == "chrome":
            with _progress(total, "events") as advance, _output(args.output) as out:
                summary = f"{export.write_chrome(rec, out, advance)} trace events"
        elif args.endpoint:
            headers = _headers(args.header)
            with _progress(total, "events") as advance:
                spans = len(export.otlp_spans(rec, advance))
            with _progress(spans, "spans") as advance:
                sent = export.send_otlp(rec, args.endpoint, timeout=args.timeout, headers=headers, progress=advance)
            summary = f"{sent} spans sent to {export.otlp_endpoint(args.endpoint)}"
        elif args.output and args.output != "-":
            with _progress(total, "events") as advance:
                summary = f"{export.write_otlp(rec, Path(args.output), advance)} spans"
        else:
            summary = f"{export.write_otlp(rec, sys.stdout)} spans"
            sys.stdout.flush()
        if (args.output and args.output != "-") or args.endpoint:
            where = "" if args.endpoint else f" to {args.output}"
            print(f"flightrec: exported {summary}{where}", file=sys.stderr)
    finally:
        rec.close()
    return 0
