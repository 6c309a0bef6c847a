"""PII and secret redaction for flightrec events.

The :class:`Redactor` turns any Python value into msgpack-able builtins (``dict``
with ``str`` keys, ``list``, ``str``, ``int``, ``float``, ``bool``, ``None``,
``bytes``) and replaces personal data and credentials on the way with keyed
pseudonyms such as ``<EMAIL:3f9a0c>``.

It sits on the recorder's hot path, so the design is driven by speed:

* **One regex pass per string.** Every built-in rule is anchored on a single
  literal "trigger" character (``@`` for e-mail, ``-`` for ``sk-``/``xoxb-``/PEM,
  a digit for numbers, ``:`` for URLs and IPv6, ...). All rules are compiled into
  one alternation whose top-level branches each start with such a literal, which
  lets ``re`` skip straight from one trigger character to the next with its
  charset-prefix scan instead of trying every rule at every position. Context
  that lies *before* the trigger (the ``sk`` of ``sk-``, an e-mail's local part,
  an IBAN's country code) is checked with look-behinds and re-attached when the
  replacement is spliced in.
* **Validation in Python, only on candidates.** Luhn, IBAN mod-97, octet ranges,
  SSN area rules and phone digit counts run only for the rare regex hits.
* **A bounded two-generation cache** maps already-seen strings to their redacted
  form, since agent traffic repeats (system prompts, earlier messages).
* Strings shorter than 6 characters cannot hold any built-in PII and are
  returned untouched; strings are truncated to ``max_str`` *before* scanning, so
  a 10 MB string costs what its stored 4 KiB costs.

Pseudonyms are the first 6 hex digits of HMAC-SHA256(key, value): stable within
one :class:`Redactor`, different across Redactors with different keys. The key
itself is never kept: only the SHA-256 states of the HMAC inner and outer pads
are retained, and the Redactor refuses to be pickled or copied.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any, NamedTuple

__all__ = ["BUILTIN_RULES", "RedactConfig", "Redactor"]

# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedactConfig:
    """Settings for a :class:`Redactor`.

    Attributes:
        enabled: ``False`` turns every rule off (patterns, key names, callback);
            the walk still sanitizes values (truncation, type conversion).
        rules: Built-in rule names to run; ``None`` runs all of
            :data:`BUILTIN_RULES`.
        disabled_rules: Rule names (built-in or extra) not to run.
        extra_patterns: ``(rule_name, regex)`` pairs; matches are replaced by
            ``<RULE_NAME:hash>``. They run before the built-in rules.
        extra_keys: Extra secret key-name endings (normalized like keys are).
        allow_keys: Normalized key names, or dotted paths such as
            ``"tool.args.email"``, whose values are never redacted.
        callback: ``(path, value) -> replacement | None`` called for every
            string value before the built-in handling; ``None`` keeps it.
        max_str: Maximum stored characters per string value.
        max_bytes: Maximum stored bytes per bytes value.
        max_depth: Maximum container nesting depth kept.
        max_items: Maximum items kept per list or dict.
        cache_size: Maximum number of cached redacted strings.
    """

    enabled: bool = True
    rules: frozenset[str] | None = None
    disabled_rules: frozenset[str] = frozenset()
    extra_patterns: tuple[tuple[str, str], ...] = ()
    extra_keys: tuple[str, ...] = ()
    allow_keys: tuple[str, ...] = ()
    callback: Callable[[str, str], str | None] | None = None
    max_str: int = 4096
    max_bytes: int = 4096
    max_depth: int = 64
    max_items: int = 1000
    cache_size: int = 4096


# Order matters only for reporting; the scanner's priority is fixed by _FRAGS.
BUILTIN_RULES: tuple[str, ...] = (
    "private_key",
    "url_password",
    "jwt",
    "anthropic_key",
    "openai_key",
    "aws_key",
    "github_token",
    "slack_token",
    "google_key",
    "stripe_key",
    "auth_header",
    "bearer",
    "email",
    "iban",
    "ipv6",
    "ipv4",
    "ssn",
    "phone",
    "card",
    "secret",  # key-name rule: value of a key such as "password" or "api_key"
)

# Markers stored in place of values the walk refuses to descend into.
CYCLE = "<cycle>"
MAX_DEPTH = "<max depth>"
_TRUNC_KEY = "…"

# Strings shorter than this cannot contain any built-in match (the shortest,
# an e-mail like "a@b.co", has 6 characters).
_MIN_LEN = 6
# Strings shorter than this are rescanned rather than cached: scanning them is
# about as cheap as a cache round trip, and they would evict long strings.
_CACHE_MIN_LEN = 16
# Upper bound on the characters held by one cache generation.
_CACHE_MAX_CHARS = 4_000_000
_PSEUDO_CACHE_MAX = 8192
_KEY_CACHE_MAX = 8192
# Hard cap on walk depth so that a deep (or misconfigured) max_depth can never
# run into the interpreter's recursion limit (two frames per level).
_DEPTH_CAP = 128
_I64_MIN = -(1 << 63)
_U64_MAX = (1 << 64) - 1

# --------------------------------------------------------------------------
# Key-name rule
# --------------------------------------------------------------------------

# Normalized key endings whose value is replaced wholesale by <SECRET:...>.
# Matching is on the *end* of the normalized name, so "access_token" matches
# "token" while "token_count", "tokens" and "max_tokens" do not.
_SECRET_KEY_ENDINGS: tuple[str, ...] = (
    "password",
    "passwords",
    "passwd",
    "passphrase",
    "_pwd",  # "db_pwd"; a bare "pwd"/"PWD" is the shell's working directory
    "secret",
    "secrets",
    "secret_key",
    "token",
    "api_key",
    "api_keys",
    "apikey",
    "access_key",
    "private_key",
    "authorization",
    "cookie",
    "cookies",
    "credential",
    "credentials",
    "session_id",
    "sessionid",
)

# Names that end like a secret but are well-known harmless LLM / pagination
# fields (tokenizer special tokens, page cursors).
_BENIGN_KEYS = frozenset(
    {
        "max_token",
        "num_token",
        "n_token",
        "bos_token",
        "eos_token",
        "pad_token",
        "unk_token",
        "sep_token",
        "cls_token",
        "mask_token",
        "stop_token",
        "start_token",
        "end_token",
        "page_token",
        "next_page_token",
        "prev_page_token",
        "next_token",
        "continuation_token",
        "cancellation_token",
    }
)

_KEY_NORMAL, _KEY_SECRET, _KEY_ALLOWED = 0, 1, 2

_CAMEL_1 = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")
_KEY_SEP = re.compile(r"[^a-z0-9]+")
_PATH_INDEX = re.compile(r"\[\d+\]")


def normalize_key(name: str) -> str:
    """Normalize a key name for the key-name rules.

    Lowercases and turns camelCase, ``-``, spaces and other separators into
    single underscores: ``"X-Api-Key"`` and ``"apiKey"`` both become
    ``"x_api_key"``/``"api_key"``.

    Args:
        name: The raw key name.

    Returns:
        The normalized name.
    """
    name = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", name))
    return _KEY_SEP.sub("_", name.lower()).strip("_")


# --------------------------------------------------------------------------
# Validators (run only on regex candidates)
# --------------------------------------------------------------------------

_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16,
    "BG": 22, "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28,
    "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
    "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23,
    "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def luhn_ok(digits: str) -> bool:
    """Return whether a string of ASCII digits passes the Luhn checksum.

    Args:
        digits: Only the characters ``0-9``.

    Returns:
        ``True`` if the checksum is valid.
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """Return whether a compact (space-free) upper-case IBAN is valid.

    Checks the per-country length where known (15-34 otherwise) and the
    ISO 13616 mod-97 checksum.

    Args:
        iban: Upper-case letters and digits, no spaces.

    Returns:
        ``True`` if the IBAN is valid.
    """
    n = len(iban)
    want = _IBAN_LENGTHS.get(iban[:2])
    if (want is not None and n != want) or not 15 <= n <= 34:
        return False
    # Move the country code and check digits to the end, letters -> 10..35.
    return int("".join(str(int(c, 36)) for c in iban[4:] + iban[:4])) % 97 == 1


