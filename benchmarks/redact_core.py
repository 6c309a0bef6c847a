"""Cost and accuracy of ``flightrec.redact``, in one run.

Run: ``.venv/bin/python benchmarks/redact_core.py``

Part 1 prints the median CPU time (ns, thread CPU clock) of ``Redactor.redact`` on one
~300-byte event (a dict of a few fields, about 300 bytes as JSON), over several batches:

- ``clean, never seen``: distinct events with no PII (ids, a timestamp, a prose message), so
  every string misses the cache; ``, extra_keys``: the same with two secret key names of the
  user's (``RedactConfig.extra_keys``);
- ``PII, never seen``: distinct events full of PII (e-mail, phone, card, SSN, IPs, an API key,
  a secret-named key);
- ``repeated``: the same clean event again and again (every string is a cache hit);
- ``enabled=False``: the sanitizing walk alone (truncation and type conversion, no rules);
- ``naive multi-pass``: a straightforward redactor (the same walk in its simplest form, then
  one ``re.sub`` per rule on every string) on the clean and PII events.

"Not redacting at all" costs 0 ns, so every figure is the extra cost per event.

Part 2 prints the labelled-corpus table: for every kind, how many planted values were found
(recall), and for every look-alike category how many were changed (false positives). The
corpus is built by :func:`build_corpus` with ``random.Random(1234)``; :func:`corpus_report`
returns the rows and is what ``tests/test_redact.py`` asserts on.
"""

from __future__ import annotations

import gc
import random
import re
import statistics
import string
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flightrec.redact import RedactConfig, Redactor, iban_ok, luhn_ok

# ---------------------------------------------------------------------------
# Labelled corpus
# ---------------------------------------------------------------------------

SEED = 1234
PER_KIND = 200

