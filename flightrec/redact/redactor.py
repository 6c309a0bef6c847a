"""The :class:`Redactor`: walks any value into msgpack-able builtins, redacting on the way.

The walk (dicts, sequences, bytes, dataclasses, models, mappings and other objects), its
limits and markers, the cache of redacted strings, the key-name classification cache, the
hook to the C dict walk of ``flightrec/_redact_native.c``, and :func:`describe_header`,
which words the counts a Redactor leaves in a dump header for people.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import hashlib
import os
import re
import uuid
from collections import _count_elements, deque  # type: ignore[attr-defined]
from collections.abc import Callable, Iterable, Mapping
from itertools import islice
from pathlib import PurePath
from typing import Any

from .config import (
    _KEY_ALLOWED,
    _KEY_NORMAL,
    _KEY_SECRET,
    _PATH_INDEX,
    BUILTIN_RULES,
    RedactConfig,
    _secret_name,
    normalize_key,
)
from .patterns import (
    _ID_FIRST,
    _ID_MAX_LEN,
    _build_scanner,
    _digits_may_match,
    _folded,
    _Handler,
    _id_like,
    _light_may_match,
    _match_loop,
    _native,
    _no_rule_can_match,
    _python_match_loop,
)
from .pseudonym import _KEY_BYTES, _PSEUDO_BYTES, _python_keyed

# Markers stored in place of values the walk refuses to descend into.
CYCLE = "<cycle>"
MAX_DEPTH = "<max depth>"
_TRUNC_KEY = "…"
# Characters past the cut of a truncated string scanned for a value the cut splits.
_BOUNDARY = 256
_PLACEHOLDER = re.compile(r"<([A-Z0-9_]+):[0-9a-f]{6}>")

# Strings shorter than this cannot contain any built-in match: the shortest is the value
# of a three-letter secret name, "pin=1" or "otp:4" (an e-mail, "a@b.co", has 6 characters).
_MIN_LEN = 5
_SHORT_TEXT = 256  # redact_text() tests a text this short for a possible match before the cache
# Upper bounds on the characters held by one cache generation, and on the
# length of a string worth caching (only redact_text() sees longer ones).
_CACHE_MAX_CHARS = 4_000_000
_CACHE_MAX_ENTRY = 65_536
_KEY_CACHE_MAX = 8192
# Hard cap on walk depth so that a deep (or misconfigured) max_depth can never
# run into the interpreter's recursion limit (two frames per level).
_DEPTH_CAP = 128
_I64_MIN = -(1 << 63)
_U64_MAX = (1 << 64) - 1


def describe_header(entry: object) -> str | None:
    """One line for a dump header's ``redaction`` entry, for people.

    ``"off"``, ``"email 7, phone 1 replaced"`` (rules that replaced nothing left out) or
    ``"nothing replaced"``; None when there is no usable entry (an old or damaged header).
    """
    if not isinstance(entry, dict) or not entry:
        return None
    if entry.get("off"):
        return "off"
    replaced = entry.get("replaced")
    counts = {str(k): v for k, v in replaced.items() if type(v) is int and v > 0} if isinstance(replaced, dict) else {}
    if not counts:
        return "nothing replaced"
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + " replaced"


_Entry = tuple[str, tuple[str, ...]]

# Rule counts are added with collections' C helper (what Counter.update uses): one C
# call that runs no Python code, so it is atomic under the GIL and the header's counts
# stay exact across threads without taking a lock per replaced value.
_SECRET_HIT = ("secret",)


def _as_text(v: Any) -> str | None:
    """The text form of a value that has one (ISO 8601 for a datetime, date or time; the
    canonical text of a UUID, a Decimal, a path), as msgspec writes most of them when it
    encodes them itself (with redaction off); else None."""
    if isinstance(v, datetime.date | datetime.time):  # (a datetime is a date)
        return v.isoformat()
    if isinstance(v, uuid.UUID | decimal.Decimal | PurePath):
        return str(v)
    return None


class Redactor:
    """Walks values into msgpack-able builtins while redacting PII and secrets.

    Safe to share between threads: the caches are plain dicts (single get/set
    operations are atomic under the GIL) and statistics counters tolerate
    lost increments. :meth:`redact` never raises.

    Args:
        config: Settings; defaults to ``RedactConfig()``.
        key: Key of the pseudonym hash; defaults to 32 random bytes. A key that
            is empty or longer than 32 bytes is first hashed to 32. The key is
            not retained, only the hash's keyed state.

    Raises:
        ValueError: On unknown rule names, invalid extra patterns or negative
            limits.
    """

    __slots__ = (
        "_active_rules",
        "_allow_names",
        "_allow_paths",
        "_cache",
        "_cache_chars",
        "_cache_gen_max",
        "_callback",
        "_degraded",
        "_enabled",
        "_extra",
        "_extra_endings",
        "_extra_words",
        "_handlers",
        "_key_cache",
        "_keyed",
        "_light",
        "_max_bytes",
        "_max_depth",
        "_max_items",
        "_max_str",
        "_min_len",
        "_need_path",
        "_old",
        "_prefilter",
        "_scanner",
        "_secret_keys_on",
        "_stats",
        "_walk_settings",
    )

    def __init__(self, config: RedactConfig | None = None, key: bytes | None = None) -> None:
        cfg = config if config is not None else RedactConfig()
        for name in ("max_str", "max_bytes", "max_depth", "max_items", "cache_size"):
            if getattr(cfg, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        extra_names = [name for name, _ in cfg.extra_patterns]
        known = set(BUILTIN_RULES) | set(extra_names)
        unknown = (set(cfg.rules or ()) | set(cfg.disabled_rules)) - known
        if unknown:
            raise ValueError(f"unknown redaction rules: {sorted(unknown)}")
        clash = set(extra_names) & set(BUILTIN_RULES)
        if clash or len(set(extra_names)) != len(extra_names):
            raise ValueError(f"extra pattern names must be unique and new: {extra_names}")

        self._enabled = cfg.enabled
        self._degraded = 0
        self._max_str = cfg.max_str
        self._max_bytes = cfg.max_bytes
        self._max_depth = min(cfg.max_depth, _DEPTH_CAP)
        self._max_items = cfg.max_items
        self._cache_gen_max = max(cfg.cache_size // 2, 1) if cfg.cache_size else 0
        self._callback = cfg.callback if cfg.enabled else None

        builtin = set(BUILTIN_RULES) if cfg.rules is None else set(cfg.rules) & set(BUILTIN_RULES)
        builtin -= cfg.disabled_rules
        if not cfg.enabled:
            builtin = set()
        self._extra_endings = tuple(normalize_key(k) for k in cfg.extra_keys if normalize_key(k))
        self._secret_keys_on = "secret" in builtin
        # The user's key names count in text too (``ssn_last4=1234``), wherever the secret rule runs.
        text_keys = self._extra_endings if self._secret_keys_on else ()
        self._scanner, self._handlers = _build_scanner(builtin, extra_keys=text_keys)
        # For text where no digit-triggered fragment can match (most text with digits).
        self._light: tuple[re.Pattern[str] | None, list[_Handler | None]] | None = (
            _build_scanner(builtin, digit_triggered=False, extra_keys=text_keys)
            if _digits_may_match is not None
            else None
        )
        # The user's key names as the C light prefilter tests them after the built-in ones
        # (lower-cased, without the '_' and '-' that camelCase, kebab-case and snake_case
        # spellings differ by), so that they cost what the built-in ones cost.
        self._extra_words = tuple(sorted({e.replace("_", "") for e in text_keys}))

        self._extra: list[tuple[str, str, re.Pattern[str]]] = []
        if cfg.enabled:
            for name, pattern in cfg.extra_patterns:
                if name in cfg.disabled_rules:
                    continue
                try:
                    self._extra.append((name, name.upper(), re.compile(pattern)))
                except re.error as exc:
                    raise ValueError(f"invalid extra pattern {name!r}: {exc}") from exc
        # (A short extra key name makes a shorter text a match: "pw=x".)
        shortest = min((len(w) + 2 for w in self._extra_words), default=_MIN_LEN)
        self._min_len = 1 if self._extra else min(_MIN_LEN, shortest)
        # Whether a text both C prefilters clear is clean as it is (what _scan finds after
        # the same tests): no extra pattern runs before them. The C dict walk reads it.
        self._prefilter = self._light is not None and not self._extra and _no_rule_can_match is not None

        self._active_rules = [r for r in BUILTIN_RULES if r in builtin] + [n for n, _, _ in self._extra]
        self._stats: dict[str, int] = dict.fromkeys(self._active_rules, 0)

        self._allow_names = frozenset(normalize_key(k) for k in cfg.allow_keys if "." not in k)
        self._allow_paths = frozenset(k for k in cfg.allow_keys if "." in k)
        self._need_path = self._callback is not None or bool(self._allow_paths)
        self._key_cache: dict[str, int] = {}

        # str -> redacted str; the value is the str itself when clean, else
        # (redacted, rules hit) so that a hit can replay the statistics.
        self._cache: dict[str, str | _Entry] = {}
        self._old: dict[str, str | _Entry] = {}
        self._cache_chars = 0

        # Only the hash's keyed state is kept, never the key itself.
        raw_key = key if key is not None else os.urandom(_KEY_BYTES)
        if not 0 < len(raw_key) <= _KEY_BYTES:
            raw_key = hashlib.blake2s(raw_key, digest_size=_KEY_BYTES).digest()
        self._keyed: Callable[[str], str] = (
            _native.Keyed(raw_key, _PSEUDO_BYTES) if _native is not None else _python_keyed(raw_key)
        )
        del raw_key
        self._settle()

    # -- public API -------------------------------------------------------

    def redact(self, value: object, path: str = "", enclosing: Iterable[int] = ()) -> object:
        """Convert ``value`` into msgpack-able builtins, redacting on the way.

        Args:
            value: Any Python object.
            path: Dotted path of ``value`` in the enclosing event, used for
                ``allow_keys`` paths and passed to the callback.
            enclosing: The ids of the containers that hold ``value`` (a checkpoint walks
                the big containers of a state itself and redacts what is below them):
                a reference back to one of them is a cycle, stored as ``<cycle>``.

        Returns:
            A structure of ``dict``/``list``/``str``/``int``/``float``/
            ``bool``/``None``/``bytes``. Never raises.
        """
        try:
            active = set(enclosing) if enclosing else set()
            if type(value) is dict:
                if _dict_walk is not None and self._enabled and not self._need_path:
                    return _dict_walk(self, value, path, 0, active)  # every event: straight to C
                return self._dict(value, path, 0, active, not self._enabled, None)
            return self._walk(value, path, 0, active, not self._enabled)
        except Exception:
            # Last resort: the recorder must never see an error from here.
            # (The walk already contains failures of repr(), model_dump(),
            # callbacks and concurrent mutation locally.)
            try:
                name = type(value).__name__
            except Exception:
                name = "object"
            return f"<unredactable {name}>"

    def unbounded(self) -> Redactor:
        """A twin with the same rules, key, caches and counters, but no size limits.

        Events are truncated to ``max_str``/``max_bytes``/``max_items``; checkpointed state
        must round-trip exactly, so the checkpoint store redacts through this twin. Sharing
        the key keeps pseudonyms identical across events and checkpoints.
        """
        twin = object.__new__(Redactor)
        for name in Redactor.__slots__:
            if hasattr(self, name):
                setattr(twin, name, getattr(self, name))
        twin._max_str = twin._max_bytes = twin._max_items = 1 << 62
        twin._settle()
        return twin

    def _settle(self) -> None:
        """Gather the limits the C dict walk reads at every walk into one attribute (one
        lookup instead of five); call again after changing any of them."""
        self._walk_settings = (
            self._max_depth,
            self._max_items,
            self._max_str,
            self._prefilter,
            self._cache_gen_max,
            self._extra_words,
        )

    def redact_text(self, text: str) -> str:
        """Apply the pattern rules to one string.

        Unlike string values met by :meth:`redact`, the text is not truncated.

        Args:
            text: The string to scan.

        Returns:
            The string with every match replaced by ``<KIND:hash>``.
        """
        if not self._enabled:
            return text
        s = str.__str__(text)
        if len(s) <= _SHORT_TEXT and self._prefilter and _no_rule_can_match(s, self._extra_words):  # type: ignore[misc]
            # No rule can match (the test _scan starts with): a short text, such as a
            # checkpoint's label, needs neither a search nor a cache slot.
            return s
        return self._text(s)

    def clean_test(self) -> Callable[[str], bool] | None:
        """A C test that says True only of a text none of this redactor's rules can change, or None.

        For a caller with many short texts (a checkpoint's label): where it says True,
        :meth:`redact_text` would return the text as it is.
        """
        test = _no_rule_can_match
        if test is None or not (self._enabled and self._prefilter):
            return None
        words = self._extra_words
        if not words:
            return test
        return lambda text: test(text, words)

    def degraded(self) -> int:
        """Values stored degraded so far: truncated, cut at a depth or item limit, cyclic, or unrepresentable.

        Counted without a lock: under concurrent use a few increments may be lost.
        """
        return self._degraded

    def stats(self) -> dict[str, int]:
        """Return how many values each running rule has replaced so far."""
        return dict(self._stats)

    def rules(self) -> list[str]:
        """Return the names of the rules that run, built-in ones first."""
        return list(self._active_rules)

    def __repr__(self) -> str:
        return f"Redactor(rules={len(self._active_rules)}, enabled={self._enabled})"

    def __reduce__(self) -> Any:
        # Pickling or copying would carry the keyed hash state (key material).
        raise TypeError("Redactor holds key material and cannot be pickled or copied")

    # -- scanning ----------------------------------------------------------

    def _text(self, s: str) -> str:
        """Scan one (already truncated) string, through the cache."""
        e = self._cache.get(s)
        if e is None:
            return self._text_miss(s)
        return e if type(e) is str else self._replay(e)

    def _replay(self, entry: Any) -> str:
        """Return a cached ``(redacted, rules hit)`` entry's text, counting its hits again."""
        out: str = entry[0]
        _count_elements(self._stats, entry[1])
        return out

    def _text_miss(self, s: str) -> str:
        """Scan a string that missed the young cache generation, and cache it."""
        e = self._old.get(s)
        if e is None:
            if len(s) < self._min_len:
                e = s
            elif len(s) <= _ID_MAX_LEN and s[0] in _ID_FIRST and not self._extra and _id_like(s):
                return s  # an id or a timestamp: unique, so not worth a cache slot either
            else:
                out, hits = self._scan(s)
                e = (out, hits) if hits else out
        n = len(s)
        if self._cache_gen_max and n <= _CACHE_MAX_ENTRY:
            cache = self._cache
            if len(cache) >= self._cache_gen_max or self._cache_chars + n > _CACHE_MAX_CHARS:
                # Generational eviction: O(1), no ordering bookkeeping, and
                # entries still in use are promoted back from the old
                # generation on their next hit.
                self._old = cache
                self._cache = cache = {}
                self._cache_chars = 0
            cache[s] = e
            self._cache_chars += n
        return e if type(e) is str else self._replay(e)

    def _scan(self, text: str) -> _Entry:
        hits: list[str] = []
        if self._extra:
            for name, kind, pattern in self._extra:
                if pattern.search(text) is not None:
                    text = pattern.sub(self._extra_replacer(kind, name, hits), text)
        # The rules read full-width forms and no-break spaces as ASCII (inline: the common
        # ASCII text pays one flag test, no call).
        source = text
        folded = None if text.isascii() else _folded(text)
        if folded is not None:
            text = folded
        scanner, handlers = self._scanner, self._handlers
        n = len(text)
        light = self._light
        if light is not None and scanner is not None and n >= _MIN_LEN and not _digits_may_match(text):  # type: ignore[misc]
            if _light_may_match is not None and not _light_may_match(text, self._extra_words):
                return (source, tuple(hits)) if hits else (source, ())  # no rule can match: no search
            scanner, handlers = light
        if (
            scanner is None
            or n < self._min_len
            # (without extra patterns, _text_miss has already let ids through unscanned)
            or (self._extra and n <= _ID_MAX_LEN and text[0] in _ID_FIRST and _id_like(text))
            or (first := scanner.search(text)) is None
        ):
            return (source, tuple(hits)) if hits else (source, ())
        if folded is None:
            out = _match_loop(text, first, scanner.search, handlers, self._keyed, hits)
        else:
            # (The C loop writes its output from the text it scans; such texts are rare.)
            out = _python_match_loop(text, first, scanner.search, handlers, self._keyed, hits, source)
        if out is None:
            return (source, tuple(hits)) if hits else (source, ())
        return out, tuple(hits)

    def _extra_replacer(self, kind: str, name: str, hits: list[str]) -> Callable[[re.Match[str]], str]:
        def replace(m: re.Match[str]) -> str:
            value = m.group(0)
            if not value:
                return value
            hits.append(name)
            return f"<{kind}:{self._keyed(value)}>"

        return replace

    def _key_slow(self, key: object) -> tuple[str, int]:
        """Convert a key to a bounded str and classify it (first sight, or odd keys)."""
        k = key if type(key) is str and len(key) <= self._max_str else self._key_str(key)
        norm = normalize_key(k)
        if norm in self._allow_names:
            kc = _KEY_ALLOWED
        elif (self._secret_keys_on and _secret_name(norm)) or (
            self._extra_endings and norm.endswith(self._extra_endings)
        ):
            kc = _KEY_SECRET
        else:
            kc = _KEY_NORMAL
        if kc != _KEY_ALLOWED and len(k) >= self._min_len:
            # A key is data too ({"jane@example.com": ...}): the pattern rules run on it.
            # A key they change is not cached, so every sight of it comes back here.
            red = self._text(k)
            if red != k:
                return red, kc
        if k is key:
            if len(self._key_cache) >= _KEY_CACHE_MAX:
                self._key_cache = {}
            self._key_cache[k] = kc
        return k, kc

    def _secret(self, value: object) -> object:
        """Replace the value of a secret-named key wholesale."""
        if value is None or value is True or value is False or (type(value) is str and not value):
            return value  # carries no secret; keeping it helps debugging
        if isinstance(value, str):
            text = value[: self._max_str]
        elif isinstance(value, bytes | bytearray):
            text = bytes(value[: self._max_bytes]).decode("utf-8", "backslashreplace")
        elif type(value) is int or type(value) is float:
            text = repr(value)
        else:
            text = self._safe_repr(value)
        _count_elements(self._stats, _SECRET_HIT)
        return f"<SECRET:{self._keyed(text)}>"

    def _safe_repr(self, value: object) -> str:
        try:
            return repr(value)[: self._max_str]
        except Exception:  # arbitrary user code: anything can fail
            try:
                name = type(value).__name__
            except Exception:
                name = "object"
            self._degraded += 1
            return f"<unrepresentable {name}>"

    def _string(self, s: str, path: str, raw: bool) -> str:
        n = len(s)
        if n > self._max_str:
            # Truncate before scanning: only stored characters are scanned.
            head = s[: self._max_str]
            self._degraded += 1
            tail = f"…<truncated {n - self._max_str} chars>"
        elif raw:
            return s
        else:
            head, tail = s, ""
        if not raw:
            if self._callback is not None:
                try:
                    replaced = self._callback(path, head)
                except Exception:
                    replaced = None
                if replaced is not None:
                    return str(replaced) + tail
            head = self._text(head) if not tail else self._cut(s, self._text(head), self._max_str)
        return head + tail if tail else head

    def _cut(self, s: str, head: str, cut: int) -> str:
        """The redacted head of a text cut at ``cut`` characters, without a value split by the cut.

        An e-mail, card or key that straddles the cut is not recognizable in the head alone
        ("jane.doe@exa"): the text is scanned again with ``_BOUNDARY`` more characters, and
        if a match there crosses the cut, the head ends with its placeholder instead.

        Args:
            s: The whole text, or at least its first ``cut + _BOUNDARY`` characters.
            head: The redacted form of ``s[:cut]``.
            cut: Where the text is cut.
        """
        ext, _ = self._scan(s[: cut + _BOUNDARY])  # (uncounted: only the crossing match counts)
        if ext.startswith(head):
            return head  # no match crosses the cut
        i = next((j for j, (a, b) in enumerate(zip(ext, head, strict=False)) if a != b), len(head))
        for m in _PLACEHOLDER.finditer(ext, max(0, i - 40), i + 64):
            if m.start() <= i < m.end():
                rule = {r.upper(): r for r in self._active_rules}.get(m.group(1))
                if rule is not None:
                    _count_elements(self._stats, (rule,))
                return ext[: m.end()]
        return head[:i]  # (not a placeholder: drop what differs)

    def _bytes(self, data: bytes, n: int, raw: bool) -> bytes:
        """Store a value ``n`` bytes long, of which ``data`` is the start.

        ``data`` holds the first ``max_bytes`` bytes (those stored) and, when the value is
        longer, up to ``_BOUNDARY`` more: a value split by the cut is seen whole there.
        """
        head = data[: self._max_bytes]
        if not raw and len(head) >= self._min_len:
            # Bytes are scanned as the text they hold (HTTP bodies, JSON, protocol frames).
            # Undecodable bytes (Latin-1 text, binary framing, a character the truncation
            # split) become lone surrogates and come back unchanged, so a secret next to
            # them is found and everything else is stored byte for byte.
            text = head.decode("utf-8", "surrogateescape")
            out = self._text(text) if n <= self._max_bytes else self._cut_bytes(data, text)
            if out is not text and out != text:
                head = out.encode("utf-8", "surrogateescape")
        if n > self._max_bytes:
            self._degraded += 1
            head += f"…<truncated {n - self._max_bytes} bytes>".encode()
        return head

    def _cut_bytes(self, data: bytes, text: str) -> str:
        """:meth:`_cut` for bytes: the redacted ``text``, the decoded head of ``data``."""
        ext = data.decode("utf-8", "surrogateescape")
        # A character the cut splits is lone surrogates at the end of ``text`` but whole in
        # ``ext``: compare up to it, and keep its bytes as they are when nothing crosses the cut.
        k = len(text)
        while k and not ext.startswith(text[:k]):
            k -= 1
        head = self._text(text[:k])
        kept = self._cut(ext, head, k)
        return kept + text[k:] if kept == head else kept

    def _walk(self, v: Any, path: str, depth: int, active: set[int], raw: bool) -> object:
        t = type(v)
        if t is str:
            return self._string(v, path, raw)
        if t is dict:
            return self._dict(v, path, depth, active, raw, None)
        if t is int:
            return v if -9223372036854775808 <= v <= 18446744073709551615 else self._big_int(v)
        if t is float or t is bool or v is None:
            return v
        if t is list or t is tuple:
            return self._seq(v, path, depth, active, raw, None)
        if t is bytes:
            return self._bytes(v[: self._max_bytes + _BOUNDARY], len(v), raw)
        return self._other(v, path, depth, active, raw)

    def _other(self, v: Any, path: str, depth: int, active: set[int], raw: bool) -> object:
        # Subclasses of builtins are converted to the exact builtin type.
        if isinstance(v, str):
            return self._string(str.__str__(v), path, raw)
        if isinstance(v, bool):
            return bool(v)
        if isinstance(v, int):
            iv = int.__index__(v)
            return iv if _I64_MIN <= iv <= _U64_MAX else self._big_int(iv)
        if isinstance(v, float):
            return float.__float__(v)
        if isinstance(v, bytes | bytearray):
            return self._bytes(bytes(v[: self._max_bytes + _BOUNDARY]), len(v), raw)
        if isinstance(v, memoryview):
            return self._memoryview(v, raw)
        if isinstance(v, dict):
            return self._dict(v, path, depth, active, raw, None)
        if isinstance(v, list | tuple | set | frozenset | deque):
            return self._seq(v, path, depth, active, raw, None)
        if isinstance(v, type):
            return self._string(self._safe_repr(v), path, raw)
        vt = type(v)
        if hasattr(vt, "__dataclass_fields__"):
            return self._container(v, path, depth, active, raw, self._dataclass_dict)
        if callable(getattr(vt, "model_dump", None)):
            return self._container(v, path, depth, active, raw, _model_dump)
        if isinstance(v, Mapping):
            return self._container(v, path, depth, active, raw, _mapping_dict)
        text = _as_text(v)
        if text is not None:  # a value whose text is its data form (a datetime, a UUID...)
            return self._string(text, path, raw)
        self._degraded += 1  # an object with no data form: stored as its repr
        return self._string(self._safe_repr(v), path, raw)

    def _big_int(self, v: int) -> str:
        self._degraded += 1  # beyond msgpack's 64-bit range: stored as text
        try:
            s = str(v)
        except ValueError:  # beyond sys.get_int_max_str_digits()
            s = hex(v)
        if len(s) > self._max_str:
            self._degraded += 1
            return s[: self._max_str] + f"…<truncated {len(s) - self._max_str} chars>"
        return s

    def _memoryview(self, v: memoryview, raw: bool) -> object:
        try:
            if v.c_contiguous:
                flat = v if v.ndim == 1 and v.format == "B" else v.cast("B")
                return self._bytes(flat[: self._max_bytes + _BOUNDARY].tobytes(), flat.nbytes, raw)
            data = v.tobytes()
            return self._bytes(data[: self._max_bytes + _BOUNDARY], len(data), raw)
        except (ValueError, TypeError):  # released or exotic views
            self._degraded += 1
            return "<unrepresentable memoryview>"

    def _dataclass_dict(self, v: Any) -> dict[str, object]:
        return {f.name: getattr(v, f.name, None) for f in dataclasses.fields(v)}

    def _container(
        self,
        v: object,
        path: str,
        depth: int,
        active: set[int],
        raw: bool,
        convert: Callable[[Any], object],
    ) -> object:
        """Walk what ``convert`` makes of ``v`` (a dataclass, model or mapping)."""
        if depth > self._max_depth:
            self._degraded += 1
            return MAX_DEPTH
        oid = id(v)
        if oid in active:
            self._degraded += 1
            return CYCLE
        active.add(oid)
        try:
            try:
                converted = convert(v)
            except Exception:
                return self._string(self._safe_repr(v), path, raw)
            return self._walk(converted, path, depth, active, raw)
        finally:
            active.discard(oid)

    def _dict(
        self,
        d: dict[Any, Any],
        path: str,
        depth: int,
        active: set[int],
        raw: bool,
        snapshot: list[tuple[Any, Any]] | None,
    ) -> object:
        if _dict_walk is not None and not raw and snapshot is None and not self._need_path and type(d) is dict:
            return _dict_walk(self, d, path, depth, active)  # the loop below, in C
        if depth > self._max_depth:
            self._degraded += 1
            return MAX_DEPTH
        oid = id(d)
        if oid in active:
            self._degraded += 1
            return CYCLE
        active.add(oid)
        out: dict[str, object] = {}
        try:
            total = len(d)
            items: Iterable[tuple[Any, Any]] = d.items() if snapshot is None else snapshot
            if total > self._max_items:
                items = islice(items, self._max_items)
            sub = depth + 1
            maxs = self._max_str
            # The loops below inline the common cases (short strings, cache
            # hits, scalars, nested dicts) to save a call per value.
            if raw:
                for k, v in items:
                    if type(k) is not str or len(k) > maxs:
                        k = self._key_str(k)
                    t = type(v)
                    if t is str:
                        out[k] = v if len(v) <= maxs else self._string(v, path, True)
                    elif t is int:
                        out[k] = v if -9223372036854775808 <= v <= 18446744073709551615 else self._big_int(v)
                    elif t is float or t is bool or v is None:
                        out[k] = v
                    elif t is dict:
                        out[k] = self._dict(v, path, sub, active, True, None)
                    else:
                        out[k] = self._walk(v, path, sub, active, True)
            else:
                need_path = self._need_path
                key_get = self._key_cache.get
                cache_get = self._cache.get
                fast_str = self._callback is None
                p = path
                for k, v in items:
                    # Known keys are plain str of acceptable length: one lookup.
                    kc = key_get(k) if type(k) is str else None
                    if kc is None:
                        k, kc = self._key_slow(k)
                    if need_path:
                        p = f"{path}.{k}" if path else k
                        if self._allow_paths and self._path_allowed(p):
                            kc = _KEY_ALLOWED
                    if kc:
                        if kc == _KEY_SECRET:
                            out[k] = self._secret(v)
                        else:  # allow-listed: sanitize only
                            out[k] = self._walk(v, p, sub, active, True)
                        continue
                    t = type(v)
                    if t is str:
                        # Cache hit: one lookup; clean strings are cached as
                        # themselves, redacted ones as (text, rules hit).
                        # (A text longer than the cache keeps is never in it: not hashed whole.)
                        e = cache_get(v) if fast_str and len(v) <= _CACHE_MAX_ENTRY else None
                        if e is None:
                            if fast_str and len(v) <= maxs:
                                out[k] = self._text_miss(v)
                            else:
                                out[k] = self._string(v, p, False)
                        elif type(e) is str:
                            out[k] = e
                        else:
                            out[k] = self._replay(e)
                    elif t is int:
                        out[k] = v if -9223372036854775808 <= v <= 18446744073709551615 else self._big_int(v)
                    elif t is float or t is bool or v is None:
                        out[k] = v
                    elif t is dict:
                        out[k] = self._dict(v, p, sub, active, False, None)
                    else:
                        out[k] = self._walk(v, p, sub, active, False)
            if total > self._max_items:
                self._degraded += 1
                out[_TRUNC_KEY] = f"<truncated {total - self._max_items} items>"
            return out
        except RecursionError:
            self._degraded += 1
            return MAX_DEPTH
        except RuntimeError:
            # Another thread changed the dict while we iterated. Copying its
            # items is one C call that holds the GIL, so the copy is consistent.
            if snapshot is not None:
                return "<unstable dict>"
            try:
                snapshot = list(islice(d.items(), self._max_items))
            except RuntimeError:
                return "<unstable dict>"
            active.discard(oid)
            return self._dict(d, path, depth, active, raw, snapshot)
        finally:
            active.discard(oid)

    def _dict_unstable(self, d: dict[Any, Any], path: str, depth: int, active: set[int]) -> object:
        """The C walk's way out when ``d`` changed under it: the Python walk of a snapshot."""
        try:
            snapshot = list(islice(d.items(), self._max_items))
        except RuntimeError:
            return "<unstable dict>"
        return self._dict(d, path, depth, active, False, snapshot)

    def _path_allowed(self, path: str) -> bool:
        return path in self._allow_paths or ("[" in path and _PATH_INDEX.sub("", path) in self._allow_paths)

    def _key_str(self, k: object) -> str:
        s = str.__str__(k) if isinstance(k, str) else self._safe_repr(k)
        return s[: self._max_str]

    def _seq(
        self,
        seq: Any,
        path: str,
        depth: int,
        active: set[int],
        raw: bool,
        snapshot: list[Any] | None,
    ) -> object:
        if depth > self._max_depth:
            self._degraded += 1
            return MAX_DEPTH
        oid = id(seq)
        if oid in active:
            self._degraded += 1
            return CYCLE
        active.add(oid)
        out: list[object] = []
        append = out.append
        try:
            total = len(seq)
            items: Iterable[Any] = seq if snapshot is None else snapshot
            max_items = self._max_items
            if total > max_items:
                items = items[:max_items] if type(items) is list or type(items) is tuple else islice(items, max_items)
            sub = depth + 1
            maxs = self._max_str
            if raw:
                for v in items:
                    t = type(v)
                    if t is str:
                        append(v if len(v) <= maxs else self._string(v, path, True))
                    elif t is int:
                        append(v if -9223372036854775808 <= v <= 18446744073709551615 else self._big_int(v))
                    elif t is float or t is bool or v is None:
                        append(v)
                    elif t is dict:
                        append(self._dict(v, path, sub, active, True, None))
                    else:
                        append(self._walk(v, path, sub, active, True))
            elif self._need_path:
                for i, v in enumerate(items):
                    append(self._walk(v, f"{path}[{i}]", sub, active, False))
            else:
                cache_get = self._cache.get
                for v in items:
                    t = type(v)
                    if t is str:
                        e = cache_get(v) if len(v) <= _CACHE_MAX_ENTRY else None
                        if e is None:
                            append(self._text_miss(v) if len(v) <= maxs else self._string(v, path, False))
                        elif type(e) is str:
                            append(e)
                        else:
                            append(self._replay(e))
                    elif t is int:
                        append(v if -9223372036854775808 <= v <= 18446744073709551615 else self._big_int(v))
                    elif t is float or t is bool or v is None:
                        append(v)
                    elif t is dict:
                        append(self._dict(v, path, sub, active, False, None))
                    else:
                        append(self._walk(v, path, sub, active, False))
            if total > max_items:
                self._degraded += 1
                append(f"…<truncated {total - max_items} items>")
            return out
        except RecursionError:
            self._degraded += 1
            return MAX_DEPTH
        except RuntimeError:
            # A set or deque changed size under us: retry on a C-level copy.
            if snapshot is not None:
                return "<unstable container>"
            try:
                snapshot = list(islice(seq, self._max_items))
            except RuntimeError:
                return "<unstable container>"
            active.discard(oid)
            return self._seq(seq, path, depth, active, raw, snapshot)
        finally:
            active.discard(oid)


def _model_dump(v: Any) -> object:
    return v.model_dump()


def _mapping_dict(v: Any) -> object:
    return dict(v.items())


# Redactor._dict's common case in C (see _redact_native.c); it calls these same helpers.
_dict_walk: Callable[..., object] | None = (
    _native.DictWalk(
        key_slow=Redactor._key_slow,
        secret=Redactor._secret,
        walk=Redactor._walk,
        text_miss=Redactor._text_miss,
        string=Redactor._string,
        replay=Redactor._replay,
        big_int=Redactor._big_int,
        unstable=Redactor._dict_unstable,
        max_depth_marker=MAX_DEPTH,
        cycle_marker=CYCLE,
        trunc_key=_TRUNC_KEY,
    )
    if _native is not None
    else None
)