_VERSION_BEFORE = re.compile(r"(?i)(?:\bversion|\bver|\brev|\brelease|\bv)\.?\s*[:=]?\s*$")


_DIGIT_RUN = re.compile(r"\d+")


def _digits(s: str) -> str:
    return "".join(c for c in s if "0" <= c <= "9")


def _chk_card(text: str, a: int, b: int) -> tuple[int, int] | None:
    span = text[a:b]
    digits = _digits(span)
    if not 13 <= len(digits) <= 19 or not luhn_ok(digits):
        return None
    if len(digits) != len(span):
        # Separated numbers must look like a card: one kind of separator and
        # groups of 4-6 digits (4-4-4-4, 4-6-5, 4-4-4-4-3).
        sep = "-" if "-" in span else " "
        if sep == "-" and " " in span:
            return None
        groups = span.split(sep)
        if not 2 <= len(groups) <= 5 or any(not 4 <= len(g) <= 6 for g in groups[:-1]):
            return None
    return a, b


def _chk_ssn(text: str, a: int, b: int) -> tuple[int, int] | None:
    area, group, serial = text[a:b].split("-")
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return None
    return a, b


def _chk_ipv4(text: str, a: int, b: int) -> tuple[int, int] | None:
    if any(int(o) > 255 for o in text[a:b].split(".")):
        return None
    # "version 1.2.3.4" / "v1.2.3.4" is a version number, not an address.
    if _VERSION_BEFORE.search(text, max(0, a - 12), a):
        return None
    return a, b


def _chk_phone_national(text: str, a: int, b: int) -> tuple[int, int] | None:
    return (a, b) if 10 <= len(_digits(text[a:b])) <= 11 else None


