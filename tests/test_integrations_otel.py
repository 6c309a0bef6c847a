"""The OpenTelemetry SpanProcessor, against the real SDK (a real TracerProvider)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import flightrec
from flightrec.event import Event

pytest.importorskip("opentelemetry.sdk.trace", reason="opentelemetry-sdk is not installed")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode

from flightrec.integrations import otel

from .conftest import run_child


@pytest.fixture
def tracer() -> Iterator[Any]:
    """A tracer of a fresh SDK provider with the flightrec processor."""
    provider = TracerProvider()
    provider.add_span_processor(otel.FlightrecSpanProcessor())
    yield provider.get_tracer("test")
    provider.shutdown()


def _events(rec: Any) -> list[Event]:
    with flightrec.load(rec.ring_path) as recording:
        return list(recording.events())


def _kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


class TestGenAIMapping:
    def test_agent_chat_and_tool_spans_become_steps_llm_and_tool_events(self, recorder: Any, tracer: Any) -> None:
        """invoke_agent -> step, chat -> step holding an llm event, execute_tool -> tool_call/tool_result."""
        # GIVEN an agent span with a chat span and a tool span inside, as pydantic-ai emits them
        with tracer.start_as_current_span(
            "invoke_agent travel", attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "travel"}
        ):
            with tracer.start_as_current_span(
                "chat gpt-4o", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
            ) as chat:
                chat.set_attribute("gen_ai.response.model", "gpt-4o-2024-08-06")
                chat.set_attribute("gen_ai.usage.input_tokens", 120)
                chat.set_attribute("gen_ai.usage.output_tokens", 17)
            with tracer.start_as_current_span(
                "execute_tool search",
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "search",
                    "gen_ai.tool.call.id": "call_1",
                    "gen_ai.tool.call.arguments": '{"q": "flights to Oslo"}',
                },
            ) as tool:
                tool.set_attribute("gen_ai.tool.call.result", '{"hits": 3}')
        # WHEN the ring is read
        events = _events(recorder)
        # THEN the spans map onto the agent vocabulary
        assert _kinds(events) == ["step_start", "step_start", "llm", "step_end", "tool_call", "tool_result", "step_end"]
        agent_start, chat_start, llm, _chat_end, call, result, agent_end = events
        assert agent_start.data["name"] == "invoke_agent travel"
        assert agent_start.data["attrs"]["gen_ai.agent.name"] == "travel"
        assert (chat_start.span, agent_start.span) == (llm.span, llm.parent)
        assert {k: llm.data[k] for k in ("model", "prompt_tokens", "completion_tokens")} == {
            "model": "gpt-4o-2024-08-06",
            "prompt_tokens": 120,
            "completion_tokens": 17,
        }
        assert call.span == agent_start.span
        assert {k: call.data[k] for k in ("tool", "args", "ext_call_id", "attempt")} == {
            "tool": "search",
            "args": {"q": "flights to Oslo"},
            "ext_call_id": "call_1",
            "attempt": 1,
        }
        assert result.data["result"] == {"hits": 3}
        assert call.data["call_id"] == result.data["call_id"]
        assert agent_end.span == agent_start.span and "error" not in agent_end.data

    def test_failed_tool_span_records_the_error_and_its_origin(self, recorder: Any, tracer: Any) -> None:
        """An execute_tool span ending with an exception becomes a failed tool_result (origin transient)."""
        with (
            pytest.raises(TimeoutError),
            tracer.start_as_current_span(
                "execute_tool fetch", attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "fetch"}
            ),
        ):
            raise TimeoutError("upstream took 30s")
        [call, result] = _events(recorder)
        assert call.kind == "tool_call" and call.data["args"] is None
        assert result.data["error_type"] == "TimeoutError"
        assert result.data["origin"] == "transient"
        assert "upstream took 30s" in result.data["error"]

    def test_http_status_error_type_gives_the_origin(self, recorder: Any, tracer: Any) -> None:
        """error.type "429" (the GenAI convention for HTTP failures) is a transient failure."""
        with tracer.start_as_current_span(
            "execute_tool api", attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "api"}
        ) as span:
            span.set_attribute("error.type", "429")
            span.set_status(Status(StatusCode.ERROR, "rate limited"))
        result = _events(recorder)[-1]
        assert (result.data["error"], result.data["origin"]) == ("rate limited", "transient")

    def test_a_span_named_a_tool_only_after_it_started_keeps_its_call(self, recorder: Any, tracer: Any) -> None:
        """gen_ai.operation.name set inside the span (not at its start): it began as a step, which
        ends, and holds the tool call with its arguments, result or error."""
        with tracer.start_as_current_span("execute_tool search") as span:
            span.set_attribute("gen_ai.operation.name", "execute_tool")
            span.set_attribute("gen_ai.tool.name", "search")
            span.set_attribute("gen_ai.tool.call.arguments", '{"q": "oslo"}')
            span.set_attribute("gen_ai.tool.call.result", '["SK1"]')
        with pytest.raises(TimeoutError), tracer.start_as_current_span("execute_tool book") as span:
            span.set_attribute("gen_ai.operation.name", "execute_tool")
            span.set_attribute("gen_ai.tool.name", "book")
            raise TimeoutError("booking timed out")
        with flightrec.load(recorder.ring_path) as rec:
            steps, tools = rec.steps(), rec.tools()
        assert [(s.name, s.end_seq is not None) for s in steps] == [
            ("execute_tool search", True),
            ("execute_tool book", True),
        ]
        assert [(t.tool, t.args, t.result, t.error, t.origin) for t in tools] == [
            ("search", {"q": "oslo"}, ["SK1"], None, None),
            ("book", None, None, "TimeoutError: booking timed out", "transient"),
        ]
        assert [t.span for t in tools] == [s.id for s in steps]
        assert steps[1].error is not None

    def test_spans_named_llm_calls_late_leave_plain_steps_their_late_attributes(
        self, recorder: Any, tracer: Any
    ) -> None:
        """Spans that become LLM calls only after they start (tracked as steps until then) are
        forgotten at their end: after more of them than the processor tracks at once, a plain
        step's end still carries only the attributes set while it ran."""
        for _ in range(otel._MAX_TRACKED + 10):
            with tracer.start_as_current_span("chat") as span:
                span.set_attribute("gen_ai.operation.name", "chat")
        with tracer.start_as_current_span("GET /weather", attributes={"http.request.method": "GET"}) as span:
            span.set_attribute("http.response.status_code", 200)
        end = _events(recorder)[-1]
        assert end.kind == "step_end" and end.data["attrs"] == {"http.response.status_code": 200}

    def test_plain_span_is_a_step_with_its_late_attributes_on_the_end(self, recorder: Any, tracer: Any) -> None:
        """A non-GenAI span (an HTTP call) is a step; attributes set while it ran go on step_end."""
        with tracer.start_as_current_span("GET /weather", attributes={"http.request.method": "GET"}) as span:
            span.set_attribute("http.response.status_code", 200)
        start, end = _events(recorder)
        assert start.data["attrs"]["http.request.method"] == "GET"
        assert end.data["attrs"] == {"http.response.status_code": 200}

    def test_spans_nest_under_an_open_flightrec_step(self, recorder: Any, tracer: Any) -> None:
        """A span started inside `with flightrec.step(...)` is that step's child."""
        with flightrec.step("plan") as outer, tracer.start_as_current_span("inner"):
            pass
        inner_start = next(e for e in _events(recorder) if e.kind == "step_start" and e.data["name"] == "inner")
        assert outer.id == inner_start.parent

    def test_nothing_is_recorded_without_a_recorder(self, tracer: Any) -> None:
        """With no recorder running the processor is inert."""
        with tracer.start_as_current_span("x", attributes={"gen_ai.operation.name": "chat"}):
            pass
        assert flightrec.get_recorder() is None


