"""The pattern rules: the fragments, the one-pass scanner built from them and its match loop.

Every built-in pattern rule is a fragment anchored on a literal trigger character; the
enabled fragments compile into one alternation (:func:`_build_scanner`), whose matches
:func:`_python_match_loop` validates and replaces. Whole-string ids and timestamps are
recognised without a scan (:func:`_id_like`). The C twins of the match loop, of the costly
validators and the prefilters, from ``flightrec/_redact_native.c``, are chosen here too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from ..fastpath import load_native
from .checks import (
    _chk_bearer,
    _chk_card,
    _chk_iban,
    _chk_ipv6,
    _chk_not_placeholder,
    _chk_not_template,
    _chk_phone_intl,
    _chk_secret_value,
)
from .config import _SECRET_KEY_ENDINGS, _SECRET_KEY_NAMES

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

# Full-width forms (U+FF01-FF5E: the ASCII characters as CJK text writes them, "＋４９ ３０
# １２３４５６７８", "４１１１ １１１１ …") and the no-break and ideographic spaces that group
# digits in typography ("(415)\u00a0555\u00a02671", "06\u202f12\u202f34…"): the rules
# see a text that holds them as its ASCII form, one character for one, so that they match
# where that form would, and only there (a card still passes Luhn, an amount is still an
# amount). The replaced value is read in that form too: the same number gets one pseudonym
# however it is written. (flightrec/_redact_native.c's prefilters fold the same characters.)
_FOLD: dict[int, int] = {
    **{c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)},
    0x00A0: 0x20,
    0x202F: 0x20,
    0x3000: 0x20,
}
_FOLDABLE = re.compile("[\uff01-\uff5e\u00a0\u202f\u3000]")


def _folded(text: str) -> str | None:
    """``text`` in the form the rules see (see :data:`_FOLD`), or None when that is ``text`` itself."""
    if text.isascii() or _FOLDABLE.search(text) is None:
        return None
    return text.translate(_FOLD)


# A letter or digit of any script: internationalized addresses (RFC 6531) hold them in the
# local part and the domain ("josé@exämple.de", "用户@例子.广告").
_ALNUM = r"[^\W_]"
# The rest of an e-mail domain after its first character: labels, then a TLD, which is ASCII
# letters or other letters, not both: a text in a script written without blanks often
# follows an address at once ("john@example.com请回复"), and is not part of it.
_DOMAIN_REST = (
    rf"(?:(?:{_ALNUM}|-){{0,61}}{_ALNUM})?(?:\.{_ALNUM}(?:(?:{_ALNUM}|-){{0,61}}{_ALNUM})?)*"
    # (a file extension is no TLD: "icon@2x.png", "logo@3x.webp", retina image names)
    r"\.(?!(?:png|jpe?g|gif|svg|webp|avif|ico|bmp)(?![A-Za-z0-9\-]))"
    r"(?:[A-Za-z]{2,24}(?![A-Za-z0-9\-])|[^\W\d_A-Za-z]{2,24}(?![^\W_]|-))"
)


def _secret_key_gate(extra: tuple[str, ...] = (), blank: bool = False) -> str:
    """Look-behinds that a ``:``/``=`` just matched follows the end of a secret key name.

    The last three characters of the key (either case; ``_``/``-`` where a name has
    segments), then nothing, a quote, a blank or an escaped quote: three cheap class tests
    that turn away nearly every other key and word ("name":, Notes:, level=), so that the
    exact test, :func:`~flightrec.redact.checks._chk_secret_value` (the key-name rule on the
    word before), runs on few candidates.

    Args:
        extra: The user's extra key-name endings (normalized), tested as the built-in
            ones; one shorter than three characters gets look-behinds of its own length.
        blank: For a quote that follows the key name and one blank (``password 'x'``,
            ``--token "x"``): only that context.
    """
    tails: list[str] = []
    for name in (*_SECRET_KEY_ENDINGS, *_SECRET_KEY_NAMES, *extra):
        segments = name.strip("_").split("_")
        tails += [sep.join(segments)[-3:] for sep in ("", "_", "-")]
    gates: list[str] = []
    for size in (3, 2, 1):
        mine = [t for t in tails if len(t) == size]
        if not mine:
            continue
        classes = "".join(
            "[" + re.escape("".join(sorted({c for t in mine for c in (t[i], t[i].upper())}))) + "]" for i in range(size)
        )
        if blank:
            gates.append(rf"(?<={classes}[ \t].)")
        else:
            gates += [rf"(?<={classes}.)", rf"(?<={classes}[\"' \t].)", rf"(?<={classes}\\\".)"]
    return "(?:" + "|".join(gates) + ")"


# The value after a secret key's separator: the content of a "..." (JSON, also escaped as
# \"...\" inside another JSON string), '...' or `...` (a JavaScript template literal, Markdown
# code) string, or an unquoted word up to a blank or a delimiter (`&` of a query string, `;`
# of a cookie, `,`) that does not start with a backslash (the escaped quote of an escaped
# string) or a backtick; never a placeholder.
_SECRET_VALUE = (
    r"(?!=)[ \t]*(?:\\?[\"']|`)?(?!<[A-Z][A-Z0-9_]*:[0-9a-f]{6}>)"
    r"((?<=\\\")[^\"\\\r\n]+|(?<=\")(?:[^\"\\\r\n]|\\.)+|(?<=')(?:[^'\\\r\n]|\\.)+|(?<=`)(?:[^`\\\r\n]|\\.)+"
    r"|(?<![\"'`])[^\s\"'`&,;<>()\[\]{}\\][^\s\"'&,;<>()\[\]{}]*)"
)
# A quoted value after a secret key name and a blank, with no ':' or '=' (a flag and its
# argument, "--password 'x'"; SQL, "WITH PASSWORD 'x'"; a value named in a sentence,
# "the token \"x\""): the content of the quotes, which must close on the same line.
_SECRET_QUOTED = r"((?<=\")(?:[^\"\\\r\n]|\\.){1,256}(?=\")|(?<=')(?:[^'\\\r\n]|\\.){1,256}(?='))"


_AUTH_SCHEMES = r"(?:[Bb]earer|[Bb]asic|[Dd]igest|[Tt]oken|Bot|ApiKey|Negotiate|NTLM|AWS4-HMAC-SHA256)"


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
    # GitLab: glpat- (personal), gldt-/glrt-/glft- (deploy, runner, feed), glptt-/glcbt-/
    # glimt-/gloas- (trigger, CI job, incoming mail, OAuth app), glsoat-/glffct-: the
    # prefix is part of the value, so one fragment per prefix length.
    _Frag(
        "gitlab_token",
        "-",
        rf"[A-Za-z0-9_\-](?<={_NB}gl[dfr]t-.)[A-Za-z0-9_\-]{{19,}}(?:\.[A-Za-z0-9_\-]+)*",
        4,
        check=_chk_not_placeholder,
    ),
    _Frag(
        "gitlab_token",
        "-",
        rf"[A-Za-z0-9_\-](?<={_NB}gl(?:pat|ptt|cbt|imt|oas)-.)[A-Za-z0-9_\-]{{19,}}(?:\.[A-Za-z0-9_\-]+)*",
        5,
        check=_chk_not_placeholder,
    ),
    _Frag(
        "gitlab_token",
        "-",
        rf"[A-Za-z0-9_\-](?<={_NB}gl(?:soat|ffct)-.)[A-Za-z0-9_\-]{{19,}}(?:\.[A-Za-z0-9_\-]+)*",
        6,
        check=_chk_not_placeholder,
    ),
    _Frag("slack_token", "-", rf"[A-Za-z0-9](?<=xox[abposr]-.)(?<={_NB}xox.-.)[A-Za-z0-9\-]{{9,}}", 4),
    # Slack app-level tokens: xapp-1-A0123456789-1234567890123-<64 hex>.
    _Frag("slack_token", "-", rf"[0-9](?<={_NB}xapp-.)-[A-Za-z0-9\-]{{20,}}", 4),
    # PyPI API tokens are macaroons: "pypi-AgE" then a long base64url body ("AgEIcHlwaS5vcmc"
    # for pypi.org, "AgENdGVzdC5weXBpLm9yZw" for test.pypi.org).
    _Frag("pypi_token", "-", rf"A(?<={_NB}pypi-A)gE[A-Za-z0-9_\-]{{40,}}", 4, check=_chk_not_placeholder),
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
    # A secret-named key in text: password=..., "api_key": "...", X-Api-Key: ...
    # (A redactor with extra key names builds its own, see _secret_frag.)
    _Frag("secret", ":=", _secret_key_gate() + _SECRET_VALUE, 0, inner=True, check=_chk_secret_value),
    _Frag("secret", "\"'", _secret_key_gate(blank=True) + _SECRET_QUOTED, 0, inner=True, check=_chk_secret_value),
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
    # Hugging Face: hf_ and 34 random letters; an upper-case one keeps snake_case names out.
    _Frag(
        "huggingface_token",
        "_",
        rf"[A-Za-z0-9](?<={_NB}hf_.)(?=[a-z0-9]{{0,60}}[A-Z])[A-Za-z0-9]{{29,}}",
        2,
        check=_chk_not_placeholder,
    ),
    # SendGrid: SG.<22>.<43>, triggered on its 'G' (a '.' would stop the search in all prose).
    _Frag(
        "sendgrid_key",
        "G",
        rf"\.(?<={_NB}SG\.)[A-Za-z0-9_\-]{{22}}\.[A-Za-z0-9_\-]{{43}}(?![A-Za-z0-9_\-])",
        1,
        check=_chk_not_placeholder,
    ),
    _Frag("github_token", "_", rf"pat_(?<={_NB}github_pat_)[A-Za-z0-9_]{{22,}}", 6),
    # npm: npm_ and 36 letters and digits (npm_config_cache and the like have more '_').
    _Frag(
        "npm_token", "_", rf"[A-Za-z0-9](?<={_NB}npm_.)[A-Za-z0-9]{{35}}(?![A-Za-z0-9_])", 3, check=_chk_not_placeholder
    ),
    # Stripe webhook signing secrets (also Svix's): whsec_ and a base64 body.
    _Frag(
        "stripe_webhook_secret",
        "_",
        rf"[A-Za-z0-9+/](?<={_NB}whsec_.)[A-Za-z0-9+/]{{23,}}={{0,2}}",
        5,
        check=_chk_not_placeholder,
    ),
    # Google OAuth access tokens: ya29. and a long base64url body, in dotted parts for
    # service accounts ("ya29.c.b0A..."); triggered on the 'y' ('.' is in all prose).
    _Frag(
        "google_oauth_token",
        "y",
        rf"a29\.(?<={_NB}ya29\.)(?=[A-Za-z0-9_.\-]{{20}})[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*",
        0,
        check=_chk_not_placeholder,
    ),
    _Frag(
        "auth_header",
        "zZ",
        # After a scheme word the credential may be short ("Bearer x"); without one, the
        # value needs 6 characters and is not a scheme word. Never a placeholder:
        # redacting redacted text changes nothing. The value may be quoted with a backtick
        # too (a JavaScript template literal: Authorization: `Bearer ${token}`); a
        # template's stand-in ("${TOKEN}", "{{token}}", "<token>") is not a credential.
        r"[aA](?:(?<=[Aa]uthoriza)tion|(?<=AUTHORIZA)TION)[\"']?[ \t]*[:=][ \t]*[\"'`]?"
        rf"(?:{_AUTH_SCHEMES}[ \t]+|(?!{_AUTH_SCHEMES}[ \t])(?=[^\s\"',;`]{{6}}))"
        r"(?!<[A-Z][A-Z0-9_]*:[0-9a-f]{6}>)([^\s\"',;`]+)",
        0,
        inner=True,
        check=_chk_not_template,
    ),
    _Frag(
        "bearer",
        "Bb",
        rf"earer(?<={_NBD}.earer)[ \t]+([A-Za-z0-9\-._~+/]{{8,}}=*)",
        0,
        inner=True,
        check=_chk_bearer,
    ),
    _Frag("email", "@", _ALNUM + r"(?<=[\w.%+\-\u0300-\u036f]@.)" + _DOMAIN_REST, -1),
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
        # French national numbers: 0, a digit, then four pairs ("06 12 34 56 78",
        # "01.23.45.67.89", also with the no-break spaces of French typography, which the rules
        # read as spaces: see _FOLD); not a longer run of pairs (a list of small numbers).
        r"[1-9](?:[ .]\d\d){4}(?![ .]\d)" + _NUM_END,
        0,
        numeric=True,
    ),
    _Frag(
        "phone",
        "0",
        # The 00 international prefix, then a country code and a separator, as after "+"
        # ("0049 30 1234567"); the separator keeps zero-padded ids ("0012345678") out. No
        # country code has more digits after a 1 (NANP is "001 212 ..."): "0012 3456 7890" is
        # a reference number.
        r"0(?:1|[2-9]\d{0,2})[ .\-](?:\(\d{1,4}\)|\d{1,4})"
        r"(?:[ .\-]?(?:\(\d{1,4}\)|\d{1,4})){0,6}" + _NUM_END,
        0,
        check=_chk_phone_intl,
        numeric=True,
    ),
    _Frag(
        "phone",
        "0",
        # Trunk prefix 0, then 9-10 more digits: 10-11 digits in all.
        r"(?=(?:[ \-]?\d){9,10}(?![ \-]?\d))\d\d(?:\d{0,2})[ \-]\d{3,4}"
        r"[ \-]?\d{3,4}" + _NUM_END,
        0,
        numeric=True,
    ),
    # Card numbers start with 2-6 (Mastercard 2/5, Amex/Diners/JCB 3, Visa 4,
    # Discover/UnionPay 6); this also keeps epoch milli/micro/nanoseconds and
    # snowflake ids (leading 1) out even when they happen to pass Luhn.
    _Frag("card", "23456", r"[0-9 \-](?:[ \-]?\d){11,17}" + _NUM_END, 0, check=_chk_card, numeric=True),
)

_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
# Characters of a local part that belong to no script of their own: ASCII punctuation, and
# the combining accents of decomposed text ("cafe\u0301", "é" as "e" and U+0301).
_LOCAL_PUNCT = frozenset("._%+-")
_COMBINING = range(0x300, 0x370)


def _wide(c: str) -> bool:
    """Whether ``c`` is of a script written without blanks between words (CJK ideographs, kana, hangul)."""
    o = ord(c)
    return 0x2E80 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3FFFF


def _local_start(text: str, at: int, lo: int) -> int:
    """Where the local part of the e-mail address whose '@' is at ``at`` starts (not before ``lo``).

    Its characters are ASCII letters, digits and ``._%+-``, letters and digits of other
    scripts ("josé", "用户") and combining accents; but a text in a script written without blanks often runs into an
    address ("请发邮件至john@example.com"), so where such a script and another meet, the
    address begins ("john"). (``_native.scan`` walks the same way.)
    """
    i = at
    wide: bool | None = None
    while i > lo:
        c = text[i - 1]
        if ord(c) in _COMBINING:
            pass
        elif c in _LOCAL_CHARS:
            if c not in _LOCAL_PUNCT:
                if wide:
                    break
                wide = False
        elif c > "\x7f" and c.isalnum():
            w = _wide(c)
            if wide is not None and w != wide:
                break
            wide = w
        else:
            break
        i -= 1
    return i


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


def _secret_frag(frag: _Frag, extra: tuple[str, ...]) -> _Frag:
    """The ``secret`` fragment ``frag`` (after ``:``/``=``, or the quote after a blank) for a
    redactor whose user added key names (``extra_keys``): its gate and its key check know
    them too, so ``ssn_last4=1234`` in text is a secret as the dict key ``ssn_last4`` is."""
    check = functools.partial(_chk_secret_value, extra=extra)
    if frag.anchors == ":=":
        return frag._replace(pattern=_secret_key_gate(extra) + _SECRET_VALUE, check=check)
    return frag._replace(pattern=_secret_key_gate(extra, blank=True) + _SECRET_QUOTED, check=check)


def _build_scanner(
    enabled: set[str], digit_triggered: bool = True, extra_keys: tuple[str, ...] = ()
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
        extra_keys: The user's extra secret key-name endings (normalized): the ``secret``
            fragment finds them in text too.

    Returns:
        The pattern (``None`` if no pattern rule is enabled) and a handler per
        group index (``None`` for inner groups).
    """
    frags = [f for f in _FRAGS if f.rule in enabled and (digit_triggered or not _digit_triggered(f))]
    if extra_keys:
        frags = [_secret_frag(f, extra_keys) if f.rule == "secret" else f for f in frags]
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
    source: str | None = None,
) -> str | None:
    """Replace every accepted match from ``first`` on; None when nothing was replaced.

    The name of each rule that replaced a value is appended to ``hits``.
    (``flightrec/_redact_native.c`` has the same loop in C, used when it is built.)
    ``source``: the text as written when ``text`` is its folded form (:func:`_folded`, as
    long, character for character): the output keeps it around the replaced values.
    """
    src = text if source is None else source
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
            local = text[_local_start(text, a, max(last, a - 64)) : a]
            if local[:1] in ("n", "r", "t") and text[a - len(local) - 1 : a - len(local)] == "\\":
                local = local[1:]  # the letter of an escaped line break ("\\njane@..."), not the address
            local = local.lstrip(".")
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
            parts += (src[last:a], f"<{kind}:{pseudonym(value)}>")
            hits.append(rule)
            # Continue after the replacement (a validator may have trimmed
            # the match; the rest is rescanned).
            last = nxt = b
        m = search(text, nxt)
    if not parts:
        return None
    parts.append(src[last:])
    return "".join(parts)


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


def _takes_words(test: Callable[..., bool] | None) -> Callable[..., bool] | None:
    """``test`` if it takes a redactor's extra key names (its ``_extra_words``) after the text,
    else None (an extension built before they did: the Redactor then searches every text)."""
    try:
        return test if test is not None and test("", ()) in (True, False) else None
    except TypeError:
        return None


# (getattr: an extension built before they existed still serves the rest)
_light_may_match: Callable[..., bool] | None = _takes_words(getattr(_native, "light_may_match", None))
_no_rule_can_match: Callable[..., bool] | None = _takes_words(getattr(_native, "no_rule_can_match", None))