def _chk_phone_intl(text: str, a: int, b: int) -> tuple[int, int] | None:
    runs = _DIGIT_RUN.findall(text, a, b)
    count = sum(map(len, runs))
    if count > 15:
        # A greedy match can swallow a following number ("+44 20 7946 0958
        # 2024"); cut back to the last digit group within E.164's 15 digits.
        count = 0
        end = a
        for m in _DIGIT_RUN.finditer(text, a, b):
            if count + len(m.group()) > 15:
                break
            count += len(m.group())
            end = m.end()
        b = end
    return (a, b) if count >= 8 else None


def _chk_token(text: str, a: int, b: int) -> tuple[int, int] | None:
    # Random credentials of this length contain a digit with near certainty;
    # requiring one keeps "sk-learn-style-regression" style words out.
    tok = text[a:b]
    return (a, b) if any("0" <= c <= "9" for c in tok) else None


def _chk_bearer(text: str, a: int, b: int) -> tuple[int, int] | None:
    tok = text[a:b]
    if any("0" <= c <= "9" for c in tok):
        return a, b
    if len(tok) >= 20 and tok.lower() != tok and tok.upper() != tok:
        return a, b
    return None


def _chk_iban(text: str, a: int, b: int) -> tuple[int, int] | None:
    return (a, b) if iban_ok(text[a:b].replace(" ", "")) else None


_HEX = frozenset("0123456789abcdefABCDEF")
_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _chk_ipv6(text: str, a: int, b: int) -> tuple[int, int] | None:
    # The match starts at the first ':'; re-attach the hex group before it.
    lo = a
    while lo > 0 and a - lo < 4 and text[lo - 1] in _HEX:
        lo -= 1
    if lo > 0 and text[lo - 1] in _WORD:
        return None
    while b > a and text[b - 1] == ".":
        b -= 1
    if b < len(text) and text[b] in _WORD:
        return None
    cand = text[lo:b]
    try:
        ipaddress.IPv6Address(cand)
    except ValueError:
        return None
    if "::" in cand:
        # Compressed forms must carry some substance, so that slices such as
        # "a[1::2]" or Rust/C++ paths are not taken for addresses.
        groups = [g for g in cand.replace(".", ":").split(":") if g]
        if len(groups) < 2 or not any(len(g) >= 3 or not g.isdigit() for g in groups):
            return None
    return lo, b


# --------------------------------------------------------------------------
# Pattern fragments
# --------------------------------------------------------------------------

# Zero-width "start of token" checks, tolerant of JSON-escaped line breaks
# ("...\\nsk-abc" must still count as a token start).
_NB = r"(?:(?<![A-Za-z0-9_])|(?<=\\[nrt]))"
_NBD = r"(?:(?<![A-Za-z0-9_\-])|(?<=\\[nrt]))"
# Start of a number: the character before the trigger digit is not part of a
# word, a dotted/dashed id ("ORD-2024-000123", "1.2.3") or a '+' phone prefix.
_NUM_LB = r"(?:(?<![A-Za-z0-9_.\-+].)|(?<=\\[nrt].))"
_NUM_END = r"(?![A-Za-z0-9_]|[.\-]\d)"
_DIGITS = "0123456789"


class _Frag(NamedTuple):
    rule: str
    anchors: str  # literal trigger characters this fragment follows
    pattern: str  # regex for the text after the trigger character
    ext: int  # characters before the group start that belong to the match
    inner: bool = False  # the pattern's one capturing group is the span
    check: Callable[[str, int, int], tuple[int, int] | None] | None = None
    numeric: bool = False  # shares the _NUM_LB start check