_FIRST = ["john", "jane", "li", "maria", "ahmed", "olga", "sam", "priya", "kenji", "lucas", "emma", "noah"]
_LAST = ["smith", "doe", "wang", "garcia", "khan", "ivanova", "lee", "patel", "sato", "silva", "brown"]
_DOMAINS = ["example.com", "mail.example.org", "corp.example.co.uk", "uni.example.edu", "example.io", "test.dev"]
_WORDS = [
    "the",
    "report",
    "project",
    "risk",
    "budget",
    "quarter",
    "summary",
    "customer",
    "order",
    "invoice",
    "meeting",
    "schedule",
    "agent",
    "tool",
    "search",
    "result",
    "weather",
    "forecast",
    "deploy",
    "build",
    "release",
    "draft",
    "review",
    "update",
    "status",
    "request",
    "response",
]
_B64URL = string.ascii_letters + string.digits + "-_"
_ALNUM = string.ascii_letters + string.digits
_UPPER_DIGITS = string.ascii_uppercase + string.digits


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _luhn_complete(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for d in string.digits:
        if luhn_ok(body + d):
            return body + d
    raise AssertionError("unreachable")


def _card(rng: random.Random) -> str:
    kind = rng.choice(["visa", "mc", "amex", "disc", "visa19"])
    if kind == "amex":
        n = _luhn_complete(rng, rng.choice(["34", "37"]), 15)
        groups = [n[:4], n[4:10], n[10:]]
    else:
        prefix, length = {
            "visa": ("4", 16),
            "mc": (rng.choice(["51", "55", "2221", "2720"]), 16),
            "disc": ("6011", 16),
            "visa19": ("4", 19),
        }[kind]
        n = _luhn_complete(rng, prefix, length)
        groups = [n[i : i + 4] for i in range(0, len(n), 4)]
    sep = rng.choice(["", " ", "-"])
    return sep.join(groups) if sep else n


def _phone(rng: random.Random) -> str:
    d = lambda k: _rand(rng, string.digits, k)  # noqa: E731
    area = str(rng.randint(2, 9)) + d(2)
    exch = str(rng.randint(2, 9)) + d(2)
    line = d(4)
    forms = [
        f"+1-{area}-{exch}-{line}",
        f"+1 ({area}) {exch}-{line}",
        f"+1 {area} {exch} {line}",
        f"({area}) {exch}-{line}",
        f"{area}-{exch}-{line}",
        f"{area}.{exch}.{line}",
        f"1-{area}-{exch}-{line}",
        f"+44 20 {d(4)} {d(4)}",
        f"+44 7{d(3)} {d(6)}",
        f"020 {d(4)} {d(4)}",
        f"07{d(3)} {d(6)}",
        f"0161 {d(3)} {d(4)}",
        f"+49 30 {d(8)}",
        f"+33 {rng.randint(1, 9)} {d(2)} {d(2)} {d(2)} {d(2)}",
        f"+91 9{d(4)} {d(5)}",
        f"+{rng.randint(30, 99)}{d(9)}",
        f"+44 (0)20 {d(4)} {d(4)}",
        f"+61 2 {d(4)} {d(4)}",
        f"+81 3-{d(4)}-{d(4)}",
        f"+1.{area}.{exch}.{line}",
        f"({area}){exch}-{line}",
        f"+49 (0)30 {d(8)}",
        f"+86 1{d(2)} {d(4)} {d(4)}",
    ]
    return rng.choice(forms)


def _ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _ipv4(rng: random.Random) -> str:
    return ".".join(str(rng.choice([rng.randint(0, 255), rng.randint(1, 9), rng.randint(10, 99)])) for _ in range(4))


def _ipv6(rng: random.Random) -> str:
    groups = [f"{rng.getrandbits(16):x}" for _ in range(8)]
    form = rng.randrange(4)
    if form == 0:
        return ":".join(groups)
    if form == 1:
        return "2001:db8::" + ":".join(groups[:2])
    if form == 2:
        return "fe80::" + ":".join(groups[: rng.randint(1, 4)])
    return ":".join(groups[:3]) + "::" + groups[7]


def _iban(rng: random.Random) -> str:
    country, length = rng.choice([("DE", 22), ("GB", 22), ("FR", 27), ("NL", 18), ("ES", 24), ("IT", 27), ("CH", 21)])
    while True:
        if country in ("GB", "NL"):
            bban = _rand(rng, string.ascii_uppercase, 4) + _rand(rng, string.digits, length - 8)
        elif country == "IT":
            bban = rng.choice(string.ascii_uppercase) + _rand(rng, string.digits, length - 5)
        else:
            bban = _rand(rng, string.digits, length - 4)
        for check in range(2, 99):
            iban = f"{country}{check:02d}{bban}"
            if iban_ok(iban):
                break
        else:
            continue
        if rng.random() < 0.5:
            return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
        return iban


def _email(rng: random.Random) -> str:
    sep = rng.choice([".", "_", "", "+", "-"])
    local = rng.choice(_FIRST) + sep + rng.choice(_LAST) + (str(rng.randint(1, 99)) if rng.random() < 0.4 else "")
    domain = rng.choice([*_DOMAINS, "mail-server.example.net", "x.io"])
    email = f"{local}@{domain}"
    form = rng.random()
    if form < 0.1:
        return email.upper()
    if form < 0.2:
        return email.replace("@", "%40")  # URL-encoded, as in query strings
    return email


_SECRET_GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "openai_key": lambda r: rng_choice_key(r),
    "anthropic_key": lambda r: "sk-ant-api03-" + _rand(r, _B64URL, 93) + "AA",
    "aws_key": lambda r: r.choice(["AKIA", "ASIA"]) + _rand(r, string.ascii_uppercase + "234567", 16),
    "github_token": lambda r: (
        r.choice(["ghp_", "gho_", "ghs_", "ghu_", "ghr_"]) + _rand(r, _ALNUM, 36)
        if r.random() < 0.7
        else "github_pat_" + _rand(r, _ALNUM, 22) + "_" + _rand(r, _ALNUM, 59)
    ),
    "slack_token": lambda r: (
        f"xox{r.choice('abposr')}-{_rand(r, string.digits, 12)}-{_rand(r, string.digits, 13)}-{_rand(r, _ALNUM, 24)}"
        if r.random() < 0.7
        else f"xapp-1-A{_rand(r, _UPPER_DIGITS, 10)}-{_rand(r, string.digits, 13)}-{_rand(r, '0123456789abcdef', 64)}"
    ),
    "gitlab_token": lambda r: (
        r.choice(["glpat-", "gldt-", "glrt-", "glptt-", "glcbt-", "glsoat-"]) + _rand(r, _B64URL, 20)
    ),
    "huggingface_token": lambda r: "hf_" + _rand(r, string.ascii_letters, 34),
    "sendgrid_key": lambda r: "SG." + _rand(r, _B64URL, 22) + "." + _rand(r, _B64URL, 43),
    "google_key": lambda r: "AIza" + _rand(r, _B64URL, 35),
    "stripe_key": lambda r: r.choice(["sk", "rk", "pk"]) + r.choice(["_live_", "_test_"]) + _rand(r, _ALNUM, 24),
    "stripe_webhook_secret": lambda r: "whsec_" + _rand(r, _ALNUM, 32),
    "google_oauth_token": lambda r: (
        "ya29.a0" + _rand(r, _B64URL, r.randint(100, 200))
        if r.random() < 0.7
        else "ya29.c.b0" + _rand(r, _B64URL, 60) + "." + _rand(r, _B64URL, r.randint(40, 120))
    ),
    "npm_token": lambda r: "npm_" + _rand(r, _ALNUM, 36),
    "pypi_token": lambda r: (
        r.choice(["pypi-AgEIcHlwaS5vcmc", "pypi-AgENdGVzdC5weXBpLm9yZw"]) + _rand(r, _B64URL, r.randint(120, 200))
    ),
    "jwt": lambda r: (
        "eyJ" + _rand(r, _B64URL, 30) + ".eyJ" + _rand(r, _B64URL, r.randint(40, 120)) + "." + _rand(r, _B64URL, 43)
    ),
}


