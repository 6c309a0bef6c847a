"""``flightrec show FILE``: a summary of a recording, or its events as JSON lines."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..export import event_json
from ..outputs import display_path, terminal_safe
from ..reader import Recording, open_recording
from ..redact import describe_header


def configure(p: argparse.ArgumentParser) -> None:
    """Add the verb's arguments."""
    p.add_argument("file", help="a .frec dump or a ring file")
    p.add_argument("--json", action="store_true", help="stream every event as one JSON object per line")
    p.add_argument(
        "--kind", action="append", help="only events of this kind (repeatable): the events streamed, or counted"
    )


def fmt_ts(ns: object) -> str:
    """Wall-clock time of a ns timestamp, with milliseconds ("?" if there is none)."""
    if type(ns) is not int or ns <= 0:
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9)) + f".{(ns // 1_000_000) % 1000:03d}"


def trigger_time(meta: dict[str, Any]) -> int | None:
    """When the dump was written: ``dump_ns``, or for a recovered ring the recovery time."""
    trig = meta.get("trigger") or {}
    for ns in (meta.get("dump_ns"), trig.get("recovered_ns")):
        if type(ns) is int and ns > 0:
            return ns
    return None


def damage_line(rec: Recording) -> str | None:
    """What was found damaged, or None if nothing was."""
    if not (rec.damaged or rec.warnings):
        return None
    skipped = [f"{rec.damaged} damaged block(s) skipped"] if rec.damaged else []  # (not "0 ... skipped")
    return "; ".join([*skipped, *rec.warnings])


def overwritten_line(rec: Recording) -> str | None:
    """Blocks of a live ring that its writer overwrote while they were being read, or None."""
    if not rec.overwritten:
        return None
    return f"{rec.overwritten} block(s) overwritten by the running process while being read (the ring wrapped)"


def summary(rec: Recording, kinds: Sequence[str] | None = None) -> str:
    """The human summary printed by ``show``; with ``kinds``, events counted only of those kinds.

    Text taken from the recording is shown with its control characters escaped (see
    :func:`~flightrec.outputs.terminal_safe`): printing a file must not drive the terminal.
    """
    meta = rec.meta
    lines: list[str] = []
    trig = meta.get("trigger") or {}
    lines.append(f"{display_path(rec.path)}  ({rec.kind})")
    lines.append(
        f"  process   pid {meta.get('pid', '?')} on {meta.get('host', '?')}, "
        f"python {meta.get('python', '?')}, flightrec {meta.get('flightrec_version', '?')}"
    )
    argv = meta.get("argv")
    if argv:
        lines.append(f"  command   {' '.join(str(a) for a in argv)[:200]}")
    if trig:
        lines.append(f"  trigger   {trig.get('reason', '?')} at {fmt_ts(trigger_time(meta))}")
    counts: Counter[str] = Counter()
    first = last = None
    n = 0
    for ev in rec.events(kinds):
        counts[ev.kind] += 1
        if first is None:
            first = ev.ts_ns
        last = ev.ts_ns
        n += 1
    span = f"{(last - first) / 1e9:.3f}s" if first is not None and last is not None else "-"
    only = f" of kind {', '.join(kinds)}" if kinds else ""
    lines.append(f"  events    {n}{only} from {fmt_ts(first)} to {fmt_ts(last)} ({span})")
    c = meta.get("counters") or {}
    if c:
        lines.append(
            f"  counters  recorded {c.get('recorded', '?')}, dropped {c.get('dropped', 0)}, "
            f"recorder errors {c.get('errors', 0)}, degraded {c.get('degraded', 0)}"
        )
    if counts:
        lines.append("  by kind   " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    redaction = describe_header(meta.get("redaction"))
    if redaction is not None:
        lines.append(f"  redaction {redaction}")
    damage = damage_line(rec)
    if damage is not None:
        lines.append(f"  damage    {damage}")
    gone = overwritten_line(rec)
    if gone is not None:
        lines.append(f"  wrapped   {gone}")
    exc = meta.get("exception")
    if exc:
        lines.append(f"  error     {exc.get('type', '?')}: {exc.get('message', '')}")
        tb = str(exc.get("traceback", "")).rstrip().splitlines()
        for line in tb[-12:]:
            lines.append(f"            {line}")
    fatal = meta.get("fatal_error")
    if fatal:
        head, *stack = fatal_lines(str(fatal))
        lines.append(f"  fatal     {head}")
        lines.extend(f"            {line}" for line in stack)
    findings = _findings(rec)
    if findings:
        lines.append("  findings")
        for f in findings:
            lines.append(f"    - {f}")
    return "\n".join(terminal_safe(line) for line in lines)


def fatal_lines(log: str, most: int = 12) -> list[str]:
    """A faulthandler log (a recovered ring's ``fatal_error``) cut to what says where it died.

    Its first line names the error (``Fatal Python error: Segmentation fault``); the thread
    that crashed is the block headed ``Current thread``, the others only wait. Returns the
    first line, then that block (or, with none, the log's last lines), at most ``most`` lines.
    """
    lines = log.strip().splitlines() or ["?"]
    start = next((i for i, line in enumerate(lines) if line.startswith("Current thread")), None)
    if start is None:
        return [lines[0], *lines[1:][-most:]]
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return [lines[0], *lines[start:end][:most]]


def _findings(rec: Recording) -> list[str]:
    finder = getattr(rec, "findings", None)
    if finder is None:
        return []
    try:
        return [str(f) for f in finder()]
    except Exception as exc:  # analysis must never hide the summary
        return [f"(findings unavailable: {type(exc).__name__})"]


def run(args: argparse.Namespace) -> int:
    """Print the summary or stream JSON lines."""
    rec = open_recording(args.file)
    try:
        if args.json:
            out = sys.stdout
            for ev in rec.events(args.kind):
                out.write(event_json(ev))
                out.write("\n")
            out.flush()
        else:
            print(summary(rec, args.kind))
    finally:
        rec.close()
    return 0
