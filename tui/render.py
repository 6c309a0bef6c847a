"""How events look: one-line summaries, colours by kind, redaction markers, times.

Pure functions over :class:`~flightrec.event.Event` values: the timeline, the detail view and
the tests share them.
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

from rich.style import Style
from rich.text import Text

from flightrec.event import Event
from flightrec.outputs import TERMINAL_ESCAPES

REDACTION = re.compile(r"<[A-Z][A-Z0-9_]*:[0-9a-f]{6}>")
"""A redaction marker such as ``<EMAIL:3f9a2c>`` (kind + 6 hex of a keyed hash)."""

KIND_STYLES: dict[str, str] = {
    "note": "white",
    "step_start": "bold cyan",
    "step_end": "cyan",
    "tool_call": "bold yellow",
    "tool_result": "yellow",
    "llm": "bold magenta",
    "memory": "green",
    "context": "dark_green",
    "checkpoint": "bold blue",
    "chunk": "grey42",
    "resource": "grey58",
    "error": "bold white on dark_red",
    "log": "white",
    "signal": "bold red",
}
REDACTION_STYLE = Style(color="black", bgcolor="orchid", bold=True)
ERROR_STYLE = Style(color="bright_red", bold=True)
MATCH_STYLE = Style(color="black", bgcolor="yellow")


def kind_style(kind: str) -> str:
    """The style of a kind's label."""
    return KIND_STYLES.get(kind, "white")


def is_error(ev: Event) -> bool:
    """True for events a person hunting a failure wants to stop at."""
    kind = ev.kind
    data = ev.data
    if kind in ("error", "signal"):
        return True
    if kind in ("tool_result", "step_end", "llm"):
        return bool(data.get("error"))
    if kind == "log":
        return str(data.get("level", "")).upper() in ("ERROR", "CRITICAL", "FATAL")
    return False


_CLOCK: dict[int, str] = {}


def clock(ts_ns: int) -> str:
    """``HH:MM:SS.mmm`` in local time."""
    secs, ns = divmod(ts_ns, 1_000_000_000)
    hms = _CLOCK.get(secs)
    if hms is None:
        if len(_CLOCK) > 4096:
            _CLOCK.clear()
        hms = _CLOCK[secs] = time.strftime("%H:%M:%S", time.localtime(secs))
    return f"{hms}.{ns // 1_000_000:03d}"


def full_time(ts_ns: int | None) -> str:
    """``YYYY-mm-dd HH:MM:SS.mmm`` in local time (``?`` when unknown)."""
    if not ts_ns:
        return "?"
    secs, ns = divmod(int(ts_ns), 1_000_000_000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(secs)) + f".{ns // 1_000_000:03d}"


def duration(seconds: float) -> str:
    """``0.042`` -> ``42ms``; ``75`` -> ``1m15s``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    m, s = divmod(int(seconds), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


_INVISIBLE = {**TERMINAL_ESCAPES, 0x0A: "⏎ ", 0x0D: "␍", 0x09: " "}
"""Characters shown escaped in one-line renderings: line breaks (which would split the line),
control characters, and the bidirectional controls that reorder what follows them on screen
(a payload could make its text read as something else)."""
_INVISIBLE_BUT_LINES = {c: v for c, v in _INVISIBLE.items() if c != 0x0A}


SHORT_DEPTH = 3
"""Containers nested deeper than this are shown as ``{…}`` / ``[…]`` in one-line renderings."""


def short(value: Any, limit: int = 60, _depth: int = 0) -> str:
    """A compact one-line rendering of a value."""
    # Only the first ``limit`` characters can show, so neither a long string nor a deep
    # container is walked further: a hand-made recording may hold a 20 MB string or data
    # nested a thousand levels deep, which recursion here would turn into a crash.
    if isinstance(value, str):
        text = value[:limit]
    elif isinstance(value, dict):
        if _depth >= SHORT_DEPTH:
            text = "{…}" if value else "{}"
        else:
            items = list(itertools.islice(value.items(), 6))
            text = "{" + ", ".join(f"{short(k, 24, _depth + 1)}: {short(v, 24, _depth + 1)}" for k, v in items)
            text += ", …}" if len(value) > 6 else "}"
    elif isinstance(value, (list, tuple)):
        if _depth >= SHORT_DEPTH:
            text = "[…]" if value else "[]"
        else:
            text = "[" + ", ".join(short(v, 16, _depth + 1) for v in value[:6]) + (", …]" if len(value) > 6 else "]")
    elif isinstance(value, bytes):
        text = f"<{len(value)} bytes>"
    else:
        text = repr(value)
    text = text.translate(_INVISIBLE)
    if isinstance(value, str) and len(value) > limit:
        text += "…"  # cut above: the ellipsis must show even when the cut text is short
    return text if len(text) <= limit else text[: limit - 1] + "…"


def human_bytes(n: Any) -> str:
    """``1536`` -> ``1.5KiB``."""
    try:
        v = float(n)
    except (TypeError, ValueError):
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if v < 1024 or unit == "GiB":
            return f"{v:.0f}{unit}" if unit == "B" else f"{v:.1f}{unit}"
        v /= 1024
    return f"{v:.1f}GiB"


def _ms(value: Any) -> str:
    try:
        return duration(float(value) / 1000)
    except (TypeError, ValueError):
        return "?"


def one_line(text: object) -> str:
    """``text`` (a str, or what ``str()`` makes of it) with line breaks, control and
    bidirectional characters shown escaped: for any name, label, id or message taken from a
    recording. Rich passes an ESC on to the terminal as it is, where it would start a
    sequence (clear the screen, recolour, retitle the window), so none may reach it."""
    return str(text).translate(_INVISIBLE)


def lines_of(text: object) -> str:
    """:func:`one_line`, but keeping line breaks: for a traceback, a multi-line message, a log."""
    return str(text).translate(_INVISIBLE_BUT_LINES)


def summary(ev: Event) -> str:
    """A one-line description of the event's payload (names in it escaped: see one_line)."""
    return one_line(_summary(ev))


