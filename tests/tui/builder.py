"""Deterministic recordings for the TUI tests: fixed pids, times and contents.

The snapshot tests need byte-identical screens from run to run, so these dumps are written
with the real framing (``flightrec.format.encode_block`` + ``flightrec.dump.write_dump``),
not by a recorder whose pid and clock change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from flightrec import format as fmt
from flightrec.dump import write_dump
from flightrec.event import Event

T0 = 1_767_225_600_000_000_000
"""2026-01-01 00:00:00 UTC: every synthetic recording starts here."""


class Script:
    """Builds a list of events with consecutive seqs and a steady clock."""

    def __init__(self, start_ns: int = T0, step_ns: int = 7_000_000) -> None:
        self.events: list[Event] = []
        self.ts = start_ns
        self.step_ns = step_ns
        self.span: int | None = None
        self.parent: int | None = None
        self._stack: list[int] = []
        self._next_span = 1

    def add(self, kind: str, thread: str = "MainThread", **data: Any) -> Event:
        self.ts += self.step_ns
        ev = Event(len(self.events) + 1, self.ts, kind, thread, self.span, self.parent, data)
        self.events.append(ev)
        return ev

    def start_step(self, name: str, **attrs: Any) -> int:
        sid = self._next_span
        self._next_span += 1
        self._stack.append(sid)
        self.parent, self.span = self.span, sid
        self.add("step_start", name=name, attrs=attrs)
        return sid

    def end_step(self, name: str, duration_ms: float, error: str | None = None) -> None:
        data: dict[str, Any] = {"name": name, "duration_ms": duration_ms}
        if error:
            data["error"] = error
        self.add("step_end", **data)
        self._stack.pop()
        self.span = self._stack[-1] if self._stack else None
        self.parent = self._stack[-2] if len(self._stack) > 1 else None


def rich_script() -> Script:
    """A support agent's run: steps, tools (with failures), LLM calls, memory, checkpoints, an error."""
    s = Script()
    s.add("note", text="agent starting for <EMAIL:3f9a2c>", user="<EMAIL:3f9a2c>")
    s.add("resource", rss=50_000_000, cpu_percent=3.0, threads=2, open_files=5)
    s.add("checkpoint", label="start", size=120)
    used = 1200
    for turn in range(1, 9):
        s.start_step("turn", n=turn)
        s.add(
            "llm",
            model="fake-llm-1",
            prompt_tokens=used,
            completion_tokens=40,
            latency_ms=300 + turn,
            response=f"turn {turn}: calling lookup_order for <EMAIL:3f9a2c>",
        )
        s.start_step("lookup")
        call_id = f"c{turn}"
        s.add("tool_call", tool="lookup_order", call_id=call_id, args={"order": "ORD-123", "turn": turn}, attempt=1)
        if turn >= 6:
            s.add(
                "tool_result",
                tool="lookup_order",
                call_id=call_id,
                error="503 Service Unavailable",
                origin="transient",
                latency_ms=1500,
            )
            s.end_step("lookup", 1510, error="503 Service Unavailable")
        else:
            s.add(
                "tool_result",
                tool="lookup_order",
                call_id=call_id,
                result={"status": "in transit", "eta": 2},
                latency_ms=120 + turn,
            )
            s.end_step("lookup", 130)
        s.add("tool_call", tool="search_kb", call_id=f"k{turn}", args={"q": "shipping delay"}, attempt=1)
        s.add("tool_result", tool="search_kb", call_id=f"k{turn}", result=["doc-1", "doc-2"], latency_ms=40)
        s.add("memory", op="retain", item_id=f"msg-{turn}", tokens=300, reason="user turn")
        if turn == 3:
            s.add("memory", op="evict", item_id="msg-1", tokens=300, reason="context full")
        if turn == 5:
            s.add("memory", op="retain", item_id="msg-1", tokens=300, reason="needed again")
        if turn == 7:
            s.add("memory", op="summarize", item_ids=["msg-2", "msg-3"], tokens=150, reason="compress")
        used += 900
        s.add("context", used_tokens=used, limit_tokens=8192, ratio=used / 8192)
        s.add("log", level="WARNING" if turn >= 6 else "INFO", logger="agent", message=f"turn {turn} done")
        s.add("resource", rss=50_000_000 + turn * 4_000_000, cpu_percent=10.0 + 5 * turn, threads=3, open_files=6)
        s.add("checkpoint", label=f"turn-{turn}", size=400 + 100 * turn)
        s.end_step("turn", 400 + turn, error="lookup failed" if turn >= 6 else None)
    s.add(
        "error",
        type="ToolFailure",
        message="lookup_order failed 3 times (503 Service Unavailable)",
        traceback='Traceback (most recent call last):\n  File "agent.py", line 42, in run\n    raise ToolFailure()\n'
        "ToolFailure: lookup_order failed 3 times",
        origin="response",
    )
    return s


def meta_for(events: list[Event], reason: str = "exception") -> dict[str, Any]:
    """A dump header with fixed facts."""
    last = events[-1].ts_ns if events else T0
    return {
        "format_version": fmt.FORMAT_VERSION,
        "flightrec_version": "0.1.0",
        "pid": 4242,
        "host": "testhost",
        "python": "3.12.0",
        "argv": ["support_agent.py", "--customer", "<EMAIL:3f9a2c>"],
        "prog": "support_agent.py",
        "start_ns": T0,
        "dump_ns": last + 1_000_000,
        "trigger": {"reason": reason, "thread": "MainThread"},
        "exception": {
            "type": "ToolFailure",
            "message": "lookup_order failed 3 times (503 Service Unavailable)",
            "traceback": 'Traceback (most recent call last):\n  File "support_agent.py", line 42, in main\n'
            "    raise ToolFailure(msg)\nToolFailure: lookup_order failed 3 times (503 Service Unavailable)\n",
            "origin": "response",
        },
        "counters": {
            "recorded": len(events),
            "dropped": 0,
            "errors": 0,
            "degraded": 0,
            "sampling": {"offered": len(events), "kept": len(events), "dropped": 0},
        },
        "redaction": {"rules": ["email"], "replaced": {"EMAIL": 4}},
    }


def encode_blocks(events: list[Event], per_block: int = 16) -> list[bytes]:
    """Frame ``events`` as blocks of ``per_block`` events."""
    enc = msgspec.msgpack.Encoder()
    blocks: list[bytes] = []
    for b, i in enumerate(range(0, len(events), per_block), start=1):
        chunk = events[i : i + per_block]
        raw = b"".join(enc.encode(tuple(e)) for e in chunk)
        blocks.append(
            fmt.encode_block(
                raw,
                block_seq=b,
                first_seq=chunk[0].seq,
                last_seq=chunk[-1].seq,
                first_ts=chunk[0].ts_ns,
                last_ts=chunk[-1].ts_ns,
                count=len(chunk),
            )
        )
    return blocks


def write_events(
    directory: Path,
    events: list[Event],
    name: str = "agent.frec",
    per_block: int = 16,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a dump holding ``events``."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return write_dump(directory, name, meta or meta_for(events), encode_blocks(events, per_block))


def rich_dump(directory: Path) -> Path:
    """The deterministic support-agent dump."""
    return write_events(directory, rich_script().events)
