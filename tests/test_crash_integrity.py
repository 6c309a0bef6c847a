"""A busy agent killed mid-flight: what the dump holds must be intact and true.

The child records from three threads and an asyncio task at once (notes, steps, tool calls that
sometimes fail, memory, LLM calls, payloads over ``max_value`` and bytes), while a fourth thread
mutates a state in place (appends, edits inside messages and inside a big dict of dicts, deletions,
a new object) and
checkpoints it after every change, into a 256 KiB ring, killed once the ring has wrapped. After each
checkpoint it records a digest of the state as it was. Killed by SIGKILL (then ``flightrec
recover``) or SIGTERM (its own dump), the recording must read back with every event whole, each
thread's events there and in order from its oldest on, and every checkpoint the dump can rebuild equal to the state it
recorded, the newest one included.
"""

from __future__ import annotations

import hashlib
import json
import signal
from pathlib import Path
from typing import Any

import pytest

import flightrec

from .conftest import run_cli, spawn_child

_AGENT = """
import asyncio, hashlib, json, random, sys, threading, time
import flightrec

SEED = {seed}
rec = flightrec.start(size="256KiB", block_size="8KiB", sampling="")


def wrapped(mine):
    # Whether the ring wrapped (the oldest block kept no longer holds seq 1) and still holds at
    # least 30 of the checkpoints whose seqs are ``mine``: on a loaded machine the workers can
    # crowd the checkpointer out of the ring for a while. (Read while other threads write.)
    try:
        oldest = rec.ring.blocks[0][3]
    except IndexError:
        return False
    return oldest > 1000 and sum(seq is not None and seq >= oldest for seq in mine[-60:]) >= 30

calm = threading.Event()  # set once "ready" is said: the workers slow down until the kill

def digest(state):
    return hashlib.sha1(json.dumps(state, sort_keys=True).encode()).hexdigest()

def payload(rng):
    r = rng.random()
    if r < 0.05:
        return "x" * rng.randint(5000, 20000)  # cut at max_value
    if r < 0.1:
        return {{f"k{{j}}": list(range(rng.randint(0, 30))) for j in range(rng.randint(1, 20))}}
    if r < 0.15:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    return " ".join(rng.choice(["alpha", "beta", "Oslo", "42"]) for _ in range(rng.randint(1, 40)))

def flaky(rng):
    def tool(arg):
        if rng.random() < 0.2:
            raise ValueError("boom")
        return arg
    return tool

def worker(t):
    rng = random.Random(SEED * 100 + t)
    tool = flightrec.tool(name=f"tool{{t}}")(flaky(rng))
    i = 0
    while True:
        r = rng.random()
        if r < 0.4:
            flightrec.record("note", t=t, i=i, body=payload(rng))
        elif r < 0.6:
            with flightrec.step(f"s{{t}}.{{i}}"):
                flightrec.record("note", t=t, i=i, body="in a step")
        elif r < 0.75:
            try:
                tool({{"t": t, "i": i}})
            except ValueError:
                pass
            flightrec.record("note", t=t, i=i, body="after a tool")
        elif r < 0.85:
            flightrec.memory.retain(f"m{{t}}.{{i % 50}}", tokens=rng.randint(1, 500), reason="r")
            flightrec.record("note", t=t, i=i, body="memory")
        else:
            reply = str(payload(rng))[:200]
            flightrec.llm(model="m", prompt_tokens=i, completion_tokens=3, latency_ms=1.0, response=reply)
            flightrec.record("note", t=t, i=i, body="llm")
        i += 1
        if calm.is_set():  # (the ring keeps the checkpoints it has until the kill comes)
            time.sleep(0.001)

def checkpointer():
    rng = random.Random(SEED)
    state = {{"messages": [], "kv": {{f"k{{i}}": i for i in range(40)}}}}
    n = 0
    told = False
    mine = []
    while True:
        op = rng.random()
        messages = state["messages"]
        if op < 0.6:
            messages.append({{"role": "user", "content": f"m{{n}} " + "w" * rng.randint(0, 400)}})
        elif op < 0.75 and messages:
            messages[rng.randrange(len(messages))]["content"] += "!"
        elif op < 0.8:  # a big dict (over 32 keys: taken over whole while unchanged)
            state["kv"][f"k{{rng.randint(0, 80)}}"] = rng.choice([n, {{"n": n, "sub": {{"n": n}}}}])
        elif op < 0.85:  # edited in place, two levels down
            value = state["kv"].get(f"k{{rng.randint(0, 80)}}")
            if isinstance(value, dict):
                value["sub"]["n"] += 1
        elif op < 0.9 and messages:
            del messages[: rng.randint(1, 5)]
        else:
            state = {{"messages": list(messages), "kv": dict(state["kv"])}}
        if len(state["messages"]) > 80:  # a context window: the state stays well within the ring
            # (else it grows for as long as the child runs, and on a loaded machine, where the
            # test reads "ready" late, it outgrew what the ring keeps rebuildable)
            del state["messages"][:-80]
        seq = flightrec.checkpoint(state, label=f"c{{n}}")
        flightrec.record("digest", seq=seq, digest=digest(state))
        mine.append(seq)
        n += 1
        if n >= {kill_after} and not told and wrapped(mine):
            told = True
            calm.set()
            print("ready", flush=True)

async def steps():
    i = 0
    while True:
        with flightrec.step(f"a{{i}}"):
            flightrec.record("note", t=99, i=i, body="async")
            await asyncio.sleep(0.001 if calm.is_set() else 0)
        i += 1

for t in range(3):
    threading.Thread(target=worker, args=(t,), daemon=True).start()
threading.Thread(target=checkpointer, daemon=True).start()
asyncio.run(steps())
"""


