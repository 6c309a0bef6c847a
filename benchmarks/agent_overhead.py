"""End-to-end overhead of recording a simulated agent, against what users would pick instead.

Run: ``.venv/bin/python benchmarks/agent_overhead.py [--steps 100] [--reps 15] [--processes 1]``

One deterministic, CPU-bound agent loop. Each step does about 2 ms of real work (renders a
prompt from a template with the recent conversation, parses a JSON reply of the size an
LLM returns), and records: the step (start and end), one LLM call (model, tokens, latency,
the reply text), two tool calls (name, arguments, result, latency), one memory event, and
one checkpoint of the conversation, which grows by a message a step. The loop runs, in one
process, with:

* ``none``: no recording (the baseline);
* ``flightrec``: default settings (redaction on; ``flightrec.step/llm/tool/memory/checkpoint``);
* ``otel``: the OpenTelemetry SDK, a ``BatchSpanProcessor`` into an ``InMemorySpanExporter``
  (steps, LLM and tool calls as spans with GenAI attributes, memory and checkpoints as span
  events); its queue is flushed inside the timed region, since that work is part of the cost;
* ``logging``: stdlib ``logging`` into a ``MemoryHandler`` (one record per event, fields in
  ``extra``);
* ``sentry``: ``sentry_sdk.add_breadcrumb`` per event (a no-op transport, never any network);
* ``deque``: a tuple per event appended to a bounded ``collections.deque``, the floor of what
  recording the same information can cost in Python (no redaction, nothing outside the
  process: gone with it).

Every recorder records the same information, and a checkpoint is a snapshot taken at that
moment: for the peers the conversation serialized to JSON then (holding a reference to a
list that keeps growing would record nothing). After the runs, each recorder's output is
checked (counts per kind, and the last checkpoint equals the final conversation).

Run: ``... agent_overhead.py --instructions [--steps 100]`` counts instructions instead
(valgrind's callgrind, the main thread, a fixed hash seed): deterministic, where the timings
vary by a point or two from run to run on a shared machine, but blind to how fast those
instructions run (cache misses, the high instruction rate of C code such as ``json``).

Each repetition runs every recorder once (in a rotating order), and beside each a bare run of
the loop, interleaved with it 10 steps at a time (see measure): the two share the machine's
state of the same few milliseconds. A recorder's overhead is the median, over the
repetitions, of its run's time divided by its bare run's, minus one, with the interquartile
range; as wall time (what the agent waits) and CPU time (the main thread's, plus the
recorder's background threads'). Whole runs a second apart, paired, differed by ±8% on this
shared machine for the same code; runs interleaved this way differ by about ±1.5%, which the
row ``none (A/A)``, the bare loop paired with itself, shows in every run. Between processes the
figures move by a point or two more (memory layout, hash seeds), which no pairing inside one
process cancels: ``--processes N`` runs the table in N processes one after another and reports
the median of their figures with their range. Read the medians and their ranges, not single
runs.

Under the table, each recorder's wall overhead is split: how much slower the agent's own work
(``work()``, the same calls in both runs, timed by the latency the loop measures anyway) ran
than in its bare run. That part is spent outside the recording points, in the agent's code
running slower after them (the caches they evicted); the rest is the points' own time.
"""

from __future__ import annotations

import argparse
import collections
import gc
import glob
import json
import logging
import logging.handlers
import os
import random
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flightrec
from flightrec.paths import default_ring_dir

MODEL = "gpt-4o-mini"
TEMPLATE = string.Template(
    "You are a travel agent. Be concise and correct.\n"
    "## Tools\n$tools\n## Conversation so far\n$history\n## Task\n$task\n"
    'Answer with JSON: {"thought": ..., "tool_calls": [...], "content": ...}\n'
)
TOOLS_DOC = "\n".join(f"- tool_{i}(query: str, limit: int) -> list[str]: searches source {i}" for i in range(12))


# ============================================================================ the simulated agent


def make_reply(rng: random.Random, step: int) -> str:
    """A JSON reply of a realistic size (~4 KB): thought, two tool calls, content, logprobs."""
    words = [
        rng.choice(("flight", "hotel", "Oslo", "price", "date", "seat", "refund", "policy", "baggage"))
        for _ in range(120)
    ]
    return json.dumps(
        {
            "id": f"chatcmpl-{step:06d}",
            "model": MODEL,
            "thought": " ".join(words[:60]),
            "tool_calls": [
                {"name": "search_flights", "arguments": {"origin": "OSL", "destination": "LIS", "day": step % 28}},
                {"name": "get_policy", "arguments": {"topic": words[3], "lang": "en"}},
            ],
            "content": " ".join(words[60:]),
            "logprobs": [{"token": w, "logprob": -rng.random()} for w in words[:80]],
            "usage": {"prompt_tokens": 900 + step, "completion_tokens": 160},
        }
    )


