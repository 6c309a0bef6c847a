"""An async research agent: parallel searches under one step, a flaky tool, memory and checkpoints.

Run: ``.venv/bin/python examples/async_research_agent.py``. It records into a temporary
directory, dumps at the end and prints what the recording says. No network: the search
"engine" and the LLM are scripted.
"""

from __future__ import annotations

import asyncio
import os
import tempfile

import flightrec

PAGES = {
    "ring buffer": "A ring buffer overwrites its oldest entries when full.",
    "mmap": "A memory-mapped file survives the crash of the process that wrote it.",
    "lz4": "LZ4 compresses at several hundred MB/s per core.",
}
_flaky = {"calls": 0}


class SearchTimeout(TimeoutError):
    """The search engine did not answer in time."""


@flightrec.tool(name="search")
async def search(query: str) -> str:
    """Search the (scripted) web; the first call for 'mmap' times out."""
    await asyncio.sleep(0.01)
    if query == "mmap" and _flaky["calls"] == 0:
        _flaky["calls"] += 1
        raise SearchTimeout("search engine timed out after 10 s")
    return PAGES[query]


async def research(topic: str, notes: dict[str, str]) -> None:
    """One sub-task: search a topic (retrying once on a timeout) and keep the result."""
    with flightrec.step("research", topic=topic):
        for _attempt in range(2):
            try:
                text = await search(topic)
                break
            except TimeoutError:
                await asyncio.sleep(0.005)
        else:
            return
        notes[topic] = text
        flightrec.memory.retain(f"note:{topic}", content=text, tokens=len(text) // 4, source="search")


async def main() -> None:
    """Plan, research three topics in parallel, write the answer."""
    notes: dict[str, str] = {}
    messages = [{"role": "user", "content": "Why do flight recorders use mapped ring buffers?"}]
    with flightrec.step("answer question"):
        flightrec.llm(
            model="scripted",
            prompt_tokens=40,
            completion_tokens=25,
            latency_ms=120,
            response="Plan: research ring buffer, mmap, lz4.",
        )
        flightrec.checkpoint({"messages": messages, "notes": notes}, label="planned")
        await asyncio.gather(*(research(t, notes) for t in PAGES))  # children of this step
        flightrec.memory.context(used_tokens=sum(len(n) for n in notes.values()) // 4 + 40, limit_tokens=200)
        flightrec.checkpoint({"messages": messages, "notes": notes}, label="researched")
        flightrec.memory.summarize([f"note:{t}" for t in PAGES], into="summary", tokens=30)
        messages.append({"role": "assistant", "content": " ".join(notes.values())})
        flightrec.llm(model="scripted", prompt_tokens=120, completion_tokens=60, latency_ms=340)
        flightrec.checkpoint({"messages": messages, "notes": notes}, label="answered")


if __name__ == "__main__":
    directory = tempfile.mkdtemp(prefix="flightrec-example-")
    os.chmod(directory, 0o700)
    flightrec.start(dir=directory, triggers=False, resources=0)
    asyncio.run(main())
    path = flightrec.dump("example")
    flightrec.stop()
    assert path is not None
    with flightrec.load(path) as rec:
        print(f"dump: {path}")
        for s in rec.steps():
            print(f"  step {s.name:16} id={s.id} parent={s.parent} {s.attrs} {s.duration_ms} ms")
        for t in rec.tools():
            print(f"  tool {t.tool}({t.args}) attempt={t.attempt} retry_of={t.retry_of} origin={t.origin}")
        first, *_, last = rec.checkpoints()
        print("  what changed between the first and the last checkpoint:")
        for d in rec.diff(first.seq, last.seq):
            print(f"    {d}")
        print("  findings:", [str(f) for f in rec.findings()] or "none")
    print(f"open it in the TUI: flightrec open {path}")
