"""Memory bookkeeping: what the agent keeps in, and drops from, its context.

``flightrec.memory.retain / evict / summarize`` record ``"memory"`` events
``{op, item_id | item_ids, into?, tokens?, reason?, source?, content?, call_id?}`` and
``flightrec.memory.context`` records ``"context"`` samples ``{used_tokens, limit_tokens, ratio}``.
``call_id`` links a retained item to the tool call that produced it: the latest tool call
that succeeded in the same context before the retain (see :func:`flightrec.agent.last_tool_call`),
when the retain names no ``source`` or names that tool as its source.

The reader rebuilds which items were live at any point of a recording, even after the
ring wrapped many times: the recorder remembers the live items (id, tokens, reason,
source; not their content) and, just before the block holding an item's latest retain
event is overwritten, writes a *carried* retain ``{op: "retain", item_id, ..., carried: seq}``
whose ``carried`` is the seq of the original retain. A carried retain is bookkeeping, not
a new decision of the agent.
"""

from __future__ import annotations

import heapq
import threading
from collections import OrderedDict, deque
from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING, Any

from . import api
from .agent import _last_call

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = ["context", "evict", "retain", "summarize"]


class MemoryTracker:
    """The live items of one recorder, re-emitted before their retain is overwritten.

    An event is recorded first (on the recorder's fast path); its update of the live items
    is queued (one atomic ``deque.append``) and applied, in a batch under the tracker's own
    lock, by the flush listener before it looks at them, or by :meth:`live`. (Updating them
    under the recorder's lock instead would cost the slow, locked append; updating them at
    every event, under a lock, costs more than the event.) Updates from several threads
    may still arrive out of seq order: each item remembers the seq of the latest event
    applied to it, and an older event is not applied over a newer one.
    """

    def __init__(self, recorder: Recorder) -> None:
        """Attach to ``recorder`` (registers a flush listener)."""
        self._rec = recorder
        self.max_items = max(64, recorder.config.size // 2048)
        """Most live items carried across wrap-around; the oldest beyond it are forgotten."""
        # item id -> [seq of its latest (carried) retain, carried data, original retain seq,
        #            whether the carried data is as given (redacted when carried) or redacted]
        self._items: OrderedDict[Hashable, list[Any]] = OrderedDict()
        # item id -> seq of the evict (or summarize) that removed it: a retain recorded
        # before it but applied after it (another thread) must not bring the item back
        self._gone: OrderedDict[Hashable, int] = OrderedDict()
        self._heap: list[tuple[int, int, Hashable]] = []
        self._tie = 0
        # (seq, keys dropped, key retained, its carried data, raw): updates not applied yet
        self._pending: deque[tuple[int, tuple[Hashable, ...], Hashable, dict[str, Any] | None, bool]] = deque()
        self._lock = threading.Lock()
        self.forgotten = 0
        """Live items no longer carried because there were more than :attr:`max_items`."""
        recorder.add_flush_listener(self._on_flush)

    def emit(
        self, op: str, data: dict[str, Any], item_id: Any = None, item_ids: Iterable[Any] = (), into: Any = None
    ) -> int | None:
        """Record one memory event, then queue its update of the live items."""
        if op == "retain":
            return self.retained(data, {k: v for k, v in data.items() if k in _CARRIED}, item_id)
        # Redacted on the recorder's (C) path, without the payload cache: an item id seldom repeats.
        seq: int | None = self._rec.record_fresh("memory", data)
        if seq is None:
            return None  # sampled out, or the recorder is closed
        if op == "evict":
            return self._queue(seq, (_key(item_id),), None, None)
        carried = {"op": "retain", "item_id": into, "reason": "summarize"}  # (summarize)
        if data.get("tokens") is not None:
            carried["tokens"] = data["tokens"]
        return self._queue(seq, tuple(map(_key, item_ids)), _key(into), carried)

    def retained(self, data: dict[str, Any], carried: dict[str, Any], item_id: Any) -> int | None:
        """Record a retain whose carried fields (``_CARRIED``) the caller took out of ``data``."""
        seq: int | None = self._rec.record_fresh("memory", data)
        if seq is None:
            return None
        key = item_id if type(item_id) is str else _key(item_id)
        if not _PLAIN.issuperset(map(type, carried.values())):
            return self._queue(seq, (), key, carried)
        # _queue's plain case, without its frame: this is the agent's most frequent memory call
        pending = self._pending
        pending.append((seq, (), key, carried, True))
        if len(pending) > _PENDING_MAX:
            self._apply_now()
        return seq

    def _queue(self, seq: int, dropped: tuple[Hashable, ...], key: Hashable, carried: dict[str, Any] | None) -> int:
        """Queue an event's update of the live items (applied by :meth:`_apply_pending`)."""
        raw = True
        if carried is not None and not _PLAIN.issuperset(map(type, carried.values())):
            # An object the agent may change later: keep its redacted form now. Plain values
            # are kept as given and redacted when carried (_on_flush), with the same result.
            carried, raw = self._redact(carried), False
        self._pending.append((seq, dropped, key, carried, raw))
        if len(self._pending) > _PENDING_MAX:
            self._apply_now()
        return seq

    def _apply_now(self) -> None:
        """No flush for a long while: apply the queued updates now."""
        with self._lock:
            self._apply_pending()

    def _apply_pending(self) -> None:
        """Apply the queued updates (caller holds ``_lock``)."""
        pending = self._pending
        while pending:
            seq, dropped, key, carried, raw = pending.popleft()
            for k in dropped:
                self._drop(k, seq)
            if carried is not None:
                self._put(key, seq, carried, raw)

    def _redact(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` as the recorder redacts an event's data (no agent code runs for plain values)."""
        redactor = self._rec.redactor
        if redactor is None:
            return data
        clean = redactor.redact(data)
        return clean if type(clean) is dict else {"op": data.get("op"), "error": "<unredactable>"}

    def _put(self, key: Hashable, seq: int, carried: dict[str, Any], raw: bool = False) -> None:
        items = self._items
        old = items.get(key)
        if (old is not None and old[2] > seq) or self._gone.get(key, -1) > seq:
            return  # a newer event for this item was applied first
        items[key] = [seq, carried, seq, raw]
        items.move_to_end(key)
        self._tie += 1
        heap = self._heap
        heapq.heappush(heap, (seq, self._tie, key))
        while len(items) > self.max_items:
            items.popitem(last=False)
            self.forgotten += 1
        if len(heap) > 2 * len(items) + _HEAP_SLACK:
            # Mostly stale entries (items retained again, evicted or forgotten since): only a
            # flush that reaches their seqs would pop them, and a big ring holds millions of
            # small retains (hundreds of MB of entries). One entry per live item is enough.
            self._heap = heap = [(entry[0], i, k) for i, (k, entry) in enumerate(items.items(), self._tie + 1)]
            self._tie += len(heap)
            heapq.heapify(heap)

    def _drop(self, key: Hashable, seq: int) -> None:
        entry = self._items.get(key)
        if entry is not None and entry[2] > seq:
            return  # retained again by a newer event, applied first
        self._items.pop(key, None)
        gone = self._gone
        gone[key] = seq
        gone.move_to_end(key)
        if len(gone) > self.max_items:
            gone.popitem(last=False)

    def _on_flush(self, at_risk: list[tuple[int, int]]) -> None:
        """Carry every live item whose latest retain the next flush may overwrite."""
        rec = self._rec
        with self._lock:
            self._apply_pending()
            if rec.closed or not self._items:
                if not self._items:
                    self._heap.clear()
                return
            ring = rec.ring
            heap, items = self._heap, self._items
            for _ in range(16):
                block_seq = ring.block_seq
                risk = max((last for _, last in at_risk), default=-1)
                while heap and heap[0][0] <= risk:
                    seq, _, key = heapq.heappop(heap)
                    entry = items.get(key)
                    if entry is None or entry[0] != seq:
                        continue
                    # (plain values kept as given are redacted now, into a copy: see emit)
                    data = self._redact(entry[1]) if entry[3] else entry[1]
                    data = dict(data) if data is entry[1] else data
                    data["carried"] = entry[2]
                    new = rec.append_locked("memory", data)
                    entry[0] = new
                    self._tie += 1
                    heapq.heappush(heap, (new, self._tie, key))
                if ring.block_seq == block_seq:
                    return
                at_risk = ring.at_risk()

    def live(self) -> dict[Hashable, dict[str, Any]]:
        """The live items as the recorder knows them (for tests and introspection)."""
        with self._lock:
            self._apply_pending()
            return {k: dict(v[1]) for k, v in self._items.items()}


_CARRIED = frozenset({"op", "item_id", "tokens", "reason", "source"})
_PENDING_MAX = 4096  # updates queued before they are applied without waiting for a flush
_HEAP_SLACK = 1024  # stale heap entries tolerated beyond one per live item (see _put)
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _key(item_id: Any) -> Hashable:
    try:
        hash(item_id)
        return item_id  # type: ignore[no-any-return]
    except TypeError:
        return repr(item_id)


def tracker_for(recorder: Recorder) -> MemoryTracker:
    """The recorder's memory tracker, created on first use."""
    return recorder.extension(MemoryTracker)


def _event(base: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """A memory event's data: ``base`` plus the optional fields that were given (not None)."""
    base.update((k, v) for k, v in optional.items() if v is not None)
    return base


def retain(
    item_id: Any, content: Any = None, tokens: int | None = None, reason: str | None = None, source: str | None = None
) -> int | None:
    """Record that the agent kept an item in its context (a document, a fact, a message).

    Args:
        item_id: the item's id; retaining the same id again after evicting it is how a
            reader learns that the agent needed it back.
        content: the item itself (redacted and cut like any value), optional.
        tokens: its size in tokens.
        reason: why it was kept.
        source: where it came from (a tool name, a URL, ``"user"``...).

    Returns:
        The event's seq, or None when not recording.
    """
    rec = api._recorder
    if rec is None:
        return None
    try:
        # Built field by field (not with _event), and handed to the tracker with what it
        # carries: this is the agent's most frequent memory call.
        data: dict[str, Any] = {"op": "retain", "item_id": item_id}
        if tokens is not None:
            data["tokens"] = tokens
        if reason is not None:
            data["reason"] = reason
        if source is not None:
            data["source"] = source
        carried = data.copy()  # the _CARRIED fields
        if content is not None:
            data["content"] = content
        last = _last_call.get()  # (last_tool_call())
        if last is not None and (source is None or source == last[1]):
            data["call_id"] = last[0]
        tracker = rec._extensions.get(MemoryTracker) or tracker_for(rec)
        return tracker.retained(data, carried, item_id)  # type: ignore[no-any-return]
    except Exception:
        rec.errors += 1
        return None


def evict(item_id: Any, reason: str | None = None, tokens: int | None = None) -> int | None:
    """Record that the agent dropped an item from its context.

    Args:
        item_id: the item's id.
        reason: why, e.g. ``"context full"``.
        tokens: tokens freed.

    Returns:
        The event's seq, or None when not recording.
    """
    rec = api._recorder
    if rec is None:
        return None
    try:
        data = _event({"op": "evict", "item_id": item_id}, reason=reason, tokens=tokens)
        return tracker_for(rec).emit("evict", data, item_id=item_id)
    except Exception:
        rec.errors += 1
        return None


def summarize(item_ids: Iterable[Any], into: Any, tokens: int | None = None, reason: str | None = None) -> int | None:
    """Record that the agent replaced several items by one summary item.

    Args:
        item_ids: the items summarized (they leave the context); one id alone may be given as is.
        into: the summary's item id (it enters the context).
        tokens: the summary's size in tokens.
        reason: why.

    Returns:
        The event's seq, or None when not recording.
    """
    rec = api._recorder
    if rec is None:
        return None
    try:
        # One id given as a string is one item, not its characters.
        ids = [item_ids] if isinstance(item_ids, str | bytes) else list(item_ids)
        data = _event({"op": "summarize", "item_ids": ids, "into": into}, tokens=tokens, reason=reason)
        return tracker_for(rec).emit("summarize", data, item_ids=ids, into=into)
    except Exception:
        rec.errors += 1
        return None


def context(used_tokens: int, limit_tokens: int) -> int | None:
    """Sample the context window's usage.

    Args:
        used_tokens: tokens in the context now.
        limit_tokens: the window's limit.

    Returns:
        The event's seq, or None when not recording.
    """
    rec = api._recorder
    if rec is None:
        return None
    try:
        ratio = round(used_tokens / limit_tokens, 4) if limit_tokens else None
        return rec.record(  # type: ignore[no-any-return]
            "context", {"used_tokens": used_tokens, "limit_tokens": limit_tokens, "ratio": ratio}
        )
    except Exception:
        rec.errors += 1
        return None
