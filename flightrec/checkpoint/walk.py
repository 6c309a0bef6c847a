"""Walking raw agent state with redaction, memoizing the packed form of what did not change
since the last checkpoint (:class:`_Walker`, and the list prefixes and big dicts it takes over
whole).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain, compress
from operator import itemgetter, not_
from typing import Any

import msgspec

from ..encode import safe_repr
from ..fastpath import load_native
from .pack import _Packer, _paging
from .wire import _REF_HEAD, _REF_LEN, _WHOLE_MAX_LEN, MIN_CHUNK, _enc_hook, _to_builtin

_statecheck = load_native("_statecheck")
_dict_versions: Callable[[list[Any], int, int], bytes | None] | None = (
    _statecheck.dict_versions if _statecheck is not None else None
)
_same_versions: Callable[[list[Any], bytes | bytearray], bool] | None = (
    _statecheck.same_versions if _statecheck is not None else None
)
_dict_tree: Callable[[dict[Any, Any]], bytes | None] | None = getattr(_statecheck, "dict_tree", None)
_dict_hits_c: Callable[..., tuple[list[Any], list[Any], list[Any], int]] | None = getattr(
    _statecheck, "dict_hits", None
)
_same_tree: Callable[[dict[Any, Any], bytes], bool] | None = getattr(_statecheck, "same_tree", None)

_walk_grown: Callable[..., bytes] | None = getattr(_paging, "walk_grown", None)

_CONTAINERS = (dict, list, tuple)
_CONTAINER_TYPES = frozenset(_CONTAINERS)
_ENTRY_PART, _ENTRY_CHUNKS, _ENTRY_KEY = itemgetter(0), itemgetter(1), itemgetter(3)  # of a memo entry
_ITEM = object()  # memo-context marker of list items (never equal to a dict key)
_BLOCK = 16  # list items recognized together, by index-aligned blocks
_BLOCKS = object()  # memo-context marker of such blocks
_PROBE = "x"
_TREE_GROUP = 16  # a big dict unit of at least this many chunks is registered by the store as one group
# Values whose packing depends on nothing but themselves (and their key and place), which a
# big dict's keyed memo (see _Keyed) takes over when the same object, or an equal one of one
# of the _EQUAL types, is there again. (An equal float may be another: -0.0 == 0.0.)
_ATOMS = frozenset({str, bytes, int, float, bool, type(None)})
_EQUAL = frozenset({str, bytes, int})
_WALKED = object()  # keyed-memo marker of a walked big dict (see _Walker._walk_big)
_UNFIT_RETRY = 16  # checkpoints before a keyed memo found of no use (see _Keyed.unfit) is tried again


_KeyedEntry = tuple[Any, bytes, int, tuple[tuple[bytes, bytes], ...]]  # (value, part, boundary key, chunks)


def _dict_hits_py(
    x: dict[Any, Any], entries: dict[str, _KeyedEntry], chunks: Any, trail: Any
) -> tuple[list[Any], list[Any], list[tuple[int, Any, Any]], int]:
    """The parts of big dict ``x`` that ``entries`` (see :class:`_Keyed`) vouch for, and the others.

    Returns ``(parts, keys, missed, found)``: a part and boundary key per item of ``x``, in
    order (``b""`` and 0 where missed), ``(index, key, value)`` of each item not vouched for,
    and how many of ``x``'s keys ``entries`` holds. A part taken over has its chunks added
    to ``chunks`` (and ``trail``, if not None). (In C: ``_statecheck.dict_hits``.)
    """
    parts: list[Any] = []
    keys: list[Any] = []
    missed: list[tuple[int, Any, Any]] = []
    found = 0
    get = entries.get
    for k, v in x.items():
        e = get(k) if type(k) is str else None
        if e is not None:
            found += 1
            old = e[0]
            if old is v or (type(old) is type(v) and type(v) in _EQUAL and old == v):
                parts.append(e[1])
                keys.append(e[2])
                if e[3]:
                    chunks.update(e[3])
                    if trail is not None:
                        trail.extend(e[3])
                continue
        missed.append((len(parts), k, v))
        parts.append(b"")
        keys.append(0)
    return parts, keys, missed, found


_dict_hits = _dict_hits_c if _dict_hits_c is not None else _dict_hits_py


@dataclass(slots=True, eq=False)
class _Keyed:
    """What each item of a big dict packed to at the last checkpoint that packed it: its
    *keyed memo*, so that a big dict that changed costs what changed (see ``_Walker._walk_big``
    and ``_Walker._unit_dict``).

    ``entries`` maps each str key whose value was an immutable scalar (str, bytes, int,
    float, bool, None) to ``(value, part, boundary key, chunks)``: the same value object there
    again (or an equal str, bytes or int) packs to the same part, found in one C pass over
    the dict (``_statecheck.dict_hits``; in pure Python, the same loop). It holds those values
    (immutable, most of them the agent's own objects), never a container of the agent's.
    """

    entries: dict[str, _KeyedEntry]
    paging: list[Any]  # the dict's last paging (see _Packer.paged)
    gen: int  # the last checkpoint that used it
    head: bytes | None = None  # a big dict value's unit: its key, encoded as redacted
    unfit: int = -_UNFIT_RETRY  # the last checkpoint that found it of no use (see _unit_dict, _walk_big)


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


@dataclass(slots=True, eq=False)
class _Tree:
    """What a big dict (a dict value longer than ``_WHOLE_MAX_LEN``) packed to at a checkpoint.

    Taken over whole at the next checkpoint when the dict is unchanged: recognized by
    ``sig``, the version tags of it and of the dicts below it (see ``_statecheck.dict_tree``:
    no encoding, O(1) for a dict without dict values), else, for a unit, by ``raw`` (one
    encode and hash, as any unit; also in pure Python). A dict with a list anywhere below
    has no ``sig``: a list changes without any tag changing.

    A unit recognized by ``raw`` with at least ``_TREE_GROUP`` chunks is *grouped*: its
    chunks go to the store as one group (see :meth:`CheckpointStore._register`), as a list
    prefix's do, so that an unchanged 100,000-key dict costs neither a walk nor a pass over
    its chunks. (Whether a tree is grouped never depends on ``sig``: the same checkpoints
    give the same events with and without the C extensions.)
    """

    raw: bytes | None  # xxh3-128 of its raw encoding (None: walked, or unencodable)
    sig: bytes | None  # its dict tree's version tags (None: cannot tell)
    entry: list[Any]  # [part, chunks, gen, boundary key], as _unit or the walk made it
    made: int  # the checkpoint that packed it
    gen: int  # the last checkpoint that used it
    grouped: bool
    chunks: dict[bytes, bytes]  # as a group: every chunk of the entry (empty if not grouped)
    size: int = dataclasses.field(init=False)  # bytes of ``chunks``' data
    used: int = 0  # the store's: the last checkpoint generation that used it as a group
    keyed: _Keyed | None = None  # its keyed memo, kept while the tree is taken over

    def __post_init__(self) -> None:
        self.size = sum(map(len, self.chunks.values()))


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

    def __init__(self, redactor: Any, max_chunk: int, sanitizer: Any = None) -> None:
        """Pack with ``redactor``; ``sanitizer`` makes a value that cannot be encoded as it is
        (a reference cycle, an int beyond 64 bits) plain data where ``redactor`` does not (when
        redaction is off); by default, ``redactor`` does it too."""
        self.redactor = redactor
        self.sanitizer = sanitizer if sanitizer is not None else redactor
        self.max_chunk = max_chunk
        self._active: set[int] = set()
        """The ids of the containers being walked (the current one and its ancestors): a value
        that is one of them is a reference cycle, which goes to the redactor as a unit, with
        these ids, to be stored as ``<cycle>`` right there."""
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
        # (path, key) -> _Tree of the big dict there at the last checkpoint (see _tree)
        self._trees: dict[tuple[str, Any], _Tree] = {}
        # (path, slot, kind) -> _Keyed of the big dict there: a walked one (path its own, slot
        # None, kind _WALKED) or a unit (a dict value, slot its key, kind False; a list item,
        # slot its index, kind True), see _walk_big and _unit_dict
        self._keyed: dict[tuple[str, Any, Any], _Keyed] = {}
        self._gen = 0
        self._encode = msgspec.msgpack.Encoder(enc_hook=_enc_hook).encode
        self._packer = _Packer(max_chunk, self._encode)
        self.groups: list[_Prefix | _Tree] = []
        """The prefixes and trees the last :meth:`pack` reused as groups: their chunks are not in its result."""
        self.retired: list[_Prefix | _Tree] = []
        """Prefixes and grouped trees dropped or replaced since the store last took this list."""
        self.hits = 0
        self.misses = 0

    def pack(self, state: Any) -> tuple[bytes, dict[bytes, bytes]]:
        """Redact and split ``state``; see :func:`pack_state`.

        The chunks of the prefixes in :attr:`groups` are left out of the result.
        """
        self._gen += 1
        self.groups = []
        self._active = set()
        packer = self._packer.reset()
        if type(state) not in _CONTAINERS and (
            dataclasses.is_dataclass(state) or callable(getattr(state, "model_dump", None))
        ):
            state = _to_builtin(state)
        if type(state) in _CONTAINERS:
            inline = self._walk(packer, state, "", 0)
        else:
            if (type(state) is str or type(state) is bytes) and len(state) > packer.left:
                packer._over(state)
            inline = packer.item(self.redactor.redact(state))
            if len(inline) == _REF_LEN and inline[:2] == _REF_HEAD:
                return inline[2:], packer.chunks
        root = packer.chunk(inline)
        if self._gen % 8 == 0:
            self.forget_unused()
        return root, packer.chunks

    def forget_unused(self) -> None:
        """Forget what the last 8 checkpoints did not use (every 8th :meth:`pack`, at its end).

        A prefix forgotten goes to :attr:`retired`. (_store.c's usual checkpoint calls this
        on the same turns, at the same point.)
        """
        old = self._gen - 8
        # A walked dict taken over whole (see _tree) does not touch its values' entries: they
        # stay while it is used (those it was packed with), for when it changes again.
        held = {f"{p}.{k}" if p else k: t.made for (p, k), t in self._trees.items() if t.gen > old and t.raw is None}
        memo = {}
        for ctx, entries in self._memo.items():
            floor = min(old, held.get(ctx[0], old) - 1) if held else old
            kept = {k: e for k, e in entries.items() if e[2] > floor}
            if kept:
                memo[ctx] = kept
        if self._trees:
            trees = {}
            for at, t in self._trees.items():
                if t.gen > old or (held and t.gen >= held.get(at[0], self._gen + 1)):
                    trees[at] = t
                elif t.grouped:
                    self.retired.append(t)
            self._trees = trees
        self._memo = memo
        if self._keyed:
            # (A list item's stays while its list's prefix is used: a big dict in a list that
            # the list's tags or digest take over whole is not packed, so it does not use it.)
            prefix = self._prefix
            self._keyed = {
                at: e
                for at, e in self._keyed.items()
                if e.gen > old or (at[2] is True and at[0] in prefix and prefix[at[0]].gen > old)
            }
        self._paging = {k: e for k, e in self._paging.items() if e and e[-1] > old}
        self._tagged = {k: e for k, e in self._tagged.items() if e[0] > old}
        self.retired.extend(e for e in self._prefix.values() if e.gen <= old)
        self._prefix = {k: e for k, e in self._prefix.items() if e.gen > old}

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
        oid = id(v)
        self._active.add(oid)
        try:
            return self._walk_in(packer, v, path, depth)
        finally:
            self._active.discard(oid)

    def _walk_in(self, packer: _Packer, v: Any, path: str, depth: int) -> bytes:
        """:meth:`_walk`, ``v`` among the active containers."""
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
        active = self._active
        if type(v) is dict:
            if len(v) > _WHOLE_MAX_LEN:
                return self._walk_big(packer, v, path, d)
            self._dict_items(packer, v, path, d, parts, keys)
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
                        and id(x) not in active
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

    def _dict_items(
        self, packer: _Packer, v: dict[Any, Any], path: str, d: int, parts: list[bytes], keys: list[int]
    ) -> None:
        """:meth:`_dict_item` of every item of ``v``, its parts and keys appended to ``parts``
        and ``keys`` (its usual case inlined: a value found in the memo)."""
        h128, encode, gen, chunks = packer._h128, self._encode, self._gen, packer.chunks
        for k, x in v.items():
            t = type(x)
            if type(k) is not str or t is list or t is tuple or (t is dict and (len(x) > _WHOLE_MAX_LEN or d < 2)):
                part, key, _ = self._dict_item(packer, path, k, x, d)  # (maybe walked)
                parts.append(part)
                keys.append(key)
                continue
            # (not walkable: what _dict_item does then)
            memo = self._memo.get((path, k)) or self._context(path, k)
            try:
                raw = h128(encode(x))
            except Exception:
                raw = None
            entry = memo.get(raw) if raw is not None else None
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

    def _dict_item(
        self, packer: _Packer, path: str, k: Any, x: Any, d: int
    ) -> tuple[bytes, int, tuple[tuple[bytes, bytes], ...] | None]:
        """Item ``k: x`` of the walked dict at ``path`` (depth ``d``): its part, its boundary
        key, and, when it is a memo entry's (a unit), that entry's chunks (else None)."""
        # (str keys only: 1 and True are the same key of the memo, not of the encoding)
        active = self._active
        if type(x) is dict and len(x) > _WHOLE_MAX_LEN and type(k) is str and id(x) not in active:
            whole = self._tree(packer, x, path, k, d)
            return whole[0], whole[3], None
        # (A container being walked, met again, is a cycle: a unit, for the redactor.)
        if type(k) is str and self._walkable(x, d) and id(x) not in active and self._plain_key(path, k):
            ke = self._encode(k)
            child = f"{path}.{k}" if path else k
            return ke + packer.ref_or_inline(self._walk(packer, x, child, d)), packer._h64(ke), None
        entry = None
        # (1, True and 1.0 are one dict key, but encode apart: a value's packing holds its key)
        memo = self._context(path, k if type(k) is str else (type(k), k))
        try:
            raw = packer._h128(self._encode(x))
        except Exception:
            raw = None
        if raw is not None:
            entry = memo.get(raw)
        if entry is None:
            entry = self._unit(packer, x, path, k, False, memo, raw)
        else:
            entry[2] = self._gen
            packer.chunks.update(entry[1])
            if packer.trail is not None:
                packer.trail.extend(entry[1])
            self.hits += 1
        return entry[0], entry[3], entry[1]

    def _walk_big(self, packer: _Packer, v: dict[Any, Any], path: str, d: int) -> bytes:
        """:meth:`_walk` of a big dict: its items that did not change since the last checkpoint
        taken over from its keyed memo (see :class:`_Keyed`), the others packed as usual.

        The same parts and pages as a walk item by item (only found faster), so the same
        chunks: a checkpoint packs to the same bytes whatever came before it.
        """
        at = (path, None, _WALKED)
        gen = self._gen
        keyed = self._keyed.get(at)
        if keyed is None:
            keyed = self._keyed[at] = _Keyed({}, [], gen)
        keyed.gen = gen
        if not keyed.entries and gen - keyed.unfit < _UNFIT_RETRY:
            # No scalar values last time (a dict of dicts): each item would miss, item by item.
            parts: list[bytes] = []
            keys: list[int] = []
            self._dict_items(packer, v, path, d, parts, keys)
            return packer.paged("d", parts, keys, keyed.paging, tail=False)
        entries = keyed.entries
        known = len(entries)
        parts, keys, missed, found = _dict_hits(v, entries, packer.chunks, packer.trail)
        self.hits += len(parts) - len(missed)
        for i, k, x in missed:
            part, key, held = self._dict_item(packer, path, k, x, d)
            parts[i] = part
            keys[i] = key
            if type(k) is str:
                if held is not None and type(x) in _ATOMS:
                    entries[k] = (x, part, key, held)
                elif entries.pop(k, None) is not None:  # (no longer a scalar)
                    found -= 1
                    known -= 1
        if found < known:  # keys deleted since
            for k in entries.keys() - v.keys():
                del entries[k]
        if not entries:
            keyed.unfit = gen  # (tried again _UNFIT_RETRY checkpoints later)
        return packer.paged("d", parts, keys, keyed.paging, tail=False)

    def _unit_dict(self, packer: _Packer, x: dict[Any, Any], path: str, slot: Any, is_item: bool) -> list[Any] | None:
        """:meth:`_unit` of a big dict, by its keyed memo (see :class:`_Keyed`): the items that
        did not change since the last checkpoint taken over, the others redacted together in
        the dict's place (as the whole dict is: the same context for each) and packed.

        The same memo entry as ``_unit``'s whole redaction (the same parts, pages and chunks),
        or None when this dict cannot be packed so (a key that is not a str, or that a rule
        changes; a value that is not a scalar; a secret-named key above it): ``_unit`` then
        redacts it whole, and this is tried again only ``_UNFIT_RETRY`` checkpoints later.
        """
        gen = self._gen
        at = (path, slot if is_item or type(slot) is str else (type(slot), slot), is_item)
        keyed = self._keyed.get(at)
        if keyed is None:
            if not is_item and (type(slot) is not str or not self._plain_key(path, slot)):
                return None
            keyed = self._keyed[at] = _Keyed({}, [], gen)
        elif gen - keyed.unfit < _UNFIT_RETRY:
            keyed.gen = gen
            return None
        keyed.gen = gen
        entries = keyed.entries
        known = len(entries)
        outer = packer.trail
        trail: list[tuple[bytes, bytes]] = []
        packer.trail = trail
        try:
            parts, keys, missed, found = _dict_hits(x, entries, packer.chunks, trail)
            head = keyed.head
            if missed:
                sub = {}
                for _, k, v in missed:
                    if type(k) is not str or type(v) not in _ATOMS:
                        self._unfit(keyed)
                        return None
                    sub[k] = v
                if is_item:
                    out = self.redactor.redact(sub, f"{path}[{slot}]")
                else:
                    whole = self.redactor.redact({slot: sub}, path)
                    if type(whole) is not dict or len(whole) != 1:
                        self._unfit(keyed)
                        return None
                    k2, out = next(iter(whole.items()))
                    head = self._encode(k2)
                if type(out) is not dict or len(out) != len(sub) or list(out) != list(sub):
                    self._unfit(keyed)  # (a key a rule changes: they might collide)
                    return None
                encode, h64, item = self._encode, packer._h64, packer.item
                for (i, k, v), v2 in zip(missed, out.values(), strict=True):
                    ke = encode(k)
                    try:
                        enc: bytes | None = encode(v2)
                    except Exception:  # (an int beyond 64 bits, with redaction off)
                        enc = None
                    if enc is not None and len(enc) < MIN_CHUNK:  # (item() makes it that: no chunk)
                        part = ke + enc
                        held: tuple[tuple[bytes, bytes], ...] = ()
                    else:
                        mark = len(trail)
                        part = ke + item(v2, 1)  # (as _Packer._dict packs a dict's value)
                        held = tuple(trail[mark:])
                    key = h64(ke)
                    parts[i] = part
                    keys[i] = key
                    entries[k] = (v, part, key, held)
                keyed.head = head
            if head is None and not is_item:
                self._unfit(keyed)
                return None
            if found < known:  # keys deleted since
                for k in entries.keys() - x.keys():
                    del entries[k]
            inline = packer.ref_or_inline(packer.paged("d", parts, keys, keyed.paging, tail=False))
        finally:
            packer.trail = outer
        if outer is not None:
            outer.extend(trail)
        if is_item:
            boundary = inline[-1] if len(inline) == _REF_LEN and inline[:2] == _REF_HEAD else packer._h64(inline)
            return [inline, tuple(trail), gen, boundary]
        assert head is not None
        return [head + inline, tuple(trail), gen, packer._h64(head)]

    def _unfit(self, keyed: _Keyed) -> None:
        """``keyed``'s dict cannot be packed by it (see :meth:`_unit_dict`): forget it for now."""
        keyed.unfit = self._gen
        keyed.entries = {}
        keyed.paging = []
        keyed.head = None

    def _tree(self, packer: _Packer, x: dict[Any, Any], path: str, k: str, d: int) -> list[Any]:
        """Big dict ``x``, the value of key ``k`` at ``path`` (depth ``d``), as a memo entry.

        Taken over from the last checkpoint when it did not change (see :class:`_Tree`), else
        packed as it would be without this memo: walked, or a unit.
        """
        tree = self._trees.get((path, k))
        if tree is not None and tree.sig is not None and _same_tree is not None and _same_tree(x, tree.sig):
            return self._take(packer, tree)
        # Read before the content is (another thread may change it meanwhile: that then shows
        # next time, as a tag that is not this one).
        sig = _dict_tree(x) if _dict_tree is not None else None
        raw: bytes | None = None
        if tree is not None and tree.raw is not None:
            # A unit last time: if its content is the same (an equal dict, or a change undone;
            # also how it is found without the C extensions), it is still one, and its packing
            # is the same.
            raw = self._raw(packer, x)
            if raw == tree.raw:
                tree.sig = sig
                return self._take(packer, tree)
        gen = self._gen
        outer = packer.trail
        if self._walkable(x, d) and self._plain_key(path, k):
            raw = None
            trail: list[tuple[bytes, bytes]] = []
            packer.trail = trail
            try:
                ke = self._encode(k)
                part = ke + packer.ref_or_inline(self._walk(packer, x, f"{path}.{k}" if path else k, d))
            finally:
                packer.trail = outer
            if outer is not None:
                outer.extend(trail)
            entry: list[Any] = [part, tuple(trail), gen, packer._h64(ke)]
        else:
            if tree is None or tree.raw is None:
                raw = self._raw(packer, x)
            memo = self._context(path, k)
            found = memo.get(raw) if raw is not None else None
            if found is None:
                entry = self._unit(packer, x, path, k, False, memo if raw is not None else None, raw)
            else:
                entry = found
                entry[2] = gen
                packer.chunks.update(entry[1])
                if outer is not None:
                    outer.extend(entry[1])
                self.hits += 1
        if tree is not None and tree.grouped:
            self.retired.append(tree)  # replaced: the store settles its group
        held = dict(entry[1]) if raw is not None and len(entry[1]) >= _TREE_GROUP else {}
        keyed = self._keyed.get((f"{path}.{k}" if path else k, None, _WALKED) if raw is None else (path, k, False))
        self._trees[(path, k)] = _Tree(raw, sig, entry, gen, gen, bool(held), held, keyed=keyed)
        return entry

    def _raw(self, packer: _Packer, x: Any) -> bytes | None:
        """The digest of ``x``'s raw encoding, or None if it cannot be encoded as it is."""
        try:
            return packer._h128(self._encode(x))
        except Exception:  # e.g. an int beyond 64 bits, a cycle
            return None

    def _take(self, packer: _Packer, tree: _Tree) -> list[Any]:
        """``tree``'s entry, unchanged since: its chunks as a group, or (inside a memoized unit,
        whose trail lists every chunk, or met twice in one state) one by one."""
        entry = tree.entry
        first = tree.gen != self._gen
        entry[2] = tree.gen = self._gen
        if tree.keyed is not None:
            tree.keyed.gen = self._gen
        self.hits += 1
        if tree.grouped and packer.trail is None and first:
            self.groups.append(tree)
        else:
            packer.chunks.update(entry[1])
            if packer.trail is not None:
                packer.trail.extend(entry[1])
        return entry

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
        if type(x) is dict and len(x) > _WHOLE_MAX_LEN and raw is not None:
            made = self._unit_dict(packer, x, path, slot, is_item)
            if made is not None:
                if memo is not None:
                    memo[raw] = made
                return made
        if (type(x) is str or type(x) is bytes) and len(x) > packer.left:
            packer._over(x)  # a big text, judged before it is redacted
        trail: list[tuple[bytes, bytes]] = []
        outer = packer.trail
        packer.trail = trail
        # ``raw`` is None when ``x`` could not be encoded as it is (a cycle, a huge int): the
        # sanitizer makes it data (with redaction off, the redactor would not). The walked
        # containers enclosing ``x`` go with it: a reference back to one is a cycle.
        redact, enclosing = (self.redactor.redact, ()) if raw is not None else (self.sanitizer.redact, self._active)
        try:
            if is_item:
                part = packer.item(redact(x, f"{path}[{slot}]", enclosing))
                boundary = part[-1] if len(part) == _REF_LEN and part[:2] == _REF_HEAD else packer._h64(part)
            else:
                out = redact({slot: x}, path, enclosing)
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