def work(conversation: list[dict[str, Any]], reply_text: str, step: int) -> dict[str, Any]:
    """About 2 ms of the agent's own CPU work: render the prompt, parse the model's reply."""
    history = "\n".join(f"{m['role']}: {m['content']}" for m in conversation[-12:])
    prompt = ""
    for _ in range(66):
        prompt = TEMPLATE.substitute(tools=TOOLS_DOC, history=history, task=f"step {step}: plan the next action")
    reply: dict[str, Any] = {}
    for _ in range(31):
        reply = json.loads(reply_text)
    reply["prompt_chars"] = len(prompt)
    return reply


def tool_search_flights(origin: str, destination: str, day: int) -> str:
    return f"3 flights {origin}->{destination} on day {day}: SK{day}01 09:10, TP{day}55 13:45, SK{day}77 19:05"


def tool_get_policy(topic: str, lang: str) -> str:
    return f"Policy on {topic} ({lang}): one cabin bag of 8 kg; changes allowed up to 24 h before departure."


class Recorder:
    """What the loop calls at each recording point; the base records nothing."""

    name = "none"

    def setup(self, tmp: Path) -> None:
        pass

    def step(self, name: str) -> Any:
        return _NULL

    def llm(self, reply: dict[str, Any], latency_ms: float) -> None:
        pass

    def tool(self, name: str, fn: Callable[..., str], args: dict[str, Any]) -> str:
        return fn(**args)

    def memory(self, item_id: str, tokens: int) -> None:
        pass

    def checkpoint(self, conversation: list[dict[str, Any]], label: str) -> None:
        pass

    def finish(self) -> None:
        """Work that must be done before the run counts as recorded (timed)."""

    def verify(self, steps: int, conversation: list[dict[str, Any]]) -> str:
        return "-"

    def teardown(self) -> None:
        pass


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NULL = _Null()


class Again(Recorder):
    """The bare loop, paired with the bare loop like a recorder: the measurement's own noise."""

    name = "none (A/A)"


def agent_loop(
    rec: Recorder, steps: int, in_work: list[float] | None = None
) -> Generator[None, None, list[dict[str, Any]]]:
    """The agent loop: identical for every recorder, deterministic. Yields after each step
    (outside the step: no recorder's context is open then) and returns the conversation.

    ``in_work``: its first item is increased by the seconds spent in ``work()`` (the LLM
    call's latency, which the loop measures anyway: no clock read is added for it)."""
    rng = random.Random(7)
    replies = [make_reply(rng, i) for i in range(8)]
    conversation: list[dict[str, Any]] = [{"role": "user", "content": "Find me a flight from Oslo to Lisbon."}]
    for i in range(steps):
        with rec.step(f"step {i}"):
            t0 = time.perf_counter()
            reply = work(conversation, replies[i % len(replies)], i)
            latency = time.perf_counter() - t0
            if in_work is not None:
                in_work[0] += latency
            rec.llm(reply, latency * 1000)
            calls = reply["tool_calls"]
            r1 = rec.tool("search_flights", tool_search_flights, calls[0]["arguments"])
            r2 = rec.tool("get_policy", tool_get_policy, calls[1]["arguments"])
            conversation.append({"role": "assistant", "content": f"{reply['content'][:200]} | {r1} | {r2}"})
            rec.memory(f"msg-{i}", tokens=len(conversation[-1]["content"]) // 4)
            rec.checkpoint(conversation, f"step {i}")
        yield
    rec.finish()
    return conversation


def run_agent(rec: Recorder, steps: int) -> list[dict[str, Any]]:
    """The whole agent loop in one go."""
    loop = agent_loop(rec, steps)
    while True:
        try:
            next(loop)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


# ============================================================================ the recorders


class Flightrec(Recorder):
    name = "flightrec"

    def setup(self, tmp: Path) -> None:
        flightrec.stop()
        # The ring where it goes by default (/dev/shm, or $XDG_RUNTIME_DIR: memory, not a
        # disk, whose first writes to a page cost more), in a directory of its own removed
        # at teardown; default settings otherwise.
        self.ring_dir = Path(tempfile.mkdtemp(prefix="flightrec-bench-", dir=default_ring_dir().parent))
        self.rec = flightrec.start(dir=self.ring_dir, keep_ring=True)
        self.tools = {
            "search_flights": flightrec.tool(name="search_flights")(tool_search_flights),
            "get_policy": flightrec.tool(name="get_policy")(tool_get_policy),
        }

    def step(self, name: str) -> Any:
        return flightrec.step(name)

    def llm(self, reply: dict[str, Any], latency_ms: float) -> None:
        u = reply["usage"]
        flightrec.llm(
            model=MODEL,
            prompt_tokens=u["prompt_tokens"],
            completion_tokens=u["completion_tokens"],
            latency_ms=latency_ms,
            response=reply["content"],
        )

    def tool(self, name: str, fn: Callable[..., str], args: dict[str, Any]) -> str:
        return self.tools[name](**args)  # type: ignore[no-any-return]

    def memory(self, item_id: str, tokens: int) -> None:
        flightrec.memory.retain(item_id, tokens=tokens, reason="tool results")

    def checkpoint(self, conversation: list[dict[str, Any]], label: str) -> None:
        flightrec.checkpoint(conversation, label=label)

    def verify(self, steps: int, conversation: list[dict[str, Any]]) -> str:
        from flightrec.checkpoint import ChunkIndex

        with flightrec.load(self.rec.ring_path) as r:
            events = list(r.events())
        counts = _count(e.kind for e in events)
        cps = [e for e in events if e.kind == "checkpoint"]
        same = ChunkIndex(events).rebuild(cps[-1].data["root"]) == conversation
        return _check(
            counts,
            steps,
            same,
            {
                "step_start": "step_start",
                "llm": "llm",
                "tool_call": "tool_call",
                "tool_result": "tool_result",
                "memory": "memory",
                "checkpoint": "checkpoint",
            },
        )

    def teardown(self) -> None:
        flightrec.stop()
        shutil.rmtree(self.ring_dir, ignore_errors=True)


class Otel(Recorder):
    name = "otel"

    def setup(self, tmp: Path) -> None:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("agent")
        self.current: Any = None

    def step(self, name: str) -> Any:
        return _OtelStep(self, name)

    def llm(self, reply: dict[str, Any], latency_ms: float) -> None:
        u = reply["usage"]
        end = time.time_ns()
        with self.tracer.start_as_current_span(
            f"chat {MODEL}",
            start_time=end - int(latency_ms * 1e6),
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": MODEL,
                "gen_ai.usage.input_tokens": u["prompt_tokens"],
                "gen_ai.usage.output_tokens": u["completion_tokens"],
                "gen_ai.output.messages": reply["content"],
            },
        ):
            pass

    def tool(self, name: str, fn: Callable[..., str], args: dict[str, Any]) -> str:
        with self.tracer.start_as_current_span(
            f"execute_tool {name}",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.call.arguments": json.dumps(args),
            },
        ) as span:
            result = fn(**args)
            span.set_attribute("gen_ai.tool.call.result", result)
            return result

    def memory(self, item_id: str, tokens: int) -> None:
        self.current.add_event(
            "memory", {"op": "retain", "item_id": item_id, "tokens": tokens, "reason": "tool results"}
        )

    def checkpoint(self, conversation: list[dict[str, Any]], label: str) -> None:
        self.current.add_event("checkpoint", {"label": label, "state": json.dumps(conversation)})

    def finish(self) -> None:
        self.provider.force_flush()

    def verify(self, steps: int, conversation: list[dict[str, Any]]) -> str:
        spans = self.exporter.get_finished_spans()
        counts: dict[str, int] = {}
        last_state = None
        for s in spans:
            op = (s.attributes or {}).get("gen_ai.operation.name")
            key = {"chat": "llm", "execute_tool": "tool_call"}.get(str(op), "step_start")
            counts[key] = counts.get(key, 0) + 1
            if key == "tool_call":
                counts["tool_result"] = counts.get("tool_result", 0) + 1
            for ev in s.events:
                counts[ev.name] = counts.get(ev.name, 0) + 1
                if ev.name == "checkpoint":
                    last_state = ev.attributes["state"]  # type: ignore[index]
        same = last_state is not None and json.loads(str(last_state)) == conversation
        return _check(counts, steps, same)

    def teardown(self) -> None:
        self.provider.shutdown()


