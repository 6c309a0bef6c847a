"""PII and secret redaction for flightrec events.

The :class:`Redactor` turns any Python value into msgpack-able builtins (``dict``
with ``str`` keys, ``list``, ``str``, ``int``, ``float``, ``bool``, ``None``,
``bytes``) and replaces personal data and credentials on the way with keyed
pseudonyms: ``<KIND:xxxxxx>``, where ``xxxxxx`` is keyed BLAKE2s(key, value)
with a 3-byte digest (BLAKE2's keyed mode is a MAC, as HMAC is). The same value
gets the same pseudonym within one Redactor (so events stay correlatable) and a
different one under another key.

Rules (rule name -> KIND label, upper-cased):

* text patterns: ``email``, ``phone`` (international ``+CC ...``, NANP
  ``(202) 555-0143`` / ``202-555-0143`` / ``1-800-...``, trunk-0 national
  ``020 7946 0958``), ``card`` (13-19 digits, Luhn, leading 2-6), ``ssn``
  (``123-45-6789``, never-issued areas excluded), ``ipv4``, ``ipv6``, ``iban``
  (country length + mod-97), ``openai_key``, ``anthropic_key``, ``aws_key``,
  ``github_token``, ``slack_token``, ``google_key``, ``stripe_key``, ``jwt``,
  ``bearer`` (the token after ``Bearer``), ``auth_header`` (the value of an
  ``Authorization:`` header), ``private_key`` (PEM blocks) and
  ``url_password`` (only the password of ``scheme://user:pass@host``);
* ``secret``: the whole value of a dict key whose normalized name ends in a
  secret word (``password``, ``token``, ``api_key``, ``cookie``, ...);
* user ``extra_patterns`` and ``extra_keys``.

Speed (this runs on the recorder's hot path):

* **One regex pass per string.** Every pattern rule is anchored on a literal
  "trigger" character: ``@`` for e-mail, ``-`` for ``sk-``/``xoxb-``/PEM,
  ``:`` for URLs and IPv6, ``_`` for ``ghp_``/``sk_live_``, a digit for numbers,
  and so on. All rules are compiled into one alternation whose top-level
  branches each start with such a literal, so ``re`` compiles a charset prefix
  and skips in C from one trigger character to the next instead of trying every
  rule at every position. Context *before* the trigger (the ``sk`` of ``sk-``,
  an e-mail's local part, an IBAN's country code) is checked by look-behinds
  and re-attached when the replacement is spliced in. Cheap validations (octet
  ranges, SSN areas, digit counts, version words) are look-arounds too; only
  Luhn, mod-97 and IPv6 structure run in Python, and only on candidates.
* Whole-string ids (hex trace ids, SHAs, UUIDs, ISO timestamps) are recognised
  with ``str`` methods and never scanned: their many digits would each be a
  trigger.
* **A bounded two-generation cache** maps seen strings to their redacted form,
  since agent traffic repeats (system prompts, earlier messages, model names).
* Strings are truncated to ``max_str`` *before* scanning, so a 10 MB string
  costs what its stored 4 KiB costs; strings shorter than 6 characters hold no
  built-in match and are not scanned.

Bytes are scanned when they decode as UTF-8 (HTTP bodies, JSON); if anything
is replaced they are re-encoded, still as ``bytes``. Binary data is stored as
is. Both are truncated to ``max_bytes`` first.

Known gaps, by design (to keep false positives near zero): phone numbers
without any separator or ``+`` (indistinguishable from ids and epochs), SSNs
written with spaces, lower-case IBANs, URL passwords containing a raw ``/``,
generic high-entropy strings without a known prefix, and names or postal
addresses (no NER). Numbers glued to a letter or preceded by ``-``/``.``
(``ORD-2024-000123``, ``v1.2.3.4``) are treated as parts of identifiers.

The key is never kept: only the hash's keyed state is, and a Redactor refuses to be
pickled or copied.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections import _count_elements, deque  # type: ignore[attr-defined]
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any, NamedTuple

from .fastpath import load_native

__all__ = [
    "BUILTIN_RULES",
    "CYCLE",
    "MAX_DEPTH",
    "RedactConfig",
    "Redactor",
    "describe_header",
    "iban_ok",
    "luhn_ok",
    "normalize_key",
]

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
        max_str: Maximum characters kept from a string value; only these are
            scanned. (Placeholders can make the stored text a little longer
            than the kept input, since ``<EMAIL:3f9a0c>`` may replace ``a@b.io``.)
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
_SHORT_TEXT = 256  # redact_text() tests a text this short for a possible match before the cache
# Upper bounds on the characters held by one cache generation, and on the
# length of a string worth caching (only redact_text() sees longer ones).
_CACHE_MAX_CHARS = 4_000_000
_CACHE_MAX_ENTRY = 65_536
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


# Luhn: bytes of the reversed digits; digits at odd positions (from the right)
# are doubled through a translation table, and sum() adds everything in C.
_LUHN_DOUBLE = bytes((2 * (i - 48) - (9 if i >= 53 else 0)) if 48 <= i <= 57 else 0 for i in range(256))


def luhn_ok(digits: str) -> bool:
    """Return whether a string of decimal digits passes the Luhn checksum.

    Args:
        digits: Only decimal digits (other scripts' digits, such as ``"１"``, count as
            their values: ``\\d`` matches them, so a candidate may hold them).

    Returns:
        ``True`` if the checksum is valid.
    """
    if not digits.isascii():
        digits = "".join(str(int(c)) for c in digits)
    raw = digits.encode("ascii")[::-1]
    keep = raw[0::2]
    total = sum(keep) - 48 * len(keep) + sum(raw[1::2].translate(_LUHN_DOUBLE))
    return total % 10 == 0


# IBAN letters become two-digit numbers (A=10 ... Z=35) for the mod-97 check.
_IBAN_LETTERS = {ord(c): str(i) for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 10)}


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
    return int((iban[4:] + iban[:4]).translate(_IBAN_LETTERS)) % 97 == 1


def _ndigits(span: str) -> int:
    """Count the digits of a span made of digits and ' .-()' separators."""
    return len(span) - span.count(" ") - span.count("-") - span.count(".") - span.count("(") - span.count(")")


def _chk_card(text: str, a: int, b: int) -> tuple[int, int] | None:
    span = text[a:b]
    digits = span.replace(" ", "").replace("-", "")
    if len(digits) == len(span):
        return (a, b) if 13 <= len(digits) <= 19 and luhn_ok(digits) else None
    # Separated numbers must look like a card: one kind of separator, groups
    # of 4-6 digits (4-4-4-4, 4-6-5, 4-4-4-4-3). The greedy pattern may have
    # swallowed a following number ("4111 1111 1111 1111 123"), so trailing
    # groups are dropped until the rest validates.
    sep = "-" if "-" in span else " "
    if sep == "-" and " " in span:
        return None
    groups = span.split(sep)
    sizes = list(map(len, groups))
    while len(groups) >= 2:
        digits = "".join(groups)
        inner = sizes[:-1]
        if 13 <= len(digits) <= 19 and min(inner) >= 4 and max(inner) <= 6 and luhn_ok(digits):
            return a, a + len(sep.join(groups))
        groups.pop()
        sizes.pop()
    return None


_DIGIT_RUN = re.compile(r"\d+")


def _chk_phone_intl(text: str, a: int, b: int) -> tuple[int, int] | None:
    count = _ndigits(text[a:b])
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


_ANY_DIGIT = re.compile(r"[0-9]")


def _has_digit(s: str) -> bool:
    return _ANY_DIGIT.search(s) is not None


def _chk_bearer(text: str, a: int, b: int) -> tuple[int, int] | None:
    tok = text[a:b]
    if _has_digit(tok):
        return a, b
    if len(tok) >= 20 and tok.lower() != tok and tok.upper() != tok:
        return a, b
    return None


def _chk_iban(text: str, a: int, b: int) -> tuple[int, int] | None:
    return (a, b) if iban_ok(text[a:b].replace(" ", "")) else None


_HEX_CHARS = "0123456789abcdefABCDEF"
_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _ipv6_groups(cand: str) -> list[str] | None:
    """Return the hex groups of an IPv6 address (IPv4 tail as two), or None."""
    if "." in cand:
        i = cand.rfind(":")
        tail = cand[i + 1 :].split(".")
        if len(tail) != 4 or not all(t.isdigit() and len(t) <= 3 and int(t) <= 255 for t in tail):
            return None
        cand = cand[: i + 1] + "0:0"
    double = cand.count("::")
    if double > 1:
        return None
    if double:
        head, tail_s = cand.split("::")
        groups = (head.split(":") if head else []) + (tail_s.split(":") if tail_s else [])
        if len(groups) > 7:
            return None
    else:
        groups = cand.split(":")
        if len(groups) != 8:
            return None
    if "" in groups or max(map(len, groups), default=0) > 4:
        return None
    return groups


def _after_escape(text: str, i: int) -> bool:
    """Whether ``text[i]`` follows a JSON-style escape such as a literal ``\\n``."""
    return i > 1 and text[i - 1] in "nrt" and text[i - 2] == "\\"


def _chk_ipv6(text: str, a: int, b: int) -> tuple[int, int] | None:
    # The match starts at the first ':'; re-attach the hex group before it.
    lo = a - 5 if a >= 5 else 0
    lo += len(text[lo:a].rstrip(_HEX_CHARS))
    if a - lo > 4 or (lo > 0 and text[lo - 1] in _WORD and not _after_escape(text, lo)):
        return None
    while b > a and text[b - 1] == ".":
        b -= 1
    if b < len(text) and text[b] in _WORD:
        return None
    cand = text[lo:b]
    if _ipv6_groups(cand) is None:
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
# word, a dotted/dashed id ("ORD-2024-000123", "1.2.3") or a '+' phone prefix;
# n/r/t are allowed only as "\n"-style escapes. (Digits inside a number are
# rejected earlier, by _DIGIT_LB, in a single step.)
_NUM_LB = r"(?<![A-Za-mo-qsu-z_.\-+].)(?:(?<![nrt].)|(?<=\\[nrt].))"
_NUM_END = r"(?![A-Za-z0-9_]|[.\-]\d)"
_DIGIT_LB = r"(?<![0-9].)"
# Placed after the first octet and its dot: no version word right before it.
_NOT_AFTER_VERSION_WORD = "".join(
    rf"(?<!{word}\d{{{k}}}\.)"
    for word in ("[Vv]ersion ", "[Vv]ersion: ", "[Vv]ersion=", "[Vv]er ", "[Vv]er. ", "[Rr]ev ", "[Rr]elease ", "[Vv] ")
    for k in (1, 2, 3)
)
_DIGITS = "0123456789"


# The rest of an e-mail domain after its first character: labels, then a TLD.
_DOMAIN_REST = (
    r"(?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)


class _Frag(NamedTuple):
    rule: str
    anchors: str  # literal trigger characters this fragment follows
    pattern: str  # regex for the text after the trigger character
    back: int  # characters before the trigger that belong to the match (-1: e-mail local part)
    inner: bool = False  # the pattern's one capturing group is the span
    check: Callable[[str, int, int], tuple[int, int] | None] | None = None
    numeric: bool = False  # shares the _NUM_LB start check


# Patterns start with a literal or a character class where possible: `re`
# rejects such a branch with one comparison, while a branch that starts with
# a look-around costs a full sub-match. Look-behinds that check the context
# before the trigger come right after that first cheap test.
_FRAGS: tuple[_Frag, ...] = (
    _Frag(
        "private_key",
        "-",
        r"----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[\s\S]*?-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|[\s\S]*)",
        0,
    ),
    _Frag("anthropic_key", "-", rf"ant-(?<={_NBD}sk-ant-)[A-Za-z0-9_\-]{{20,}}", 2),
    _Frag(
        "openai_key",
        "-",
        # Random keys contain a digit with near certainty; requiring one keeps
        # words such as "sk-learn-style-regression" out.
        rf"[A-Za-z0-9_\-](?<=sk-.)(?<={_NBD}sk-.)(?=[A-Za-z_\-]{{0,80}}[0-9])[A-Za-z0-9_\-]{{19,}}",
        2,
    ),
    _Frag("slack_token", "-", rf"[A-Za-z0-9](?<=xox[abposr]-.)(?<={_NB}xox.-.)[A-Za-z0-9\-]{{9,}}", 4),
    _Frag(
        "url_password",
        ":",
        r"//(?<=[A-Za-z0-9]://)[^\s/?#@:'\"<>\[\]]*:([^\s/?#'\"<>]+)@(?=[A-Za-z0-9\[])",
        0,
        inner=True,
    ),
    _Frag(
        "ipv6",
        ":",
        # Require "::" or enough groups for the full form (so times such as
        # "12:34:56" and MAC addresses fail early), then reject a colon that
        # follows a non-hex word ("std::", "foo:") or more than 4 hex digits.
        r"[0-9A-Fa-f:](?:(?<=::)|(?=[0-9A-Fa-f.:]{0,40}::|[0-9A-Fa-f]{0,3}(?::[0-9A-Fa-f]{1,4}){4}:))"
        r"(?<![G-Zg-mo-qsu-z_.]:.)(?<![G-Zg-mo-qsu-z_.][0-9A-Fa-f]:.)(?<![G-Zg-mo-qsu-z_.][0-9A-Fa-f]{2}:.)"
        r"(?<![G-Zg-mo-qsu-z_.][0-9A-Fa-f]{3}:.)(?<![G-Zg-mo-qsu-z_.][0-9A-Fa-f]{4}:.)(?<![0-9A-Fa-f]{5}:.)"
        r"[0-9A-Fa-f:.]{0,44}",
        0,
        check=_chk_ipv6,
    ),
    _Frag(
        "jwt",
        "J",
        rf"[A-Za-z0-9_\-](?<={_NBD}eyJ.)[A-Za-z0-9_\-]{{7,}}\.eyJ[A-Za-z0-9_\-]{{8,}}\.[A-Za-z0-9_\-]*",
        2,
    ),
    _Frag("aws_key", "A", rf"[KS]IA(?<={_NB}A.IA)[A-Z0-9]{{16}}(?![A-Za-z0-9])", 0),
    _Frag("google_key", "A", rf"Iza(?<={_NBD}AIza)[0-9A-Za-z_\-]{{35}}(?![A-Za-z0-9_\-])", 0),
    _Frag("stripe_key", "_", rf"[lt](?<={_NB}[srp]k_.)(?:(?<=_l)ive|(?<=_t)est)_[A-Za-z0-9]{{10,}}", 2),
    _Frag("github_token", "_", rf"[A-Za-z0-9](?<={_NB}gh[pousr]_.)[A-Za-z0-9]{{29,}}", 3),
    _Frag("github_token", "_", rf"pat_(?<={_NB}github_pat_)[A-Za-z0-9_]{{22,}}", 6),
    _Frag(
        "auth_header",
        "zZ",
        r"[aA](?:(?<=[Aa]uthoriza)tion|(?<=AUTHORIZA)TION)[\"']?[ \t]*[:=][ \t]*[\"']?"
        r"(?:(?:[Bb]earer|[Bb]asic|[Dd]igest|[Tt]oken|Bot|ApiKey|Negotiate|NTLM"
        r"|AWS4-HMAC-SHA256)[ \t]+)?([^\s\"',;]{6,})",
        0,
        inner=True,
    ),
    _Frag(
        "bearer",
        "Bb",
        rf"earer(?<={_NBD}.earer)[ \t]+([A-Za-z0-9\-._~+/]{{8,}}=*)",
        0,
        inner=True,
        check=_chk_bearer,
    ),
    _Frag("email", "@", r"[A-Za-z0-9](?<=[A-Za-z0-9._%+\-]@.)" + _DOMAIN_REST, -1),
    # URL-encoded, as in query strings: "?email=jane%40example.com".
    _Frag("email", "%", r"40[A-Za-z0-9](?<=[A-Za-z0-9._%+\-]%40.)" + _DOMAIN_REST, -1),
    _Frag(
        "phone",
        "+",
        r"[0-9](?:(?<![A-Za-z0-9_+]\+.)|(?<=\\[nrt]\+.))\d{0,2}(?:[ .\-]?(?:\(\d{1,4}\)|\d{1,4})){1,7}" + _NUM_END,
        0,
        check=_chk_phone_intl,
    ),
    _Frag(
        "phone",
        "(",
        r"[0-9](?:(?<![A-Za-z0-9_]\(.)|(?<=\\[nrt]\(.))(?:(?<=\([2-9])\d\d\)[ ]?[2-9]\d\d[\-. ]\d{4}"
        r"|(?<=\(0)\d{1,3}\)[ ]?\d{3,4}[ \-]?\d{3,4})" + _NUM_END,
        0,
    ),
    _Frag(
        "iban",
        _DIGITS,
        rf"\d(?<=[A-Z]{{2}}..)(?<={_NB}[A-Z]{{2}}..)(?:[ ]?[A-Z0-9]{{4}}){{2,7}}(?:[ ]?[A-Z0-9]{{1,3}})?"
        r"(?![A-Za-z0-9])",
        2,
        check=_chk_iban,
    ),
    _Frag(
        "ipv4",
        _DIGITS,
        # Octets <= 255 (the first one, which includes the trigger digit, by
        # look-behinds); "version 1.2.3.4" is a version, not an address.
        r"\d{0,2}\.(?<![3-9]\d\d\.)(?<!2[6-9]\d\.)(?<!25[6-9]\.)"
        + _NOT_AFTER_VERSION_WORD
        + r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
        r"\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![A-Za-z0-9_]|\.\d)",
        0,
        numeric=True,
    ),
    # SSN areas 000, 666 and 900-999, group 00 and serial 0000 are never issued.
    _Frag(
        "ssn",
        "012345678",
        r"\d\d(?<!000)(?<!666)-(?!00)\d\d-(?!0000)\d{4}" + _NUM_END,
        0,
        numeric=True,
    ),
    _Frag(
        "phone",
        "23456789",
        r"\d\d(?:-[2-9]\d\d-|\.[2-9]\d\d\.| [2-9]\d\d[ \-])\d{4}" + _NUM_END,
        0,
        numeric=True,
    ),
    _Frag(
        "phone",
        "1",
        r"[\-. ](?:\([2-9]\d\d\)|[2-9]\d\d)[\-. ]?[2-9]\d\d[\-. ]\d{4}" + _NUM_END,
        0,
        numeric=True,
    ),
    _Frag(
        "phone",
        "0",
        # Trunk prefix 0, then 9-10 more digits: 10-11 digits in all.
        r"(?=(?:[ \-]?\d){9,10}(?![ \-]?\d))\d\d(?:\d{0,2})[ \-]\d{3,4}[ \-]?\d{3,4}" + _NUM_END,
        0,
        numeric=True,
    ),
    # Card numbers start with 2-6 (Mastercard 2/5, Amex/Diners/JCB 3, Visa 4,
    # Discover/UnionPay 6); this also keeps epoch milli/micro/nanoseconds and
    # snowflake ids (leading 1) out even when they happen to pass Luhn.
    _Frag("card", "23456", r"[0-9 \-](?:[ \-]?\d){11,17}" + _NUM_END, 0, check=_chk_card, numeric=True),
)

_LOCAL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-"

# Whole-string shapes that are never PII: lower-case hex ids (trace ids,
# SHAs), UUIDs and ISO dates/timestamps. Event fields are often exactly one of
# these, and recognising them with str methods is much cheaper than scanning
# their many digits. (Upper-case hex is excluded: an IBAN such as
# "DE89370400440532013000" is upper-case hex, and a digits-only string must be
# short, since a card number is all digits.)
_ID_FIRST = frozenset("0123456789abcdefABCDEF")
_LOWER_HEX = "0123456789abcdef"
_ANY_HEX_DASH = "0123456789abcdefABCDEF-"
_TIMESTAMP_CHARS = "0123456789-:.,TZ+ "


# The common ISO forms, recognized in one C call before the general check below:
# "2024-06-01", "2024-06-01T12:34:56.789Z", "2024-06-01 12:34:56+00:00". (Everything
# this accepts, the general check accepts too.)
_ISO_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_iso_timestamp = _ISO_TIMESTAMP.fullmatch


def _id_like(s: str) -> bool:
    if _iso_timestamp(s) is not None:
        return True
    if not s.strip(_LOWER_HEX):
        return len(s) <= 12 or not s.isdigit()
    if len(s) == 36 and s[8] == s[13] == s[18] == s[23] == "-":
        return not s.strip(_ANY_HEX_DASH) and s.count("-") == 4
    # ISO date or timestamp: "2024-06-01", "2024-06-01T12:34:56.789+00:00".
    # After the date only a time may follow ("T" or one space, then HH:MM),
    # with no further spaces, and a '+' only as a trailing time-zone offset;
    # so nothing like "2024-06-01 202-555-0143" or "... +44 20 ..." passes.
    if s[4:5] != "-" or s[7:8] != "-" or not s[:4].isdigit() or s.strip(_TIMESTAMP_CHARS):
        return False
    n = len(s)
    if n == 10:
        return True
    if n < 16 or s[10] not in "T " or s[13:14] != ":" or " " in s[11:]:
        return False
    plus = s.find("+")
    return plus < 0 or plus >= n - 6


_ID_MAX_LEN = 64


# (KIND label, rule name, inner group or 0, characters before the trigger or
# -1 for an e-mail local part, validator or None) per marker group.
_Handler = tuple[str, str, int, int, Callable[[str, int, int], tuple[int, int] | None] | None]


def _digit_triggered(frag: _Frag) -> bool:
    return not _DIGITS_SET.isdisjoint(frag.anchors)


_DIGITS_SET = frozenset(_DIGITS)


def _build_scanner(
    enabled: set[str], digit_triggered: bool = True
) -> tuple[re.Pattern[str] | None, list[_Handler | None]]:
    """Compile the combined single-pass pattern for the enabled built-in rules.

    Each fragment ends in an empty "marker" group; as the last group to close
    it is ``Match.lastindex`` and identifies the fragment that matched.

    Args:
        enabled: The built-in rules to include.
        digit_triggered: Include the fragments a digit triggers (IBAN, IPv4, SSN,
            numeric phones, card). Without them the pattern finds exactly what the full
            one finds in a text where none of them can match (see ``digits_may_match``
            in flightrec/_redact_native.c): at each position only the branch of that
            position's character is tried.

    Returns:
        The pattern (``None`` if no pattern rule is enabled) and a handler per
        group index (``None`` for inner groups).
    """
    frags = [f for f in _FRAGS if f.rule in enabled and (digit_triggered or not _digit_triggered(f))]
    anchors: list[str] = []
    for f in frags:
        for c in f.anchors:
            if c not in anchors:
                anchors.append(c)
    # Digits are the most frequent triggers: their branches come first, and a
    # digit inside a number fails on a single look-behind (_DIGIT_LB).
    anchors.sort(key=lambda c: c not in _DIGITS)
    handlers: list[_Handler | None] = [None]
    branches: list[str] = []
    for c in anchors:
        mine = [f for f in frags if c in f.anchors]
        alts: list[str] = []
        numeric: list[str] = []
        # Groups are numbered in textual order: plain fragments, then numeric.
        for f in [f for f in mine if not f.numeric] + [f for f in mine if f.numeric]:
            inner = 0
            if f.inner:
                handlers.append(None)
                inner = len(handlers) - 1
            handlers.append((f.rule.upper(), f.rule, inner, f.back, _NATIVE_CHECKS.get(f.check, f.check)))
            (numeric if f.numeric else alts).append(f.pattern + "()")
        if numeric:
            alts.append(_NUM_LB + "(?:" + "|".join(numeric) + ")")
        # Every top-level branch starts with a literal so that `re` compiles a
        # charset prefix and jumps between trigger characters in C.
        lead = c + _DIGIT_LB if c in _DIGITS else re.escape(c)
        branches.append(lead + "(?:" + "|".join(alts) + ")")
    if not branches:
        return None, handlers
    return re.compile("|".join(branches)), handlers


def _python_match_loop(
    text: str,
    first: re.Match[str],
    search: Callable[[str, int], re.Match[str] | None],
    handlers: list[_Handler | None],
    pseudonym: Callable[[str], str],
    hits: list[str],
) -> str | None:
    """Replace every accepted match from ``first`` on; None when nothing was replaced.

    The name of each rule that replaced a value is appended to ``hits``.
    (``flightrec/_redact_native.c`` has the same loop in C, used when it is built.)
    """
    parts: list[str] = []
    last = 0
    m: re.Match[str] | None = first
    while m is not None:
        kind, rule, inner, back, check = handlers[m.lastindex]  # type: ignore[index, misc]
        a, b = m.span()
        # After a rejected candidate, rescan from just after its start: a
        # greedy candidate ("2024-06-01 202-555-0143" as one card number)
        # can contain a valid one.
        nxt = a + 1
        if inner:
            a, b = m.span(inner)
        elif back < 0:  # e-mail: the local part precedes the '@' trigger
            window = text[max(last, a - 64) : a]
            local = window[len(window.rstrip(_LOCAL_CHARS)) :].lstrip(".")
            a = a - len(local) if local else -1
        else:
            a -= back
        if a >= last:
            if check is not None:
                span = check(text, a, b)
                if span is None:
                    m = search(text, nxt)
                    continue
                a, b = span
            value = text[a:b]
            parts += (text[last:a], f"<{kind}:{pseudonym(value)}>")
            hits.append(rule)
            # Continue after the replacement (a validator may have trimmed
            # the match; the rest is rescanned).
            last = nxt = b
        m = search(text, nxt)
    if not parts:
        return None
    parts.append(text[last:])
    return "".join(parts)


# The pseudonym: the first _PSEUDO_BYTES of keyed BLAKE2s (RFC 7693: BLAKE2's own keyed
# mode, a MAC and PRF that needs no HMAC construction around it). Three bytes are six
# hex digits: short enough to read, and enough to tell apart the values of one event.
_PSEUDO_BYTES = 3
_KEY_BYTES = 32  # BLAKE2s' maximum key size


def _utf8(value: str) -> bytes:
    try:
        return value.encode()
    except UnicodeEncodeError:  # lone surrogates
        return value.encode("utf-8", "surrogatepass")


def _python_keyed(key: bytes) -> Callable[[str], str]:
    """The pure-Python twin of ``_redact_native.Keyed(key, _PSEUDO_BYTES)``.

    Its hash costs three calls, so it keeps a small cache of values seen (the C hash
    costs less than a lookup and keeps none).
    """
    template = hashlib.blake2s(digest_size=_PSEUDO_BYTES, key=key)
    cache: dict[str, str] = {}

    def keyed(value: str) -> str:
        p = cache.get(value)
        if p is None:
            h = template.copy()
            h.update(_utf8(value))
            p = h.hexdigest()
            if len(cache) >= _PSEUDO_CACHE_MAX:
                cache.clear()
            cache[value] = p
        return p

    return keyed


# The C twins when they are built (see flightrec/fastpath.py for when they are not).
_native: Any = load_native("_redact_native")
_match_loop: Callable[..., str | None] = _native.scan if _native is not None else _python_match_loop
# The validators that cost the most per candidate; the others stay in Python.
_NATIVE_CHECKS: dict[Any, Any] = (
    {_chk_card: _native.chk_card, _chk_ipv6: _native.chk_ipv6} if _native is not None else {}
)
# One C pass over a string that says when no digit-triggered fragment can match in it. (In
# Python such a pass costs more than the fragments it would skip, so there is no twin: the
# pure-Python scan always uses the full pattern, with the same result.)
_digits_may_match: Callable[[str], bool] | None = _native.digits_may_match if _native is not None else None
# (getattr: an extension built before it existed still serves the rest)
_light_may_match: Callable[[str], bool] | None = getattr(_native, "light_may_match", None)
_no_rule_can_match: Callable[[str], bool] | None = getattr(_native, "no_rule_can_match", None)


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


# --------------------------------------------------------------------------
# Redactor
# --------------------------------------------------------------------------

_Entry = tuple[str, tuple[str, ...]]

# Rule counts are added with collections' C helper (what Counter.update uses): one C
# call that runs no Python code, so it is atomic under the GIL and the header's counts
# stay exact across threads without taking a lock per replaced value.
_SECRET_HIT = ("secret",)


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
        self._scanner, self._handlers = _build_scanner(builtin)
        # For text where no digit-triggered fragment can match (most text with digits).
        self._light: tuple[re.Pattern[str] | None, list[_Handler | None]] | None = (
            _build_scanner(builtin, digit_triggered=False) if _digits_may_match is not None else None
        )
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
        # Whether a text both C prefilters clear is clean as it is (what _scan finds after
        # the same tests): no extra pattern runs before them. The C dict walk reads it.
        self._prefilter = self._light is not None and not self._extra and _no_rule_can_match is not None

        self._active_rules = [r for r in BUILTIN_RULES if r in builtin] + [n for n, _, _ in self._extra]
        self._stats: dict[str, int] = dict.fromkeys(self._active_rules, 0)

        self._extra_endings = tuple(normalize_key(k) for k in cfg.extra_keys if normalize_key(k))
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
            if type(value) is dict:
                if _dict_walk is not None and self._enabled and not self._need_path:
                    return _dict_walk(self, value, path, 0, set())  # every event: straight to C
                return self._dict(value, path, 0, set(), not self._enabled, None)
            return self._walk(value, path, 0, set(), not self._enabled)
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
        if len(s) <= _SHORT_TEXT and self._prefilter and _no_rule_can_match(s):  # type: ignore[misc]
            # No rule can match (the test _scan starts with): a short text, such as a
            # checkpoint's label, needs neither a search nor a cache slot.
            return s
        return self._text(s)

    def clean_test(self) -> Callable[[str], bool] | None:
        """A C test that says True only of a text none of this redactor's rules can change, or None.

        For a caller with many short texts (a checkpoint's label): where it says True,
        :meth:`redact_text` would return the text as it is.
        """
        return _no_rule_can_match if self._enabled and self._prefilter else None

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
        scanner, handlers = self._scanner, self._handlers
        n = len(text)
        light = self._light
        if light is not None and scanner is not None and n >= _MIN_LEN and not _digits_may_match(text):  # type: ignore[misc]
            if _light_may_match is not None and not _light_may_match(text):
                return (text, tuple(hits)) if hits else (text, ())  # no rule can match: no search
            scanner, handlers = light
        if (
            scanner is None
            or n < _MIN_LEN
            # (without extra patterns, _text_miss has already let ids through unscanned)
            or (self._extra and n <= _ID_MAX_LEN and text[0] in _ID_FIRST and _id_like(text))
            or (first := scanner.search(text)) is None
        ):
            return (text, tuple(hits)) if hits else (text, ())
        out = _match_loop(text, first, scanner.search, handlers, self._keyed, hits)
        if out is None:
            return (text, tuple(hits)) if hits else (text, ())
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
        elif (self._secret_keys_on and norm not in _BENIGN_KEYS and norm.endswith(_SECRET_KEY_ENDINGS)) or (
            self._extra_endings and norm.endswith(self._extra_endings)
        ):
            kc = _KEY_SECRET
        else:
            kc = _KEY_NORMAL
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
            self._degraded += 1
            head += f"…<truncated {n - self._max_bytes} bytes>".encode()
        return head

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
            return self._bytes(v[: self._max_bytes], len(v), raw)
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
            return self._bytes(bytes(v[: self._max_bytes]), len(v), raw)
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
                return self._bytes(flat[: self._max_bytes].tobytes(), flat.nbytes, raw)
            data = v.tobytes()
            return self._bytes(data[: self._max_bytes], len(data), raw)
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
                        e = cache_get(v) if fast_str else None
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
                        e = cache_get(v)
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