class TestOtherConventions:
    """Spans of OpenInference and OpenLLMetry instrumentors, as they set their attributes."""

    def test_an_openinference_llm_span_is_an_llm_call(self, recorder: Any, tracer: Any) -> None:
        with tracer.start_as_current_span(
            "ChatCompletion",
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o",
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": "Be brief.",
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": "Flights to Oslo?",
                "llm.invocation_parameters": '{"temperature": 0}',
            },
        ) as span:
            span.set_attribute("llm.output_messages.0.message.role", "assistant")
            span.set_attribute("llm.output_messages.0.message.content", "Three.")
            span.set_attribute("llm.token_count.prompt", 21)
            span.set_attribute("llm.token_count.completion", 2)
        start, llm, _end = _events(recorder)
        assert (llm.kind, llm.data["model"], llm.data["prompt_tokens"], llm.data["completion_tokens"]) == (
            "llm",
            "gpt-4o",
            21,
            2,
        )
        assert llm.data["request"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Flights to Oslo?"},
        ]
        assert llm.data["response"] == [{"role": "assistant", "content": "Three."}]
        # the step keeps what was not mapped, and not the attributes that were
        assert start.data["attrs"]["openinference.span.kind"] == "LLM"
        assert start.data["attrs"]["llm.invocation_parameters"] == '{"temperature": 0}'
        assert not any(k.startswith(("llm.input_messages", "llm.model_name")) for k in start.data["attrs"])

    @pytest.mark.parametrize(
        ("start", "end", "expected"),
        [
            pytest.param(
                {
                    "openinference.span.kind": "TOOL",
                    "tool.name": "search",
                    "input.value": '{"q": "oslo"}',
                    "input.mime_type": "application/json",
                },
                {"output.value": '["SK1", "TP55"]'},
                ("search", {"q": "oslo"}, ["SK1", "TP55"]),
                id="openinference",
            ),
            pytest.param(
                {
                    "traceloop.span.kind": "tool",
                    "traceloop.entity.name": "get_weather",
                    "traceloop.entity.input": '{"args": [], "kwargs": {"city": "Oslo"}}',
                },
                {"traceloop.entity.output": '{"forecast": "sunny"}'},
                ("get_weather", {"args": [], "kwargs": {"city": "Oslo"}}, {"forecast": "sunny"}),
                id="traceloop",
            ),
        ],
    )
    def test_a_tool_span_is_a_tool_call(
        self, recorder: Any, tracer: Any, start: dict[str, Any], end: dict[str, Any], expected: tuple[Any, ...]
    ) -> None:
        with tracer.start_as_current_span("tool", attributes=start) as span:
            span.set_attributes(end)  # (the result is set before the span ends)
        with flightrec.load(recorder.ring_path) as rec:
            tools = rec.tools()
        assert [(t.tool, t.args, t.result, t.error) for t in tools] == [(*expected, None)]

    def test_an_openllmetry_chat_span_is_an_llm_call(self, recorder: Any, tracer: Any) -> None:
        with tracer.start_as_current_span(
            "openai.chat",
            attributes={
                "llm.request.type": "chat",
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": "Hi",
            },
        ) as span:
            span.set_attribute("gen_ai.completion.0.role", "assistant")
            span.set_attribute("gen_ai.completion.0.content", "Hello")
            span.set_attribute("gen_ai.usage.prompt_tokens", 12)
            span.set_attribute("gen_ai.usage.completion_tokens", 3)
        _start, llm, _end = _events(recorder)
        assert llm.kind == "llm"
        assert (llm.data["model"], llm.data["prompt_tokens"], llm.data["completion_tokens"]) == ("gpt-4o", 12, 3)
        assert llm.data["request"] == [{"role": "user", "content": "Hi"}]
        assert llm.data["response"] == [{"role": "assistant", "content": "Hello"}]

    def test_a_chain_span_stays_a_step(self, recorder: Any, tracer: Any) -> None:
        with tracer.start_as_current_span(
            "RunnableSequence", attributes={"openinference.span.kind": "CHAIN", "input.value": "question"}
        ):
            pass
        start, end = _events(recorder)
        assert (start.kind, end.kind) == ("step_start", "step_end")
        assert start.data["attrs"]["openinference.span.kind"] == "CHAIN"
        assert start.data["attrs"]["input.value"] == "question"


