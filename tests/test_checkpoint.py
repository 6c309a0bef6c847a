"""Deduplicated checkpoints: round trips, dedup, the rebuild invariant through wrap-around, diff."""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flightrec
from flightrec.checkpoint import MAX_CHUNK, ChunkIndex, DiffEntry, diff_states, pack_state, store_for, walk
from flightrec.checkpoint.pack import _Packer
from flightrec.errors import CorruptRecording, MissingChunk

from .conftest import run_child


@pytest.fixture
def small(frdir: Path) -> Iterator[Any]:
    """A recorder with a tiny ring (256 KiB, 8 KiB blocks) that wraps quickly."""
    rec = flightrec.start(dir=frdir, size="256KiB", block_size="8KiB", triggers=False, resources=0)
    assert rec is not None
    yield rec
    flightrec.stop()


@pytest.fixture
def roomy(frdir: Path) -> Iterator[Any]:
    """A recorder with a ring big enough that nothing wraps."""
    rec = flightrec.start(dir=frdir, size="8MiB", triggers=False, resources=0)
    assert rec is not None
    yield rec
    flightrec.stop()


def dump_and_load(name: str = "t") -> flightrec.Recording:
    """Dump the running recorder and open the dump."""
    path = flightrec.dump(name)
    assert path is not None
    return flightrec.load(path)


def assert_dumped_checkpoints_exact(
    originals: dict[int, Any], key: str, wrapped: bool = False, at_least: int = 10
) -> None:
    """Dump: at least ``at_least`` checkpoints in it, every one rebuildable and equal to ``originals[seq]``."""
    with dump_and_load() as rec:
        if wrapped:
            assert next(rec.events()).seq > 1000
        infos = rec.checkpoints()
        assert len(infos) >= at_least
        assert all(c.rebuildable for c in infos)
        for info in infos:
            assert originals[info.seq] == rec.state_at(info.seq)[key]


def count_encodes(walker: Any) -> list[Any]:
    """Every value the walker encodes from now on (as given, to find it; redacted, to store it)."""
    encoded: list[Any] = []
    encode = walker._encode

    def counting(value: Any) -> bytes:
        encoded.append(value)
        return encode(value)  # type: ignore[no-any-return]

    walker._encode = walker._packer._encode = counting
    return encoded


