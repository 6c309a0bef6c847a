"""Tests for flightrec.redact: the labelled corpus, rules, pseudonyms, the walk and robustness.

``pytest -s tests/test_redact.py`` prints the per-kind recall / false-positive table.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import decimal
import hashlib
import importlib.util
import math
import pickle
import re
import sys
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightrec.redact import (
    BUILTIN_RULES,
    CYCLE,
    MAX_DEPTH,
    RedactConfig,
    Redactor,
    describe_header,
    iban_ok,
    luhn_ok,
)
from flightrec.redact.config import _secret_name

PLACEHOLDER = re.compile(r"<([A-Z0-9_]+):([0-9a-f]{6})>")
KEY = b"test-key-0123456789abcdef0123456"


def _load_bench() -> ModuleType:
    """Import benchmarks/redact_core.py by path (benchmarks/ is not a package)."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "redact_core.py"
    spec = importlib.util.spec_from_file_location("flightrec_bench_redact_core", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


@pytest.fixture
def r() -> Redactor:
    """A redactor with every built-in rule and a fixed key."""
    return Redactor(key=KEY)


def kinds(text: str) -> list[str]:
    """The KIND labels of the placeholders in ``text``."""
    return [m.group(1) for m in PLACEHOLDER.finditer(text)]


# ---------------------------------------------------------------------------
# Labelled corpus
# ---------------------------------------------------------------------------


class TestCorpus:
    """The seeded corpus of planted PII and look-alikes (see benchmarks/redact_core.py)."""

    @pytest.fixture(scope="class")
    def rows(self) -> list[Any]:
        """Run the corpus once for the whole class and print the table."""
        cases = bench.build_corpus(1234)
        rows = bench.corpus_report(Redactor(key=KEY), cases)
        print("\n" + bench.format_report(rows))
        return rows

    def test_corpus_size(self, rows: list[Any]) -> None:
        """Every kind and look-alike category has at least 200 generated texts."""
        assert {r.category for r in rows if r.pii} >= set(BUILTIN_RULES) - {"secret"}
        assert all(r.total >= 200 for r in rows)

    def test_recall_per_kind(self, rows: list[Any]) -> None:
        """At least 99% of planted values of every kind are gone from the output."""
        low = {r.category: f"{r.rate:.1%}" for r in rows if r.pii and r.rate < 0.99}
        assert not low

    def test_false_positives_per_lookalike(self, rows: list[Any]) -> None:
        """At most 1% of look-alike texts (ids, timestamps, versions, numbers) are changed."""
        high = {r.category: f"{r.rate:.1%}" for r in rows if not r.pii and r.rate > 0.01}
        assert not high

    def test_corpus_is_deterministic(self) -> None:
        """The same seed generates the same corpus."""
        a = [(c.category, c.text) for c in bench.build_corpus(1234)[:300]]
        b = [(c.category, c.text) for c in bench.build_corpus(1234)[:300]]
        assert a == b

    def test_planted_kind_label(self) -> None:
        """Planted values are replaced by a placeholder of their own kind."""
        r = Redactor(key=KEY)
        wrong = []
        for case in bench.build_corpus(1234):
            if not case.pii or case.category in ("bearer", "auth_header"):
                continue  # both contexts legitimately overlap
            out = r.redact_text(case.text)
            # ("github_token=ghp_..." holds the value of a secret-named key: <SECRET:...>, as in a dict)
            labels = {case.category.upper(), "SECRET"} if _secret_name(case.category) else {case.category.upper()}
            if labels.isdisjoint(kinds(out)):
                wrong.append((case.category, case.text))
        assert len(wrong) <= 10, wrong[:5]

    @pytest.mark.parametrize(
        "variant",
        [
            pytest.param(str.maketrans({c: chr(ord(c) + 0xFEE0) for c in "0123456789+-().,:"}), id="full-width"),
            pytest.param(str.maketrans({" ": "\u00a0"}), id="nbsp"),
            pytest.param(str.maketrans({" ": "\u202f"}), id="narrow-nbsp"),
            pytest.param(str.maketrans({" ": "\u3000"}), id="ideographic-space"),
        ],
    )
    def test_wide_forms_as_the_ascii_ones(self, variant: dict[int, str]) -> None:
        """The corpus in full-width digits and punctuation, or with no-break or ideographic spaces:
        every look-alike still unchanged, every planted number found as in its ASCII form."""
        r = Redactor(key=KEY)
        changed, missed = [], []
        for case in bench.build_corpus(1234):
            text = case.text.translate(variant)
            out = r.redact_text(text)
            if not case.pii and out != text:
                changed.append((case.category, text, out))
            elif case.category in ("phone", "card", "ssn", "ipv4", "iban") and case.planted.translate(variant) in out:
                missed.append((case.category, text))
        assert (changed[:3], missed[:3]) == ([], [])


# ---------------------------------------------------------------------------
# Hand-written cases
# ---------------------------------------------------------------------------

POSITIVE = [
    ("email", "reach me at first.last+tag@sub.example.co.uk.", "first.last+tag@sub.example.co.uk"),
    ("email", "mailto:jane_doe@example.org?subject=hi", "jane_doe@example.org"),
    ("email", '{"text": "line one\\njohn@example.com"}', "john@example.com"),
    ("email", "GET /find?email=jane.doe%40example.com&x=1", "jane.doe%40example.com"),
    ("email", "From: Jane <JANE.DOE@EXAMPLE.COM>", "JANE.DOE@EXAMPLE.COM"),
    # internationalized addresses (RFC 6531): letters of any script, also decomposed accents
    ("email", "schreib an josé@exämple.de bitte", "josé"),
    ("email", "schreib an josé@exämple.de bitte", "exämple"),
    ("email", "联系用户@例子.广告。谢谢", "用户@例子.广告"),
    ("email", "order from user@bücher.example.", "bücher"),
    ("email", "Пишите: Иван.Петров@почта.рф", "Петров"),
    ("email", "cafe\u0301@example.com", "cafe\u0301"),
    ("phone", "call +44 20 7946 0958 today", "7946 0958"),
    ("phone", "US: +1-202-555-0143", "555-0143"),
    ("phone", "office (202) 555-0143, ext 7", "555-0143"),
    ("phone", "((202)555-0143)", "555-0143"),
    ("phone", "UK +44 (0)20 7946 0958", "7946 0958"),
    ("phone", "cell 202-555-0143.", "202-555-0143"),
    ("phone", "London 020 7946 0958", "7946 0958"),
    ("phone", "mobile 07700 900123", "900123"),
    ("phone", "toll free 1-800-555-0199", "555-0199"),
    ("phone", "E.164 +442079460958", "442079460958"),
    ("phone", "Paris +33 1 23 45 67 89", "23 45 67 89"),
    ("phone", "appelez le 06 12 34 56 78 svp", "12 34 56 78"),
    ("phone", "tél. 01.23.45.67.89.", "23.45.67.89"),
    ("phone", "Berlin 0049 30 1234567", "1234567"),
    ("phone", "Lyon 0033 6 12 34 56 78", "12 34 56 78"),
    ("phone", "New York 001 212 555 0143", "555 0143"),
    # no-break spaces (U+00A0, and U+202F of French typography) between the groups
    ("phone", "appelez le 06\u00a012\u00a034\u00a056\u00a078 svp", "34\u00a056\u00a078"),
    ("phone", "tél. : +33\u202f6\u202f12\u202f34\u202f56\u202f78", "34\u202f56\u202f78"),
    ("phone", "US +1\u00a0202\u00a0555\u00a00143", "555\u00a00143"),
    ("phone", "Berlin 0049\u00a030\u00a01234567, London 020\u202f7946\u202f0958", "1234567"),
    ("phone", "Berlin 0049\u00a030\u00a01234567, London 020\u202f7946\u202f0958", "7946\u202f0958"),
    # full-width forms (U+FF01-FF5E, as CJK text writes digits) and no-break or ideographic
    # spaces are read as their ASCII forms, so wherever that form is one, they are one
    ("phone", "call me at ＋４９ ３０ １２３４５６７８ today", "１２３４５６７８"),
    ("phone", "電話：（０３）１２３４－５６７８まで", "１２３４－５６７８"),
    ("phone", "携帯 ０９０－１２３４－５６７８", "１２３４－５６７８"),
    ("phone", "ＵＳ\u3000＋１\u3000２０２\u3000５５５\u3000０１４３", "５５５"),
    ("phone", "call (415)\u00a0555\u00a02671 now", "555\u00a02671"),
    ("phone", "call (415)\u202f555\u202f2671 or 415\u00a0555\u00a02672", "555\u202f2671"),
    ("phone", "call (415)\u202f555\u202f2671 or 415\u00a0555\u00a02672", "555\u00a02672"),
    ("card", "card ４１１１ １１１１ １１１１ １１１１ ok", "１１１１ １１１１"),
    ("card", "カード番号：４１１１－１１１１－１１１１－１１１１です", "１１１１－１１１１"),
    ("card", "番号\u3000４１１１\u3000１１１１\u3000１１１１\u3000１１１１", "１１１１\u3000１１１１"),
    ("card", "card 4111\u00a01111\u00a01111\u00a01111 ok", "1111\u00a01111"),
    ("card", "carte 5555\u202f5555\u202f5555\u202f4444.", "5555\u202f4444"),
    ("ssn", "SSN １２３－４５－６７８９", "６７８９"),
    ("secret", "password:\u00a0hunter2 now", "hunter2"),
    ("phone", "2024-06-01 202-555-0143", "555-0143"),
    ("phone", "2024-06-01 +4420794609581", "4420794609581"),
    ("phone", "2024-06-01T12:34 202-555-0143", "555-0143"),
    ("card", "visa 4111 1111 1111 1111 exp 12/29", "4111 1111 1111 1111"),
    ("card", "amex 3782 822463 10005", "822463"),
    ("card", "mc 5555-5555-5555-4444", "5555-5555-5555-4444"),
    ("card", "disc=6011000990139424;", "6011000990139424"),
    ("card", "card 4111 1111 1111 1111 123 (with cvv)", "4111 1111 1111 1111"),
    ("ssn", "SSN: 078-05-1120", "078-05-1120"),
    ("ipv4", "from 192.168.0.1:8080", "192.168.0.1"),
    ("ipv4", "ip=10.0.0.255,", "10.0.0.255"),
    ("ipv6", "listen [2001:db8::1]:443", "2001:db8::1"),
    ("ipv6", "mapped ::ffff:192.0.2.128 here", "192.0.2.128"),
    ("ipv6", "link fe80::1ff:fe23:4567:890a%eth0", "fe80::1ff:fe23:4567:890a"),
    ("ipv6", "full 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "8a2e:0370:7334"),
    ("iban", "IBAN GB82 WEST 1234 5698 7654 32 please", "5698 7654"),
    ("iban", "DE89370400440532013000", "DE89370400440532013000"),
    ("iban", "pay FR1420041010050500013M02606 now", "FR1420041010050500013M02606"),
    ("iban", "NL91ABNA0417164300", "NL91ABNA0417164300"),
    # (the value of a secret-named key is that key's secret, whatever it looks like)
    ("secret", "OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0f", "Ab3dEf6hIj9kLm2nOp5"),
    ("openai_key", "OPENAI_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0f", "Ab3dEf6hIj9kLm2nOp5"),
    ("openai_key", "key sk-Abcdefghij1234567890ABCDEFGHij0987654321klmn", "Abcdefghij1234567890"),
    ("secret", "x-api-key: sk-ant-api03-Zx9_Yw8-Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBaAA", "Zx9_Yw8-Vu7Ts6"),
    ("anthropic_key", "x-api: sk-ant-api03-Zx9_Yw8-Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBaAA", "Zx9_Yw8-Vu7Ts6"),
    ("aws_key", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_key", "ASIAY34FZKBOKMUTVV7A temporary", "ASIAY34FZKBOKMUTVV7A"),
    ("github_token", "token ghp_16C7e42F292c6912E7710c838347Ae178B4a", "16C7e42F292c6912E771"),
    ("github_token", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz012345", "11ABCDEFG0123456789"),
    ("gitlab_token", "GITLAB=glpat-xF3kZ9qLm2Vb7Nw1Rt4Y ok", "xF3kZ9qLm2Vb7Nw1Rt4Y"),
    ("gitlab_token", "deploy with gldt-aB3dE_6hIj9kLm-nOp5qR", "aB3dE_6hIj9kLm-nOp5qR"),
    ("gitlab_token", "runner glrt-t1_Zx81hQm2RkT7vB4nL0pW9s.01.0w1ab2cd3", "Zx81hQm2RkT7vB4nL0pW9s"),
    ("huggingface_token", "HF hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh", "AbCdEfGhIjKlMnOpQrStUvWxYz"),
    ("sendgrid_key", "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", "ngeVfQFYQlKU0ufo8x5d1A"),
    ("slack_token", "SLACK=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "1234567890123-AbCd"),
    ("slack_token", "app token xapp-1-A0123456789-1234567890123-" + "0f1e2d3c4b5a6978" * 4, "A0123456789"),
    ("google_oauth_token", "Bearer-less ya29.a0AfH6SMBx3kLmQ9vT2pR7wYz8uN4cD1eF6gH0jK5lM3nO2pQ.", "a0AfH6SMBx3kLmQ9"),
    ("google_oauth_token", '{"value":"ya29.c.b0Aaekm1K9x2Qw.hZ8vT3pR7wYz8uN4cD1eF6gH"}', "hZ8vT3pR7wYz8uN4"),
    ("npm_token", "//registry.npmjs.org/ npm_aB3dE6hIj9kLm0nOp5qRsT1uVwX2yZ4AbCdE", "aB3dE6hIj9kLm0nOp"),
    ("npm_token", "NPM npm_aB3dE6hIj9kLm0nOp5qRsT1uVwX2yZ4AbCdE ok", "aB3dE6hIj9kLm0nOp"),
    (
        "pypi_token",
        "[pypi] pypi-AgEIcHlwaS5vcmcCJDU3ZjY4ZTQ3LTk5YjEtNDVhNy1hYjM1LTAwMjg2YzE5ZWU0NgACKlszLCJhZjQ1ZjdlNi1jZGQ2",
        "CJDU3ZjY4ZTQ3LTk5",
    ),
    ("pypi_token", "pypi-AgENdGVzdC5weXBpLm9yZwIkYjQ1ZjdlNi1jZGQ2LTQ4ZTgtOGM2OS1iNjg2Yjk0NzFhMmQ", "dGVzdC5weXBp"),
    ("stripe_webhook_secret", "STRIPE_WEBHOOK whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw end", "MfKQ9r8GKYqrTwjU"),
    ("stripe_webhook_secret", "svix whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "C2FVsBQIhrscChlQ"),
    ("google_key", "key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY&q=x", "SyD-9tSrke72PouQMnMX"),
    ("stripe_key", "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
    ("stripe_key", "rk_test_51H8abcDEF1234567890xyz", "51H8abcDEF1234567890xyz"),
    (
        "jwt",
        "jwt=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "dozjgNryP4J3jVmNHl0w5N",
    ),
    ("auth_header", "Authorization: Basic dXNlcjpwYXNzd29yZA==\r\nHost: x", "dXNlcjpwYXNzd29yZA"),
    ("auth_header", "{'authorization': 'Token 9f8e7d6c5b4a39281706'}", "9f8e7d6c5b4a39281706"),
    ("bearer", "curl -H 'X: 1' --oauth Bearer abc123DEF456ghi789", "abc123DEF456ghi789"),
    (
        "private_key",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx7Zr\nQ2hBcUt0\n-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAx7Zr",
    ),
    ("private_key", "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjE\\n...(truncated", "b3BlbnNzaC1rZXktdjE"),
    ("url_password", "postgres://admin:s3cr3t@db.example.com:5432/app", "s3cr3t"),
    ("url_password", "redis://:p@ss@cache:6379/0", "p@ss"),
    # secret-named keys in text (JSON, Python reprs, query strings, headers, env, config)
    ("secret", '{"api_key": "abc123secretvalue", "password": "hunter2"}', "abc123secretvalue"),
    ("secret", '{"api_key": "abc123secretvalue", "password": "hunter2"}', "hunter2"),
    ("secret", '{"text": "{\\"access_token\\": \\"ya29-a0AfH6SMB\\"}"}', "ya29-a0AfH6SMB"),
    ("secret", "{'client_secret': 'zz9 zz9'}", "zz9 zz9"),
    ("secret", "GET /login?user=bob&password=hunter2&next=/", "hunter2"),
    ("secret", "https://x.io/cb?code=1&access_token=abcdef123#frag", "abcdef123"),
    ("secret", "curl -H 'X-Api-Key: abcdef123456' https://api.x.io", "abcdef123456"),
    ("secret", "Cookie: theme=dark; sid=abc123def456\r\nHost: x", "abc123def456"),
    ("secret", "DB_PASSWORD=hunter2 ./run.sh", "hunter2"),
    ("secret", "[db]\nuserPwd = correct-horse\n", "correct-horse"),
    ("secret", "token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", "dozjgNryP4J3"),
    ("secret", '{"pin": 482913, "otp": "771204"}', "482913"),
    ("secret", '{"pin": 482913, "otp": "771204"}', "771204"),
    ("secret", "step 2\\npasscode: 5521", "5521"),
    # (values that look like none of the prose and code above)
    ("secret", "password: hunter2 next step", "hunter2"),
    ("secret", "pin=abcd user=bob", "abcd"),
    ("secret", "password=$ecret9 ./run.sh", "$ecret9"),
    ("secret", 'password: "!@#$%^&"', "!@#$%^&"),
    ("secret", "api_key=a8f3k2Token", "a8f3k2Token"),
    ("secret", "Cookie: sid=abc123", "abc123"),
    # a value quoted with backticks (a JavaScript template literal, Markdown code)
    ("auth_header", "headers: { Authorization: `Bearer abc123def456` }", "abc123def456"),
    ("auth_header", "Authorization: Bearer ${TOKEN}abc123def", "abc123def"),
    ("secret", "token: `abc123`, password=`p4ss word`", "abc123"),
    ("secret", "token: `abc123`, password=`p4ss word`", "p4ss word"),
    ("secret", "password=%sabc", "%sabc"),
    # a '$' then a name that is neither upper-case (an environment variable) nor a secret's
    # (a variable such as $token) is a value that starts with a '$'
    ("secret", 'password: "$ecret" and token=$ecretTok', "$ecret"),
    ("secret", 'password: "$ecret" and token=$ecretTok', "$ecretTok"),
    ("secret", "password=$unshine ./run.sh; api_key='$Ecret99'", "$unshine"),
    ("secret", "password=$unshine ./run.sh; api_key='$Ecret99'", "$Ecret99"),
    ("auth_header", "Authorization: Bearer $ecret", "$ecret"),
    ("auth_header", "authorization: $ecretecret", "$ecretecret"),
    # a quoted value after a secret name and a blank: a flag's argument, SQL, a sentence
    ("secret", "password '$ecret99' and token \"$ecretTok\"", "$ecret99"),
    ("secret", "password '$ecret99' and token \"$ecretTok\"", "$ecretTok"),
    ("secret", "mysql -u root --password 'S3cret99' -e 'SELECT 1'", "S3cret99"),
    ("secret", "ALTER USER app WITH PASSWORD 'S3cr3t!!';", "S3cr3t!!"),
    ("secret", 'the user typed password "hunter2" in the chat', "hunter2"),
]

NEGATIVE = [
    "request 550e8400-e29b-41d4-a716-446655440000 done",
    "550E8400-E29B-41D4-A716-446655440000",
    "commit da39a3ee5e6b4b0d3255bfef95601890afd80709 and abbrev 1234567",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
    "at 2024-06-01T12:34:56.789+00:00 and 2024-06-01 12:34:56",
    "2024-06-01T12:34:56+05:30",
    "2024-06-01 12:34:56.123456",
    "dates 06/01/2024, 2024/06/01, 01.06.2024",
    "epoch 1717245296 ms 1717245296789 us 1717245296789123 float 1717245296.789",
    "versions 1.2.3, v10.0.1, 2.4.1-rc3, v1.2.3.4, version 1.2.3.4",
    "order ORD-2024-000123 invoice INV-55555-123",
    "max_tokens=4096 prompt_tokens: 1234567 total_tokens 99999999",
    "not a card 4111111111111112 or 1234567890123",
    "hex id abc4111111111111111def",
    "ISBN 978-3-16-148410-0 and SKU 123-456-7890",
    "C++ std::vector<int> and Rust Vec::new() and a[1::2]",
    "time 12:34:56 mac 00:1a:2b:3c:4d:5e",
    "https://example.com:8080/path?q=1 and user@localhost",
    "@property decorators and a @ b",
    # "@" in text of other scripts: mentions, decorators, operators, no domain or no TLD
    "@用户 和 @José 说; Привет @друг.как дела; @Größe.groß",
    "@property\ndef größe(self) -> Ä: return ä@b + ü @ v; M = Ä@B.T",
    "Größe@home, tag@größe, user@例子, José@ dominio.es, emoji😀@x.com",
    # retina image names: "@2x" then a file extension, not an address
    "<img src=icon@2x.png srcset='logo@3x.webp 3x, hero@1.5x.jpeg, a@2x.svg'>",
    "price $1,234.56 for 1920x1080 at 3.14159",
    "call 911 from room 101",
    "the bearer token is passed in the authorization header",
    "scikit-learn and task-force-alpha-bravo-charlie-delta",
    "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]",
    "ghp_ is the prefix; AKIA means access key; eyJ starts a JWT",
    "hf_transformerspipelineconfiguration_loader glpat-short SG.abc.def gl-pat-abcdefghijklmnopqrstu",
    "npm_config_cache=/tmp/npm npm_package_name=my-app npm_lifecycle_event=build npm_token_missing",
    "npm_ then 36: npm_abcdefghijklmnopqrstuvwxyz0123456789_x snpm_abcdefghijklmnopqrstuvwxyz0123456789",
    "pypi-simple and pypi-AgEshort, whsec_ prefix, whsec_short, ya29.short and ya29. alone, xapp-config",
    "Xya29.a0AfH6SMBx3kLmQ9vT2pR7wYz8uN4cD1eF6gH0jK5 pypi.org/project/xapp-1-tools",
    "SSN-like but invalid 000-12-3456 666-12-3456 912-34-5678 123-00-4567",
    "1.2.3.999 and 300.1.1.1",
    '{"password": null, "token": "", "secret": true, "max_tokens": 4096, "eos_token": "</s>"}',
    "if token == expected: spin: 3, author: bob, authors=2, options=fast, pinned=true",
    '{"name": "lookup", "query": "weather", "units": "metric", "description": "x", "version": 2}',
    "level=info user_id=42 session=abc region=eu-west-1 duration=12ms",
    "next_page_token=abc123 cancellation_token: t1",
    "password=<SECRET:3f9a2c> token: <GITHUB_TOKEN:0a1b2c>",
    "password=&token=&secret=",
    "ids 00 12 34 and 0012345678 and 007, padded 0001 0002 0003",
    "lottery 05 12 23 34 45 56, scores 01 02 03 04, version 0.12.34.56.78",
    "x06 12 34 56 78 and v06.12.34.56.78, amount 0,00 EUR on 01 01 2024",
    "Réf. produit 0012 3456 7890, ticket 0019-8765-4321, lot 00 12 34 56",
    # amounts grouped in thousands by (no-break) spaces, signed or not, and other digit groups
    "montant : 1\u00a0234\u00a0567,89\u00a0€, solde : +1\u00a0234\u00a0567,89 €, écart +1 234 567,89",
    "gain +12\u202f345\u202f678 €, +12 345 678 EUR, total 12\u00a0345\u00a0678\u00a0901 €",
    "population 67\u00a0390\u00a0000 habitants; lot 05\u00a012\u00a023\u00a034\u00a045\u00a056",
    # full-width numbers that are no phone or card in their ASCII form either: amounts, dates,
    # times, a Luhn-failing card, ids glued to letters, versions, flight numbers
    "合計 ４５，０００円（税込）、２０２６年１１月２７日 １２：３４：５６、￥１，２３４，５６７",
    "４１１１ １１１１ １１１１ １１１２ と ４１１１－１１１１－１１１１－１１１２",
    "ＯＲＤ－２０２４－０００１２３、ｖ１．２．３．４、ＮＨ２０５便　１０：３０発、ゲート　１２",
    "予約番号\u3000１２３４５６７８９０１２３、残高 ＋１ ２３４ ５６７，８９ €、＋１２\u3000３４５\u3000６７８ EUR",
    "order\u00a01234\u00a05678\u00a09012\u00a03456, 12\u00a0h\u00a030, 1\u202f234\u202f567\u202f890",
    # documentation placeholders of the prefixed tokens: one character repeated
    "glpat-xxxxxxxxxxxxxxxxxxxx glrt-XXXXXXXXXXXXXXXXXXXXXXXX hf_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "npm_" + "x" * 36 + " whsec_" + "x" * 32 + " ya29." + "x" * 40 + " pypi-AgE" + "X" * 60,
    "SG." + "x" * 22 + "." + "x" * 43,
    # prose that talks about secrets (LLM replies, docs, logs), English and French
    "Enter your password: the field is on the left. The token: a string the API returns.",
    "Password: must be 12 characters. OTP: one-time password, sent by SMS. Your PIN: four digits.",
    "auth: OAuth 2.0 with PKCE; ValueError: invalid token: expected 3 segments, got 2",
    "2024-06-01 12:34:56,789 INFO auth: user logged in (method=oauth2) level=info auth=ok",
    "Le token : une chaîne renvoyée par l'API. Code PIN : quatre chiffres. Password : le champ.",
    "In short, password = something you know, token = something you have.",
    "Cookie: a small piece of data the browser stores; cookies are sent on every request.",
    '{"role": "assistant", "content": "Your password: keep it secret. The token: rotate it."}',
    # code: calls, indexes, variables named like a secret, types, shell expansions, masks
    "def login(username: str, password: str, pin: int, otp: str | None) -> Session:",
    "token = get_token(); password = getpass.getpass(); api_key = os.environ['OPENAI_API_KEY']",
    "Session(auth=auth); OpenAI(api_key=api_key); f(password=password, token=self._token)",
    "self.token = token; return {'token': token}; const token = await getToken(); let auth = useAuth();",
    'headers = {"Authorization": f"Bearer {token}"}; password: string; secret=os.getenv("SECRET")',
    "UPDATE users SET password = crypt($1, gen_salt('bf')) WHERE id = $2;",
    'export TOKEN=$(gh auth token) API_KEY="${API_KEY:?missing}" PASSWORD=$PASSWORD; read -p "Password: " PW',
    'pin = int(input("PIN: ")); password = "********"; token = \'<your-token-here>\'',
    # a template's stand-in for a credential (JavaScript, shell, Jinja/Mustache/Postman, str.format, %)
    "fetch(url, {headers: {Authorization: `Bearer ${token}`}}); const h = `Bearer ${this.token}`;",
    "Authorization: Bearer ${TOKEN}\nAuthorization: Bearer {{token}}\nAuthorization: Bearer {{ access_token }}",
    'curl -H "Authorization: Bearer $TOKEN" -H "Authorization: Bearer $(gcloud auth print-access-token)"',
    "Authorization: Bearer <token>, Authorization: Basic <base64 of user and password>, authorization=<your key>",
    '{"Authorization": "Bearer {{access_token}}", "x-api-key": "{{apiKey}}", "password": "{db_password}"}',
    "'Authorization': 'Bearer %s' % token; password=%s; token=%(token)s; Authorization: {token}",
    "`Bearer ${token}` and Bearer {{token}} and Bearer <token> and Authorization: ${AUTH_HEADER}",
    # variables: an upper-case name, or one that names a secret
    'token=$token; "password": "$password"; api_key=$apiKey; PASSWORD=$DB_PASSWORD; pin="$Pin"',
    "Authorization: Bearer $accessToken; Authorization: $AUTH; secret: '$client_secret'; token: $_TOKEN",
    # quoted words after a secret name and a blank that are no value: words, sentences,
    # paths and globs, templates, masks
    'Set the password "policy" to strong; the API returns a token "object"; the auth "v2" flow',
    "raise ValueError(\"password 'must not be empty'\"); echo \"no password 'set'\"; the secret 'sauce'",
    'grep -rn token "./src"; rg password "src/app"; grep token "*.py"; mysql --password "$MYSQL_PASSWORD"',
    '--token "<your-token>" --password \'********\' --api-key "${API_KEY}" token "$(cat f)"',
]


class TestHandWritten:
    """Hand-written tricky cases, positive and negative."""

    @pytest.mark.parametrize(
        ("kind", "text", "secret"), POSITIVE, ids=[f"{k}-{i}" for i, (k, *_) in enumerate(POSITIVE)]
    )
    def test_positive(self, r: Redactor, kind: str, text: str, secret: str) -> None:
        """The secret part of the text is replaced by a placeholder of the expected kind."""
        out = r.redact_text(text)
        assert secret not in out
        assert kind.upper() in kinds(out)

    @pytest.mark.parametrize("text", NEGATIVE)
    def test_negative(self, r: Redactor, text: str) -> None:
        """Look-alikes pass through unchanged."""
        assert r.redact_text(text) == text

    def test_url_password_keeps_user_and_host(self, r: Redactor) -> None:
        """Only the password of a URL is replaced; scheme, user and host stay."""
        out = r.redact_text("postgres://admin:s3cr3t@db.example.com:5432/app")
        assert re.fullmatch(r"postgres://admin:<URL_PASSWORD:[0-9a-f]{6}>@db\.example\.com:5432/app", out)

    def test_bearer_keeps_scheme(self, r: Redactor) -> None:
        """``Bearer`` and the header name stay readable; only the credential goes."""
        out = r.redact_text("Authorization: Bearer abc123DEF456ghi789")
        assert out.startswith("Authorization: Bearer <AUTH_HEADER:")

    @pytest.mark.parametrize("token", ["x", "abc12", "abcdef123"])
    def test_a_short_credential_after_the_scheme_is_replaced(self, r: Redactor, token: str) -> None:
        """``Authorization: Bearer x``: the credential goes, however short, and the scheme stays."""
        out = r.redact_text(f"Authorization: Bearer {token}\r\nHost: h")
        assert re.fullmatch(r"Authorization: Bearer <AUTH_HEADER:[0-9a-f]{6}>\r\nHost: h", out), out
        assert r.redact_text(out) == out

    @pytest.mark.parametrize(
        ("text", "want"),
        [
            ("请发邮件至john@example.com请回复", "请发邮件至<EMAIL>请回复"),
            ("请发邮件至用户@例子.广告。谢谢", "<EMAIL>。谢谢"),  # (one script, no blank: the words before go too)
            ("mail:müller@bücher.de; ok", "mail:<EMAIL>; ok"),
            ("ivan@почта.рф, спасибо", "<EMAIL>, спасибо"),
            ("名前.太郎@例え.jp", "<EMAIL>"),
            ("jane@example.de请", "<EMAIL>请"),
        ],
    )
    def test_where_an_internationalized_address_begins_and_ends(self, r: Redactor, text: str, want: str) -> None:
        """A script written without blanks meets an address: the address ends at the change of script
        (a TLD is ASCII letters or other letters) and begins at one (ASCII and CJK characters)."""
        assert PLACEHOLDER.sub(lambda m: f"<{m.group(1)}>", r.redact_text(text)) == want

    def test_escaped_line_break_before_an_address(self, r: Redactor) -> None:
        """JSON-escaped text: the "n" of "\\n" is no part of the address after it, and "\\n@name" is no address."""
        out = r.redact_text("hi\\njane@example.com\\tbob@example.com\\n@lucas.lee please review")
        assert out == "hi\\n{}\\t{}\\n@lucas.lee please review".format(
            r.redact_text("jane@example.com"), r.redact_text("bob@example.com")
        )

    def test_surrounding_text_untouched(self, r: Redactor) -> None:
        """Text around a replaced value is preserved byte for byte."""
        out = r.redact_text("Hi Bob, mail bob@example.com, thanks!")
        assert re.fullmatch(r"Hi Bob, mail <EMAIL:[0-9a-f]{6}>, thanks!", out)

    def test_many_values_in_one_string(self, r: Redactor) -> None:
        """Several values of different kinds in one string are all replaced."""
        text = "a@b.io, 202-555-0143, 4111111111111111, 123-45-6789, 10.1.2.3, fe80::1:2, sk_live_abcdefghij12"
        out = r.redact_text(text)
        assert sorted(kinds(out)) == sorted(["EMAIL", "PHONE", "CARD", "SSN", "IPV4", "IPV6", "STRIPE_KEY"])

    def test_private_key_without_end_is_redacted_to_the_end(self, r: Redactor) -> None:
        """A PEM block cut by truncation is redacted up to the end of the string."""
        out = r.redact_text("cfg: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC")
        assert out.startswith("cfg: <PRIVATE_KEY:") and "MIIE" not in out

    def test_placeholders_are_not_rescanned(self, r: Redactor) -> None:
        """Redacting already-redacted text changes nothing."""
        once = r.redact_text("mail a@b.io, card 4111111111111111, ip ::ffff:10.0.0.1, key sk-ant-api03-" + "x1" * 20)
        assert r.redact_text(once) == once

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet="0123456789 -.:@+()/_%abcdefxyzABCDEFJKSIZeyskghpoxbrn\\", max_size=80))
    def test_trigger_heavy_text_is_stable(self, text: str) -> None:
        """Text dense in trigger characters never fails, and redacting twice changes nothing more."""
        red = Redactor(key=KEY)
        once = red.redact_text(text)
        assert red.redact_text(once) == once

    @settings(max_examples=500, deadline=None)
    @given(
        st.lists(
            st.sampled_from(
                [
                    *("password", "Authorization", "X-Api-Key", "Cookie", "pin", "query", ":", "=", " ", '"', "'"),
                    *(
                        "\\",
                        '\\"',
                        "Bearer ",
                        "Basic",
                        "abc",
                        "x y",
                        "<SECRET:3f9a2c>",
                        ";",
                        "&",
                        ",",
                        "\\n",
                        "null",
                        "\n",
                    ),
                ]
            ),
            max_size=12,
        ).map("".join)
    )
    def test_secret_key_text_is_stable(self, text: str) -> None:
        """Key-value text in every quoting never fails, and redacting twice changes nothing more."""
        red = Redactor(key=KEY)
        once = red.redact_text(text)
        assert red.redact_text(once) == once

    @pytest.mark.parametrize(
        "text",
        [
            "2024-06-1",  # a date's shape cut short (once an IndexError in the id check)
            "2024-06-01T1",
            "2024-06-01 12",
            "41111111111111１1",  # another script's digit in a card candidate (once a UnicodeEncodeError)
            "card 4111 1111 1111 ١١١١ end",
        ],
    )
    def test_odd_digit_strings_never_fail_the_walk(self, r: Redactor, text: str) -> None:
        """A failure inside the scan would replace the whole event with a placeholder."""
        out = r.redact({"value": text, "other": "kept"})
        assert isinstance(out, dict) and out["other"] == "kept"
        assert isinstance(out["value"], str) and not out["value"].startswith("<unredactable")

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet="0123456789-T:.+ ()１٣۴", max_size=40))
    def test_digit_heavy_text_in_any_script_never_fails(self, text: str) -> None:
        """Dates, times and numbers in any script: the scan never raises."""
        red = Redactor(key=KEY)
        out = red.redact({"v": text})
        assert isinstance(out, dict) and isinstance(out["v"], str)
        assert not out["v"].startswith("<unredactable")

    def test_luhn_and_iban_helpers(self) -> None:
        """The checksum helpers accept valid and reject altered numbers."""
        assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
        assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST12345698765433")
        assert not iban_ok("GB82WEST1234569876543")  # wrong length for GB


# ---------------------------------------------------------------------------
# Pseudonyms
# ---------------------------------------------------------------------------


class TestPseudonyms:
    """Keyed, stable pseudonyms."""

    def test_format(self, r: Redactor) -> None:
        """A replacement is ``<KIND:6 lower-case hex>``."""
        out = r.redact_text("x jane@example.com y")
        assert PLACEHOLDER.search(out) and re.search(r"<EMAIL:[0-9a-f]{6}>", out)

    def test_is_keyed_blake2s_of_the_value(self) -> None:
        """The hash is keyed BLAKE2s of the value's UTF-8, with a 3-byte digest."""
        out = Redactor(key=KEY).redact_text("mail jane@example.com")
        want = hashlib.blake2s(b"jane@example.com", key=KEY, digest_size=3).hexdigest()
        assert out == f"mail <EMAIL:{want}>"

    def test_secret_key_values_use_the_same_hash(self) -> None:
        """A secret-named key's value is hashed like a pattern match."""
        out = Redactor(key=KEY).redact({"password": "hunter2"})
        assert out == {"password": f"<SECRET:{hashlib.blake2s(b'hunter2', key=KEY, digest_size=3).hexdigest()}>"}

    @pytest.mark.parametrize("key", [bytes(range(100)), b""], ids=["long", "empty"])
    def test_key_outside_blake2s_range_is_hashed_first(self, key: bytes) -> None:
        """A key that BLAKE2s cannot take (over 32 bytes, or empty) is first hashed to 32 bytes."""
        out = Redactor(key=key).redact_text("a@b.io")
        k32 = hashlib.blake2s(key, digest_size=32).digest()
        assert out == f"<EMAIL:{hashlib.blake2s(b'a@b.io', key=k32, digest_size=3).hexdigest()}>"

    def test_stable_within_a_redactor(self, r: Redactor) -> None:
        """The same value gets the same pseudonym everywhere in one Redactor."""
        a = r.redact_text("from jane@example.com")
        b = r.redact({"to": ["jane@example.com"], "note": "cc jane@example.com"})
        h = PLACEHOLDER.search(a).group(2)  # type: ignore[union-attr]
        assert h in b["to"][0] and h in b["note"]  # type: ignore[index, call-overload]

    def test_distinct_values_distinct_pseudonyms(self, r: Redactor) -> None:
        """Different values get (almost always) different pseudonyms."""
        outs = {r.redact_text(f"user{i}@example.com") for i in range(200)}
        assert len(outs) >= 195

    def test_differs_across_redactors(self) -> None:
        """Two Redactors with their own random keys give different pseudonyms."""
        a, b = Redactor(), Redactor()
        values = [f"user{i}@example.com" for i in range(20)]
        assert [a.redact_text(v) for v in values] != [b.redact_text(v) for v in values]

    def test_key_is_not_kept(self) -> None:
        """The key appears in no attribute and the Redactor cannot be pickled or copied."""
        red = Redactor(key=KEY)
        for slot in type(red).__slots__:
            value = getattr(red, slot, None)
            assert value != KEY and KEY not in repr(value).encode()
        assert KEY.decode() not in repr(red)
        with pytest.raises(TypeError):
            pickle.dumps(red)
        with pytest.raises(TypeError):
            copy.deepcopy(red)


# ---------------------------------------------------------------------------
# Key-name rules and configuration
# ---------------------------------------------------------------------------


class TestKeyNames:
    """Values of secret-named keys are replaced wholesale; keys are never changed."""

    @pytest.mark.parametrize(
        "key",
        [
            "password",
            "Password",
            "db_password",
            "passwd",
            "userPwd",
            "client_secret",
            "token",
            "access_token",
            "authToken",
            "refresh-token",
            "api_key",
            "apiKey",
            "X-Api-Key",
            "APIKey",
            "apikey",
            "aws_access_key",
            "private_key",
            "Authorization",
            "cookie",
            "Set-Cookie",
            "credentials",
            "sessionId",
            "session_id",
            "auth",
            "x-auth",
            "basicAuth",
            "pin",
            "PIN",
            "card_pin",
            "cardPin",
            "otp",
            "user_otp",
            "totp",
            "passcode",
            "cvv",
            "card_cvc",
            "client_secret",
            "x-api-key",
            "signing_key",
            "encryptionKey",
        ],
    )
    def test_secret_keys(self, r: Redactor, key: str) -> None:
        """A secret-named key keeps its name and loses its value."""
        out = r.redact({key: "hunter2-value", "other": "kept"})
        assert isinstance(out, dict) and list(out) == [key, "other"]
        assert re.fullmatch(r"<SECRET:[0-9a-f]{6}>", out[key]) and out["other"] == "kept"

    @pytest.mark.parametrize(
        "key",
        [
            "max_tokens",
            "maxTokens",
            "token_count",
            "tokens",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "eos_token",
            "next_page_token",
            "pwd",
            "keyboard",
            "secretary_name",
            "author",
            "authors",
            "authority",
            "auth_method",
            "oauth_provider",
            "spinner",
            "spin",
            "pinned",
            "pin_count",
            "opinion",
            "options",
            "otp_sent",
            "shipping",
        ],
    )
    def test_harmless_keys(self, r: Redactor, key: str) -> None:
        """Counters and look-alike names are not treated as secrets."""
        assert r.redact({key: 512}) == {key: 512}
        assert r.redact({key: "plain words here"}) == {key: "plain words here"}

    def test_non_string_secret_values(self, r: Redactor) -> None:
        """Numbers and containers under a secret key are replaced; None and booleans are kept."""
        out = r.redact({"password": 123456, "token": {"a": 1}, "secret": None, "api_key": False, "cookie": ""})
        assert isinstance(out, dict)
        assert kinds(out["password"]) == ["SECRET"] and kinds(out["token"]) == ["SECRET"]
        assert out["secret"] is None and out["api_key"] is False and out["cookie"] == ""

    def test_allow_keys_by_name(self) -> None:
        """``allow_keys`` names (normalized) exempt a key, including its whole subtree."""
        red = Redactor(RedactConfig(allow_keys=("contact_email", "password")), key=KEY)
        out = red.redact({"contactEmail": "a@b.io", "password": "x", "nested": {"contact-email": ["c@d.io"]}})
        assert out == {"contactEmail": "a@b.io", "password": "x", "nested": {"contact-email": ["c@d.io"]}}

    def test_allow_keys_by_dotted_path(self) -> None:
        """A dotted path exempts exactly that place; list indices are optional in the path."""
        red = Redactor(RedactConfig(allow_keys=("tool.args.email", "messages.content")), key=KEY)
        event = {
            "tool": {"args": {"email": "a@b.io", "cc": "c@d.io"}},
            "email": "e@f.io",
            "messages": [{"content": "g@h.io"}],
        }
        out = red.redact(event)
        assert isinstance(out, dict)
        assert out["tool"]["args"]["email"] == "a@b.io" and out["messages"][0]["content"] == "g@h.io"
        assert kinds(out["tool"]["args"]["cc"]) == ["EMAIL"] and kinds(out["email"]) == ["EMAIL"]

    def test_redact_path_argument(self) -> None:
        """``path`` prefixes the paths seen by allow_keys and the callback."""
        red = Redactor(RedactConfig(allow_keys=("tool.email",)), key=KEY)
        assert red.redact({"email": "a@b.io"}, path="tool") == {"email": "a@b.io"}

    def test_extra_keys(self) -> None:
        """``extra_keys`` adds secret key-name endings."""
        red = Redactor(RedactConfig(extra_keys=("pin", "ssn_last4")), key=KEY)
        out = red.redact({"card_pin": "1234", "ssnLast4": "6789", "spin": "x", "pinned": "y"})
        assert isinstance(out, dict)
        assert kinds(out["card_pin"]) == ["SECRET"] and kinds(out["ssnLast4"]) == ["SECRET"]
        assert kinds(out["spin"]) == ["SECRET"]  # endings match like built-in ones ("spin" ends in "pin")
        assert out["pinned"] == "y"

    @pytest.mark.parametrize(
        "text",
        [
            "ssn_last4=1234",
            '{"ssn_last4": "1234"}',
            "SSN-Last4: 1234",
            "{'ssnLast4': '1234'}",
            '"{\\"user_ssn_last4\\": \\"1234\\"}"',
            "?user=bob&ssn_last4=1234&x=1",
        ],
    )
    def test_extra_keys_in_text(self, text: str) -> None:
        """A name in ``extra_keys`` loses its value in text too, however spelt, as the built-in names do."""
        red = Redactor(RedactConfig(extra_keys=("ssn_last4",)), key=KEY)
        for out in (red.redact_text("note " + text + " end"), red.redact({"note": text})["note"]):  # type: ignore[index]
            assert "1234" not in out and kinds(out) == ["SECRET"], out
        assert Redactor(key=KEY).redact_text(text) == text  # (not a built-in name)

    def test_extra_keys_in_text_short_names_and_near_misses(self) -> None:
        """A short extra name counts as the whole name or its ending; other keys and words stay."""
        red = Redactor(RedactConfig(extra_keys=("pw", "ssn_last4")), key=KEY)
        assert kinds(red.redact_text("pw=abc db_pw: 'x1' dbPw = y2")) == ["SECRET"] * 3
        assert kinds(red.redact_text("pw=x")) == ["SECRET"]  # (shorter than any built-in match)
        clean = "power=3 pwx: 1 ssn: 12 last4=1234 ssn_last=5, ssn_last4 is a field name, ssn_last4 == x"
        assert red.redact_text(clean) == clean

    @pytest.mark.parametrize("text", ["pin=1", "otp:4", "cvv=9", "CVC:0", "Pin=x"])
    def test_the_shortest_secret_in_text(self, r: Redactor, text: str) -> None:
        """A three-letter secret name and a one-character value (5 characters, the shortest match of any
        built-in rule) is replaced, in a string, a dict key and bytes."""
        assert kinds(r.redact_text(text)) == ["SECRET"]
        out = r.redact({text: text, "b": text.encode()})
        assert isinstance(out, dict)
        [key] = [k for k in out if k != "b"]
        assert kinds(key) == kinds(out[key]) == ["SECRET"]
        assert kinds(out["b"].decode()) == ["SECRET"]

    def test_allow_keys_do_not_relax_text(self) -> None:
        """``allow_keys`` keeps a dict value, but the same key in text is still a secret (the safe direction)."""
        red = Redactor(RedactConfig(allow_keys=("password",)), key=KEY)
        out = red.redact({"password": "hunter2", "note": "password=hunter2"})
        assert isinstance(out, dict) and out["password"] == "hunter2" and kinds(out["note"]) == ["SECRET"]

    def test_keys_are_scanned_too(self, r: Redactor) -> None:
        """A key that holds PII is replaced like a value (a dict keyed by e-mail address)."""
        out = r.redact({"jane@example.com": "jane@example.com"})
        assert isinstance(out, dict) and len(out) == 1
        [(key, value)] = out.items()
        assert kinds(key) == ["EMAIL"] and kinds(value) == ["EMAIL"]
        assert key == value  # the same pseudonym for the same value


class TestConfig:
    """Rule selection, extra patterns, callback and ``enabled=False``."""

    def test_rules_lists_running_rules(self) -> None:
        """``rules()`` lists every built-in rule by default, then extras."""
        red = Redactor(RedactConfig(extra_patterns=(("employee_id", r"EMP-\d{6}"),)))
        assert red.rules() == [*BUILTIN_RULES, "employee_id"]

    def test_rules_subset(self) -> None:
        """``rules`` restricts the built-in rules that run (the key-name rule is ``secret``)."""
        red = Redactor(RedactConfig(rules=frozenset({"email"})), key=KEY)
        assert red.rules() == ["email"]
        out = red.redact({"to": "a@b.io 202-555-0143", "password": "x"})
        assert isinstance(out, dict)
        assert kinds(out["to"]) == ["EMAIL"] and "202-555-0143" in out["to"] and out["password"] == "x"

    def test_disabled_rules(self) -> None:
        """``disabled_rules`` turns individual rules off."""
        red = Redactor(RedactConfig(disabled_rules=frozenset({"email", "secret"})), key=KEY)
        assert "email" not in red.rules() and "secret" not in red.rules()
        out = red.redact({"to": "a@b.io 202-555-0143", "password": "x"})
        assert isinstance(out, dict)
        assert out["to"].startswith("a@b.io <PHONE:") and out["password"] == "x"

    def test_unknown_rule_names_rejected(self) -> None:
        """Misspelled rule names fail loudly at construction."""
        with pytest.raises(ValueError, match="unknown"):
            Redactor(RedactConfig(rules=frozenset({"emial"})))
        with pytest.raises(ValueError, match="unknown"):
            Redactor(RedactConfig(disabled_rules=frozenset({"cards"})))

    def test_invalid_extra_pattern_rejected(self) -> None:
        """An extra pattern that does not compile, or shadows a built-in name, is rejected."""
        with pytest.raises(ValueError):
            Redactor(RedactConfig(extra_patterns=(("bad", "("),)))
        with pytest.raises(ValueError):
            Redactor(RedactConfig(extra_patterns=(("email", "x"),)))

    def test_extra_patterns(self) -> None:
        """Extra patterns replace their matches with ``<RULE_NAME:hash>`` and count in stats."""
        red = Redactor(RedactConfig(extra_patterns=(("employee_id", r"EMP-\d{6}"),)), key=KEY)
        out = red.redact_text("ask EMP-123456 or EMP-654321 (a@b.io)")
        assert kinds(out) == ["EMPLOYEE_ID", "EMPLOYEE_ID", "EMAIL"]
        assert red.stats()["employee_id"] == 2

    def test_extra_patterns_apply_to_short_strings(self) -> None:
        """With extra patterns, strings shorter than the built-in minimum are still scanned."""
        red = Redactor(RedactConfig(extra_patterns=(("pin", r"\b\d{4}\b"),)), key=KEY)
        assert kinds(str(red.redact("1234"))) == ["PIN"]
        assert kinds(red.redact_text("step EMPLOYEE")) == []
        assert kinds(
            Redactor(RedactConfig(extra_patterns=(("name", r"EMPLOYEE"),)), key=KEY).redact_text("step EMPLOYEE")
        ) == ["NAME"]  # (a short text no built-in rule can match: still scanned for the extra ones)

    def test_disabled_extra_pattern(self) -> None:
        """An extra pattern named in ``disabled_rules`` does not run."""
        red = Redactor(
            RedactConfig(extra_patterns=(("employee_id", r"EMP-\d{6}"),), disabled_rules=frozenset({"employee_id"}))
        )
        assert red.redact_text("EMP-123456") == "EMP-123456"

    def test_callback(self) -> None:
        """The callback sees (path, value) for every string and overrides when it returns a string."""
        seen: list[tuple[str, str]] = []

        def cb(path: str, value: str) -> str | None:
            seen.append((path, value))
            return "[note]" if path.endswith("note") else None

        red = Redactor(RedactConfig(callback=cb), key=KEY)
        out = red.redact({"note": "a@b.io", "items": ["c@d.io", "ok"], "n": 1})
        assert isinstance(out, dict)
        assert out["note"] == "[note]" and kinds(out["items"][0]) == ["EMAIL"] and out["items"][1] == "ok"
        assert seen == [("note", "a@b.io"), ("items[0]", "c@d.io"), ("items[1]", "ok")]

    def test_failing_callback_keeps_default(self) -> None:
        """A callback that raises falls back to the default handling."""

        def cb(path: str, value: str) -> str | None:
            raise RuntimeError("boom")

        red = Redactor(RedactConfig(callback=cb), key=KEY)
        assert kinds(str(red.redact("mail a@b.io"))) == ["EMAIL"]

    def test_enabled_false_only_sanitizes(self) -> None:
        """With ``enabled=False`` nothing is redacted, but values are still converted and truncated."""
        calls: list[str] = []

        def cb(path: str, value: str) -> str | None:
            calls.append(value)
            return "X"

        red = Redactor(RedactConfig(enabled=False, max_str=10, callback=cb))
        out = red.redact({"password": "hunter2", "to": "a@b.io", "t": (1, 2), "long": "x" * 50})
        assert out == {"password": "hunter2", "to": "a@b.io", "t": [1, 2], "long": "x" * 10 + "…<truncated 40 chars>"}
        assert red.redact_text("a@b.io") == "a@b.io"
        assert red.rules() == [] and red.stats() == {} and calls == []


class TestStats:
    """Per-rule replacement counts."""

    def test_counts_per_rule(self, r: Redactor) -> None:
        """Each replaced value counts once for its rule, including repeats served from the cache."""
        event = {"a": "x@y.io and z@y.io", "b": "202-555-0143", "password": "p", "c": "clean text here"}
        r.redact(event)
        r.redact(event)
        stats = r.stats()
        assert stats["email"] == 4 and stats["phone"] == 2 and stats["secret"] == 2
        assert stats["card"] == 0 and set(stats) == set(BUILTIN_RULES)

    def test_stats_is_a_copy(self, r: Redactor) -> None:
        """Mutating the returned dict does not change the counters."""
        r.stats()["email"] = 99
        assert r.stats()["email"] == 0


# ---------------------------------------------------------------------------
# The walk
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class User:
    """A dataclass with a secret field."""

    name: str
    email: str
    password: str
    tags: tuple[str, ...] = ()


class FakeModel:
    """Duck-typed pydantic model: anything with ``model_dump()``."""

    def __init__(self, **fields: Any) -> None:
        self._fields = fields

    def model_dump(self) -> dict[str, Any]:
        """Return the fields as a dict."""
        return dict(self._fields)


class BadRepr:
    """An object whose repr raises."""

    def __repr__(self) -> str:
        raise ValueError("no repr for you")


class BadModel:
    """A model whose ``model_dump`` raises."""

    def model_dump(self) -> dict[str, Any]:
        """Fail."""
        raise RuntimeError("dump failed")

    def __repr__(self) -> str:
        return "BadModel(owner=a@b.io)"


def msgpackable(value: object) -> bool:
    """Whether msgpack can encode the value with strict types."""
    try:
        msgpack.packb(value, strict_types=True)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


class TestWalk:
    """Conversion of arbitrary values to msgpack-able builtins."""

    def test_scalars(self, r: Redactor) -> None:
        """Scalars pass through; NaN and infinities are kept as floats."""
        out = r.redact([1, -2, 2.5, True, None, math.inf, -math.inf, 2**64 - 1, -(2**63)])
        assert out[:9] == [1, -2, 2.5, True, None, math.inf, -math.inf, 2**64 - 1, -(2**63)]  # type: ignore[index]
        nan = r.redact(math.nan)
        assert isinstance(nan, float) and math.isnan(nan)

    def test_huge_ints_become_strings(self) -> None:
        """Ints outside msgpack's 64-bit range become (truncated) strings, even beyond str()'s digit limit."""
        red = Redactor(RedactConfig(max_str=50))
        assert red.redact(2**64) == str(2**64) and red.redact(-(2**63) - 1) == str(-(2**63) - 1)
        huge = red.redact(10**5000)
        assert isinstance(huge, str) and huge.startswith(("1", "0x")) and "truncated" in huge

    def test_builtin_subclasses(self, r: Redactor) -> None:
        """Subclasses of str/int/float/dict become the exact builtin types."""
        import enum

        class Color(enum.IntEnum):
            RED = 1

        class S(str):
            pass

        class D(dict):  # type: ignore[type-arg]
            pass

        out = r.redact(D(a=S("a@b.io"), b=Color.RED, c=deque([1.5])))
        assert type(out) is dict and type(out["b"]) is int and out["c"] == [1.5]  # type: ignore[index]
        assert kinds(out["a"]) == ["EMAIL"] and type(out["a"]) is str  # type: ignore[index]

    def test_containers(self, r: Redactor) -> None:
        """Tuples, sets and frozensets become lists; non-str keys become their repr."""
        out = r.redact({1: (1, 2), (2, 3): {4}, None: frozenset({"a@b.io"}), 2.5: []})
        assert isinstance(out, dict) and list(out) == ["1", "(2, 3)", "None", "2.5"]
        assert out["1"] == [1, 2] and out["(2, 3)"] == [4] and out["2.5"] == []
        assert len(out["None"]) == 1 and kinds(out["None"][0]) == ["EMAIL"]

    def test_dataclass(self, r: Redactor) -> None:
        """A dataclass becomes a dict of its fields, with key-name rules applied."""
        out = r.redact(User("Ann", "ann@example.com", "pw", ("x",)))
        assert isinstance(out, dict) and list(out) == ["name", "email", "password", "tags"]
        assert out["name"] == "Ann" and kinds(out["email"]) == ["EMAIL"] and kinds(out["password"]) == ["SECRET"]
        assert out["tags"] == ["x"]

    def test_model_dump(self, r: Redactor) -> None:
        """Objects with ``model_dump()`` (pydantic) are walked through their dump."""
        out = r.redact({"m": FakeModel(user="u", api_key="k", note="a@b.io")})
        assert isinstance(out, dict)
        assert out["m"]["user"] == "u" and kinds(out["m"]["api_key"]) == ["SECRET"]
        assert kinds(out["m"]["note"]) == ["EMAIL"]

    def test_failing_model_dump_falls_back_to_repr(self, r: Redactor) -> None:
        """A failing ``model_dump()`` stores the (scanned) repr instead."""
        out = r.redact(BadModel())
        assert isinstance(out, str) and out.startswith("BadModel(owner=<EMAIL:")

    def test_other_objects_become_scanned_repr(self, r: Redactor) -> None:
        """Unknown objects are stored as their repr, scanned for PII."""

        class Thing:
            def __repr__(self) -> str:
                return "Thing(owner='ann@example.com')"

        out = r.redact(Thing())
        assert isinstance(out, str) and kinds(out) == ["EMAIL"] and out.startswith("Thing(owner='")

    def test_values_with_a_text_form_are_stored_as_it(self, r: Redactor) -> None:
        """Datetimes, dates and times as ISO 8601, UUIDs, Decimals and paths as their text
        (not their repr, and not counted as degraded)."""
        when = datetime.datetime(2026, 11, 27, 12, 30, tzinfo=datetime.timezone.utc)
        before = r.degraded()
        out = r.redact(
            {
                "aware": when,
                "naive": when.replace(tzinfo=None),
                "day": when.date(),
                "time": when.time(),
                "id": uuid.UUID(int=5),
                "price": decimal.Decimal("1.50"),
                "file": PurePosixPath("/srv/a.txt"),
            }
        )
        assert out == {
            "aware": "2026-11-27T12:30:00+00:00",
            "naive": "2026-11-27T12:30:00",
            "day": "2026-11-27",
            "time": "12:30:00",
            "id": "00000000-0000-0000-0000-000000000005",
            "price": "1.50",
            "file": "/srv/a.txt",
        }
        assert r.degraded() == before

    def test_failing_repr(self, r: Redactor) -> None:
        """An object whose repr raises becomes a marker naming its type."""
        assert r.redact({"x": BadRepr(), BadRepr(): 1}) == {
            "x": "<unrepresentable BadRepr>",
            "<unrepresentable BadRepr>": 1,
        }

    def test_cycles(self, r: Redactor) -> None:
        """Self-references become ``<cycle>`` markers; shared (acyclic) objects are kept."""
        a: list[Any] = [1]
        a.append(a)
        d: dict[str, Any] = {"k": 1}
        d["self"] = d
        shared = [7]
        out = r.redact({"a": a, "d": d, "s1": shared, "s2": shared})
        assert out == {"a": [1, CYCLE], "d": {"k": 1, "self": CYCLE}, "s1": [7], "s2": [7]}

    def test_deep_nesting_no_recursion_error(self, r: Redactor) -> None:
        """A 10,000-level nested list is cut at ``max_depth`` without a RecursionError."""
        deep: list[Any] = []
        cur = deep
        for _ in range(10_000):
            nxt: list[Any] = []
            cur.append(nxt)
            cur = nxt
        out = r.redact(deep)
        depth = 0
        while isinstance(out, list):
            out = out[0]
            depth += 1
        assert out == MAX_DEPTH and depth == 65

    def test_huge_max_depth_is_capped(self) -> None:
        """A huge configured max_depth still cannot exhaust the interpreter stack."""
        red = Redactor(RedactConfig(max_depth=1_000_000))
        deep: list[Any] = []
        for _ in range(5000):
            deep = [deep]
        assert msgpackable(red.redact(deep))

    def test_runs_when_called_near_the_recursion_limit(self, r: Redactor) -> None:
        """Called from deep inside the stack, a deep value degrades to markers (or completes) instead of failing."""
        deep: dict[str, Any] = {"a@b.io": 1}
        for _ in range(60):
            deep = {"k": deep}
        limit = sys.getrecursionlimit()
        result: list[object] = []

        def recurse(n: int) -> object:
            return recurse(n - 1) if n else r.redact(deep)

        # A fresh thread starts with an (almost) empty stack, so the depth is known.
        t = threading.Thread(target=lambda: result.append(recurse(limit - 30)))
        t.start()
        t.join()
        assert len(result) == 1 and isinstance(result[0], dict) and msgpackable(result[0])
        # Python frames degrade to markers at the limit. The C walk counts against the C
        # recursion limit, which Python 3.12+ keeps apart: there it may finish the value.
        assert MAX_DEPTH in repr(result[0]) or result[0] == r.redact(deep)

    def test_max_items(self) -> None:
        """Lists, sets and dicts keep ``max_items`` items and a marker."""
        red = Redactor(RedactConfig(max_items=3))
        assert red.redact(list(range(10))) == [0, 1, 2, "…<truncated 7 items>"]
        assert len(red.redact(set(range(10)))) == 4  # type: ignore[arg-type]
        out = red.redact({str(i): i for i in range(5)})
        assert out == {"0": 0, "1": 1, "2": 2, "…": "<truncated 2 items>"}

    def test_bytes(self, r: Redactor) -> None:
        """UTF-8 bytes are scanned and stay bytes; binary bytes are kept; both are truncated."""
        red = Redactor(RedactConfig(max_bytes=16), key=KEY)
        text = r.redact(b"mail a@b.io now")
        assert isinstance(text, bytes) and kinds(text.decode()) == ["EMAIL"]
        binary = bytes(range(256))
        out = red.redact(binary)
        assert out == binary[:16] + "…<truncated 240 bytes>".encode()
        assert kinds(r.redact(bytearray(b"\xff\xfe a@b.io")).decode("latin-1")) == ["EMAIL"]  # type: ignore[union-attr]

    @pytest.mark.parametrize(
        "head",
        [b"\xff\xfe", b"caf\xe9 ", b"\x80", "日本".encode()[:-1], b"\x00\x01\x02\xc3"],
        ids=["bom", "latin-1", "continuation", "split-char", "binary"],
    )
    def test_bytes_that_are_not_utf8_are_scanned_and_kept_byte_for_byte(self, r: Redactor, head: bytes) -> None:
        """Invalid UTF-8 around a secret: the secret is replaced, every other byte is stored as it was."""
        secret = b"sk-proj-Zx81hQm2RkT7vB4nL0pW9sYcD3eF6gH1jK5"
        out = r.redact(head + b" key " + secret + b" \xff end \xc3")
        assert isinstance(out, bytes) and secret not in out
        assert re.fullmatch(re.escape(head) + rb" key <OPENAI_KEY:[0-9a-f]{6}> \xff end \xc3", out), out
        clean = head + b" nothing to see \xfe\xff"
        assert r.redact(clean) == clean

    def test_bytes_cut_inside_a_character(self) -> None:
        """Truncation that splits a multi-byte character still scans the text before it."""
        red = Redactor(RedactConfig(max_bytes=12), key=KEY)
        out = red.redact("a@b.io xé".encode() + b"z" * 10)
        assert isinstance(out, bytes) and out.startswith(b"<EMAIL:")

    def test_memoryview(self, r: Redactor) -> None:
        """Memoryviews (also multi-dimensional and non-contiguous) become bytes."""
        assert r.redact(memoryview(b"abc")) == b"abc"
        mv = memoryview(bytearray(range(12))).cast("B", (3, 4))
        assert r.redact(mv) == bytes(range(12))
        assert r.redact(memoryview(b"abcdef")[::2]) == b"ace"
        released = memoryview(b"x")
        released.release()
        assert r.redact(released) == "<unrepresentable memoryview>"

    def test_truncated_string_marker_not_scanned(self) -> None:
        """Strings are cut at ``max_str`` with a marker, and only the kept part is scanned."""
        red = Redactor(RedactConfig(max_str=20), key=KEY)
        out = red.redact("mail a@b.io " + "x" * 30 + " c@d.io")
        assert isinstance(out, str) and kinds(out) == ["EMAIL"] and out.endswith("…<truncated 29 chars>")

    def test_ten_megabyte_string_costs_like_its_stored_part(self) -> None:
        """A 10 MB string is truncated before scanning: only max_str characters reach the scanner."""
        seen: list[int] = []

        def cb(path: str, value: str) -> str | None:
            seen.append(len(value))
            return None

        red = Redactor(RedactConfig(callback=cb))
        big = "a@b.io 202-555-0143 " * 500_000
        small = big[:4096]
        out = red.redact(big)
        # Placeholders are longer than the values they replace, so the stored
        # text may outgrow max_str; the scanned input never does.
        assert seen == [4096] and isinstance(out, str) and len(out) < 3 * 4096
        assert out.endswith(f"…<truncated {len(big) - 4096} chars>")

        def cost(value: str) -> float:
            fresh = Redactor()
            t0 = time.perf_counter()
            fresh.redact(value)
            return time.perf_counter() - t0

        ratio = min(cost(big) for _ in range(3)) / min(cost(small) for _ in range(3))
        assert ratio < 20  # scanning all 10 MB would be ~2500x

    def test_output_is_msgpackable(self, r: Redactor) -> None:
        """The walk's output of a messy value packs with msgpack's strict types."""
        messy = {
            1: {b"k": [User("a", "b@c.io", "p"), {1, 2}, (3, None)]},
            "obj": object(),
            "fn": len,
            "cls": User,
            "gen": (i for i in range(3)),
            "cplx": 1j,
            "big": 2**100,
        }
        assert msgpackable(r.redact(messy))

    @settings(max_examples=150, deadline=None)
    @given(
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats(allow_nan=True)
            | st.text(max_size=60)
            | st.binary(max_size=40),
            lambda children: (
                st.lists(children, max_size=5)
                | st.dictionaries(st.text(max_size=10) | st.integers(), children, max_size=5)
                | st.tuples(children, children)
            ),
            max_leaves=30,
        )
    )
    def test_never_raises_and_packs(self, value: object) -> None:
        """Any nesting of builtins redacts without error into msgpack-able data."""
        assert msgpackable(Redactor(key=KEY).redact(value))


# ---------------------------------------------------------------------------
# Concurrency and caching
# ---------------------------------------------------------------------------


class Mutator:
    """A value whose repr changes the container it sits in (mutation during the walk)."""

    def __init__(self, target: dict[Any, Any] | set[Any]) -> None:
        self.target = target
        self.n = 0

    def __repr__(self) -> str:
        self.n += 1
        if isinstance(self.target, dict):
            self.target[f"new{self.n}"] = self.n
        else:
            self.target.add(f"new{self.n}")
        return "Mutator()"


class TestConcurrency:
    """Thread safety and mutation during the walk."""

    def test_dict_changed_during_walk(self, r: Redactor) -> None:
        """A dict that grows while it is walked is retried on a snapshot, without an exception."""
        d: dict[Any, Any] = {"a": 1}
        d["m"] = Mutator(d)
        d["z"] = "a@b.io"
        out = r.redact(d)
        assert isinstance(out, dict) and out["a"] == 1 and out["m"] == "Mutator()" and kinds(out["z"]) == ["EMAIL"]

    def test_set_changed_during_walk(self, r: Redactor) -> None:
        """A set that grows while it is walked does not raise either."""
        s: set[Any] = {"a", "b"}
        s.add(Mutator(s))  # type: ignore[arg-type]
        out = r.redact(s)
        assert isinstance(out, list) and "Mutator()" in out

    def test_dict_mutated_by_another_thread(self) -> None:
        """Redacting a dict another thread keeps resizing never raises."""
        red = Redactor()
        shared: dict[str, Any] = {f"k{i}": f"user{i}@example.com" for i in range(300)}
        stop = threading.Event()

        def churn() -> None:
            i = 0
            while not stop.is_set():
                shared[f"t{i % 500}"] = [i, "x" * (i % 7)]
                shared.pop(f"t{(i + 250) % 500}", None)
                i += 1

        t = threading.Thread(target=churn)
        t.start()
        try:
            results = [red.redact(shared) for _ in range(300)]
        finally:
            stop.set()
            t.join()
        assert all(isinstance(x, dict) and msgpackable(x) for x in results)

    def test_many_threads_same_results(self) -> None:
        """Concurrent redaction from many threads gives the same output as a single thread."""
        events = [
            {"i": i, "to": f"user{i % 50}@example.com", "msg": f"call 202-555-{i % 10000:04d}", "pw": {"password": i}}
            for i in range(400)
        ]
        want = [Redactor(key=KEY).redact(e) for e in events]
        red = Redactor(RedactConfig(cache_size=64), key=KEY)
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(red.redact, events * 5))
        assert got == want * 5
        # Counts are exact under threads (the dump header reports them).
        assert red.stats()["email"] == 2000 and red.stats()["secret"] == 2000

    def test_cache_is_bounded(self) -> None:
        """The string cache never holds more than ``cache_size`` entries."""
        red = Redactor(RedactConfig(cache_size=100))
        for i in range(5000):
            red.redact_text(f"distinct string number {i} for ops@example.com")  # (a clean short one skips the cache)
        held = len(red._cache) + len(red._old)  # white-box: the two cache generations
        assert 0 < held <= 100

    def test_cache_hit_is_identical(self, r: Redactor) -> None:
        """A repeated string gives the same result as the first time."""
        text = "long repeated system prompt, contact ops@example.com for help " * 5
        assert r.redact(text) == r.redact(text) == r.redact(str(text))


@pytest.mark.parametrize(
    ("entry", "want"),
    [
        ({"rules": ["email", "card"], "replaced": {"email": 3, "card": 0}}, "email 3 replaced"),
        ({"rules": ["email"], "replaced": {"email": 0}}, "nothing replaced"),
        ({"off": True}, "off"),
        ({"replaced": {"email": "junk", "phone": True, "ssn": 2}}, "ssn 2 replaced"),
        ({}, None),
        ("damaged", None),
        (None, None),
    ],
)
def test_describe_header(entry: object, want: str | None) -> None:
    """A dump header's redaction entry in one line, robust to old or damaged headers."""
    assert describe_header(entry) == want
