"""Exports: JSON lines, Chrome Trace Event JSON, and OTLP (file, and a real OTLP/HTTP receiver)."""

from __future__ import annotations

import asyncio
import fcntl
import http.server
import importlib.util
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import flightrec
from flightrec import export

from .conftest import REPO, run_cli


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


needs_otlp = pytest.mark.skipif(
    not (_has("opentelemetry.sdk") and _has("opentelemetry.exporter.otlp.proto.http") and _has("opentelemetry.proto")),
    reason="opentelemetry-sdk / -exporter-otlp-proto-http / -proto are not installed",
)


def make_dump(recorder: Any) -> Path:
    """A dump of a small agent run: steps, tool calls (one failing), an LLM call, a note, and a
    step still open when the dump is written."""
    with flightrec.step("plan", goal="book a trip"):
        flightrec.llm(
            model="gpt-test",
            prompt_tokens=100,
            completion_tokens=20,
            latency_ms=0.01,
            request=[{"role": "user", "content": "go"}],
            response={"role": "assistant", "content": "ok"},
        )

        @flightrec.tool
        def search(q: str) -> list[str]:
            return [q.upper()]

        @flightrec.tool
        def book(flight: str) -> None:
            raise TimeoutError("booking timed out")

        search("oslo")
        with pytest.raises(TimeoutError):
            book("SK1")
        flightrec.record("note", text="retrying later")
    open_step = flightrec.step("act")
    open_step.__enter__()  # still open at the dump: unfinished
    path = flightrec.dump(reason="test")
    open_step.__exit__(None, None, None)
    assert path is not None
    return path


@pytest.fixture
def dump(recorder: Any) -> Path:
    return make_dump(recorder)


def refuse_constant(constant: str) -> Any:
    """``parse_constant`` for :func:`json.loads` that refuses ``NaN`` and the infinities (not JSON)."""
    raise ValueError(f"not JSON: {constant}")


def odd_numbers_dump() -> Path:
    """A dump whose events hold NaN and infinities: a step attribute, an llm latency, payload
    floats (nested too), a tool's argument and its result."""
    with flightrec.step("plan", score=float("nan")):
        flightrec.llm(model="m", latency_ms=float("nan"), request=[{"role": "user", "temp": float("inf")}])
        flightrec.record("note", ratio=float("inf"), low=float("-inf"), nested={"x": [float("nan"), 1.5]})

        @flightrec.tool
        def measure(limit: float) -> float:
            return float("nan")

        measure(float("-inf"))
    path = flightrec.dump(reason="test")
    assert path is not None
    return path


