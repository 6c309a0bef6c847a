"""Diffing two states: what was added, removed or changed, path by path (:func:`diff_states`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from ..encode import safe_repr
from .wire import _enc_hook


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