def rng_choice_key(rng: random.Random) -> str:
    """An OpenAI-style key: legacy ``sk-`` + 48, or ``sk-proj-`` + 156 characters."""
    if rng.random() < 0.5:
        return "sk-" + _rand(rng, _ALNUM, 20) + "T3BlbkFJ" + _rand(rng, _ALNUM, 20)
    return "sk-proj-" + _rand(rng, _B64URL, 156)


def _sentence(rng: random.Random, n: int = 6) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def _embed(rng: random.Random, label: str, value: str) -> str:
    """Put ``value`` into one of several realistic surrounding texts."""
    s = _sentence(rng)
    forms = [
        f"Please contact {value} about the {s}.",
        f"From: {rng.choice(_FIRST).title()} <{value}>",
        f"GET /api/v1/lookup?{label}={value}&limit=10 HTTP/1.1",
        f"({value})",
        f'{{"tool": "lookup", "args": {{"{label}": "{value}", "note": "{s}"}}}}',
        f"2024-06-01T12:34:56.789Z INFO worker-3 {label}={value} status=ok",
        f"User: my {label} is {value}, can you {s}?",
        f"{s}\\n{value}\\n{s}",
        f"[{value}] {s}",
        f"{s}: {value}; next",
        f"{{'{label}': '{value}', 'retries': 3}}",
        f"{value}",
    ]
    return rng.choice(forms)


@dataclass
class Case:
    """One corpus text: ``kind`` is the planted kind (``None`` for look-alikes)."""

    category: str
    text: str
    planted: str  # the planted PII/secret, or the look-alike value
    pii: bool


