"""Packing: splitting one state into content-addressed chunks (:class:`_Packer`, :func:`pack_state`)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from itertools import compress, count
from operator import not_
from typing import TYPE_CHECKING, Any

import msgspec

from ..encode import safe_repr
from ..fastpath import load_native
from .wire import (
    _BOUNDARY_MASK,
    _INLINE_TAIL_MAX,
    _MAX_DEPTH,
    _REF_HEAD,
    _REF_LEN,
    _SCALARS,
    _TAG_ENCODED,
    _WHOLE_MAX_LEN,
    EXT_CAT,
    MAX_CHUNK,
    MIN_CHUNK,
    PAGE_MAX,
    _array_head,
    _enc_hook,
    _ext,
    _hashes,
    _map_head,
    _to_builtin,
)

if TYPE_CHECKING:
    from .walk import _Prefix

_UNLIMITED = 1 << 62

_SAME_RUN = 1024  # parts compared at once when looking for the first (or last) that changed


def _same_prefix(a: list[bytes], b: list[bytes]) -> int:
    """How many first parts ``a`` and ``b`` have in common (compared in C, mostly by identity)."""
    n = min(len(a), len(b))
    i = 0
    while i < n:
        j = min(i + _SAME_RUN, n)
        if a[i:j] != b[i:j]:
            while a[i] == b[i]:
                i += 1
            return i
        i = j
    return n


def _same_suffix(a: list[bytes], b: list[bytes], most: int) -> int:
    """How many last parts (at most ``most``) ``a`` and ``b`` have in common."""
    m, n = len(a), len(b)
    i = 0
    while i < most:
        j = min(i + _SAME_RUN, most)
        if a[m - j : m - i] != b[n - j : n - i]:
            while a[m - 1 - i] == b[n - 1 - i]:
                i += 1
            return i
        i = j
    return most


_paging = load_native("_paging")
_paged_grown: Callable[..., bytes | None] | None = _paging.paged_grown if _paging is not None else None


def _fitting(parts: list[bytes], a: int, e: int, limit: int) -> int:
    """Where a page of ``parts`` from ``a`` (ending by ``e`` at most) must end to stay within
    ``limit`` bytes: after its first part at least, whatever that part's size."""
    size = len(parts[a])
    k = a + 1
    while k < e and size + len(parts[k]) <= limit:
        size += len(parts[k])
        k += 1
    return k


