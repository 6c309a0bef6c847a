"""What recording the ``openai`` client costs a call: ``create`` with the integration on vs. off.

Run: ``.venv/bin/python benchmarks/openai_client.py``. The real ``openai`` client over an
in-process ``httpx.MockTransport`` (no network), answering a chat completion, or a stream of
20 text chunks with usage: the median CPU time per call with the client not instrumented and
instrumented (recording), interleaved round by round, in one run; then the integration's own
work, timed without the client around it. Thread CPU time: on a shared machine wall time would
count the waits for the CPU. On a loaded machine the difference between the two end-to-end
medians is within their noise (a call varies by +-100 us from round to round); the last two
lines are the cost the integration adds.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import no_options

import flightrec
from flightrec.integrations import openai_client

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "weather in Paris?"}]
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "It is sunny."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 21, "completion_tokens": 5, "total_tokens": 26},
}


def _stream_body(chunks: int = 20) -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [choice]}

    events = [chunk({"content": "word "}) for _ in range(chunks)] + [chunk({}, "stop")]
    usage = {"prompt_tokens": 21, "completion_tokens": chunks, "total_tokens": 21 + chunks}
    events.append(
        {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [], "usage": usage}
    )
    return ("".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n").encode()


def _client() -> Any:
    import httpx
    import openai

    body = _stream_body()

    def handler(request: Any) -> Any:
        if json.loads(request.content).get("stream"):
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
        return httpx.Response(200, json=COMPLETION)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    return openai.OpenAI(api_key="x", base_url="http://test", http_client=http, max_retries=0)


def _cpu_per_call_us(fn: Callable[[], object], n: int) -> float:
    t0 = time.thread_time_ns()
    for _ in range(n):
        fn()
    return (time.thread_time_ns() - t0) / n / 1e3


def run(n: int = 100, rounds: int = 16) -> dict[str, float]:
    """Median CPU microseconds per call of each case, interleaved round by round (the order of
    on and off swapped every round), and the integration's own work without the client."""
    client = _client()

    def plain() -> object:
        return client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    def streamed() -> object:
        for _ in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
            pass
        return None

    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as d:
        flightrec.start(dir=d, triggers=False, resources=0)
        try:
            for fn in (plain, streamed):  # warm up
                for _ in range(n):
                    fn()
            reply = plain()
            chunk = next(iter(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)))
            kwargs = {"model": "gpt-4o", "messages": MESSAGES}
            call = openai_client._Call(flightrec.get_recorder(), "chat.completions", kwargs)

            def alone() -> object:
                started = openai_client._begin("chat.completions", kwargs)
                return started.returned(reply) if started is not None else None

            for r in range(rounds):
                for name, fn in (("create", plain), ("create(stream=True), 20 chunks", streamed)):
                    for on in (False, True) if r % 2 else (True, False):
                        openai_client.instrument() if on else openai_client.uninstrument()
                        key = f"{name}  {'recorded' if on else 'not instrumented'}"
                        samples.setdefault(key, []).append(_cpu_per_call_us(fn, n))
                samples.setdefault("the integration's own work a call (no client)", []).append(
                    _cpu_per_call_us(alone, 20 * n)
                )
                samples.setdefault("the integration's own work a streamed chunk", []).append(
                    _cpu_per_call_us(lambda: call._chunk(chunk), 20 * n)
                )
        finally:
            openai_client.uninstrument()
            flightrec.stop()
    return {k: statistics.median(v) for k, v in samples.items()}


def main() -> None:
    no_options(__doc__)
    result = run()
    width = max(len(k) for k in result)
    for key, us in result.items():
        print(f"  {key:<{width}}  {us:8.1f} us")


if __name__ == "__main__":
    main()