def _kind_cases(rng: random.Random) -> Iterator[Case]:
    plain: dict[str, Callable[[random.Random], str]] = {
        "email": _email,
        "phone": _phone,
        "card": _card,
        "ssn": _ssn,
        "ipv4": _ipv4,
        "ipv6": _ipv6,
        "iban": _iban,
        **_SECRET_GENERATORS,
    }
    for kind, gen in plain.items():
        for _ in range(PER_KIND):
            value = gen(rng)
            yield Case(kind, _embed(rng, kind, value), value, True)
    for _ in range(PER_KIND):
        tok = _rand(rng, _B64URL, rng.randint(24, 64)) + str(rng.randint(0, 9))
        text = rng.choice([f"curl -H 'Authorization: Bearer {tok}' {{url}}", f"sent bearer {tok} to the api"])
        yield Case("bearer", text.replace("{url}", "https://api.example.com/v1"), tok, True)
    for _ in range(PER_KIND):
        val = rng.choice(
            [
                "Basic " + _rand(rng, _B64URL, 24) + "==",
                "Token " + _rand(rng, _ALNUM, 40),
                "Digest " + _rand(rng, _ALNUM, 32),
                _rand(rng, _ALNUM, 32),
            ]
        )
        secret = val.split(" ")[-1]
        hdr = rng.choice(["Authorization", "authorization", "Proxy-Authorization"])
        text = rng.choice([f"GET /v1 HTTP/1.1\r\n{hdr}: {val}\r\nHost: x", f'{{"{hdr}": "{val}", "x": 1}}'])
        yield Case("auth_header", text, secret, True)
    for _ in range(PER_KIND):
        body = "\n".join(_rand(rng, string.ascii_letters + string.digits + "+/", 64) for _ in range(rng.randint(3, 8)))
        algo = rng.choice(["RSA ", "EC ", "", "OPENSSH ", "ENCRYPTED "])
        pem = f"-----BEGIN {algo}PRIVATE KEY-----\n{body}\n-----END {algo}PRIVATE KEY-----"
        yield Case("private_key", rng.choice([f"key file:\n{pem}\nend", pem]), body.split("\n")[1], True)
    for _ in range(PER_KIND):
        pw = _rand(rng, _ALNUM + "!$%*", rng.randint(8, 20))
        scheme = rng.choice(["postgres", "mysql", "redis", "https", "amqp", "mongodb+srv"])
        url = f"{scheme}://{rng.choice(_FIRST)}:{pw}@db{rng.randint(1, 9)}.example.com:5432/app"
        yield Case("url_password", rng.choice([f"connecting to {url} ...", f'DATABASE_URL="{url}"']), pw, True)


def _lookalike_cases(rng: random.Random) -> Iterator[Case]:
    hexd = "0123456789abcdef"
    gens: dict[str, Callable[[], str]] = {
        "uuid": lambda: "-".join(_rand(rng, hexd, n) for n in (8, 4, 4, 4, 12)),
        "git_sha": lambda: _rand(rng, hexd, rng.choice([7, 8, 10, 12, 40])),
        "trace_id": lambda: _rand(rng, hexd, 32),
        "iso_timestamp": lambda: rng.choice(
            [
                f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
                f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999999):06d}+00:00",
                f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:"
                f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
                f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2024",
                f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            ]
        ),
        "epoch": lambda: str(rng.randint(1_500_000_000, 1_800_000_000) * rng.choice([1, 1000])),
        "version": lambda: rng.choice(
            [
                f"{rng.randint(0, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
                f"v{rng.randint(0, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
                f"v{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}",
                f"version {rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 99)}",
                f"{rng.randint(1, 3)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}-rc{rng.randint(1, 5)}",
            ]
        ),
        "order_number": lambda: rng.choice(
            [
                f"ORD-2024-{rng.randint(0, 999999):06d}",
                f"INV-{rng.randint(10000, 99999)}-{rng.randint(100, 999)}",
                f"PO#{rng.randint(100000, 9999999)}",
            ]
        ),
        "token_count": lambda: rng.choice(
            [
                f"prompt_tokens={rng.randint(1, 200000)}",
                f"max_tokens: {rng.choice([256, 512, 1024, 4096, 8192, 128000])}",
                f"used {rng.randint(1000, 9999999)} tokens",
            ]
        ),
        "luhn_fail_digits": lambda: _luhn_fail(rng),
        "random_number": lambda: str(rng.randint(0, 10 ** rng.randint(1, 12))),
        "hex_with_luhn_run": lambda: _hex_luhn(rng),
        "misc_ids": lambda: rng.choice(
            [
                f"pod/api-{_rand(rng, 'bcdf23456789', 9)}-{_rand(rng, 'bcdfghjklmnpqrstvwxz2456789', 5)}",
                f"sha256:{_rand(rng, hexd, 64)}",
                f"1.3.6.1.4.1.{rng.randint(1, 99999)}.{rng.randint(1, 9)}",
                f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}",
                f"{rng.random() * 10 ** rng.randint(-9, 9):.6g}",
                f"2024-W{rng.randint(1, 52):02d}",
                f"{rng.randint(1, 999)} {rng.randint(100, 999)} {rng.randint(100, 999)} {rng.randint(100, 999)}",
                f"{rng.randint(1, 999)},{rng.randint(100, 999)},{rng.randint(100, 999)}.{rng.randint(0, 99):02d}",
                f"Chrome/{rng.randint(100, 130)}.0.{rng.randint(1000, 9999)}.{rng.randint(10, 300)}",
                f"+{rng.randint(1, 30)} days, +{rng.randint(1, 100)}%",
                f"req_{_rand(rng, _ALNUM, 24)}",
                f"@{rng.choice(_FIRST)}.{rng.choice(_LAST)} please review",
            ]
        ),
        # Names and words that start like a token: npm's environment variables, package
        # names, short or bare prefixes.
        "token_prefix_words": lambda: rng.choice(
            [
                f"npm_config_{rng.choice(_WORDS)}",
                f"npm_package_{rng.choice(_WORDS)}_{rng.choice(_WORDS)}",
                f"npm_lifecycle_event={rng.choice(_WORDS)}",
                f"pypi-{rng.choice(_WORDS)}-{rng.choice(_WORDS)}",
                f"pypi-AgE{_rand(rng, _ALNUM, rng.randint(1, 30))}",
                f"whsec_{rng.choice(_WORDS)}",
                f"ya29.{_rand(rng, _ALNUM, rng.randint(1, 15))}",
                f"xapp-{rng.choice(_WORDS)}-{rng.choice(_WORDS)}",
                f"npm_{_rand(rng, _ALNUM, rng.choice([20, 35, 37, 40]))}",
                f"snpm_{_rand(rng, _ALNUM, 36)}",
            ]
        ),
        "price_and_dims": lambda: rng.choice(
            [
                f"${rng.randint(1, 99999)}.{rng.randint(0, 99):02d}",
                f"{rng.randint(1, 4000)}x{rng.randint(1, 4000)}",
                f"{rng.randint(1, 99)}% of {rng.randint(100, 99999)}",
            ]
        ),
    }
    for cat, gen in gens.items():
        for _ in range(PER_KIND):
            value = gen()
            yield Case(cat, _embed(rng, cat, value), value, False)