class TestCrash:
    def test_span_open_at_the_crash_is_unfinished_in_the_dump(self, recorder: Any, tracer: Any, frdir: Path) -> None:
        """A span still open when the dump is written shows as a step without an end."""
        with tracer.start_as_current_span("invoke_agent bot", attributes={"gen_ai.operation.name": "invoke_agent"}):
            tracer.start_span("chat slow-model", attributes={"gen_ai.operation.name": "chat"})  # never ended
            path = flightrec.dump(reason="test")
        assert path is not None
        with flightrec.load(path) as rec:
            events = list(rec.events())
            from flightrec.export import build_spans

            tree = build_spans(rec)
        assert _kinds(events) == ["step_start", "step_start"]
        unfinished = {s.name for s in tree.spans if s.unfinished}
        assert {"invoke_agent bot", "chat slow-model"} == unfinished

    def test_uncaught_exception_in_a_child_dumps_the_open_spans(self, frdir: Path) -> None:
        """In a real process: import flightrec.auto, configure OTel afterwards, crash mid-span."""
        result = run_child(
            """
            import flightrec.auto
            from opentelemetry import trace
            from opentelemetry.sdk.trace import TracerProvider
            trace.set_tracer_provider(TracerProvider())
            tracer = trace.get_tracer("agent")
            span = tracer.start_span("invoke_agent crashy", attributes={"gen_ai.operation.name": "invoke_agent"})
            raise RuntimeError("model returned garbage")
            """,
            frdir,
        )
        assert result.returncode == 1, result.stderr
        [dump] = frdir.glob("*.frec")
        with flightrec.load(dump) as rec:
            starts = [e.data["name"] for e in rec.events(["step_start"])]
            ends = list(rec.events(["step_end"]))
        assert starts == ["invoke_agent crashy"]
        assert ends == []


