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
    that fails, decoding streams item by item: an item that is not an event is skipped, and
    decoding stops where the bytes stop being MessagePack (``tolerate_tail`` is for the open
    block, where a torn last event is expected after a crash); everything before is kept.
    MessagePack ext types are kept as data: nothing in a recording is ever executed.
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
            ev = _as_event(item)
            if ev is not None:
                append(ev)
            else:
                clean = False  # a whole item, but not an event: skip it (the framing still holds)
    except Exception:  # msgpack raises several unrelated types for garbage
        clean = tolerate_tail
    if count is not None and len(out) != count:
        clean = False
    return out, clean


def _as_event(item: Any) -> Event | None:
    """The event a decoded item is, or None if it does not have the types :class:`Event` promises.

    Readers compare and sort by ``seq``: an item that merely has seven fields (a torn or
    crafted one) must not get through with, say, a string for a seq. A ``kind`` or
    ``thread`` that is not a string (an agent passed an int as kind) is kept, as text, and
    ``data`` that is not a map (a sanitizer gave up on the whole payload) is kept under
    ``value`` with a ``_degraded`` marker: the event happened, so it is shown.
    """
    if type(item) is not list or len(item) != 7:
        return None
    seq, ts, kind, thread, span, parent, data = item
    if type(seq) is not int or seq < 0 or type(ts) is not int or not -_TS_LIMIT <= ts < _TS_LIMIT:
        return None
    if not (span is None or type(span) is int) or not (parent is None or type(parent) is int):
        return None
    if type(kind) is not str or type(thread) is not str or type(data) is not dict:
        if type(data) is not dict:
            data = {"_degraded": "data is not a map", "value": data}
        item = [seq, ts, str(kind), str(thread), span, parent, data]
    return _new_event(Event, item)  # type: ignore[no-any-return]


def iter_unpacked(raw: bytes) -> Iterator[Any]:
    """msgpack's own streaming decode of ``raw`` (the benchmark's reference point)."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, timestamp=3, max_buffer_size=max(len(raw), 1024))
    unpacker.feed(raw)
    yield from unpacker
