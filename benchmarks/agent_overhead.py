"""End-to-end overhead of recording a simulated agent, against what users would pick instead.

Run: ``.venv/bin/python benchmarks/agent_overhead.py [--steps 100] [--reps 15]``

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
* ``sentry``: ``sentry_sdk.add_breadcrumb`` per event (a no-op transport, never any network).

Every recorder records the same information, and a checkpoint is a snapshot taken at that
moment: for the peers the conversation serialized to JSON then (holding a reference to a
list that keeps growing would record nothing). After the runs, each recorder's output is
checked (counts per kind, and the last checkpoint equals the final conversation).

Run: ``... agent_overhead.py --instructions [--steps 100]`` counts instructions instead
(valgrind's callgrind, the main thread, a fixed hash seed): deterministic, where the timings
vary by a point or two from run to run on a shared machine, but blind to how fast those
instructions run (cache misses, the high instruction rate of C code such as ``json``).

Repetitions are interleaved (each one runs every recorder once, in a rotating order), as wall
time (what the agent waits) and process CPU time (including background threads). A
recorder's overhead is the median, over the repetitions, of its run's time divided by the bare
loop's in the same repetition, minus one, with the interquartile range: pairing runs a second
apart cancels the machine's slow drifts, which a difference of two medians taken over the
whole run does not. Read the medians and their ranges, not single runs.
"""

from __future__ import annotations

import argparse
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flightrec

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


def run_agent(rec: Recorder, steps: int) -> list[dict[str, Any]]:
    """The agent loop: identical for every recorder, deterministic."""
    rng = random.Random(7)
    replies = [make_reply(rng, i) for i in range(8)]
    conversation: list[dict[str, Any]] = [{"role": "user", "content": "Find me a flight from Oslo to Lisbon."}]
    for i in range(steps):
        with rec.step(f"step {i}"):
            t0 = time.perf_counter()
            reply = work(conversation, replies[i % len(replies)], i)
            rec.llm(reply, (time.perf_counter() - t0) * 1000)
            calls = reply["tool_calls"]
            r1 = rec.tool("search_flights", tool_search_flights, calls[0]["arguments"])
            r2 = rec.tool("get_policy", tool_get_policy, calls[1]["arguments"])
            conversation.append({"role": "assistant", "content": f"{reply['content'][:200]} | {r1} | {r2}"})
            rec.memory(f"msg-{i}", tokens=len(conversation[-1]["content"]) // 4)
            rec.checkpoint(conversation, f"step {i}")
    rec.finish()
    return conversation


# ============================================================================ the recorders


class Flightrec(Recorder):
    name = "flightrec"

    def setup(self, tmp: Path) -> None:
        flightrec.stop()
        self.rec = flightrec.start(dir=tmp / "fr", keep_ring=True)  # default settings otherwise
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


def measure(recorders: list[Recorder], steps: int, reps: int, tmp: Path) -> dict[str, Result]:
    wall: dict[str, list[float]] = {r.name: [] for r in recorders}
    cpu: dict[str, list[float]] = {r.name: [] for r in recorders}
    verdict: dict[str, str] = {}
    for rep in range(reps + 1):  # rep 0 warms up (imports, caches) and is not counted
        order = recorders[rep % len(recorders) :] + recorders[: rep % len(recorders)]
        for rec in order:
            run_dir = Path(tempfile.mkdtemp(dir=tmp))
            rec.setup(run_dir)
            gc.collect()
            w0, c0 = time.perf_counter(), time.process_time()
            conversation = run_agent(rec, steps)
            w1, c1 = time.perf_counter(), time.process_time()
            if rep > 0:
                wall[rec.name].append(w1 - w0)
                cpu[rec.name].append(c1 - c0)
            if rep == reps:
                verdict[rec.name] = rec.verify(steps, conversation)
            rec.teardown()
    return {n: Result(wall[n], cpu[n], wall["none"], cpu["none"], verdict.get(n, "-")) for n in wall}


class Result:
    """One recorder's runs, paired with the bare loop's runs of the same repetitions."""

    def __init__(
        self, wall: list[float], cpu: list[float], base_wall: list[float], base_cpu: list[float], verdict: str
    ):
        self.wall, self.cpu, self.verdict = wall, cpu, verdict
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
        q = statistics.quantiles(self.cpu_ratios if cpu else self.wall_ratios, n=4)
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


def all_recorders() -> list[Recorder]:
    """Every recorder, the bare loop first."""
    return [Recorder(), Flightrec(), Otel(), Logging(), Sentry()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100, help="agent steps per run (default 100)")
    p.add_argument("--reps", type=int, default=15, help="interleaved repetitions (default 15)")
    p.add_argument("--breakdown", action="store_true", help="also print each recording point's cost per call")
    p.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions under valgrind instead of timing (deterministic; slow: minutes)",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(args.child, args.steps)
        return
    if args.instructions:
        instructions(args.steps)
        return
    recorders = all_recorders()
    if args.breakdown:
        with tempfile.TemporaryDirectory(prefix="flightrec-bench-") as tmp:
            breakdown(recorders, Path(tmp))
        print()
    with tempfile.TemporaryDirectory(prefix="flightrec-bench-") as tmp:
        results = measure(recorders, args.steps, args.reps, Path(tmp))
    base = statistics.median(results["none"].wall)
    fr = results["flightrec"]
    print(
        f"simulated agent: {args.steps} steps/run, {args.reps} interleaved repetitions; "
        f"bare loop {base / args.steps * 1000:.2f} ms/step (median)"
    )
    print(f"python {sys.version.split()[0]}, flightrec {flightrec.__version__}")
    print("overhead: median over the repetitions of (run / the bare run of the same repetition) - 1; IQR in brackets")
    print()
    print(
        "| recorder | ms/step | overhead (wall) | overhead (CPU) | x flightrec (wall) | x flightrec (CPU) | recorded |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, r in results.items():
        ms = statistics.median(r.wall) / args.steps * 1000
        if name == "none":
            print(f"| {name} | {ms:.3f} | - | - | - | - | - |")
            continue
        cells = []
        for cpu in (False, True):
            lo, hi = r.spread(cpu)
            cells.append(f"{r.overhead(cpu) * 100:+.1f}% [{lo * 100:+.1f}, {hi * 100:+.1f}]")
        ratios = [f"{r.overhead(cpu) / fr.overhead(cpu):.1f}" if fr.overhead(cpu) > 0 else "-" for cpu in (False, True)]
        print(f"| {name} | {ms:.3f} | {cells[0]} | {cells[1]} | {ratios[0]} | {ratios[1]} | {r.verdict} |")


if __name__ == "__main__":
    main()