_FRAGS: tuple[_Frag, ...] = (
    _Frag(
        "private_key",
        "-",
        r"----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[\s\S]*?-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|[\s\S]*)",
        1,
    ),
    _Frag("anthropic_key", "-", rf"(?<={_NBD}sk-)ant-[A-Za-z0-9_\-]{{20,}}", 3),
    _Frag("openai_key", "-", rf"(?<={_NBD}sk-)[A-Za-z0-9_\-]{{20,}}", 3, check=_chk_token),
    _Frag("slack_token", "-", rf"(?<={_NB}xox[abposr]-)[A-Za-z0-9\-]{{10,}}", 5),
    _Frag(
        "url_password",
        ":",
        r"(?<=[A-Za-z0-9]:)//[^\s/?#@:'\"<>\[\]]*:([^\s/?#'\"<>]+)@(?=[A-Za-z0-9\[])",
        0,
        inner=True,
    ),
    _Frag(
        "ipv6",
        ":",
        # Reject a colon preceded by a non-hex word ("std::", "foo:") or by
        # more than four hex digits; then require "::" ahead or enough groups
        # for the full form, so times ("12:34:56") and MACs fail in C.
        r"(?<![G-Zg-z_.]:)(?<![G-Zg-z_.][0-9A-Fa-f]:)(?<![G-Zg-z_.][0-9A-Fa-f]{2}:)"
        r"(?<![G-Zg-z_.][0-9A-Fa-f]{3}:)(?<![G-Zg-z_.][0-9A-Fa-f]{4}:)(?<![0-9A-Fa-f]{5}:)"
        r"(?=:|[0-9A-Fa-f.:]{0,40}::|(?:[0-9A-Fa-f]{1,4}:){5})[0-9A-Fa-f:.]{1,45}",
        1,
        check=_chk_ipv6,
    ),
    _Frag(
        "jwt",
        "J",
        rf"(?<={_NBD}eyJ)[A-Za-z0-9_\-]{{8,}}\.eyJ[A-Za-z0-9_\-]{{8,}}\.[A-Za-z0-9_\-]*",
        3,
    ),
    _Frag("aws_key", "A", rf"(?<={_NB}A)(?:KIA|SIA)[A-Z0-9]{{16}}(?![A-Za-z0-9])", 1),
    _Frag("google_key", "A", rf"(?<={_NBD}A)Iza[0-9A-Za-z_\-]{{35}}(?![A-Za-z0-9_\-])", 1),
    _Frag("stripe_key", "_", rf"(?<={_NB}[srp]k_)(?:live|test)_[A-Za-z0-9]{{10,}}", 3),
    _Frag("github_token", "_", rf"(?<={_NB}gh[pousr]_)[A-Za-z0-9]{{30,}}", 4),
    _Frag("github_token", "_", rf"(?<={_NB}github_)pat_[A-Za-z0-9_]{{22,}}", 7),
    _Frag(
        "auth_header",
        "zZ",
        r"(?:(?<=[Aa]uthoriz)ation|(?<=AUTHORIZ)ATION)[\"']?[ \t]*[:=][ \t]*[\"']?"
        r"(?:(?:[Bb]earer|[Bb]asic|[Dd]igest|[Tt]oken|Bot|ApiKey|Negotiate|NTLM"
        r"|AWS4-HMAC-SHA256)[ \t]+)?([^\s\"',;]{6,})",
        0,
        inner=True,
    ),
    _Frag(
        "bearer",
        "Bb",
        rf"(?<={_NBD}.)earer[ \t]+([A-Za-z0-9\-._~+/]{{8,}}=*)",
        0,
        inner=True,
        check=_chk_bearer,
    ),
    _Frag(
        "email",
        "@",
        r"(?<=[A-Za-z0-9._%+\-]@)(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+"
        r"[A-Za-z]{2,24}(?![A-Za-z0-9\-])",
        -1,  # the local part is found by _local_start
    ),
    _Frag(
        "phone",
        "+",
        r"(?:(?<![A-Za-z0-9_+]\+)|(?<=\\[nrt]\+))\d{1,3}(?:[ .\-]?(?:\(\d{1,4}\)|\d{1,4})){1,7}"
        + _NUM_END,
        1,
        check=_chk_phone_intl,
    ),
    _Frag(
        "phone",
        "(",
        r"(?<![A-Za-z0-9_(]\()(?:[2-9]\d{2}\)[ ]?[2-9]\d{2}[\-. ]\d{4}"
        r"|0\d{2,4}\)[ ]?\d{3,4}[ \-]?\d{3,4})" + _NUM_END,
        1,
    ),
    _Frag(
        "iban",
        _DIGITS,
        rf"(?<={_NB}[A-Z]{{2}}.)\d(?:[ ]?[A-Z0-9]{{4}}){{2,7}}(?:[ ]?[A-Z0-9]{{1,3}})?(?![A-Za-z0-9])",
        3,
        check=_chk_iban,
    ),
    _Frag(
        "ipv4",
        _DIGITS,
        r"\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![A-Za-z0-9_]|\.\d)",
        1,
        check=_chk_ipv4,
        numeric=True,
    ),
    _Frag("ssn", "012345678", r"\d\d-\d\d-\d{4}" + _NUM_END, 1, check=_chk_ssn, numeric=True),
    _Frag(
        "phone",
        "23456789",
        r"\d{2}(?:-[2-9]\d{2}-|\.[2-9]\d{2}\.| [2-9]\d{2}[ \-])\d{4}" + _NUM_END,
        1,
        numeric=True,
    ),
    _Frag(
        "phone",
        "1",
        r"[\-. ](?:\([2-9]\d{2}\)|[2-9]\d{2})[\-. ]?[2-9]\d{2}[\-. ]\d{4}" + _NUM_END,
        1,
        numeric=True,
    ),
    _Frag(
        "phone",
        "0",
        r"\d{2,4}[ \-]\d{3,4}[ \-]?\d{3,4}" + _NUM_END,
        1,
        check=_chk_phone_national,
        numeric=True,
    ),
    # Card numbers start with 2-6 (Mastercard 2/5, Amex/Diners/JCB 3, Visa 4,
    # Discover/UnionPay 6); this also keeps epoch milli/micro/nanoseconds and
    # snowflake ids (leading 1) out even when they happen to pass Luhn.
    _Frag("card", "23456", r"(?:[ \-]?\d){12,18}" + _NUM_END, 1, check=_chk_card, numeric=True),
)

_LOCAL_REV = re.compile(r"[A-Za-z0-9._%+\-]{1,64}")


