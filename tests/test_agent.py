"""Steps, tool calls and LLM calls: what they record, sync and async, and that they never hurt the agent."""

from __future__ import annotations

import asyncio
import errno
import json
from typing import Any

import pytest

import flightrec
from flightrec.agent import classify_error

from .conftest import recorded


def kinds(recording: flightrec.Recording, *names: str) -> list[flightrec.Event]:
    """The recording's events of these kinds, in order."""
    return list(recording.events(names))


class ValidationError(ValueError):
    """Named like pydantic's."""


class HTTPError(Exception):
    """An HTTP client error with a status code."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class RateLimitExceeded(Exception):
    """Named like a rate limit."""


class TestSteps:
    """Steps nest into a tree, sync and async, and record their outcome."""

    def test_nested_steps_form_a_tree(self, rec: Any) -> None:
        """A step inside a step has it as parent; events inside carry the step's span."""
        with flightrec.step("outer", user="u1") as outer, flightrec.step("inner") as inner:
            flightrec.record("note", x=1)
        with recorded() as r:
            steps = r.steps()
            (note,) = kinds(r, "note")
        assert [("outer", None), ("inner", outer.id)] == [(s.name, s.parent) for s in steps]
        assert steps[0].attrs == {"user": "u1"}
        assert (inner.id, outer.id) == (note.span, note.parent)
        assert all(s.duration_ms is not None and s.end_seq is not None and s.error is None for s in steps)
        assert steps[0].end_ns >= steps[1].end_ns  # type: ignore[operator]

    def test_an_exception_is_recorded_and_reraised_unchanged(self, rec: Any) -> None:
        """The step records the error; the very same exception object propagates."""
        boom = KeyError("missing")
        with pytest.raises(KeyError) as caught, flightrec.step("risky"):
            raise boom
        assert caught.value is boom
        with recorded() as r:
            (step,) = r.steps()
            (end,) = kinds(r, "step_end")
        assert step.error == "'missing'"
        assert end.data["error_type"] == "KeyError"

    def test_span_is_restored_after_a_step(self, rec: Any) -> None:
        """After a step, events are no longer attributed to it."""
        with flightrec.step("a"):
            pass
        flightrec.record("after")
        with recorded() as r:
            (after,) = kinds(r, "after")
        assert (after.span, after.parent) == (None, None)

    def test_steps_left_out_of_order_end_as_themselves(self, rec: Any) -> None:
        """Two generators stepping in turn leave their steps out of order: each step_end still
        carries its own step, and afterwards no ended step is left current."""

        def numbers(name: str) -> Any:
            with flightrec.step(name):
                yield from range(2)

        with flightrec.step("pipeline") as pipeline:
            for _ in zip(numbers("g1"), numbers("g2"), strict=True):
                pass
        flightrec.record("after", n=1)
        a, b = flightrec.step("a"), flightrec.step("b")
        a.__enter__()
        b.__enter__()
        a.__exit__(None, None, None)
        flightrec.record("inside_b", n=2)
        b.__exit__(None, None, None)
        flightrec.record("after", n=3)
        with recorded() as r:
            starts = {e.span: e.data["name"] for e in kinds(r, "step_start")}
            ends = [(e.data["name"], starts[e.span], e.parent) for e in kinds(r, "step_end")]
            (inside_b,) = kinds(r, "inside_b")
            afters = kinds(r, "after")
            tree = {s.name: (s.parent, s.end_seq is not None) for s in r.steps()}
        assert [(name, owner) for name, owner, _ in ends] == [
            ("g1", "g1"),
            ("g2", "g2"),
            ("pipeline", "pipeline"),
            ("a", "a"),
            ("b", "b"),
        ]
        assert tree["g1"] == (pipeline.id, True) and tree["pipeline"] == (None, True)
        assert tree["a"] == (None, True) and tree["b"] == (a.id, True)
        assert (inside_b.span, inside_b.parent) == (b.id, a.id)
        assert [(e.span, e.parent) for e in afters] == [(None, None), (None, None)]
        from flightrec.agent import _open_steps

        assert not set(starts) & _open_steps, "every step left is no longer counted open"

    def test_a_step_decorating_a_generator_spans_its_iteration(self, rec: Any) -> None:
        """@flightrec.step on a generator function (sync or async): the step runs while the
        generator does, start to end, with its events inside; its return value comes through."""

        @flightrec.step("produce")
        def produce(n: int) -> Any:
            for i in range(n):
                flightrec.record("item", i=i)
                yield i
            return "done"

        @flightrec.step("aproduce")
        async def aproduce(n: int) -> Any:
            for i in range(n):
                flightrec.record("aitem", i=i)
                yield i

        async def consume() -> list[int]:
            return [i async for i in aproduce(2)]

        gen = produce(3)
        assert list(gen) == [0, 1, 2]
        assert asyncio.run(consume()) == [0, 1]

        returned: list[Any] = []

        def outer() -> Any:
            returned.append((yield from produce(1)))

        assert list(outer()) == [0] and returned == ["done"]
        with recorded() as r:
            steps = {s.id: s for s in r.steps()}
            items = kinds(r, "item") + kinds(r, "aitem")
        for _ in produce(5):
            break  # abandoned: closed early, which is no failure
        assert [s.name for s in steps.values()] == ["produce", "aproduce", "produce"]
        assert all(steps[e.span].name in ("produce", "aproduce") for e in items)
        assert all(s.end_seq is not None and s.end_seq > s.start_seq + 1 for s in steps.values())
        with recorded() as r:
            closed = r.steps()[-1]
        assert (closed.name, closed.end_seq is not None, closed.error) == ("produce", True, None)

    def test_a_cancelled_step_says_so(self, rec: Any) -> None:
        """A step left by a CancelledError (no message) records its type as the error, not ""."""

        async def slow() -> None:
            with flightrec.step("waiting"):
                await asyncio.sleep(10)

        async def main() -> None:
            task = asyncio.create_task(slow())
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        with recorded() as r:
            (step,) = r.steps()
        assert step.error == "CancelledError"

    def test_steps_across_asyncio_tasks(self, rec: Any) -> None:
        """Tasks gathered inside a step are its children, each with its own nested steps."""

        async def worker(n: int) -> int:
            with flightrec.step("worker", n=n):
                await asyncio.sleep(0.001 * (3 - n))
                with flightrec.step("leaf", n=n):
                    await asyncio.sleep(0)
            return n

        async def main() -> None:
            async with flightrec.step("root"):
                assert await asyncio.gather(*(worker(n) for n in range(3))) == [0, 1, 2]

        asyncio.run(main())
        with recorded() as r:
            steps = {(s.name, s.attrs.get("n")): s for s in r.steps()}
        root = steps[("root", None)]
        for n in range(3):
            assert root.id == steps[("worker", n)].parent
            assert steps[("worker", n)].id == steps[("leaf", n)].parent

    def test_step_as_decorator(self, rec: Any) -> None:
        """@step wraps every call of a sync or async function in a fresh step."""

        @flightrec.step("plan", kind="sync")
        def plan(x: int) -> int:
            return x * 2

        @flightrec.step("act")
        async def act() -> str:
            return "done"

        assert plan(2) == 4
        assert plan(3) == 6
        assert asyncio.run(act()) == "done"
        with recorded() as r:
            assert [s.name for s in r.steps()] == ["plan", "plan", "act"]

    def test_threads_have_their_own_step_stack(self, rec: Any) -> None:
        """A step in one thread is not the parent of a step in another."""
        import threading

        with flightrec.step("main"):
            t = threading.Thread(target=lambda: flightrec.step("other").__enter__().__exit__(None, None, None))
            t.start()
            t.join()
        with recorded() as r:
            steps = {s.name: s for s in r.steps()}
        assert steps["other"].parent is None
        assert steps["other"].thread != steps["main"].thread

    def test_a_step_left_in_another_context_restores_the_span(self, rec: Any) -> None:
        """Exited in a copied context (a callback, another task): the span is restored by value there."""
        import contextvars

        from flightrec.context import current_span

        with flightrec.step("outer") as outer:
            inner = flightrec.step("inner").__enter__()
            ctx = contextvars.copy_context()
            ctx.run(inner.__exit__, None, None, None)  # reset() refuses a token of another context
            assert ctx.run(current_span.get) == (outer.id, None)
            assert current_span.get() == (inner.id, outer.id)  # this context still in the inner step
            inner.__exit__(None, None, None)  # a second exit is a no-op
        assert current_span.get() is None
        assert rec.errors == 0
        with recorded() as r:
            assert [s.name for s in r.steps()] == ["outer", "inner"]
            assert [e.data["name"] for e in kinds(r, "step_end")] == ["inner", "outer"]

    def test_a_step_across_stop_and_start(self, frdir: Any) -> None:
        """Entered while recording and left after stop (or the reverse): no event, no error, span restored."""
        from flightrec.context import current_span

        flightrec.start(dir=frdir, triggers=False, resources=0)
        s = flightrec.step("across").__enter__()
        flightrec.stop()
        s.__exit__(None, None, None)
        assert current_span.get() is None
        late = flightrec.step("late").__enter__()  # not recording: a no-op step
        rec = flightrec.start(dir=frdir, triggers=False, resources=0)
        try:
            late.__exit__(None, None, None)
            with flightrec.step("fresh") as fresh:
                pass
            assert (late.id, fresh.id is not None, rec.errors) == (None, True, 0)
            with recorded() as r:
                assert [e.data["name"] for e in kinds(r, "step_end")] == ["fresh"]
        finally:
            flightrec.stop()

    def test_no_recorder_no_events_no_error(self) -> None:
        """Without a recorder a step is a no-op and still re-raises."""
        with flightrec.step("x") as s:
            pass
        assert s.id is None
        with pytest.raises(ZeroDivisionError), flightrec.step("y"):
            1 / 0  # noqa: B018


