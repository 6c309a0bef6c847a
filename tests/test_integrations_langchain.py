"""The LangChain / LangGraph callback handler, against a real LangGraph agent.

The agent runs on langchain-core's fake chat model (scripted replies, no network) with real
tools, one of which fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import flightrec
from flightrec.event import Event

pytest.importorskip("langchain_core", reason="langchain-core is not installed")
pytest.importorskip("langgraph", reason="langgraph is not installed")

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from flightrec.integrations import langchain as fl_langchain


@tool
def search_flights(destination: str) -> str:
    """Search flights to a destination."""
    return f"3 flights to {destination}"


@tool
def book_flight(flight: str) -> str:
    """Book a flight."""
    raise ConnectionError(f"booking service unreachable for {flight}")


def _call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])


def build_agent(replies: list[AIMessage]) -> Any:
    """A ReAct-style LangGraph agent: model node -> tools node -> model ... until no tool call."""
    model = FakeMessagesListChatModel(responses=replies)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([search_flights, book_flight], handle_tool_errors=True))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


SCRIPT = [
    _call("search_flights", {"destination": "Oslo"}, "call_1"),
    _call("book_flight", {"flight": "SK123"}, "call_2"),
    _call("book_flight", {"flight": "SK123"}, "call_3"),
    AIMessage(content="Sorry, booking is down."),
]


@pytest.fixture
def handler() -> Iterator[fl_langchain.FlightrecCallbackHandler]:
    """The handler installed globally, removed afterwards."""
    h = fl_langchain.enable()
    yield h
    fl_langchain.disable()


def _events(rec: Any) -> list[Event]:
    with flightrec.load(rec.ring_path) as recording:
        return list(recording.events())


class TestLangGraphAgent:
    def test_agent_run_is_recorded_without_passing_callbacks(self, recorder: Any, handler: Any) -> None:
        """The global hook records graph, nodes, LLM calls and tool calls of a plain invoke()."""
        # GIVEN a LangGraph agent whose booking tool fails twice
        app = build_agent(list(SCRIPT))
        # WHEN it runs (no callbacks passed)
        out = app.invoke({"messages": [HumanMessage("book me a flight to Oslo")]})
        assert out["messages"][-1].content == "Sorry, booking is down."
        events = _events(recorder)
        # THEN the graph and its nodes are steps, balanced
        starts = [e for e in events if e.kind == "step_start"]
        ends = [e for e in events if e.kind == "step_end"]
        assert len(starts) == len(ends)
        root = starts[0]
        assert root.data["name"] == "LangGraph" and root.parent is None
        nodes = [e.data["name"] for e in starts if e.parent == root.span]
        assert nodes == ["agent", "tools", "agent", "tools", "agent", "tools", "agent"]
        # AND every model call is one llm event inside its own step, with prompt and reply
        llms = [e for e in events if e.kind == "llm"]
        assert len(llms) == 4
        assert llms[0].data["request"] == [{"role": "human", "content": "book me a flight to Oslo"}]
        assert llms[0].data["response"]["tool_calls"][0]["name"] == "search_flights"
        # AND tool calls carry arguments, results, the failure with its origin, and the retry link
        calls = [e for e in events if e.kind == "tool_call"]
        results = [e for e in events if e.kind == "tool_result"]
        assert [c.data["tool"] for c in calls] == ["search_flights", "book_flight", "book_flight"]
        assert calls[1].data["args"] == {"flight": "SK123"}
        assert calls[1].data["ext_call_id"] == "call_2"
        assert results[0].data["result"] == "3 flights to Oslo"
        assert results[1].data["error_type"] == "ConnectionError"
        assert results[1].data["origin"] == "transient"
        # the second booking attempt is in another `tools` step: a new call, not a retry
        assert calls[2].data["attempt"] == 1
        # AND the tool events belong to the `tools` node step
        tools_steps = {e.span for e in starts if e.data["name"] == "tools"}
        assert {c.span for c in calls} <= tools_steps

    def test_langgraph_state_is_checkpointed_per_node_and_at_the_end(self, recorder: Any, handler: Any) -> None:
        """The state a node starts from and the final state are checkpoints that rebuild."""
        app = build_agent(list(SCRIPT))
        app.invoke({"messages": [HumanMessage("book me a flight to Oslo")]})
        events = _events(recorder)
        labels = [e.data["label"] for e in events if e.kind == "checkpoint"]
        assert labels[0] == "langgraph:agent#1"
        assert labels[-1] == "langgraph:final"
        assert len(labels) == 1 + sum(
            1 for e in events if e.kind == "step_start" and e.data["attrs"].get("langgraph_node") == e.data["name"]
        )
        from flightrec.checkpoint import ChunkIndex

        index = ChunkIndex(events)
        final = [e for e in events if e.kind == "checkpoint"][-1]
        state = index.rebuild(final.data["root"])
        assert len(state["messages"]) == 8
        assert state["messages"][-1]["content"] == "Sorry, booking is down."

    def test_a_crashing_graph_closes_its_steps_with_the_error(self, recorder: Any, handler: Any) -> None:
        """A tool error that escapes the graph ends every step with the error."""
        model = FakeMessagesListChatModel(responses=[_call("book_flight", {"flight": "X"}, "c")])

        def agent(state: MessagesState) -> dict[str, Any]:
            return {"messages": [model.invoke(state["messages"])]}

        graph = StateGraph(MessagesState)
        graph.add_node("agent", agent)
        graph.add_node("tools", ToolNode([book_flight], handle_tool_errors=False))
        graph.add_edge(START, "agent")
        graph.add_edge("agent", "tools")
        app = graph.compile()
        with pytest.raises(ConnectionError):
            app.invoke({"messages": [HumanMessage("go")]})
        ends = {e.data["name"]: e for e in _events(recorder) if e.kind == "step_end"}
        assert ends["LangGraph"].data["error_type"] == "ConnectionError"
        assert ends["tools"].data["error_type"] == "ConnectionError"

    def test_explicit_handler_records_a_plain_chat_model_call(self, recorder: Any) -> None:
        """Passed as a callback, the handler records a chat model call outside any graph."""
        model = FakeMessagesListChatModel(responses=[AIMessage(content="hello")])
        model.invoke("hi", config={"callbacks": [fl_langchain.FlightrecCallbackHandler()]})
        kinds = [e.kind for e in _events(recorder)]
        assert kinds == ["step_start", "llm", "step_end"]

    def test_retriever_results_are_recorded(self, recorder: Any, handler: Any) -> None:
        """A retriever run is a step holding a `retrieval` event with the documents it returned."""
        from langchain_core.documents import Document
        from langchain_core.retrievers import BaseRetriever

        class PolicyRetriever(BaseRetriever):
            def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
                return [Document(page_content=f"policy {i} about {query}", metadata={"id": i}) for i in range(3)]

        PolicyRetriever().invoke("refunds")
        events = _events(recorder)
        assert [e.kind for e in events] == ["step_start", "retrieval", "step_end"]
        assert events[0].data["attrs"]["query"] == "refunds"
        retrieval = events[1]
        assert retrieval.data["count"] == 3
        assert retrieval.data["documents"][0] == {"page_content": "policy 0 about refunds", "metadata": {"id": 0}}

    def test_disable_removes_the_global_handler(self, recorder: Any) -> None:
        """After disable(), runs are no longer recorded."""
        fl_langchain.enable()
        fl_langchain.disable()
        FakeMessagesListChatModel(responses=[AIMessage(content="x")]).invoke("hi")
        assert _events(recorder) == []


class RemoteProxy:
    """A remote-object proxy (RPC, ORM lazy row): every unknown attribute is fetched, and the
    fetch fails when the remote end is gone."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attr: str) -> Any:
        raise ConnectionError(f"{self.name} offline: cannot fetch {attr}")

    def __repr__(self) -> str:
        return f"<RemoteProxy {self.name}>"


