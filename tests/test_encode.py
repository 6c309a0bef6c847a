"""safe_repr: repr() as far as its limit, never raising, and no further work than that."""

from __future__ import annotations

from typing import Any

import pytest

from flightrec.encode import safe_repr


def _cyclic() -> list[Any]:
    a: list[Any] = [1]
    a.append(a)
    return a


def _cyclic_dict() -> dict[str, Any]:
    d: dict[str, Any] = {"k": 1}
    d["self"] = d
    return d


VALUES: list[Any] = [
    [],
    (),
    {},
    set(),
    frozenset(),
    (1,),
    [1, (2,), {3: "x"}, {4}, frozenset({5})],
    [b"ab", "c'd", None, 1.5, True, -7],
    {"a": [{"b": (1, 2)}], 3: {"c": "d" * 50}},
    [[[]], ((),)],
    _cyclic(),
    _cyclic_dict(),
    [list(range(30)), {"x": list(range(30))}],
]


@pytest.mark.parametrize("value", VALUES, ids=[type(v).__name__ + str(i) for i, v in enumerate(VALUES)])
def test_a_container_reads_as_repr_at_every_limit(value: Any) -> None:
    """Below its length the text is repr's start then a mark; at or above it, repr itself."""
    full = repr(value)
    for limit in range(len(full) + 3):
        text = safe_repr(value, limit)
        if len(full) <= limit:
            assert text == full
        else:
            assert text.startswith(full[:limit]) and text.endswith("…<truncated>"), (limit, text)
            assert len(text) == limit + len("…<truncated>")


def test_only_what_is_kept_is_made() -> None:
    """A list of 100,000 items cut at 64 characters asks a few of them for their repr."""
    made = 0

    class Item:
        def __repr__(self) -> str:
            nonlocal made
            made += 1
            return "item"

    assert safe_repr([Item() for _ in range(100_000)], 64).startswith("[item, item, ")
    assert made < 20


def test_a_broken_repr_inside_a_container_is_named_not_raised() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert safe_repr([Broken()] * 3, 10) == "<unrepresentable list: RuntimeError>"


def test_a_long_string_inside_a_container_is_cut_before_its_repr() -> None:
    text = safe_repr(["x" * 1_000_000], 20)
    assert text == "['" + "x" * 18 + "…<truncated>"