class TestTools:
    """@tool records name, arguments, result, error, origin, latency; sync and async."""

    def test_sync_tool_call_and_result(self, rec: Any) -> None:
        """Arguments are bound to parameter names; the result and the latency are stored."""

        @flightrec.tool
        def search(query: str, limit: int = 3) -> list[str]:
            return [f"{query}-{i}" for i in range(limit)]

        assert search("a", limit=2) == ["a-0", "a-1"]
        with recorded() as r:
            (call,) = r.tools()
        assert (
            call.tool,
            call.args,
            call.result,
            call.error,
        ) == ("search", {"query": "a", "limit": 2}, ["a-0", "a-1"], None)
        assert call.latency_ms is not None and call.latency_ms >= 0
        assert (call.attempt, call.retry_of) == (1, None)

    def test_latencies_and_durations_are_whole_microseconds(self, rec: Any) -> None:
        """A tool's latency and a step's duration, by the C path and the Python one (a tool that
        raises, a step left by an exception): milliseconds to the microsecond, measured."""
        import time

        @flightrec.tool
        def slow(ms: float) -> str:
            time.sleep(ms / 1000)
            return "ok"

        @flightrec.tool
        def failing() -> None:
            time.sleep(0.002)
            raise ValueError("no")

        with flightrec.step("fine"):
            slow(3.0)
        with pytest.raises(ValueError), flightrec.step("raises"):
            failing()
        with recorded() as r:
            values = [e.data["latency_ms"] for e in kinds(r, "tool_result")]
            values += [e.data["duration_ms"] for e in kinds(r, "step_end")]
        assert len(values) == 4
        for v in values:
            assert type(v) is float and v >= 2.0 and v < 10_000
            assert abs(v * 1000 - round(v * 1000)) < 1e-6, v  # whole microseconds
        assert values[0] >= 3.0 and values[2] >= values[0]

    def test_async_tool_and_names(self, rec: Any) -> None:
        """Async tools work; the name comes from tool("x"), tool(name="x") or the function."""

        @flightrec.tool("lookup")
        async def f1(key: str) -> str:
            await asyncio.sleep(0)
            return key.upper()

        @flightrec.tool(name="fetch")
        def f2() -> int:
            return 1

        class Agent:
            @flightrec.tool
            def act(self, what: str) -> str:
                return what

        assert asyncio.run(f1("k")) == "K"
        assert f2() == 1
        assert Agent().act("x") == "x"
        with recorded() as r:
            calls = r.tools()
        assert [(c.tool, c.args, c.result) for c in calls] == [
            ("lookup", {"key": "k"}, "K"),
            ("fetch", {}, 1),
            ("act", {"what": "x"}, "x"),
        ]

    def test_long_results_are_cut_with_their_length(self, rec: Any) -> None:
        """A long text or list result is stored cut, with result_len the full length."""

        @flightrec.tool
        def read() -> str:
            return "x" * 100_000

        @flightrec.tool
        def rows() -> list[int]:
            return list(range(5000))

        read()
        rows()
        with recorded() as r:
            results = kinds(r, "tool_result")
        assert results[0].data["result_len"] == 100_000
        assert len(results[0].data["result"]) < 10_000
        assert results[1].data["result_len"] == 5000
        assert list(range(100)) == results[1].data["result"]

    def test_classmethods_staticmethods_and_partials(self, rec: Any) -> None:
        """The decorator works above or below @classmethod/@staticmethod (the method stays
        callable from the class and from an instance), and a partial is named after its function."""
        import functools

        class Service:
            base = 10

            @flightrec.tool
            @classmethod
            def scaled(cls, x: int) -> int:
                return cls.base * x

            @flightrec.tool
            @staticmethod
            def double(x: int) -> int:
                return 2 * x

        def add(a: int, b: int) -> int:
            return a + b

        inc = flightrec.tool(functools.partial(add, 1))
        assert Service.scaled(2) == 20 and Service().scaled(3) == 30
        assert Service.double(4) == 8 and Service().double(5) == 10
        assert inc(2) == 3
        with recorded() as r:
            tools = r.tools()
        assert [(t.tool, t.args, t.result, t.error) for t in tools] == [
            ("scaled", {"x": 2}, 20, None),
            ("scaled", {"x": 3}, 30, None),
            ("double", {"x": 4}, 8, None),
            ("double", {"x": 5}, 10, None),
            ("add", {"b": 2}, 3, None),
        ]

    def test_a_result_too_big_for_an_event_keeps_the_call_it_belongs_to(self, rec: Any) -> None:
        """A result of many small items, over the event size even when cut to 100 items, is
        stored as a preview: the result event still names its tool, call id and latency (and
        an error with it), so the call keeps its outcome."""

        @flightrec.tool
        def table() -> dict[str, Any]:
            return {"rows": [[i] * 1000 for i in range(100)]}

        @flightrec.tool
        def failing() -> None:
            raise flightrec.ToolResponseError("bad answer", payload={"rows": [[i] * 1000 for i in range(100)]})

        table()
        with pytest.raises(flightrec.ToolResponseError):
            failing()
        with recorded() as r:
            ok, bad = kinds(r, "tool_result")
            calls = {t.tool: t for t in r.tools()}
        assert ok.data["_truncated"] > 32 * 1024 and "preview" in ok.data
        assert (ok.data["tool"], ok.data["call_id"]) == ("table", calls["table"].call_id)
        assert calls["table"].latency_ms is not None and calls["table"].result_seq == ok.seq
        assert (bad.data["error"], bad.data["origin"]) == ("bad answer", "response")
        assert calls["failing"].error == "bad answer" and r.tool_stats()["failing"].errors == 1

    @pytest.mark.parametrize(
        ("exc", "origin"),
        [
            (TypeError("missing argument"), "invocation"),
            (ValueError("bad date"), "invocation"),
            (ValidationError("1 validation error"), "invocation"),
            (HTTPError(422), "invocation"),
            (TimeoutError("timed out"), "transient"),
            (ConnectionResetError("reset"), "transient"),
            (OSError(errno.ECONNREFUSED, "refused"), "transient"),
            (HTTPError(503), "transient"),
            (HTTPError(429), "transient"),
            (RateLimitExceeded("slow down"), "transient"),
            (HTTPError(404), "response"),
            (json.JSONDecodeError("bad", "{", 0), "response"),
            (flightrec.ToolResponseError("not found", payload={"code": 404}), "response"),
            (RuntimeError("bug in the tool"), None),
            (KeyError("k"), None),
        ],
        ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
    )
    def test_failure_origin(self, rec: Any, exc: BaseException, origin: str | None) -> None:
        """Each class of failure gets its origin; the exception is re-raised unchanged."""

        @flightrec.tool
        def flaky() -> None:
            raise exc

        with pytest.raises(type(exc)) as caught:
            flaky()
        assert caught.value is exc
        assert origin == classify_error(exc)
        with recorded() as r:
            (call,) = r.tools()
            (res,) = kinds(r, "tool_result")
        assert (origin, type(exc).__name__) == (call.origin, res.data["error_type"])
        assert call.error
        if isinstance(exc, flightrec.ToolResponseError):
            assert call.result == {"code": 404}

    def test_tool_error_marks_a_response_error(self, rec: Any) -> None:
        """tool_error() inside a tool records a response error beside the returned payload."""

        @flightrec.tool
        def api() -> dict[str, str]:
            payload = {"error": "quota exceeded"}
            flightrec.tool_error("quota exceeded", code=402)
            return payload

        assert api() == {"error": "quota exceeded"}
        with recorded() as r:
            (call,) = r.tools()
            (res,) = kinds(r, "tool_result")
        assert (call.error, call.origin, call.result) == ("quota exceeded", "response", {"error": "quota exceeded"})
        assert res.data["code"] == 402

    def test_agent_marks_its_own_mistakes(self, rec: Any) -> None:
        """Reasoning and interpretation errors are error events the agent records itself."""
        flightrec.record("error", origin="reasoning", message="assumed the order had shipped")
        flightrec.tool_error("misread the date format", origin="interpretation")  # outside a tool call
        with recorded() as r:
            errors = kinds(r, "error")
        assert [e.data["origin"] for e in errors] == ["reasoning", "interpretation"]

    def test_retries_are_linked(self, rec: Any) -> None:
        """The same call repeated after a failure in the same step links to it, attempt by attempt."""
        answers = iter([TimeoutError("t1"), TimeoutError("t2"), "ok", TimeoutError("t3")])

        @flightrec.tool
        def fetch(url: str) -> str:
            a = next(answers)
            if isinstance(a, Exception):
                raise a
            return a

        with flightrec.step("s"):
            for _ in range(3):
                try:
                    fetch("u")
                except TimeoutError:
                    pass
            with pytest.raises(TimeoutError):
                fetch("u")  # after a success: a new call, not a retry
        with recorded() as r:
            calls = r.tools()
        assert [(1, None), (2, calls[0].call_id), (3, calls[1].call_id), (1, None)] == [
            (c.attempt, c.retry_of) for c in calls
        ]

    def test_other_arguments_or_steps_are_not_retries(self, rec: Any) -> None:
        """A failed call followed by other arguments, or the same in another step, is not linked."""

        @flightrec.tool
        def fetch(url: str) -> str:
            raise ConnectionError(url)

        for step_name, url in (("a", "u1"), ("a", "u2"), ("b", "u1")):
            with flightrec.step(step_name), pytest.raises(ConnectionError):
                fetch(url)
        with recorded() as r:
            assert [c.retry_of for c in r.tools()] == [None, None, None]

    def test_async_retries_are_linked(self, rec: Any) -> None:
        """Retry linking works for async tools too."""
        state = {"n": 0}

        @flightrec.tool
        async def fetch(url: str) -> str:
            state["n"] += 1
            if state["n"] < 3:
                raise HTTPError(503)
            return "ok"

        async def main() -> str:
            with flightrec.step("s"):
                for _ in range(5):
                    try:
                        return await fetch("u")
                    except HTTPError:
                        await asyncio.sleep(0)
            return "gave up"

        assert asyncio.run(main()) == "ok"
        with recorded() as r:
            calls = r.tools()
        assert [c.attempt for c in calls] == [1, 2, 3]
        assert [c.origin for c in calls] == ["transient", "transient", None]

    def test_no_recorder_is_just_a_call(self) -> None:
        """Without a recorder the tool runs untouched."""

        @flightrec.tool
        def f(x: int) -> int:
            return x + 1

        assert f(1) == 2
        assert f.__name__ == "f"

    def test_unencodable_arguments_do_not_break_the_call(self, rec: Any) -> None:
        """Arguments msgpack cannot hold are stored as repr; the call proceeds."""

        class Thing:
            def __repr__(self) -> str:
                return "<Thing>"

        @flightrec.tool
        def use(t: Thing) -> str:
            return "used"

        assert use(Thing()) == "used"
        assert rec.errors == 0
        with recorded() as r:
            (call,) = r.tools()
        assert "<Thing>" in str(call.args)


class TestLlm:
    """llm() records one model call."""

    def test_llm_event(self, rec: Any) -> None:
        """Model, tokens, latency, request and response are stored."""
        seq = flightrec.llm(
            model="m-1",
            prompt_tokens=100,
            completion_tokens=20,
            latency_ms=12.5,
            request=[{"role": "user", "content": "hi"}],
            response="hello",
            stop_reason="end",
        )
        assert seq is not None
        with recorded() as r:
            (ev,) = kinds(r, "llm")
        assert ev.data == {
            "model": "m-1",
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "latency_ms": 12.5,
            "request": [{"role": "user", "content": "hi"}],
            "response": "hello",
            "stop_reason": "end",
        }

    def test_llm_error_is_an_error(self, rec: Any) -> None:
        """An llm call with an error field counts as an error for the findings."""
        flightrec.llm(model="m", error="overloaded")
        with recorded() as r:
            assert [f.kind for f in r.findings()] == ["first_error"]

    def test_no_recorder(self) -> None:
        """Without a recorder llm() returns None."""
        assert flightrec.llm(model="m") is None