class _OtelStep:
    def __init__(self, owner: Otel, name: str) -> None:
        self.owner = owner
        self.cm = owner.tracer.start_as_current_span(name)

    def __enter__(self) -> None:
        self.outer = self.owner.current
        self.owner.current = self.cm.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.cm.__exit__(*exc)
        self.owner.current = self.outer


class _Counting(logging.Handler):
    """The MemoryHandler's flush target: counts records and keeps the last checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.last_state: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        kind = record.msg
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind == "checkpoint":
            self.last_state = record.fr["state"]  # type: ignore[attr-defined]


class Logging(Recorder):
    name = "logging"

    def setup(self, tmp: Path) -> None:
        self.target = _Counting()
        self.handler = logging.handlers.MemoryHandler(
            capacity=10_000, flushLevel=logging.CRITICAL + 1, target=self.target
        )
        self.log = logging.getLogger("bench.agent")
        self.log.handlers[:] = [self.handler]
        self.log.setLevel(logging.INFO)
        self.log.propagate = False

    def step(self, name: str) -> Any:
        return _LogStep(self.log, name)

    def llm(self, reply: dict[str, Any], latency_ms: float) -> None:
        u = reply["usage"]
        self.log.info(
            "llm",
            extra={
                "fr": {
                    "model": MODEL,
                    "prompt_tokens": u["prompt_tokens"],
                    "completion_tokens": u["completion_tokens"],
                    "latency_ms": latency_ms,
                    "response": reply["content"],
                }
            },
        )

    def tool(self, name: str, fn: Callable[..., str], args: dict[str, Any]) -> str:
        self.log.info("tool_call", extra={"fr": {"tool": name, "args": dict(args)}})
        t0 = time.perf_counter()
        result = fn(**args)
        self.log.info(
            "tool_result",
            extra={"fr": {"tool": name, "result": result, "latency_ms": (time.perf_counter() - t0) * 1000}},
        )
        return result

    def memory(self, item_id: str, tokens: int) -> None:
        self.log.info(
            "memory", extra={"fr": {"op": "retain", "item_id": item_id, "tokens": tokens, "reason": "tool results"}}
        )

    def checkpoint(self, conversation: list[dict[str, Any]], label: str) -> None:
        self.log.info("checkpoint", extra={"fr": {"label": label, "state": json.dumps(conversation)}})

    def finish(self) -> None:
        self.handler.flush()

    def verify(self, steps: int, conversation: list[dict[str, Any]]) -> str:
        same = self.target.last_state is not None and json.loads(self.target.last_state) == conversation
        return _check(self.target.counts, steps, same)


class _LogStep:
    def __init__(self, log: logging.Logger, name: str) -> None:
        self.log = log
        self.name = name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()
        self.log.info("step_start", extra={"fr": {"name": self.name}})

    def __exit__(self, *exc: Any) -> None:
        self.log.info(
            "step_end", extra={"fr": {"name": self.name, "duration_ms": (time.perf_counter() - self.t0) * 1000}}
        )


class Sentry(Recorder):
    name = "sentry"

    def setup(self, tmp: Path) -> None:
        import sentry_sdk
        from sentry_sdk.transport import Transport

        class NoNetwork(Transport):
            def capture_envelope(self, envelope: Any) -> None:
                pass

        sentry_sdk.init(
            dsn="http://public@127.0.0.1:9/1",  # loopback, and the transport never sends anyway
            transport=NoNetwork,
            default_integrations=False,
            auto_enabling_integrations=False,
            max_breadcrumbs=100,
        )
        self.sdk = sentry_sdk

    def step(self, name: str) -> Any:
        return _SentryStep(self.sdk, name)

    def llm(self, reply: dict[str, Any], latency_ms: float) -> None:
        u = reply["usage"]
        self.sdk.add_breadcrumb(
            category="llm",
            data={
                "model": MODEL,
                "prompt_tokens": u["prompt_tokens"],
                "completion_tokens": u["completion_tokens"],
                "latency_ms": latency_ms,
                "response": reply["content"],
            },
        )

    def tool(self, name: str, fn: Callable[..., str], args: dict[str, Any]) -> str:
        self.sdk.add_breadcrumb(category="tool_call", data={"tool": name, "args": dict(args)})
        t0 = time.perf_counter()
        result = fn(**args)
        self.sdk.add_breadcrumb(
            category="tool_result",
            data={"tool": name, "result": result, "latency_ms": (time.perf_counter() - t0) * 1000},
        )
        return result

    def memory(self, item_id: str, tokens: int) -> None:
        self.sdk.add_breadcrumb(
            category="memory", data={"op": "retain", "item_id": item_id, "tokens": tokens, "reason": "tool results"}
        )

    def checkpoint(self, conversation: list[dict[str, Any]], label: str) -> None:
        self.sdk.add_breadcrumb(category="checkpoint", data={"label": label, "state": json.dumps(conversation)})

    def verify(self, steps: int, conversation: list[dict[str, Any]]) -> str:
        crumbs = list(self.sdk.get_isolation_scope()._breadcrumbs)
        last = [c for c in crumbs if c.get("category") == "checkpoint"][-1]
        same = json.loads(last["data"]["state"]) == conversation
        return f"ok (last {len(crumbs)} kept, by design)" if same else "WRONG"

    def teardown(self) -> None:
        client = self.sdk.get_client()
        client.close()
        self.sdk.get_isolation_scope().clear()


class _SentryStep:
    def __init__(self, sdk: Any, name: str) -> None:
        self.sdk = sdk
        self.name = name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()
        self.sdk.add_breadcrumb(category="step_start", data={"name": self.name})

    def __exit__(self, *exc: Any) -> None:
        self.sdk.add_breadcrumb(
            category="step_end", data={"name": self.name, "duration_ms": (time.perf_counter() - self.t0) * 1000}
        )


class Deque(Recorder):
    """The floor: each event a tuple appended to a bounded ``collections.deque``.

    What one writes by hand in a few lines: no redaction, no size limits, no file (all of it
    gone with the process), and a checkpoint serialized whole to JSON at each step (the
    snapshot), like the other peers'. Every other value is kept by reference, which is a
    snapshot here only because the loop never changes them afterwards.
    """

    name = "deque"

    def setup(self, tmp: Path) -> None:
        self.events: collections.deque[tuple[str, int, dict[str, Any]]] = collections.deque(maxlen=10_000)
        self.add = self.events.append

    def step(self, name: str) -> Any:
        return _DequeStep(self.add, name)

    def llm(self, reply: dict[str, Any], latency_ms: float) -> None:
        u = reply["usage"]
        self.add(
            (
                "llm",
                time.time_ns(),
                {
                    "model": MODEL,
                    "prompt_tokens": u["prompt_tokens"],
                    "completion_tokens": u["completion_tokens"],
                    "latency_ms": latency_ms,
                    "response": reply["content"],
                },
            )
        )

    def tool(self, name: str, fn: Callable[..., str], args: dict[str, Any]) -> str:
        self.add(("tool_call", time.time_ns(), {"tool": name, "args": dict(args)}))
        t0 = time.perf_counter()
        result = fn(**args)
        self.add(
            (
                "tool_result",
                time.time_ns(),
                {"tool": name, "result": result, "latency_ms": (time.perf_counter() - t0) * 1000},
            )
        )
        return result

    def memory(self, item_id: str, tokens: int) -> None:
        self.add(
            ("memory", time.time_ns(), {"op": "retain", "item_id": item_id, "tokens": tokens, "reason": "tool results"})
        )

    def checkpoint(self, conversation: list[dict[str, Any]], label: str) -> None:
        self.add(("checkpoint", time.time_ns(), {"label": label, "state": json.dumps(conversation)}))

    def verify(self, steps: int, conversation: list[dict[str, Any]]) -> str:
        counts = _count(kind for kind, _, _ in self.events)
        last = [data for kind, _, data in self.events if kind == "checkpoint"][-1]
        return _check(counts, steps, json.loads(last["state"]) == conversation)


class DequeNewest(Deque):
    """The deque with a checkpoint of what this loop changes only: the newest message's JSON.

    Not a general recorder (it knows the state only ever gains a message at its end, and it
    keeps no state it could rebuild from a dump): a bar for what recording these points can
    cost at the least in Python, shown with ``--ablate``.
    """

    name = "deque, newest message only"

    def checkpoint(self, conversation: list[dict[str, Any]], label: str) -> None:
        self.add(("checkpoint", time.time_ns(), {"label": label, "newest": json.dumps(conversation[-1])}))

    def verify(self, steps: int, conversation: list[dict[str, Any]]) -> str:
        counts = _count(kind for kind, _, _ in self.events)
        newest = [json.loads(data["newest"]) for kind, _, data in self.events if kind == "checkpoint"]
        return _check(counts, steps, newest == conversation[1:])


class _DequeStep:
    def __init__(self, add: Callable[[tuple[str, int, dict[str, Any]]], None], name: str) -> None:
        self.add = add
        self.name = name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()
        self.add(("step_start", time.time_ns(), {"name": self.name}))

    def __exit__(self, *exc: Any) -> None:
        self.add(
            ("step_end", time.time_ns(), {"name": self.name, "duration_ms": (time.perf_counter() - self.t0) * 1000})
        )


def _count(kinds: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in kinds:
        out[k] = out.get(k, 0) + 1
    return out


def _check(counts: dict[str, int], steps: int, same_state: bool, _names: Any = None) -> str:
    want = {
        "step_start": steps,
        "llm": steps,
        "tool_call": 2 * steps,
        "tool_result": 2 * steps,
        "memory": steps,
        "checkpoint": steps,
    }
    wrong = {k: (counts.get(k, 0), n) for k, n in want.items() if counts.get(k, 0) != n}
    if wrong or not same_state:
        return f"WRONG {wrong} state={'ok' if same_state else 'differs'}"
    return "ok"


# ============================================================================ the measurement


CHUNK = 10
"""Steps a run advances before the other run of its pair takes over (see measure)."""


class _TimedRun:
    """One recorder's agent loop, advanced a chunk of steps at a time, its time summed."""

    def __init__(self, rec: Recorder, steps: int) -> None:
        self.rec = rec
        self.in_work = [0.0]  # wall seconds in work(), the agent's own code
        self.loop = agent_loop(rec, steps, self.in_work)
        self.left = steps
        self.wall = 0.0
        self.cpu = 0.0  # this (the main) thread's CPU time
        self.conversation: list[dict[str, Any]] = []

    def advance(self, n: int) -> None:
        w0, c0 = time.perf_counter(), time.thread_time()
        for _ in range(n):
            next(self.loop)
        self.left -= n
        if self.left == 0:  # the recorder's finish() is part of its last chunk
            try:
                next(self.loop)
            except StopIteration as done:
                self.conversation = done.value
        self.wall += time.perf_counter() - w0
        self.cpu += time.thread_time() - c0


