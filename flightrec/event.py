"""The :class:`Event` value type and the raw-bytes -> events decoding shared by all readers."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any, NamedTuple

import msgpack
import msgspec


class Event(NamedTuple):
    """One recorded event: immutable, cheap, with a readable repr.

    Attributes:
        seq: process-wide sequence number, gap-free in recording order.
        ts_ns: wall-clock time (``time.time_ns()``) when it was recorded.
        kind: what it is (``"note"``, ``"tool_call"``, ``"error"``...).
        thread: name of the recording thread.
        span: id of the innermost open step, if any.
        parent: that step's parent step id, if any.
        data: the (redacted) fields.
    """

    seq: int
    ts_ns: int
    kind: str
    thread: str
    span: int | None
    parent: int | None
    data: dict[str, Any]


_new_event = tuple.__new__
_decode_typed = msgspec.msgpack.Decoder(list[Event]).decode
_array32 = struct.Struct(">BI")
_TS_LIMIT = 1 << 63
"""Timestamps are signed 64-bit in block headers: an event outside that range is not one of ours."""


def decode_events(raw: bytes, tolerate_tail: bool = False, count: int | None = None) -> tuple[list[Event], bool]:
    """Decode concatenated MessagePack events.

    Returns the events and whether the bytes were clean. When the event ``count`` is known
    (a block header says it), the bytes are decoded in one call as a MessagePack array of
    that many events, validated against :class:`Event` (msgspec, in C). Otherwise, or if
    that fails, decoding streams item by item and stops at the first malformed one
    (``tolerate_tail`` is for the open block, where a torn last event is expected after a
    crash); everything before it is kept. MessagePack ext types are kept as data: nothing
    in a recording is ever executed.
    """
    if count is not None and not tolerate_tail:
        try:
            return _decode_typed(_array32.pack(0xDD, count) + raw), True
        except Exception:  # DecodeError, ValidationError, or RecursionError for absurd nesting
            pass  # salvage what can be salvaged below
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, timestamp=3, max_buffer_size=max(len(raw), 1024))
    unpacker.feed(raw)
    out: list[Event] = []
    append = out.append
    clean = True
    try:
        for item in unpacker:
            if _is_event(item):
                append(_new_event(Event, item))
            else:
                clean = False
                break
    except Exception:  # msgpack raises several unrelated types for garbage
        clean = tolerate_tail
    if count is not None and len(out) != count:
        clean = False
    return out, clean


def _is_event(item: Any) -> bool:
    """True if a decoded item has the shape of an event (the types :class:`Event` promises).

    Readers compare and sort by ``seq`` and index by ``kind``: an item that merely has seven
    fields (a torn or crafted one) must not get through with, say, a string for a seq.
    """
    return (
        type(item) is list
        and len(item) == 7
        and type(item[0]) is int
        and item[0] >= 0
        and type(item[1]) is int
        and -_TS_LIMIT <= item[1] < _TS_LIMIT
        and type(item[2]) is str
        and type(item[3]) is str
        and (item[4] is None or type(item[4]) is int)
        and (item[5] is None or type(item[5]) is int)
        and type(item[6]) is dict
    )


def iter_unpacked(raw: bytes) -> Iterator[Any]:
    """msgpack's own streaming decode of ``raw`` (the benchmark's reference point)."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, timestamp=3, max_buffer_size=max(len(raw), 1024))
    unpacker.feed(raw)
    yield from unpacker
