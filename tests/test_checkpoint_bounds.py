"""A state too large for the ring is refused, quickly, with an event that says so.

Keeping a checkpoint rebuildable means re-emitting its chunks as the ring wraps; a state whose
chunks fill more of the ring than that can hold was re-emitted over and over while it was being
written (minutes for a few MB in a 1 MiB ring). Such a state is now refused: a ``checkpoint``
event with ``error`` and no ``root``, written as soon as packing shows the state is too large.
Every test runs with the C helpers and without them (the pure-Python path).
"""

from __future__ import annotations

import base64
import heapq
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import flightrec
from flightrec.checkpoint import pack, walk
from flightrec.checkpoint import store as store_mod

from .test_checkpoint_native import workload


@pytest.fixture(params=["native", "pure"])
def path_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """With the C helpers (when built), or the pure-Python code they stand in for."""
    if request.param == "pure":
        for mod, name in [
            (store_mod, "_emit_usual"),
            (store_mod, "_checkpoint_usual"),
            (store_mod, "_checkpoint_entry"),
            (walk, "_walk_grown"),
            (pack, "_paged_grown"),
        ]:
            monkeypatch.setattr(mod, name, None)
    return str(request.param)


@pytest.fixture
def tiny(frdir: Path, path_kind: str) -> Iterator[Any]:
    """A recorder with a 1 MiB ring (8 KiB blocks)."""
    rec = flightrec.start(dir=frdir, size="1MiB", block_size="8KiB", triggers=False, resources=0)
    assert rec is not None
    yield rec
    flightrec.stop()