def measure(recorders: list[Recorder], steps: int, reps: int, tmp: Path, chunk: int = CHUNK) -> dict[str, Result]:
    """Each recorder's runs, each paired with a bare run interleaved with it ``chunk`` steps at a time.

    In each repetition every recorder (rotating order) runs the loop once, and so does the
    bare loop beside it: ``chunk`` steps of one, then ``chunk`` of the other, who goes first
    alternating. Both runs then share the machine's state of the same few milliseconds, and
    the ratio of their summed times cancels what drifts slower than that (CPU frequency,
    neighbours on a shared host), which the spread of whole runs a second apart is made of.
    The bare loop runs while the recorder is set up, so the recorder's background threads'
    CPU time over the pair (the process's CPU time less the main thread's) is counted as the
    recorder's, in the CPU column.
    """
    bare, peers = recorders[0], recorders[1:]
    wall: dict[str, list[float]] = {r.name: [] for r in recorders}
    cpu: dict[str, list[float]] = {r.name: [] for r in recorders}
    base_wall: dict[str, list[float]] = {r.name: [] for r in peers}
    base_cpu: dict[str, list[float]] = {r.name: [] for r in peers}
    # the agent's own work (work()) slower than in the bare run, over the bare run's time
    slower: dict[str, list[float]] = {r.name: [] for r in recorders}
    verdict: dict[str, str] = {}
    for rep in range(reps + 1):  # rep 0 warms up (imports, caches) and is not counted
        k = rep % len(peers)
        for rec in peers[k:] + peers[:k]:
            rec.setup(Path(tempfile.mkdtemp(dir=tmp)))
            gc.collect()
            base, run = _TimedRun(bare, steps), _TimedRun(rec, steps)
            p0, m0 = time.process_time(), time.thread_time()
            for c, start in enumerate(range(0, steps, chunk)):
                n = min(chunk, steps - start)
                for r in (base, run) if c % 2 == 0 else (run, base):
                    r.advance(n)
            background = max(0.0, (time.process_time() - p0) - (time.thread_time() - m0))
            if rep > 0:
                wall[rec.name].append(run.wall)
                cpu[rec.name].append(run.cpu + background)
                wall[bare.name].append(base.wall)
                cpu[bare.name].append(base.cpu)
                base_wall[rec.name].append(base.wall)
                base_cpu[rec.name].append(base.cpu)
                slower[rec.name].append((run.in_work[0] - base.in_work[0]) / base.wall)
            if rep == reps:
                verdict[rec.name] = rec.verify(steps, run.conversation)
            rec.teardown()
    results = {n: Result(wall[n], cpu[n], base_wall[n], base_cpu[n], verdict.get(n, "-"), slower[n]) for n in base_wall}
    return {bare.name: Result(wall[bare.name], cpu[bare.name], wall[bare.name], cpu[bare.name], "-"), **results}


