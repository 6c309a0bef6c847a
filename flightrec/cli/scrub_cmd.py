"""``flightrec scrub FILE``: write a copy of a dump with the current redaction rules applied."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..redact import RedactConfig
from ..scrub import scrub


def configure(p: argparse.ArgumentParser) -> None:
    """Add the verb's arguments."""
    p.add_argument("file", help="the dump (or ring file) to scrub; it is not modified")
    p.add_argument("-o", "--out", help="output path (default: FILE with .scrubbed.frec)")
    p.add_argument("--drop-kind", action="append", default=[], metavar="KIND", help="leave out events of KIND")
    p.add_argument(
        "--drop-field", action="append", default=[], metavar="FIELD", help="remove FIELD from every event's data"
    )
    p.add_argument("--rules", help="comma-separated built-in rules to run (default: all)")
    p.add_argument("--key", action="append", default=[], metavar="NAME", help="extra secret key name")


def run(args: argparse.Namespace) -> int:
    """Scrub and print what was done."""
    src = Path(args.file)
    out = Path(args.out) if args.out else src.with_name(src.name.removesuffix(".frec") + ".scrubbed.frec")
    rules = frozenset(r.strip() for r in args.rules.split(",") if r.strip()) if args.rules else None
    config = RedactConfig(rules=rules, extra_keys=tuple(args.key))
    path, summary = scrub(src, out, config, args.drop_kind, args.drop_field)
    print(
        f"scrubbed {src} -> {path}: {summary['kept']} events kept, {summary['dropped']} dropped, "
        f"{summary['replaced']} values redacted"
    )
    return 0