def _digest(state: Any) -> str:
    return hashlib.sha1(json.dumps(state, sort_keys=True).encode()).hexdigest()


def _check_recording(path: Path) -> None:
    with flightrec.load(path) as recording:
        events = list(recording.events())
        seqs = [e.seq for e in events]
        assert seqs == sorted(set(seqs)), "events in seq order, none twice"
        assert seqs[0] > 1000, "the ring wrapped: the oldest events were overwritten"
        last: dict[int, int] = {}
        for e in events:
            if e.kind == "note":
                t, i = e.data["t"], e.data["i"]
                # every note of a thread is there from its oldest in the ring on, in order
                assert t not in last or i == last[t] + 1, f"thread {t}: note {i} after {last.get(t)}"
                last[t] = i
        assert set(last) == {0, 1, 2, 99}, "every thread's events are there"
        digests = {e.data["seq"]: e.data["digest"] for e in events if e.kind == "digest"}
        checkpoints = {info.seq: info for info in recording.checkpoints()}
        rebuilt = [seq for seq in digests if seq in checkpoints and checkpoints[seq].rebuildable]
        assert len(rebuilt) >= 20, "many checkpoints to compare"
        for seq in rebuilt:
            assert _digest(recording.state_at(seq)) == digests[seq], f"checkpoint {seq} rebuilds another state"
        newest = max(seq for seq in digests if seq in checkpoints)
        assert checkpoints[newest].rebuildable, "the newest checkpoint can be rebuilt"


@pytest.mark.parametrize("pure", ["0", "1"], ids=["c-path", "pure-python"])
@pytest.mark.parametrize("seed", [1, 2])
def test_kill_9_then_recover(frdir: Path, pure: str, seed: int) -> None:
    code = _AGENT.format(seed=seed, kill_after=150 + 100 * seed)
    child = spawn_child(code, frdir, FLIGHTREC_PURE_PYTHON=pure, FLIGHTREC_RESOURCES="0.05")
    assert child.stdout is not None and child.stderr is not None
    line = child.stdout.readline().strip()
    assert line == "ready", child.stderr.read()
    child.send_signal(signal.SIGKILL)
    child.wait()
    result = run_cli("recover", "--dir", str(frdir), "-o", str(frdir))
    assert result.returncode == 0, result.stderr
    [dump] = frdir.glob("*.frec")
    _check_recording(dump)


@pytest.mark.parametrize("pure", ["0", "1"], ids=["c-path", "pure-python"])
def test_sigterm_dumps_it_whole(frdir: Path, pure: str) -> None:
    child = spawn_child(
        _AGENT.format(seed=3, kill_after=300), frdir, FLIGHTREC_PURE_PYTHON=pure, FLIGHTREC_RESOURCES="0.05"
    )
    assert child.stdout is not None and child.stderr is not None
    assert child.stdout.readline().strip() == "ready", child.stderr.read()
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == -signal.SIGTERM
    assert "Traceback" not in child.stderr.read()
    assert not list(frdir.glob("*.ring")), "the ring is removed once dumped"
    [dump] = frdir.glob("*.frec")
    _check_recording(dump)