def text(n: int, seed: int = 0) -> str:
    """``n`` characters that do not compress (base64 of random bytes)."""
    return base64.b64encode(random.Random(seed).randbytes(n * 3 // 4 + 3)).decode()[:n]


def event_at(rec: Any, seq: int) -> Any:
    path = flightrec.dump("bounds")
    assert path is not None
    with flightrec.load(path) as r:
        return next(e for e in r.events() if e.seq == seq)


class TestRefused:
    def test_a_state_larger_than_the_ring_is_refused_before_it_is_packed(self, tiny: Any) -> None:
        """A 4 MB text in a 1 MiB ring: one event (the refusal), nothing else written, no
        chunk re-emitted; the event says packing stopped early (``over``)."""
        store = store_mod.store_for(tiny)
        before = flightrec.record("mark")
        blocks = tiny.ring.block_seq
        seq = flightrec.checkpoint({"doc": text(4 << 20)}, label="huge")
        assert seq == before + 1  # no chunk event written before it
        assert tiny.ring.block_seq - blocks <= 1
        assert store.reemitted == 0 and store.refused == 1 and tiny.errors == 0
        ev = event_at(tiny, seq)
        assert ev.kind == "checkpoint" and "root" not in ev.data and "chunks" not in ev.data
        assert ev.data["label"] == "huge"
        assert ev.data["error"].startswith("state too large: over ")
        assert ev.data["error"].endswith(f", limit {store.state_max}")

    def test_a_list_of_many_small_items_is_refused_without_storing_any(self, tiny: Any) -> None:
        """A list packed into many small pages (the reviewer's ``list(range(200000))``, smaller
        here): refused once packed, before any chunk is written."""
        before = flightrec.record("mark")
        seq = flightrec.checkpoint(list(range(60_000)), label="ints")
        assert seq == before + 1
        assert store_mod.store_for(tiny).reemitted == 0
        error = event_at(tiny, seq).data["error"]
        assert error.startswith("state too large: ") and "limit" in error

    def test_the_refusal_reads_back(self, tiny: Any) -> None:
        """``checkpoints()`` lists it, not rebuildable, with its error; ``state_at`` at or after
        it raises MissingChunk (there is no state to show), and the checkpoint before it still
        rebuilds."""
        first = flightrec.checkpoint({"turn": 1, "notes": ["a", "b"]}, label="small")
        refused = flightrec.checkpoint({"turn": 2, "doc": text(3 << 20)}, label="huge")
        assert first is not None and refused is not None
        path = flightrec.dump("readback")
        assert path is not None
        with flightrec.load(path) as r:
            infos = r.checkpoints()
            assert [(i.seq, i.label, i.rebuildable) for i in infos] == [
                (first, "small", True),
                (refused, "huge", False),
            ]
            assert infos[0].error is None
            assert infos[1].error is not None and infos[1].error.startswith("state too large")
            assert r.state_at(first) == {"turn": 1, "notes": ["a", "b"]}
            with pytest.raises(flightrec.MissingChunk, match="state too large"):
                r.state_at(refused)
            with pytest.raises(flightrec.MissingChunk):
                r.diff(first, refused)
            r.findings()  # (the rest of the analysis copes with it)

    def test_just_under_the_limit_is_stored_and_rebuilds(self, tiny: Any) -> None:
        """A state just under the limit is stored and rebuilds exactly; just over it is refused
        (and the one before stays rebuildable)."""
        store = store_mod.store_for(tiny)
        limit = store.state_max
        under = {"doc": text(limit * 9 // 10, seed=1)}  # (16 KiB pieces: ~0.4% of framing)
        seq = flightrec.checkpoint(under, label="under")
        assert seq is not None and store.refused == 0
        over = flightrec.checkpoint({"doc": text(limit * 11 // 10, seed=2)}, label="over")
        assert over is not None and store.refused == 1
        path = flightrec.dump("under")
        assert path is not None
        with flightrec.load(path) as r:
            infos = {i.seq: i for i in r.checkpoints()}
            assert infos[seq].rebuildable and infos[seq].error is None
            assert r.state_at(seq) == under
            assert not infos[over].rebuildable and infos[over].error


class TestGrowing:
    def test_a_conversation_that_outgrows_the_limit(self, tiny: Any) -> None:
        """A conversation checkpointed every turn (the usual checkpoint) is refused from the turn
        it passes the limit on, cheaply, and stored again once compacted; every stored one
        rebuilds to its state."""
        store = store_mod.store_for(tiny)
        conv: list[dict[str, Any]] = [{"role": "system", "content": "be brief"}]
        originals: dict[int, Any] = {}
        refused: list[int] = []
        for turn in range(70):
            if turn == 60:
                conv[1:] = [{"role": "system", "content": "summary"}]  # a compaction
            conv.append({"role": "assistant", "content": f"turn {turn}: {text(8000, seed=turn)}"})
            seq = flightrec.checkpoint(conv, label=f"turn {turn}")
            assert seq is not None
            if store.refused > len(refused):
                refused.append(seq)
            else:
                originals[seq] = [dict(m) for m in conv]
        assert tiny.errors == 0
        assert 3 <= len(refused) <= 15  # refused from some turn on (about the 52nd), until the compaction
        path = flightrec.dump("growing")
        assert path is not None
        with flightrec.load(path) as r:
            infos = r.checkpoints()
            assert infos[-1].rebuildable and infos[-1].error is None  # (after the compaction)
            for info in infos:
                if info.error is not None:
                    assert info.seq in refused and not info.rebuildable
                elif info.rebuildable:
                    assert r.state_at(info.seq) == originals[info.seq]


class TestWrapping:
    """Near its limits (live chunks over half the ring, states near ``state_max``), a ring
    that wraps keeps every checkpoint in it rebuildable, in every dump, not only the last."""

    @pytest.fixture
    def small(self, frdir: Path, path_kind: str) -> Iterator[Any]:
        """A recorder with a 384 KiB ring (8 KiB blocks), which the workload wraps many times."""
        rec = flightrec.start(dir=frdir, size="384KiB", block_size="8KiB", triggers=False, resources=0)
        assert rec is not None
        yield rec
        flightrec.stop()

    def test_the_newest_checkpoint_is_rebuildable_after_every_checkpoint(
        self, small: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A dump taken after each checkpoint rebuilds its newest one (and the ones given up are
        the oldest). The newest used to be lost in a few of these dumps (a chunk re-emitted into
        a block whose header said it held older seqs only was overwritten unseen)."""
        store = store_mod.store_for(small)
        lost: list[tuple[int, list[bool]]] = []
        real = flightrec.checkpoint

        def checked(state: Any, label: Any = None) -> Any:
            seq = real(state, label=label)
            path = flightrec.dump("each")
            assert path is not None
            with flightrec.load(path) as r:
                flags = [i.rebuildable for i in r.checkpoints() if i.error is None]
            path.unlink()
            if flags and (not flags[-1] or flags != sorted(flags)):
                lost.append((seq, flags))
            return seq

        monkeypatch.setattr(flightrec, "checkpoint", checked)
        workload(0, 300, incompressible=True)
        assert store.reemitted > 300 and store.refused > 0  # (wrapped, at the limits)
        assert small.errors == 0
        assert lost == []

    def test_every_block_holds_its_seqs_in_order(self, small: Any) -> None:
        """Chunks re-emitted by the flush listener come after the event whose append flushed
        (they take the seqs after it): each block's events are in seq order, within the seqs
        its header names, which the listener's bookkeeping relies on."""
        workload(1, 120, incompressible=True)
        assert store_mod.store_for(small).reemitted > 0
        with flightrec.load(small.ring_path) as r:
            last = 0
            for i, block in enumerate(r.blocks):
                seqs = [e.seq for e in r.block_events(i)]
                assert seqs == sorted(seqs) and seqs[0] > last, (i, seqs)
                assert (seqs[0], seqs[-1]) == (block.header.first_seq, block.header.last_seq)
                last = seqs[-1]


class _CountingHeap(list):  # type: ignore[type-arg]
    """A heap (``heapq`` takes list subclasses, reading them in C) that counts the entries
    Python code reads from it: by iteration, or one by one."""

    reads = 0

    def __iter__(self) -> Any:
        _CountingHeap.reads += len(self)
        return super().__iter__()

    def __getitem__(self, i: Any) -> Any:
        _CountingHeap.reads += 1
        return super().__getitem__(i)


class TestReemissionCost:
    def test_a_flush_reads_the_chunks_at_risk_not_every_live_chunk(self, frdir: Path, path_kind: str) -> None:
        """Finding the chunks the next flush may overwrite reads those, not every live chunk's
        entry: a pass over the whole heap at every flush made a long run with a 64 MiB ring
        several times slower once the ring had wrapped (2000 agent turns: 0.8 s, then 4-5 s)."""
        rec = flightrec.start(dir=frdir, size="2MiB", block_size="8KiB", triggers=False, resources=0)
        assert rec is not None
        try:
            store = store_mod.store_for(rec)
            state = {"messages": [{"role": "user", "content": text(400, seed=i)} for i in range(600)]}
            flightrec.checkpoint(state, label="many live chunks")
            heap = _CountingHeap(store._heap)
            store._heap = heap
            _CountingHeap.reads = 0
            flushes = rec.ring.block_seq
            for i in range(12_000):  # wraps the ring a few times; the state's chunks stay live
                flightrec.record("note", body=text(300, seed=10_000 + i))
                if i % 4 == 0:  # one message replaced: live chunks written all along the ring
                    state["messages"][i // 4 % 600] = {"role": "user", "content": text(400, seed=50_000 + i)}
                    flightrec.checkpoint(state, label=f"turn {i}")
            flushes = rec.ring.block_seq - flushes
            assert store.reemitted > 600, "the chunks were re-emitted as the ring wrapped"
            assert flushes > 100
            # (about 75 reads a flush; a pass over every entry at each flush made it over 4000)
            assert _CountingHeap.reads < flushes * 300, (_CountingHeap.reads, flushes, len(heap))
            path = flightrec.dump("after")
            assert path is not None
            with flightrec.load(path) as r:
                assert r.checkpoints()[-1].rebuildable
        finally:
            flightrec.stop()

    def test_heap_upto_is_the_entries_up_to_a_seq(self) -> None:
        rng = random.Random(5)
        heap: list[tuple[int, bytes]] = []
        for step in range(3000):
            if heap and rng.random() < 0.3:
                heapq.heappop(heap)
            else:
                heapq.heappush(heap, (rng.randrange(10_000), bytes([step % 256])))
            last = rng.randrange(-1, 10_001)
            assert sorted(store_mod.heap_upto(heap, last)) == sorted(e for e in heap if e[0] <= last)
