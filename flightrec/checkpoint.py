"""Deduplicated state checkpoints: chunking, the writer-side chunk store, rebuild and diff.

A checkpoint's state is encoded as MessagePack and split into content-addressed *chunks*:
list items and large values become chunks of their own, named by the xxh3-128 digest of
their (redacted) encoding; their parent holds a 16-byte reference instead. A chunk already
in the ring is referenced, not stored again, so checkpointing a 200-message conversation
that gained one message costs about one message.

Wire format (all inside ordinary events, see docs/FORMAT.md):

* ``"chunk"`` events ``{hash, data}``: ``data`` is the chunk's MessagePack encoding and
  ``hash`` the hex xxh3-128 digest of ``data``. The same chunk may appear several times
  (re-emitted copies); any copy serves.
* Inside chunk data, two MessagePack ext types: ``1`` (16 bytes) is a reference to the
  chunk with that digest; ``2`` holds an array ``[tag, part, ...]`` whose value is the
  concatenation of its parts' values (tag ``"s"`` str, ``"b"`` bytes, ``"l"`` list, ``"d"``
  dict): long lists are split into pages at content-defined boundaries (so that appending
  to, or dropping from the front of, a conversation changes only a page or two), long
  strings and bytes into fixed-size pieces.
* ``"checkpoint"`` events ``{label?, root, inline?, chunks, new, size, stored}``: ``root`` is
  the hex digest of the root chunk, ``inline`` (when the root is stored for the first time)
  the root chunk's data, a copy of that chunk like a ``"chunk"`` event's; ``chunks`` the
  digests of the chunk events this checkpoint stored for the first time (at most 32
  listed; ``new`` counts them all, and an inline root), ``size`` the bytes of the state's
  chunks and ``stored`` the bytes this checkpoint added.

Invariant: every checkpoint in the ring (and so in every dump) can be rebuilt from the ring
alone. The writer keeps every chunk still referenced by a checkpoint in the ring in memory
(bounded by the ring's size) and, from a flush listener, re-emits a chunk whose latest copy
lies in a block the next flush may overwrite.
"""

from __future__ import annotations

import dataclasses
import heapq
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import chain, compress, count, islice
from operator import itemgetter, not_
from typing import TYPE_CHECKING, Any

import msgspec

from . import api
from .context import current_span
from .encode import safe_repr
from .errors import MissingChunk
from .fastpath import load_native

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = [
    "EXT_CAT",
    "EXT_REF",
    "CheckpointStore",
    "ChunkIndex",
    "DiffEntry",
    "checkpoint",
    "diff_states",
    "pack_state",
]

EXT_REF = 1
"""MessagePack ext type of a chunk reference (16 bytes: the chunk's xxh3-128 digest)."""
EXT_CAT = 2
"""MessagePack ext type of a concatenation node: an array ``[tag, part, ...]``."""

_REF_HEAD = b"\xd8\x01"  # fixext 16, type 1
_REF_LEN = 18
MIN_CHUNK = 192
"""Values whose encoding is shorter than this stay inline in their parent."""
MAX_CHUNK = 16 * 1024
"""Largest chunk (encoded bytes); bigger values are split."""
PAGE_MAX = 64
"""Most parts per list/dict page or concatenation node."""
_BOUNDARY_MASK = 15  # a content-defined boundary after 1 part in 16 on average
_WHOLE_MAX_LEN = 32  # containers longer than this are walked, not encoded whole first
_MAX_DEPTH = 48
_CHUNK_LIST_MAX = 32
_LABEL_MAX = 256  # characters of a checkpoint's label
_CHUNK_OVERHEAD = 64  # a chunk event's framing, besides its data
_PENDING = 1 << 62
_NONE_HELD: dict[bytes, bytes] = {}
_INLINE_TAIL_MAX = 2048  # the last page of a growing list stays inline in the root up to this size
_SCALARS = frozenset({str, int, float, bool, type(None), bytes})
_TAGS = {"s", "b", "l", "d"}
_TAG_ENCODED = {tag: msgspec.msgpack.encode(tag) for tag in _TAGS}


# ============================================================================ packing