class _Handler(NamedTuple):
    rule_index: int
    group: int  # group whose span is the replacement (or whose start anchors it)
    ext: int
    check: Callable[[str, int, int], tuple[int, int] | None] | None


def _build_scanner(enabled: set[str]) -> tuple[re.Pattern[str] | None, list[_Handler | None], list[str]]:
    """Compile the combined single-pass pattern for the enabled built-in rules.

    Returns the pattern (``None`` if no pattern rule is enabled), a handler per
    group index, and the rule names indexed by ``_Handler.rule_index``.
    """
    frags = [f for f in _FRAGS if f.rule in enabled]
    anchors: list[str] = []
    for f in frags:
        for c in f.anchors:
            if c not in anchors:
                anchors.append(c)
    rule_names = sorted({f.rule for f in frags}, key=BUILTIN_RULES.index)
    handlers: list[_Handler | None] = [None]
    branches: list[str] = []
    group = 0
    for c in anchors:
        plain: list[str] = []
        numeric: list[str] = []
        for f in frags:
            if c not in f.anchors:
                continue
            group += 1
            inner_group = group + 1 if f.inner else group
            handlers.append(_Handler(rule_names.index(f.rule), inner_group, f.ext, f.check))
            if f.inner:
                group += 1
                handlers.append(None)
            (numeric if f.numeric else plain).append(f"({f.pattern})")
        alts = list(plain)
        if numeric:
            alts.append(_NUM_LB + "(?:" + "|".join(numeric) + ")")
        # Every top-level branch starts with a literal so that `re` compiles a
        # charset prefix and jumps between trigger characters in C.
        branches.append(re.escape(c) + "(?:" + "|".join(alts) + ")")
    if not branches:
        return None, handlers, rule_names
    return re.compile("|".join(branches)), handlers, rule_names


def _local_start(text: str, at: int, floor: int) -> int:
    """Return where the local part of the e-mail whose '@' is at ``at`` starts."""
    lo = max(floor, at - 64)
    m = _LOCAL_REV.match(text[lo:at][::-1])
    if m is None:
        return at
    a = at - m.end()
    while a < at and text[a] == ".":
        a += 1
    return a


# --------------------------------------------------------------------------
# Redactor
# --------------------------------------------------------------------------

_Entry = tuple[str, tuple[str, ...]]