def _luhn_fail(rng: random.Random) -> str:
    while True:
        n = str(rng.randint(2, 6)) + _rand(rng, string.digits, rng.randint(12, 18))
        if not luhn_ok(n):
            return n


def _hex_luhn(rng: random.Random) -> str:
    """A hex id that contains a Luhn-valid 16-digit card-like run."""
    card = _luhn_complete(rng, "4", 16)
    return _rand(rng, "abcdef", rng.randint(1, 6)) + card + _rand(rng, "abcdef", rng.randint(1, 6))


def build_corpus(seed: int = SEED) -> list[Case]:
    """Generate the labelled corpus: planted PII of every kind plus look-alikes."""
    rng = random.Random(seed)
    cases = list(_kind_cases(rng))
    cases.extend(_lookalike_cases(rng))
    return cases


@dataclass
class Row:
    """One line of the corpus report."""

    category: str
    pii: bool
    total: int
    hits: int  # planted value absent from the output (pii) / text changed (look-alike)

    @property
    def rate(self) -> float:
        """Recall for PII rows, false-positive rate for look-alike rows."""
        return self.hits / self.total if self.total else 0.0


def corpus_report(redactor: Redactor | None = None, cases: list[Case] | None = None) -> list[Row]:
    """Run the corpus through ``redactor.redact_text`` and count recall / false positives."""
    r = redactor or Redactor(key=b"corpus-report-key")
    rows: dict[str, Row] = {}
    for case in cases if cases is not None else build_corpus():
        out = r.redact_text(case.text)
        row = rows.setdefault(case.category, Row(case.category, case.pii, 0, 0))
        row.total += 1
        if case.pii:
            row.hits += case.planted not in out
        else:
            row.hits += out != case.text
    return list(rows.values())


