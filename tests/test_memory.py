"""Memory bookkeeping: retain/evict/summarize events, context samples, live items through wrap-around."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import flightrec
from flightrec.memory import tracker_for

from .conftest import recorded


@pytest.fixture
def small(frdir: Path) -> Iterator[Any]:
    """A recorder with a tiny ring (256 KiB, 8 KiB blocks) that wraps quickly."""
    r = flightrec.start(dir=frdir, size="256KiB", block_size="8KiB", triggers=False, resources=0)
    assert r is not None
    yield r
    flightrec.stop()


class TestEvents:
    """Each memory call is one event with its ids, tokens and reasons."""

    def test_retain_evict_summarize_context(self, rec: Any) -> None:
        """The four calls record the documented fields."""
        flightrec.memory.retain("doc1", content="refunds take 5 days", tokens=40, reason="policy", source="kb")
        flightrec.memory.evict("doc1", reason="context full", tokens=40)
        flightrec.memory.summarize(["m1", "m2"], into="s1", tokens=30)
        flightrec.memory.context(900, 1000)
        with recorded() as r:
            events = r.memory_events()
            (sample,) = r.memory_timeline()
            (ctx,) = list(r.events(["context"]))
        assert [e.data for e in events] == [
            {
                "op": "retain",
                "item_id": "doc1",
                "tokens": 40,
                "reason": "policy",
                "source": "kb",
                "content": "refunds take 5 days",
            },
            {"op": "evict", "item_id": "doc1", "reason": "context full", "tokens": 40},
            {"op": "summarize", "item_ids": ["m1", "m2"], "into": "s1", "tokens": 30},
        ]
        assert (sample.used, sample.limit) == (900, 1000)
        assert ctx.data["ratio"] == 0.9

    def test_summarize_of_one_id_given_as_a_string(self, rec: Any) -> None:
        """summarize("doc:1", into=...) summarizes that item, not the characters of its id."""
        flightrec.memory.retain("doc:1", tokens=400)
        flightrec.memory.summarize("doc:1", into="sum:1", tokens=50)
        with recorded() as r:
            (event,) = [e for e in r.memory_events() if e.data["op"] == "summarize"]
            live = r.live_items(event.seq)
        assert event.data["item_ids"] == ["doc:1"]
        assert set(live) == {"sum:1"}

    def test_retain_links_the_tool_call_that_produced_it(self, rec: Any) -> None:
        """A retain after a successful tool call carries that call's id."""

        @flightrec.tool
        def search(q: str) -> str:
            return "found " + q

        search("refunds")
        flightrec.memory.retain("doc-refunds", tokens=10)
        with recorded() as r:
            (call,) = r.tools()
            (ev,) = r.memory_events()
        assert call.call_id == ev.data["call_id"]

    def test_memory_content_is_redacted(self, rec: Any) -> None:
        """Item content passes through the redactor like any event."""
        flightrec.memory.retain("u", content="customer mail jane.doe@corp-mail.com")
        with recorded() as r:
            (ev,) = r.memory_events()
        assert "jane.doe@corp-mail.com" not in ev.data["content"]

    def test_no_recorder(self) -> None:
        """Without a recorder every call returns None."""
        assert flightrec.memory.retain("a") is None
        assert flightrec.memory.evict("a") is None
        assert flightrec.memory.summarize(["a"], into="b") is None
        assert flightrec.memory.context(1, 2) is None