class Result:
    """One recorder's runs, paired with the bare loop's runs of the same repetitions."""

    def __init__(
        self,
        wall: list[float],
        cpu: list[float],
        base_wall: list[float],
        base_cpu: list[float],
        verdict: str,
        work_slower: list[float] | None = None,
    ):
        self.wall, self.cpu, self.verdict = wall, cpu, verdict
        self.work_slower = work_slower or []
        """Per repetition: how much longer the agent's own work (``work()``, the same calls in
        both runs) took than in the bare run, over the bare run's time: the part of the
        overhead spent outside the recording points, in the agent's code running slower
        after them (caches they evicted)."""
        # Each repetition runs every recorder once, within about a second: the ratio to the
        # bare loop of the same repetition cancels the machine's slow drifts (CPU frequency,
        # neighbours), which a difference of medians over the whole run does not.
        self.wall_ratios = [w / b for w, b in zip(wall, base_wall, strict=True)]
        self.cpu_ratios = [c / b for c, b in zip(cpu, base_cpu, strict=True)]

    def overhead(self, cpu: bool = False) -> float:
        """Median over the repetitions of (this run / the bare run) - 1."""
        return statistics.median(self.cpu_ratios if cpu else self.wall_ratios) - 1

    def spread(self, cpu: bool = False) -> tuple[float, float]:
        """The interquartile range of the same ratios, minus 1."""
        ratios = self.cpu_ratios if cpu else self.wall_ratios
        if len(ratios) < 2:  # (one repetition: no range)
            return ratios[0] - 1, ratios[0] - 1
        q = statistics.quantiles(ratios, n=4)
        return q[0] - 1, q[2] - 1


