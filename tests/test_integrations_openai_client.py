"""The plain `openai` client's calls, with the real `openai` package over an in-process HTTP transport."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import flightrec
from flightrec.event import Event

from .conftest import recorded, run_child

openai = pytest.importorskip("openai", reason="openai is not installed")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")

from flightrec.integrations import openai_client  # noqa: E402

Handler = Callable[[Any], Any]
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "weather in Paris?"}]


# ============================================================================ the fake OpenAI API


def completion(content: str | None = "It is sunny.", tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A chat completion body as the API returns it."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop", "logprobs": None}
        ],
        "usage": {"prompt_tokens": 21, "completion_tokens": 5, "total_tokens": 26},
    }


def tool_call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-2",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-2024-08-06",
        "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = usage
    return body


def sse(events: list[dict[str, Any]], done: bool = True) -> Any:
    """A `text/event-stream` response holding ``events`` (then `[DONE]`)."""
    text = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + ("data: [DONE]\n\n" if done else "")
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=text.encode())


def text_stream(parts: list[str], usage: bool = True) -> Any:
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": p}) for p in parts]
    events.append(chunk({}, finish="stop"))
    if usage:
        events.append(chunk({}, usage={"prompt_tokens": 21, "completion_tokens": len(parts), "total_tokens": 30}))
    return sse(events)


def error_body(status: int, message: str, code: str) -> Any:
    return httpx.Response(
        status,
        json={"error": {"message": message, "type": code, "param": None, "code": code}},
        headers={"x-request-id": "req_err"},
    )


def responses_body(text: str = "Sunny.", calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    output: list[dict[str, Any]] = [
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
    ]
    output += calls or []
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": "gpt-4.1-2025-04-14",
        "status": "completed",
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15},
    }


def sync_client(handler: Handler) -> Any:
    transport = httpx.MockTransport(handler)
    return openai.OpenAI(
        api_key="x", base_url="http://test", http_client=httpx.Client(transport=transport), max_retries=0
    )


def async_client(handler: Handler) -> Any:
    transport = httpx.MockTransport(handler)
    return openai.AsyncOpenAI(
        api_key="x", base_url="http://test", http_client=httpx.AsyncClient(transport=transport), max_retries=0
    )


def reply(body: Any) -> Handler:
    """A handler answering every request with ``body`` (a dict is JSON)."""

    def handler(request: Any) -> Any:
        return httpx.Response(200, json=body) if isinstance(body, dict) else body

    return handler


# ============================================================================ fixtures


@pytest.fixture
def instrumented() -> Iterator[None]:
    """The client instrumented for the test, restored afterwards."""
    openai_client.instrument()
    yield
    openai_client.uninstrument()


@pytest.fixture
def small(frdir: Path) -> Iterator[Any]:
    """A running recorder that keeps 200 characters of a value."""
    r = flightrec.start(dir=frdir, size="4MiB", triggers=False, resources=0, max_value=200)
    assert r is not None
    yield r
    flightrec.stop()


def llm_events() -> list[Event]:
    return [e for e in recorded().events() if e.kind == "llm"]


def one_llm() -> dict[str, Any]:
    events = llm_events()
    assert len(events) == 1, [e.data for e in events]
    return events[0].data


# ============================================================================ tests


@pytest.mark.usefixtures("instrumented")
class TestChat:
    def test_a_call_records_model_prompt_reply_usage_and_nests_under_the_step(self, rec: Any) -> None:
        """One llm event per call: model, messages, reply, tokens, finish reason, latency, in its step."""
        client = sync_client(reply(completion()))
        with flightrec.step("plan") as st:
            result = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert result.choices[0].message.content == "It is sunny."
        [ev] = llm_events()
        assert st.id == ev.span
        d = ev.data
        assert (d["model"], d["response_model"]) == ("gpt-4o", "gpt-4o-2024-08-06")
        assert d["request"] == MESSAGES
        assert d["response"] == {"role": "assistant", "content": "It is sunny."}
        assert (d["prompt_tokens"], d["completion_tokens"]) == (21, 5)
        assert d["finish_reason"] == "stop"
        assert (d["source"], d["api"], d["response_id"]) == ("openai", "chat.completions", "chatcmpl-1")
        assert d["latency_ms"] > 0

    def test_requested_tool_calls_are_recorded_with_their_arguments(self, rec: Any) -> None:
        """The tools the model asks for: names, decoded arguments and call ids."""
        calls = [tool_call("get_weather", {"city": "Paris"}, "call_1"), tool_call("get_time", {"tz": "CET"}, "call_2")]
        client = sync_client(reply(completion(None, calls)))
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        d = one_llm()
        assert d["response"]["tool_calls"] == [
            {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"},
            {"name": "get_time", "args": {"tz": "CET"}, "id": "call_2"},
        ]
        assert d["finish_reason"] == "tool_calls"

    @pytest.mark.parametrize(
        ("status", "error_class", "code"),
        [(429, "RateLimitError", "rate_limit_exceeded"), (500, "InternalServerError", "server_error")],
    )
    def test_an_api_error_is_recorded_as_a_failed_call_and_reraised(
        self, rec: Any, status: int, error_class: str, code: str
    ) -> None:
        """A 429 or a 500: the library's own exception reaches the caller; the call is recorded failed."""
        client = sync_client(lambda request: error_body(status, "slow down", code))
        with pytest.raises(getattr(openai, error_class)) as caught:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert status == caught.value.status_code
        assert "slow down" in str(caught.value)
        [ev] = llm_events()
        d = ev.data
        assert error_class == d["error_type"]
        assert "slow down" in d["error"]
        assert (status, "transient", "req_err") == (d["status"], d["origin"], d["request_id"])
        assert d["request"] == MESSAGES
        assert d["model"] == "gpt-4o"

    def test_a_bad_request_is_an_invocation_error(self, rec: Any) -> None:
        """A 400 is the caller's mistake: origin ``invocation``."""
        client = sync_client(lambda request: error_body(400, "bad messages", "invalid_request_error"))
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        d = one_llm()
        assert (d["status"], d["origin"]) == (400, "invocation")

    @pytest.mark.parametrize(
        ("raised", "error_class"),
        [("ReadTimeout", "APITimeoutError"), ("ConnectError", "APIConnectionError")],
    )
    def test_a_timeout_or_connection_error_is_transient(self, rec: Any, raised: str, error_class: str) -> None:
        """The transport failing: the library's APITimeoutError / APIConnectionError, origin ``transient``."""

        def handler(request: Any) -> Any:
            raise getattr(httpx, raised)("boom", request=request)

        client = sync_client(handler)
        with pytest.raises(getattr(openai, error_class)):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        d = one_llm()
        assert (error_class, "transient") == (d["error_type"], d["origin"])
        assert "status" not in d

    def test_nothing_is_recorded_and_nothing_breaks_without_a_recorder(self) -> None:
        """No recorder running: the call goes through untouched."""
        client = sync_client(reply(completion()))
        assert (
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices[0].message.content
            == "It is sunny."
        )

    def test_a_one_shot_iterator_of_messages_is_not_consumed(self, rec: Any) -> None:
        """Messages given as a generator still reach the API: the recorder does not read them."""
        seen: list[Any] = []

        def handler(request: Any) -> Any:
            seen.append(json.loads(request.content)["messages"])
            return httpx.Response(200, json=completion())

        client = sync_client(handler)
        client.chat.completions.create(model="gpt-4o", messages=(m for m in MESSAGES))
        assert seen == [MESSAGES]
        assert "request" not in one_llm()

    def test_the_prompt_is_redacted_before_it_is_stored(self, rec: Any) -> None:
        """Messages go through the recorder's redaction: an e-mail address in a prompt is not stored."""
        client = sync_client(reply(completion()))
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "mail bob@example.com"}])
        d = one_llm()
        assert "bob@example.com" not in json.dumps(d)
        assert d["request"][0]["content"].startswith("mail ")

    def test_calls_from_threads_land_in_their_own_steps(self, rec: Any) -> None:
        """Four threads, each in its own step, sharing one client: every call is in its thread's step."""
        client = sync_client(reply(completion()))
        steps: dict[str, int | None] = {}

        def work(name: str) -> None:
            with flightrec.step(name) as st:
                for _ in range(5):
                    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            steps[name] = st.id

        threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        events = llm_events()
        assert sorted(steps.values()) == sorted({e.span for e in events})  # type: ignore[type-var]
        assert all(sum(e.span == sid for e in events) == 5 for sid in steps.values())

    def test_parse_is_recorded_like_create(self, rec: Any) -> None:
        """chat.completions.parse (structured outputs) posts without create: it is wrapped too."""
        client = sync_client(reply(completion('{"city": "Paris"}')))
        parsed = client.chat.completions.parse(model="gpt-4o", messages=MESSAGES)
        assert parsed.choices[0].message.content == '{"city": "Paris"}'
        d = one_llm()
        assert (d["response"]["content"], d["prompt_tokens"]) == ('{"city": "Paris"}', 21)

    def test_a_raw_response_is_returned_unchanged_and_recorded_without_its_body(self, rec: Any) -> None:
        """with_raw_response: the caller gets the library's raw response, its body unread by flightrec."""
        client = sync_client(reply(completion()))
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
        assert type(raw).__name__ == "LegacyAPIResponse"
        assert raw.parse().choices[0].message.content == "It is sunny."
        d = one_llm()
        assert (d["raw_response"], d["request"], "response" in d) == (True, MESSAGES, False)

    def test_uninstrument_under_another_library_s_wrapper_stops_recording(self, rec: Any) -> None:
        """Another library wrapped create after flightrec did: uninstrument() leaves its wrapper in
        place (the call still goes through it) and flightrec's, inside it, stops recording."""
        from openai.resources.chat.completions import Completions

        ours = Completions.__dict__["create"]
        calls: list[str] = []

        def theirs(self: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append("theirs")
            return ours(self, *args, **kwargs)

        Completions.create = theirs  # type: ignore[method-assign]
        try:
            openai_client.uninstrument()
            assert Completions.__dict__["create"] is theirs
            client = sync_client(reply(completion()))
            assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices[0].message.content == (
                "It is sunny."
            )
            assert calls == ["theirs"]
            assert llm_events() == []
        finally:
            Completions.create = ours.__flightrec_original__  # type: ignore[method-assign]

    def test_uninstrument_stops_recording_and_instrument_is_idempotent(self, rec: Any) -> None:
        """instrument() twice still records once a call; after uninstrument() nothing is recorded."""
        openai_client.instrument()
        client = sync_client(reply(completion()))
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert "Completions.create" in openai_client.instrumented()
        openai_client.uninstrument()
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert openai_client.instrumented() == []
        one_llm()


@pytest.mark.usefixtures("instrumented")
class TestChatStream:
    def test_a_stream_read_to_the_end_records_one_event_with_text_usage_and_ttft(self, rec: Any) -> None:
        """stream=True: the library's own Stream comes back; one event when it ends."""
        client = sync_client(reply(text_stream(["It ", "is ", "sunny."])))
        with flightrec.step("plan") as st:
            stream = client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        assert isinstance(stream, openai.Stream)
        assert [e for e in recorded().events() if e.kind == "llm"] == []  # nothing until it is read
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "It is sunny."
        [ev] = llm_events()
        d = ev.data
        assert st.id == ev.span  # the step it was made in, though read after the step ended
        assert d["response"] == {"role": "assistant", "content": "It is sunny."}
        assert (d["prompt_tokens"], d["completion_tokens"], d["finish_reason"], d["stream"]) == (21, 3, "stop", True)
        assert 0 < d["ttft_ms"] <= d["latency_ms"]
        assert "stream_closed" not in d

    def test_streamed_tool_calls_are_assembled(self, rec: Any) -> None:
        """Tool-call deltas (name, then arguments in pieces) become one call with decoded arguments."""
        events = [
            chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                         "function": {"name": "get_weather", "arguments": ""}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
            chunk({}, finish="tool_calls"),
        ]  # fmt: skip
        client = sync_client(reply(sse(events)))
        for _ in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
            pass
        d = one_llm()
        assert d["response"]["tool_calls"] == [{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}]
        assert d["finish_reason"] == "tool_calls"

    def test_a_reader_that_stops_early_records_what_it_read(self, rec: Any) -> None:
        """break out of the stream inside its `with` block: one event, stream_closed, the text so far."""
        client = sync_client(reply(text_stream(["It ", "is ", "sunny."])))
        with client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as stream:
            for c in stream:
                if c.choices and c.choices[0].delta.content == "is ":
                    break
        d = one_llm()
        assert True is d["stream_closed"]
        assert d["response"]["content"] == "It is "
        assert "error" not in d

    def test_a_stream_dropped_unfinished_is_recorded(self, rec: Any) -> None:
        """Read two chunks, then drop the stream without closing it: recorded when it is collected
        (the library's Stream and its generator hold each other: the garbage collector frees them)."""
        client = sync_client(reply(text_stream(["It ", "is ", "sunny."])))
        stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        next(iter(stream))
        next(iter(stream))
        del stream
        gc.collect()
        d = one_llm()
        assert (d["stream_closed"], d["response"]["content"]) == (True, "It ")

    def test_an_error_inside_the_stream_is_recorded_and_reraised(self, rec: Any) -> None:
        """The API sends an error event mid-stream: the library's APIError reaches the reader; recorded failed."""
        events = [
            chunk({"role": "assistant", "content": "It "}),
            {"error": {"message": "overloaded", "type": "server_error"}},
        ]
        client = sync_client(reply(sse(events)))
        got = []
        with pytest.raises(openai.APIError, match="overloaded"):
            for c in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
                got.append(c)
        assert len(got) == 1
        d = one_llm()
        assert "overloaded" in d["error"]
        assert d["response"]["content"] == "It "

    def test_a_stream_read_after_the_recorder_stopped_still_reads_whole(self, frdir: Path) -> None:
        """The recorder stops while the stream is open: the reader gets every chunk, nothing raises."""
        flightrec.start(size="1MiB", triggers=False, resources=0, dir=frdir)
        client = sync_client(reply(text_stream(["It ", "is ", "sunny."])))
        stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        flightrec.stop()
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "It is sunny."

    def test_streamed_text_is_kept_only_up_to_max_value(self, small: Any) -> None:
        """10,000 characters streamed, max_value 200: the reply is cut as the recorder cuts, with its length."""
        client = sync_client(reply(text_stream(["0123456789"] * 1000, usage=False)))
        stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        assert sum(len(c.choices[0].delta.content or "") for c in stream if c.choices) == 10_000
        d = one_llm()
        assert d["response_len"] == 10_000
        assert len(d["response"]["content"]) < 300
        assert d["response"]["content"].startswith("0123456789" * 19)

    def test_the_stream_helper_is_recorded(self, rec: Any) -> None:
        """client.chat.completions.stream(...) goes through create(stream=True): recorded once."""
        client = sync_client(reply(text_stream(["It ", "is ", "sunny."])))
        with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
            for _ in stream:
                pass
            assert stream.get_final_completion().choices[0].message.content == "It is sunny."
        assert one_llm()["response"]["content"] == "It is sunny."


@pytest.mark.usefixtures("instrumented")
class TestAsync:
    def test_an_async_call_is_recorded_in_its_step(self, rec: Any) -> None:
        """AsyncCompletions.create: one event, in the step of the task that awaited it."""
        client = async_client(reply(completion()))

        async def main() -> int | None:
            async with flightrec.step("plan") as st:
                await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            return st.id

        sid = asyncio.run(main())
        [ev] = llm_events()
        assert sid == ev.span
        assert ev.data["response"]["content"] == "It is sunny."

    def test_an_async_rate_limit_is_recorded_and_reraised(self, rec: Any) -> None:
        """A 429 on the async client: RateLimitError raised, the call recorded failed and transient."""
        client = async_client(lambda request: error_body(429, "slow down", "rate_limit_exceeded"))
        with pytest.raises(openai.RateLimitError):
            asyncio.run(client.chat.completions.create(model="gpt-4o", messages=MESSAGES))
        d = one_llm()
        assert (d["status"], d["origin"]) == (429, "transient")

    def test_a_call_cancelled_while_waiting_is_recorded_as_cancelled_not_failed(self, rec: Any) -> None:
        """asyncio.wait_for gives up on a slow call: the caller gets its TimeoutError; the call is
        recorded as cancelled, not as a failed LLM call."""
        answered = asyncio.Event()

        async def slow(request: Any) -> Any:
            await answered.wait()  # never set: the call waits until it is cancelled
            return httpx.Response(200, json=completion())

        client = async_client(slow)

        async def main() -> None:
            await asyncio.wait_for(client.chat.completions.create(model="gpt-4o", messages=MESSAGES), 0.05)

        with pytest.raises(asyncio.TimeoutError):
            asyncio.run(main())
        [ev] = llm_events()
        assert (ev.data["cancelled"], "error" in ev.data) == ("CancelledError", False)
        assert ev.data["request"] == MESSAGES

    def test_an_async_stream_read_to_the_end(self, rec: Any) -> None:
        """An AsyncStream comes back, and is recorded when it ends."""
        client = async_client(reply(text_stream(["It ", "is ", "sunny."])))

        async def main() -> str:
            stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
            assert isinstance(stream, openai.AsyncStream)
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

        assert asyncio.run(main()) == "It is sunny."
        d = one_llm()
        assert (d["response"]["content"], d["completion_tokens"], d["stream"]) == ("It is sunny.", 3, True)

    def test_an_async_stream_left_early_in_its_async_with(self, rec: Any) -> None:
        """break inside `async with stream`: one event as the block ends (not at the loop's
        shutdown), stream_closed, the text so far."""
        client = async_client(reply(text_stream(["It ", "is ", "sunny."])))

        async def main() -> dict[str, Any]:
            async with await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as s:
                async for c in s:
                    if c.choices and c.choices[0].delta.content == "It ":
                        break
            return one_llm()

        d = asyncio.run(main())
        assert (d["stream_closed"], d["response"]["content"]) == (True, "It ")


@pytest.mark.usefixtures("instrumented")
class TestResponses:
    def test_a_responses_call_records_text_tool_calls_and_usage(self, rec: Any) -> None:
        """Responses.create: the input, the output text, the function calls, input/output tokens."""
        call = {"id": "fc_1", "type": "function_call", "call_id": "call_9", "name": "get_weather",
                "arguments": '{"city": "Paris"}', "status": "completed"}  # fmt: skip
        client = sync_client(reply(responses_body("Checking.", [call])))
        result = client.responses.create(model="gpt-4.1", input="weather in Paris?", instructions="be brief")
        assert result.output_text == "Checking."
        d = one_llm()
        assert (d["model"], d["response_model"]) == ("gpt-4.1", "gpt-4.1-2025-04-14")
        assert (d["api"], d["request"]) == ("responses", "weather in Paris?")
        assert d["response"] == {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_9"}],
        }
        assert (
            d["prompt_tokens"],
            d["completion_tokens"],
            d["finish_reason"],
            d["instructions"],
        ) == (12, 3, "completed", "be brief")

    def test_a_streamed_async_responses_call(self, rec: Any) -> None:
        """AsyncResponses.create(stream=True): text deltas, then the final response's usage."""
        final = responses_body("Sunny.")
        events = [
            {"type": "response.created", "sequence_number": 0,
             "response": {**final, "status": "in_progress", "output": []}},
            {"type": "response.output_text.delta", "sequence_number": 1, "item_id": "msg_1", "output_index": 0,
             "content_index": 0, "delta": "Sun", "logprobs": []},
            {"type": "response.output_text.delta", "sequence_number": 2, "item_id": "msg_1", "output_index": 0,
             "content_index": 0, "delta": "ny.", "logprobs": []},
            {"type": "response.completed", "sequence_number": 3, "response": final},
        ]  # fmt: skip
        client = async_client(reply(sse(events, done=False)))

        async def main() -> list[str]:
            stream = await client.responses.create(model="gpt-4.1", input=MESSAGES, stream=True)
            return [e.type async for e in stream]

        assert len(asyncio.run(main())) == 4
        d = one_llm()
        assert (
            d["response"]["content"],
            d["prompt_tokens"],
            d["completion_tokens"],
            d["request"],
        ) == ("Sunny.", 12, 3, MESSAGES)
        assert d["ttft_ms"] > 0


class TestNoDoubleRecording:
    @pytest.mark.usefixtures("instrumented")
    def test_an_agents_sdk_chat_completions_model_is_recorded_once(self, rec: Any) -> None:
        """The Agents SDK's OpenAIChatCompletionsModel calls this client inside its generation span:
        the SDK integration records the call; the client adds no second llm event."""
        agents = pytest.importorskip("agents")
        from agents.tracing import set_trace_processors

        from flightrec.integrations.openai_agents import FlightrecTracingProcessor

        set_trace_processors([FlightrecTracingProcessor()])
        try:
            model = agents.OpenAIChatCompletionsModel(model="gpt-4o", openai_client=async_client(reply(completion())))
            agent = agents.Agent(name="weather", instructions="be brief", model=model)
            result = asyncio.run(agents.Runner.run(agent, "weather in Paris?"))
        finally:
            set_trace_processors([])
        assert result.final_output == "It is sunny."
        events = llm_events()
        assert len(events) == 1, [e.data for e in events]
        assert "source" not in events[0].data  # the SDK integration's event

    @pytest.mark.usefixtures("instrumented")
    def test_an_agents_sdk_responses_model_is_recorded_once(self, rec: Any) -> None:
        """The SDK's default model kind, OpenAIResponsesModel, calls responses.create in its response
        span: recorded once, by the SDK integration."""
        agents = pytest.importorskip("agents")
        from agents.tracing import set_trace_processors

        from flightrec.integrations.openai_agents import FlightrecTracingProcessor

        set_trace_processors([FlightrecTracingProcessor()])
        try:
            client = async_client(reply(responses_body("Sunny.")))
            model = agents.OpenAIResponsesModel(model="gpt-4.1", openai_client=client)
            agent = agents.Agent(name="weather", instructions="be brief", model=model)
            result = asyncio.run(agents.Runner.run(agent, "weather in Paris?"))
        finally:
            set_trace_processors([])
        assert result.final_output == "Sunny."
        events = llm_events()
        assert [e.data.get("source") for e in events] == [None]

    @pytest.mark.usefixtures("instrumented")
    def test_with_the_sdk_tracing_disabled_the_client_records_the_call(self, rec: Any) -> None:
        """No SDK span is recorded (tracing disabled): the client-level event is the one there is."""
        agents = pytest.importorskip("agents")
        from agents.tracing import set_trace_processors

        from flightrec.integrations.openai_agents import FlightrecTracingProcessor

        set_trace_processors([FlightrecTracingProcessor()])
        try:
            model = agents.OpenAIChatCompletionsModel(model="gpt-4o", openai_client=async_client(reply(completion())))
            agent = agents.Agent(name="weather", instructions="be brief", model=model)
            config = agents.RunConfig(tracing_disabled=True)
            asyncio.run(agents.Runner.run(agent, "weather in Paris?", run_config=config))
        finally:
            set_trace_processors([])
        assert one_llm()["source"] == "openai"

    @pytest.mark.usefixtures("instrumented")
    def test_langchain_chat_openai_is_recorded_once(self, rec: Any) -> None:
        """ChatOpenAI calls this client inside its LangChain run (invoke, ainvoke, stream): the
        LangChain handler records each call; the client adds no second llm event."""
        pytest.importorskip("langchain_openai", reason="langchain-openai is not installed")
        from langchain_openai import ChatOpenAI

        from flightrec.integrations.langchain import FlightrecCallbackHandler

        def model(body: Any) -> Any:
            return ChatOpenAI(
                model="gpt-4o",
                api_key="x",  # type: ignore[arg-type]
                base_url="http://test",
                http_client=httpx.Client(transport=httpx.MockTransport(reply(body))),
                http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(reply(body))),
                max_retries=0,
                callbacks=[FlightrecCallbackHandler()],
            )

        assert model(completion()).invoke("weather?").content == "It is sunny."
        assert asyncio.run(model(completion()).ainvoke("weather?")).content == "It is sunny."
        assert "".join(str(c.content) for c in model(text_stream(["It ", "is ", "sunny."])).stream("?")) == (
            "It is sunny."
        )
        events = llm_events()
        assert [e.data.get("source") for e in events] == [None, None, None]  # the handler's three

    @pytest.mark.usefixtures("instrumented")
    def test_langchain_chat_openai_without_flightrec_handler_is_recorded_by_the_client(self, rec: Any) -> None:
        """ChatOpenAI with no flightrec handler on it: the client-level event is the one there is."""
        pytest.importorskip("langchain_openai", reason="langchain-openai is not installed")
        from langchain_openai import ChatOpenAI

        import flightrec.integrations.langchain  # noqa: F401  (imported: the client asks it)

        http = httpx.Client(transport=httpx.MockTransport(reply(completion())))
        chat = ChatOpenAI(model="gpt-4o", api_key="x", base_url="http://test", http_client=http, max_retries=0)  # type: ignore[arg-type]
        chat.invoke("weather?")
        assert one_llm()["source"] == "openai"

    @pytest.mark.usefixtures("instrumented")
    def test_an_otel_chat_span_recorded_by_flightrec_is_not_recorded_twice(self, rec: Any) -> None:
        """An instrumentor's `chat` span around the call (as opentelemetry-instrumentation-openai makes):
        the OTel integration records it; the client does not."""
        pytest.importorskip("opentelemetry.sdk.trace")
        from opentelemetry.sdk.trace import TracerProvider

        from flightrec.integrations.otel import FlightrecSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(FlightrecSpanProcessor())
        tracer = provider.get_tracer("test")
        client = sync_client(reply(completion()))
        with tracer.start_as_current_span("chat gpt-4o", attributes={"gen_ai.operation.name": "chat"}):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        with tracer.start_as_current_span("plain step"):  # not an LLM span: the client records
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        events = llm_events()
        assert [e.data.get("source") for e in events] == [None, "openai"]