def message(rng: random.Random, i: int, size: int = 600, nested: bool = False) -> dict[str, Any]:
    """A chat message of about ``size`` characters (``nested``: with a list value, as tool calls are)."""
    words = ["order", "refund", "shipping", "status", "please", "check", "the", "item", "today", "thanks"]
    text = " ".join(rng.choice(words) for _ in range(size // 6))
    m: dict[str, Any] = {"role": "user" if i % 2 else "assistant", "content": f"#{i} {text}", "turn": i}
    if nested:
        m["refs"] = [i, f"doc-{i}"]
    return m


@dataclasses.dataclass
class Plan:
    """A dataclass in the state."""

    goal: str
    steps: list[str]


class FakeModel:
    """Quacks like a pydantic v2 model."""

    def __init__(self, **fields: Any) -> None:
        self._fields = fields

    def model_dump(self) -> dict[str, Any]:
        return dict(self._fields)


STATES: list[Any] = [
    0,
    "short",
    None,
    [],
    {},
    {"n": 1, "f": 1.5, "b": True, "none": None, "bytes": b"\x00\x01", "neg": -7},
    {"nested": {"deep": {"deeper": [1, [2, [3, {"x": "y"}]]]}}},
    {"big_text": "lorem ipsum " * 20_000},
    {"unicode": "žluťoučký kůň 🐎 " * 3_000},
    {"blob": bytes(range(256)) * 400},
    {"many": list(range(20_000))},
    {"floats": [i / 7 for i in range(3_000)]},
    {"wide": {f"key{i}": f"value {i} " * (i % 40) for i in range(2_000)}},
    [{"a": i, "b": [i] * 50} for i in range(300)],
]


class TestRoundTrip:
    """state_at gives back exactly the state that was checkpointed."""

    @pytest.mark.parametrize("state", STATES, ids=range(len(STATES)))
    def test_state_round_trips(self, roomy: Any, state: Any) -> None:
        """Scalars, nesting, long strings and bytes, long lists and wide dicts all round-trip."""
        seq = flightrec.checkpoint(state, label="s")
        assert seq is not None
        with dump_and_load() as rec:
            assert [c.rebuildable for c in rec.checkpoints()] == [True]
            assert state == rec.state_at(seq)

    def test_dataclass_model_tuple_and_set_are_converted(self, roomy: Any) -> None:
        """Dataclasses and pydantic-like models become dicts, tuples lists, sets sorted lists."""
        seq = flightrec.checkpoint({"plan": Plan("ship", ["a", "b"]), "m": FakeModel(x=1), "t": (1, 2), "s": {3}})
        with dump_and_load() as rec:
            assert (rec.state_at(seq)) == {
                "plan": {"goal": "ship", "steps": ["a", "b"]},
                "m": {"x": 1},
                "t": [1, 2],
                "s": [3],
            }

    def test_dataclass_root(self, roomy: Any) -> None:
        """A dataclass as the whole state is converted too."""
        seq = flightrec.checkpoint(Plan("ship", ["x"] * 100))
        with dump_and_load() as rec:
            assert rec.state_at(seq) == {"goal": "ship", "steps": ["x"] * 100}

    def test_label_and_size_are_recorded(self, roomy: Any) -> None:
        """The checkpoint event carries the label and the state's size."""
        seq = flightrec.checkpoint({"a": "b" * 1000}, label="after-plan")
        with dump_and_load() as rec:
            (info,) = rec.checkpoints()
            assert (seq, "after-plan", True) == (info.seq, info.label, info.rebuildable)
            assert info.size > 1000

    def test_state_at_picks_the_checkpoint_at_or_before(self, roomy: Any) -> None:
        """state_at(seq) is the latest checkpoint at or before seq; None before the first."""
        flightrec.record("note")
        first = flightrec.checkpoint({"v": 1})
        between = flightrec.record("note")
        second = flightrec.checkpoint({"v": 2})
        assert first is not None and between is not None and second is not None
        with dump_and_load() as rec:
            assert rec.state_at(first - 1) is None
            assert rec.state_at(first) == {"v": 1}
            assert rec.state_at(between) == {"v": 1}
            assert rec.state_at(second + 100) == {"v": 2}

    def test_mutations_in_place_are_seen(self, roomy: Any) -> None:
        """Changing a message in place, a nested list, or only a value's type shows up."""
        msgs = [{"role": "user", "content": f"m{i} " * 60, "n": 1, "tags": ["a"]} for i in range(100)]
        state = {"messages": msgs}
        expected = {}
        expected[flightrec.checkpoint(state)] = copy.deepcopy(state)
        msgs[3]["content"] = "edited"
        expected[flightrec.checkpoint(state)] = copy.deepcopy(state)
        msgs[50]["tags"].append("b")
        expected[flightrec.checkpoint(state)] = copy.deepcopy(state)
        msgs[60]["n"] = 1.0  # equal to 1, but not the same value
        expected[flightrec.checkpoint(state)] = copy.deepcopy(state)
        msgs[61]["n"] = True
        expected[flightrec.checkpoint(state)] = copy.deepcopy(state)
        with dump_and_load() as rec:
            for seq, want in expected.items():
                got = rec.state_at(seq)
                assert want == got
                assert [type(m["n"]) for m in want["messages"]] == [type(m["n"]) for m in got["messages"]]

    def test_a_growing_list_with_edits_round_trips(self, roomy: Any) -> None:
        """Checkpoints of a conversation that grows, with early messages edited now and then.

        The writer takes the unchanged prefix of a list over whole (recognized by one hash
        of its raw encoding); an edit anywhere in it must still show up.
        """
        rng = random.Random(5)
        conv: list[dict[str, Any]] = []
        expected = {}
        for i in range(70):
            conv.append({"role": "assistant", "content": f"reply {i} " * 30})
            if i % 9 == 8:
                conv[rng.randrange(len(conv) - 1)]["content"] += " (edited)"
            if i % 13 == 12:
                del conv[rng.randrange(len(conv))]
            expected[flightrec.checkpoint(conv)] = copy.deepcopy(conv)
        with dump_and_load() as rec:
            for seq, want in expected.items():
                assert rec.state_at(seq) == want

    def test_the_same_object_in_two_places(self, roomy: Any) -> None:
        """A value shared by two places of the state is stored once and rebuilt in both."""
        shared = {"doc": "x" * 5000}
        state = {"a": [shared] * 40, "b": {"same": shared}}
        seq = flightrec.checkpoint(state)
        with dump_and_load() as rec:
            assert state == rec.state_at(seq)


class TestLongLists:
    """A list of thousands of pages is a tree of concatenation nodes, rebuilt at every
    checkpoint only where it changed."""

    @staticmethod
    def packed(packer: _Packer, parts: list[bytes]) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        packer.reset()
        inline = packer._cat("l", list(parts))
        return inline, list(packer.chunks.items())

    @settings(max_examples=100, deadline=None)
    @given(
        seed=st.integers(0, 2**32),
        n=st.integers(60, 3000),
        edit=st.sampled_from(["same", "append", "replace_last", "drop_first", "insert", "replace", "cut"]),
        inline=st.booleans(),
    )
    def test_the_tree_is_the_one_a_fresh_packer_builds(self, seed: int, n: int, edit: str, inline: bool) -> None:
        """Whatever changed since the last tree (parts appended, dropped, inserted, replaced),
        the same node and chunks, in the same order, as without the last tree to go by."""
        rng = random.Random(seed)

        def part(small: bool = False) -> bytes:
            if inline:  # (most groups then end before a part that would not fit, which a
                # smaller part in its place would: small parts replace or go in)
                return rng.randbytes(rng.randrange(1, 8) if small else rng.randrange(100, 190))
            return b"\xd8\x01" + rng.randbytes(16)

        parts = [part() for _ in range(n)]
        new = list(parts)
        i = rng.randrange(n)
        k = rng.randrange(1, 40)
        if edit == "append":
            new += [part() for _ in range(k)]
        elif edit == "replace_last":
            new[-1] = part()
        elif edit == "drop_first":
            del new[:k]
        elif edit == "insert":
            new[i:i] = [part(small=True) for _ in range(k)]
        elif edit == "replace":
            new[i] = part(small=True)
        elif edit == "cut":
            del new[i:]
            new.append(part())
        reused = _Packer(1024)
        self.packed(reused, parts)
        assert self.packed(reused, new) == self.packed(_Packer(1024), new)

    def test_a_list_that_grew_hashes_only_its_end(self) -> None:
        """Appending to a list of 4,000 pages hashes a few nodes, not every node of the tree."""
        rng = random.Random(5)
        parts = [b"\xd8\x01" + rng.randbytes(16) for _ in range(4000)]
        packer = _Packer(MAX_CHUNK)
        hashed = 0
        h128 = packer._h128

        def counted(data: bytes) -> bytes:
            nonlocal hashed
            hashed += 1
            return h128(data)

        packer._h128 = counted
        self.packed(packer, parts)
        first = hashed  # (every node: some 250 groups of pages, and their groups)
        hashed = 0
        parts.append(b"\xd8\x01" + rng.randbytes(16))
        self.packed(packer, parts)
        assert first > 200 and hashed <= 8, (first, hashed)


class TestTaggedPrefix:
    """A list of plain dicts is recognized by the dicts' version tags (C), not by re-encoding.

    Every way of changing such a dict in place must still show up, and the prefix's chunks,
    registered with the store as one group, must stay in the ring as long as a checkpoint
    there needs them. "nested" messages (a list value: no tags) take the same group path,
    recognized by their hash. (Without the C helper every test runs the hash path.)
    """

    def test_every_in_place_change_of_a_plain_message_is_seen(self, roomy: Any) -> None:
        """Set, replace by an equal value of another type, delete, clear, update, swap: all seen."""
        conv = [{"role": "user", "content": f"message {i} " * 30, "n": 1} for i in range(40)]
        expected: dict[int, Any] = {}

        def snap() -> None:
            seq = flightrec.checkpoint({"messages": conv})
            assert seq is not None
            expected[seq] = copy.deepcopy(conv)

        edits = [
            lambda: conv[3].__setitem__("content", "edited"),
            lambda: conv[4].__setitem__("n", 1.0),
            lambda: conv[5].__setitem__("n", True),
            lambda: conv[6].pop("role"),
            lambda: conv[7].clear(),
            lambda: conv[8].update(content="updated", extra=None),
            lambda: conv[9].setdefault("new", "key"),
            lambda: conv.__setitem__(10, dict(conv[10])),  # an equal copy
            lambda: conv.__setitem__(11, {"role": "user", "content": "replaced", "n": 1}),
            lambda: conv.insert(0, {"role": "system", "content": "first"}),
            lambda: conv.append({"role": "assistant", "content": "last"}),
        ]
        snap()
        for edit in edits:
            edit()
            snap()
            conv.append({"role": "assistant", "content": f"grown {len(conv)} " * 20, "n": 2})
            snap()
        with dump_and_load() as rec:
            for seq, want in expected.items():
                got = rec.state_at(seq)["messages"]
                assert want == got
                assert [[type(v) for v in m.values()] for m in want] == [[type(v) for v in m.values()] for m in got]

    def test_an_appended_message_msgpack_cannot_hold(self, roomy: Any) -> None:
        """A plain dict with an int beyond 64 bits, appended: stored as its repr, the rest exact."""
        conv: list[dict[str, Any]] = [{"role": "user", "content": f"hello {i}"} for i in range(5)]
        flightrec.checkpoint(conv)
        conv.append({"role": "tool", "n": 1 << 80})
        seq = flightrec.checkpoint(conv)
        conv.append({"role": "assistant", "content": "after"})
        last = flightrec.checkpoint(conv)
        assert seq is not None and last is not None
        with dump_and_load() as rec:
            got = rec.state_at(seq)
            assert got[:5] == conv[:5]
            assert str(1 << 80) in str(got[5])
            assert rec.state_at(last)[6] == {"role": "assistant", "content": "after"}

    @pytest.mark.parametrize("nested", [False, True], ids=["plain", "nested"])
    def test_a_growing_conversation_survives_wraparound(self, small: Any, nested: bool) -> None:
        """Append-only growth (the group path) with filler wrapping the ring: all rebuildable."""
        rng = random.Random(11)
        conv: list[dict[str, Any]] = []
        originals: dict[int, Any] = {}
        for turn in range(160):
            conv.append(message(rng, turn, rng.choice((150, 400, 900)), nested=nested))
            seq = flightrec.checkpoint({"messages": conv}, label=f"turn {turn}")
            assert seq is not None
            originals[seq] = copy.deepcopy(conv)
            for i in range(rng.randint(5, 40)):
                flightrec.record("filler", i=i, pad=rng.randbytes(rng.randint(50, 400)).hex())
        # Then half a ring of filler: the last checkpoints stay, the blocks around them go.
        blocks = small.ring.ring_size // small.config.block_size
        start = small.ring.block_seq
        while small.ring.block_seq < start + blocks // 2:
            flightrec.record("filler", pad=rng.randbytes(300).hex())
        store = store_for(small)
        assert small.errors == 0
        assert store.reemitted > 0
        # About 10 checkpoints are left in the newest half of the ring; a byte or two more per
        # block (timestamps compress a little worse on a loaded machine) can make it 9.
        assert_dumped_checkpoints_exact(originals, "messages", wrapped=True, at_least=8)

    @pytest.mark.parametrize("nested", [False, True], ids=["plain", "nested"])
    def test_a_long_list_then_grown_survives_wraparound(self, small: Any, nested: bool) -> None:
        """Already paged at its first checkpoint, then grown by one a turn while the ring wraps past it."""
        rng = random.Random(21)
        conv = [message(rng, i, 200, nested=nested) for i in range(150)]
        originals: dict[int, Any] = {}
        for turn in range(60):
            conv.append(message(rng, 150 + turn, 200, nested=nested))
            seq = flightrec.checkpoint({"messages": conv})
            assert seq is not None
            originals[seq] = copy.deepcopy(conv)
            for i in range(rng.randint(10, 40)):
                flightrec.record("filler", i=i, pad=rng.randbytes(rng.randint(100, 300)).hex())
        assert small.errors == 0
        assert_dumped_checkpoints_exact(originals, "messages", wrapped=True)

    @pytest.mark.parametrize("nested", [False, True], ids=["plain", "nested"])
    def test_a_prefix_whose_checkpoints_left_the_ring_is_stored_again(self, small: Any, nested: bool) -> None:
        """Filler pushes the conversation's checkpoints out of the ring; its next one is still whole."""
        rng = random.Random(4)
        conv: list[dict[str, Any]] = []
        for _ in range(4):
            for _ in range(3):
                conv.append(message(rng, len(conv), 900, nested=nested))
                assert flightrec.checkpoint({"messages": conv}) is not None  # grows: the group path
            for i in range(800):  # several times the ring: every chunk so far is overwritten
                flightrec.record("filler", i=i, pad=rng.randbytes(200).hex())
            seq = flightrec.checkpoint({"messages": conv})  # unchanged: the same group
            assert seq is not None
            with dump_and_load() as rec:
                assert [c.seq for c in rec.checkpoints()] == [seq]
                assert rec.checkpoints()[0].rebuildable
                assert rec.state_at(seq)["messages"] == conv
        assert small.errors == 0

    @pytest.mark.parametrize("nested", [False, True], ids=["plain", "nested"])
    def test_a_list_edited_at_every_turn_keeps_one_group(self, small: Any, nested: bool) -> None:
        """Edit an old message, then append, turn after turn: groups do not pile up, all rebuildable."""
        rng = random.Random(9)
        conv = [message(rng, i, 300, nested=nested) for i in range(20)]
        originals: dict[int, Any] = {}
        store = store_for(small)
        for turn in range(120):
            conv[rng.randrange(len(conv))]["content"] += "!"  # the prefix changes: a new one
            conv.append(message(rng, 20 + turn, 300, nested=nested))
            seq = flightrec.checkpoint({"messages": conv})
            conv.append(message(rng, 1000 + turn, 300, nested=nested))
            seq2 = flightrec.checkpoint({"messages": conv})  # grows: the group path
            assert seq is not None and seq2 is not None
            originals[seq], originals[seq2] = copy.deepcopy(conv[:-1]), copy.deepcopy(conv)
            assert len(store._groups) <= 1
            for i in range(rng.randint(5, 30)):
                flightrec.record("filler", i=i, pad=rng.randbytes(200).hex())
        assert small.errors == 0
        assert_dumped_checkpoints_exact(originals, "messages")

    @pytest.mark.parametrize("nested", [False, True], ids=["plain", "nested"])
    def test_a_list_no_longer_checkpointed_stays_rebuildable(self, small: Any, nested: bool) -> None:
        """A conversation checkpointed a while, then other states: its last checkpoint keeps its chunks."""
        rng = random.Random(12)
        conv: list[dict[str, Any]] = []
        blocks = small.ring.ring_size // small.config.block_size
        for turn in range(80):  # the group path, the ring wrapping under it
            conv.append(message(rng, turn, 300, nested=nested))
            last = flightrec.checkpoint({"messages": conv})
            for _ in range(10):
                flightrec.record("filler", pad=rng.randbytes(150).hex())
        for turn in range(12):  # other states: the walker forgets the conversation's prefix
            flightrec.checkpoint({"other": turn})
        start = small.ring.block_seq
        while small.ring.block_seq < start + blocks - 4:  # every copy older than it goes
            flightrec.record("filler", pad=rng.randbytes(300).hex())
        assert small.errors == 0
        with dump_and_load() as rec:
            info = next(c for c in rec.checkpoints() if c.seq == last)
            assert info.rebuildable
            assert rec.state_at(last)["messages"] == conv

    @pytest.mark.parametrize("nested", [False, True], ids=["plain", "nested"])
    def test_a_checkpoint_that_failed_to_store_leaves_the_next_whole(
        self, roomy: Any, monkeypatch: pytest.MonkeyPatch, nested: bool
    ) -> None:
        """Storing fails after the walker took new messages into its group: the next checkpoint stores them."""
        rng = random.Random(3)
        conv = [message(rng, i, 300, nested=nested) for i in range(10)]
        flightrec.checkpoint({"messages": conv})
        conv.append(message(rng, 10, 300, nested=nested))
        flightrec.checkpoint({"messages": conv})  # the group path from here on

        def fail(*args: Any, **kwargs: Any) -> int:
            raise OSError("disk gone")

        conv.append(message(rng, 11, 300, nested=nested))
        with monkeypatch.context() as m:
            m.setattr(roomy, "append_locked", fail)
            assert flightrec.checkpoint({"messages": conv}) is None  # counted, not raised
        assert roomy.errors == 1
        conv.append(message(rng, 12, 300, nested=nested))
        seq = flightrec.checkpoint({"messages": conv})
        assert seq is not None
        with dump_and_load() as rec:
            assert rec.state_at(seq)["messages"] == conv

    def test_the_prefix_is_taken_over_without_encoding(self, roomy: Any) -> None:
        """The cheap path is taken for plain dicts, and not after an edit or for nested values."""
        from flightrec.checkpoint.walk import _dict_versions

        if _dict_versions is None:
            pytest.skip("the C helper is not built (pure Python hashes instead)")
        walker = store_for(roomy)._walker
        conv = [{"role": "user", "content": f"m{i} " * 80} for i in range(30)]
        flightrec.checkpoint(conv)
        conv.append({"role": "assistant", "content": "new " * 80})
        flightrec.checkpoint(conv)
        assert [g.length for g in walker.groups] == [31]  # the 30 taken over, then extended
        conv[0]["content"] = "edited"
        flightrec.checkpoint(conv)
        assert walker.groups == []
        conv.append({"role": "tool", "content": "result", "args": ["a"]})  # a list value: no tag
        flightrec.checkpoint(conv)
        assert [g.length for g in walker.groups] == [31]  # taken over, not extended
        flightrec.checkpoint(conv)
        assert walker.groups == []  # hashed from now on: a new prefix
        conv.append({"role": "assistant", "content": "more " * 80})
        flightrec.checkpoint(conv)
        assert [(g.length, g.tags) for g in walker.groups] == [(33, None)]  # recognized by its hash
        conv.append({"role": "assistant", "content": "and more " * 80})
        flightrec.checkpoint(conv)
        assert [g.length for g in walker.groups] == [34]  # the same prefix, extended in place
        conv[1]["content"] = "edited"
        flightrec.checkpoint(conv)
        assert walker.groups == []


class TestShiftedList:
    """A list whose items moved (a sliding context window): found again by tag, its pages by content.

    Items of the last checkpoint are recognized by their dicts' version tags wherever they
    moved (no encoding), and a page whose parts are all still there is taken over without
    being rebuilt. What changed must still show, and every checkpoint stay rebuildable.
    """

    @pytest.mark.parametrize("nested", [False, True], ids=["plain", "nested"])
    def test_a_sliding_window_survives_wraparound(self, small: Any, nested: bool) -> None:
        """Drop the oldest, append one (and sometimes edit, insert, repeat one): all exact."""
        rng = random.Random(5)
        system = {"role": "system", "content": "You are a careful agent. " * 10}
        conv = [system] + [message(rng, i, 200, nested=nested) for i in range(60)]
        originals: dict[int, Any] = {}
        for turn in range(120):
            conv.append(message(rng, 60 + turn, rng.choice((100, 300)), nested=nested))
            del conv[1 : 1 + rng.choice((1, 1, 1, 3))]
            if turn % 7 == 3:
                conv[rng.randrange(1, len(conv))]["content"] = f"edited at {turn}"
            if turn % 11 == 5:
                conv.insert(rng.randrange(1, len(conv)), {"role": "tool", "content": f"inserted {turn}"})
            if turn % 13 == 6:
                conv.append(conv[5])  # the same dict twice in the list
            seq = flightrec.checkpoint({"messages": conv}, label=f"turn {turn}")
            assert seq is not None
            originals[seq] = copy.deepcopy(conv)
            for i in range(rng.randint(5, 30)):
                flightrec.record("filler", i=i, pad=rng.randbytes(rng.randint(50, 300)).hex())
        assert small.errors == 0
        assert_dumped_checkpoints_exact(originals, "messages", wrapped=True)

    def test_a_compaction_after_a_long_growth_encodes_nothing_kept(self, roomy: Any) -> None:
        """Grown as a group for 30 turns, then its oldest 20 dropped: the kept ones are found by tag."""
        from flightrec.checkpoint.walk import _dict_versions

        if _dict_versions is None:
            pytest.skip("the C helper is not built (pure Python hashes instead)")
        rng = random.Random(13)
        walker = store_for(roomy)._walker
        conv = [message(rng, i, 300) for i in range(40)]
        flightrec.checkpoint(conv)
        for turn in range(30):  # longer than the memo keeps what a checkpoint did not look up
            conv.append(message(rng, 40 + turn, 300))
            if turn % 5 == 0:
                conv.append(message(rng, 100 + turn, 300))  # two at once
            flightrec.checkpoint(conv)
            assert walker.groups
        del conv[:20]
        conv.append(message(rng, 70, 300))
        misses = walker.misses
        encoded = count_encodes(walker)
        seq = flightrec.checkpoint(conv)
        assert walker.misses - misses == 1
        assert [x for x in encoded if type(x) is dict] == [conv[-1], conv[-1]]  # only the new one
        with dump_and_load() as rec:
            assert rec.state_at(seq) == conv

    def test_a_slide_costs_about_the_new_item(self, roomy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        """Slid by one, a 200-message window packs one message and stores a few chunks."""
        from flightrec.checkpoint.walk import _dict_versions

        if _dict_versions is None:
            pytest.skip("the C helper is not built (pure Python hashes instead)")
        rng = random.Random(9)
        walker = store_for(roomy)._walker
        encoded = count_encodes(walker)
        refs: list[bytes] = []  # chunks made (hashed) by the packer
        make_ref = _Packer._ref

        def counting_ref(packer: _Packer, data: bytes) -> bytes:
            refs.append(data)
            return make_ref(packer, data)

        monkeypatch.setattr(_Packer, "_ref", counting_ref)
        conv = [message(rng, i, 400) for i in range(200)]
        flightrec.checkpoint(conv)
        seqs = []
        for turn in range(5):
            conv.append(message(rng, 200 + turn, 400))
            del conv[0]
            misses = walker.misses
            encoded.clear()
            refs.clear()
            seqs.append(flightrec.checkpoint(conv))
            assert walker.misses - misses == 1  # only the new message was packed
            # ... and no other message was even encoded (found by tag): the new one was, as
            # given (its digest) and redacted (to store it)
            assert [x for x in encoded if type(x) is dict] == [conv[-1], conv[-1]]
            # chunks made: the new message's, the first and last pages' (the ~13 pages between
            # are taken over, not joined and hashed again)
            assert len(refs) <= 4
        conv[100]["content"] = "edited"
        misses = walker.misses
        last = flightrec.checkpoint(conv)
        assert walker.misses - misses == 1  # the edited one, found by neither tag nor content
        with dump_and_load() as rec:
            events = {e.seq: e for e in rec.events(["checkpoint"])}
            for seq in seqs:
                # the new message, the first and last pages, the root: not the ~13 pages between
                assert events[seq].data["new"] <= 6
            assert rec.state_at(last) == conv


class SubDict(dict):  # type: ignore[type-arg]
    """A dict subclass: its content is not vouched for by a version tag."""


def big_state(n: int = 2000) -> dict[str, Any]:
    """A state with big dicts: of strings, of plain dicts, with lists and with a subclass below."""
    return {
        "kb": {f"doc{i}": f"text {i}" for i in range(n)},
        "cache": {f"q{i}": {"answer": f"answer {i}", "score": i / 7, "meta": {"n": i}} for i in range(n // 4)},
        "tools": {f"call{i}": {"args": [i, "x"], "ok": True} for i in range(n // 20)},
        "sub": {f"s{i}": SubDict(v=f"sub {i}") if i % 10 == 0 else f"s {i}" for i in range(n // 20)},
        "turn": 0,
    }


def as_stored(x: Any) -> Any:
    """``x`` as a checkpoint stores it: an int beyond 64 bits as its repr."""
    if isinstance(x, dict):
        return {k: as_stored(v) for k, v in x.items()}
    if isinstance(x, list):
        return [as_stored(v) for v in x]
    return str(x) if type(x) is int and not -(1 << 63) <= x < 1 << 64 else x


def fresh_root(store: Any, state: Any) -> str:
    """The root digest a walker with no memory packs ``state`` to (same redactor, same limits)."""
    walker = walk._Walker(store._walker.redactor, store.max_chunk, store._walker.sanitizer)
    root, _ = walker.pack(state)
    return root.hex()


class TestBigDict:
    """A big dict in the state that did not change is taken over whole, not walked or encoded.

    It is recognized by the version tags of it and of the dicts below it (C), else, when it
    was packed as a unit, by its raw digest; a list or a dict subclass below it means it is
    walked as before. Every checkpoint must rebuild to the state at that moment, and pack to
    the very bytes a walker with no memory packs it to (the same redaction, the same chunks).
    """

    EDITS: ClassVar[list[tuple[str, Callable[[dict[str, Any]], None]]]] = [
        ("nothing", lambda s: None),
        ("a string replaced", lambda s: s["kb"].__setitem__("doc5", "changed")),
        ("an equal string, another object", lambda s: s["kb"].__setitem__("doc7", "".join(["text ", "7"]))),
        ("changed", lambda s: s["kb"].__setitem__("doc9", "X")),
        ("and restored", lambda s: s["kb"].__setitem__("doc9", "text 9")),
        ("a key deleted", lambda s: s["kb"].pop("doc2")),
        ("and added again (now last)", lambda s: s["kb"].__setitem__("doc2", "text 2")),
        ("a key added", lambda s: s["kb"].__setitem__("new", "value")),
        (
            "an int replaced by an equal float",
            lambda s: s["cache"]["q3"].__setitem__("score", float(s["cache"]["q3"]["score"])),
        ),
        ("a nested dict changed", lambda s: s["cache"]["q4"].__setitem__("answer", "changed")),
        ("two levels down", lambda s: s["cache"]["q5"]["meta"].__setitem__("n", -1)),
        ("and restored", lambda s: s["cache"]["q5"]["meta"].__setitem__("n", 5)),
        (
            "a nested dict replaced by an equal copy",
            lambda s: s["cache"].__setitem__("q6", copy.deepcopy(s["cache"]["q6"])),
        ),
        ("a nested dict cleared", lambda s: s["cache"]["q7"].clear()),
        ("a list below appended to", lambda s: s["tools"]["call1"]["args"].append("more")),
        ("a list below changed in place", lambda s: s["tools"]["call2"]["args"].__setitem__(0, "edited")),
        ("a dict subclass below changed", lambda s: s["sub"]["s10"].__setitem__("v", "changed")),
        ("the big dict replaced by an equal copy", lambda s: s.__setitem__("kb", dict(s["kb"]))),
        ("the big dict cleared", lambda s: s["kb"].clear()),
        ("and filled again", lambda s: s["kb"].update({f"doc{i}": f"text {i}" for i in range(2000)})),
        ("the big dict made a dict subclass", lambda s: s.__setitem__("kb", SubDict(s["kb"]))),
        ("which is changed", lambda s: s["kb"].__setitem__("doc11", "changed")),
        ("and made a dict again", lambda s: s.__setitem__("kb", dict(s["kb"]))),
        ("a value that msgpack cannot hold", lambda s: s["kb"].__setitem__("big", 1 << 80)),
        ("and a nested one", lambda s: s["cache"]["q8"].__setitem__("big", 1 << 70)),
    ]

    @pytest.mark.parametrize("tags", [True, False], ids=["tags", "digests"])
    def test_every_change_is_seen(self, roomy: Any, monkeypatch: pytest.MonkeyPatch, tags: bool) -> None:
        """Each edit (and none), checkpointed twice: every checkpoint rebuilds and packs exactly."""
        if not tags:  # as without the C extensions: recognized by their digests only
            monkeypatch.setattr(walk, "_dict_tree", None)
            monkeypatch.setattr(walk, "_same_tree", None)
        state = big_state()
        store = store_for(roomy)
        expected: dict[int, tuple[Any, str]] = {}
        for turn, (_, edit) in enumerate(self.EDITS):
            edit(state)
            state["turn"] = turn
            want = (as_stored(state), fresh_root(store, state))
            for _ in range(2):  # the second time unchanged: taken over whole
                seq = flightrec.checkpoint(state)
                assert seq is not None
                expected[seq] = want
        assert roomy.errors == 0
        with dump_and_load() as rec:
            events = list(rec.events())
        index = ChunkIndex(events)
        roots = {e.seq: e.data["root"] for e in events if e.kind == "checkpoint"}
        assert set(roots) == set(expected)
        for seq, (want, root) in expected.items():
            assert root == roots[seq]
            got = index.rebuild(roots[seq])
            assert want == got
            assert [list(d) for d in want.values() if isinstance(d, dict)] == [
                list(d) for d in got.values() if isinstance(d, dict)
            ]  # the keys' order too

    def test_an_unchanged_big_dict_is_neither_encoded_nor_passed_chunk_by_chunk(self, roomy: Any) -> None:
        """The third checkpoint of the same big dict encodes none of it, and hands the store its
        chunks as one group (registered as such from then on)."""
        if walk._dict_tree is None:
            pytest.skip("no dict version tags here (pure Python or Python 3.14+)")
        kb = {f"doc{i}": f"text {i}" for i in range(5000)}
        state = {"kb": kb, "turn": 0}
        store = store_for(roomy)
        flightrec.checkpoint(state)
        state["turn"] = 1
        flightrec.checkpoint(state)
        encoded = count_encodes(store._walker)
        state["turn"] = 2
        seq = flightrec.checkpoint(state)
        assert not [x for x in encoded if x is kb or (isinstance(x, dict) and len(x) > 1)]
        assert [len(g.chunks) > 100 for g in store._walker.groups] == [True]
        assert len(store._walker._packer.chunks) <= 2  # the root (and nothing of kb)
        assert id(store._walker.groups[0]) in store._groups
        with dump_and_load() as rec:
            assert rec.state_at(seq) == state

    def test_an_edit_after_many_unchanged_checkpoints_costs_the_edit(self, roomy: Any) -> None:
        """A dict of dicts taken over whole for longer than the walker's memory (8 checkpoints),
        then edited: its other values are still remembered, only the edited one is packed."""
        if walk._dict_tree is None:
            pytest.skip("no dict version tags here (pure Python or Python 3.14+)")
        state: dict[str, Any] = {"cache": {f"q{i}": {"answer": f"answer {i}"} for i in range(500)}, "turn": 0}
        walker = store_for(roomy)._walker
        for turn in range(20):
            state["turn"] = turn
            flightrec.checkpoint(state)
        misses = walker.misses
        state["cache"]["q3"]["answer"] = "edited"
        seq = flightrec.checkpoint(state)
        assert walker.misses - misses <= 2  # the edited value (and "turn")
        with dump_and_load() as rec:
            assert rec.state_at(seq) == state

    def test_through_wrap_around(self, small: Any) -> None:
        """An unchanged big dict's chunks (one group in the store) are written again as the ring
        wraps: every checkpoint in the ring rebuilds, edited now and then or not."""
        rng = random.Random(5)
        state: dict[str, Any] = {"kb": {f"doc{i}": f"text {i} " * 3 for i in range(1000)}, "turn": 0}
        originals: dict[int, Any] = {}
        for turn in range(120):
            state["turn"] = turn
            if turn % 15 == 7:
                state["kb"][f"doc{rng.randrange(1000)}"] = f"edited {turn}"
            seq = flightrec.checkpoint(state, label=f"turn {turn}")
            assert seq is not None
            originals[seq] = copy.deepcopy(state)
            for i in range(rng.randint(5, 30)):
                flightrec.record("filler", i=i, pad=rng.randbytes(rng.randint(50, 400)).hex())
        store = store_for(small)
        assert small.errors == 0 and store.reemitted > 0
        assert any(isinstance(g, walk._Tree) for g in store._groups.values())
        with dump_and_load() as rec:
            assert next(rec.events()).seq > 1000
            infos = rec.checkpoints()
            assert len(infos) >= 10 and all(c.rebuildable for c in infos)
            for info in infos:
                assert originals[info.seq] == rec.state_at(info.seq)

    def test_a_secret_named_big_dict(self, roomy: Any) -> None:
        """Under a secret-named key a big dict is redacted whole, the same when taken over."""
        state = {"password": {f"k{i}": f"v{i}" for i in range(100)}, "n": 0}
        store = store_for(roomy)
        seqs = []
        for n in range(3):
            state["n"] = n
            seqs.append(flightrec.checkpoint(state))
        root = fresh_root(store, state)
        with dump_and_load() as rec:
            (last,) = [c for c in rec.checkpoints() if c.seq == seqs[-1]]
            got = rec.state_at(seqs[-1])
        assert "v1" not in str(got["password"])
        assert root == last.root

    def test_a_big_dict_in_a_cycle(self, roomy: Any) -> None:
        """A big dict holding itself is walked (never taken over by tags): the cycle stays a marker."""
        kb: dict[str, Any] = {f"doc{i}": f"text {i}" for i in range(100)}
        kb["me"] = kb
        state = {"kb": kb, "turn": 0}
        seqs = []
        for turn in range(3):
            state["turn"] = turn
            seqs.append(flightrec.checkpoint(state))
        kb["doc1"] = "changed"
        seqs.append(flightrec.checkpoint(state))
        with dump_and_load() as rec:
            got = [rec.state_at(s)["kb"] for s in seqs]
        assert [g["me"] for g in got] == ["<cycle>"] * 4
        assert [g["doc1"] for g in got] == ["text 1"] * 3 + ["changed"]

    def test_equal_keys_of_other_types(self, roomy: Any) -> None:
        """1, True and 1.0 are the same dict key but not the same stored key: a value memoized
        under one is not taken over, key and all, under another."""
        store = store_for(roomy)
        states = [{1: "x" * 300}, {True: "x" * 300}, {1.0: "y"}, {1: "y"}]
        seqs = [flightrec.checkpoint(s) for s in states]
        roots = [fresh_root(store, s) for s in states]
        with dump_and_load() as rec:
            got = [c.root for c in rec.checkpoints()]
            assert [next(iter(rec.state_at(seqs[i]))) for i in (1, 3)] == ["True", "1"]
        assert roots == got


def _shape(name: str, kb: dict[str, Any]) -> tuple[Any, Callable[[], dict[str, Any]]]:
    """A state holding the big dict ``kb`` in the place ``name`` says, and how to find it there."""
    if name == "value":  # a dict value, packed as a unit (its values are scalars)
        state: Any = {"kb": kb, "msgs": []}
        return state, lambda: state["kb"]
    if name == "top":  # the state itself (walked)
        return kb, lambda: kb
    if name == "item":  # a list item (a unit)
        items: Any = [{"turn": 0}, kb]
        return items, lambda: items[1]
    walked: Any = {"kb": kb, "turn": 0}  # "walked": a dict value with dicts below it
    return walked, lambda: walked["kb"]


class TestChangedBigDict:
    """A big dict that changed a little is packed by what changed: the values it had at the
    last checkpoint are taken over from its keyed memo (see walk._Keyed), the others redacted
    and packed, in its place. Every checkpoint rebuilds to the state at that moment and packs
    to the very bytes a walker with no memory packs it to, in each place a big dict can be."""

    EDITS: ClassVar[list[tuple[str, Callable[[dict[str, Any]], None]]]] = [
        ("a key added", lambda kb: kb.__setitem__("new0", "added")),
        ("another", lambda kb: kb.__setitem__("new1", "added too")),
        ("a value edited", lambda kb: kb.__setitem__("k3", "edited")),
        ("an equal value, another object", lambda kb: kb.__setitem__("k4", "".join(["value ", "4"]))),
        ("two values far apart", lambda kb: kb.update(k10="x" * 300, k900="y")),
        ("a key deleted", lambda kb: kb.pop("k20")),
        ("and added again (now last)", lambda kb: kb.__setitem__("k20", "value 20")),
        ("the first key deleted", lambda kb: kb.pop("k0")),
        ("the last key deleted", lambda kb: kb.pop("k20")),
        ("a str made an int", lambda kb: kb.__setitem__("k5", 5)),
        ("an int made a bool", lambda kb: kb.__setitem__("k5", True)),
        ("0.0 made -0.0", lambda kb: (kb.__setitem__("k6", 0.0), kb.__setitem__("k7", -0.0))),
        ("and back", lambda kb: (kb.__setitem__("k6", -0.0), kb.__setitem__("k7", 0.0))),
        ("a value made bytes", lambda kb: kb.__setitem__("k8", b"value 8")),
        ("a big value", lambda kb: kb.__setitem__("k9", "long text " * 3000)),
        ("an e-mail address (redacted)", lambda kb: kb.__setitem__("k11", "write to jane.doe@example.com")),
        ("a secret-named key", lambda kb: kb.__setitem__("api_token", "tok-123")),
        ("a value that msgpack cannot hold", lambda kb: kb.__setitem__("k12", 1 << 80)),
        ("and an ordinary one again", lambda kb: kb.__setitem__("k12", "value 12")),
        ("a str key deleted, an equal int key added", lambda kb: (kb.pop("k13"), kb.__setitem__(13, "int key"))),
        ("and the other way round", lambda kb: (kb.pop(13), kb.__setitem__("k13", "value 13"))),
        ("a dict value", lambda kb: kb.__setitem__("k14", {"a": 1, "b": ["x"]})),
        ("edited two levels down", lambda kb: kb["k14"]["b"].append("y")),
        ("a scalar again", lambda kb: kb.__setitem__("k14", "value 14")),
        ("many values edited", lambda kb: kb.update({f"k{i}": f"edited {i}" for i in range(100, 700, 3)})),
        ("nothing", lambda kb: None),
        ("cleared and filled again", lambda kb: (kb.clear(), kb.update({f"k{i}": f"v {i}" for i in range(1000)}))),
    ]

    @pytest.mark.parametrize("place", ["value", "top", "item", "walked"])
    @pytest.mark.parametrize("hits", ["c", "python"])
    def test_every_change_rebuilds_exactly(
        self, roomy: Any, monkeypatch: pytest.MonkeyPatch, place: str, hits: str
    ) -> None:
        """Each edit, checkpointed: every checkpoint rebuilds to the state then (redacted where
        a rule applies) and packs to the bytes a walker with no memory packs it to."""
        if hits == "python":  # the keyed memo's pass in Python (as without the C extensions)
            monkeypatch.setattr(walk, "_dict_hits", walk._dict_hits_py)
        elif walk._dict_hits_c is None:
            pytest.skip("the C extensions are not built here")
        kb: dict[Any, Any] = {f"k{i}": f"value {i}" for i in range(1000)}
        if place == "walked":
            kb["sub"] = {"n": 1}  # (a dict below: walked, not a unit)
        state, find = _shape(place, kb)
        store = store_for(roomy)
        expected: dict[int, tuple[Any, str]] = {}
        seq = flightrec.checkpoint(state)
        for turn, (_, edit) in enumerate(self.EDITS):
            edit(find())
            if place == "walked":
                find().setdefault("sub", {})["n"] = turn  # (two levels down, every time)
            seq = flightrec.checkpoint(state)
            assert seq is not None
            expected[seq] = (copy.deepcopy(as_stored(state)), fresh_root(store, state))
        assert roomy.errors == 0
        with dump_and_load() as rec:
            events = list(rec.events())
        index = ChunkIndex(events)
        roots = {e.seq: e.data["root"] for e in events if e.kind == "checkpoint"}
        for seq, (want, root) in expected.items():
            assert root == roots[seq]
            got = index.rebuild(roots[seq])
            got_kb = got if place == "top" else got[1] if place == "item" else got["kb"]
            want_kb = want if place == "top" else want[1] if place == "item" else want["kb"]
            assert [k if type(k) is str else str(k) for k in want_kb] == list(got_kb)  # the keys' order too
            for k, v in want_kb.items():
                if k == "api_token":
                    assert got_kb[k].startswith("<SECRET:")
                elif k == "k11" and "@" in v:
                    assert got_kb[k].startswith("write to <EMAIL:")
                else:
                    assert v == got_kb[k if type(k) is str else str(k)]

    @pytest.mark.parametrize("place", ["value", "top", "item", "walked"])
    def test_a_change_costs_what_changed(self, roomy: Any, place: str) -> None:
        """A big dict checkpointed again with one key added, then one value edited: the values
        that did not change are neither encoded nor redacted again."""
        kb: dict[str, Any] = {f"k{i}": f"value {i}" for i in range(3000)}
        if place == "walked":
            kb["sub"] = {"n": 1}
        state, _ = _shape(place, kb)
        store = store_for(roomy)
        flightrec.checkpoint(state)
        flightrec.checkpoint(state)
        encoded = count_encodes(store._walker)
        for edit in (lambda: kb.__setitem__("new", "added"), lambda: kb.__setitem__("k1500", "edited")):
            edit()
            encoded.clear()
            seq = flightrec.checkpoint(state)
            # (the big dict as a whole at most once, to recognize it; a few small values)
            assert len([x for x in encoded if not isinstance(x, dict | list)]) <= 10
            assert len([x for x in encoded if x is kb]) <= 1
        with dump_and_load() as rec:
            assert rec.state_at(seq) == state

    def test_an_edit_in_the_middle_makes_the_chunks_around_it(
        self, roomy: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A value edited in the middle of a big dict: the page holding it and the groups above
        it are made again; the pages and groups after it are taken over, not joined and hashed."""
        kb: dict[str, Any] = {f"k{i}": f"value {i}" for i in range(20000)}
        state = {"kb": kb, "turn": 0}
        flightrec.checkpoint(state)
        made: list[bytes] = []
        chunk = _Packer.chunk

        def counting(packer: _Packer, data: bytes) -> bytes:
            made.append(data)
            return chunk(packer, data)

        monkeypatch.setattr(_Packer, "chunk", counting)
        for i in (10000, 15000, 3):
            kb[f"k{i}"] = "edited"
            made.clear()
            seq = flightrec.checkpoint(state)
            # a page, a group per level of the tree above the pages (two here), the root
            assert len(made) <= 6, len(made)
        with dump_and_load() as rec:
            assert rec.state_at(seq) == state

    def test_through_wrap_around(self, small: Any) -> None:
        """A big dict edited at every checkpoint in a ring that wraps (its chunks re-emitted,
        old checkpoints given up): every checkpoint in the ring rebuilds exactly."""
        rng = random.Random(7)
        kb: dict[str, Any] = {f"doc{i}": f"text {i} " * 3 for i in range(1500)}
        state: dict[str, Any] = {"kb": kb, "items": [kb], "turn": 0}
        originals: dict[int, Any] = {}
        for turn in range(80):
            state["turn"] = turn
            op = rng.random()
            if op < 0.4:
                kb[f"doc{rng.randrange(1500)}"] = f"edited {turn} " * rng.choice([1, 40])
            elif op < 0.6:
                kb[f"new{turn}"] = f"added {turn}"
            elif op < 0.8 and len(kb) > 100:
                kb.pop(rng.choice(list(kb)))
            seq = flightrec.checkpoint(state, label=f"turn {turn}")
            assert seq is not None
            originals[seq] = copy.deepcopy(state)
            for i in range(rng.randint(5, 20)):
                flightrec.record("filler", i=i, pad=rng.randbytes(rng.randint(50, 400)).hex())
        store = store_for(small)
        assert small.errors == 0 and store.reemitted > 0
        with dump_and_load() as rec:
            assert next(rec.events()).seq > 1000
            infos = rec.checkpoints()
            assert len(infos) >= 5 and infos[-1].rebuildable
            for info in infos:
                if info.rebuildable:
                    assert originals[info.seq] == rec.state_at(info.seq)


class TestRepaging:
    """``_Packer.paged`` without an inline last page, given its last paging, makes the pages
    a paging from scratch makes (it only finds most of them faster)."""

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        seed=st.integers(0, 2**32),
        n=st.integers(40, 3000),
        edits=st.lists(st.tuples(st.sampled_from("idrn"), st.floats(0, 1)), max_size=6),
        wide=st.booleans(),
    )
    def test_same_pages_as_from_scratch(self, seed: int, n: int, edits: list[tuple[str, float]], wide: bool) -> None:
        """Parts inserted, deleted, replaced or not at all, twice over: the same root and chunks."""
        rng = random.Random(seed)

        def part() -> bytes:
            return rng.randbytes(rng.choice([3, 20]) if not wide else rng.choice([3, 200, 900]))

        parts = [part() for _ in range(n)]
        packer = _Packer(4096)
        prev: list[Any] = []
        for _ in range(2):
            for op, at in edits:
                i = int(at * (len(parts) - 1))
                if op == "i":
                    parts.insert(i, part())
                elif op == "d" and len(parts) > 1:
                    del parts[i]
                elif op == "r":
                    parts[i] = part()
            keys = [int.from_bytes(p[-2:], "little") for p in parts]
            packer.reset()
            got = packer.paged("d", list(parts), keys, prev, tail=False)
            fresh = _Packer(4096)
            want = fresh.paged("d", list(parts), keys)
            assert want == got
            assert set(fresh.chunks.items()) <= set(packer.chunks.items())


class TestDedup:
    """A checkpoint stores only what is new since the chunks already in the ring."""

    def test_appending_one_message_stores_about_one_message(self, roomy: Any) -> None:
        """After a 200-message checkpoint, one more message costs about that message."""
        rng = random.Random(1)
        conv = [message(rng, i, 2000) for i in range(200)]
        flightrec.checkpoint({"messages": conv})
        conv.append(message(rng, 200, 2000))
        seq = flightrec.checkpoint({"messages": conv})
        with dump_and_load() as rec:
            ev = next(e for e in rec.events(["checkpoint"]) if e.seq == seq)
            assert ev.data["new"] <= 5
            assert ev.data["stored"] < 2 * 2100
            assert ev.data["size"] > 200 * 2000

    def test_a_new_root_travels_inside_its_checkpoint_event(self, roomy: Any) -> None:
        """A list grown by an item already stored: no chunk event, the new root inline."""
        conv = [{"role": "user", "content": f"message {i} " * 30} for i in range(20)]
        first = flightrec.checkpoint(conv)
        conv.append(dict(conv[3]))  # stored already (as conv[3])
        second = flightrec.checkpoint(conv)
        assert first is not None and second is not None
        with dump_and_load() as rec:
            between = [e.kind for e in rec.events() if first < e.seq <= second]
            assert between == ["checkpoint"]
            ev = next(e for e in rec.events(["checkpoint"]) if e.seq == second)
            assert isinstance(ev.data["inline"], bytes) and ev.data["new"] == 1
            assert ev.data["stored"] == len(ev.data["inline"])
            assert rec.state_at(second) == conv

    def test_a_root_too_big_to_travel_inline_is_a_chunk_event(self, frdir: Path) -> None:
        """With small events, a big root and a long label still fit: the root as a chunk event, the label cut."""
        rec = flightrec.start(dir=frdir, size="1MiB", block_size="8KiB", max_event="4KiB", triggers=False, resources=0)
        assert rec is not None
        try:
            small_root = [{"role": "user", "content": f"m{i} " * 80} for i in range(10)]
            big_root = {f"k{i}": "v" * 100 for i in range(30)}  # ~3 KB of inline values
            first = flightrec.checkpoint(small_root, label="Z" * 4000)
            second = flightrec.checkpoint(big_root, label="Z" * 4000)
            assert first is not None and second is not None and rec.errors == 0
            with dump_and_load() as recording:
                events = {e.seq: e for e in recording.events(["checkpoint"])}
                assert "inline" in events[first].data and "inline" not in events[second].data
                assert len(events[second].data["label"]) == 256
                assert recording.state_at(first) == small_root and recording.state_at(second) == big_root
        finally:
            flightrec.stop()

    def test_an_unchanged_state_stores_nothing(self, roomy: Any) -> None:
        """Checkpointing the same state twice stores no chunk the second time."""
        state = {"messages": [{"c": "x" * 500, "i": i} for i in range(50)]}
        flightrec.checkpoint(state)
        seq = flightrec.checkpoint(state)
        with dump_and_load() as rec:
            ev = next(e for e in rec.events(["checkpoint"]) if e.seq == seq)
            assert (ev.data["new"], ev.data["stored"], ev.data["chunks"]) == (0, 0, [])

    def test_dropping_from_the_front_changes_few_chunks(self) -> None:
        """Content-defined pages: a sliding window re-stores only a page or two."""
        rng = random.Random(2)
        conv = [message(rng, i, 400) for i in range(400)]
        _, before = pack_state({"messages": conv})
        _, after = pack_state({"messages": conv[7:]})
        assert len(set(after) - set(before)) <= 4

    def test_redaction_off_stores_the_same_way(self, frdir: Path) -> None:
        """Without redaction, dedup and round trips are the same."""
        flightrec.start(dir=frdir, size="4MiB", triggers=False, resources=0, redact=False)
        conv = [{"c": f"msg {i} " * 50} for i in range(100)]
        a = flightrec.checkpoint({"m": conv})
        b = flightrec.checkpoint({"m": [*conv, {"c": "new"}]})
        with dump_and_load() as rec:
            assert {"m": conv} == rec.state_at(a)
            ev = next(e for e in rec.events(["checkpoint"]) if e.seq == b)
            assert ev.data["new"] <= 4

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        items=st.lists(
            st.one_of(
                st.text(max_size=400),
                st.binary(max_size=300),
                st.integers(-(2**63), 2**64 - 1),  # (beyond MessagePack's ints a value is stored as repr)
                st.dictionaries(st.text(max_size=300), st.text(max_size=300), max_size=3),
            ),
            max_size=300,
        ),
        max_chunk=st.sampled_from([1024, 4096, MAX_CHUNK]),
    )
    def test_no_chunk_outgrows_the_limit(self, items: list[Any], max_chunk: int) -> None:
        """Pages and nodes are split so that every chunk fits (lists and dicts, big keys, any limit)."""
        state = {"list": items, "dict": {f"k{i}" + "x" * (i % 7) * 40: v for i, v in enumerate(items)}}
        root, chunks = pack_state(state, max_chunk)
        assert max(map(len, chunks.values())) <= max_chunk
        index = ChunkIndex([])
        index.data = {h.hex(): blob for h, blob in chunks.items()}
        assert index.rebuild(root.hex()) == state


class TestWrapAround:
    """Every checkpoint still in the ring can be rebuilt, however often the ring wrapped."""

    def test_every_checkpoint_in_the_dump_is_rebuildable(self, small: Any) -> None:
        """Grow, edit, drop from the front and share parts, with filler wrapping the ring many times."""
        # GIVEN a state that changes in every way between checkpoints
        rng = random.Random(7)
        conv: list[dict[str, Any]] = []
        notes = {"system": "You are a support agent. " * 40}
        originals: dict[int, Any] = {}
        for turn in range(250):
            conv.append(message(rng, turn, rng.choice((100, 300, 900))))
            if turn % 17 == 5:
                conv[rng.randrange(len(conv))]["content"] += " (edited)"
            if len(conv) > 40:
                del conv[: rng.randint(1, 3)]
            if turn % 10 == 0:
                notes[f"fact{turn}"] = f"fact number {turn} " * 20
            state = {"messages": conv, "notes": notes, "turn": turn, "pinned": conv[:2]}
            # WHEN it is checkpointed between bursts of unrelated events
            seq = flightrec.checkpoint(state, label=f"turn {turn}")
            assert seq is not None
            originals[seq] = copy.deepcopy(state)
            for i in range(rng.randint(5, 60)):
                flightrec.record("filler", i=i, pad="z" * rng.randint(50, 400))
        store = store_for(small)
        assert small.errors == 0
        assert store.reemitted > 0
        # THEN the dump holds many checkpoints, all rebuildable and exact, and the ring wrapped
        with dump_and_load() as rec:
            first_seq = next(rec.events()).seq
            assert first_seq > 5 * 8192 // 100  # the ring wrapped many times over
            infos = rec.checkpoints()
            assert len(infos) >= 10
            assert all(c.rebuildable for c in infos)
            for info in infos:
                assert originals[info.seq] == rec.state_at(info.seq)
        # AND the live ring file says the same
        with flightrec.load(small.ring_path) as ring:
            infos = ring.checkpoints()
            assert infos and all(c.rebuildable for c in infos)
            assert originals[infos[-1].seq] == ring.state_at(infos[-1].seq)

    def test_an_unchanged_state_outlives_its_first_checkpoint(self, small: Any) -> None:
        """Its root was stored inline once; checkpointed again and again while the ring wraps, it stays rebuildable."""
        state = {"messages": [{"role": "user", "content": f"message {i} " * 20} for i in range(30)], "turn": 0}
        originals: dict[int, Any] = {}
        rng = random.Random(17)
        for turn in range(120):
            if turn % 40 == 0:
                state["turn"] = turn  # a new root now and then, the same one in between
            seq = flightrec.checkpoint(state)
            assert seq is not None
            originals[seq] = copy.deepcopy(state)
            for i in range(30):
                flightrec.record("filler", i=i, pad=rng.randbytes(150).hex())  # (incompressible)
        assert small.errors == 0
        assert store_for(small).reemitted > 0
        with dump_and_load() as rec:
            assert next(rec.events()).seq > 1000
            kinds = [e.kind for e in rec.events(["checkpoint"])]
            assert len(kinds) >= 10
            assert all("inline" not in e.data for e in rec.events(["checkpoint"]))  # the first copies are gone
            for info in rec.checkpoints():
                assert info.rebuildable
                assert originals[info.seq] == rec.state_at(info.seq)

    def test_chunk_store_memory_stays_bounded(self, small: Any) -> None:
        """Chunks of checkpoints long overwritten are forgotten by the writer."""
        for turn in range(300):
            flightrec.checkpoint({"t": turn, "text": f"distinct text {turn} " * 100})
            for _ in range(10):
                flightrec.record("filler", pad="y" * 300)
        store = store_for(small)
        assert store.live_ring_bytes <= store.budget
        assert store.live_bytes < 8 * small.config.size
        assert store.abandoned == 0

    def test_states_too_big_for_the_ring_give_up_old_checkpoints(self, small: Any) -> None:
        """Beyond the budget the oldest checkpoints are abandoned; the newest stays rebuildable."""
        rng = random.Random(3)
        for turn in range(6):
            big = {"doc": "".join(rng.choice("abcdefgh ") for _ in range(60_000)), "turn": turn}
            flightrec.checkpoint(big)
        store = store_for(small)
        assert store.abandoned > 0
        assert small.errors == 0
        with dump_and_load() as rec:
            assert rec.checkpoints()[-1].rebuildable
            assert rec.state_at(rec.checkpoints()[-1].seq)["turn"] == 5

    def test_giving_up_old_checkpoints_takes_one_pass_over_the_chunks(
        self, small: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A conversation growing past the budget: the checkpoints given up (one or two at
        each turn) are found in one pass over the chunks now and then, not in a pass per
        checkpoint given up at every turn (which cost a long conversation seconds a turn)."""
        store = store_for(small)
        looked_at = 0
        for name in ("_live", "_forget"):  # (every per-chunk step of giving up, and of a flush)
            real = getattr(store, name)

            def counted(*args: Any, _real: Any = real) -> Any:
                nonlocal looked_at
                looked_at += 1
                return _real(*args)

            monkeypatch.setattr(store, name, counted)
        conv: list[dict[str, str]] = []
        turns = 800
        for turn in range(turns):
            conv.append({"role": "user", "content": f"turn {turn} " + "lorem ipsum " * 12})
            flightrec.checkpoint(conv, label=f"turn {turn}")
        assert store.abandoned > turns // 2 and small.errors == 0
        # GIVEN / THEN: a few chunks a turn are stored, re-emitted and forgotten once each
        assert looked_at < 10 * turns + 2 * store.reemitted, looked_at
        with dump_and_load() as rec:
            infos = rec.checkpoints()
            assert infos[-1].rebuildable
            assert rec.state_at(infos[-1].seq) == conv


class TestRedaction:
    """Checkpoint state is redacted before it is encoded, but not truncated."""

    def test_secrets_never_reach_the_ring(self, roomy: Any) -> None:
        """An e-mail and a password in the state are replaced, in the rebuilt state and in the file."""
        state = {
            "messages": [{"content": f"write to jane.doe@corp-mail.com about #{i}"} for i in range(60)],
            "creds": {"password": "hunter2-hunter2"},
        }
        seq = flightrec.checkpoint(state)
        path = flightrec.dump("secret")
        assert path is not None
        with flightrec.load(path) as rec:
            got = rec.state_at(seq)
            assert "jane.doe@corp-mail.com" not in got["messages"][0]["content"]
            assert got["creds"]["password"] != "hunter2-hunter2"
            raw = b"".join(bytes(e.data.get("data", b"")) for e in rec.events(["chunk"]))
            assert b"jane.doe@corp-mail.com" not in raw
            assert b"hunter2" not in raw

    @pytest.mark.parametrize("redact", [True, False])
    def test_labels_are_redacted(self, frdir: Path, redact: bool) -> None:
        """A label that holds PII is redacted (unless redaction is off); a plain one is kept as is."""
        flightrec.start(dir=frdir, triggers=False, resources=0, redact=redact)
        labels = ["turn 12", "mail jane.doe@corp-mail.com", "call +44 20 7946 0958", "Z" * 300]
        seqs = [flightrec.checkpoint({"n": i}, label=label) for i, label in enumerate(labels)]
        with dump_and_load() as r:
            got = {e.seq: e.data["label"] for e in r.events(["checkpoint"])}
        flightrec.stop()
        assert [got[seq] for seq in seqs[:4:3]] == ["turn 12", "Z" * 255 + "…"]
        assert ("jane.doe" in got[seqs[1]], "7946" in got[seqs[2]]) == (not redact, not redact)

    def test_a_huge_label_is_written_only_as_far_as_it_is_kept(self, frdir: Path) -> None:
        """Arguments swapped (a long conversation passed as the label): the label is the start
        of its repr, and only that much of it is made, not a repr of every message."""

        class Message:
            made = 0

            def __repr__(self) -> str:
                Message.made += 1
                return "<message>"

        flightrec.start(dir=frdir, triggers=False, resources=0)
        conversation = [Message() for _ in range(20_000)]
        seq = flightrec.checkpoint({"n": 1}, label=conversation)  # type: ignore[arg-type]
        with dump_and_load() as r:
            [label] = [e.data["label"] for e in r.events(["checkpoint"]) if e.seq == seq]
        flightrec.stop()
        assert label.startswith("[<message>, <message>, ") and len(label) <= 256
        assert Message.made < 100

    def test_long_strings_are_not_truncated(self, roomy: Any) -> None:
        """Strings longer than max_value survive whole (events would be cut, state is not)."""
        text = "word " * 10_000
        seq = flightrec.checkpoint({"doc": text, "items": list(range(5000))})
        with dump_and_load() as rec:
            assert {"doc": text, "items": list(range(5000))} == rec.state_at(seq)


class TestRecoverability:
    """Missing chunks are reported, never silently papered over."""

    def test_a_checkpoint_without_its_chunks_is_not_rebuildable(self, roomy: Any) -> None:
        """A checkpoint whose root chunk is absent is flagged and state_at raises MissingChunk."""
        seq = flightrec.record("checkpoint", root="ab" * 16, chunks=[], size=10)
        assert seq is not None
        with dump_and_load() as rec:
            assert [c.rebuildable for c in rec.checkpoints()] == [False]
            with pytest.raises(MissingChunk):
                rec.state_at(seq)
            assert issubclass(MissingChunk, CorruptRecording)

    def test_a_missing_inner_chunk_is_detected(self, roomy: Any) -> None:
        """Dropping one chunk from the index makes the checkpoint incomplete."""
        seq = flightrec.checkpoint({"m": [{"c": f"message {i} " * 40} for i in range(50)]})
        with dump_and_load() as rec:
            events = list(rec.events())
        index = ChunkIndex(events)
        (root,) = [e.data["root"] for e in events if e.seq == seq]
        assert index.complete(root)
        victim = next(h for h in index.data if h != root)
        del index.data[victim]
        index2 = ChunkIndex([])
        index2.data = index.data
        assert not index2.complete(root)
        with pytest.raises(MissingChunk):
            index2.rebuild(root)

    def test_a_corrupted_chunk_copy_is_ignored(self) -> None:
        """A chunk whose data does not match its digest is not used."""
        root, chunks = pack_state({"x": "y" * 100})
        assert [root] == list(chunks)
        good = flightrec.Event(1, 0, "chunk", "t", None, None, {"hash": root.hex(), "data": chunks[root]})
        bad = flightrec.Event(2, 0, "chunk", "t", None, None, {"hash": root.hex(), "data": b"\x01garbage"})
        index = ChunkIndex([bad, good])
        assert index.bad == 1
        assert index.rebuild(root.hex()) == {"x": "y" * 100}

    def test_a_corrupted_inline_root_is_ignored(self) -> None:
        """A checkpoint's inline root is a chunk copy like any other: used when it matches, ignored when not."""
        root, chunks = pack_state({"x": "y" * 100})
        good = flightrec.Event(1, 0, "checkpoint", "t", None, None, {"root": root.hex(), "inline": chunks[root]})
        bad = flightrec.Event(2, 0, "checkpoint", "t", None, None, {"root": root.hex(), "inline": b"\x01garbage"})
        assert ChunkIndex([good]).rebuild(root.hex()) == {"x": "y" * 100}
        index = ChunkIndex([bad])
        assert index.bad == 1 and not index.complete(root.hex())


class TestDiff:
    """diff shows what changed between two checkpoints, path by path."""

    def test_diff_between_checkpoints(self, roomy: Any) -> None:
        """A new message, an edited one and a changed field show as added/changed paths."""
        msgs = [{"role": "user", "content": f"m{i}"} for i in range(5)]
        a = flightrec.checkpoint({"messages": msgs, "step": 1})
        msgs2 = copy.deepcopy(msgs)
        msgs2[3]["content"] = "edited"
        msgs2.append({"role": "assistant", "content": "new"})
        b = flightrec.checkpoint({"messages": msgs2, "step": 2, "done": True})
        with dump_and_load() as rec:
            got = rec.diff(a, b)
        assert [
            DiffEntry("changed", "messages[3].content", "m3", "edited"),
            DiffEntry("added", "messages[5]", None, {"role": "assistant", "content": "new"}),
            DiffEntry("changed", "step", 1, 2),
            DiffEntry("added", "done", None, True),
        ] == got

    def test_dropping_from_the_front_is_one_removal(self) -> None:
        """Lists are aligned: removing the first item does not mark every item changed."""
        old = {"m": [{"c": i} for i in range(10)]}
        new = {"m": old["m"][1:]}
        assert [DiffEntry("removed", "m[0]", {"c": 0}, None)] == diff_states(old, new)

    def test_odd_keys_and_root_changes(self) -> None:
        """Non-identifier keys are bracketed; a changed root has an empty path."""
        assert [DiffEntry("changed", "a['b c']", 1, 2)] == diff_states({"a": {"b c": 1}}, {"a": {"b c": 2}})
        assert [DiffEntry("changed", "", 1, "x")] == diff_states(1, "x")
        assert str(DiffEntry("changed", "a", 1, 2)) == "~ a: 1 -> 2"


class TestSafety:
    """checkpoint never raises into the agent and is free when not recording."""

    def test_no_recorder_is_a_no_op(self) -> None:
        """Without a recorder checkpoint returns None."""
        assert flightrec.checkpoint({"a": 1}) is None

    def test_unencodable_values_are_stored_as_repr(self, roomy: Any) -> None:
        """Objects msgpack cannot hold (and huge ints) are stored as their repr."""

        class Weird:
            def __repr__(self) -> str:
                return "<Weird>"

        seq = flightrec.checkpoint({"w": Weird(), "big": 1 << 80})
        with dump_and_load() as rec:
            got = rec.state_at(seq)
        assert got["w"] == "<Weird>"
        assert str(1 << 80) in str(got["big"])

    def test_concurrent_checkpoints(self, roomy: Any) -> None:
        """Threads checkpointing at once all get exact, rebuildable checkpoints."""
        results: dict[int, Any] = {}
        lock = threading.Lock()

        def worker(n: int) -> None:
            conv: list[dict[str, Any]] = []
            for i in range(40):
                conv.append({"worker": n, "i": i, "text": f"w{n} m{i} " * 30})
                state = {"conv": conv}
                seq = flightrec.checkpoint(state)
                assert seq is not None
                with lock:
                    results[seq] = copy.deepcopy(state)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with dump_and_load() as rec:
            assert all(c.rebuildable for c in rec.checkpoints())
            for seq, want in results.items():
                assert want == rec.state_at(seq)


class TestCycles:
    """A reference cycle in a checkpointed state is stored as ``<cycle>`` where the back-reference is."""

    CODE = """
        import json, flightrec
        flightrec.start(triggers=False, resources=0, redact={redact})
        itself = {{"a": 1}}
        itself["self"] = itself
        a_list = [1]
        a_list.append(a_list)
        x, y = {{"n": "x"}}, {{"n": "y"}}
        x["y"], y["x"] = y, x
        deep = {{"k": [1, {{"back": None}}]}}
        deep["k"][1]["back"] = deep
        via_tuple = {{"t": (1, [2])}}
        via_tuple["t"][1].append(via_tuple)
        shared = [1, 2]
        for label, state in [("itself", itself), ("a list", a_list), ("two dicts", x), ("deep", deep),
                             ("via a tuple", via_tuple), ("shared", {{"p": shared, "q": shared}})]:
            flightrec.checkpoint(state, label=label)
        # A conversation growing at every checkpoint (the steady path: the walk of a list
        # that grew, in C when built) beside a reference to the state holding it.
        conv = [{{"role": "user", "content": "hi"}}]
        state = {{"conv": conv}}
        state["self"] = state
        for turn in range(3):
            conv.append({{"role": "assistant", "content": f"turn {{turn}}"}})
            flightrec.checkpoint(state, label=f"turn {{turn}}")
        path = flightrec.dump(reason="test")
        with flightrec.load(path) as rec:
            print(json.dumps({{cp.label: rec.state_at(cp.seq) for cp in rec.checkpoints()}}))
    """

    @pytest.mark.parametrize("pure", ["0", "1"], ids=["native", "pure-python"])
    @pytest.mark.parametrize("redact", [True, False], ids=["redact-on", "redact-off"])
    def test_the_marker_replaces_the_back_reference(self, frdir: Path, pure: str, redact: bool) -> None:
        """Self-references, cycles through two dicts, a list or a tuple rebuild with ``<cycle>``
        exactly where the reference back to an enclosing container is (no extra copy of it),
        the same with the C extensions and without, redaction on and off; a shared (acyclic)
        value is kept whole."""
        proc = run_child(self.CODE.format(redact=redact), frdir, timeout=60, FLIGHTREC_PURE_PYTHON=pure)
        assert proc.returncode == 0, proc.stderr
        conv = [{"role": "user", "content": "hi"}]
        expected: dict[str, Any] = {
            "itself": {"a": 1, "self": "<cycle>"},
            "a list": [1, "<cycle>"],
            "two dicts": {"n": "x", "y": {"n": "y", "x": "<cycle>"}},
            "deep": {"k": [1, {"back": "<cycle>"}]},
            "via a tuple": {"t": [1, [2, "<cycle>"]]},
            "shared": {"p": [1, 2], "q": [1, 2]},
        }
        for turn in range(3):
            conv = [*conv, {"role": "assistant", "content": f"turn {turn}"}]
            expected[f"turn {turn}"] = {"conv": conv, "self": "<cycle>"}
        assert expected == json.loads(proc.stdout)