def _one_step(rec: Recorder) -> None:
    with rec.step("step"):
        pass


def breakdown(recorders: list[Recorder], tmp: Path, messages: int = 50) -> None:
    """Per-call cost (µs, median) of each recording point, each recorder, in isolation."""
    reply = {"usage": {"prompt_tokens": 1000, "completion_tokens": 160}, "content": "Oslo flight price " * 12}
    conversation = [{"role": "assistant", "content": f"message {i}: " + "flight hotel " * 20} for i in range(messages)]
    args = {"origin": "OSL", "destination": "LIS", "day": 3}

    def per_call(fn: Callable[[], object], n: int = 500) -> float:
        samples = []
        for _ in range(9):
            t0 = time.perf_counter_ns()
            for _ in range(n):
                fn()
            samples.append((time.perf_counter_ns() - t0) / n / 1000)
        return statistics.median(samples)

    ops: list[tuple[str, Callable[[Recorder], Callable[[], object]]]] = [
        ("step", lambda r: lambda: _one_step(r)),
        ("llm", lambda r: lambda: r.llm(reply, 1.5)),
        ("tool", lambda r: lambda: r.tool("search_flights", tool_search_flights, args)),
        ("memory", lambda r: lambda: r.memory("msg-1", 70)),
        (f"checkpoint ({messages} msgs)", lambda r: lambda: r.checkpoint(conversation, "step")),
    ]
    print(f"| per call, µs | {' | '.join(name for name, _ in ops)} |")
    print(f"|---|{'---:|' * len(ops)}")
    for rec in recorders[1:]:
        rec.setup(Path(tempfile.mkdtemp(dir=tmp)))
        row = []
        with rec.step("outer"):
            for _, make in ops:
                row.append(per_call(make(rec)))
        rec.teardown()
        print(f"| {rec.name} | {' | '.join(f'{v:.1f}' for v in row)} |")


# ============================================================================ instruction counts