def format_report(rows: list[Row]) -> str:
    """The report as a text table (recall for kinds, false positives for look-alikes)."""
    lines = [f"  {'kind':<18} {'n':>5} {'recall':>8}"]
    lines += [f"  {r.category:<18} {r.total:>5} {r.rate:>8.1%}" for r in rows if r.pii]
    lines.append(f"  {'look-alike':<18} {'n':>5} {'changed':>8}")
    lines += [f"  {r.category:<18} {r.total:>5} {r.rate:>8.1%}" for r in rows if not r.pii]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Events for the timing part
# ---------------------------------------------------------------------------


def clean_event(rng: random.Random) -> dict[str, object]:
    """A ~300-byte LLM-request event with no PII (ids, a timestamp, a prose message)."""
    return {
        "kind": "llm.request",
        "ts": f"2024-06-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
        f"{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z",
        "trace_id": f"{rng.getrandbits(128):032x}",
        "model": "gpt-4o-mini",
        "messages": [
            {
                "role": "user",
                "content": f"Summarize the {rng.choice(_WORDS)} report for project {rng.choice(_FIRST).title()}-"
                f"{rng.randint(1, 9999)} and list the three biggest {rng.choice(_WORDS)} risks for the next "
                f"quarter, with owners.",
            }
        ],
        "temperature": 0.2,
        "max_tokens": 512,
    }


def pii_event(rng: random.Random) -> dict[str, object]:
    """A ~300-byte tool-call event full of PII and secrets."""
    return {
        "kind": "tool.call",
        "tool": "send_email",
        "args": {
            "to": _email(rng),
            "body": f"Hi, call me at {_phone(rng)}. Card {_card(rng)}, SSN {_ssn(rng)}. Logged in from {_ipv4(rng)}.",
            "api_key": "sk-" + _rand(rng, _ALNUM, 48),
        },
        "note": f"server {_ipv6(rng)} token {rng_choice_key(rng)[:60]}",
    }


