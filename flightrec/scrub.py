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
from .event import Event
from .reader import open_recording
from .redact import RedactConfig, Redactor

BLOCK_RAW = 64 * 1024


def _scrub_meta(meta: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    out = dict(meta)
    for key in ("argv", "cwd", "env", "exception", "fatal_error", "trigger"):
        if key in out:
            out[key] = redactor.redact(out[key])
    return out


def scrub(
    src: str | Path,
    dst: str | Path,
    config: RedactConfig | None = None,
    drop_kinds: Iterable[str] = (),
    drop_fields: Iterable[str] = (),
) -> tuple[Path, dict[str, int]]:
    """Write a scrubbed copy of the recording ``src`` to ``dst``.

    Args:
        src: a dump or ring file.
        dst: the new dump's path (must differ from ``src``).
        config: redaction settings (default: every built-in rule).
        drop_kinds: event kinds left out entirely.
        drop_fields: data fields removed from every event (top-level keys).

    Returns:
        The new dump's path and a summary: events kept, events dropped, values replaced.
    """
    src_p, dst_p = Path(src), Path(dst)
    from .errors import FlightrecError

    if src_p.resolve() == dst_p.resolve():
        raise FlightrecError("scrub writes a new file: give an output path different from the input")
    redactor = Redactor(config or RedactConfig())
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
    dst_p.parent.mkdir(parents=True, exist_ok=True)
    out = write_dump(dst_p.parent if str(dst_p.parent) else Path("."), dst_p.name, meta, blocks, require_private=False)
    return out, {"kept": kept, "dropped": dropped, "replaced": replaced}