def _array_head(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def _map_head(n: int) -> bytes:
    if n < 16:
        return bytes((0x80 | n,))
    if n < 0x10000:
        return b"\xde" + n.to_bytes(2, "big")
    return b"\xdf" + n.to_bytes(4, "big")


def _ext(code: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x100:
        return b"\xc7" + bytes((n, code)) + body
    if n < 0x10000:
        return b"\xc8" + n.to_bytes(2, "big") + bytes((code,)) + body
    return b"\xc9" + n.to_bytes(4, "big") + bytes((code,)) + body


def _enc_hook(obj: Any) -> Any:
    """Convert what msgspec does not know: dataclasses, pydantic models, sets; else repr."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name, None) for f in dataclasses.fields(obj)}
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        try:
            return dump()
        except Exception:
            pass
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    return safe_repr(obj)


def _to_builtin(obj: Any) -> Any:
    """One level of conversion for the walk (dataclass -> dict, model -> dict, set -> list)."""
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    return _enc_hook(obj)


_HASHES: tuple[Callable[[bytes], bytes], Callable[[bytes], int]] | None = None


def _hashes() -> tuple[Callable[[bytes], bytes], Callable[[bytes], int]]:
    """xxh3-128 (digest) and xxh3-64 (int), imported on first use: `import flightrec` stays light."""
    global _HASHES
    if _HASHES is None:
        import xxhash

        _HASHES = (xxhash.xxh3_128_digest, xxhash.xxh3_64_intdigest)
    return _HASHES


class _Packer:
    """Turns one state into chunks. Not thread-safe: one per checkpoint call."""

    __slots__ = ("_encode", "_h64", "_h128", "chunks", "max_chunk", "trail")

    def __init__(self, max_chunk: int, encode: Callable[[Any], bytes] | None = None) -> None:
        """``encode``: the caller's encoder (with ``_enc_hook``), reused across checkpoints."""
        h128, h64 = _hashes()
        self._encode = encode if encode is not None else msgspec.msgpack.Encoder(enc_hook=_enc_hook).encode
        self._h128 = h128
        self._h64 = h64
        self.max_chunk = max_chunk
        self.chunks: dict[bytes, bytes] = {}
        """digest -> data of every chunk the state references, children before parents."""
        self.trail: list[tuple[bytes, bytes]] | None = None
        """When set, every chunk registered (duplicates too) is also appended here."""

    def reset(self) -> _Packer:
        """Start on a new state (the walker reuses its packer: one fewer object a checkpoint)."""
        self.chunks = {}
        self.trail = None
        return self

    def chunk(self, data: bytes) -> bytes:
        """Register ``data`` as a chunk; return its digest."""
        h = self._h128(data)
        if h not in self.chunks:
            self.chunks[h] = data
        if self.trail is not None:
            self.trail.append((h, data))
        return h

    def ref_or_inline(self, inline: bytes) -> bytes:
        """``inline`` as a part of its parent: itself if small (or already a ref), else a ref."""
        if len(inline) < MIN_CHUNK or (len(inline) == _REF_LEN and inline[:2] == _REF_HEAD):
            return inline
        return self._ref(inline)

    def _ref(self, data: bytes) -> bytes:
        return _REF_HEAD + self.chunk(data)

    def _enc(self, value: Any) -> bytes:
        try:
            return self._encode(value)
        except Exception:  # e.g. an int beyond 64 bits, unencodable keys
            return self._encode(safe_repr(value))

    def item(self, value: Any, depth: int = 0) -> bytes:
        """The inline form of ``value`` inside its parent: small encodings inline, else a ref."""
        t = type(value)
        if (t is list or t is dict) and len(value) > _WHOLE_MAX_LEN and depth < _MAX_DEPTH:
            inline = self.split(value, depth)  # big container: walk it, don't encode it twice
        else:
            enc = self._enc(value)
            n = len(enc)
            if n < MIN_CHUNK:
                return enc
            if n <= self.max_chunk:
                return self._ref(enc)
            inline = self.split(value, depth)
        return self.ref_or_inline(inline)

    def split(self, value: Any, depth: int) -> bytes:
        """Inline encoding of a value too big for one chunk, its parts made chunks."""
        t = type(value)
        if depth >= _MAX_DEPTH:
            enc = self._enc(value)
            if len(enc) <= self.max_chunk:
                return enc
            return self._enc(safe_repr(value, self.max_chunk // 8))
        if t is dict:
            return self._dict(value, depth)
        if t is list or t is tuple:
            return self._list(value, depth)
        if t is str:
            return self._str(value)
        if t is bytes or t is bytearray or t is memoryview:
            return self._bytes(bytes(value))
        if t in _SCALARS:
            return self._enc(value)
        converted = _to_builtin(value)
        if type(converted) in (dict, list, str):
            return self.split(converted, depth + 1)
        return self._enc(safe_repr(value, self.max_chunk // 8))

    # ------------------------------------------------------------ containers
    def _list(self, value: list[Any] | tuple[Any, ...], depth: int) -> bytes:
        if all(type(x) in _SCALARS for x in value):
            enc = self._enc(list(value))
            if len(enc) <= self.max_chunk:
                return enc
            parts = [self.item(x, depth + 1) if type(x) is str or type(x) is bytes else self._enc(x) for x in value]
            return self.paged("l", parts, [self._part_key(p) for p in parts])
        # The hot loop of a growing conversation: one encode and one hash per item, inlined.
        d = depth + 1
        encode, h128, h64 = self._encode, self._h128, self._h64
        chunks, trail, max_chunk = self.chunks, self.trail, self.max_chunk
        parts = []
        keys: list[int] = []
        for x in value:
            t = type(x)
            e = None
            if not ((t is dict or t is list) and len(x) > _WHOLE_MAX_LEN):
                try:
                    e = encode(x)
                except Exception:
                    e = None
            if e is None or len(e) > max_chunk:
                p = self.item(x, d)
                parts.append(p)
                keys.append(p[-1] if len(p) == _REF_LEN and p[:2] == _REF_HEAD else h64(p))
            elif len(e) < MIN_CHUNK:
                parts.append(e)
                keys.append(h64(e))
            else:
                h = h128(e)
                if h not in chunks:
                    chunks[h] = e
                if trail is not None:
                    trail.append((h, e))
                parts.append(_REF_HEAD + h)
                keys.append(h[-1])
        return self.paged("l", parts, keys)

    def _dict(self, value: dict[Any, Any], depth: int) -> bytes:
        item = self.item
        d = depth + 1
        enc = self._enc
        parts: list[bytes] = []
        keys: list[int] = []
        h64 = self._h64
        for k, v in value.items():
            ke = enc(k)
            parts.append(ke + item(v, d))
            keys.append(h64(ke))
        return self.paged("d", parts, keys)

    def _part_key(self, part: bytes) -> int:
        if len(part) == _REF_LEN and part[:2] == _REF_HEAD:
            return part[-1]
        return self._h64(part)

    def paged(
        self, tag: str, parts: list[bytes], keys: list[int], prev: list[Any] | None = None, group: _Prefix | None = None
    ) -> bytes:
        """A list (tag "l") or dict ("d") from its parts: one container if it fits, else pages.

        A page ends after a part whose boundary key has its low bits zero (content-defined,
        so that inserting or dropping parts disturbs only the pages around them), after
        ``PAGE_MAX`` parts, or before it would outgrow a chunk.

        ``prev`` (kept by the caller between checkpoints, updated here) remembers the last
        paging of the same container: when its parts are a prefix of ``parts`` (a list that
        grew), every page but its last is reused as is; else every page whose parts are all
        still there, in order (items dropped or inserted elsewhere), is found again. The
        last page of such a list, which changes with every item appended, stays inline in
        the root when small (no chunk of its own, stored anew each time). With ``group``
        (the walker's prefix of this list, taken over as a group), every other page is
        handed to the group, which the store registers as one: a page reused then needs no
        registration of its own.
        """
        head = _array_head if tag == "l" else _map_head
        n = len(parts)
        if n <= PAGE_MAX and sum(map(len, parts)) + 5 <= self.max_chunk:
            return head(n) + b"".join(parts)
        if prev and tag == "l" and _paged_grown is not None:
            # A list that grew since its last paging (the usual checkpoint): the code below,
            # in C (see _paging.c); None when prev is not that case.
            grown: bytes | None = _paged_grown(self, parts, keys, prev, group)
            if grown is not None:
                return grown
        limit = self.max_chunk - 8
        # Then no page can outgrow a chunk. A list's parts are inline encodings shorter than
        # MIN_CHUNK or refs (see item()), so its bound needs no pass over them.
        fits = (tag == "l" and limit >= MIN_CHUNK * PAGE_MAX) or max(map(len, parts)) * PAGE_MAX <= limit
        ref, join, chunks, trail = self._ref, b"".join, self.chunks, self.trail
        pages: list[bytes] = []
        ends: list[int] = []  # where each page ends
        a = 0
        kept = given = 0
        old_chunks: list[tuple[bytes, bytes]] = []
        old_parts: list[bytes] = []
        moved: dict[int, tuple[int, int, int]] = {}  # id of a page's first part -> its (start, end, index)
        if prev and prev[0] == tag and prev[4] == fits:
            if len(prev[1]) <= n and prev[1] == parts[: len(prev[1])]:  # grown (or the same)
                old_pages, old_ends, old_chunks = prev[2], prev[3], prev[5]
                kept = len(old_pages) - 1  # the last page may grow: redo it
                pages, ends = old_pages[:kept], old_ends[:kept]
                a = ends[-1] if ends else 0
                if group is not None and prev[6][0] is group:
                    given = min(prev[6][1], kept)  # the group holds these already
                for h, blob in old_chunks[given:kept]:
                    if h not in chunks:
                        chunks[h] = blob
                    if trail is not None:
                        trail.append((h, blob))
            else:
                # Items dropped, inserted or edited (a sliding context window): the
                # boundaries are content-defined, so most pages cut the same parts as last
                # time. Such a page is found again by its first part (the same object,
                # memoized) and checked whole (in C), not joined and hashed again.
                old_parts, old_chunks = prev[1], prev[5]
                start = 0
                for x, end in enumerate(prev[3][: len(old_chunks)]):  # (not an inline last page)
                    moved[id(old_parts[start])] = (start, end, x)
                    start = end
        # after each part whose key has its low bits zero (iterated in C: no bytecode per part)
        cuts = list(compress(count(a + 1), map(not_, map(_BOUNDARY_MASK.__and__, keys[a:]))))
        if not cuts or cuts[-1] != n:
            cuts.append(n)
        for b in cuts:
            while a < b:
                e = min(b, a + PAGE_MAX)
                if not fits:
                    size = len(parts[a])
                    k = a + 1
                    while k < e and size + len(parts[k]) <= limit:
                        size += len(parts[k])
                        k += 1
                    e = k
                seen = moved.get(id(parts[a])) if moved else None
                if seen is not None and old_parts[seen[0] : seen[1]] == parts[a:e]:
                    h, blob = old_chunks[seen[2]]
                    if h not in chunks:
                        chunks[h] = blob
                    if trail is not None:
                        trail.append((h, blob))
                    pages.append(_REF_HEAD + h)
                else:
                    page = head(e - a) + join(parts[a:e])
                    inline_tail = e == n and prev is not None and len(page) <= _INLINE_TAIL_MAX
                    pages.append(page if inline_tail else ref(page))
                ends.append(e)
                a = e
        if prev is not None:
            page_chunks = old_chunks[:kept]
            for page in pages[kept:]:
                if page[:2] == _REF_HEAD:  # (else the inline last page: never a ref's head)
                    page_chunks.append((page[2:], chunks[page[2:]]))
            stable = 0
            if group is not None:  # every page but the last stays while the list only grows
                stable = min(len(page_chunks), len(pages) - 1)
                group.hold(page_chunks[given:stable])
            prev[:] = [tag, parts, pages, ends, fits, page_chunks, (group, stable)]
        return self._cat(tag, pages)

    def _cat(self, tag: str, parts: list[bytes]) -> bytes:
        """A concatenation node over ``parts`` (refs or inline values), grouped into a tree."""
        tag_enc = _TAG_ENCODED[tag]
        while True:
            if len(parts) <= PAGE_MAX:
                body = b"".join(parts)
                if len(body) + 16 <= self.max_chunk:
                    return _ext(EXT_CAT, _array_head(len(parts) + 1) + tag_enc + body)
            groups: list[bytes] = []
            cur: list[bytes] = []
            size = 0
            limit = self.max_chunk - 32
            for part in parts:
                if cur and size + len(part) > limit:
                    groups.append(self._ref(_ext(EXT_CAT, _array_head(len(cur) + 1) + tag_enc + b"".join(cur))))
                    cur, size = [], 0
                cur.append(part)
                size += len(part)
                if self._part_key(part) & _BOUNDARY_MASK == 0 or len(cur) >= PAGE_MAX:
                    groups.append(self._ref(_ext(EXT_CAT, _array_head(len(cur) + 1) + tag_enc + b"".join(cur))))
                    cur, size = [], 0
            if cur:
                groups.append(self._ref(_ext(EXT_CAT, _array_head(len(cur) + 1) + tag_enc + b"".join(cur))))
            if len(groups) >= len(parts):  # no progress (astronomically unlikely): group by count
                groups = [
                    self._ref(_ext(EXT_CAT, _array_head(len(g) + 1) + tag_enc + b"".join(g)))
                    for g in (parts[i : i + 16] for i in range(0, len(parts), 16))
                ]
            parts = groups

    def _str(self, value: str) -> bytes:
        step = self.max_chunk - 16 if value.isascii() else (self.max_chunk - 16) // 4
        pieces = [self._ref(self._encode(value[i : i + step])) for i in range(0, len(value), step)]
        return self._cat("s", pieces)

    def _bytes(self, value: bytes) -> bytes:
        step = self.max_chunk - 16
        pieces = [self._ref(self._encode(value[i : i + step])) for i in range(0, len(value), step)]
        return self._cat("b", pieces)


def pack_state(state: Any, max_chunk: int = MAX_CHUNK) -> tuple[bytes, dict[bytes, bytes]]:
    """Split ``state`` into chunks, without redaction and without memo.

    Returns:
        The root chunk's digest and every chunk it needs (digest -> data), children first
        and the root last.
    """
    packer = _Packer(max_chunk)
    t = type(state)
    if t is dict or t is list or t is tuple:
        inline = packer.split(state, 0)
    else:
        inline = packer.item(state)
        if inline[:2] == _REF_HEAD and len(inline) == _REF_LEN:
            return inline[2:], packer.chunks
    root = packer.chunk(inline)
    return root, packer.chunks


_statecheck = load_native("_statecheck")
_dict_versions: Callable[[list[Any], int, int], bytes | None] | None = (
    _statecheck.dict_versions if _statecheck is not None else None
)
_same_versions: Callable[[list[Any], bytes | bytearray], bool] | None = (
    _statecheck.same_versions if _statecheck is not None else None
)

_paging = load_native("_paging")
_store = load_native("_store")
_emit_usual: Callable[..., Any] | None = _store.emit if _store is not None else None
_paged_grown: Callable[..., bytes | None] | None = _paging.paged_grown if _paging is not None else None
_walk_grown: Callable[..., bytes] | None = getattr(_paging, "walk_grown", None)

_checkpoint_usual: Callable[..., Any] | None = None
if _store is not None and _walk_grown is not None and _same_versions is not None and _dict_versions is not None:
    _checkpoint_usual = getattr(_store, "checkpoint", None)

_CONTAINERS = (dict, list, tuple)
_CONTAINER_TYPES = frozenset(_CONTAINERS)
_ENTRY_PART, _ENTRY_CHUNKS, _ENTRY_KEY = itemgetter(0), itemgetter(1), itemgetter(3)  # of a memo entry
_ITEM = object()  # memo-context marker of list items (never equal to a dict key)
_BLOCK = 16  # list items recognized together, by index-aligned blocks
_BLOCKS = object()  # memo-context marker of such blocks
_PROBE = "x"
if _checkpoint_usual is not None:
    _store.configure(_walk_grown, _same_versions, _dict_versions, _ITEM, _LABEL_MAX)


@dataclass(slots=True, eq=False)
class _Prefix:
    """What a list's first ``len(parts)`` items packed to at a checkpoint.

    Recognized again at the next checkpoint by ``tags`` when every item was a plain dict
    (see ``_statecheck``: O(1) per item, no encoding), else by ``digest``. A recognized
    prefix is extended in place as the list grows, and the store registers its ``chunks``
    as one *group* (see :meth:`CheckpointStore._register`) rather than one by one, so that
    a checkpoint of a list that gained an item costs about that item (plus, without tags,
    one hash of the list's raw encoding).
    """

    digest: bytes | None  # xxh3-128 of the items' raw encodings, concatenated (None: see tags)
    parts: list[bytes]  # one part per item
    keys: list[int]  # their page-boundary keys
    chunks: dict[bytes, bytes]  # every chunk the parts need, in order
    gen: int  # the last checkpoint that used it (the walker's count)
    tags: bytearray | None = None  # the items' dict version tags, 8 bytes each
    size: int = dataclasses.field(init=False)  # bytes of ``chunks``' data
    used: int = 0  # the store's: the last checkpoint generation that used it as a group

    def __post_init__(self) -> None:
        self.size = sum(map(len, self.chunks.values()))

    @property
    def length(self) -> int:
        """How many items."""
        return len(self.parts)

    def hold(self, pairs: Iterable[tuple[bytes, bytes]]) -> None:
        """Add chunks that the prefix's checkpoint needs (new items' chunks, stable pages)."""
        held = self.chunks
        for h, blob in pairs:
            if h not in held:
                held[h] = blob
                self.size += len(blob)


def _tag_keys(tags: bytes) -> list[int]:
    """The dict version tags in ``tags`` (8 bytes each, see ``_statecheck``) as ints."""
    if len(tags) <= 8:  # the usual turns, one message or none: without the memoryview's cost
        return [int.from_bytes(tags, sys.byteorder)] if tags else []
    return memoryview(tags).cast("Q").tolist()


def _prefix_hasher(encode: Callable[[Any], bytes], v: Any, a: int, b: int, hasher: Any = None) -> Any:
    """An xxh3-128 hasher fed the raw encodings of ``v[a:b]``, concatenated (None if unencodable).

    The items are encoded as one list in one C call and its array header is skipped:
    MessagePack is self-delimiting, so the concatenation identifies the items exactly, and
    the hash of a longer prefix continues from a shorter one's.
    """
    import xxhash

    if hasher is None:
        hasher = xxhash.xxh3_128()
    if b > a:
        try:
            raw = encode(v[a:b])
        except Exception:
            return None
        n = b - a
        hasher.update(memoryview(raw)[1 if n < 16 else 3 if n < 0x10000 else 5 :])
    return hasher


class _Walker:
    """Packs raw agent state with redaction, memoizing the redacted form of unchanged parts.

    Redaction is the expensive part of a checkpoint (a Python walk of every value), and
    most of a growing state is unchanged since the previous checkpoint. The walker descends
    the state's big containers itself and redacts each *unit* below them (a list item or a
    dict value) on its own, with its path, so that the redactor sees the same context as in
    a whole walk. A unit is recognized by the digest of its *raw* encoding (one C-speed
    encode and hash, exact down to types and nesting, no reference to the agent's objects):
    a unit seen before at the same place reuses its redacted, packed form. The value of a
    secret-named key is never descended into: it goes to the redactor whole.
    """

    def __init__(self, redactor: Any, max_chunk: int) -> None:
        self.redactor = redactor
        self.max_chunk = max_chunk
        # (path, slot) -> raw digest -> [part, chunks, gen, boundary key]; slot: _ITEM or the
        # dict key; (path, _BLOCKS) -> (start index, raw digest) -> [parts, chunks, gen, keys]
        self._memo: dict[tuple[str, Any], dict[Any, list[Any]]] = {}
        self._plain: dict[tuple[str, Any], bool] = {}
        self._paging: dict[str, list[Any]] = {}  # path -> the last paging of that list (see _Packer.paged)
        # path -> [gen, {dict version tag -> memo entry}] of that list's items at the last
        # checkpoint that looked them up by tag (see _by_tag), and of the items appended since
        self._tagged: dict[str, list[Any]] = {}
        # path -> _Prefix of that list at the last checkpoint (see _walk)
        self._prefix: dict[str, _Prefix] = {}
        self._gen = 0
        self._encode = msgspec.msgpack.Encoder(enc_hook=_enc_hook).encode
        self._packer = _Packer(max_chunk, self._encode)
        self.groups: list[_Prefix] = []
        """The prefixes the last :meth:`pack` reused as groups: their chunks are not in its result."""
        self.retired: list[_Prefix] = []
        """Prefixes dropped or replaced since the store last took this list."""
        self.hits = 0
        self.misses = 0

    def pack(self, state: Any) -> tuple[bytes, dict[bytes, bytes]]:
        """Redact and split ``state``; see :func:`pack_state`.

        The chunks of the prefixes in :attr:`groups` are left out of the result.
        """
        self._gen += 1
        self.groups = []
        packer = self._packer.reset()
        if type(state) not in _CONTAINERS and (
            dataclasses.is_dataclass(state) or callable(getattr(state, "model_dump", None))
        ):
            state = _to_builtin(state)
        if type(state) in _CONTAINERS:
            inline = self._walk(packer, state, "", 0)
        else:
            inline = packer.item(self.redactor.redact(state))
            if len(inline) == _REF_LEN and inline[:2] == _REF_HEAD:
                return inline[2:], packer.chunks
        root = packer.chunk(inline)
        if self._gen % 8 == 0:  # forget what the last 8 checkpoints did not use
            old = self._gen - 8
            memo = {}
            for ctx, entries in self._memo.items():
                kept = {k: e for k, e in entries.items() if e[2] > old}
                if kept:
                    memo[ctx] = kept
            self._memo = memo
            self._paging = {k: e for k, e in self._paging.items() if e and e[-1] > old}
            self._tagged = {k: e for k, e in self._tagged.items() if e[0] > old}
            self.retired.extend(e for e in self._prefix.values() if e.gen <= old)
            self._prefix = {k: e for k, e in self._prefix.items() if e.gen > old}
        return root, packer.chunks

    def _walkable(self, x: Any, depth: int) -> bool:
        t = type(x)
        if t is dict:
            vals: Any = x.values()
        elif t is list or t is tuple:
            vals = x
        else:
            return False
        if depth >= 24 or (depth >= 2 and len(x) <= _WHOLE_MAX_LEN):
            return False
        return not _CONTAINER_TYPES.isdisjoint(map(type, vals))  # in C, stops at the first container

    def _plain_key(self, path: str, key: str) -> bool:
        """False if the redactor replaces ``key``'s value wholesale (a secret-named key).

        Probed once per place with a one-character value, which no pattern rule touches:
        only a key rule (or a user callback) changes it. An allow-listed key counts as
        plain: the walker then redacts below it, which errs on the side of redacting.
        """
        c = self._plain.get((path, key))
        if c is None:
            out = self.redactor.redact({key: _PROBE}, path)
            c = isinstance(out, dict) and out.get(key) == _PROBE
            if len(self._plain) > 4096:
                self._plain.clear()
            self._plain[(path, key)] = c
        return c

    def _context(self, path: str, slot: Any) -> dict[Any, list[Any]]:
        memo = self._memo.get((path, slot))
        if memo is None:
            memo = self._memo[(path, slot)] = {}
        return memo

    def _walk(self, packer: _Packer, v: Any, path: str, depth: int) -> bytes:
        """Inline encoding of a walked container (its units redacted, packed or memoized)."""
        if type(v) is list and packer.trail is None and _same_versions is not None:
            group = self._prefix.get(path)
            if (
                group is not None
                and group.tags is not None
                and len(v) >= len(group.parts)
                and _same_versions(v, group.tags)
            ):
                tags = _dict_versions(v, len(group.parts), len(v))  # type: ignore[misc]
                if tags is not None:
                    if _walk_grown is not None:  # (the same, in C: see _paging.c)
                        return _walk_grown(self, packer, v, path, group, tags, _ITEM)  # type: ignore[no-any-return]
                    return self._grown(packer, v, path, group, tags)
        parts: list[bytes] = []
        keys: list[int] = []
        h64, h128, encode = packer._h64, packer._h128, self._encode
        d = depth + 1
        gen = self._gen
        chunks = packer.chunks
        if type(v) is dict:
            for k, x in v.items():
                if type(k) is str and self._walkable(x, d) and self._plain_key(path, k):
                    ke = encode(k)
                    child = f"{path}.{k}" if path else k
                    parts.append(ke + packer.ref_or_inline(self._walk(packer, x, child, d)))
                    keys.append(h64(ke))
                    continue
                entry = None
                memo = self._context(path, k)
                try:
                    raw = h128(encode(x))
                except Exception:
                    raw = None
                if raw is not None:
                    entry = memo.get(raw)
                if entry is None:
                    entry = self._unit(packer, x, path, k, False, memo, raw)
                else:
                    entry[2] = gen
                    chunks.update(entry[1])
                    if packer.trail is not None:
                        packer.trail.extend(entry[1])
                    self.hits += 1
                parts.append(entry[0])
                keys.append(entry[3])
            return packer.paged("d", parts, keys)
        # The hot loop. Most of a growing list is unchanged since the last checkpoint: the
        # items it had then are recognized, and their packing taken over whole, by their
        # dicts' version tags when they are plain dicts (no encoding: see _statecheck), else
        # by one encode and hash; the others by aligned blocks of _BLOCK items (found again
        # after an edit), then one by one.
        memo = self._memo.get((path, _ITEM)) or self._context(path, _ITEM)
        outer = packer.trail
        n = len(v)
        prefix = known = self._prefix.get(path)
        hasher = None
        # The prefix, found unchanged, taken over as a group (its chunks go to the store as
        # one, and it is extended in place); not inside a memoized unit (outer), whose trail
        # must list every chunk.
        group = None
        tags = None  # the tags of the items not in a prefix, read before they are packed
        if prefix is not None and n >= len(prefix.parts):
            if prefix.tags is not None:
                if outer is None and type(v) is list and _same_versions is not None and _same_versions(v, prefix.tags):
                    group = prefix
            else:
                hasher = _prefix_hasher(encode, v, 0, len(prefix.parts))
                if hasher is not None and hasher.digest() != prefix.digest:
                    hasher = None
                elif hasher is not None and outer is None:
                    group = prefix
        if group is not None:
            i = len(group.parts)
            parts.extend(group.parts)
            keys.extend(group.keys)
            self.hits += i
            self.groups.append(group)
            done = {}  # the new items' chunks
        elif hasher is not None and prefix is not None:
            i = len(prefix.parts)
            parts.extend(prefix.parts)
            keys.extend(prefix.keys)
            chunks.update(prefix.chunks)
            if outer is not None:
                outer.extend(prefix.chunks.items())
            self.hits += i
            done = prefix.chunks.copy()  # every chunk the items so far need, in order
        else:
            i = 0
            prefix = None
            if outer is None and type(v) is list and _dict_versions is not None:
                tags = _dict_versions(v, 0, n)
            hasher = _prefix_hasher(encode, v, 0, 0) if tags is None else None
            done = {}
        resume = i
        if tags is not None:
            # Plain dicts (their tags say so): no container to descend into, and no aligned
            # block to find again; each is a unit of its own.
            # (A group with tags whose new items have tags too went to _grown.) Maybe shifted
            # (a sliding context window): found by their tags first.
            appended: list[tuple[bytes, bytes]] = []
            packer.trail = appended
            try:
                entries = self._by_tag(packer, v, path, memo, tags, appended)
                parts.extend(map(_ENTRY_PART, entries))
                keys.extend(map(_ENTRY_KEY, entries))
            finally:
                packer.trail = outer
            done.update(appended)
            i = n
        if i < n:
            blocks = self._context(path, _BLOCKS)
        while i < n:
            j = min(i - i % _BLOCK + _BLOCK, n)
            braw = None
            if j - i == _BLOCK:
                try:
                    braw = h128(encode(v[i:j]))
                except Exception:
                    braw = None
                be = blocks.get((i, braw)) if braw is not None else None
                if be is not None:
                    be[2] = gen
                    parts.extend(be[0])
                    keys.extend(be[3])
                    chunks.update(be[1])
                    if outer is not None:
                        outer.extend(be[1])
                    done.update(be[1])
                    self.hits += _BLOCK
                    i = j
                    continue
            start = len(parts)
            trail: list[tuple[bytes, bytes]] = []
            packer.trail = trail
            try:
                for k in range(i, j):
                    x = v[k]
                    t = type(x)
                    if (
                        (t is dict or t is list or t is tuple)
                        and (d < 2 or len(x) > _WHOLE_MAX_LEN)
                        and self._walkable(x, d)
                    ):
                        part = packer.ref_or_inline(self._walk(packer, x, f"{path}[{k}]", d))
                        parts.append(part)
                        keys.append(part[-1] if len(part) == _REF_LEN and part[:2] == _REF_HEAD else h64(part))
                        continue
                    entry = self._item(packer, x, path, k, memo, trail)
                    parts.append(entry[0])
                    keys.append(entry[3])
            finally:
                packer.trail = outer
            if outer is not None:
                outer.extend(trail)
            if braw is not None:
                blocks[(i, braw)] = [tuple(parts[start:]), tuple(trail), gen, tuple(keys[start:])]
            done.update(trail)
            i = j
        if group is not None:
            group.gen = gen
            if n > resume:  # extend it in place, if the new items can be vouched for as it was
                if group.tags is None and hasher is not None:
                    hasher = _prefix_hasher(encode, v, resume, n, hasher)
                vouched = True
                if group.tags is not None and tags is not None:
                    group.tags += tags
                elif group.tags is None and hasher is not None:
                    group.digest = hasher.digest()
                else:
                    del self._prefix[path]  # it cannot vouch for them: start afresh next time
                    vouched = False
                if vouched:
                    group.parts.extend(parts[resume:])
                    group.keys.extend(keys[resume:])
                    group.hold(done.items())
        elif prefix is not None and n == resume:
            prefix.gen = gen  # nothing new since
        elif n and tags is not None:
            self._prefix[path] = _Prefix(None, parts[:], keys[:], done, gen, bytearray(tags))
        elif n and hasher is not None:
            hasher = _prefix_hasher(encode, v, resume, n, hasher)
            if hasher is not None:
                self._prefix[path] = _Prefix(hasher.digest(), parts[:], keys[:], done, gen)
        if known is not None and self._prefix.get(path) is not known:
            self.retired.append(known)  # replaced or dropped: the store settles its group
        return self._page(packer, path, parts, keys, group)

    def _grown(self, packer: _Packer, v: list[Any], path: str, group: _Prefix, tags: bytes) -> bytes:
        """:meth:`_walk` of a list that grew: the usual checkpoint of a conversation.

        Its first items are ``group``'s, unchanged (their dict version tags say so), and the
        others are plain dicts with ``tags``. The group is taken over whole and extended in
        place by the new items, each packed on its own (or found in the memo).
        """
        gen = self._gen
        i = len(group.parts)
        self.hits += i
        self.groups.append(group)
        group.gen = gen
        parts, keys = group.parts, group.keys
        if len(v) > i:
            memo = self._memo.get((path, _ITEM)) or self._context(path, _ITEM)
            appended: list[tuple[bytes, bytes]] = []  # the new items' chunks
            packer.trail = appended
            try:
                added = [self._item(packer, v[k], path, k, memo, appended) for k in range(i, len(v))]
            finally:
                packer.trail = None
            new_parts, new_keys = list(map(_ENTRY_PART, added)), list(map(_ENTRY_KEY, added))
            parts, keys = parts + new_parts, keys + new_keys  # (the group's lists grow in place below)
            known_tags = self._tagged.get(path)
            if known_tags is not None:  # (kept current, for when items are dropped)
                known_tags[0] = gen
                if len(added) == 1:  # the usual turn (an update from a zip costs 4 times more)
                    known_tags[1][int.from_bytes(tags, sys.byteorder)] = added[0]
                else:
                    known_tags[1].update(zip(_tag_keys(tags), added, strict=True))
            group.tags += tags  # type: ignore[operator]
            group.parts.extend(new_parts)
            group.keys.extend(new_keys)
            group.hold(appended)
        else:
            parts, keys = parts[:], keys[:]
        return self._page(packer, path, parts, keys, group)

    def _page(self, packer: _Packer, path: str, parts: list[bytes], keys: list[int], group: _Prefix | None) -> bytes:
        """The list at ``path`` from its parts, paged as it was at the last checkpoint where it can be."""
        prev = self._paging.get(path)
        if prev is None:
            prev = self._paging[path] = []
        inline = packer.paged("l", parts, keys, prev, group)
        if prev:
            prev.append(self._gen)
        return inline

    def _by_tag(
        self,
        packer: _Packer,
        v: list[Any],
        path: str,
        memo: dict[Any, list[Any]],
        tags: bytes,
        trail: list[tuple[bytes, bytes]],
    ) -> list[list[Any]]:
        """The memo entries of ``v``'s items (plain dicts with these ``tags``), found by tag or packed now.

        The same tag is the same dict, unchanged since (see ``_statecheck``): an item of the
        last checkpoint that went this way is found so, without any encoding, and a list
        whose items shifted since (a sliding context window) costs a lookup per item, done
        in bulk in C. Others are found by content (``_item``).
        """
        tagged = _tag_keys(tags)
        last = self._tagged.get(path)
        entries: list[Any] = list(map(last[1].get, tagged)) if last is not None else [None] * len(tagged)
        found = len(entries)
        for k in list(compress(range(len(entries)), map(not_, entries))):  # the ones not found (in C)
            entries[k] = self._item(packer, v[k], path, k, memo, trail)
            found -= 1
        # Exactly this checkpoint's items (then the ones appended as a group): what it does
        # not hold ages out with it.
        self._tagged[path] = [self._gen, dict(zip(tagged, entries, strict=True))]
        held = list(chain.from_iterable(map(_ENTRY_CHUNKS, entries)))
        packer.chunks.update(held)
        trail.extend(held)
        self.hits += found
        return entries

    def _item(
        self,
        packer: _Packer,
        x: Any,
        path: str,
        k: int,
        memo: dict[Any, list[Any]],
        trail: list[tuple[bytes, bytes]],
    ) -> list[Any]:
        """List item ``x`` (index ``k``) as a memo entry: found by its raw digest, or packed now."""
        try:
            raw = packer._h128(self._encode(x))
        except Exception:  # e.g. an int beyond 64 bits
            return self._unit(packer, x, path, k, True, None, None)
        entry = memo.get(raw)
        if entry is None:
            return self._unit(packer, x, path, k, True, memo, raw)
        entry[2] = self._gen
        packer.chunks.update(entry[1])
        trail.extend(entry[1])
        self.hits += 1
        return entry

    def _unit(
        self,
        packer: _Packer,
        x: Any,
        path: str,
        slot: Any,
        is_item: bool,
        memo: dict[Any, list[Any]] | None,
        raw: bytes | None,
    ) -> list[Any]:
        """Redact and pack one list item (``slot`` its index) or dict value (``slot`` its key).

        Returns:
            ``[part, chunks, gen, boundary key]``, remembered in ``memo`` under ``raw``.
        """
        self.misses += 1
        trail: list[tuple[bytes, bytes]] = []
        outer = packer.trail
        packer.trail = trail
        try:
            if is_item:
                part = packer.item(self.redactor.redact(x, f"{path}[{slot}]"))
                boundary = part[-1] if len(part) == _REF_LEN and part[:2] == _REF_HEAD else packer._h64(part)
            else:
                out = self.redactor.redact({slot: x}, path)
                if isinstance(out, dict) and len(out) == 1:
                    k2, x2 = next(iter(out.items()))
                else:  # cannot happen with a sane redactor; keep the key, drop the value
                    k2, x2 = (slot if type(slot) is str else safe_repr(slot)), "<unredactable>"
                ke = self._encode(k2)
                part = ke + packer.item(x2)
                boundary = packer._h64(ke)
        finally:
            packer.trail = outer
        if outer is not None:
            outer.extend(trail)
        entry = [part, tuple(trail), self._gen, boundary]
        if memo is not None and raw is not None:
            memo[raw] = entry
        return entry


class _NoRedaction:
    """Stands in for the redactor when redaction is off."""

    @staticmethod
    def redact(value: Any, path: str = "") -> Any:
        return value


# ============================================================================ writer side


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
        self._seq_of: dict[bytes, int] = {}  # digest -> seq of its latest copy in the ring
        self._data: dict[bytes, bytes] = {}  # digest -> data (already redacted)
        self._csize: dict[bytes, int] = {}  # digest -> its estimated size in the ring
        self._gen_of: dict[bytes, int] = {}  # digest -> newest checkpoint generation using it
        self._gen_seq: dict[int, int] = {}  # live generation -> its checkpoint event's seq
        self._gens: deque[int] = deque()
        self._gen = 0
        self._heap: list[tuple[int, bytes]] = []  # (copy seq, digest), stale entries skipped
        # id -> a walker's prefix whose chunks are registered as one (see _register)
        self._groups: dict[int, _Prefix] = {}
        self._bytes = 0
        self._cbytes = 0
        redactor = _unbounded(recorder.redactor) if recorder.redactor is not None else _NoRedaction()
        # True of a label no rule can change (a C test; None: ask the recorder every time)
        self._clean_label = recorder.redactor.clean_test() if recorder.redactor is not None else None
        self._walker = _Walker(redactor, self.max_chunk)
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
            walker = self._walker
            try:
                if _checkpoint_usual is not None:
                    # A list that grew (the usual checkpoint): pack and _emit below, in C (see
                    # _store.c); NotImplemented, having changed nothing, when it is not that case.
                    seq = _checkpoint_usual(self, state, label, span, parent)
                    if seq is not NotImplemented:
                        return seq  # type: ignore[no-any-return]
                root, chunks = walker.pack(state)
                retired, walker.retired = walker.retired, []
                return self._emit(root, chunks, walker.groups, label, span, parent, retired)
            except BaseException:
                with self._rec._lock:  # (the flush listener iterates over the groups)
                    for g in walker.groups:  # the walker may have added chunks that are not stored
                        self._groups.pop(id(g), None)
                raise

    def _emit(
        self,
        root: bytes,
        chunks: dict[bytes, bytes],
        groups: list[_Prefix],
        label: Any,
        span: int | None,
        parent: int | None,
        retired: Iterable[_Prefix] = (),
    ) -> int | None:
        """Store a packed checkpoint's new chunks and its event, under the recorder's lock."""
        rec = self._rec
        data: dict[str, Any] = {"root": root.hex()}
        if label is not None:
            clean = self._clean_label
            if type(label) is str and len(label) <= _LABEL_MAX and clean is not None and clean(label):
                text = label  # the usual short label ("step 12"): nothing any rule could redact
            else:
                text = rec.redact_text(label if isinstance(label, str) else safe_repr(label, _LABEL_MAX))
            data["label"] = text if len(text) <= _LABEL_MAX else text[: _LABEL_MAX - 1] + "…"  # a name, not a payload
        if _emit_usual is not None and not retired:
            # The usual checkpoint (its group registered, a few new chunks): the code below
            # in C (see _store.c); NotImplemented when this is not that case.
            seq: int | None = _emit_usual(self, rec, root, chunks, groups, data, span, parent)
            if seq is not NotImplemented:
                return seq
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
        self, chunks: dict[bytes, bytes], gen: int, groups: Iterable[_Prefix] = ()
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
        covered: list[_Prefix] = []
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

    def _settle(self, group: _Prefix) -> None:
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
        for g in self._groups.values():  # a few at most: one per list the walker tracks
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
            volume = sum(csize.get(h, 0) for seq, h in heap if seq <= risk and seq_of.get(h) == seq)
            if volume <= extra:
                break
            extra = volume
            risk = max((last for _, last in ring.at_risk(extra)), default=risk)
        return risk

    def _shrink(self, current: int) -> None:
        """Over budget: drop dead chunks, then give up the oldest checkpoints until it fits."""
        floor = self._floor()
        self._retire_gens(floor)
        self._sweep(floor)
        while self._cbytes > self.budget and self._gens and self._gens[0] != current:
            del self._gen_seq[self._gens.popleft()]
            self.abandoned += 1
            self._sweep(floor)

    def _sweep(self, floor: int) -> None:
        for h in [h for h in self._gen_of if not self._live(h, floor)]:
            self._forget(h)

    @property
    def live_bytes(self) -> int:
        """Bytes of chunk data held in memory."""
        return self._bytes

    @property
    def live_ring_bytes(self) -> int:
        """Estimated bytes those chunks take in the ring (compressed), compared to :attr:`budget`."""
        return self._cbytes


def _compress_ratio(blobs: list[bytes]) -> float:
    """How well this data compresses with LZ4 (compressed / raw), measured in one call."""
    raw = b"".join(blobs)
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

    Returns:
        The checkpoint event's seq (pass it to ``Recording.state_at``), or None when not
        recording, sampled out, or on an internal error (counted, never raised).
    """
    rec = api._recorder
    if rec is None:
        return None
    try:
        store = rec._extensions.get(CheckpointStore) or store_for(rec)
        return store.checkpoint(state, label)  # type: ignore[no-any-return]
    except Exception:
        rec.errors += 1
        return None


# ============================================================================ reader side


class ChunkIndex:
    """Chunks of a recording by digest, for rebuilding checkpoints.

    Built from ``"chunk"`` events, and the roots that ``"checkpoint"`` events carry inline;
    a copy whose data does not hash to its name is ignored.
    """

    def __init__(self, events: Iterable[Any]) -> None:
        """Index the chunks among ``events``."""
        import xxhash

        h128 = xxhash.xxh3_128_digest
        self.data: dict[str, bytes] = {}
        self.bad = 0
        """Chunk copies whose data did not match their digest."""
        for ev in events:
            d = ev.data
            if ev.kind == "chunk":
                hx, blob = d.get("hash"), d.get("data")
            elif ev.kind == "checkpoint" and "inline" in d:
                hx, blob = d.get("root"), d.get("inline")
            else:
                continue
            if not isinstance(hx, str) or not isinstance(blob, (bytes, bytearray)) or hx in self.data:
                continue
            if h128(blob).hex() != hx:
                self.bad += 1
                continue
            self.data[hx] = bytes(blob)
        self._complete: dict[str, bool] = {}

    def __contains__(self, digest: str) -> bool:
        return digest in self.data

    def complete(self, root: str) -> bool:
        """True if the chunk ``root`` and everything it references are present."""
        memo = self._complete
        if root in memo:
            return memo[root]
        ok = True
        stack = [root]
        order: list[str] = []
        seen: set[str] = set()
        while stack:  # iterative: a deep or hostile chunk graph must not blow the stack
            hx = stack.pop()
            if hx in seen:
                continue
            seen.add(hx)
            known = memo.get(hx)
            if known is not None:
                ok = ok and known
                continue
            blob = self.data.get(hx)
            if blob is None:
                memo[hx] = ok = False
                continue
            order.append(hx)
            stack.extend(_refs_in(blob))
        if ok:
            for hx in order:
                memo[hx] = True
        memo[root] = ok
        return ok

    def rebuild(self, root: str) -> Any:
        """The value of chunk ``root``, fully resolved.

        Raises:
            MissingChunk: a chunk it needs is not in the recording (or is damaged).
        """
        active: set[bytes] = set()

        def hook(code: int, raw: memoryview) -> Any:
            if code == EXT_REF:
                digest = bytes(raw)
                if digest in active:
                    raise MissingChunk(f"chunk {digest.hex()} references itself")
                blob = self.data.get(digest.hex())
                if blob is None:
                    raise MissingChunk(f"chunk {digest.hex()} is not in the recording")
                active.add(digest)
                try:
                    return decoder.decode(blob)
                finally:
                    active.discard(digest)
            if code == EXT_CAT:
                body = decoder.decode(raw)
                return _concat(body)
            return msgspec.msgpack.Ext(code, bytes(raw))

        decoder = msgspec.msgpack.Decoder(ext_hook=hook)
        blob = self.data.get(root)
        if blob is None:
            raise MissingChunk(f"root chunk {root} is not in the recording")
        try:
            return decoder.decode(blob)
        except MissingChunk:
            raise
        except (msgspec.DecodeError, ValueError, TypeError, RecursionError) as exc:
            raise MissingChunk(f"checkpoint chunk {root} cannot be decoded: {exc}") from None


def _concat(body: Any) -> Any:
    if not isinstance(body, list) or not body or body[0] not in _TAGS:
        raise MissingChunk("malformed concatenation node")
    tag, parts = body[0], body[1:]
    if tag == "s":
        return "".join(parts)
    if tag == "b":
        return b"".join(parts)
    if tag == "l":
        out: list[Any] = []
        for p in parts:
            out.extend(p)
        return out
    merged: dict[Any, Any] = {}
    for p in parts:
        merged.update(p)
    return merged


def _refs_in(blob: bytes) -> list[str]:
    """Digests referenced directly by one chunk (concatenation nodes looked into)."""
    refs: list[str] = []

    def hook(code: int, raw: memoryview) -> Any:
        if code == EXT_REF:
            refs.append(bytes(raw).hex())
        elif code == EXT_CAT:
            decoder.decode(raw)
        return None

    decoder = msgspec.msgpack.Decoder(ext_hook=hook)
    try:
        decoder.decode(blob)
    except Exception:
        refs.append("<undecodable>")
    return refs


# ============================================================================ diff


@dataclass(frozen=True, slots=True)
class DiffEntry:
    """One difference between two states.

    Attributes:
        op: ``"added"``, ``"removed"`` or ``"changed"``.
        path: where, e.g. ``messages[3].content`` (empty for the root itself).
        old: the value before (None when added).
        new: the value after (None when removed).
    """

    op: str
    path: str
    old: Any
    new: Any

    def __str__(self) -> str:
        sign = {"added": "+", "removed": "-", "changed": "~"}.get(self.op, "?")
        if self.op == "added":
            return f"{sign} {self.path or '<root>'} = {safe_repr(self.new, 120)}"
        if self.op == "removed":
            return f"{sign} {self.path or '<root>'} (was {safe_repr(self.old, 120)})"
        return f"{sign} {self.path or '<root>'}: {safe_repr(self.old, 60)} -> {safe_repr(self.new, 60)}"


def _key_path(path: str, key: Any) -> str:
    if isinstance(key, str) and key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


def _fingerprint(value: Any, encode: Callable[[Any], bytes]) -> bytes:
    try:
        return encode(value)
    except Exception:
        return safe_repr(value).encode()


def diff_states(old: Any, new: Any, path: str = "") -> list[DiffEntry]:
    """What changed from ``old`` to ``new``: added, removed and changed paths.

    Dicts are compared key by key; lists are aligned (so that a message dropped from the
    front shows as one removal, not as every message changed); anything else by equality.
    """
    out: list[DiffEntry] = []
    encode = msgspec.msgpack.Encoder(enc_hook=_enc_hook).encode
    _diff(old, new, path, out, encode)
    return out


def _diff(old: Any, new: Any, path: str, out: list[DiffEntry], encode: Callable[[Any], bytes]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k, v in old.items():
            p = _key_path(path, k)
            if k not in new:
                out.append(DiffEntry("removed", p, v, None))
            else:
                _diff(v, new[k], p, out, encode)
        for k, v in new.items():
            if k not in old:
                out.append(DiffEntry("added", _key_path(path, k), None, v))
        return
    if isinstance(old, list) and isinstance(new, list):
        import difflib

        a = [_fingerprint(x, encode) for x in old]
        b = [_fingerprint(x, encode) for x in new]
        matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                continue
            paired = min(i2 - i1, j2 - j1) if op == "replace" else 0
            for k in range(paired):
                _diff(old[i1 + k], new[j1 + k], f"{path}[{j1 + k}]", out, encode)
            for i in range(i1 + paired, i2):
                out.append(DiffEntry("removed", f"{path}[{i}]", old[i], None))
            for j in range(j1 + paired, j2):
                out.append(DiffEntry("added", f"{path}[{j}]", None, new[j]))
        return
    if type(old) is not type(new) or old != new:
        out.append(DiffEntry("changed", path, old, new))