# A straightforward multi-pass redactor: one regex per rule over every string.
_NAIVE_RULES: list[tuple[str, re.Pattern[str]]] = [
    (k, re.compile(p))
    for k, p in [
        ("PRIVATE_KEY", r"-----BEGIN[A-Z ]*PRIVATE KEY-----[\s\S]*?-----END[A-Z ]*PRIVATE KEY-----"),
        ("URL_PASSWORD", r"(?<=://)[^\s:/@]*:[^\s/@]+(?=@)"),
        ("JWT", r"\beyJ[\w-]+\.eyJ[\w-]+\.[\w-]*"),
        ("ANTHROPIC_KEY", r"\bsk-ant-[\w-]{20,}"),
        ("OPENAI_KEY", r"\bsk-[\w-]{20,}"),
        ("AWS_KEY", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
        ("GITHUB_TOKEN", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{22,})"),
        ("SLACK_TOKEN", r"\bxox[abposr]-[\w-]{10,}"),
        ("GOOGLE_KEY", r"\bAIza[\w-]{35}"),
        ("STRIPE_KEY", r"\b[srp]k_(?:live|test)_[A-Za-z0-9]{10,}"),
        ("AUTH_HEADER", r"(?i)(?<=authorization: )[^\r\n]+"),
        ("BEARER", r"(?<=Bearer )[\w.~+/-]{8,}"),
        ("EMAIL", r"\b[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b"),
        ("IBAN", r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"),
        ("IPV6", r"\b(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{0,4}\b"),
        ("IPV4", r"\b\d{1,3}(?:\.\d{1,3}){3}\b"),
        ("SSN", r"\b\d{3}-\d{2}-\d{4}\b"),
        ("PHONE", r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]\d{3,4}[ .-]?\d{3,4}\b"),
        ("CARD", r"\b\d(?:[ -]?\d){12,18}\b"),
    ]
]


def naive_text(s: str) -> str:
    """Redact one string with one ``re.sub`` pass per rule."""
    for kind, pattern in _NAIVE_RULES:
        s = pattern.sub(f"<{kind}>", s)
    return s


def naive_redact(v: object) -> object:
    """The simplest recursive walk plus :func:`naive_text`."""
    if isinstance(v, str):
        return naive_text(v[:4096])
    if isinstance(v, dict):
        return {str(k): naive_redact(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [naive_redact(x) for x in v]
    return v


def _batch_ns(fn: Callable[[object], object], events: list[dict[str, object]]) -> float:
    """Per-event CPU time (ns) of ``fn`` over ``events``, as seen by this thread.

    Thread CPU time rather than wall time: on a shared machine the benchmark
    gets descheduled, and wall time would count the waiting.
    """
    t0 = time.thread_time_ns()
    for e in events:
        fn(e)
    return (time.thread_time_ns() - t0) / len(events)


ROWS = (
    "clean, never seen",
    "clean, never seen, extra_keys",
    "PII, never seen",
    "repeated (cache hit)",
    "enabled=False walk",
    "naive multi-pass, clean",
    "naive multi-pass, PII",
)


# A user's own secret key names (FLIGHTREC_REDACT_KEYS): they count in text too.
EXTRA_KEYS = RedactConfig(extra_keys=("ssn_last4", "member_pin"))


def timings(n: int = 2000, repeats: int = 15) -> dict[str, float]:
    """Median per-event cost (ns) of each variant over ``repeats`` batches of ``n`` events.

    Variants are interleaved within each round so that load changes on the
    machine hit all of them alike. "Never seen" batches use a fresh Redactor
    and distinct events (more strings than the cache holds), so every string
    misses the cache.
    """
    rng = random.Random(7)
    clean = [[clean_event(rng) for _ in range(n)] for _ in range(repeats)]
    pii = [[pii_event(rng) for _ in range(n)] for _ in range(repeats)]
    one = clean[0][0]
    off = Redactor(RedactConfig(enabled=False)).redact
    samples: dict[str, list[float]] = {name: [] for name in ("loop", *ROWS)}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for i in range(repeats):
            samples["loop"].append(_batch_ns(lambda e: None, clean[i]))
            samples["clean, never seen"].append(_batch_ns(Redactor().redact, clean[i]))
            samples["clean, never seen, extra_keys"].append(_batch_ns(Redactor(EXTRA_KEYS).redact, clean[i]))
            samples["PII, never seen"].append(_batch_ns(Redactor().redact, pii[i]))
            warm = Redactor()
            warm.redact(one)
            samples["repeated (cache hit)"].append(_batch_ns(warm.redact, [one] * n))
            samples["enabled=False walk"].append(_batch_ns(off, clean[i]))
            samples["naive multi-pass, clean"].append(_batch_ns(naive_redact, clean[i][: n // 4]))
            samples["naive multi-pass, PII"].append(_batch_ns(naive_redact, pii[i][: n // 4]))
    finally:
        if gc_was:
            gc.enable()
    loop = statistics.median(samples.pop("loop"))
    return {name: statistics.median(values) - loop for name, values in samples.items()}


def main() -> None:
    """Print the timing table, then the corpus table."""
    import json
    import os

    rng = random.Random(3)
    clean_size = statistics.mean(len(json.dumps(clean_event(rng))) for _ in range(50))
    pii_size = statistics.mean(len(json.dumps(pii_event(rng))) for _ in range(50))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Redactor.redact: median CPU time per event (ns), events ~{clean_size:.0f} B clean / "
        f"~{pii_size:.0f} B PII as JSON; not redacting costs 0 ns (load average {load:.1f})"
    )
    rows = timings()
    walk = rows["enabled=False walk"]
    width = max(map(len, rows))
    for name, ns in rows.items():
        note = ""
        if not name.startswith(("enabled", "naive")):
            note = f"   walk + {ns - walk:6.0f} ns of rules/cache"
        print(f"  {name:<{width}}  {ns:8.0f} ns   x{ns / walk:5.1f} the walk{note}")
    print(
        f"  naive / Redactor: clean x{rows['naive multi-pass, clean'] / rows['clean, never seen']:.1f}, "
        f"PII x{rows['naive multi-pass, PII'] / rows['PII, never seen']:.1f}"
    )
    print()
    print(f"Labelled corpus (seed {SEED}, {PER_KIND} per category): recall per kind, changed look-alikes")
    print(format_report(corpus_report()))


if __name__ == "__main__":
    from _common import no_options  # (here: the tests import this file without benchmarks/ on the path)

    no_options(__doc__)
    main()