class Redactor:
    """Walks values into msgpack-able builtins while redacting PII and secrets.

    Safe to share between threads: the caches are plain dicts (single get/set
    operations are atomic under the GIL) and statistics counters tolerate
    lost increments. :meth:`redact` never raises.

    Args:
        config: Settings; defaults to ``RedactConfig()``.
        key: HMAC key for pseudonyms; defaults to 32 random bytes. The key is
            not retained, only the derived HMAC pad states.

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
        "_enabled",
        "_extra",
        "_extra_endings",
        "_handlers",
        "_inner",
        "_key_cache",
        "_max_bytes",
        "_max_depth",
        "_max_items",
        "_max_str",
        "_min_len",
        "_need_path",
        "_old",
        "_outer",
        "_pseudo_cache",
        "_rule_names",
        "_scanner",
        "_secret_keys_on",
        "_stats",
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
        self._scanner, self._handlers, self._rule_names = _build_scanner(builtin)
        self._secret_keys_on = "secret" in builtin

        self._extra: list[tuple[str, str, re.Pattern[str]]] = []
        if cfg.enabled:
            for name, pattern in cfg.extra_patterns:
                if name in cfg.disabled_rules:
                    continue
                try:
                    self._extra.append((name, name.upper(), re.compile(pattern)))
                except re.error as exc:
                    raise ValueError(f"invalid extra pattern {name!r}: {exc}") from exc
        self._min_len = 1 if self._extra else _MIN_LEN

        self._active_rules = [r for r in BUILTIN_RULES if r in builtin] + [n for n, _, _ in self._extra]
        self._stats: dict[str, int] = dict.fromkeys(self._active_rules, 0)

        self._extra_endings = tuple(normalize_key(k) for k in cfg.extra_keys if normalize_key(k))
        self._allow_names = frozenset(normalize_key(k) for k in cfg.allow_keys if "." not in k)
        self._allow_paths = frozenset(k for k in cfg.allow_keys if "." in k)
        self._need_path = self._callback is not None or bool(self._allow_paths)
        self._key_cache: dict[str, int] = {}

        self._cache: dict[str, _Entry] = {}
        self._old: dict[str, _Entry] = {}
        self._cache_chars = 0
        self._pseudo_cache: dict[str, str] = {}

        # HMAC-SHA256 = H((K ^ opad) || H((K ^ ipad) || msg)). Keep only the two
        # pad states so the key itself is never held by this object.
        raw_key = key if key is not None else os.urandom(32)
        if len(raw_key) > 64:
            raw_key = hashlib.sha256(raw_key).digest()
        padded = raw_key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
        del raw_key, padded

    # -- public API -------------------------------------------------------

    def redact(self, value: object, path: str = "") -> object:
        """Convert ``value`` into msgpack-able builtins, redacting on the way.

        Args:
            value: Any Python object.
            path: Dotted path of ``value`` in the enclosing event, used for
                ``allow_keys`` paths and passed to the callback.

        Returns:
            A structure of ``dict``/``list``/``str``/``int``/``float``/
            ``bool``/``None``/``bytes``. Never raises.
        """
        try:
            return self._walk(value, path, 0, set(), not self._enabled)
        except Exception:  # noqa: BLE001 - the recorder must never see an error
            try:
                name = type(value).__name__
            except Exception:  # noqa: BLE001
                name = "object"
            return f"<unredactable {name}>"

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
        return self._text(str.__str__(text))

    def stats(self) -> dict[str, int]:
        """Return how many values each running rule has replaced so far."""
        return dict(self._stats)

    def rules(self) -> list[str]:
        """Return the names of the rules that run, built-in ones first."""
        return list(self._active_rules)

    def __repr__(self) -> str:
        return f"Redactor(rules={len(self._active_rules)}, enabled={self._enabled})"

    def __reduce__(self) -> Any:
        # Pickling or copying would carry the HMAC pad states (key material).
        raise TypeError("Redactor holds key material and cannot be pickled or copied")

    # -- scanning ----------------------------------------------------------

    def _pseudonym(self, value: str) -> str:
        p = self._pseudo_cache.get(value)
        if p is None:
            inner = self._inner.copy()
            inner.update(value.encode("utf-8", "surrogatepass"))
            outer = self._outer.copy()
            outer.update(inner.digest())
            p = outer.hexdigest()[:6]
            if len(self._pseudo_cache) >= _PSEUDO_CACHE_MAX:
                self._pseudo_cache = {}
            self._pseudo_cache[value] = p
        return p

    def _text(self, s: str) -> str:
        """Scan one (already truncated) string, through the cache."""
        if len(s) < self._min_len:
            return s
        entry = self._cache.get(s)
        if entry is None:
            entry = self._old.get(s)
            if entry is None:
                entry = self._scan(s)
            self._remember(s, entry)
        out, hits = entry
        if hits:
            stats = self._stats
            for rule in hits:
                stats[rule] = stats.get(rule, 0) + 1
        return out

    def _remember(self, s: str, entry: _Entry) -> None:
        n = len(s)
        if n < _CACHE_MIN_LEN or not self._cache_gen_max:
            return
        cache = self._cache
        if len(cache) >= self._cache_gen_max or self._cache_chars + n > _CACHE_MAX_CHARS:
            # Generational eviction: O(1), no ordering bookkeeping, and entries
            # still in use are promoted back from the old generation on a hit.
            self._old = cache
            self._cache = cache = {}
            self._cache_chars = 0
        cache[s] = entry
        self._cache_chars += n

    def _scan(self, text: str) -> _Entry:
        hits: list[str] = []
        if self._extra:
            for name, kind, pattern in self._extra:
                if pattern.search(text) is not None:
                    text = pattern.sub(lambda m, k=kind, n=name: self._sub_extra(m, k, n, hits), text)
        scanner = self._scanner
        if scanner is None or len(text) < _MIN_LEN:
            return text, tuple(hits)
        m = scanner.search(text)
        if m is None:
            return text, tuple(hits)
        handlers = self._handlers
        names = self._rule_names
        parts: list[str] = []
        last = 0
        while m is not None:
            h = handlers[m.lastindex or 0]
            if h is None:  # pragma: no cover - inner groups never close last
                m = scanner.search(text, m.start() + 1)
                continue
            if h.ext < 0:
                b = m.end(h.group)
                a = _local_start(text, m.start(), last)
                span: tuple[int, int] | None = (a, b) if a < m.start() else None
            else:
                a = max(m.start(h.group) - h.ext, last)
                span = (a, m.end(h.group))
                if h.check is not None:
                    span = h.check(text, a, span[1])
            if span is None:
                m = scanner.search(text, m.start() + 1)
                continue
            a, b = span
            rule = names[h.rule_index]
            parts.append(text[last:a])
            parts.append(f"<{rule.upper()}:{self._pseudonym(text[a:b])}>")
            hits.append(rule)
            last = b
            m = scanner.search(text, max(b, m.start() + 1))
        if not parts:
            return text, tuple(hits)
        parts.append(text[last:])
        return "".join(parts), tuple(hits)

    def _sub_extra(self, m: re.Match[str], kind: str, name: str, hits: list[str]) -> str:
        value = m.group(0)
        if not value:
            return value
        hits.append(name)
        return f"<{kind}:{self._pseudonym(value)}>"

    # -- the walk ------------------------------------------------------------

    def _key_class(self, key: str) -> int:
        kc = self._key_cache.get(key)
        if kc is None:
            norm = normalize_key(key)
            if norm in self._allow_names:
                kc = _KEY_ALLOWED
            elif (
                self._secret_keys_on and norm not in _BENIGN_KEYS and norm.endswith(_SECRET_KEY_ENDINGS)
            ) or (self._extra_endings and norm.endswith(self._extra_endings)):
                kc = _KEY_SECRET
            else:
                kc = _KEY_NORMAL
            if len(self._key_cache) >= _KEY_CACHE_MAX:
                self._key_cache = {}
            self._key_cache[key] = kc
        return kc

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
        self._stats["secret"] = self._stats.get("secret", 0) + 1
        return f"<SECRET:{self._pseudonym(text)}>"

    def _safe_repr(self, value: object) -> str:
        try:
            return repr(value)[: self._max_str]
        except Exception:  # noqa: BLE001
            return f"<unrepresentable {type(value).__name__}>"

    def _string(self, s: str, path: str, raw: bool) -> str:
        n = len(s)
        if n > self._max_str:
            # Truncate before scanning: only stored characters are scanned.
            head = s[: self._max_str]
            tail = f"…<truncated {n - self._max_str} chars>"
        else:
            head, tail = s, ""
        if not raw:
            if self._callback is not None:
                try:
                    replaced = self._callback(path, head)
                except Exception:  # noqa: BLE001 - a broken callback keeps defaults
                    replaced = None
                if replaced is not None:
                    return str(replaced) + tail
            head = self._text(head)
        return head + tail if tail else head

    def _bytes(self, head: bytes, n: int, raw: bool) -> bytes:
        """Store ``head`` (the first ``max_bytes`` of a value ``n`` bytes long)."""
        if not raw and len(head) >= self._min_len:
            # Bytes are scanned when they are UTF-8 text (HTTP bodies, JSON);
            # binary data usually fails to decode within a few bytes and is
            # stored as-is.
            text: str | None
            try:
                text = head.decode("utf-8")
            except UnicodeDecodeError as exc:
                # Truncation may have split a multi-byte character at the end.
                text = None
                if exc.start >= len(head) - 3:
                    try:
                        text = head[: exc.start].decode("utf-8")
                        head = head[: exc.start]
                    except UnicodeDecodeError:
                        text = None
            if text is not None:
                out = self._text(text)
                if out is not text and out != text:
                    head = out.encode("utf-8", "surrogatepass")
        if n > self._max_bytes:
            head += f"…<truncated {n - self._max_bytes} bytes>".encode()
        return head

    def _walk(self, v: object, path: str, depth: int, active: set[int], raw: bool) -> object:
        t = type(v)
        if t is str:
            return self._string(v, path, raw)  # type: ignore[arg-type]
        if t is int:
            return v if _I64_MIN <= v <= _U64_MAX else self._big_int(v)  # type: ignore[operator]
        if t is float or t is bool or v is None:
            return v
        if t is dict:
            return self._dict(v, path, depth, active, raw)  # type: ignore[arg-type]
        if t is list or t is tuple:
            return self._seq(v, len(v), path, depth, active, raw)  # type: ignore[arg-type]
        if t is bytes:
            return self._bytes(v[: self._max_bytes], len(v), raw)  # type: ignore[index, arg-type]
        return self._other(v, path, depth, active, raw)

    def _other(self, v: object, path: str, depth: int, active: set[int], raw: bool) -> object:
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
            return self._bytes(bytes(v[: self._max_bytes]), len(v), raw)
        if isinstance(v, memoryview):
            return self._memoryview(v, raw)
        if isinstance(v, dict):
            return self._dict(v, path, depth, active, raw)
        if isinstance(v, list | tuple | set | frozenset | deque):
            return self._seq(v, len(v), path, depth, active, raw)
        vt = type(v)
        if isinstance(v, type):
            return self._string(self._safe_repr(v), path, raw)
        if hasattr(vt, "__dataclass_fields__"):
            return self._container(v, path, depth, active, raw, self._dataclass_dict)
        if callable(getattr(vt, "model_dump", None)):
            return self._container(v, path, depth, active, raw, self._model_dump)
        if isinstance(v, Mapping):
            return self._container(v, path, depth, active, raw, _mapping_dict)
        return self._string(self._safe_repr(v), path, raw)

    def _big_int(self, v: int) -> str:
        try:
            s = str(v)
        except ValueError:  # beyond sys.get_int_max_str_digits()
            s = hex(v)
        if len(s) > self._max_str:
            return s[: self._max_str] + f"…<truncated {len(s) - self._max_str} chars>"
        return s

    def _memoryview(self, v: memoryview, raw: bool) -> object:
        try:
            if v.c_contiguous:
                flat = v if v.ndim == 1 and v.format == "B" else v.cast("B")
                return self._bytes(flat[: self._max_bytes].tobytes(), flat.nbytes, raw)
            data = v.tobytes()
            return self._bytes(data[: self._max_bytes], len(data), raw)
        except (ValueError, TypeError):  # released or exotic views
            return "<unrepresentable memoryview>"

    def _dataclass_dict(self, v: object) -> dict[str, object]:
        return {f.name: getattr(v, f.name, None) for f in dataclasses.fields(v)}  # type: ignore[arg-type]

    @staticmethod
    def _model_dump(v: object) -> object:
        return v.model_dump()  # type: ignore[attr-defined]

    def _container(
        self,
        v: object,
        path: str,
        depth: int,
        active: set[int],
        raw: bool,
        convert: Callable[[object], object],
    ) -> object:
        if depth > self._max_depth:
            return MAX_DEPTH
        oid = id(v)
        if oid in active:
            return CYCLE
        active.add(oid)
        try:
            try:
                converted = convert(v)
            except Exception:  # noqa: BLE001 - e.g. a failing model_dump()
                return self._string(self._safe_repr(v), path, raw)
            return self._walk(converted, path, depth, active, raw)
        finally:
            active.discard(oid)

    def _dict(self, d: dict[Any, Any], path: str, depth: int, active: set[int], raw: bool) -> object:
        if depth > self._max_depth:
            return MAX_DEPTH
        oid = id(d)
        if oid in active:
            return CYCLE
        active.add(oid)
        try:
            total = len(d)
            try:
                items: Iterable[tuple[Any, Any]] = d.items()
                if total > self._max_items:
                    items = islice(items, self._max_items)
                return self._dict_body(items, total, path, depth, active, raw)
            except RecursionError:
                return MAX_DEPTH
            except RuntimeError:
                # Another thread changed the dict while we iterated. Copying
                # its items is a single C call that holds the GIL, so the
                # snapshot is consistent.
                snapshot = list(islice(d.items(), self._max_items))
                return self._dict_body(snapshot, len(d), path, depth, active, raw)
        except RecursionError:
            return MAX_DEPTH
        except RuntimeError:
            return "<unstable dict>"
        finally:
            active.discard(oid)

    def _dict_body(
        self,
        items: Iterable[tuple[Any, Any]],
        total: int,
        path: str,
        depth: int,
        active: set[int],
        raw: bool,
    ) -> dict[str, object]:
        out: dict[str, object] = {}
        depth += 1
        need_path = self._need_path
        key_cache = self._key_cache
        walk = self._walk
        string = self._string
        child_path = ""
        n = 0
        for k, v in items:
            n += 1
            if type(k) is not str:
                k = self._key_str(k)
            if need_path:
                child_path = f"{path}.{k}" if path else k
            child_raw = raw
            if not raw:
                kc = key_cache.get(k)
                if kc is None:
                    kc = self._key_class(k)
                if kc:
                    if kc == _KEY_SECRET:
                        out[k] = self._secret(v)
                        continue
                    child_raw = True
                elif need_path and self._allow_paths and self._path_allowed(child_path):
                    child_raw = True
            t = type(v)
            if t is str:
                out[k] = string(v, child_path, child_raw)
            elif t is int or t is float or t is bool or v is None:
                out[k] = walk(v, child_path, depth, active, child_raw) if t is int else v
            else:
                out[k] = walk(v, child_path, depth, active, child_raw)
        if total > n:
            out[_TRUNC_KEY] = f"<truncated {total - n} items>"
        return out

    def _path_allowed(self, path: str) -> bool:
        return path in self._allow_paths or ("[" in path and _PATH_INDEX.sub("", path) in self._allow_paths)

    def _key_str(self, k: object) -> str:
        if isinstance(k, str):
            s = str.__str__(k)
        else:
            s = self._safe_repr(k)
        return s[: self._max_str]

    def _seq(self, seq: Iterable[Any], total: int, path: str, depth: int, active: set[int], raw: bool) -> object:
        if depth > self._max_depth:
            return MAX_DEPTH
        oid = id(seq)
        if oid in active:
            return CYCLE
        active.add(oid)
        try:
            try:
                return self._seq_body(seq, total, path, depth, active, raw)
            except RecursionError:
                return MAX_DEPTH
            except RuntimeError:
                # A set/deque changed size under us: retry on a C-level copy.
                snapshot = list(islice(seq, self._max_items))
                return self._seq_body(snapshot, total, path, depth, active, raw)
        except RecursionError:
            return MAX_DEPTH
        except RuntimeError:
            return "<unstable container>"
        finally:
            active.discard(oid)

    def _seq_body(
        self,
        seq: Iterable[Any],
        total: int,
        path: str,
        depth: int,
        active: set[int],
        raw: bool,
    ) -> list[object]:
        max_items = self._max_items
        if total > max_items:
            seq = seq[:max_items] if isinstance(seq, list | tuple) else islice(seq, max_items)
        depth += 1
        need_path = self._need_path
        walk = self._walk
        string = self._string
        out: list[object] = []
        append = out.append
        child_path = ""
        for i, v in enumerate(seq):
            if need_path:
                child_path = f"{path}[{i}]"
            t = type(v)
            if t is str:
                append(string(v, child_path, raw))
            elif t is float or t is bool or v is None:
                append(v)
            else:
                append(walk(v, child_path, depth, active, raw))
        if total > len(out):
            append(f"…<truncated {total - len(out)} items>")
        return out


def _mapping_dict(v: object) -> object:
    return dict(v.items())  # type: ignore[attr-defined]
