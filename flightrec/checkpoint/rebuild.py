"""The reader side: indexing a recording's chunks and rebuilding a checkpoint's state from them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from ..errors import MissingChunk
from .wire import _TAGS, EXT_CAT, EXT_REF


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