def _summary(ev: Event) -> str:
    d = ev.data
    k = ev.kind
    try:
        if k == "step_start":
            attrs = d.get("attrs")
            return f"▶ {d.get('name', '?')}" + (f"  {short(attrs, 50)}" if attrs else "")
        if k == "step_end":
            err = d.get("error")
            text = f"■ {d.get('name', '?')}  {_ms(d.get('duration_ms'))}"
            return text + (f"  ✗ {short(err, 80)}" if err else "")
        if k == "tool_call":
            extra = ""
            if (d.get("attempt") or 1) > 1:
                extra = f"  attempt {d.get('attempt')}"
            if d.get("retry_of"):
                extra += f" (retry of {d.get('retry_of')})"
            return f"→ {d.get('tool', '?')}({short(d.get('args', {}), 60)}){extra}"
        if k == "tool_result":
            lat = f"  {_ms(d['latency_ms'])}" if d.get("latency_ms") is not None else ""
            if d.get("error"):
                origin = f" [{d['origin']}]" if d.get("origin") else ""
                return f"✗ {d.get('tool', '?')}{origin}{lat}  {short(d.get('error'), 80)}"
            return f"← {d.get('tool', '?')}{lat}  {short(d.get('result'), 70)}"
        if k == "llm":
            # (a field present but None, as integrations record an unknown model or usage: '?')
            prompt, completion = d.get("prompt_tokens"), d.get("completion_tokens")
            tokens = f"{'?' if prompt is None else prompt}→{'?' if completion is None else completion} tok"
            lat = f"  {_ms(d['latency_ms'])}" if d.get("latency_ms") is not None else ""
            resp = d.get("response")
            err = d.get("error")
            tail = f"  ✗ {short(err, 60)}" if err else (f"  {short(resp, 60)}" if resp else "")
            model = d.get("model")
            return f"{'?' if model is None else model}  {tokens}{lat}{tail}"
        if k == "memory":
            ids = d.get("item_id") or d.get("item_ids")
            tok = f"  {d['tokens']} tok" if d.get("tokens") is not None else ""
            reason = f"  ({short(d['reason'], 40)})" if d.get("reason") else ""
            return f"{d.get('op', '?')} {short(ids, 50)}{tok}{reason}"
        if k == "context":
            used, limit = d.get("used_tokens", 0) or 0, d.get("limit_tokens", 0) or 0
            ratio = d.get("ratio")
            if ratio is None and limit:
                ratio = used / limit
            filled = round(10 * min(1.0, float(ratio or 0)))
            return f"{used:,}/{limit:,} tokens  {'█' * filled}{'░' * (10 - filled)} {float(ratio or 0):.0%}"
        if k == "checkpoint":
            rest = {key: v for key, v in d.items() if key not in ("label", "state", "chunks", "refs", "inline")}
            return f"◆ {d.get('label', '?')}" + (f"  {short(rest, 60)}" if rest else "")
        if k == "resource":
            return (
                f"rss {human_bytes(d.get('rss'))}  cpu {d.get('cpu_percent', '?')}%  "
                f"threads {d.get('threads', '?')}  files {d.get('open_files', '?')}"
            )
        if k == "error":
            origin = f"  [{d['origin']}]" if d.get("origin") else ""
            return f"{d.get('type', 'Error')}: {short(d.get('message', ''), 100)}{origin}"
        if k == "log":
            return f"{d.get('level', '?')} {d.get('logger', '')}: {short(d.get('message', ''), 100)}"
    except Exception:  # a malformed payload still gets a line
        pass
    return "  ".join(f"{short(key, 40)}={short(v, 40)}" for key, v in list(d.items())[:6])


def highlight_markers(text: Text) -> Text:
    """Style every redaction marker in ``text``."""
    text.highlight_regex(REDACTION, REDACTION_STYLE)
    return text


def step_label(path: str, width: int) -> str:
    """A step path cut to ``width`` from the left (the innermost step matters most)."""
    if len(path) <= width:
        return path
    return "…" + path[-(width - 1) :]


def searchable(ev: Event) -> str:
    """The lower-cased text free-text search looks at."""
    try:
        data = repr(ev.data)
    except RecursionError:  # data nested deeper than repr goes (a hand-made recording)
        data = flat_text(ev.data)
    return f"{ev.kind} {ev.thread} {summary(ev)} {data}".lower()


def flat_text(value: Any) -> str:
    """Every key and scalar in ``value`` as text, however deep it is nested (no recursion)."""
    out: list[str] = []
    todo: list[Any] = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, dict):
            for k, item in reversed(list(v.items())):
                todo.append(item)
                todo.append(k)
        elif isinstance(v, (list, tuple)):
            todo.extend(reversed(v))
        else:
            out.append(repr(v))
    return " ".join(out)


def total(value: Any) -> int:
    """A counter as one number: ints as they are, per-kind maps summed, junk as 0."""
    if isinstance(value, dict):
        return sum(total(v) for v in value.values())
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