def _child(name: str, steps: int) -> None:
    """One recorder, one run, nothing else (what --instructions counts, under callgrind)."""
    rec = {r.name: r for r in all_recorders()}[name]
    # Under valgrind a recorder's background threads wake ~50x more often relative to the
    # loop than for real, and each wake-up passes the interpreter lock to them and back, work
    # the main thread's count then includes (flightrec's varied by ±10% from run to run). The
    # main thread keeps the lock while it runs the loop; the threads run when it waits (at
    # set-up and teardown), which is what they mostly do for real too.
    sys.setswitchinterval(1000.0)
    with tempfile.TemporaryDirectory(prefix="flightrec-bench-") as tmp:
        rec.setup(Path(tmp))
        run_agent(rec, steps)
        rec.teardown()


def _main_thread_instructions(name: str, steps: int, tmp: Path) -> int:
    """Instructions the main thread executes in one child process (callgrind)."""
    out = Path(tempfile.mkdtemp(dir=tmp))
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        f"--callgrind-out-file={out}/cg",
        sys.executable,
        __file__,
        "--child",
        name,
        "--steps",
        str(steps),
    ]
    # A fixed hash seed: string hashing (and so dict probing) is then the same in every run.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    files = sorted(glob.glob(f"{out}/cg*"))
    main = [f for f in files if f.endswith("-01")] or files
    if proc.returncode != 0 or not main:
        raise SystemExit(f"callgrind run of {name} failed:\n{proc.stderr[-2000:]}")
    for line in Path(main[0]).read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit(f"no instruction count in {main[0]}")


def instructions(steps: int) -> None:
    """Instructions per step above the bare loop, main thread only.

    Steadier than timings, not exact: the peers' counts within about 1% from run to run,
    flightrec's within about 10% (the child keeps the interpreter lock through the loop, see
    _child; what still varies lies outside the recording points, which counted alone repeat
    exactly).

    Each recorder runs in a child process under valgrind's callgrind twice, for ``steps`` steps
    and for none: the difference is the loop alone (imports and set-up cancel out). Background
    threads are left out: under valgrind they run ~50x more often relative to the loop than for
    real (their CPU time is in the timed table's CPU column).
    """
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (Debian: apt-get install valgrind)")
    names = [r.name for r in all_recorders()]
    jobs = [(n, s) for n in names for s in (steps, 0)]
    workers = max(1, min(4, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="flightrec-bench-") as tmp, ThreadPoolExecutor(workers) as pool:
        counts = dict(zip(jobs, pool.map(lambda j: _main_thread_instructions(*j, Path(tmp)), jobs), strict=True))
    per_step = {n: (counts[(n, steps)] - counts[(n, 0)]) / steps for n in names}
    bare = per_step["none"]
    fr = per_step["flightrec"] - bare
    print(f"instructions (callgrind, main thread): {steps} steps; bare loop {bare:,.0f} per step")
    print()
    print("| recorder | instructions/step above the bare loop | overhead | x flightrec |")
    print("|---|---:|---:|---:|")
    for n in names[1:]:
        extra = per_step[n] - bare
        print(f"| {n} | {extra:,.0f} | {extra / bare * 100:+.2f}% | {extra / fr:.1f} |")


def _figures(r: Result, steps: int) -> dict[str, Any]:
    """One recorder's figures from one process: ms a step, overheads, their IQRs, the verdict,
    and how much of the wall overhead is the agent's own work running slower."""
    return {
        "ms": statistics.median(r.wall) / steps * 1000,
        "wall": r.overhead(),
        "wall_range": r.spread(),
        "cpu": r.overhead(cpu=True),
        "cpu_range": r.spread(cpu=True),
        "verdict": r.verdict,
        "in_work": statistics.median(r.work_slower) if r.work_slower else 0.0,
    }


def in_processes(n: int, steps: int, reps: int, ablate: bool = False) -> dict[str, dict[str, Any]]:
    """The figures from ``n`` processes run one after another: per recorder, the median of the
    processes' figures, with the range of their overheads (instead of one process's IQR).

    One process's figure moves by a point or two from one process to the next (the memory
    layout and hash seeds change, which pairing within a process cannot cancel): the median
    of several processes is the figure to read, the range says how far one run may be off.
    """
    cmd = [sys.executable, __file__, "--steps", str(steps), "--reps", str(reps), "--json"]
    if ablate:
        cmd.append("--ablate")
    runs: list[dict[str, dict[str, Any]]] = []
    for i in range(n):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"process {i + 1} of {n} failed:\n{proc.stderr[-2000:]}")
        runs.append(json.loads(proc.stdout))
    out: dict[str, dict[str, Any]] = {}
    for name in runs[0]:
        each = [run[name] for run in runs]
        fig: dict[str, Any] = {k: statistics.median(f[k] for f in each) for k in ("ms", "wall", "cpu", "in_work")}
        for k in ("wall", "cpu"):
            fig[f"{k}_range"] = (min(f[k] for f in each), max(f[k] for f in each))
        fig["verdict"] = "; ".join(sorted({f["verdict"] for f in each}))
        out[name] = fig
    return out


