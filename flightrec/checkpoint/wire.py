"""The chunk format's building blocks: its constants, MessagePack heads and ext types, the
encoder hook that turns agent objects into MessagePack-able ones, and the chunk hashes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

import msgspec

from ..encode import safe_repr

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
_INLINE_TAIL_MAX = 2048  # the last page of a growing list stays inline in the root up to this size
_SCALARS = frozenset({str, int, float, bool, type(None), bytes})
_TAGS = {"s", "b", "l", "d"}
_TAG_ENCODED = {tag: msgspec.msgpack.encode(tag) for tag in _TAGS}


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
    if isinstance(obj, PurePath):
        return str(obj)
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