class _Packer:
    """Turns one state into chunks. Not thread-safe: one per checkpoint call."""

    __slots__ = ("_cat_memo", "_encode", "_h64", "_h128", "chunks", "left", "max_chunk", "over", "trail")

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
        self.left = _UNLIMITED
        """Bytes of new chunk data this packer may still produce before it calls :attr:`over`."""
        self.over: Callable[[_Packer, Any], None] | None = None
        """Called (with this packer, and a value about to be packed or None) when :attr:`left`
        runs out: it raises to stop packing (a state too large to store) or raises
        :attr:`left`. (The checkpoint store's; None: no limit.)"""
        # per level of _cat's tree: the last grouping done there (see _group), kept across states
        self._cat_memo: list[tuple[str, list[bytes], list[int], list[tuple[bytes, bytes]]] | None] = []

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
            self.left -= len(data)
            if self.left < 0:
                self._over(None)
        if self.trail is not None:
            self.trail.append((h, data))
        return h

    def _over(self, value: Any) -> None:
        over = self.over
        if over is None:
            self.left = _UNLIMITED
        else:
            over(self, value)

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
                    self.left -= len(e)
                    if self.left < 0:
                        self._over(None)
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
        self,
        tag: str,
        parts: list[bytes],
        keys: list[int],
        prev: list[Any] | None = None,
        group: _Prefix | None = None,
        tail: bool = True,
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
        registration of its own. Without ``tail`` the last page is a chunk as the others are:
        the pages are then exactly those of a paging without ``prev`` (a big dict's, see
        ``_Walker._walk_big``), only found faster.
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
        if prev and not tail and prev[0] == tag and prev[4] == fits:
            return self._repaged(tag, parts, keys, prev, fits)
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
                    e = _fitting(parts, a, e, limit)
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
                    inline_tail = tail and e == n and prev is not None and len(page) <= _INLINE_TAIL_MAX
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

    def _repaged(self, tag: str, parts: list[bytes], keys: list[int], prev: list[Any], fits: bool) -> bytes:
        """:meth:`paged` without an inline last page, ``prev`` its last paging: the same pages,
        those before the first part that changed and after the last one taken over.

        The cuts are content-defined: a page depends only on the parts from where it starts
        to the one after it ends (and on ``fits``). So every page of ``prev`` that ends before
        the first changed part is a page now, and once a new page ends where one of ``prev``'s
        did, past the last changed part, the rest are ``prev``'s. A big dict with a key added,
        edited or deleted costs the pages around it, not a pass over every page.
        """
        head = _array_head if tag == "l" else _map_head
        old_parts, old_pages, old_ends, old_chunks = prev[1], prev[2], prev[3], prev[5]
        n, m = len(parts), len(old_parts)
        first = _same_prefix(old_parts, parts)
        common = _same_suffix(old_parts, parts, min(m, n) - first)
        # Those that end before the first part that changed (a page cut by the chunk size
        # depends on the part after it too), never the old last page (the list's end cut it).
        kept = bisect_left(old_ends, first, 0, max(len(old_ends) - 1, 0))
        pages, ends, page_chunks = old_pages[:kept], old_ends[:kept], old_chunks[:kept]
        chunks, trail, ref, join = self.chunks, self.trail, self._ref, b"".join
        a = ends[-1] if ends else 0
        shift, synced = n - m, n - common
        limit = self.max_chunk - 8
        tail: list[tuple[bytes, bytes]] = []
        while a < n:
            e = min(a + PAGE_MAX, n)
            for k in range(a, e):  # (a few dozen at most, for the pages around the change)
                if not keys[k] & _BOUNDARY_MASK:
                    e = k + 1
                    break
            if not fits:
                e = _fitting(parts, a, e, limit)
            page = ref(head(e - a) + join(parts[a:e]))
            pages.append(page)
            ends.append(e)
            page_chunks.append((page[2:], chunks[page[2:]]))
            a = e
            if synced <= a < n:
                j = bisect_left(old_ends, a - shift)
                if j < len(old_ends) and old_ends[j] == a - shift:
                    pages.extend(old_pages[j + 1 :])
                    ends.extend([e + shift for e in old_ends[j + 1 :]] if shift else old_ends[j + 1 :])
                    tail = old_chunks[j + 1 :]
                    page_chunks.extend(tail)
                    break
        for taken in (old_chunks[:kept], tail):  # (in C: a dict keeps a key's first place)
            chunks.update(taken)
            if trail is not None:
                trail.extend(taken)
        prev[:] = [tag, parts, pages, ends, fits, page_chunks, (None, 0)]
        return self._cat(tag, pages)

    def _cat(self, tag: str, parts: list[bytes]) -> bytes:
        """A concatenation node over ``parts`` (refs or inline values), grouped into a tree."""
        tag_enc = _TAG_ENCODED[tag]
        level = 0
        while True:
            if len(parts) <= PAGE_MAX:
                body = b"".join(parts)
                if len(body) + 16 <= self.max_chunk:
                    return _ext(EXT_CAT, _array_head(len(parts) + 1) + tag_enc + body)
            parts = self._group(tag, tag_enc, parts, level)
            level += 1

    def _group(self, tag: str, tag_enc: bytes, parts: list[bytes], level: int) -> list[bytes]:
        """One level of :meth:`_cat`'s tree: ``parts`` cut into groups, each a chunk; their refs.

        A group ends after a part whose key has its low bits zero, after ``PAGE_MAX`` parts,
        or before the part that would outgrow a chunk: so the groups of a list that grew (a
        long conversation's pages, checkpointed at every turn) are the same as last time up
        to its end. The groups of this level's last grouping whose parts (and the part after
        them, which may have ended them) are still first in ``parts`` are taken over, not
        built and hashed again: a checkpoint costs the groups at its end, not a pass over
        every page of the conversation. So are its groups after the last part that changed,
        once a group ends where one of them did (a big dict edited in the middle).
        """
        memo = self._cat_memo
        while len(memo) <= level:
            memo.append(None)
        groups: list[bytes] = []
        ends: list[int] = []  # where each group ends in parts
        made: list[tuple[bytes, bytes]] = []  # each group's digest and data
        a = 0
        n = len(parts)
        synced = n + 1  # from where a group that ends where an old one did is followed by the old ones
        shift = 0
        last = memo[level]
        old_ends: list[int] = []
        old_made: list[tuple[bytes, bytes]] = []
        if last is not None and last[0] == tag:
            old_parts, old_ends, old_made = last[1], last[2], last[3]
            # the most groups (never the last: the end of the list may have ended it) whose
            # parts, and the one after them, are the same: old_ends[j - 1] + 1 parts
            first = _same_prefix(old_parts, parts)
            lo = min(len(old_ends) - 1, bisect_right(old_ends, n - 1), bisect_left(old_ends, first))
            if lo > 0:
                groups.extend(self._taken(old_made[:lo]))
                made, ends = old_made[:lo], old_ends[:lo]
                a = ends[-1]
            shift = n - len(old_parts)
            synced = n - _same_suffix(old_parts, parts, min(len(old_parts), n) - first)
        cur: list[bytes] = []
        size = 0
        limit = self.max_chunk - 32

        def close(end: int) -> None:
            blob = _ext(EXT_CAT, _array_head(len(cur) + 1) + tag_enc + b"".join(cur))
            h = self.chunk(blob)
            groups.append(_REF_HEAD + h)
            made.append((h, blob))
            ends.append(end)

        def rest(end: int) -> bool:
            """Past the last part that changed, ``end`` where an old group ended: the old ones
            after it taken over (their parts are the same, and so is where they end)."""
            j = bisect_left(old_ends, end - shift)
            if j == len(old_ends) or old_ends[j] != end - shift:
                return False
            groups.extend(self._taken(old_made[j + 1 :]))
            made.extend(old_made[j + 1 :])
            ends.extend([e + shift for e in old_ends[j + 1 :]] if shift else old_ends[j + 1 :])
            return True

        i = a
        while i < n:
            part = parts[i]
            if cur and size + len(part) > limit:
                close(i)
                cur, size = [], 0
                if synced <= i and rest(i):
                    break
            cur.append(part)
            size += len(part)
            i += 1
            if self._part_key(part) & _BOUNDARY_MASK == 0 or len(cur) >= PAGE_MAX:
                close(i)
                cur, size = [], 0
                if synced <= i < n and rest(i):
                    break
        if cur:
            close(n)
        if len(groups) >= len(parts):  # no progress (astronomically unlikely): group by count
            memo[level] = None
            return [
                self._ref(_ext(EXT_CAT, _array_head(len(g) + 1) + tag_enc + b"".join(g)))
                for g in (parts[i : i + 16] for i in range(0, len(parts), 16))
            ]
        memo[level] = (tag, list(parts), ends, made)  # (a copy: the caller's list may change)
        return groups

    def _taken(self, made: list[tuple[bytes, bytes]]) -> list[bytes]:
        """Refs to the groups ``made`` earlier, registered as chunk() does, without hashing again."""
        chunks, trail = self.chunks, self.trail
        for h, blob in made:
            if h not in chunks:
                chunks[h] = blob
                self.left -= len(blob)
                if self.left < 0:
                    self._over(None)
        if trail is not None:
            trail.extend(made)
        return [_REF_HEAD + h for h, _ in made]

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
