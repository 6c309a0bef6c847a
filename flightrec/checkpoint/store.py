"""The writer side: storing checkpoints' new chunks in the ring and keeping every checkpoint
in the ring rebuildable (:class:`CheckpointStore`), and the :func:`checkpoint` API function.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

from .. import api
from ..context import current_span
from ..encode import safe_repr
from ..fastpath import load_native
from .pack import _Packer
from .walk import _ITEM, _dict_versions, _Prefix, _same_versions, _Tree, _walk_grown, _Walker
from .wire import MAX_CHUNK

if TYPE_CHECKING:
    from ..recorder import Recorder

_CHUNK_LIST_MAX = 32
_LABEL_MAX = 256  # characters of a checkpoint's label
_CHUNK_OVERHEAD = 64  # a chunk event's framing, besides its data
_PENDING = 1 << 62
_NONE_HELD: dict[bytes, bytes] = {}
_SAMPLE_CHUNKS = 64  # chunks (evenly spread) whose compression estimates a big state's ratio
_SAMPLE_MAX = 256 * 1024  # bytes of them compressed at most
_SHRINK_MARGIN = 8  # giving up old checkpoints goes 1/8 of the budget below it

_store = load_native("_store")
_emit_usual: Callable[..., Any] | None = _store.emit if _store is not None else None

_checkpoint_usual: Callable[..., Any] | None = None
if _store is not None and _walk_grown is not None and _same_versions is not None and _dict_versions is not None:
    _checkpoint_usual = getattr(_store, "checkpoint", None)
if _checkpoint_usual is not None:
    _store.configure(_walk_grown, _same_versions, _dict_versions, _ITEM, _LABEL_MAX, current_span)
# CheckpointStore.checkpoint(state, label) without its Python frame, or None (see _store.c)
_checkpoint_entry: Callable[[CheckpointStore, Any, Any], int | None] | None = (
    _store.entry if _checkpoint_usual is not None else None
)


class StateTooLarge(Exception):
    """A state whose chunks would take more of the ring than :attr:`CheckpointStore.state_max`."""

    def __init__(self, estimate: int, limit: int, partial: bool) -> None:
        self.estimate = estimate
        self.limit = limit
        self.partial = partial  # packing stopped early: the state takes more than ``estimate``
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        """The refusal event's ``error``."""
        more = "over " if self.partial else ""
        return f"state too large: {more}{self.estimate} bytes, limit {self.limit}"


class _NoRedaction:
    """Stands in for the redactor when redaction is off."""

    @staticmethod
    def redact(value: Any, path: str = "", enclosing: Any = ()) -> Any:
        return value


