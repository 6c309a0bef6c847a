"""flightrec/_paging.c against the Python code it stands in for (``_Packer.paged`` of a list that grew).

Both run the same sequence of checkpoints of a growing (and sometimes edited) list, each with
its own packer, paging record and group, and must give the same bytes and leave the same
chunks, trail, paging record and group behind.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightrec.checkpoint import pack, wire
from flightrec.checkpoint.pack import _Packer
from flightrec.checkpoint.walk import _Prefix

from .conftest import spy_handled

needs_c = pytest.mark.skipif(pack._paging is None, reason="the C extension is not built here")


def random_part(rng: random.Random) -> bytes:
    """A list item's part: a small inline encoding, or a chunk reference."""
    if rng.random() < 0.4:
        return wire._REF_HEAD + rng.randbytes(16)
    return bytes([0xA0 | 5]) + rng.randbytes(rng.choice([4, 30, 150, 190]))


def run_pages(seed: int, turns: int, max_chunk: int, group: bool, trail: bool, native: bool) -> list[Any]:
    """What each checkpoint's paging gives and leaves behind, over ``turns`` turns of growth."""
    saved = pack._paged_grown
    if not native:
        pack._paged_grown = None
    try:
        rng = random.Random(seed)
        packer = _Packer(max_chunk)
        prefix = _Prefix(None, [], [], {}, 0) if group else None
        prev: list[Any] = []
        parts: list[bytes] = []
        keys: list[int] = []
        seen = []
        for gen in range(1, turns + 1):
            r = rng.random()
            if r < 0.08 and parts:  # an edit: no longer a prefix
                k = rng.randrange(len(parts))
                parts[k] = random_part(rng)
                keys[k] = rng.getrandbits(64)
            elif r < 0.16 and parts:  # the same parts as new objects (equal, not identical)
                parts = [bytes(bytearray(p)) for p in parts]
            for _ in range(rng.choice([1, 1, 1, 2, 5, 40])):
                parts.append(random_part(rng))
                keys.append(rng.getrandbits(64) if rng.random() < 0.7 else rng.getrandbits(4) << 4)
            packer.reset()
            packer.trail = [] if trail else None
            out = packer.paged("l", list(parts), list(keys), prev, prefix)
            mark = prev[6] if prev else None
            seen.append(
                (
                    out,
                    list(packer.chunks.items()),
                    packer.trail,
                    prev[:6],
                    None if mark is None else (mark[0] is prefix, mark[1]),
                    None if prefix is None else (list(prefix.chunks.items()), prefix.size),
                )
            )
            if prev:
                prev.append(gen)  # as the walker does
        return seen
    finally:
        pack._paged_grown = saved


@needs_c
class TestPagedGrown:
    @settings(max_examples=60, deadline=None)
    @given(
        seed=st.integers(0, 2**32),
        max_chunk=st.sampled_from([16 * 1024, 13_000, 3456]),
        group=st.booleans(),
        trail=st.booleans(),
    )
    def test_same_as_python(self, seed: int, max_chunk: int, group: bool, trail: bool) -> None:
        """Byte for byte the same pages, chunks, trail, paging record and group, turn by turn."""
        want = run_pages(seed, 60, max_chunk, group, trail, native=False)
        got = run_pages(seed, 60, max_chunk, group, trail, native=True)
        assert got == want

    def test_it_takes_the_usual_checkpoint(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A list that only grew is paged in C (not handed back), an edited one in Python."""
        answers = spy_handled(monkeypatch, pack, "_paged_grown", None)
        packer, prev = _Packer(16 * 1024), []
        parts = [bytes([0xA5]) + bytes([i % 256]) * 150 for i in range(200)]
        keys = list(range(1, 201))
        for n in (150, 151, 152):
            packer.reset()
            packer.paged("l", parts[:n], keys[:n], prev)
            prev.append(n)
        edited = [b"\xa5" + b"x" * 150, *parts[1:153]]
        packer.paged("l", edited, keys[:153], prev)
        assert answers == [True, True, False]  # (the first paging has no record yet)

    def test_constants_agree(self) -> None:
        assert pack._paging.CONSTANTS == (
            wire.MIN_CHUNK,
            wire.PAGE_MAX,
            wire._BOUNDARY_MASK,
            wire._INLINE_TAIL_MAX,
            wire.EXT_CAT,
            wire._REF_LEN,
        )

    def test_bad_arguments(self) -> None:
        with pytest.raises(TypeError):
            pack._paging.paged_grown(_Packer(1024), (), [], [], None)
        packer = _Packer(16 * 1024)
        prev = ["l", [b"\xa1a"], [b"\x91\xa1a"], [1], True, [], (None, 0)]
        with pytest.raises(TypeError):  # a part that is not bytes, once the paging continues
            pack._paging.paged_grown(packer, [b"\xa1a", "not bytes"], [1, 2], prev, None)
