"""The OpenAI Agents SDK TracingProcessor, with the real `openai-agents` and a local fake model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

import flightrec
from flightrec.event import Event

pytest.importorskip("agents.tracing", reason="openai-agents is not installed")

from agents import Agent, ModelResponse, Runner, Usage, function_tool, set_trace_processors
from agents.models.interface import Model
from agents.tracing import generation_span
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from flightrec.integrations.openai_agents import FlightrecTracingProcessor


class ScriptedModel(Model):
    """A local model replaying scripted outputs, tracing a generation span like the SDK's own models."""

    def __init__(self, turns: list[list[Any]]) -> None:
        self.turns = list(turns)

    async def get_response(
        self,
        system_instructions: Any,
        input: Any,
        model_settings: Any,
        tools: Any,
        output_schema: Any,
        handoffs: Any,
        tracing: Any,
        *,
        previous_response_id: Any = None,
        conversation_id: Any = None,
        prompt: Any = None,
    ) -> ModelResponse:
        output = self.turns.pop(0)
        items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        with generation_span(model="scripted-1", input=items, disabled=tracing.is_disabled()) as span:
            span.span_data.output = [o.model_dump() for o in output]
            span.span_data.usage = {"input_tokens": 42, "output_tokens": 7}
        usage = Usage(requests=1, input_tokens=42, output_tokens=7, total_tokens=49)
        return ModelResponse(output=output, usage=usage, response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def _call(name: str, args: dict[str, Any], call_id: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        id=call_id, call_id=call_id, name=name, arguments=json.dumps(args), type="function_call"
    )


def _say(text: str) -> ResponseOutputMessage:
    content = [ResponseOutputText(text=text, type="output_text", annotations=[])]
    return ResponseOutputMessage(id="msg", content=content, role="assistant", status="completed", type="message")


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@function_tool
def book_hotel(city: str) -> str:
    """Book a hotel."""
    raise RuntimeError("hotel API down")


@pytest.fixture
def processor() -> Iterator[FlightrecTracingProcessor]:
    """Only our processor: the SDK's default one would try to upload traces."""
    proc = FlightrecTracingProcessor()
    set_trace_processors([proc])
    yield proc
    set_trace_processors([])


def _events(rec: Any) -> list[Event]:
    with flightrec.load(rec.ring_path) as recording:
        return list(recording.events())


class TestAgentsRun:
    def test_run_with_tools_is_recorded(self, recorder: Any, processor: Any) -> None:
        """Trace, agent and turn spans become steps; generations llm events; function spans tool calls."""
        # GIVEN an agent whose model asks for the weather, then a hotel booking that fails
        model = ScriptedModel(
            [
                [_call("get_weather", {"city": "Oslo"}, "call_w")],
                [_call("book_hotel", {"city": "Oslo"}, "call_h")],
                [_say("It is sunny, but I could not book the hotel.")],
            ]
        )
        agent = Agent(name="travel", instructions="Help travellers.", model=model, tools=[get_weather, book_hotel])
        # WHEN it runs
        result = asyncio.run(Runner.run(agent, "Weather in Oslo, and book a hotel"))
        assert "could not book" in result.final_output
        events = _events(recorder)
        # THEN the run is a tree of balanced steps under the trace's step
        starts = [e for e in events if e.kind == "step_start"]
        assert len(starts) == sum(1 for e in events if e.kind == "step_end")
        assert starts[0].parent is None
        assert "agent travel" in [s.data["name"] for s in starts]
        # AND each model call is an llm event with the usage
        llms = [e for e in events if e.kind == "llm"]
        assert len(llms) == 3
        assert {("scripted-1", 42, 7)} == {
            (e.data["model"], e.data["prompt_tokens"], e.data["completion_tokens"]) for e in llms
        }
        # AND the tool calls carry the arguments the model asked for, at the call
        calls = [e for e in events if e.kind == "tool_call"]
        results = [e for e in events if e.kind == "tool_result"]
        assert [(c.data["tool"], c.data["args"], c.data["ext_call_id"]) for c in calls] == [
            ("get_weather", {"city": "Oslo"}, "call_w"),
            ("book_hotel", {"city": "Oslo"}, "call_h"),
        ]
        assert results[0].data["result"] == "sunny in Oslo"
        assert "error" not in results[0].data
        assert "error" in results[1].data
        # AND the tool calls happen inside the agent's turn steps
        step_names = {s.span: s.data["name"] for s in starts}
        assert all(step_names[c.span].startswith("turn") for c in calls)

    def test_span_open_at_a_dump_is_unfinished(self, recorder: Any, processor: Any) -> None:
        """A dump taken while the agent runs holds its steps without their ends."""
        dumped: list[Any] = []

        @function_tool
        def snapshot() -> str:
            """Dump the recorder now."""
            dumped.append(flightrec.dump(reason="mid-run"))
            return "ok"

        model = ScriptedModel([[_call("snapshot", {}, "c1")], [_say("done")]])
        asyncio.run(Runner.run(Agent(name="a", model=model, tools=[snapshot]), "go"))
        from flightrec.export import build_spans

        with flightrec.load(dumped[0]) as rec:
            tree = build_spans(rec)
        unfinished = sorted(s.name for s in tree.spans if s.unfinished)
        assert "agent a" in unfinished and "snapshot" in unfinished


class DelayedModel(ScriptedModel):
    """A ScriptedModel whose replies take the given times, as a remote model's do."""

    def __init__(self, turns: list[list[Any]], delays: list[float]) -> None:
        super().__init__(turns)
        self.delays = list(delays)

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        response = await super().get_response(*args, **kwargs)
        await asyncio.sleep(self.delays.pop(0))
        return response


class TestConcurrentRuns:
    def test_runs_sharing_a_trace_keep_their_own_tool_arguments(self, recorder: Any, processor: Any) -> None:
        """Two runs in one `trace()` call the same tool concurrently: each call carries the
        arguments and call id its own model asked for, not the other run's."""
        from agents import trace

        @function_tool
        async def forecast(city: str) -> str:
            """The forecast for a city."""
            return f"rain in {city}"

        def agent(city: str, delay: float) -> Agent[Any]:
            # the first model asks first but answers last: its call starts second
            model = DelayedModel([[_call("forecast", {"city": city}, f"call_{city}")], [_say(city)]], [delay, 0])
            return Agent(name=city, model=model, tools=[forecast])

        async def main() -> None:
            with trace("batch"):
                await asyncio.gather(Runner.run(agent("Oslo", 0.05), "?"), Runner.run(agent("Rome", 0), "?"))

        asyncio.run(main())
        with flightrec.load(recorder.ring_path) as rec:
            steps = {s.id: s for s in rec.steps()}
            tools = rec.tools()
            calls = {e.data["call_id"]: e.data for e in rec.events(["tool_call"])}

        def agent_of(span: int | None) -> str:
            while span is not None and not steps[span].name.startswith("agent "):
                span = steps[span].parent
            return steps[span].name if span is not None else "?"

        assert sorted((agent_of(t.span), t.args, calls[t.call_id]["ext_call_id"], t.result) for t in tools) == [
            ("agent Oslo", {"city": "Oslo"}, "call_Oslo", "rain in Oslo"),
            ("agent Rome", {"city": "Rome"}, "call_Rome", "rain in Rome"),
        ]


class TestHugeValues:
    def test_a_huge_tool_output_is_cut_with_its_full_length(self, recorder: Any, processor: Any) -> None:
        """A function tool returning megabytes of text: stored cut to max_value, with `result_len`."""
        text = "row;" * 500_000

        @function_tool
        def export_table() -> str:
            """Export the table."""
            return text

        model = ScriptedModel([[_call("export_table", {}, "c1")], [_say("done")]])
        asyncio.run(Runner.run(Agent(name="a", model=model, tools=[export_table]), "go"))
        [result] = [e for e in _events(recorder) if e.kind == "tool_result"]
        assert (result.data["result"], result.data["result_len"]) == (text[: recorder.config.max_value], len(text))


class TestHandoffs:
    def test_a_handoff_names_the_agent_it_went_to(self, recorder: Any, processor: Any) -> None:
        """The SDK learns a handoff's target only after its span started: the step is not named
        "handoff triage -> None", and its end says where the run went."""
        billing = Agent(name="billing", model=ScriptedModel([[_say("refund issued")]]))
        triage = Agent(
            name="triage",
            model=ScriptedModel([[_call("transfer_to_billing", {}, "h1")]]),
            handoffs=[billing],
        )
        result = asyncio.run(Runner.run(triage, "I want a refund"))
        assert result.final_output == "refund issued"
        with flightrec.load(recorder.ring_path) as rec:
            [handoff] = [s for s in rec.steps() if s.name.startswith("handoff")]
            [end] = [e for e in rec.events(["step_end"]) if e.span == handoff.id]
        assert "None" not in handoff.name
        assert end.data["attrs"] == {"to_agent": "billing"}


class TestSeveralProcessors:
    def test_a_processor_added_twice_records_once(self, recorder: Any) -> None:
        """Two FlightrecTracingProcessor instances on the SDK's provider (the one enable() adds
        and one the app adds itself): each span is recorded once."""
        from agents import add_trace_processor

        set_trace_processors([FlightrecTracingProcessor()])
        add_trace_processor(FlightrecTracingProcessor())
        try:
            model = ScriptedModel([[_say("hello")]])
            asyncio.run(Runner.run(Agent(name="a", model=model), "hi"))
        finally:
            set_trace_processors([])
        events = _events(recorder)
        assert [e.kind for e in events].count("llm") == 1
        spans = [
            (e.data["attrs"].get("span_id"), e.data["attrs"].get("trace_id")) for e in events if e.kind == "step_start"
        ]
        assert len(spans) == len(set(spans))


class TestToolFailures:
    def test_a_failing_tool_is_recorded_with_its_exception_and_origin(self, recorder: Any, processor: Any) -> None:
        """The SDK answers the model with a message and keeps only redacted text on the span; the
        tool call still carries the exception's message, its class and its origin, as
        `@flightrec.tool` records them."""

        @function_tool
        def reserve(city: str) -> str:
            """Reserve a table."""
            raise ConnectionError(f"reservation service unreachable for {city}")

        model = ScriptedModel([[_call("reserve", {"city": "Oslo"}, "c1")], [_say("sorry")]])
        asyncio.run(Runner.run(Agent(name="a", model=model, tools=[reserve]), "go"))
        [result] = [e for e in _events(recorder) if e.kind == "tool_result"]
        assert (result.data["error"], result.data["error_type"], result.data["origin"]) == (
            "reservation service unreachable for Oslo",
            "ConnectionError",
            "transient",
        )

    def test_a_run_inside_an_except_block_does_not_take_that_exception(self, recorder: Any, processor: Any) -> None:
        """A run started while the app handles an exception: the tool's failure is the tool's
        own, and the steps that did not fail are not failed with the app's exception."""

        @function_tool
        def parse(text: str) -> str:
            """Parse a text."""
            raise ValueError("not a date")

        model = ScriptedModel([[_call("parse", {"text": "x"}, "c1")], [_say("ok")]])
        try:
            raise KeyError("the app's own")
        except KeyError:
            asyncio.run(Runner.run(Agent(name="a", model=model, tools=[parse]), "go"))
        events = _events(recorder)
        [result] = [e for e in events if e.kind == "tool_result"]
        assert (result.data["error_type"], result.data["origin"]) == ("ValueError", "invocation")
        assert [e.data for e in events if e.kind == "step_end" and "error" in e.data] == []


def _rate_limited_client() -> Any:
    """An OpenAI client whose every request is answered 429, by a local transport."""
    import httpx
    import openai

    def answer(request: httpx.Request) -> httpx.Response:
        body = {"error": {"message": "Rate limit reached for gpt-test", "code": "rate_limit_exceeded"}}
        return httpx.Response(429, json=body)

    transport = httpx.MockTransport(answer)
    return openai.AsyncOpenAI(api_key="sk-test", max_retries=0, http_client=httpx.AsyncClient(transport=transport))


class TestModelFailures:
    @pytest.mark.parametrize("api", ["responses", "chat_completions"])
    def test_a_rate_limited_model_call_is_a_failed_llm_call_and_fails_its_steps(
        self, recorder: Any, processor: Any, api: str
    ) -> None:
        """A model call answered 429 (the SDK's real OpenAI models, a local transport): the llm
        event has the model, the request, the error, its class, the status and the origin, and
        every step the exception goes through ends failed with it."""
        import openai
        from agents import OpenAIChatCompletionsModel, OpenAIResponsesModel

        cls = OpenAIResponsesModel if api == "responses" else OpenAIChatCompletionsModel
        model = cls(model="gpt-test", openai_client=_rate_limited_client())
        with pytest.raises(openai.RateLimitError):
            asyncio.run(Runner.run(Agent(name="a", model=model, instructions="Be brief."), "hello"))
        events = _events(recorder)
        [llm] = [e for e in events if e.kind == "llm"]
        assert llm.data["model"] == "gpt-test"
        assert {"role": "user", "content": "hello"} in llm.data["request"]
        assert (llm.data["error_type"], llm.data["status"], llm.data["origin"]) == ("RateLimitError", 429, "transient")
        assert "Rate limit reached" in llm.data["error"]
        starts = {e.span: e.data["name"] for e in events if e.kind == "step_start"}
        ends = {starts[e.span]: e.data.get("error_type") for e in events if e.kind == "step_end"}
        assert set(ends.values()) == {"RateLimitError"}
        assert {"turn 1", "agent a", "Agent workflow"} <= set(ends)


class TestSubAgents:
    def test_an_agent_run_inside_a_tool_is_nested_under_the_tool_call(self, recorder: Any, processor: Any) -> None:
        """A tool that runs another agent: the inner run's first step says which call it runs in,
        and the exported span tree has it under that tool call, not beside it."""
        from flightrec.export import build_spans

        inner = Agent(name="researcher", model=ScriptedModel([[_say("found it")]]))

        @function_tool
        async def research(topic: str) -> str:
            """Research a topic with a sub-agent."""
            return str((await Runner.run(inner, topic)).final_output)

        model = ScriptedModel([[_call("research", {"topic": "fjords"}, "c1")], [_say("done")]])
        asyncio.run(Runner.run(Agent(name="lead", model=model, tools=[research]), "go"))
        events = _events(recorder)
        [call] = [e for e in events if e.kind == "tool_call"]
        nested = [e for e in events if e.kind == "step_start" and "in_call" in e.data["attrs"]]
        assert [(e.data["attrs"]["in_call"], e.data["attrs"]["in_tool"]) for e in nested] == [
            (call.data["call_id"], "research")
        ]
        with flightrec.load(recorder.ring_path) as rec:
            tree = {node.key: node for node in build_spans(rec).spans}
        agent_step = next(n for n in tree.values() if n.name == "agent researcher")
        ancestors = []
        key = agent_step.parent
        while key in tree:
            ancestors.append(key)
            key = tree[key].parent
        assert ("tool", call.data["call_id"]) in ancestors