class TestLiveItems:
    """The reader rebuilds which items were live at any point."""

    def test_live_items_at_each_point(self, rec: Any) -> None:
        """Retain adds, evict removes, summarize replaces; live_items answers for any seq."""
        a = flightrec.memory.retain("a", tokens=10, reason="r", source="s")
        b = flightrec.memory.retain("b", tokens=20)
        e = flightrec.memory.evict("a")
        s = flightrec.memory.summarize(["b"], into="sum", tokens=5)
        assert None not in (a, b, e, s)
        with recorded() as r:
            assert list(r.live_items(a - 1)) == []  # type: ignore[operator]
            items = r.live_items(b)  # type: ignore[arg-type]
            assert list(items) == ["a", "b"]
            assert (10, "r", "s", a) == (
                items["a"].tokens,
                items["a"].reason,
                items["a"].source,
                items["a"].retained_seq,
            )
            assert list(r.live_items(e)) == ["b"]  # type: ignore[arg-type]
            live = r.live_items(s)  # type: ignore[arg-type]
            assert list(live) == ["sum"]
            assert live["sum"].tokens == 5

    def test_live_items_survive_wrap_around(self, small: Any) -> None:
        """Items retained long before the ring's oldest event are still known, exactly."""
        model: dict[str, int] = {}  # what the agent holds, by our own bookkeeping

        def retain(item: str, tokens: int) -> None:
            flightrec.memory.retain(item, tokens=tokens, reason="kept", source="boot")
            model[item] = tokens

        def evict(item: str) -> None:
            flightrec.memory.evict(item)
            model.pop(item, None)

        # GIVEN items retained early, then filler that wraps the ring many times over,
        # with evictions, re-retains and summaries along the way
        for i in range(40):
            retain(f"early{i}", i)
        marks: list[tuple[int, dict[str, int]]] = []
        for round_ in range(30):
            for _ in range(100):
                flightrec.record("filler", pad=os.urandom(60).hex(), n=round_)
            if round_ % 5 == 0:
                evict(f"early{round_}")
                retain(f"late{round_}", 1)
            if round_ == 12:
                flightrec.memory.summarize(["early1", "early2"], into="summary", tokens=7)
                model.pop("early1")
                model.pop("early2")
                model["summary"] = 7
            seq = flightrec.record("mark", n=round_)
            assert seq is not None
            marks.append((seq, dict(model)))
        # THEN the recording no longer holds the first retains, yet the live set is exact
        assert small.errors == 0
        with recorded() as r:
            first = next(r.events()).seq
            assert first > 200
            final = r.live_items(10**12)
            assert model == {k: v.tokens for k, v in final.items()}
            assert all(v.retained_seq < first for k, v in final.items() if k.startswith("early"))
            # AND at every mark still in the recording
            checked = 0
            for seq, want in marks:
                if seq >= first:
                    assert want == {k: v.tokens for k, v in r.live_items(seq).items()}
                    checked += 1
            assert checked >= 3
        assert tracker_for(small).forgotten == 0

    def test_an_item_retained_over_and_over_keeps_the_tracker_small(self, small: Any) -> None:
        """Thousands of retains of the same item before the ring wraps leave about one entry
        per live item in the tracker (not one per retain: a big ring holds millions of
        them), and every item is still carried when the ring wraps."""
        for i in range(40):
            flightrec.memory.retain(f"early{i}", tokens=i)
        for _ in range(5000):
            flightrec.memory.retain("hot", tokens=1)
        tracker = tracker_for(small)
        live = tracker.live()  # (applies the queued updates)
        assert len(live) == 41
        assert len(tracker._heap) <= 2 * len(live) + 1024
        for n in range(3000):
            flightrec.record("filler", pad=os.urandom(60).hex(), n=n)
        assert small.errors == 0
        with recorded() as r:
            assert next(r.events()).seq > 5040  # (the retains are overwritten)
            final = r.live_items(10**12)
            assert {f"early{i}": i for i in range(40)} | {"hot": 1} == {k: v.tokens for k, v in final.items()}

    def test_updates_applied_out_of_order_keep_the_newest(self, rec: Any) -> None:
        """Threads record first and update the live items after: a late, older update loses."""
        tracker = tracker_for(rec)
        tracker._drop("a", 10)  # the evict (seq 10) is applied before the retain (seq 5)
        tracker._put("a", 5, {"op": "retain", "item_id": "a"})
        tracker._put("b", 20, {"op": "retain", "item_id": "b"})
        tracker._drop("b", 15)  # an evict recorded before the retain, applied after it
        tracker._put("c", 30, {"op": "retain", "item_id": "c", "tokens": 1})
        tracker._put("c", 25, {"op": "retain", "item_id": "c", "tokens": 2})
        assert tracker.live() == {
            "b": {"op": "retain", "item_id": "b"},
            "c": {"op": "retain", "item_id": "c", "tokens": 1},
        }

    def test_a_live_item_keeps_what_is_carried_only(self, rec: Any) -> None:
        """Its id, tokens, reason and source: not its content, nor the tool call it came from."""

        @flightrec.tool
        def fetch(url: str) -> str:
            return "page"

        fetch("https://example.org")
        flightrec.memory.retain("doc-1", content="the page text", tokens=12, reason="needed", source="fetch")
        flightrec.memory.retain(["odd", "id"], tokens=3)  # an unhashable id: kept by its repr
        flightrec.memory.retain(("a", "tuple"), tokens=4)
        flightrec.memory.evict(("a", "tuple"))
        assert tracker_for(rec).live() == {
            "doc-1": {"op": "retain", "item_id": "doc-1", "tokens": 12, "reason": "needed", "source": "fetch"},
            "['odd', 'id']": {"op": "retain", "item_id": ["odd", "id"], "tokens": 3},
        }

    def test_many_updates_without_a_flush(self, frdir: Path) -> None:
        """Updates wait for a flush to be applied, in a bounded queue: none is lost, none waits forever."""
        r = flightrec.start(dir=frdir, size="64MiB", triggers=False, resources=0)
        assert r is not None
        try:
            for i in range(10_000):
                flightrec.memory.retain(f"doc{i}", tokens=i)
                if i % 2:
                    flightrec.memory.evict(f"doc{i}")
            flightrec.memory.summarize(["doc0", "doc2"], into="sum", tokens=5)
            tracker = tracker_for(r)
            assert len(tracker._pending) <= 4096
            live = tracker.live()
            kept = list(range(4, 10_000, 2))[-(tracker.max_items - 1) :]  # the oldest are forgotten
            assert list(live) == [f"doc{i}" for i in kept] + ["sum"]
            assert live["sum"] == {"op": "retain", "item_id": "sum", "reason": "summarize", "tokens": 5}
        finally:
            flightrec.stop()

    def test_threads_retain_and_evict_while_the_ring_wraps(self, small: Any) -> None:
        """Four threads churn their items through a wrapping ring: the live set stays exact."""
        models: list[dict[str, int]] = [{} for _ in range(4)]

        def churn(t: int) -> None:
            model = models[t]
            for i in range(400):
                item = f"t{t}-{i % 30}"  # at most 120 live: under max_items (128)
                if item in model and i % 3 == 0:
                    flightrec.memory.evict(item)
                    del model[item]
                else:
                    flightrec.memory.retain(item, tokens=i, reason="work")
                    model[item] = i
                flightrec.record("filler", pad=os.urandom(120).hex())

        threads = [threading.Thread(target=churn, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        want = {k: v for m in models for k, v in m.items()}
        assert small.errors == 0
        assert {k: v["tokens"] for k, v in tracker_for(small).live().items()} == want
        with recorded() as r:
            assert next(r.events()).seq > 1  # the ring wrapped
            assert {k: v.tokens for k, v in r.live_items(10**12).items()} == want

    def test_carried_retains_are_redacted_like_the_original(self, small: Any) -> None:
        """An item id, reason or source with PII is carried with the pseudonym of the original event."""
        first = flightrec.memory.retain("jane.doe@example.com", tokens=3, reason="call 202-555-0143", source="crm")
        second = flightrec.memory.retain(("doc", "sam@example.org"), tokens=1)  # not a plain value
        for _ in range(3000):
            flightrec.record("filler", pad=os.urandom(60).hex())
        with recorded() as r:
            carried = [e.data for e in r.memory_events() if "carried" in e.data]
        by_origin = {c["carried"]: c for c in carried}
        assert set(by_origin) == {first, second}
        one, two = by_origin[first], by_origin[second]
        assert one["item_id"].startswith("<EMAIL:") and "jane" not in str(one)
        assert one["reason"].startswith("call <PHONE:") and one["source"] == "crm"
        assert "sam@" not in str(two) and "<EMAIL:" in str(two["item_id"])
        assert small.redactor.redact({"id": "jane.doe@example.com"})["id"] == one["item_id"]  # same pseudonym

    def test_carried_retains_are_marked(self, small: Any) -> None:
        """Re-emitted retains carry the seq of the original decision."""
        first = flightrec.memory.retain("x", tokens=3)
        for _ in range(3000):
            flightrec.record("filler", pad=os.urandom(60).hex())
        with recorded() as r:
            carried = [e for e in r.memory_events() if "carried" in e.data]
        assert carried
        assert {first} == {e.data["carried"] for e in carried}
        assert {"x"} == {e.data["item_id"] for e in carried}