def assert_jq_parses(path: Path) -> None:
    """``jq`` (when installed) reads every line of ``path``: it refuses bare NaN and Infinity."""
    jq = shutil.which("jq")
    if jq is None:
        return
    result = subprocess.run([jq, "-c", "."], stdin=path.open(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == len(path.read_text().splitlines())


class TestJsonl:
    def test_one_event_per_line_in_order(self, dump: Path) -> None:
        """Every event is one JSON object, the fields of Event, in seq order."""
        result = run_cli("export", str(dump), "--format", "jsonl")
        assert result.returncode == 0, result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        with flightrec.load(dump) as rec:
            events = list(rec.events())
        assert [e.seq for e in events] == [r["seq"] for r in rows]
        first = events[0]
        assert {
            "seq": first.seq,
            "ts_ns": first.ts_ns,
            "kind": first.kind,
            "thread": first.thread,
            "span": first.span,
            "parent": first.parent,
            "data": first.data,
        } == rows[0]
        assert result.stderr == "", "no progress bar when not on a terminal"

    def test_on_a_terminal_every_line_is_still_one_json_object(self, dump: Path) -> None:
        """Exported to a terminal (standard output and error both one): no progress bar, whose
        live display took over standard output and re-wrapped each line at the terminal's width
        (line breaks added, the blank at each break lost), so the text was no longer JSON."""
        primary, secondary = os.openpty()
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # an 80-column terminal
        proc = subprocess.Popen(
            [sys.executable, "-m", "flightrec", "export", str(dump)],
            stdout=secondary,
            stderr=secondary,
            env={**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm"},
        )
        os.close(secondary)
        out = bytearray()
        while True:  # (read as it comes: a full terminal buffer would stop the exporter)
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the exporter has closed its end
                break
            if not chunk:
                break
            out += chunk
        os.close(primary)
        assert proc.wait(timeout=60) == 0
        lines = out.decode().replace("\r\n", "\n").splitlines()
        with flightrec.load(dump) as rec:
            seqs = [e.seq for e in rec.events()]
        assert [json.loads(line)["seq"] for line in lines] == seqs

    def test_nan_and_infinities_make_strict_json(self, recorder: Any, tmp_path: Path) -> None:
        """Every line is strict JSON (jq reads it): NaN and the infinities go out as the strings
        "NaN", "Infinity", "-Infinity", as in the Chrome export; `show --json` writes the same."""
        path = odd_numbers_dump()
        out = tmp_path / "events.jsonl"
        result = run_cli("export", str(path), "--format", "jsonl", "-o", str(out))
        assert result.returncode == 0, result.stderr
        rows = [json.loads(line, parse_constant=refuse_constant) for line in out.read_text().splitlines()]
        assert_jq_parses(out)
        by_kind = {r["kind"]: r["data"] for r in rows}
        assert by_kind["step_start"]["attrs"] == {"score": "NaN"}
        assert by_kind["llm"]["latency_ms"] == "NaN"
        assert by_kind["llm"]["request"] == [{"role": "user", "temp": "Infinity"}]
        assert (by_kind["note"]["ratio"], by_kind["note"]["low"]) == ("Infinity", "-Infinity")
        assert by_kind["note"]["nested"] == {"x": ["NaN", 1.5]}
        assert by_kind["tool_call"]["args"] == {"limit": "-Infinity"}
        assert by_kind["tool_result"]["result"] == "NaN"
        shown = run_cli("show", str(path), "--json")
        assert shown.returncode == 0, shown.stderr
        assert [json.loads(line, parse_constant=refuse_constant) for line in shown.stdout.splitlines()] == rows


def check_trace_events(doc: dict[str, Any]) -> dict[int, list[str]]:
    """Validate Chrome Trace Event JSON: per thread, B/E pairs nest with matching names and
    non-decreasing times. Returns the span names begun per tid."""
    assert isinstance(doc["traceEvents"], list)
    stacks: dict[tuple[int, int], list[dict[str, Any]]] = {}
    last_ts: dict[tuple[int, int], float] = {}
    begun: dict[int, list[str]] = {}
    for ev in doc["traceEvents"]:
        assert {"ph", "name", "pid"} <= set(ev)
        if ev["ph"] not in ("B", "E"):
            assert ev["ph"] in ("M", "i", "C")
            continue
        track = (ev["pid"], ev["tid"])
        assert isinstance(ev["ts"], (int, float))
        assert ev["ts"] >= last_ts.get(track, float("-inf")), "times go forward on a track"
        last_ts[track] = ev["ts"]
        stack = stacks.setdefault(track, [])
        if ev["ph"] == "B":
            stack.append(ev)
            begun.setdefault(ev["tid"], []).append(ev["name"])
        else:
            assert stack, f"E without B: {ev}"
            assert stack.pop()["name"] == ev["name"]
    assert all(not s for s in stacks.values()), "every B has its E"
    return begun


class TestChrome:
    def test_loads_as_trace_event_json_with_matching_pairs(self, dump: Path, tmp_path: Path) -> None:
        """The chrome export is valid Trace Event JSON; spans are nested B/E pairs; the open step is marked."""
        out = tmp_path / "trace.json"
        result = run_cli("export", str(dump), "-f", "chrome", "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        doc = json.loads(out.read_text())
        begun = check_trace_events(doc)
        assert begun[1] == ["plan", "chat gpt-test", "search", "book", "act"]
        b = {e["name"]: e for e in doc["traceEvents"] if e["ph"] == "B"}
        assert b["act"]["args"]["unfinished"] is True
        assert b["book"]["args"]["end.error_type"] == "TimeoutError"
        instants = [e["name"] for e in doc["traceEvents"] if e["ph"] == "i"]
        assert "note" in instants

    def test_nan_and_infinities_make_strict_json(self, recorder: Any, tmp_path: Path) -> None:
        """JSON has no NaN or Infinity: such values (in a payload, a step attribute, a resource
        counter) go out as strings, so that Perfetto's and a browser's strict parsers load the trace."""
        with flightrec.step("plan", score=float("nan")):
            flightrec.record("note", ratio=float("inf"), low=float("-inf"))
            flightrec.record("resource", rss=100, cpu_percent=float("nan"), threads=0)
        path = flightrec.dump(reason="test")
        assert path is not None
        out = tmp_path / "trace.json"
        result = run_cli("export", str(path), "-f", "chrome", "-o", str(out))
        assert result.returncode == 0, result.stderr

        def refuse(constant: str) -> Any:
            raise ValueError(f"not JSON: {constant}")

        doc = json.loads(out.read_text(), parse_constant=refuse)
        check_trace_events(doc)
        by_name = {e["name"]: e for e in doc["traceEvents"] if e["ph"] in ("B", "i", "C")}
        assert by_name["plan"]["args"]["attrs"]["score"] == "NaN"
        assert (by_name["note"]["args"]["ratio"], by_name["note"]["args"]["low"]) == ("Infinity", "-Infinity")
        assert by_name["resources"]["args"] == {"rss": 100, "threads": 0}

    def test_a_checkpoint_is_exported_without_its_chunk_bytes(self, recorder: Any, tmp_path: Path) -> None:
        """Its label, root and sizes go out; the root chunk it carries inline does not (as chunk events do not)."""
        with flightrec.step("plan"):
            flightrec.checkpoint([{"role": "user", "content": "hello " * 60}], label="after plan")
        path = flightrec.dump(reason="test")
        assert path is not None
        with flightrec.load(path) as rec:
            assert any("inline" in e.data for e in rec.events(["checkpoint"]))
        out = tmp_path / "trace.json"
        result = run_cli("export", str(path), "-f", "chrome", "-o", str(out))
        assert result.returncode == 0, result.stderr
        (cp,) = [e for e in json.loads(out.read_text())["traceEvents"] if e["name"] == "checkpoint"]
        assert cp["args"]["label"] == "after plan" and "root" in cp["args"]
        assert not any("inline" in key for key in cp["args"])

    def test_interleaved_async_steps_get_their_own_tracks(self, recorder: Any) -> None:
        """Steps of concurrent asyncio tasks overlap on one thread; they go to separate tracks."""

        async def worker(name: str) -> None:
            with flightrec.step(name):
                await asyncio.sleep(0.01)
                with flightrec.step(f"{name}.inner"):
                    await asyncio.sleep(0.01)

        async def main() -> None:
            await asyncio.gather(worker("a"), worker("b"), worker("c"))

        asyncio.run(main())
        path = flightrec.dump(reason="test")
        assert path is not None
        with flightrec.load(path) as rec:
            doc = export.chrome_trace(rec)
        begun = check_trace_events(doc)
        assert len(begun) == 3
        names = sorted(name for track in begun.values() for name in track)
        assert names == ["a", "a.inner", "b", "b.inner", "c", "c.inner"]


def decode_otlp_json_lines(text: str) -> list[dict[str, Any]]:
    spans = []
    for line in text.splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                spans.extend(ss["spans"])
    return spans


def attrs(span: Any) -> dict[str, Any]:
    """Attributes of an OTLP span (protobuf message) as a dict of Python values."""
    out = {}
    for kv in span.attributes:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which)
    return out


@needs_otlp
class TestOddDurations:
    @pytest.mark.parametrize("fmt", ["chrome", pytest.param("otlp", marks=needs_otlp)])
    @pytest.mark.parametrize("latency", [float("nan"), float("inf"), -5.0, 1e300])
    def test_a_duration_that_is_no_time_exports(self, recorder: Any, tmp_path: Path, fmt: str, latency: float) -> None:
        """An llm call or a tool result whose latency is NaN, infinite, negative or absurd (the
        agent's own figure) starts at its event: the export neither crashes nor goes back in time."""
        flightrec.llm(model="m", latency_ms=latency)
        with flightrec.step("plan"):
            flightrec.llm(model="m2", latency_ms=latency)
        path = flightrec.dump(reason="test")
        assert path is not None
        out = tmp_path / "out.json"
        result = run_cli("export", str(path), "-f", fmt, "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        with flightrec.load(path) as rec:
            tree = export.build_spans(rec)
            llm_ts = [e.ts_ns for e in rec.events(["llm"])]
            began = rec.meta["start_ns"]
        llms = sorted((s for s in tree.spans if s.kind == "llm"), key=lambda s: s.seq)
        assert [s.end_ns for s in llms] == llm_ts
        assert all(began <= s.start_ns <= s.end_ns for s in llms)
        assert began <= tree.root.start_ns


@needs_otlp
class TestOtlpFile:
    def test_json_lines_hold_one_tree_with_hex_ids(self, dump: Path, tmp_path: Path) -> None:
        """OTLP/JSON: hex ids, one trace, every parent present, GenAI names and attributes."""
        out = tmp_path / "spans.json"
        result = run_cli("export", str(dump), "-f", "otlp", "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert "exported 6 spans" in result.stderr
        spans = decode_otlp_json_lines(out.read_text())
        assert len({s["traceId"] for s in spans}) == 1
        assert all(len(s["traceId"]) == 32 and len(s["spanId"]) == 16 for s in spans)
        ids = {s["spanId"] for s in spans}
        roots = [s for s in spans if "parentSpanId" not in s or not s["parentSpanId"]]
        assert len(roots) == 1
        assert all(s["parentSpanId"] in ids for s in spans if s is not roots[0])
        names = sorted(s["name"] for s in spans)
        assert sorted(n for n in names if not n.startswith("invoke_agent")) == [
            "act",
            "chat gpt-test",
            "execute_tool book",
            "execute_tool search",
            "plan",
        ]

    def test_binary_protobuf_and_stable_ids(self, dump: Path, tmp_path: Path) -> None:
        """`.pb` is an ExportTraceServiceRequest; two exports of one dump have the same ids."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        ids = []
        for name in ("a.pb", "b.pb"):
            with flightrec.load(dump) as rec:
                export.write_otlp(rec, tmp_path / name)
            req = ExportTraceServiceRequest.FromString((tmp_path / name).read_bytes())
            ids.append(
                sorted(
                    (s.trace_id.hex(), s.span_id.hex())
                    for rs in req.resource_spans
                    for ss in rs.scope_spans
                    for s in ss.spans
                )
            )
        assert len(ids[0]) == 6
        assert ids[0] == ids[1]

    def test_nan_and_infinities_make_strict_json(self, recorder: Any, tmp_path: Path) -> None:
        """The OTLP/JSON file is strict JSON, and so is every attribute that holds JSON text
        (tool arguments and results, messages, payloads): NaN and infinities as strings."""
        path = odd_numbers_dump()
        out = tmp_path / "spans.json"
        result = run_cli("export", str(path), "-f", "otlp", "-o", str(out))
        assert result.returncode == 0, result.stderr
        for line in out.read_text().splitlines():
            json.loads(line, parse_constant=refuse_constant)
        assert_jq_parses(out)
        spans = decode_otlp_json_lines(out.read_text())
        values = {
            kv["key"]: kv["value"]
            for s in spans
            for kv in [*s["attributes"], *(a for e in s.get("events", []) for a in e["attributes"])]
        }
        as_json = {
            key: json.loads(values[key]["stringValue"], parse_constant=refuse_constant)
            for key in ("gen_ai.input.messages", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "nested")
        }
        assert as_json == {
            "gen_ai.input.messages": [{"role": "user", "temp": "Infinity"}],
            "gen_ai.tool.call.arguments": {"limit": "-Infinity"},
            "gen_ai.tool.call.result": "NaN",
            "nested": {"x": ["NaN", 1.5]},
        }
        # A number attribute stays a double: OTLP/JSON writes a NaN double as the string "NaN".
        assert values["flightrec.attr.score"] == {"doubleValue": "NaN"}


@needs_otlp
class TestSpanTree:
    def test_an_integrations_llm_step_and_its_llm_event_are_one_span(self, recorder: Any) -> None:
        """A chat span recorded through an integration (a step holding one llm event) exports as one span."""
        from flightrec.integrations._bridge import SpanBridge

        bridge = SpanBridge("test")
        bridge.step_start("agent", None, "invoke_agent bot")
        bridge.llm_start("chat", "agent", "chat gpt-x", {"gen_ai.operation.name": "text_completion"})
        bridge.llm_end("chat", model="gpt-x", prompt_tokens=5, completion_tokens=1)
        bridge.step_end("agent")
        path = flightrec.dump(reason="test")
        assert path is not None
        with flightrec.load(path) as rec:
            tree = export.build_spans(rec)
            [agent, chat] = tree.spans
            [otlp_root, otlp_agent, otlp_chat] = export.otlp_spans(rec)
        assert (chat.kind, chat.name, chat.parent) == ("llm", "chat gpt-x", agent.key)
        assert otlp_chat.attributes["gen_ai.operation.name"] == "text_completion"
        assert otlp_chat.attributes["gen_ai.usage.input_tokens"] == 5
        assert otlp_chat.parent.span_id == otlp_agent.context.span_id
        assert otlp_agent.parent.span_id == otlp_root.context.span_id

    def test_a_run_inside_a_tool_call_is_nested_under_the_call(self, recorder: Any) -> None:
        """An integration's span started inside a tool call (a sub-agent run by the tool) is a
        child of the tool call's span in exports, not a sibling of it."""
        from flightrec.integrations._bridge import SpanBridge

        bridge = SpanBridge("test")
        bridge.step_start("turn", None, "turn 1")
        bridge.tool_start("call", "turn", "delegate", {"q": "hi"})
        bridge.step_start("inner", "call", "agent inner")
        bridge.tool_start("inner_call", "inner", "lookup", {})
        bridge.tool_end("inner_call", result="found")
        bridge.step_end("inner")
        bridge.tool_end("call", result="done")
        bridge.step_end("turn")
        path = flightrec.dump(reason="test")
        assert path is not None
        with flightrec.load(path) as rec:
            tree = {node.name: node for node in export.build_spans(rec).spans}
            otlp = {span.name: span for span in export.otlp_spans(rec)}
        assert tree["agent inner"].parent == tree["delegate"].key
        assert tree["lookup"].parent == tree["agent inner"].key
        assert tree["delegate"].parent == tree["turn 1"].key
        assert otlp["agent inner"].parent.span_id == otlp["execute_tool delegate"].context.span_id

    def test_a_step_claiming_to_run_in_a_call_it_holds_is_not_a_cycle(self, recorder: Any) -> None:
        """A crafted recording: a step says it runs inside a tool call recorded inside it. The
        tree stays a tree (the claim is ignored) and exports finish."""
        with flightrec.step("odd", in_call=999):
            flightrec.record("tool_call", tool="t", call_id=999, args=None)
            flightrec.record("tool_result", tool="t", call_id=999, result=1, latency_ms=1.0)
        path = flightrec.dump(reason="test")
        assert path is not None
        with flightrec.load(path) as rec:
            tree = export.build_spans(rec)
            doc = export.chrome_trace(rec)
        by_name = {node.name: node for node in tree.spans}
        assert (by_name["odd"].parent, by_name["t"].parent) == (tree.root.key, by_name["odd"].key)
        check_trace_events(doc)

    def test_a_task_that_outlives_its_step_keeps_its_own_end(self, recorder: Any) -> None:
        """A step whose task runs on after the step that started it ends: exported with its own
        duration (it was cut at its parent's end), and the chrome trace still pairs."""

        async def background() -> None:
            with flightrec.step("bg-task"):
                await asyncio.sleep(0.05)

        async def main() -> None:
            with flightrec.step("parent"):
                task = asyncio.create_task(background())
                await asyncio.sleep(0.005)
            await task

        asyncio.run(main())
        path = flightrec.dump(reason="test")
        assert path is not None
        with flightrec.load(path) as rec:
            steps = {s.name: s for s in rec.steps()}
            tree = {node.name: node for node in export.build_spans(rec).spans}
            doc = export.chrome_trace(rec)
        bg, parent = tree["bg-task"], tree["parent"]
        assert bg.parent == parent.key and bg.end_ns is not None and parent.end_ns is not None
        assert bg.end_ns > parent.end_ns
        assert (bg.end_ns - bg.start_ns) / 1e6 >= 0.9 * (steps["bg-task"].duration_ms or 0) >= 45
        check_trace_events(doc)


class _Receiver(http.server.BaseHTTPRequestHandler):
    """A minimal OTLP/HTTP traces endpoint: decodes each request with opentelemetry-proto."""

    received: list[Any]

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path != "/v1/traces" or self.headers["Content-Type"] != "application/x-protobuf":
            self.send_response(404)
            self.end_headers()
            return
        self.server.received.append(ExportTraceServiceRequest.FromString(body))  # type: ignore[attr-defined]
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Any]:
    """An OTLP/HTTP receiver on 127.0.0.1 (an ephemeral port), stopped afterwards."""
    pytest.importorskip("opentelemetry.proto")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@needs_otlp
class TestOtlpEndpoint:
    def test_spans_arrive_at_a_real_otlp_http_receiver(self, dump: Path, receiver: Any) -> None:
        """`--endpoint` POSTs protobuf to /v1/traces; the receiver decodes GenAI spans."""
        url = f"http://127.0.0.1:{receiver.server_address[1]}"
        result = run_cli("export", str(dump), "-f", "otlp", "--endpoint", url)
        assert result.returncode == 0, result.stderr
        assert f"6 spans sent to {url}/v1/traces" in result.stderr
        [request] = receiver.received
        [resource_spans] = request.resource_spans
        resource = {kv.key: kv.value for kv in resource_spans.resource.attributes}
        # the recorded program's name (pytest runs as `pytest` or `python -m pytest`)
        assert resource["service.name"].string_value == flightrec.load(dump).meta["prog"]
        assert dump.name.split("-")[1] == str(resource["process.pid"].int_value)
        spans = {s.name: s for ss in resource_spans.scope_spans for s in ss.spans}
        tool = spans["execute_tool book"]
        a = attrs(tool)
        assert (a["gen_ai.operation.name"], a["gen_ai.tool.name"], a["error.type"], a["flightrec.tool.origin"]) == (
            "execute_tool",
            "book",
            "TimeoutError",
            "transient",
        )
        assert json.loads(a["gen_ai.tool.call.arguments"]) == {"flight": "SK1"}
        assert tool.status.code == 2  # STATUS_CODE_ERROR
        ok = attrs(spans["execute_tool search"])
        assert json.loads(ok["gen_ai.tool.call.result"]) == ["OSLO"]
        llm = attrs(spans["chat gpt-test"])
        assert (
            llm["gen_ai.operation.name"],
            llm["gen_ai.request.model"],
            llm["gen_ai.usage.input_tokens"],
            llm["gen_ai.usage.output_tokens"],
        ) == ("chat", "gpt-test", 100, 20)
        assert attrs(spans["act"])["flightrec.unfinished"] is True
        plan = spans["plan"]
        assert spans["chat gpt-test"].parent_span_id == plan.span_id
        assert tool.parent_span_id == plan.span_id
        assert [e.name for e in plan.events] == ["note"]

    def test_unreachable_endpoint_is_one_clear_error(self, dump: Path, receiver: Any) -> None:
        """A collector that refuses the export gives one error line and exit code 9."""
        url = f"http://127.0.0.1:{receiver.server_address[1]}/wrong/path"
        result = run_cli("export", str(dump), "-f", "otlp", "--endpoint", url, "--timeout", "2")
        assert result.returncode == 9
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("flightrec: error: OTLP export to ")

    def test_endpoint_needs_the_otlp_format(self, dump: Path) -> None:
        """--endpoint with another format is refused."""
        result = run_cli("export", str(dump), "-f", "jsonl", "--endpoint", "http://127.0.0.1:1")
        assert result.returncode == 2  # a usage error
        assert "--endpoint needs --format otlp" in result.stderr

    @pytest.mark.parametrize(
        ("url", "says"),
        [
            ("ftp://127.0.0.1:1", "--endpoint ftp://127.0.0.1:1: not an http:// or https:// URL"),
            ("file:///tmp/x", "--endpoint file:///tmp/x: not an http:// or https:// URL"),
            ("", "--endpoint '': no host to send to"),
            ("http://", "--endpoint 'http://': no host to send to"),
            ("http://[::1", "--endpoint 'http://[::1': not a valid URL (Invalid IPv6 URL)"),
            (
                "http://127.0.0.1:99999",
                "--endpoint 'http://127.0.0.1:99999': not a valid URL (Port out of range 0-65535)",
            ),
            ("localhost:4318x", "--endpoint 'localhost:4318x': not a valid URL (Port could not be cast to integer"),
        ],
        ids=["ftp", "file", "empty", "no host", "unclosed IPv6", "port over 65535", "port not a number"],
    )
    def test_an_endpoint_that_is_not_an_http_url_is_a_usage_error(self, dump: Path, url: str, says: str) -> None:
        """Refused before anything is sent (exit 2), not reported as a failed export (exit 9)."""
        result = run_cli("export", str(dump), "-f", "otlp", "--endpoint", url)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"flightrec: error: {says}") and result.stderr.count("\n") == 1

    @pytest.mark.parametrize(
        ("flag", "value", "says"),
        [
            ("--timeout", "0", "--timeout: must be a number of seconds above 0"),
            ("--timeout", "-3", "--timeout: must be a number of seconds above 0"),
            ("--timeout", "nan", "--timeout: must be a number of seconds above 0"),
            ("--header", "no-equals-sign", "--header 'no-equals-sign': expected KEY=VALUE"),
            ("--header", "X-Key=a\nb", "--header 'X-Key=a\\nb': a header cannot hold a line break or NUL"),
        ],
    )
    def test_a_bad_timeout_or_header_is_a_usage_error(self, dump: Path, flag: str, value: str, says: str) -> None:
        """Refused before anything is sent (exit 2), not reported as a failed export (exit 9)."""
        result = run_cli("export", str(dump), "-f", "otlp", "--endpoint", "http://127.0.0.1:1", flag, value)
        assert result.returncode == 2, result.stderr
        assert says in result.stderr and "OTLP export" not in result.stderr

    def test_missing_file_is_one_line(self, tmp_path: Path) -> None:
        """A missing recording is reported like every other verb does."""
        result = run_cli("export", str(tmp_path / "nope.frec"))
        assert result.returncode == 5
        assert "no such file" in result.stderr