class TestAuto:
    def test_import_flightrec_auto_records_the_client_once_openai_is_imported(self, frdir: Path) -> None:
        """`import flightrec.auto` then `import openai`: the integration is enabled and a call is recorded."""
        code = f"""
import json
import flightrec, flightrec.auto
import sys
assert "openai" not in sys.modules
import httpx, openai
from flightrec.integrations.auto import enabled
def handler(request):
    return httpx.Response(200, json={completion()!r})
http = httpx.Client(transport=httpx.MockTransport(handler))
client = openai.OpenAI(api_key="x", base_url="http://test", http_client=http)
client.chat.completions.create(model="gpt-4o", messages=[{{"role": "user", "content": "hi"}}])
path = flightrec.dump("test")
llm = [e.data for e in flightrec.load(path).events() if e.kind == "llm"]
print(json.dumps([enabled()["openai"], [(d["source"], d["response"]["content"]) for d in llm]]))
"""
        result = run_child(code, frdir)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout.strip().splitlines()[-1]) == ["enabled", [["openai", "It is sunny."]]]

    def test_the_environment_can_leave_the_client_alone(self, frdir: Path) -> None:
        """FLIGHTREC_INTEGRATIONS without `openai`: the client's create is not wrapped."""
        code = """
import json
import flightrec.auto
import openai
from openai.resources.chat.completions import Completions
print(json.dumps(hasattr(Completions.create, "__flightrec_original__")))
"""
        result = run_child(code, frdir, FLIGHTREC_INTEGRATIONS="otel,langchain")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "false"