def print_table(figures: dict[str, dict[str, Any]], runs: str, overhead: str) -> None:
    """The timed table (markdown): ``runs`` says what was run, ``overhead`` how it is computed."""
    print(f"simulated agent: {runs}; bare loop {figures['none']['ms']:.2f} ms/step (median)")
    print(f"python {sys.version.split()[0]}, flightrec {flightrec.__version__}")
    print(f"overhead: {overhead}; none (A/A) pairs the bare loop with itself: the method's own noise")
    print()
    print(
        "| recorder | ms/step | overhead (wall) | overhead (CPU) | x flightrec (wall) | x flightrec (CPU) | recorded |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    fr = figures["flightrec"]
    for name, fig in figures.items():
        if name == "none":
            print(f"| {name} | {fig['ms']:.3f} | - | - | - | - | - |")
            continue
        cells, ratios = [], []
        for k in ("wall", "cpu"):
            lo, hi = fig[f"{k}_range"]
            cells.append(f"{fig[k] * 100:+.1f}% [{lo * 100:+.1f}, {hi * 100:+.1f}]")
            ratios.append(f"{fig[k] / fr[k]:.1f}" if fr[k] > 0 and name != Again.name else "-")
        print(f"| {name} | {fig['ms']:.3f} | {cells[0]} | {cells[1]} | {ratios[0]} | {ratios[1]} | {fig['verdict']} |")
    print()
    print(
        "where the wall overhead goes: the agent's own work (work(), the same calls in both runs) ran slower "
        "by (median, % of the bare loop) "
        + ", ".join(f"{name} {fig['in_work'] * 100:+.1f}" for name, fig in figures.items() if name != "none")
        + "; the rest is the recording points' own time"
    )


def all_recorders() -> list[Recorder]:
    """Every recorder, the bare loop first."""
    return [Recorder(), Flightrec(), Otel(), Logging(), Sentry(), Deque()]


EVENT_POINTS = ("step", "llm", "tool", "memory")


def flightrec_without(*points: str) -> Flightrec:
    """flightrec with ``points`` left as the bare loop has them: what the others cost."""

    class Without(Flightrec):
        name = "flightrec without " + ("any point" if len(points) == 5 else ", ".join(points))

        def verify(self, steps: int, conversation: list[dict[str, Any]]) -> str:
            return "- (points left out)"

    for point in points:
        setattr(Without, point, getattr(Recorder, point))
    return Without()


def ablation_recorders() -> list[Recorder]:
    """flightrec whole, without its checkpoint, without its events, and with no point at all
    (the recorder only running: its background threads), and the least a recorder of these
    points costs (:class:`DequeNewest`), the bare loop first."""
    return [
        Recorder(),
        Flightrec(),
        flightrec_without("checkpoint"),
        flightrec_without(*EVENT_POINTS),
        flightrec_without(*EVENT_POINTS, "checkpoint"),
        DequeNewest(),
    ]


def _positive(text: str) -> int:
    """An argparse type: an int of at least 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100, help="agent steps per run (default 100)")
    p.add_argument("--reps", type=_positive, default=15, help="repetitions (default 15)")
    p.add_argument("--breakdown", action="store_true", help="also print each recording point's cost per call")
    p.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions under valgrind instead of timing (deterministic; slow: minutes)",
    )
    p.add_argument(
        "--processes",
        type=_positive,
        default=1,
        help="run the timed table in this many processes, one after another, and report the median of "
        "their figures with their range (default 1)",
    )
    p.add_argument(
        "--ablate",
        action="store_true",
        help="time flightrec whole, without its checkpoint, without its events, and with no point at all, "
        "and a deque whose checkpoint is the newest message only, instead of the recorders",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # (one process of --processes)
    args = p.parse_args()
    if args.steps < (0 if args.child else 1):  # (a child runs 0 steps to count the set-up alone)
        p.error(f"argument --steps: must be at least 1, not {args.steps}")
    if args.child:
        _child(args.child, args.steps)
        return
    if args.instructions:
        instructions(args.steps)
        return
    recorders = ablation_recorders() if args.ablate else all_recorders()
    if args.breakdown:
        with tempfile.TemporaryDirectory(prefix="flightrec-bench-") as tmp:
            breakdown(recorders, Path(tmp))
        print()
    interleaved = f"each run interleaved with a bare run {CHUNK} steps at a time"
    if args.processes > 1:
        print_table(
            in_processes(args.processes, args.steps, args.reps, args.ablate),
            f"{args.steps} steps/run, {args.processes} processes of {args.reps} repetitions, {interleaved}",
            "median over the processes of each one's median over its repetitions of (run / its bare run) - 1; "
            "the processes' range in brackets",
        )
        return
    with tempfile.TemporaryDirectory(prefix="flightrec-bench-") as tmp:
        results = measure([*recorders, Again()], args.steps, args.reps, Path(tmp))
    figures = {name: _figures(r, args.steps) for name, r in results.items()}
    if args.json:
        print(json.dumps(figures))
        return
    print_table(
        figures,
        f"{args.steps} steps/run, {args.reps} repetitions, {interleaved}",
        "median over the repetitions of (run / its bare run) - 1; IQR in brackets",
    )


if __name__ == "__main__":
    main()
