"""The validators: checks run in Python on the scanner's candidates only.

Luhn for card numbers, the per-country length and mod-97 for IBANs, the structure of
IPv6 addresses, the digit counts and shapes of phone numbers and bearer tokens, and the key
name before a ``key=value`` or ``"key": "value"`` in text. Each
``_chk_*`` takes ``(text, a, b)``, a candidate span, and returns the span to replace
(possibly trimmed) or None to reject it.
"""

from __future__ import annotations

import functools
import re

from .config import _secret_name, normalize_key

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
    """Count the digits of a span made of digits and ' .-()' separators.

    (No-break spaces are spaces here: the rules read a text in its folded form, see
    :data:`flightrec.redact.patterns._FOLD`.)
    """
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
# A signed amount grouped in thousands, as French and other locales write it: "+1 234 567,89"
# (the groups are often no-break spaces, read as spaces), or without decimals before a
# currency: "+12 345 678 €".
_AMOUNT = re.compile(r"\+\d{1,3}(?: \d{3})+")
_AMOUNT_END = re.compile(r",\d| ?(?:€|EUR|CHF|\$|£|USD|GBP)")


def _chk_phone_intl(text: str, a: int, b: int) -> tuple[int, int] | None:
    if text[a] == "+" and _AMOUNT.fullmatch(text, a, b) is not None and _AMOUNT_END.match(text, b) is not None:
        return None
    # (The '+' counts as a digit, and so does the "00" that stands for it: "0049 30 123" has
    # as many as "+49 30 123", and the fewest digits any phone has, 9 in a row, are what
    # flightrec/_redact_native.c's digit prefilter lets through to the 00 form.)
    count = _ndigits(text[a:b]) - (text[a] == "0")
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


def _chk_not_placeholder(text: str, a: int, b: int) -> tuple[int, int] | None:
    """A prefixed token whose last 16 characters are one repeated character is the
    placeholder of documentation ("glpat-xxxxxxxxxxxxxxxxxxxx", "hf_XXXX..."), not a key:
    a random body never repeats one character that often."""
    return None if len(set(text[max(a, b - 16) : b])) == 1 else (a, b)


# A template's stand-in for a value, not a value: "${TOKEN}" (JavaScript template literal,
# shell), "$TOKEN" (a variable with an upper-case name, the environment's convention),
# "$(gh auth token)", "{{ token }}" (Jinja, Mustache, Postman), "{token}" (str.format),
# "<token>" / "<your API key>", "%s" / "%(token)s".
_TEMPLATE = re.compile(
    r"\$\{[^{}\s]+\}|\$\([^()\r\n]*\)|\$[A-Z_][A-Z0-9_]*(?![A-Za-z0-9_])|\{\{[^{}\r\n]*\}\}"
    r"|\{[A-Za-z_][A-Za-z0-9_.]*\}|<[A-Za-z_][^<>\r\n]{0,62}>|%s|%\([A-Za-z_][A-Za-z0-9_]*\)s"
)
# A '$' and a name of letters that is not all upper-case: a variable only when the name is a
# secret's ("$token", "$apiKey", "$db_password", judged as a key name is); any other such
# word is a value that starts with a '$' ("$ecret", "$ecretTok"; "$ecret99" has a digit, which
# no variable name of this kind has).
_NAMED_VARIABLE = re.compile(r"\$([A-Za-z_]+)(?![A-Za-z0-9_])")


def _is_template(text: str, a: int, b: int, extra: tuple[str, ...] = ()) -> bool:
    """Whether ``text[a:b]`` is all a template's stand-in (one may run past ``b``: "{{ token }}"
    where the value stopped at a blank). ``extra``: the user's key names, as secret names."""
    m = _TEMPLATE.match(text, a)
    if m is None:
        m = _NAMED_VARIABLE.match(text, a)
        if m is None or not _text_key_kind(m.group(1), extra):
            return False
    return m.end() >= b


