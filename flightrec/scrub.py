"""Rewriting a dump with the current redaction rules, like ``jfr scrub``.

The original file is never modified: a new dump is written with every event (and the
header's argv, cwd, environment and exception) passed through a fresh redactor, and
optionally without some kinds or fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from .dump import frame_events, write_dump
from .errors import DumpFailed, UsageError
from .event import Event
from .outputs import check_output
from .reader import open_recording
from .redact import BUILTIN_RULES, RedactConfig, Redactor

BLOCK_RAW = 64 * 1024


def _scrub_meta(meta: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    out = dict(meta)
    for key in ("argv", "cwd", "env", "exception", "fatal_error", "trigger"):
        if key in out:
            out[key] = redactor.redact(out[key])
    return out


def check_rules(config: RedactConfig) -> None:
    """Refuse rule names the redactor does not know, naming the known ones.

    Raises:
        UsageError: ``config.rules`` or ``config.disabled_rules`` names an unknown rule.
    """
    extra = {name for name, _ in config.extra_patterns}
    unknown = (set(config.rules or ()) | set(config.disabled_rules)) - set(BUILTIN_RULES) - extra
    if unknown:
        raise UsageError(f"unknown redaction rule(s) {', '.join(sorted(unknown))}; known: {', '.join(BUILTIN_RULES)}")


def scrubbed(
    src: str | Path,
    config: RedactConfig | None = None,
    drop_kinds: Iterable[str] = (),
    drop_fields: Iterable[str] = (),
) -> tuple[dict[str, Any], list[bytes], dict[str, int]]:
    """The scrubbed copy of the recording ``src``, not yet written: header, blocks, summary.

    Raises:
        UsageError: an unknown redaction rule.
        FlightrecError: a subclass of it if ``src`` cannot be read.
    """
    src_p = Path(src)
    config = config or RedactConfig()
    check_rules(config)
    redactor = Redactor(config)
    kinds = frozenset(drop_kinds)
    fields = frozenset(drop_fields)
    enc = msgspec.msgpack.Encoder()
    blocks: list[bytes] = []
    kept = dropped = 0
    with open_recording(src_p) as rec:
        meta = _scrub_meta(rec.meta, redactor)
        raws: list[bytes] = []
        evs: list[Event] = []
        size = 0
        block_seq = 1
        for ev in rec.events():
            if ev.kind in kinds:
                dropped += 1
                continue
            data = {k: v for k, v in ev.data.items() if k not in fields} if fields else ev.data
            clean = redactor.redact(data)
            new = Event(
                ev.seq,
                ev.ts_ns,
                ev.kind,
                ev.thread,
                ev.span,
                ev.parent,
                clean if isinstance(clean, dict) else {"value": clean},
            )
            raw = enc.encode(tuple(new))
            raws.append(raw)
            evs.append(new)
            size += len(raw)
            kept += 1
            if size >= BLOCK_RAW:
                blocks.append(frame_events(b"".join(raws), evs, block_seq))
                block_seq += 1
                raws, evs, size = [], [], 0
        if evs:
            blocks.append(frame_events(b"".join(raws), evs, block_seq))
    replaced = sum(redactor.stats().values())
    meta["scrubbed"] = {
        "from": src_p.name,
        "rules": redactor.rules(),
        "replaced": redactor.stats(),
        "dropped_kinds": sorted(kinds),
        "dropped_fields": sorted(fields),
    }
    return meta, blocks, {"kept": kept, "dropped": dropped, "replaced": replaced}


def scrub(
    src: str | Path,
    dst: str | Path,
    config: RedactConfig | None = None,
    drop_kinds: Iterable[str] = (),
    drop_fields: Iterable[str] = (),
    *,
    overwrite: bool = True,
) -> tuple[Path, dict[str, int]]:
    """Write a scrubbed copy of the recording ``src`` to ``dst``.

    Args:
        src: a dump or ring file.
        dst: the new dump's path: not ``src`` (under any name), not a directory, not a
            device; its directory must exist (it is not created).
        config: redaction settings (default: every built-in rule).
        drop_kinds: event kinds left out entirely.
        drop_fields: data fields removed from every event (top-level keys).
        overwrite: replace ``dst`` if it exists (once the new dump is complete); if False,
            write ``<stem>-2.frec`` (-3...) next to it instead.

    Returns:
        The new dump's path and a summary: events kept, events dropped, values replaced.

    Raises:
        DumpFailed: ``dst`` is unusable (see above) or cannot be written (disk full).
        UsageError: an unknown redaction rule.
    """
    target = check_output(dst, src, DumpFailed, special_ok=False)
    meta, blocks, summary = scrubbed(src, config, drop_kinds, drop_fields)
    out = write_dump(target.parent, target.name, meta, blocks, require_private=False, overwrite=overwrite)
    return out, summary
