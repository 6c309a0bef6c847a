"""The checkpoint's steady path in C against the Python code it stands in for.

``_Walker._grown`` (flightrec/_paging.c, walk_grown), ``_Packer.paged`` of a list that grew
(paged_grown) and ``CheckpointStore._emit``'s usual case (flightrec/_store.c): the same
checkpoints (a conversation that grows, slides, is compacted and edited, with other events
between them) are recorded once with them and once without. Every event (but its time), every
piece of the store's bookkeeping and of the walker's memory must come out the same. (In a ring
that wraps, the events' times change the compressed blocks' sizes and so when chunks are
re-emitted; there each run on its own must keep every checkpoint in the ring rebuildable.)
"""

from __future__ import annotations

import copy
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flightrec
from flightrec.checkpoint import pack, walk
from flightrec.checkpoint import store as store_mod
from flightrec.context import current_span

from .conftest import spy_handled

needs_c = pytest.mark.skipif(
    store_mod._store is None or walk._walk_grown is None, reason="the C extensions are not built here"
)


def workload(seed: int, turns: int, incompressible: bool = False) -> None:
    """Checkpoints of a conversation the way agents change theirs, with events in between."""
    rng = random.Random(seed)
    conv: list[dict[str, Any]] = [{"role": "system", "content": "be brief"}]
    for turn in range(turns):
        r = rng.random()
        if r < 0.05 and len(conv) > 4:  # an edit in place
            conv[rng.randrange(len(conv))]["content"] += " (edited)"
        elif r < 0.10 and len(conv) > 20:  # a compaction
            conv[1:15] = [{"role": "system", "content": f"summary {turn}"}]
        elif r < 0.15 and len(conv) > 30:  # a sliding window
            del conv[1:3]
        for _ in range(rng.choice([1, 1, 2])):
            size = rng.choice([20, 150, 400, 3000])
            text = rng.randbytes(size // 2).hex() if incompressible else "word " * (size // 5)
            conv.append({"role": "assistant", "content": f"turn {turn}: {text}"})
        flightrec.record("note", text=rng.randbytes(rng.choice([10, 500, 2000])).hex())  # (incompressible)
        flightrec.checkpoint(conv, label=f"turn {turn}")


def big_dict_workload(seed: int, turns: int) -> None:
    """Checkpoints of a state with big dicts (of strings, of dicts, with lists below) edited at random."""
    rng = random.Random(seed)
    state: dict[str, Any] = {
        "kb": {f"doc{i}": f"text {i}" for i in range(1500)},
        "cache": {f"q{i}": {"answer": f"answer {i}", "meta": {"n": i}} for i in range(300)},
        "tools": {f"call{i}": {"args": [i], "ok": True} for i in range(40)},
        "conv": [{"role": "system", "content": "be brief"}],
    }
    edits: list[Callable[[], Any]] = [
        lambda: state["kb"].__setitem__(f"doc{rng.randrange(1500)}", f"edited {rng.random()}"),
        lambda: state["kb"].__setitem__(f"new{rng.randrange(10**6)}", "added"),
        lambda: state["kb"].pop(rng.choice(list(state["kb"]))),
        lambda: state["kb"].__setitem__("doc1", "".join(["text ", "1"])),  # equal, another object
        lambda: state["cache"][f"q{rng.randrange(300)}"]["meta"].__setitem__("n", rng.random()),
        lambda: state["cache"].__setitem__("q7", copy.deepcopy(state["cache"]["q7"])),
        lambda: state["tools"][f"call{rng.randrange(40)}"]["args"].append(rng.randrange(9)),
        lambda: state.__setitem__("kb", dict(state["kb"])),
        lambda: state["kb"].__setitem__(f"doc{rng.randrange(1500)}", rng.choice([7, 7.5, b"b", None, True])),
        lambda: state["kb"].__setitem__("doc2", "long text " * rng.randrange(1, 3000)),
    ]
    for turn in range(turns):
        if rng.random() < 0.5:
            rng.choice(edits)()
        state["conv"].append({"role": "assistant", "content": f"turn {turn} " * rng.choice([2, 40])})
        flightrec.record("note", text=rng.randbytes(rng.choice([10, 500])).hex())
        flightrec.checkpoint(state, label=f"turn {turn}")


def walker_state(walker: Any) -> dict[str, Any]:
    """What the walker remembers between checkpoints, in comparable form."""
    marker = {walk._ITEM: "item", walk._BLOCKS: "blocks"}
    return {
        "memo": {(p, marker.get(slot, slot)): entries for (p, slot), entries in walker._memo.items()},
        # (dict version tags are process-wide counters: each run has its own; their order counts)
        "tagged": {p: [e[0], list(e[1].values())] for p, e in walker._tagged.items()},
        "paging": {
            p: [x if not isinstance(x, tuple) else (x[0] is not None, x[1]) for x in e]
            for p, e in walker._paging.items()
        },
        "prefix": {
            p: (g.digest, g.parts, g.keys, list(g.chunks.items()), g.gen, g.tags and len(g.tags), g.size, g.used)
            for p, g in walker._prefix.items()
        },
        "counts": (walker._gen, walker.hits, walker.misses, len(walker.groups), len(walker.retired)),
    }


def run(
    frdir: Path,
    seed: int,
    turns: int,
    native: bool,
    size: str = "8MiB",
    work: Callable[[], None] | None = None,
    tags: bool = True,
) -> tuple[list[Any], dict[str, Any]]:
    """(every event but its time, the store's bookkeeping) after the workload (or ``work``);
    without ``tags``, big dicts are recognized by their digests only (as in pure Python)."""
    saved = store_mod._emit_usual, walk._walk_grown, pack._paged_grown, store_mod._checkpoint_usual
    saved_entry = store_mod._checkpoint_entry
    saved_trees = walk._dict_tree, walk._same_tree
    saved_hits = walk._dict_hits
    if not native:
        store_mod._emit_usual = walk._walk_grown = pack._paged_grown = None
        store_mod._checkpoint_usual = store_mod._checkpoint_entry = None
        walk._dict_hits = walk._dict_hits_py
    if not tags:
        walk._dict_tree = walk._same_tree = None
    try:
        rec = flightrec.start(dir=frdir, size=size, block_size="8KiB", triggers=False, resources=0, keep_ring=True)
        assert rec is not None
        if work is None:
            workload(seed, turns)
        else:
            work()
        store = store_mod.store_for(rec)
        state = {
            "gen_of": dict(store._gen_of),
            "seq_of": dict(store._seq_of),
            "csize": dict(store._csize),
            "data": set(store._data),
            "heap": sorted(store._heap),
            "gen_seq": dict(store._gen_seq),
            "gens": list(store._gens),
            "groups": sorted(g.used for g in store._groups.values()),
            "counts": (store._gen, store._bytes, store._cbytes, store.reemitted, store.abandoned),
            "walker": walker_state(store._walker),
        }
        path = rec.ring_path
        flightrec.stop()
        with flightrec.load(path) as r:
            events = [(e.seq, e.kind, e.data) for e in r.events()]
        return events, state
    finally:
        store_mod._emit_usual, walk._walk_grown, pack._paged_grown, store_mod._checkpoint_usual = saved
        store_mod._checkpoint_entry = saved_entry
        walk._dict_tree, walk._same_tree = saved_trees
        walk._dict_hits = saved_hits


@pytest.mark.skipif(walk._dict_hits_c is None, reason="the C extensions are not built here")
class TestDictHits:
    """``_statecheck.dict_hits`` against its Python twin ``walk._dict_hits_py``."""

    @settings(max_examples=200, deadline=None)
    @given(
        old=st.dictionaries(
            st.one_of(st.text(max_size=3), st.integers(0, 3)),
            st.one_of(
                st.text(max_size=3), st.integers(-2, 2), st.booleans(), st.floats(), st.none(), st.binary(max_size=2)
            ),
            max_size=30,
        ),
        edits=st.lists(
            st.tuples(st.text(max_size=3), st.one_of(st.text(max_size=3), st.integers(-2, 2), st.floats())),
            max_size=8,
        ),
        trail=st.booleans(),
    )
    def test_same_as_python(self, old: dict[Any, Any], edits: list[tuple[str, Any]], trail: bool) -> None:
        """The same parts, keys, items missed and count, and the same chunks added."""
        entries = {
            k: (v, f"part {k}".encode(), len(k), ((bytes([len(k)]) * 16, b"blob"),) if len(k) % 2 else ())
            for k, v in old.items()
            if type(k) is str
        }
        new = dict(old)
        for k, v in edits:
            new[k] = v
        for k in list(new)[:2]:
            if len(k if type(k) is str else "") == 1:
                del new[k]
        got_chunks: dict[bytes, bytes] = {}
        want_chunks: dict[bytes, bytes] = {}
        got_trail: list[Any] | None = [] if trail else None
        want_trail: list[Any] | None = [] if trail else None
        got = walk._dict_hits_c(new, entries, got_chunks, got_trail)  # type: ignore[misc]
        want = walk._dict_hits_py(new, entries, want_chunks, want_trail)
        assert want == got
        assert want_chunks == got_chunks
        assert want_trail == got_trail

    def test_bad_arguments(self) -> None:
        """Wrong types are a TypeError, not a crash."""
        with pytest.raises(TypeError):
            walk._dict_hits_c([], {}, {}, None)  # type: ignore[misc]
        with pytest.raises(TypeError):
            walk._dict_hits_c({"a": 1}, {"a": (1, b"", 0)}, {}, None)  # type: ignore[misc]
        with pytest.raises(TypeError):
            walk._dict_hits_c({}, {}, {}, ())  # type: ignore[misc]


@needs_c
class TestSteadyPath:
    @settings(max_examples=12, deadline=None)
    @given(seed=st.integers(0, 2**32))
    def test_same_as_python(self, tmp_path_factory: pytest.TempPathFactory, seed: int) -> None:
        """Event for event, and every piece of the store's state."""
        want = run(tmp_path_factory.mktemp("py"), seed, 120, native=False)
        got = run(tmp_path_factory.mktemp("c"), seed, 120, native=True)
        assert got[1] == want[1]
        assert got[0] == want[0]

    @settings(max_examples=6, deadline=None)
    @given(seed=st.integers(0, 2**32))
    def test_big_dicts_by_tags_same_as_by_digests(self, tmp_path_factory: pytest.TempPathFactory, seed: int) -> None:
        """Big dicts taken over by their version tags (C) or by their digests (pure Python): the
        same events, event for event, and the same store (the walker's memory differs)."""
        want = run(
            tmp_path_factory.mktemp("py"), seed, 0, native=False, tags=False, work=lambda: big_dict_workload(seed, 60)
        )
        got = run(tmp_path_factory.mktemp("c"), seed, 0, native=True, work=lambda: big_dict_workload(seed, 60))
        del want[1]["walker"], got[1]["walker"]
        assert got[1] == want[1]
        assert got[0] == want[0]

    def test_a_prefix_forgotten_on_a_usual_turn(
        self, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The walker forgets, every 8th checkpoint, the prefixes of lists it has not used for 8:
        on a turn the C path takes too, and a prefix it retires then (a table's nested list,
        checkpointed before the conversation) is settled by _emit's Python path: the same
        events and store as in Python."""
        retired_by_c: list[bool] = []
        forget = walk._Walker.forget_unused

        def spy(walker: Any) -> None:
            forget(walker)
            # (called by CheckpointStore.checkpoint through _store.c, or by pack in Python)
            retired_by_c.append(bool(walker.retired) and sys._getframe(1).f_code.co_name == "checkpoint")

        monkeypatch.setattr(walk._Walker, "forget_unused", spy)

        def table_then_conversation() -> None:
            table = [{"role": "tool", "content": [{"row": i, "v": [i, i + 1]} for i in range(200)]}]
            for _ in range(3):
                flightrec.checkpoint(table, label="table")
            conv = [{"role": "user", "content": "hi"}]
            for turn in range(40):
                conv.append({"role": "assistant", "content": f"answer {turn} " * 30})
                flightrec.checkpoint(conv, label=f"turn {turn}")

        want = run(tmp_path_factory.mktemp("py"), 0, 0, native=False, work=table_then_conversation)
        assert not any(retired_by_c)
        got = run(tmp_path_factory.mktemp("c"), 0, 0, native=True, work=table_then_conversation)
        assert any(retired_by_c)
        assert got[1] == want[1]
        assert got[0] == want[0]

    @pytest.mark.parametrize("seed", [24, 154])
    def test_through_wrap_around(self, frdir: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
        """In a ring that wraps (chunks re-emitted) under states of up to 45% of the ring (the
        live chunks pass the store's budget: old checkpoints given up), the newest checkpoint
        stays rebuildable, every rebuildable one rebuilds to the state it recorded, and the
        others are the oldest; most were emitted in C.

        (A state over half the ring is refused, and closer to the budget the newest checkpoint
        is checked after every checkpoint: see tests/test_checkpoint_bounds.py.)
        """
        monkeypatch.setattr(store_mod, "_checkpoint_entry", None)  # (which calls the usual path unseen)
        whole = spy_handled(monkeypatch, store_mod, "_checkpoint_usual", NotImplemented)
        used = spy_handled(monkeypatch, store_mod, "_emit_usual", NotImplemented)
        originals: dict[int, Any] = {}
        real = flightrec.checkpoint

        def keep(state: Any, label: Any = None) -> Any:
            seq = real(state, label=label)
            originals[seq] = copy.deepcopy(state)
            return seq

        monkeypatch.setattr(flightrec, "checkpoint", keep)
        rec = flightrec.start(dir=frdir, size="512KiB", block_size="8KiB", triggers=False, resources=0)
        assert rec is not None
        workload(seed, 300, incompressible=True)  # (states of up to ~200 KB, in a ring of 436 KiB)
        store = store_mod.store_for(rec)
        assert store.reemitted > 0 and store.abandoned > 0 and sum(whole) + sum(used) > len(whole) // 2
        assert store.refused == 0
        path = flightrec.dump("wrapped")
        flightrec.stop()
        assert path is not None
        with flightrec.load(path) as r:
            infos = r.checkpoints()
            assert next(r.events()).seq > 100 and len(infos) >= 3
            flags = [info.rebuildable for info in infos]
            assert flags[-1] and flags == sorted(flags), flags  # (given up: the oldest only)
            for info in infos:
                if info.rebuildable:
                    assert r.state_at(info.seq) == originals[info.seq]

    def test_it_takes_the_usual_checkpoint(self, frdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A conversation that grows is packed and emitted in C (not handed back) but on the first
        turns, those where the walker forgets old memo entries (every 8th) included; of those
        the store's part is emitted in C but on the turns that measure the ratio."""
        monkeypatch.setattr(store_mod, "_checkpoint_entry", None)  # (which calls the usual path unseen)
        whole = spy_handled(monkeypatch, store_mod, "_checkpoint_usual", NotImplemented)
        answers = spy_handled(monkeypatch, store_mod, "_emit_usual", NotImplemented)
        flightrec.start(dir=frdir, triggers=False, resources=0)
        conv = [{"role": "user", "content": f"message {i} " * 30} for i in range(3)]
        for turn in range(40):
            conv.append({"role": "assistant", "content": f"answer {turn} " * 30})
            flightrec.checkpoint(conv, label=f"turn {turn}")
        flightrec.stop()
        declined = [turn for turn, taken in enumerate(whole) if not taken]
        assert len(whole) == 40 and all(turn < 2 for turn in declined), declined
        assert answers.count(False) <= 4  # (the first turns, and those that measure the ratio)

    def test_the_entry_takes_the_usual_checkpoint(self, frdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """flightrec.checkpoint goes through _store.entry (no CheckpointStore.checkpoint frame):
        a conversation that grows is packed in Python only on its first turns, and each
        checkpoint carries the span of the step it was taken in."""
        assert store_mod._checkpoint_entry is not None
        in_python: list[int] = []
        pack_emit = store_mod.CheckpointStore._pack_emit

        def spy(store: Any, *args: Any) -> Any:
            in_python.append(len(args[0]))
            return pack_emit(store, *args)

        monkeypatch.setattr(store_mod.CheckpointStore, "_pack_emit", spy)
        rec = flightrec.start(dir=frdir, triggers=False, resources=0, keep_ring=True)
        assert rec is not None
        conv = [{"role": "user", "content": "hello"}]
        seqs = []
        for turn in range(20):
            with flightrec.step(f"turn {turn}"):
                conv.append({"role": "assistant", "content": f"answer {turn} " * 30})
                seqs.append(flightrec.checkpoint(conv, label=f"turn {turn}"))
        path = rec.ring_path
        flightrec.stop()
        assert len(in_python) <= 2 and all(n <= 3 for n in in_python), in_python
        with flightrec.load(path) as r:
            events = list(r.events())
            starts = [e for e in events if e.kind == "step_start"]
            cps = [e for e in events if e.kind == "checkpoint"]
            assert [e.seq for e in cps] == seqs
            assert [e.span for e in cps] == [e.span for e in starts] and len(set(e.span for e in cps)) == 20
            assert r.state_at(seqs[-1]) == conv

    def test_the_entry_leaves_sampling_to_the_sampler(self, frdir: Path) -> None:
        """Checkpoints that the sampler does not keep whole are decided (and counted) once."""
        rec = flightrec.start(dir=frdir, triggers=False, resources=0, sampling="checkpoint=off")
        assert rec is not None
        conv = [{"role": "user", "content": "hello"}]
        for turn in range(10):
            conv.append({"role": "assistant", "content": f"answer {turn}"})
            assert flightrec.checkpoint(conv) is None
        stats = rec.sampler.counters()
        flightrec.stop()
        assert stats["offered"]["checkpoint"] == 10 and stats["kept"].get("checkpoint", 0) == 0

    def test_a_list_changed_by_another_thread_meanwhile(self, frdir: Path) -> None:
        """Checkpoints of a list another thread appends to and cuts all the while: no crash, no
        exception into the agent; each is a consistent state or counted as an error."""
        import threading
        import time

        rec = flightrec.start(dir=frdir, triggers=False, resources=0)
        assert rec is not None
        conv: list[dict[str, Any]] = [{"role": "user", "content": f"message {i} " * 20} for i in range(80)]
        stop = threading.Event()

        def churn() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                conv.append({"role": "assistant", "content": f"answer {n} " * 20})
                if n % 3 == 0:
                    del conv[40:42]
                if n % 7 == 0:
                    conv.pop()
                if len(conv) > 200:  # (a window: the list stays checkpointable in a test's time)
                    del conv[40:100]
                time.sleep(0)

        t = threading.Thread(target=churn)
        t.start()
        try:
            seqs = [flightrec.checkpoint(conv, label=f"turn {turn}") for turn in range(300)]
        finally:
            stop.set()
            t.join()
        final = copy.deepcopy(conv)
        last = flightrec.checkpoint(final, label="final")
        path = flightrec.dump("churn")
        flightrec.stop()
        assert path is not None and sum(s is not None for s in seqs) + rec.errors >= 300
        with flightrec.load(path) as r:
            assert r.state_at(last) == final
            assert all(c.rebuildable for c in r.checkpoints())

    def test_closed_recorder(self, frdir: Path) -> None:
        rec = flightrec.start(dir=frdir, triggers=False, resources=0)
        assert rec is not None
        store = store_mod.store_for(rec)
        rec.closed = True
        try:
            assert store_mod._store.emit(store, rec, b"r" * 16, {}, [], {}, None, None) is None
        finally:
            rec.closed = False
        flightrec.stop()

    def test_constants_agree(self) -> None:
        assert store_mod._store.CONSTANTS == (
            store_mod._CHUNK_OVERHEAD,
            store_mod._CHUNK_LIST_MAX,
            store_mod._PENDING,
        )

    def test_bad_arguments(self) -> None:
        with pytest.raises(TypeError):
            store_mod._store.emit(None, None, b"", [], [], {}, None, None)
        with pytest.raises(TypeError):
            store_mod._store.checkpoint(None, [])
        with pytest.raises(TypeError):
            store_mod._store.configure(None, None, None, None, "256", current_span)
        with pytest.raises(ValueError):
            store_mod._store.configure(None, None, None, None, -1, current_span)
        with pytest.raises(TypeError):
            store_mod._store.configure(None, None, None, None, 256, None)
        with pytest.raises(TypeError):
            store_mod._store.entry(None, [])
        # not a list, or a store without a walker: handed back, or an AttributeError to count
        assert store_mod._store.checkpoint(None, {"a": 1}, None, None, None) is NotImplemented
        with pytest.raises(AttributeError):
            store_mod._store.checkpoint(object(), [1], None, None, None)