def _chk_not_template(text: str, a: int, b: int) -> tuple[int, int] | None:
    """A credential that is a template's stand-in ("Authorization: Bearer ${TOKEN}") is kept."""
    return None if _is_template(text, a, b) else (a, b)


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


_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
# Unquoted words that are a JSON/Python literal, not a secret ("password": null).
_LITERALS = frozenset({"null", "true", "false", "None", "True", "False"})


def _text_key_before(text: str, sep: int) -> str:
    """The key word before a ``:``/``=`` at ``sep``: ``password`` in ``"password": ``,
    ``X-Api-Key`` in ``X-Api-Key: `` (after at most one quote, escaped quote or blank)."""
    j = sep
    if j > 0 and text[j - 1] in "\"' \t":
        j -= 1
        if text[j] == '"' and j > 0 and text[j - 1] == "\\":
            j -= 1
    k = j
    lo = max(0, j - 64)
    while k > lo and text[k - 1] in _KEY_CHARS:
        k -= 1
    if k > 0 and text[k - 1] == "\\" and k < j and text[k] in "nrt":
        k += 1  # a JSON-escaped line break ("...\\npassword=") is not part of the key
    elif k > 0 and text[k - 1] == "<":
        return ""  # a placeholder's kind ("<SECRET:3f9a2c>"), not a key
    return text[k:j]


_COOKIE = 2
_AUTH_SCHEMES = frozenset(
    {"Bearer", "bearer", "Basic", "basic", "Digest", "digest", "Token", "token", "Bot", "ApiKey", "Negotiate", "NTLM"}
)
_CREDENTIAL = re.compile(r"[ \t]+(?!<[A-Z][A-Z0-9_]*:[0-9a-f]{6}>)([^\s\"',;\\]+)")


@functools.lru_cache(maxsize=1024)
def _text_key_kind(key: str, extra: tuple[str, ...] = ()) -> int:
    """0: not a secret name; 1: a secret name; 2 (``_COOKIE``): a cookie header's name.

    ``extra``: the user's extra key-name endings (normalized), as a dict key is tested.
    (Cached: the same few key names come back in every JSON text and query string.)
    """
    norm = normalize_key(key)
    if not _secret_name(norm) and not (extra and norm.endswith(extra)):
        return 0
    return _COOKIE if norm.endswith(("cookie", "cookies")) else 1


# Unquoted words after a secret key that name a type or a state, not a value: a signature
# ("password: str"), a TypeScript field ("token: string;"), a log line ("auth=ok").
_NOT_VALUES = frozenset(
    {
        *("str", "int", "bytes", "bool", "float", "string", "number", "boolean", "any", "Any", "object"),
        *("SecretStr", "Optional", "ok", "OK", "yes", "no", "on", "off", "none", "nil", "undefined"),
        *("enabled", "disabled", "required", "optional", "missing", "redacted", "hidden", "masked"),
    }
)
# What a masked or elided value is made of ("********", "•••"), and what follows a quote that
# closed a string rather than opened one ('input("PIN: ")) ...', 'read -p "Password: " PW').
_MASK_CHARS = "*•●·.…-_"
_AFTER_CLOSING_QUOTE = " \t)]};,"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def _not_a_value(text: str, a: int, b: int, extra: tuple[str, ...]) -> bool:
    """Whether the unquoted word ``text[a:b]`` after a secret key is prose or code, not a secret.

    Prose that talks about a secret ("Password: must be 12 characters", "le token : une
    chaîne"): a word of letters only and more words after it. Code: a call or an index
    ("token = get_token()", "os.environ[...]"), a variable named like a secret
    ("auth=auth", "token=self._token"), a shell expansion ("$(gh auth token)", "${API_KEY}"),
    a string prefix ('f"Bearer {token}"'), a type or a state (:data:`_NOT_VALUES`).
    """
    value = text[a:b]
    after = text[b : b + 1]
    if value in _NOT_VALUES or (text[a - 1] == ":" and value[0] in "?-+"):
        return True  # ("${API_KEY:?missing}", "${TOKEN:-}": a shell default, not a value)
    if value == "$" and after in ("(", "{"):
        return True  # "$(gh auth token)", "${API_KEY}" (a "$TOKEN" is a template: _is_template)
    if value.replace("-", "").replace("'", "").isalpha():
        if after and after in "\"'" and len(value) <= 2:
            return True  # f"...", b'...': a string literal's prefix
        n = len(text)
        i = b
        while i < n and text[i] in " \t":
            i += 1
        if i > b and i < n and text[i].isalnum() and (text[a - 1] != "=" or text[a - 2 : a - 1] in (" ", "\t")):
            # A word, then more words: a sentence, unless the next word is another key
            # ("pw=abc user=bob", "pin: abcd otp: 12"); "k=v k2=v2" without blanks is a list.
            j = i
            while j < n and text[j] in _KEY_CHARS:
                j += 1
            if text[j : j + 1] not in (":", "="):
                return True
    if _IDENTIFIER.fullmatch(value) is not None:
        if after in ("(", "["):
            return True
        # (No digit: a random secret has one with near certainty, a variable name seldom.)
        if not _has_digit(value) and _text_key_kind(value.rpartition(".")[2], extra):
            return True
    return False


