"""``flightrec scrub FILE``: write a copy of a dump with the current redaction rules applied."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..dump import build_dump
from ..errors import DumpFailed, UsageError
from ..outputs import display_path
from ..reader import open_recording
from ..redact import RedactConfig
from ..scrub import check_rules, scrub, scrubbed


def configure(p: argparse.ArgumentParser) -> None:
    """Add the verb's arguments."""
    p.add_argument("file", help="the dump (or ring file) to scrub; it is not modified")
    p.add_argument(
        "-o",
        "--out",
        help="output path, replaced if it exists; - for standard output "
        "(default: FILE with .scrubbed.frec, never replacing a file)",
    )
    p.add_argument("--drop-kind", action="append", default=[], metavar="KIND", help="leave out events of KIND")
    p.add_argument(
        "--drop-field", action="append", default=[], metavar="FIELD", help="remove FIELD from every event's data"
    )
    p.add_argument("--rules", help="comma-separated built-in rules to run (default: all)")
    p.add_argument("--key", action="append", default=[], metavar="NAME", help="extra secret key name")


def _to_stdout(args: argparse.Namespace, config: RedactConfig) -> dict[str, int]:
    """Write the scrubbed dump to standard output (never to a terminal)."""
    if sys.stdout.isatty():
        raise UsageError("-o - writes a binary dump to standard output: redirect it, or give -o FILE")
    meta, blocks, summary = scrubbed(args.file, config, args.drop_kind, args.drop_field)
    head, tail = build_dump(meta, blocks)
    out = sys.stdout.buffer
    try:
        out.write(head)
        for part in (*blocks, *tail):
            out.write(part)
        out.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise DumpFailed(f"cannot write to standard output: {exc.strerror or exc}") from None
    return summary


def run(args: argparse.Namespace) -> int:
    """Scrub and print what was done."""
    src = Path(args.file)
    if src.name in ("", ".."):  # ('', '.', '/', '..': no file name to derive FILE.scrubbed.frec from)
        open_recording(args.file).close()  # raises what is wrong: an empty path, a directory
        raise UsageError(f"{args.file}: not a file")
    rules = frozenset(r.strip() for r in args.rules.split(",") if r.strip()) if args.rules is not None else None
    if rules is not None and not rules:
        # (`--rules ' '` ran no rule at all, `--rules ''` every rule: a scrub that redacts
        # nothing must not come from an empty $RULES)
        raise UsageError(f"--rules {args.rules!r}: names no rule (leave --rules out to run every rule)")
    config = RedactConfig(rules=rules, extra_keys=tuple(args.key))
    check_rules(config)
    if args.out == "-":
        summary = _to_stdout(args, config)
        where, stream = "standard output", sys.stderr
    else:
        explicit = args.out is not None
        dst = args.out if explicit else src.with_name(src.name.removesuffix(".frec") + ".scrubbed.frec")
        path, summary = scrub(src, dst, config, args.drop_kind, args.drop_field, overwrite=explicit)
        where, stream = display_path(path), sys.stdout
    print(
        f"scrubbed {display_path(src)} -> {where}: {summary['kept']} events kept, {summary['dropped']} dropped, "
        f"{summary['replaced']} values redacted",
        file=stream,
    )
    return 0