class CheckpointStore:
    """The writer side of one recorder: which chunks are in the ring, and keeping them there.

    All state is mutated under the recorder's lock (checkpoint emission and the flush
    listener both hold it), so it needs no lock of its own.
    """

    def __init__(self, recorder: Recorder) -> None:
        """Attach to ``recorder`` (registers a flush listener)."""
        self._rec = recorder
        cfg = recorder.config
        self.max_chunk = max(1024, min(MAX_CHUNK, cfg.max_event - 640))
        # Biggest root carried inside its checkpoint event: beside it, the event holds a
        # label (at most _LABEL_MAX characters), up to _CHUNK_LIST_MAX digests and a few ints.
        self._inline_max = cfg.max_event - 2560
        self.budget = max(recorder.ring.ring_size * 3 // 4, 4 * self.max_chunk)
        """Most (estimated, compressed) chunk bytes kept alive in the ring. Beyond it the
        chunks of all the checkpoints in the ring would crowd everything else out (or not fit
        at all), so the oldest checkpoints are given up: they show as not rebuildable."""
        self.state_max = recorder.ring.ring_size // 2
        """Most (estimated, compressed) ring bytes one state's chunks may take. A bigger state
        is refused (a ``checkpoint`` event with ``error``, no state): re-emitting chunks that
        fill more of the ring than that as the ring wraps would cost ever more and still lose
        them. Decided while packing, as soon as the new chunks alone are too many bytes."""
        self.refused = 0
        """Checkpoints refused because their state was over :attr:`state_max`."""
        self._allowed = 0  # new chunk bytes the packer was allowed so far in this checkpoint
        self._seq_of: dict[bytes, int] = {}  # digest -> seq of its latest copy in the ring
        self._data: dict[bytes, bytes] = {}  # digest -> data (already redacted)
        self._csize: dict[bytes, int] = {}  # digest -> its estimated size in the ring
        self._gen_of: dict[bytes, int] = {}  # digest -> newest checkpoint generation using it
        self._gen_seq: dict[int, int] = {}  # live generation -> its checkpoint event's seq
        self._gens: deque[int] = deque()
        self._gen = 0
        self._heap: list[tuple[int, bytes]] = []  # (copy seq, digest), stale entries skipped
        # id -> a walker's prefix (or big dict) whose chunks are registered as one (see _register)
        self._groups: dict[int, _Prefix | _Tree] = {}
        self._bytes = 0
        self._cbytes = 0
        redactor = _unbounded(recorder.redactor) if recorder.redactor is not None else _NoRedaction()
        # With redaction off, what cannot be encoded as it is (a cycle) is made data as events
        # make it: by the recorder's sanitizing walk (a cycle stored as `<cycle>`).
        sanitizer = _unbounded(recorder._sanitizer) if recorder.redactor is None else None
        # True of a label no rule can change (a C test; None: ask the recorder every time)
        self._clean_label = recorder.redactor.clean_test() if recorder.redactor is not None else None
        self._walker = _Walker(redactor, self.max_chunk, sanitizer)
        self._walker._packer.over = self._over
        self._pack_lock = threading.Lock()
        self._ratio: float | None = None  # LZ4 compressed/raw of recent new chunks
        self.reemitted = 0
        """Chunks written again because their previous copy was about to be overwritten."""
        self.abandoned = 0
        """Checkpoints given up because the live chunks outgrew :attr:`budget`."""
        recorder.add_flush_listener(self._on_flush)

    # ------------------------------------------------------------ emission
    def checkpoint(self, state: Any, label: Any = None) -> int | None:
        """Record ``state``; see :func:`checkpoint`."""
        rec = self._rec
        ctx = current_span.get()
        span, parent = (None, None) if ctx is None else ctx
        incr = rec._keep_fast("checkpoint")  # the sampler's keep-all table, as record() uses it
        if incr is not None:
            incr()
        elif not rec.sampler.keep("checkpoint", span, rec.recorded, False, time.time_ns()):
            return None  # counted by the sampler
        # One checkpoint at a time: the walker's memo is shared, and a group's new chunks
        # (see _register) must be stored before another checkpoint takes them as stored.
        with self._pack_lock:
            self._walker._packer.left = self._allowed = self.state_max
            try:
                if _checkpoint_usual is not None:
                    # A list that grew (the usual checkpoint): pack and _emit below, in C (see
                    # _store.c); NotImplemented, having changed nothing, when it is not that case.
                    seq = _checkpoint_usual(self, state, label, span, parent)
                    if seq is not NotImplemented:
                        return seq  # type: ignore[no-any-return]
                return self._pack_emit(state, label, span, parent)
            except BaseException as e:
                return self._failed(e, label, span, parent)

    def _pack_emit(self, state: Any, label: Any, span: int | None, parent: int | None) -> int | None:
        """Pack ``state`` and emit it, in Python (the caller holds ``_pack_lock``)."""
        walker = self._walker
        root, chunks = walker.pack(state)
        retired, walker.retired = walker.retired, []
        return self._emit(root, chunks, walker.groups, label, span, parent, retired)

    def _failed(self, error: BaseException, label: Any, span: int | None, parent: int | None) -> int | None:
        """Packing or emitting a checkpoint raised ``error`` (the caller holds ``_pack_lock``).

        A state too large (from packing: its new chunks alone are too many) is refused.
        Otherwise ``error`` is raised again, once the walker's groups are settled: the walker
        may have added chunks to them that are not stored.
        """
        walker = self._walker
        if isinstance(error, StateTooLarge):
            return self._refuse(error, walker.groups, (), label, span, parent)
        with self._rec._lock:  # (the flush listener iterates over the groups)
            for g in walker.groups:
                self._settle(g)
        raise error

    def _label(self, label: Any) -> str:
        """``label`` as the event carries it: redacted, cut at _LABEL_MAX characters."""
        clean = self._clean_label
        if type(label) is str and len(label) <= _LABEL_MAX and clean is not None and clean(label):
            text = label  # the usual short label ("step 12"): nothing any rule could redact
        else:
            text = self._rec.redact_text(label if isinstance(label, str) else safe_repr(label, _LABEL_MAX))
        return text if len(text) <= _LABEL_MAX else text[: _LABEL_MAX - 1] + "…"  # a name, not a payload

    def _refuse(
        self,
        err: StateTooLarge,
        groups: Iterable[_Prefix | _Tree],
        retired: Iterable[_Prefix | _Tree],
        label: Any,
        span: int | None,
        parent: int | None,
    ) -> int | None:
        """Record that a checkpoint was not stored, and why; store nothing of its state.

        The walker's groups may hold chunks of this state that were never stored: they are
        no longer registered as groups (their stored chunks keep the generations they had),
        so the next checkpoint registers them chunk by chunk and stores what is missing.
        """
        rec = self._rec
        data: dict[str, Any] = {}
        if label is not None:
            data["label"] = self._label(label)
        data["error"] = err.reason
        with rec._lock:
            for g in [*groups, *retired]:
                self._settle(g)
            if rec.closed:
                return None
            self.refused += 1
            return rec.append_locked("checkpoint", data, span, parent)

    def _over(self, packer: _Packer, value: Any) -> None:
        """The packer's new chunks passed what it was allowed (``value``: a big str or bytes
        about to be redacted and packed): stop with :class:`StateTooLarge` if they would take
        more than :attr:`state_max` of the ring at their compression ratio, else allow more."""
        raw = self._allowed - packer.left
        n = len(packer.chunks)
        blobs = _spread(packer.chunks.values(), n)
        if value is not None:
            raw += len(value)
            n += len(value) // self.max_chunk + 1
            blobs.append(packer._encode(value[: _SAMPLE_MAX // 4]))
        ratio = _compress_ratio(blobs)
        estimate = int(raw * ratio) + n * _CHUNK_OVERHEAD
        if estimate > self.state_max:
            raise StateTooLarge(estimate, self.state_max, partial=True)
        # Allow about half the raw bytes that would still fit at this ratio, and at least half
        # of what was allowed so far (so a state needs only a few such checks).
        more = max(int((self.state_max - estimate) / max(ratio, 0.01)) // 2, self._allowed // 2)
        if value is not None:
            more += len(value)
        packer.left += more
        self._allowed += more

    def _emit(
        self,
        root: bytes,
        chunks: dict[bytes, bytes],
        groups: list[_Prefix | _Tree],
        label: Any,
        span: int | None,
        parent: int | None,
        retired: Iterable[_Prefix | _Tree] = (),
    ) -> int | None:
        """Store a packed checkpoint's new chunks and its event, under the recorder's lock."""
        rec = self._rec
        data: dict[str, Any] = {"root": root.hex()}
        if label is not None:
            data["label"] = self._label(label)
        if _emit_usual is not None and not retired:
            # The usual checkpoint (its group registered, a few new chunks, well within the
            # limits): the code below in C (see _store.c); NotImplemented when this is not that case.
            seq: int | None = _emit_usual(self, rec, root, chunks, groups, data, span, parent)
            if seq is not NotImplemented:
                return seq
        # The whole state (not only its new chunks) must fit: every chunk of it stays live.
        raw = sum(map(len, chunks.values()))
        n = len(chunks)
        for g in groups:
            raw += g.size
            n += len(g.chunks)
        if raw + n * _CHUNK_OVERHEAD > self.state_max:  # (the estimate if nothing compressed)
            blobs = _spread(chunks.values(), len(chunks))
            for g in groups:
                blobs.extend(_spread(g.chunks.values(), len(g.chunks)))
            estimate = int(raw * _compress_ratio(blobs)) + n * _CHUNK_OVERHEAD
            if estimate > self.state_max:
                err = StateTooLarge(estimate, self.state_max, partial=False)
                return self._refuse(err, groups, retired, label, span, parent)
        append = rec.append_locked
        with rec._lock:
            if rec.closed:
                return None
            self._gen += 1
            gen = self._gen
            self._gen_seq[gen] = _PENDING
            self._gens.append(gen)
            missing, size = self._register(chunks, gen, groups)
            for g in retired:
                self._settle(g)
            # The ratio only estimates ring usage: measured on every 32nd checkpoint's new
            # chunks (compressing them all every time would cost more than storing them).
            if gen % 32 == 1 or self._ratio is None:
                self._ratio = _compress_ratio([blob for _, blob in missing]) if missing else self._ratio
            ratio = self._ratio if self._ratio is not None else 1.0
            # Over budget with this checkpoint's new chunks: give up old checkpoints before
            # writing them, not after (else the flush listener keeps both alive meanwhile,
            # which may be more than the ring holds).
            incoming = sum(int(len(blob) * ratio) + _CHUNK_OVERHEAD for _, blob in missing)
            if self._cbytes + incoming > self.budget:
                self._shrink(gen, incoming)
            # A new root travels inside the checkpoint event (one event fewer: a state that
            # changed has a new root, which no other checkpoint uses yet); from then on it is
            # a chunk stored like the others, its copy at the event's seq.
            inline = None
            if missing and missing[-1][0] == root and len(missing[-1][1]) <= self._inline_max:
                inline = missing.pop()
            new_hex: list[str] = []
            stored = cstored = 0
            try:
                for h, blob in missing:
                    hx = h.hex()
                    seq = append("chunk", {"hash": hx, "data": blob}, span, parent)
                    cstored += self._copy_at(seq, h, blob, ratio)
                    stored += len(blob)
                    if len(new_hex) < _CHUNK_LIST_MAX:
                        new_hex.append(hx)
                data["chunks"] = new_hex
                data["new"] = len(missing) + (inline is not None)
                data["size"] = size
                data["stored"] = stored
                if inline is not None:
                    data["inline"] = inline[1]
                    data["stored"] += len(inline[1])
                seq = append("checkpoint", data, span, parent)
                if inline is not None:
                    cstored += self._copy_at(seq, *inline, ratio)
                    stored += len(inline[1])
            except BaseException:  # never leave a chunk marked stored that is not
                for h, _ in missing if inline is None else [*missing, inline]:
                    if h not in self._data:
                        self._gen_of.pop(h, None)
                raise
            finally:
                self._bytes += stored
                self._cbytes += cstored
            self._gen_seq[gen] = seq
            if self._cbytes > self.budget:
                self._shrink(gen)
        return seq

    def _copy_at(self, seq: int, h: bytes, blob: bytes, ratio: float) -> int:
        """Note that chunk ``h`` (``blob``) has a copy in the event ``seq``; its estimated ring bytes."""
        self._data[h] = blob
        csize = self._csize[h] = int(len(blob) * ratio) + _CHUNK_OVERHEAD
        self._seq_of[h] = seq
        heapq.heappush(self._heap, (seq, h))
        return csize

    def _register(
        self, chunks: dict[bytes, bytes], gen: int, groups: Iterable[_Prefix | _Tree] = ()
    ) -> tuple[list[tuple[bytes, bytes]], int]:
        """Mark every chunk of a checkpoint as used by ``gen``; the ones not stored yet
        (digest, data), and the state's size (bytes of all its chunks).

        ``groups`` (the walker's reused prefixes) stand for their chunks, which are not in
        ``chunks``: a group is registered chunk by chunk when it is not in ``_groups`` (the
        first time, and again once it was dropped there because one of its chunks was
        forgotten or no checkpoint in the ring used it), and after that by its ``used``
        generation alone, which :meth:`_live` consults. So a checkpoint of a list that grew by one item
        registers about one item's chunks, not the whole list's.
        """
        size = 0
        covered: list[_Prefix | _Tree] = []
        for g in groups:
            if self._groups.get(id(g)) is not g:
                chunks = {**g.chunks, **chunks}  # children (the items) before parents
                self._groups[id(g)] = g
            else:
                covered.append(g)
                size += g.size
            g.used = gen
        gen_of = self._gen_of
        if len(chunks) <= 8 and len(covered) <= 1:
            # The usual checkpoint of a list that grew: its new items, last page and root.
            held = covered[0].chunks if covered else _NONE_HELD
            missing: list[tuple[bytes, bytes]] = []
            for h, blob in chunks.items():  # children before parents
                if h not in gen_of:
                    missing.append((h, blob))
                if h not in held:  # (a group's new items are in both)
                    size += len(blob)
                gen_of[h] = gen
            return missing, size
        # In C, one lookup per chunk (set.difference probes a dict argument; the reverse,
        # keys() - keys(), would iterate over every chunk ever stored).
        new = set(chunks).difference(gen_of)
        missing = []
        if new:
            # In the order of ``chunks`` (children before parents). The new ones are mostly
            # last: look there first; else (a list that shifted) go through them all.
            for h in islice(reversed(chunks), 2 * len(new) + 8):
                if h in new:
                    missing.append((h, chunks[h]))
            if len(missing) == len(new):
                missing.reverse()
            else:
                missing = [(h, blob) for h, blob in chunks.items() if h in new]
        gen_of.update(dict.fromkeys(chunks, gen))
        if covered:  # a group's new items are in both
            rest = set(chunks)
            for g in covered:
                rest = rest.difference(g.chunks)  # in C, probing g.chunks (see above)
            size += sum(map(len, map(chunks.__getitem__, rest)))
        else:
            size += sum(map(len, chunks.values()))
        return missing, size

    def _settle(self, group: _Prefix | _Tree) -> None:
        """Stop registering ``group`` as one: its chunks' own generations take over its ``used``.

        (Called when the walker no longer uses it, so that only current groups stay, one per
        list at most; dropping it only once no checkpoint in the ring used it would be as
        correct, but would let the groups pile up when a list is edited often.)
        """
        if self._groups.pop(id(group), None) is not group:
            return
        gen_of, used = self._gen_of, group.used
        for h in group.chunks:
            if gen_of.get(h, used) < used:  # (a forgotten chunk stays forgotten)
                gen_of[h] = used

    # ------------------------------------------------------------ keeping chunks alive
    def _floor(self) -> int:
        """Oldest seq still in the ring (the open block counts)."""
        blocks = self._rec.ring.blocks
        return blocks[0][3] if blocks else 0

    def _live(self, h: bytes, floor: int) -> bool:
        gen_seq = self._gen_seq
        s = gen_seq.get(self._gen_of.get(h, -1))
        if s is not None and s >= floor:
            return True
        for g in self._groups.values():  # a few at most: one per list (or big dict) the walker tracks
            if h in g.chunks:
                s = gen_seq.get(g.used)
                if s is not None and s >= floor:
                    return True
        return False

    def _forget(self, h: bytes) -> None:
        for key in [key for key, g in self._groups.items() if h in g.chunks]:
            del self._groups[key]  # its next use must store this chunk again
        self._seq_of.pop(h, None)
        self._gen_of.pop(h, None)
        blob = self._data.pop(h, None)
        if blob is not None:
            self._bytes -= len(blob)
            self._cbytes -= self._csize.pop(h, 0)

    def _retire_gens(self, floor: int) -> None:
        gens, gen_seq = self._gens, self._gen_seq
        while gens and gen_seq.get(gens[0], 0) < floor:
            del gen_seq[gens.popleft()]
        for key in [key for key, g in self._groups.items() if g.used not in gen_seq]:
            del self._groups[key]  # no checkpoint in the ring uses it as a group any more

    def _on_flush(self, at_risk: list[tuple[int, int]]) -> None:
        """Re-emit every live chunk whose latest copy the next flush may overwrite."""
        rec = self._rec
        if rec.closed:
            return
        ring = rec.ring
        heap = self._heap
        for _ in range(16):  # re-emission may flush again (without calling us): loop until quiet
            block_seq = ring.block_seq
            floor = self._floor()
            self._retire_gens(floor)
            risk = max((last for _, last in at_risk), default=-1)
            if heap and heap[0][0] <= risk:
                risk = self._widened_risk(risk)
            while heap and heap[0][0] <= risk:
                seq, h = heapq.heappop(heap)
                if self._seq_of.get(h) != seq:
                    continue  # stale entry: re-emitted or forgotten since
                if not self._live(h, floor):
                    self._forget(h)
                    continue
                new = rec.append_locked("chunk", {"hash": h.hex(), "data": self._data[h]})
                self._seq_of[h] = new
                heapq.heappush(heap, (new, h))
                self.reemitted += 1
            if ring.block_seq == block_seq:
                return
            at_risk = ring.at_risk()

    def _widened_risk(self, risk: int) -> int:
        """The last seq at risk once the re-emission itself is counted.

        Re-emitting the live chunks of the blocks the next flush overwrites writes about their
        ring bytes again, and flushes as it goes: each of those flushes overwrites the blocks
        after them, whose live chunks must be written again before it, not after. (When the
        live chunks are more than half the ring, the blocks at risk can hold more than one
        block's worth of them.) So the window is widened until it holds what re-emitting
        everything in it writes.
        """
        ring, heap, seq_of, csize = self._rec.ring, self._heap, self._seq_of, self._csize
        extra = 0
        for _ in range(8):
            volume = sum(csize.get(h, 0) for seq, h in heap_upto(heap, risk) if seq_of.get(h) == seq)
            if volume <= extra:
                break
            extra = volume
            risk = max((last for _, last in ring.at_risk(extra)), default=risk)
        return risk

    def _shrink(self, current: int, incoming: int = 0) -> None:
        """Over budget (with ``incoming`` estimated bytes still to be written): drop dead
        chunks, then give up the oldest checkpoints until the live chunks fit in the budget
        less :data:`_SHRINK_MARGIN` of it.

        One pass over the chunks, whatever the number of checkpoints given up: each chunk is
        freed once the newest checkpoint still using it (through its own generation or a
        group's) is given up, so the bytes each given-up checkpoint frees are known in
        advance. (A pass per checkpoint given up cost seconds a checkpoint for a long
        conversation.) The margin makes this happen once in a while, not at every
        checkpoint that passes the budget by a few bytes.
        """
        floor = self._floor()
        self._retire_gens(floor)
        gens, gen_seq, csize = self._gens, self._gen_seq, self._csize
        newest = {h: g if gen_seq.get(g, -1) >= floor else -1 for h, g in self._gen_of.items()}
        for group in self._groups.values():
            used = group.used
            if gen_seq.get(used, -1) >= floor:
                for h in group.chunks:
                    if newest.get(h, used) < used:
                        newest[h] = used
        freed: dict[int, int] = {}  # generation -> bytes freed once it is given up
        dead: list[bytes] = []
        for h, g in newest.items():
            if g < 0:
                dead.append(h)
            else:
                freed[g] = freed.get(g, 0) + csize.get(h, 0)
        for h in dead:
            self._forget(h)
        if self._cbytes + incoming <= self.budget:
            return
        goal, cbytes, first = self.budget - self.budget // _SHRINK_MARGIN, self._cbytes, None
        while cbytes + incoming > goal and gens and gens[0] != current:
            gen = gens.popleft()
            del gen_seq[gen]
            self.abandoned += 1
            cbytes -= freed.get(gen, 0)
            first = gen
        if first is not None:
            for h, g in newest.items():
                if 0 <= g <= first:
                    self._forget(h)

    @property
    def live_bytes(self) -> int:
        """Bytes of chunk data held in memory."""
        return self._bytes

    @property
    def live_ring_bytes(self) -> int:
        """Estimated bytes those chunks take in the ring (compressed), compared to :attr:`budget`."""
        return self._cbytes


def heap_upto(heap: list[tuple[int, bytes]], last: int) -> Iterator[tuple[int, bytes]]:
    """The entries of the min-heap ``heap`` whose seq is at most ``last``, in no order.

    A walk down from the root that stops at every entry past ``last`` (its children come
    later still): it costs the entries at risk, a few blocks' worth, not the whole heap,
    which holds an entry for every live chunk in the ring. (A pass over the whole heap at
    every flush, with a 64 MiB ring of a long run, made the agent several times slower
    once the ring had wrapped.)
    """
    n = len(heap)
    todo = [0] if n and heap[0][0] <= last else []
    while todo:
        i = todo.pop()
        yield heap[i]
        for child in (2 * i + 1, 2 * i + 2):
            if child < n and heap[child][0] <= last:
                todo.append(child)


def _spread(blobs: Iterable[bytes], n: int) -> list[bytes]:
    """At most _SAMPLE_CHUNKS of the ``n`` ``blobs``, evenly spread (a sample to compress)."""
    return list(islice(blobs, 0, None, max(1, n // _SAMPLE_CHUNKS)))


def _compress_ratio(blobs: list[bytes]) -> float:
    """How well this data compresses with LZ4 (compressed / raw), measured in one call."""
    raw = b"".join(blobs)
    if len(raw) > _SAMPLE_MAX:  # (a big state's sample)
        raw = raw[:_SAMPLE_MAX]
    if not raw:
        return 1.0
    import lz4.block

    return min(1.0, len(lz4.block.compress(raw, store_size=False)) / len(raw))


def _unbounded(redactor: Any) -> Any:
    """A view of ``redactor`` that does not truncate: a checkpoint must round-trip exactly.

    The recorder's redactor cuts strings and bytes to ``max_value`` and lists to 1000 items,
    right for events but not for state. Its :meth:`~flightrec.redact.Redactor.unbounded`
    twin shares its rules, caches and pseudonym key (so a secret gets the same pseudonym in
    a checkpoint as in an event) with those limits lifted.
    """
    return redactor.unbounded()


def store_for(recorder: Recorder) -> CheckpointStore:
    """The recorder's checkpoint store, created on first use."""
    return recorder.extension(CheckpointStore)


def checkpoint(state: Any, label: str | None = None) -> int | None:
    """Record a snapshot of the agent's state, deduplicated against earlier ones.

    ``state`` is any MessagePack-able structure (dicts, lists, strings, numbers, bytes);
    dataclasses and pydantic models are converted to dicts, tuples and sets to lists, and
    anything else is stored as its repr. It is redacted before it is encoded.

    Args:
        state: the state to record.
        label: a short name for this checkpoint, e.g. ``"after-plan"`` (redacted, and cut at
            256 characters).

    A state too large for the ring (its chunks over half of it) is not stored: its checkpoint
    event carries ``error`` instead, recorded as soon as packing shows the state is too large.

    Returns:
        The checkpoint event's seq (pass it to ``Recording.state_at``), or None when not
        recording, sampled out, or on an internal error (counted, never raised).
    """
    rec = api._recorder
    if rec is None:
        return None
    try:
        store = rec._extensions.get(CheckpointStore) or store_for(rec)
        if _checkpoint_entry is not None:
            return _checkpoint_entry(store, state, label)
        return store.checkpoint(state, label)
    except Exception:
        rec.errors += 1
        return None