class TestEnable:
    def test_enable_adds_the_processor_to_providers_created_later(self, recorder: Any) -> None:
        """enable() reaches SDK providers created after it, once each."""
        otel.enable()
        try:
            provider = TracerProvider()
            otel.enable(provider)  # idempotent
            with provider.get_tracer("t").start_as_current_span("later"):
                pass
            assert _kinds(_events(recorder)) == ["step_start", "step_end"]
        finally:
            otel.disable(provider)


class TestHugeValues:
    def test_a_huge_json_tool_result_is_cut_with_its_full_length(self, recorder: Any, tracer: Any) -> None:
        """A tool result of megabytes of JSON text is stored as text cut to max_value, with
        `result_len`, not decoded and walked (that cost the agent a second per span)."""
        import json

        text = json.dumps([{"id": i, "name": f"row {i}"} for i in range(100_000)])
        with tracer.start_as_current_span(
            "execute_tool query",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "query"},
        ) as span:
            span.set_attribute("gen_ai.tool.call.result", text)
        result = _events(recorder)[-1]
        assert (result.data["result"], result.data["result_len"]) == (text[: recorder.config.max_value], len(text))


class TestSeveralProcessors:
    def test_a_processor_added_besides_the_global_one_records_once(self, recorder: Any) -> None:
        """`import flightrec.auto` adds the processor to every provider; an app that also adds
        its own FlightrecSpanProcessor (as this module's docstring says) records each span once."""
        otel.enable()
        try:
            provider = TracerProvider()  # gets the global processor
            provider.add_span_processor(otel.FlightrecSpanProcessor())
            with provider.get_tracer("app").start_as_current_span(
                "chat gpt-4o", attributes={"gen_ai.operation.name": "chat"}
            ):
                pass
            assert _kinds(_events(recorder)) == ["step_start", "llm", "step_end"]
        finally:
            otel.disable(provider)