def _chk_secret_value(text: str, a: int, b: int, extra: tuple[str, ...] = ()) -> tuple[int, int] | None:
    # The candidate is the value; its separator is before the opening quote and blanks.
    sep = a - 1
    if text[sep] in "\"'`":
        sep -= 1
        if text[sep] == "\\":
            sep -= 1
    while text[sep] in " \t":
        sep -= 1
    if text[sep] not in ":=":
        # A quoted value after the key and a blank ("--password 'x'"), no separator: a
        # sentence quotes words after such a name too ('the token "object"', 'Your password
        # "must be 12 characters"'), and a search its pattern or path ('grep -r token
        # "./src"'), so only one word of 3 characters or more, not all letters, not a path or
        # a glob, is a value here ("hunter2", "$ecretTok", "S3cr3t!!").
        value = text[a:b]
        if (
            len(value) < 3
            or value.replace("-", "").replace("'", "").isalpha()
            or value[0] in ".~"
            or any(c.isspace() or c in "/*" for c in value)
        ):
            return None
        sep += 1
    kind = _text_key_kind(_text_key_before(text, sep), extra)
    if not kind or text[a:b] in _LITERALS or _is_template(text, a, b, extra):
        return None
    if text[a:b] in _AUTH_SCHEMES and text[b : b + 1] in (" ", "\t"):
        # "Authorization: Bearer x": the credential is the secret, the scheme stays readable.
        m = _CREDENTIAL.match(text, b)
        return None if m is None or _is_template(text, *m.span(1), extra) else m.span(1)
    quoted = text[a - 1] in "\"'`"
    if quoted:
        value = text[a:b]
        scheme, blank, credential = value.partition(" ")
        if blank and scheme in _AUTH_SCHEMES and _is_template(credential, 0, len(credential), extra):
            return None  # "Authorization": "Bearer {{token}}"
        # Nothing to hide: a quote that closed a string ('read -p "Password: " PW',
        # 'input("PIN: "))'), a mask ("********"), a template ("<your-token-here>"), a shell
        # expansion ("${API_KEY:?missing}").
        if (
            value[0] in _AFTER_CLOSING_QUOTE
            or not value.strip(_MASK_CHARS)
            or (value[0] == "<" and value[-1] == ">")
            or value.startswith(("${", "$("))
        ):
            return None
    elif _not_a_value(text, a, b, extra):
        return None
    if kind == _COOKIE and not quoted:
        # A Cookie header holds every cookie up to the end of its line ("a=1; sid=x").
        n = len(text)
        while b < n and text[b] not in "\r\n\"'\\":
            b += 1
        while text[b - 1] in " \t":
            b -= 1
    return a, b
