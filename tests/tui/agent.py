"""A small agent instrumented with the real recorder API, for the TUI tests.

``run(directory)`` records steps, tool calls (some failing), LLM calls, memory operations,
context usage, checkpoints and an error, then dumps and returns the dump's path. As a
script (``python agent.py DIR live``) it keeps recording until killed, for attach tests.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import flightrec
from flightrec import memory


class ServiceDown(RuntimeError):
    """The order service answered 503."""


@flightrec.tool
def lookup_order(order: str, turn: int) -> dict[str, object]:
    """A tool that starts failing at turn 5."""
    if turn >= 5:
        raise ServiceDown("503 Service Unavailable")
    return {"status": "in transit", "eta_days": 2, "order": order}


@flightrec.tool
def search_kb(query: str) -> list[str]:
    """A tool that always works."""
    return ["doc-1", "doc-2"]


def turn(n: int, messages: list[dict[str, str]]) -> None:
    """One turn of the agent."""
    with flightrec.step("turn", n=n):
        flightrec.llm(
            model="fake-llm-1",
            prompt_tokens=900 * n,
            completion_tokens=40,
            latency_ms=300.0 + n,
            response=f"turn {n}: looking up the order for alice@example.com",
        )
        try:
            with flightrec.step("lookup"):
                lookup_order("ORD-123", n)
        except ServiceDown:
            pass
        search_kb("shipping delay")
        memory.retain(f"msg-{n}", content=f"message {n}", tokens=300, reason="user turn", source="user")
        if n == 3:
            memory.evict("msg-1", reason="context full", tokens=300)
        if n == 4:
            memory.retain("msg-1", content="message 1", tokens=300, reason="needed again", source="user")
        memory.context(1200 + 900 * n, 8192)
        messages.append({"role": "user", "content": f"where is my order? (turn {n})"})
        flightrec.checkpoint(
            {"messages": list(messages), "turn": n, "status": "working" if n < 5 else "failing"}, label=f"turn-{n}"
        )


def run(directory: Path, turns: int = 6) -> Path:
    """Record a run into ``directory`` and return the dump written at its failure."""
    rec = flightrec.start(dir=directory, triggers=False, size="2MiB", block_size="16KiB", resources=0)
    assert rec is not None
    try:
        flightrec.record("note", text="support agent starting for alice@example.com")
        messages: list[dict[str, str]] = []
        for n in range(1, turns + 1):
            turn(n, messages)
        try:
            raise ServiceDown("lookup_order failed 2 times (503 Service Unavailable)")
        except ServiceDown as exc:
            flightrec.record("error", type="ServiceDown", message=str(exc), origin="response")
            path = rec.dump(reason="exception", exc=exc)
    finally:
        flightrec.stop()
    assert path is not None
    return path


def live(directory: Path, rate: float) -> None:
    """Record forever at ``rate`` events/s (for attach tests); prints ``ready`` once started."""
    flightrec.start(dir=directory, triggers=False, size="4MiB", block_size="16KiB", resources=0)
    print("ready", flush=True)
    n = 0
    t0 = time.monotonic()
    while True:
        n += 1
        flightrec.record("note", text=f"tick {n}", n=n)
        if n % 10 == 0:
            search_kb(f"query {n}")
        delay = t0 + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)


if __name__ == "__main__":
    if sys.argv[2:3] == ["live"]:
        live(Path(sys.argv[1]), float(sys.argv[3]) if len(sys.argv) > 3 else 200.0)
    else:
        print(run(Path(sys.argv[1])))