class TestHostileValues:
    def test_a_tool_returning_an_object_whose_attributes_raise_still_has_its_result(
        self, recorder: Any, handler: Any
    ) -> None:
        """The handler's look at the result (is it a message? a document?) raising does not lose
        the tool's result: the call ends, with the object's repr."""

        @tool
        def fetch_row(row: int) -> Any:
            """Fetch a row."""
            return RemoteProxy(f"row{row}")

        fetch_row.invoke({"row": 7})
        with flightrec.load(recorder.ring_path) as rec:
            [call] = rec.tools()
        assert (call.result_seq is not None, call.result, call.error) == (True, "<RemoteProxy row7>", None)
        assert recorder.errors == 0

    def test_a_callback_failing_inside_never_reaches_langchain(
        self, recorder: Any, handler: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A custom event whose data cannot be looked at is recorded as its repr; LangChain never
        sees an exception from the handler (it would log "Error in FlightrecCallbackHandler...")."""
        from langchain_core.callbacks.manager import dispatch_custom_event
        from langchain_core.runnables import RunnableLambda

        def work(x: int) -> int:
            dispatch_custom_event("progress", RemoteProxy("job"))
            return x + 1

        assert RunnableLambda(work).invoke(1) == 2
        assert [r.getMessage() for r in caplog.records if "FlightrecCallbackHandler" in r.getMessage()] == []
        [custom] = [e for e in _events(recorder) if e.kind == "custom"]
        assert custom.data == {"name": "progress", "data": "<RemoteProxy job>"}

    def test_a_huge_tool_result_is_cut_with_its_full_length(self, recorder: Any, handler: Any) -> None:
        """A tool returning 200k rows: the first 100 are stored and `result_len` says how many
        there were, as for `@flightrec.tool` (the handler walked every row: a second per call)."""
        rows = [{"id": i, "name": f"row {i}"} for i in range(200_000)]

        @tool
        def query(sql: str) -> list[dict[str, Any]]:
            """Run a query."""
            return rows

        assert query.invoke({"sql": "select *"}) is rows
        [result] = [e for e in _events(recorder) if e.kind == "tool_result"]
        assert (result.data["result"][:2], len(result.data["result"]), result.data["result_len"]) == (
            rows[:2],
            100,
            200_000,
        )


class FlakyStream(GenericFakeChatModel):
    """Streams three tokens, then the connection drops."""

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Iterator[Any]:
        from langchain_core.messages import AIMessageChunk
        from langchain_core.outputs import ChatGenerationChunk

        for word in ("Your flight ", "SK123 is ", "confirmed for "):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=word))
            if run_manager is not None:
                run_manager.on_llm_new_token(word, chunk=chunk)
            yield chunk
        raise ConnectionResetError("connection reset by peer")


def _llm_events(rec: Any) -> list[Event]:
    return [e for e in _events(rec) if e.kind == "llm"]


class TestStreaming:
    def test_a_streamed_reply_is_recorded_like_an_invoked_one(self, recorder: Any, handler: Any) -> None:
        """stream() and astream(): one llm event with the whole reply, whose role is "ai" as for
        invoke() (not the chunk class's name, "AIMessageChunk")."""
        import asyncio

        model = GenericFakeChatModel(messages=iter([AIMessage("hello there"), AIMessage("general kenobi")]))
        assert "".join(str(c.content) for c in model.stream("hi")) == "hello there"

        async def consume() -> str:
            return "".join([str(c.content) async for c in model.astream("hi")])

        assert asyncio.run(consume()) == "general kenobi"
        assert [e.data["response"] for e in _llm_events(recorder)] == [
            {"role": "ai", "content": "hello there"},
            {"role": "ai", "content": "general kenobi"},
        ]

    def test_a_streamed_call_has_its_chunk_count_and_time_to_first_chunk(self, recorder: Any, handler: Any) -> None:
        """Tokens are not one event each: the llm event of a stream (sync or async) counts the
        chunks the caller received and says when the first came; an invoked call has neither."""
        import asyncio

        model = GenericFakeChatModel(
            messages=iter([AIMessage("hello there my friend"), AIMessage("general kenobi"), AIMessage("no stream")])
        )
        received = [c.content for c in model.stream("hi") if c.content]

        async def consume() -> list[Any]:
            return [c.content async for c in model.astream("hi") if c.content]

        received_async = asyncio.run(consume())
        model.invoke("hi")
        streamed, streamed_async, invoked = _llm_events(recorder)
        assert (streamed.data["stream_chunks"], streamed_async.data["stream_chunks"]) == (
            len(received),
            len(received_async),
        )
        assert 0 <= streamed.data["ttft_ms"] <= streamed.data["latency_ms"]
        assert "stream_chunks" not in invoked.data and "ttft_ms" not in invoked.data
        assert [e.kind for e in _events(recorder)].count("token") == 0

    def test_a_stream_failing_midway_keeps_the_partial_reply(self, recorder: Any, handler: Any) -> None:
        """The connection drops after three tokens: the llm event has the error and the reply
        streamed until then (what the user saw), marked partial."""
        with pytest.raises(ConnectionResetError):
            for _ in FlakyStream(messages=iter([])).stream("book SK123"):
                pass
        [llm] = _llm_events(recorder)
        assert (llm.data["error_type"], llm.data["response"], llm.data["partial"], llm.data["stream_chunks"]) == (
            "ConnectionResetError",
            {"role": "ai", "content": "Your flight SK123 is confirmed for "},
            True,
            3,
        )

    def test_a_stream_the_caller_stops_reading_is_not_a_failure(self, recorder: Any, handler: Any) -> None:
        """Closing a stream early (the caller has what it needs) is recorded as a closed stream
        with the reply read so far, not as an LLM call that failed with GeneratorExit."""
        model = GenericFakeChatModel(messages=iter([AIMessage("yes and a long explanation")]))
        stream = model.stream("is it open?")
        assert next(stream).content == "yes"
        stream.close()
        [llm] = _llm_events(recorder)
        assert "error" not in llm.data
        assert (llm.data["response"], llm.data["stream_closed"]) == ({"role": "ai", "content": "yes"}, True)
        with flightrec.load(recorder.ring_path) as rec:
            assert [(s.error, s.end_seq is not None) for s in rec.steps()] == [(None, True)]
            assert [f.kind for f in rec.findings() if f.severity == "error"] == []


class RateLimitedModel(FakeMessagesListChatModel):
    """A chat model whose provider answers 429, as `openai.RateLimitError` (with its HTTP response)."""

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        import httpx
        import openai

        request = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
        response = httpx.Response(429, request=request)
        raise openai.RateLimitError("Rate limit reached for gpt-test", response=response, body=None)


class TestFailedCalls:
    def test_a_rate_limited_model_call_has_its_status_and_origin(self, recorder: Any, handler: Any) -> None:
        """A model call failing with HTTP 429: the llm event has the error, its class, the
        status and the origin (transient), as a failed tool call has."""
        pytest.importorskip("openai")
        import openai

        with pytest.raises(openai.RateLimitError):
            RateLimitedModel(responses=[]).invoke("hi")
        [llm] = _llm_events(recorder)
        assert (llm.data["error_type"], llm.data["status"], llm.data["origin"]) == ("RateLimitError", 429, "transient")
        assert llm.data["request"] == [{"role": "human", "content": "hi"}]


class TestInterrupts:
    def test_a_human_in_the_loop_interrupt_is_not_an_error(self, recorder: Any, handler: Any) -> None:
        """A node pausing the graph with interrupt() ends its step marked benign: the recording
        shows no error for it (it was the first_error finding)."""
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph.graph import END
        from langgraph.types import Command, interrupt

        def approve(state: MessagesState) -> dict[str, Any]:
            answer = interrupt("book SK123 for 420 EUR?")
            return {"messages": [AIMessage(f"booked: {answer}")]}

        graph = StateGraph(MessagesState)
        graph.add_node("approve", approve)
        graph.add_edge(START, "approve")
        graph.add_edge("approve", END)
        app = graph.compile(checkpointer=InMemorySaver())
        config: Any = {"configurable": {"thread_id": "t1"}}
        app.invoke({"messages": [HumanMessage("book it")]}, config)
        assert app.invoke(Command(resume="yes"), config)["messages"][-1].content == "booked: yes"
        with flightrec.load(recorder.ring_path) as rec:
            paused = [e.data for e in rec.events(["step_end"]) if e.data.get("error_type") == "GraphInterrupt"]
            findings = [(f.kind, f.message) for f in rec.findings() if f.severity == "error"]
            steps = rec.steps()
        assert [d.get("benign") for d in paused] == [True]
        assert findings == []
        # AND the step is not a failed one (the TUI said "1 failed" and opened on it), but says
        # what ended it
        [step] = [s for s in steps if "ended_by" in s.attrs]
        assert (step.name, step.error) == ("approve", None)
        assert step.attrs["ended_by"].startswith("GraphInterrupt: ")
        assert "book SK123 for 420 EUR?" in step.attrs["ended_by"]
        assert [s.error for s in steps] == [None] * len(steps)


class TestStateWalk:
    def test_messages_are_read_without_probing_fields_their_class_lacks(self, recorder: Any, handler: Any) -> None:
        """A node's state is walked at every node: each message is read from its fields, not by
        looking up tool_call_id/status/tool_calls on a HumanMessage, which fails through
        pydantic's __getattr__ (5 us a look: 60 ms a node for 4000 messages)."""
        from langgraph.graph import END

        missed: list[str] = []

        class CountedHuman(HumanMessage):
            def __getattr__(self, name: str) -> Any:
                missed.append(name)
                return super().__getattr__(name)  # type: ignore[misc]

        def answer(state: MessagesState) -> dict[str, Any]:
            return {"messages": [AIMessage("ok")]}

        graph = StateGraph(MessagesState)
        graph.add_node("answer", answer)
        graph.add_edge(START, "answer")
        graph.add_edge("answer", END)
        history = [CountedHuman(f"question {i}", id=f"q{i}") for i in range(50)]
        graph.compile().invoke({"messages": history})
        labels = [e.data["label"] for e in _events(recorder) if e.kind == "checkpoint"]
        assert labels == ["langgraph:answer#1", "langgraph:final"]
        assert missed == []


class TestSeveralHandlers:
    def test_a_handler_given_to_a_model_besides_the_global_one_records_once(self, recorder: Any, handler: Any) -> None:
        """`import flightrec.auto` plus a model built with callbacks=[FlightrecCallbackHandler()]
        (as a user following the explicit way would): each run is recorded once, not twice
        (two llm events per call, doubled token counts)."""
        from langchain_core.runnables import RunnableLambda

        model = FakeMessagesListChatModel(
            responses=[AIMessage("hi")], callbacks=[fl_langchain.FlightrecCallbackHandler()]
        )
        retrieve_and_answer = RunnableLambda(lambda q: model.invoke(q), name="answer")
        retrieve_and_answer.invoke("hello", config={"callbacks": [fl_langchain.FlightrecCallbackHandler()]})
        assert [(e.kind, e.data.get("name")) for e in _events(recorder)] == [
            ("step_start", "answer"),
            ("step_start", "FakeMessagesListChatModel"),
            ("llm", None),
            ("step_end", "FakeMessagesListChatModel"),
            ("step_end", "answer"),
        ]

    def test_a_deeply_nested_state_is_checkpointed_whole(self, recorder: Any, handler: Any) -> None:
        """A LangGraph state nested nine levels deep rebuilds as it was (the handler stored
        what was below six levels as its repr: a string where the state had a dict)."""
        from typing import TypedDict

        from langgraph.graph import END

        class PlanState(TypedDict):
            plan: dict[str, Any]

        def execute(state: PlanState) -> dict[str, Any]:
            return {"plan": {**state["plan"], "done": True}}

        graph = StateGraph(PlanState)
        graph.add_node("execute", execute)
        graph.add_edge(START, "execute")
        graph.add_edge("execute", END)
        plan = {
            "goal": {"steps": [{"tool": {"args": {"filters": {"date": {"from": "2024-01-01", "to": {"y": 2024}}}}}}]}
        }
        graph.compile().invoke({"plan": plan})
        with flightrec.load(recorder.ring_path) as rec:
            final = rec.checkpoints()[-1]
            assert final.label == "langgraph:final"
            assert rec.state_at(final.seq) == {"plan": {**plan, "done": True}}

    def test_a_value_holding_itself_is_stored_with_a_cycle_marker(self, recorder: Any, handler: Any) -> None:
        """A custom event's data that contains itself is stored once, with "<cycle>" where it
        refers back (as flightrec stores cycles elsewhere), not copied down to the depth limit."""
        from langchain_core.callbacks.manager import dispatch_custom_event
        from langchain_core.runnables import RunnableLambda

        node: dict[str, Any] = {"id": 1, "children": []}
        node["children"].append(node)
        node["parent"] = node

        def work(x: int) -> int:
            dispatch_custom_event("tree", node)
            return x

        RunnableLambda(work).invoke(1)
        [custom] = [e for e in _events(recorder) if e.kind == "custom"]
        assert custom.data["data"] == {"id": 1, "children": ["<cycle>"], "parent": "<cycle>"}

    @pytest.mark.parametrize("kind", ["pydantic", "dataclass"])
    def test_a_typed_state_is_checkpointed_at_every_node(self, recorder: Any, handler: Any, kind: str) -> None:
        """A graph whose state schema is a pydantic model or a dataclass (LangGraph's documented
        alternatives to a TypedDict) has the state each node starts from checkpointed, as a dict
        state does (only the final state was)."""
        import dataclasses

        from langgraph.graph import END
        from pydantic import BaseModel

        class ModelState(BaseModel):
            query: str
            hits: list[str] = []

        @dataclasses.dataclass
        class DataState:
            query: str
            hits: list[str] = dataclasses.field(default_factory=list)

        schema: Any = ModelState if kind == "pydantic" else DataState

        def search(state: Any) -> dict[str, Any]:
            return {"hits": [f"doc about {state.query}"]}

        def answer(state: Any) -> dict[str, Any]:
            return {"hits": [*state.hits, "answer"]}

        graph = StateGraph(schema)
        graph.add_node("search", search)
        graph.add_node("answer", answer)
        graph.add_edge(START, "search")
        graph.add_edge("search", "answer")
        graph.add_edge("answer", END)
        graph.compile().invoke(schema(query="oslo"))
        with flightrec.load(recorder.ring_path) as rec:
            states = [(c.label, rec.state_at(c.seq)) for c in rec.checkpoints()]
        assert states == [
            ("langgraph:search#1", {"query": "oslo", "hits": []}),
            ("langgraph:answer#2", {"query": "oslo", "hits": ["doc about oslo"]}),
            ("langgraph:final", {"query": "oslo", "hits": ["doc about oslo", "answer"]}),
        ]


class OpenAIShapedModel(FakeMessagesListChatModel):
    """Returns its result in the shape langchain-openai's ChatOpenAI does (``_create_chat_result``):
    the usage both in ``llm_output["token_usage"]`` and on the message as ``usage_metadata``."""

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        from langchain_core.outputs import ChatGeneration, ChatResult

        usage = {"prompt_tokens": 120, "completion_tokens": 17, "total_tokens": 137}
        message = AIMessage(
            "Oslo is sunny",
            usage_metadata={"input_tokens": 120, "output_tokens": 17, "total_tokens": 137},
            response_metadata={"model_name": "gpt-4o-2024-08-06"},
        )
        return ChatResult(
            generations=[ChatGeneration(message=message)],
            llm_output={"token_usage": usage, "model_name": "gpt-4o-2024-08-06"},
        )


class TestTokenUsage:
    def test_usage_reported_twice_by_the_provider_is_counted_once(self, recorder: Any, handler: Any) -> None:
        """ChatOpenAI and ChatAnthropic report a call's usage in llm_output and on the message:
        the llm event has it once (it had the sum: 240 prompt tokens for 120)."""
        OpenAIShapedModel(responses=[]).invoke("weather in Oslo?")
        [llm] = _llm_events(recorder)
        assert (llm.data["model"], llm.data["prompt_tokens"], llm.data["completion_tokens"]) == (
            "gpt-4o-2024-08-06",
            120,
            17,
        )


class TestRetries:
    def test_a_node_retried_by_its_retry_policy_links_the_tool_call_attempts(self, recorder: Any, handler: Any) -> None:
        """LangGraph's RetryPolicy re-runs the tools node after a transient failure: the same
        tool call (same call id from the model) is attempt 1, 2, 3, each linked to the one it
        retries, and not a "tool_loop" (the agent did not ask three times)."""
        from langgraph.types import RetryPolicy

        failures = iter([ConnectionError("connection reset"), ConnectionError("connection reset")])

        @tool
        def fetch(url: str) -> str:
            """Fetch a page."""
            error = next(failures, None)
            if error is not None:
                raise error
            return "<html>ok</html>"

        model = FakeMessagesListChatModel(
            responses=[_call("fetch", {"url": "https://x.test"}, "call_f"), AIMessage("ok")]
        )

        def agent(state: MessagesState) -> dict[str, Any]:
            return {"messages": [model.invoke(state["messages"])]}

        graph = StateGraph(MessagesState)
        graph.add_node("agent", agent)
        retry = RetryPolicy(max_attempts=3, initial_interval=0.001, jitter=False, retry_on=ConnectionError)
        graph.add_node("tools", ToolNode([fetch], handle_tool_errors=False), retry_policy=retry)
        graph.add_edge(START, "agent")
        graph.add_conditional_edges("agent", tools_condition)
        graph.add_edge("tools", "agent")
        graph.compile().invoke({"messages": [HumanMessage("fetch it")]})
        with flightrec.load(recorder.ring_path) as rec:
            calls = rec.tools()
            findings = [f.kind for f in rec.findings()]
        assert [(c.attempt, c.retry_of, c.error is None) for c in calls] == [
            (1, None, False),
            (2, calls[0].call_id, False),
            (3, calls[1].call_id, True),
        ]
        assert "tool_loop" not in findings


class TestUnknownTools:
    def test_a_call_of_a_tool_the_graph_does_not_have_is_a_failed_call(self, recorder: Any, handler: Any) -> None:
        """The model asks for a tool the ToolNode does not have: no tool runs (no callback),
        the node answers with an error ToolMessage, and the recording shows a failed call
        with the name and arguments the model gave, in the `tools` step."""
        app = build_agent([_call("cancel_flight", {"flight": "SK123"}, "call_x"), AIMessage(content="I can't.")])
        out = app.invoke({"messages": [HumanMessage("cancel SK123")]})
        assert out["messages"][-1].content == "I can't."
        events = _events(recorder)
        [call] = [e for e in events if e.kind == "tool_call"]
        [result] = [e for e in events if e.kind == "tool_result"]
        assert (call.data["tool"], call.data["args"], call.data["ext_call_id"]) == (
            "cancel_flight",
            {"flight": "SK123"},
            "call_x",
        )
        assert (result.data["call_id"], result.data["error_type"], result.data["origin"]) == (
            call.data["call_id"],
            "UnknownTool",
            "invocation",
        )
        assert "cancel_flight is not a valid tool" in result.data["error"]
        tools_steps = {e.span for e in events if e.kind == "step_start" and e.data["name"] == "tools"}
        assert call.span in tools_steps and result.span == call.span
        with flightrec.load(recorder.ring_path) as rec:
            [stats] = [t for t in rec.tools() if t.tool == "cancel_flight"]
            assert stats.error is not None

    def test_calls_that_ran_are_recorded_once(self, recorder: Any, handler: Any) -> None:
        """A failing tool that did run (its error ToolMessage comes from the tool's own
        callbacks) is not recorded a second time as a call that never ran."""
        app = build_agent([_call("book_flight", {"flight": "SK1"}, "call_b"), AIMessage(content="down")])
        app.invoke({"messages": [HumanMessage("book SK1")]})
        calls = [e for e in _events(recorder) if e.kind == "tool_call"]
        assert [c.data["tool"] for c in calls] == ["book_flight"]


class TestSubGraphs:
    def test_a_graph_run_inside_a_tool_is_nested_under_the_tool_call(self, recorder: Any, handler: Any) -> None:
        """A tool that invokes another LangGraph agent: the inner graph's step says which call it
        runs in, and the exported span tree has it under that tool call."""
        from flightrec.export import build_spans

        inner = build_agent([AIMessage(content="inner answer")])

        @tool
        def research(topic: str) -> str:
            """Research a topic with a sub-agent."""
            return str(inner.invoke({"messages": [HumanMessage(topic)]})["messages"][-1].content)

        model = FakeMessagesListChatModel(responses=[_call("research", {"topic": "x"}, "c1"), AIMessage("done")])

        def agent(state: MessagesState) -> dict[str, Any]:
            return {"messages": [model.invoke(state["messages"])]}

        graph = StateGraph(MessagesState)
        graph.add_node("agent", agent)
        graph.add_node("tools", ToolNode([research]))
        graph.add_edge(START, "agent")
        graph.add_conditional_edges("agent", tools_condition)
        graph.add_edge("tools", "agent")
        assert graph.compile().invoke({"messages": [HumanMessage("go")]})["messages"][-1].content == "done"
        events = _events(recorder)
        [call] = [e for e in events if e.kind == "tool_call"]
        [nested] = [e for e in events if e.kind == "step_start" and "in_call" in e.data["attrs"]]
        assert (nested.data["name"], nested.data["attrs"]["in_call"], nested.data["attrs"]["in_tool"]) == (
            "LangGraph",
            call.data["call_id"],
            "research",
        )
        with flightrec.load(recorder.ring_path) as rec:
            tree = {node.key: node for node in build_spans(rec).spans}
        assert tree[("step", nested.span)].parent == ("tool", call.data["call_id"])
