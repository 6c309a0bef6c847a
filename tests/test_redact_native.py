"""The optional C twins in flightrec/_redact_native.c against their Python originals.

The keyed hash must equal ``hashlib.blake2s``; the validators and the match loop must give
what the Python code gives, candidate by candidate and string by string; and a whole
labelled corpus must come out byte-identical from an interpreter with the extension and
one without it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightrec import redact
from flightrec.redact import RedactConfig, Redactor, checks, patterns, pseudonym, redactor

native: Any = patterns._native
needs_c = pytest.mark.skipif(native is None, reason="the C extension is not built here")
KEY = b"native-test-key-0123456789abcdef"
ROOT = Path(__file__).resolve().parent.parent

# Native check -> its Python original, to run the Python loop on Python validators.
PYTHON_CHECK = {v: k for k, v in patterns._NATIVE_CHECKS.items()}


def python_handlers(handlers: list[Any]) -> list[Any]:
    return [h if h is None else (*h[:4], PYTHON_CHECK.get(h[4], h[4])) for h in handlers]


# Pieces of agent text: PII of every kind, near misses, and the punctuation between them.
FRAGMENTS = [
    "jane.doe@example.com",
    "josé@exämple.de",
    "用户@例子.广告",
    "请至",
    "cafe\u0301",
    "ä@b",
    "..a.b@ex.io",
    "a@b",
    "@@",
    "+44 20 7946 0958",
    "(202) 555-0143",
    "202-555-0143",
    "4111 1111 1111 1111",
    "4111-1111-1111-1112",
    "3469-506992-05752",
    "4111111111111111",
    "4111 1111 1111 1111 123",
    "١٢٣٤",
    "123-45-6789",
    "10.0.0.1",
    "256.1.1.1",
    "2001:db8::1",
    "37d0:e288:9182:737b:4546:399b:c979:1ef4",
    "::ffff:192.168.1.1",
    "a[1::2]",
    "std::vector",
    "fe80::",
    "12:34:56",
    "DE89 3704 0044 0532 0130 00",
    "sk-proj-abc123DEF456ghi789JKL012",
    "ghp_" + "a1" * 18,
    "Bearer abc.def-123456",
    "Authorization: Basic dXNlcjpwYXNz",
    "https://user:pw@host.io/x",
    "2024-06-01 202-555-0143",
    "v1.2.3.4",
    "＋４９ ３０ １２３４５６７８",
    "４１１１ １１１１ １１１１ １１１１",
    "４１１１\u3000１１１１\u3000１１１１\u3000１１１２",
    "(415)\u00a0555\u00a02671",
    "4111\u202f1111\u202f1111\u202f1111",
    "４５，０００円",
    "２０２６年１１月２７日",
    "ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ",
    "\\n",
    " ",
    "-",
    ".",
    ":",
    "0",
    "9",
    "x",
]
agent_text = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join),
    st.lists(st.sampled_from(FRAGMENTS), max_size=8).map(" ".join),
    st.text(alphabet="0123456789abcdefABCDEF:. -+()@\\n١éü用户例\u0301０４＋－（）\u00a0\u3000", max_size=80),
)


@needs_c
class TestKeyed:
    """Keyed BLAKE2s in C equals hashlib's, and so does the pure-Python twin."""

    @settings(max_examples=300, deadline=None)
    @given(key=st.binary(min_size=1, max_size=32), value=st.text(max_size=300), size=st.integers(1, 32))
    def test_equals_hashlib(self, key: bytes, value: str, size: int) -> None:
        data = value.encode("utf-8", "surrogatepass")
        assert native.Keyed(key, size)(value) == hashlib.blake2s(data, key=key, digest_size=size).hexdigest()

    @pytest.mark.parametrize("n", [0, 1, 55, 56, 63, 64, 65, 127, 128, 129, 1000])
    def test_block_boundaries(self, n: int) -> None:
        """Values that end exactly on, just before and just after a 64-byte block."""
        value = ("0123456789abcdef" * 64)[:n]
        want = hashlib.blake2s(value.encode(), key=KEY, digest_size=3).hexdigest()
        assert native.Keyed(KEY, 3)(value) == want == pseudonym._python_keyed(KEY)(value)

    def test_non_ascii_and_lone_surrogates(self) -> None:
        """UTF-8 of the str, with lone surrogates passed through as Python's surrogatepass does."""
        for value in ["jäne@exämple.com", "电话 +86 10 1234 5678", "\ud800x", "a\udfffb"]:
            data = value.encode("utf-8", "surrogatepass")
            want = hashlib.blake2s(data, key=KEY, digest_size=3).hexdigest()
            assert native.Keyed(KEY, 3)(value) == want == pseudonym._python_keyed(KEY)(value)

    def test_refuses_to_be_copied_or_pickled(self) -> None:
        keyed = native.Keyed(KEY, 3)
        for attempt in (pickle.dumps, copy.copy, copy.deepcopy):
            with pytest.raises(TypeError, match="key material"):
                attempt(keyed)

    @pytest.mark.parametrize(
        ("args", "error"),
        [((b"", 3), ValueError), ((b"k" * 33, 3), ValueError), ((KEY, 0), ValueError), ((KEY, 33), ValueError)],
    )
    def test_bad_parameters(self, args: tuple[bytes, int], error: type[Exception]) -> None:
        with pytest.raises(error):
            native.Keyed(*args)

    def test_takes_only_a_str(self) -> None:
        with pytest.raises(TypeError):
            native.Keyed(KEY, 3)(b"bytes")


@needs_c
class TestValidators:
    """chk_card and chk_ipv6 in C give what _chk_card and _chk_ipv6 give."""

    @settings(max_examples=400, deadline=None)
    @given(
        before=st.text(alphabet="abcg_ \\n:.0123456789", max_size=6),
        middle=st.text(alphabet="0123456789abcdefABCDEF:.", min_size=1, max_size=50),
        after=st.text(alphabet="gz_ .:0123456789", max_size=6),
        data=st.data(),
    )
    def test_ipv6_on_any_span(self, before: str, middle: str, after: str, data: st.DataObject) -> None:
        """Any span of address characters, after and before anything."""
        text = before + middle + after
        a = len(before) + data.draw(st.integers(0, len(middle) - 1))
        b = data.draw(st.integers(a, len(before) + len(middle)))
        assert native.chk_ipv6(text, a, b) == checks._chk_ipv6(text, a, b)

    @settings(max_examples=400, deadline=None)
    @given(
        digits=st.text(alphabet="0123456789 -١٣", min_size=1, max_size=40).filter(lambda s: s[0] not in " -"),
        before=st.text(alphabet="ab ", max_size=3),
    )
    def test_card_on_any_candidate(self, digits: str, before: str) -> None:
        """Digits (of any script) and separators, as the card pattern captures them."""
        text = before + digits + " tail"
        a, b = len(before), len(before) + len(digits)
        assert native.chk_card(text, a, b) == checks._chk_card(text, a, b)

    @pytest.mark.parametrize(
        ("text", "want"),
        [
            ("4111 1111 1111 1111", (0, 19)),
            ("4111 1111 1111 1111 123", (0, 19)),
            ("4111-1111-1111-1112", None),
            ("4111-1111 1111-1111", None),
            ("١١١١١١١١١١١١١١١٤", None),
        ],
    )
    def test_card_examples(self, text: str, want: tuple[int, int] | None) -> None:
        assert native.chk_card(text, 0, len(text)) == checks._chk_card(text, 0, len(text)) == want

    @pytest.mark.parametrize("check", ["chk_card", "chk_ipv6"])
    def test_bad_arguments_raise(self, check: str) -> None:
        fn = getattr(native, check)
        with pytest.raises(TypeError):
            fn(b"bytes", 0, 1)
        with pytest.raises(ValueError):
            fn("short", 0, 99)
        with pytest.raises(TypeError):
            fn("short", 0)


@needs_c
class TestMatchLoop:
    """The C match loop with C validators and hash equals the Python loop with Python ones."""

    @settings(max_examples=500, deadline=None)
    @given(text=agent_text)
    def test_same_output_and_hits(self, text: str) -> None:
        self.check_same(text)

    @pytest.mark.parametrize(
        "text",
        [
            "..jane@example.com",  # the local part's leading dots are not part of it
            " .a.b@ex.io and ..c@d.io",
            "x" * 80 + "@example.com",  # a local part longer than the 64-character window
            "jane@example.com@example.com",
            "4111 1111 1111 1111 123, 2001:db8::1, fe80::, a[1::2]",
            "+44 20 7946 0958 2024 and (202) 555-0143",
            "https://user:pw@host.io/ Bearer abc.def-123456",
            "请发邮件至john@example.com请回复, 请至用户@例子.广告。, josé.garcía@correo.es",
            "x" * 60 + "用户" * 5 + "@例子.广告 and cafe\u0301@example.com and 名前.太郎@例え.jp",
        ],
    )
    def test_examples(self, text: str) -> None:
        self.check_same(text)

    @staticmethod
    def check_same(text: str) -> None:
        r = Redactor(key=KEY)
        first = r._scanner.search(text)  # type: ignore[union-attr]
        if first is None:
            return
        search = r._scanner.search  # type: ignore[union-attr]
        py_hits: list[str] = []
        c_hits: list[str] = []
        py = patterns._python_match_loop(
            text, first, search, python_handlers(r._handlers), pseudonym._python_keyed(KEY), py_hits
        )
        c = native.scan(text, first, search, r._handlers, native.Keyed(KEY, 3), c_hits)
        assert (c, c_hits) == (py, py_hits)

    def test_python_pseudonym_callable(self) -> None:
        """A pseudonym function that is not a Keyed is called like any callable."""
        r = Redactor(key=KEY)
        text = "mail jane@example.com, call 202-555-0143"
        first = r._scanner.search(text)  # type: ignore[union-attr]
        hits: list[str] = []
        out = native.scan(text, first, r._scanner.search, r._handlers, lambda v: str(len(v)), hits)  # type: ignore[union-attr]
        assert out == "mail <EMAIL:16>, call <PHONE:12>"
        assert hits == ["email", "phone"]

    def test_errors_propagate_without_damage(self) -> None:
        """A failing validator or pseudonym raises out of scan (Redactor.redact contains it)."""
        r = Redactor(key=KEY)
        text = "mail jane@example.com"
        first = r._scanner.search(text)  # type: ignore[union-attr]

        def boom(value: str) -> str:
            raise RuntimeError("pseudonym failed")

        with pytest.raises(RuntimeError, match="pseudonym failed"):
            native.scan(text, first, r._scanner.search, r._handlers, boom, [])  # type: ignore[union-attr]
        with pytest.raises(TypeError):
            native.scan(text, first, r._scanner.search, "not a list", boom, [])  # type: ignore[union-attr]
        with pytest.raises(IndexError):
            native.scan(text, first, r._scanner.search, [None], boom, [])  # type: ignore[union-attr]


# Digit-heavy agent text with and without PII: times, prices, flight numbers, versions,
# near-IBANs, and the separators numbers come with.
DIGIT_PIECES = [
    "06\u00a012\u00a034\u00a056\u00a078",
    "020\u202f7946\u202f0958",
    "0049\u00a030\u00a01234567",
    "1\u00a0234\u00a0567,89\u00a0€",
    "\u00a0",
    "SK301 09:10",
    "TP355 13:45, ",
    "day 3: ",
    "$1,299.00",
    "v2.10.3",
    "1.2.3",
    "GB82 WEST 1234 5698 7654 32",
    "GB82WEST12345698765432",
    "NO9386011117947",
    "AB12 CD",
    "AB12 3",
    "192.168.0.1",
    "1.2.3.4.5",
    "٣.٤.٥.٦",
    "123 456 789",
    "(0) 20 7946 0958",
    "1-202-555-0143",
    "0612345678",
    "12-34-5678",
    "5555 5555 5555 4444",
    "٠١٢٣٤٥٦٧٨٩",
]
digit_text = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS + DIGIT_PIECES), max_size=10).map("".join),
    st.lists(st.sampled_from(DIGIT_PIECES), max_size=6).map(" ".join),
    st.text(alphabet="0123456789 .-()ABDEGKSWZ:x١\u00a0\u202f\u3000０１４９＋－（）．", max_size=60),
)


def assert_scan_equals_full_loop(text: str, config: RedactConfig | None = None) -> None:
    """Redactor._scan (with its prefilters) gives what the Python loop gives with the full
    pattern, on the text's folded form (full-width forms and no-break spaces as ASCII)."""
    r = Redactor(config, key=KEY)
    want_hits: list[str] = []
    folded = patterns._folded(text)
    first = r._scanner.search(folded or text)  # type: ignore[union-attr]
    want = None
    if first is not None:
        want = patterns._python_match_loop(
            folded or text,
            first,
            r._scanner.search,  # type: ignore[union-attr]
            python_handlers(r._handlers),
            pseudonym._python_keyed(KEY),
            want_hits,
            text,
        )
    out, hits = r._scan(text)
    assert (out, list(hits)) == (text if want is None else want, want_hits)


@needs_c
class TestDigitPrefilter:
    """digits_may_match() lets text skip the digit-triggered fragments only when none can match."""

    @settings(max_examples=800, deadline=None)
    @given(text=digit_text)
    def test_the_light_pattern_finds_what_the_full_one_finds(self, text: str) -> None:
        """Where the prefilter says no, both patterns match the same spans, by the same rules, from every position."""
        r = Redactor(key=KEY)
        if native.digits_may_match(text):
            return
        full, full_handlers = r._scanner, r._handlers
        light, light_handlers = r._light  # type: ignore[misc]
        for pos in range(len(text) + 1):
            a, b = full.search(text, pos), light.search(text, pos)  # type: ignore[union-attr]
            assert (a is None) == (b is None), (text, pos)
            if a is not None and b is not None:
                assert a.span() == b.span()
                assert full_handlers[a.lastindex][:2] == light_handlers[b.lastindex][:2]  # type: ignore[index]

    @settings(max_examples=300, deadline=None)
    @given(text=digit_text)
    def test_scan_equals_the_full_pattern_loop(self, text: str) -> None:
        """Redactor._scan (prefiltered) gives what the Python loop gives with the full pattern."""
        assert_scan_equals_full_loop(text)

    def test_typical_digit_text_skips_and_pii_does_not(self) -> None:
        """The prefilter earns its keep on times and flight numbers, and never waves PII through."""
        skip = ["3 flights OSL->LIS on day 3: SK301 09:10, TP355 13:45", "v1.2 costs $12.50", "step 12", "AB12 3"]
        keep = [
            "DE89 3704 0044 0532 0130 00",
            "10.0.0.1",
            "١٢٣.١.١.١",
            "123-45-6789",
            "202-555-0143",
            "4111 1111 1111 1111",
            "(202) 555-0143",
        ]
        assert [native.digits_may_match(t) for t in skip] == [False] * len(skip)
        assert [native.digits_may_match(t) for t in keep] == [True] * len(keep)
        r = Redactor(key=KEY)
        assert all(r.redact_text(t) != t for t in keep if t.isascii())  # (IPv4 starts at an ASCII digit)
        with pytest.raises(TypeError):
            native.digits_may_match(b"10.0.0.1")

    @pytest.mark.parametrize(("text", "phone"), [("001 00000", False), ("0049 30 12", False), ("0049 30 123", True)])
    def test_the_00_prefix_counts_as_the_plus(self, text: str, phone: bool) -> None:
        """A 00-prefixed number needs the digits a '+' one needs ("00" counted as the '+'), 9 in a row, which the
        prefilter lets through: the scan and the full pattern loop agree on it."""
        assert native.digits_may_match(text) is phone
        assert_scan_equals_full_loop(text)
        assert (Redactor(key=KEY).redact_text(text) != text) is phone


LIGHT_PIECES = [
    "password ",
    "--token ",
    "'S3cret99'",
    '"$ecretTok"',
    '"policy"',
    "josé@exämple.de",
    "用户@例子.广告",
    "ä@b",
    "cafe\u0301@x.io",
    "@ü",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----",
    "----BEGIN",
    "-----BEGI",
    "sk-ant-" + "a1" * 12,
    "sk-" + "abc123" * 4,
    "sk-learn-style",
    "xoxb-123456789012",
    "xox-1",
    "https://user:pw@host.io/x",
    "https://user:p!@host.io/x",  # (no e-mail: '!' before the '@')
    "http://host/x",
    "://",
    "user@",
    "2001:db8::1",
    "a:b:c:d:e:f:1",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5",
    "::",
    "12:34:56",
    "eyJhbGciOiJIUzI1.eyJzdWIiOjEyMzQ1.sig",
    "eyJ",
    "AKIA" + "A" * 16,
    "ASIA" + "B7" * 8,
    "AIza" + "x" * 35,
    "AKI",
    "sk_live_" + "a" * 12,
    "rk_test_" + "b" * 12,
    "pk_",
    "glpat-" + "a1" * 10,
    "gldt-" + "b" * 20,
    "glsoat-" + "c2" * 10,
    "gl-x",
    "hf_" + "Ab" * 17,
    "hf_",
    "SG." + "a" * 22 + "." + "b" * 43,
    "SG.",
    "xapp-1-A0123456789-1234567890123-" + "ab12" * 16,
    "xapp-",
    "pypi-AgEIcHlwaS5vcmc" + "Cj" * 30,
    "pypi-",
    "npm_" + "a1B" * 12,
    "npm_",
    "whsec_" + "Q9r8" * 8,
    "whsec_",
    "ya29.a0" + "x-Y_" * 10,
    "ya29.",
    "ya2",
    "ghp_" + "a1" * 16,
    "gh_",
    "github_pat_" + "a" * 24,
    "Authorization: Bearer abcdef123",
    "AUTHORIZATION=xyz123456",
    "authorization",
    "Bearer abc.def-123456",
    "bearer ",
    "jane.doe@example.com",
    "a@b",
    "@x",
    "jane%40example.com",
    "%4",
    "+44 20 7946 0958",
    "+x",
    "(202) 555-0143",
    "(x)",
    "3 flights OSL->LIS on day 3: SK301 09:10",
    "password=hunter2",
    'DB_PASSWORD="x y"',
    '{"api_key": "abc123"}',
    "{'client_secret': 'zz'}",
    '\\"access_token\\": \\"abc\\"',
    "X-Api-Key: abc123",
    "userPwd = s3cr3t",
    "Cookie: a=1; sid=abc",
    "pin: 1234",
    "card-PIN=",
    "otp:",
    "passcode",
    "query: x",
    '"units": 3',
    "spin: 3",
    "max_tokens=4",
    "eos_token: </s>",
    "token == x",
    "password=<SECRET:3f9a2c>",
    "\\n",
    " ",
]
# A test's extra_keys; their names in several spellings, and near misses.
EXTRA_KEYS = ("ssn_last4", "pw", "x")
EXTRA_KEY_PIECES = ["ssn_last4=1234", "SsnLast4", "SSN-LAST4", "ssn", "last4: ", "db_pw=", "pw", "PW ", "x=", "ax"]
light_text = st.one_of(
    st.lists(st.sampled_from(LIGHT_PIECES + FRAGMENTS), max_size=10).map("".join),
    st.lists(st.sampled_from(LIGHT_PIECES), max_size=6).map(" ".join),
    st.text(
        alphabet="-:_@%+(zZAJBbeyksxorhgtpuizIKS/.04af \\n=\"'PWDdnwlGfm29c" + "＋（：＝ｐｗ４\u00a0\u3000",
        max_size=60,
    ),
)


@needs_c
class TestLightPrefilter:
    """light_may_match() lets text skip the pattern search only when no rule can match."""

    @settings(max_examples=1500, deadline=None)
    @given(text=light_text)
    def test_no_means_the_light_pattern_finds_nothing(self, text: str) -> None:
        """Where it says no, the light pattern (every fragment but the digit-triggered ones) finds nothing."""
        r = Redactor(key=KEY)
        if native.light_may_match(text):
            return
        light, handlers = r._light  # type: ignore[misc]
        first = light.search(text)
        # Only a secret-key candidate may be found (its look-behinds are looser than the
        # test), and then the key-name check turns it down.
        if first is not None:
            assert patterns._python_match_loop(text, first, light.search, handlers, str, []) is None, text
        patterns_that_say_no = [(light, handlers)]
        if not native.digits_may_match(text):
            patterns_that_say_no.append((r._scanner, r._handlers))  # type: ignore[arg-type]
        for pattern, rules in patterns_that_say_no:
            found = {rules[m.lastindex][1] for pos in range(len(text)) if (m := pattern.search(text, pos))}  # type: ignore[index]
            assert found <= {"secret"}, text

    @settings(max_examples=300, deadline=None)
    @given(text=light_text)
    def test_scan_equals_the_full_pattern_loop(self, text: str) -> None:
        """Redactor._scan (both prefilters) gives what the Python loop gives with the full pattern."""
        assert_scan_equals_full_loop(text)

    @settings(max_examples=300, deadline=None)
    @given(text=st.lists(st.sampled_from(LIGHT_PIECES + EXTRA_KEY_PIECES), max_size=8).map("".join))
    def test_scan_with_extra_keys_equals_the_full_pattern_loop(self, text: str) -> None:
        """With extra key names (which the C test is given), _scan still finds all the full pattern finds."""
        assert_scan_equals_full_loop(text, RedactConfig(extra_keys=EXTRA_KEYS))

    @settings(max_examples=300, deadline=None)
    @given(text=light_text)
    def test_redact_text_of_a_short_text_equals_the_cached_path(self, text: str) -> None:
        """redact_text() (its test of a short text before the cache) gives what the cached path gives, and counts."""
        short, cached = Redactor(key=KEY), Redactor(key=KEY)
        assert short.redact_text(text) == cached._text(text)
        assert short.stats() == cached.stats()

    @settings(max_examples=800, deadline=None)
    @given(text=st.lists(st.sampled_from(LIGHT_PIECES + EXTRA_KEY_PIECES), max_size=8).map("".join))
    def test_no_means_nothing_is_found_with_extra_keys(self, text: str) -> None:
        """Given a redactor's extra key names, where it says no the light pattern finds nothing to replace."""
        r = Redactor(RedactConfig(extra_keys=EXTRA_KEYS), key=KEY)
        if native.light_may_match(text, r._extra_words):
            return
        light, handlers = r._light  # type: ignore[misc]
        first = light.search(text)
        if first is not None:
            assert patterns._python_match_loop(text, first, light.search, handlers, str, []) is None, text

    def test_every_extra_key_name_in_text_passes(self) -> None:
        """A user's extra key name, in every spelling and separator form, passes the test given it, and only then."""
        r = Redactor(RedactConfig(extra_keys=EXTRA_KEYS), key=KEY)
        assert r._extra_words == ("pw", "ssnlast4", "x")
        for spelling in ("ssn_last4", "SSN_LAST4", "Ssn-Last4", "ssnLast4", "userSsnLast4", "db_pw", "dbPw", "X"):
            for form in ("{}=s3cr3t", "{}: s3cr3t", '"{}": "s3cr3t"', "'{}': 's3cr3t'", '\\"{}\\": \\"s3cr3t\\"'):
                text = "note " + form.format(spelling) + " end"
                assert native.light_may_match(text, r._extra_words), text
                assert not native.light_may_match(text), text  # (no built-in name)
                assert "s3cr3t" not in r.redact_text(text) and "s3cr3t" not in str(r.redact({"t": text})), text

    @pytest.mark.parametrize(
        "words", [["pw"], ("PW",), ("ssn_last4",), ("",), (b"pw",), ("pé",), 3], ids=lambda w: repr(w)
    )
    def test_words_that_are_not_normalized_names_raise(self, words: object) -> None:
        for test in (native.light_may_match, native.no_rule_can_match):
            with pytest.raises(TypeError):
                test("pw=1", words)
        assert native.light_may_match("pw=1", ("pw",)) and native.light_may_match("pw=1", None) is False

    def test_every_secret_key_name_in_text_passes(self) -> None:
        """Every secret key name, in every spelling and separator form, passes the test, and its value is replaced."""
        from flightrec.redact.config import _SECRET_KEY_ENDINGS, _SECRET_KEY_NAMES

        r = Redactor(key=KEY)
        for name in (*_SECRET_KEY_ENDINGS, *_SECRET_KEY_NAMES):
            key = "user_" + name.strip("_") if name.startswith("_") else name
            words = key.split("_")
            camel = words[0] + "".join(w.title() for w in words[1:])
            for spelling in {
                key,
                key.upper(),
                key.replace("_", "-").title(),
                "my" + camel[0].upper() + camel[1:],
                camel,
            }:
                for form in (
                    *("{}=s3cr3t", "{}: s3cr3t", '"{}": "s3cr3t"', "'{}': 's3cr3t'", '\\"{}\\": \\"s3cr3t\\"'),
                    *("--{} 's3cr3t'", '{} "s3cr3t"'),
                ):
                    text = "x " + form.format(spelling) + " y"
                    assert native.light_may_match(text), text
                    assert "s3cr3t" not in r.redact_text(text), text

    def test_clean_prose_skips_and_every_rule_does_not(self) -> None:
        """Prose, times and arrows skip the search; a sample of every non-digit rule does not."""
        skip = [
            "3 flights OSL->LIS on day 3: SK301 09:10, TP355 13:45 | Policy on x (en): one cabin bag of 8 kg",
            "The user asked about a refund - twice. Ask: which order? Use snake_case names.",
            "Zebra Jazz Bob babble APIs ACME_CORP",
        ]
        keep = [p for p in LIGHT_PIECES if Redactor(key=KEY).redact_text(p) != p]
        assert len(keep) >= 20
        assert [native.light_may_match(t) for t in skip] == [False] * len(skip)
        assert [t for t in keep if not native.light_may_match(t)] == []
        with pytest.raises(TypeError):
            native.light_may_match(b"a@b.io")


class Opaque:
    """An object with no data form: stored as its repr."""

    def __repr__(self) -> str:
        return "<Opaque jane@example.com>"


scalars = st.one_of(
    agent_text,
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.binary(max_size=20),
    st.just(Opaque()),
    st.text(alphabet="ab", min_size=5000, max_size=5000),  # over max_str: truncated
)
keys = st.one_of(
    st.sampled_from(["to", "body", "password", "api_key", "max_tokens", "token_count", "note", "public", "k" * 300]),
    st.text(max_size=8),
    st.integers(-3, 3),
    st.tuples(st.integers(0, 2)),
)
payloads = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.dictionaries(keys, inner, max_size=6),
        st.lists(inner, max_size=5),
        st.tuples(inner, inner),
    ),
    max_leaves=25,
)
configs = st.sampled_from(
    [
        redact.RedactConfig(),
        redact.RedactConfig(max_items=3, max_depth=3, max_str=64),
        redact.RedactConfig(allow_keys=("public",), extra_keys=("note",)),
        redact.RedactConfig(cache_size=0),
    ]
)


def walk_both(config: redact.RedactConfig, value: Any) -> tuple[Any, Any]:
    """(C walk, Python walk) of value: two Redactors with the same key, one per walk."""
    c = Redactor(config, key=KEY)
    py = Redactor(config, key=KEY)
    saved = redactor._dict_walk
    redactor._dict_walk = None
    try:
        want = (py.redact(value), py.stats(), py.degraded())
    finally:
        redactor._dict_walk = saved
    got = (c.redact(value), c.stats(), c.degraded())
    return got, want


@pytest.fixture
def scanned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts the redactor's Python scan (Redactor._scan, still run) is called with, in order."""
    seen: list[str] = []
    scan = Redactor._scan

    def spy(self: Redactor, text: str) -> Any:
        seen.append(text)
        return scan(self, text)

    monkeypatch.setattr(Redactor, "_scan", spy)
    return seen


@needs_c
class TestDictWalk:
    """The C dict walk gives what the Python walk gives: output, rule counts, degraded count."""

    @settings(max_examples=400, deadline=None)
    @given(config=configs, value=st.dictionaries(keys, payloads, max_size=8))
    def test_same_as_python(self, config: redact.RedactConfig, value: dict[Any, Any]) -> None:
        got, want = walk_both(config, value)
        assert got == want

    def test_examples(self) -> None:
        cyclic: dict[str, Any] = {"to": "jane@example.com"}
        cyclic["self"] = cyclic
        nested: dict[str, Any] = {"n": 0}
        for i in range(200):
            nested = {"n": i, "inner": nested, "pw": {"password": "hunter2"}}
        for value in [
            cyclic,
            nested,
            {"big": 1 << 64, "neg": -(1 << 63) - 1, "edge": (1 << 64) - 1, "low": -(1 << 63)},
            {"password": {"nested": "sk-abc"}, "cookie": None, "token": "", "api_key": 12345},
            {1: "a@b.io", None: "x", ("t",): {"k": "v"}, "s" * 5000: "long key"},
            {"list": [{"to": "jane@example.com"}, ({"card": "4111 1111 1111 1111"},)]},
        ]:
            got, want = walk_both(redact.RedactConfig(), value)
            assert got == want
        assert "<cycle>" in str(walk_both(redact.RedactConfig(), cyclic)[0][0])
        assert "<max depth>" in str(walk_both(redact.RedactConfig(), nested)[0][0])

    @pytest.mark.parametrize("n", [63, 64, 65])
    def test_strings_at_the_size_limit(self, n: int) -> None:
        """Strings up to max_str are stored whole, longer ones truncated with a marker."""
        config = redact.RedactConfig(max_str=64)
        got, want = walk_both(config, {"s": "a" * n, "t": ["b" * n]})
        assert got == want
        assert ("truncated" in got[0]["s"]) == (n > 64)

    def test_subclasses_and_raw_use_the_python_walk(self) -> None:
        """Only exact dicts take the C walk; an OrderedDict goes through Python, same result."""
        from collections import OrderedDict

        value = OrderedDict(to="jane@example.com", n=1)
        got, want = walk_both(redact.RedactConfig(), value)
        assert got == want and got[0] == {"to": got[0]["to"], "n": 1} and got[0]["to"].startswith("<EMAIL:")

    @settings(max_examples=400, deadline=None)
    @given(
        config=st.sampled_from(
            [
                redact.RedactConfig(),
                redact.RedactConfig(extra_patterns=[("ticket", r"msg-\d+")]),
                redact.RedactConfig(extra_keys=EXTRA_KEYS),
            ]
        ),
        texts=st.lists(st.one_of(light_text, st.sampled_from(EXTRA_KEY_PIECES)), max_size=6),
    )
    def test_prefiltered_texts_same_as_python(self, config: redact.RedactConfig, texts: list[str]) -> None:
        """Texts the C walk clears by the prefilters alone come out as the Python walk gives them."""
        value = {**{f"k{i}": t for i, t in enumerate(texts)}, "nested": {"list": texts}}
        got, want = walk_both(config, value)
        assert got == want

    def test_a_clean_text_needs_no_python_call(self, scanned: list[str]) -> None:
        """A text no rule can match is its own redacted form without the Python scan, and is
        cached as the scan would cache it; one that may match is scanned; an extra pattern
        turns the shortcut off; a full cache generation is left to the Python path."""
        r = Redactor(key=KEY)
        clean, pii, hexid = "the flight leaves at 9 from gate 12", "write to jane@example.com", "9f86d081884c7d65"
        out = r.redact({"note": clean, "to": pii, "id": hexid})
        assert out == {"note": clean, "to": out["to"], "id": hexid} and out["to"].startswith("write to <EMAIL:")
        assert scanned == [pii]
        assert r._cache.get(clean) == clean and hexid not in r._cache  # (ids stay out, as _text_miss keeps them)
        assert r._cache_chars == len(clean) + len(pii)
        extra = Redactor(redact.RedactConfig(extra_patterns=[("gate", r"gate \d+")]), key=KEY)
        assert extra.redact({"note": clean})["note"].startswith("the flight leaves at 9 from <GATE:")
        assert scanned[-1] == clean
        full = Redactor(redact.RedactConfig(cache_size=2), key=KEY)  # one entry per generation
        assert full.redact({"a": "one clean text", "b": "two clean text"}) == {
            "a": "one clean text",
            "b": "two clean text",
        }
        assert scanned[-1] == "two clean text" and full._old == {"one clean text": "one clean text"}

    def test_folded_forms_are_tested_as_the_rules_read_them(self, scanned: list[str]) -> None:
        """A text with full-width forms or no-break spaces is tested in its ASCII form: CJK prose
        full of full-width punctuation and numbers still needs no Python call, and a full-width
        or no-break-grouped card is scanned and replaced."""
        r = Redactor(key=KEY)
        prose = "合計 ４５，０００円（税込）、２０２６年１１月２７日　１２：３４：５６、ＮＨ２０５便"
        cards = [
            "番号\u3000４１１１\u3000１１１１\u3000１１１１\u3000１１１１",
            "card 4111\u202f1111\u202f1111\u202f1111",
        ]
        out = r.redact({"prose": prose, "a": cards[0], "b": cards[1]})
        assert out["prose"] == prose and prose not in scanned and all(c in scanned for c in cards)  # (and keys)
        assert out["a"].startswith("番号\u3000<CARD:") and out["b"].startswith("card <CARD:")
        assert r.clean_test()(prose) and not any(r.clean_test()(c) for c in cards)  # type: ignore[misc]

    def test_a_clean_text_needs_no_python_call_with_extra_keys(self, scanned: list[str]) -> None:
        """A user's extra key names keep the shortcut: the C tests know them, so a clean text is not
        scanned and one that holds such a name is (as it would with a built-in name)."""
        r = Redactor(redact.RedactConfig(extra_keys=("ssn_last4", "member_pin")), key=KEY)
        clean, secret = "the flight leaves at 9 from gate 12", "member-pin: 4321"
        out = r.redact({"note": clean, "form": secret, "n": {"ssnLast4": "1234"}})
        assert out == {"note": clean, "form": "member-pin: <SECRET:" + out["form"][20:], "n": out["n"]}
        assert out["n"]["ssnLast4"].startswith("<SECRET:")
        assert secret in scanned and clean not in scanned  # (and the keys, at first sight, as any key)
        scanned.clear()
        assert r.redact({"note": clean + "!"}) == {"note": clean + "!"} and scanned == []
        assert r.redact_text("gate 12 at 9") == "gate 12 at 9" and scanned == []
        assert redactor._dict_walk.encode(r, {"note": clean}) == encoded({"note": clean})

    def test_clean_test(self) -> None:
        """Redactor.clean_test(): True only of text no rule changes; None when extra patterns or no redaction."""
        clean = Redactor(key=KEY).clean_test()
        assert clean is not None
        assert [clean(t) for t in ("turn 12", "mail jane@example.com", "call +44 20 7946 0958")] == [True, False, False]
        extra = Redactor(redact.RedactConfig(extra_keys=("ssn_last4",)), key=KEY).clean_test()
        assert extra is not None
        assert [extra(t) for t in ("turn 12", "ssnLast4=1", "SSN-LAST4: 1", "last4=1")] == [True, False, False, True]
        assert Redactor(redact.RedactConfig(extra_patterns=[("t", r"turn")])).clean_test() is None
        assert Redactor(redact.RedactConfig(enabled=False)).clean_test() is None

    def test_the_walk_reads_each_redactors_own_limits(self) -> None:
        """The C walk reads the limits from Redactor._walk_settings: the unbounded twin (the
        checkpoint store's) keeps what its bounded original cuts, in the same process."""
        r = Redactor(redact.RedactConfig(max_str=64, max_items=3), key=KEY)
        twin = r.unbounded()
        value = {"s": "a" * 100, "d": {str(i): i for i in range(5)}}
        cut, whole = r.redact(value), twin.redact(value)
        assert "truncated" in cut["s"] and len(cut["d"]) == 4  # three items and the marker
        assert whole == value
        assert r._walk_settings[1:3] == (3, 64) and twin._walk_settings[1:3] == (1 << 62, 1 << 62)
        encode = redactor._dict_walk.encode
        assert encode(r, value) is None and encode(twin, value) == encoded(value)

    def test_limits_agree_with_python(self) -> None:
        assert (native.CACHE_MAX_ENTRY, native.CACHE_MAX_CHARS, native.ID_MAX_LEN) == (
            redactor._CACHE_MAX_ENTRY,
            redactor._CACHE_MAX_CHARS,
            patterns._ID_MAX_LEN,
        )

    def test_bad_arguments_raise(self) -> None:
        assert redactor._dict_walk is not None
        with pytest.raises(TypeError):
            redactor._dict_walk(Redactor(), ["not a dict"], "", 0, set())
        with pytest.raises(AttributeError):
            redactor._dict_walk(object(), {"a": 1}, "", 0, set())


def encoded(value: Any) -> bytes:
    return msgspec.msgpack.encode(value)


@needs_c
class TestFusedEncode:
    """DictWalk.encode: the walk's output, encoded in the same pass, for the plain case only."""

    @settings(max_examples=500, deadline=None)
    @given(config=configs, value=st.dictionaries(keys, payloads, max_size=8))
    def test_the_bytes_msgspec_writes_for_the_redacted_dict(self, config: redact.RedactConfig, value: Any) -> None:
        """When it answers, its bytes are those of the redacted dict; it counts nothing, so a
        redact() after a refusal counts exactly what a redact() alone counts."""
        fused, plain = Redactor(config, key=KEY), Redactor(config, key=KEY)
        got = redactor._dict_walk.encode(fused, value)
        want = plain.redact(value)
        if got is not None:
            assert got == encoded(want)
            assert fused.stats() == Redactor(config, key=KEY).stats() and fused.degraded() == 0
        assert fused.redact(value) == want
        assert (fused.stats(), fused.degraded()) == (plain.stats(), plain.degraded())

    def test_the_payloads_of_an_agent_take_it(self) -> None:
        """Events of an agent's usual shape are encoded in one pass: every int width, nesting,
        non-ASCII text, strings at each length bound of MessagePack's str forms."""
        r = Redactor(key=KEY)
        values: list[dict[str, Any]] = [
            {"tool": "search_flights", "call_id": 7, "args": {"origin": "Oslo", "day": 5}, "attempt": 1},
            {"model": "gpt-4o-mini", "prompt_tokens": 812, "latency_ms": 1.234, "response": "Fly on the 5th."},
            {"ints": {str(v): v for v in (0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63, 2**64 - 1)}},
            {"neg": {str(v): v for v in (-1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63))}},
            {"text": "Zürich → Kraków, 5 °C", "none": None, "yes": True, "no": False, "f": -0.0, "inf": float("inf")},
            {f"k{n}": "a" * n for n in (0, 31, 32, 255, 256, 4096)},
            {str(i): i for i in range(16)},
            {},
        ]
        for value in values:
            got = redactor._dict_walk.encode(r, value)
            assert got is not None and got == encoded(Redactor(key=KEY).redact(value)), value

    def test_anything_to_redact_cut_or_convert_is_refused(self) -> None:
        """PII, secret keys, over-long text, big ints, lists, other types, deep nesting: None."""
        r = Redactor(redact.RedactConfig(max_str=64, max_depth=3, max_items=4), key=KEY)
        deep: dict[str, Any] = {"n": 1}
        for _ in range(5):
            deep = {"inner": deep}
        for value in [
            {"to": "write to jane@example.com"},
            {"password": "hunter2"},
            {"s": "a" * 65},
            {"big": 1 << 64},
            {"list": [1, 2]},
            {"b": b"bytes"},
            {1: "int key"},
            {"o": Opaque()},
            {"many": {str(i): i for i in range(5)}},
            deep,
            {"lone": "\udc80"},
        ]:
            assert redactor._dict_walk.encode(r, value) is None, value
        assert r.stats() == Redactor(key=KEY).stats() and r.degraded() == 0
        assert redactor._dict_walk.encode(r, ["not a dict"]) is None
        with pytest.raises(TypeError):
            redactor._dict_walk.encode(r)


# Redacts the labelled corpus and a batch of PII events with a fixed key, and prints a
# digest of everything that came out (texts, rule counts).
CORPUS_SCRIPT = r"""
import hashlib, importlib.util, json, random, sys
from flightrec.redact import RedactConfig, Redactor, patterns
spec = importlib.util.spec_from_file_location("bench_core", sys.argv[1])
bench = importlib.util.module_from_spec(spec)
sys.modules["bench_core"] = bench  # dataclasses look their module up there
spec.loader.exec_module(bench)
r = Redactor(key=b"native-test-key-0123456789abcdef")
out = [r.redact_text(case.text) for case in bench.build_corpus(1234)]
rng = random.Random(7)
out += [r.redact(bench.pii_event(rng)) for _ in range(300)]
out += [r.redact(bench.clean_event(rng)) for _ in range(300)]
# hand-written cases (short secrets, international addresses, templates, no-break spaces), as
# text, as dict values and keys, and through a redactor with extra key names
extra = Redactor(RedactConfig(extra_keys=("ssn_last4", "pw")), key=b"native-test-key-0123456789abcdef")
for red in (r, extra):
    for text in json.loads(sys.argv[2]):
        out += [red.redact_text(text), red.redact({"v": text, text: 1, "b": text.encode()})]
    out.append(red.stats())
blob = json.dumps([out, r.stats()], sort_keys=True, default=repr).encode()
print(json.dumps({"native": patterns._native is not None, "n": len(out), "digest": hashlib.sha256(blob).hexdigest()}))
"""


# Texts for the rules' edges, added to the corpus both interpreters redact.
PARITY_CASES = [
    *("pin=1", "otp:4", "cvv=9", "pwd=1", "pw=x", "ssnLast4=1", "a@b.c", "x=1"),
    *("josé@exämple.de", "用户@例子.广告", "请发邮件至john@example.com请回复", "请发邮件至用户@例子.广告。谢谢"),
    *("kunde@bücher.example", "cafe\u0301@example.com", "名前.太郎@例え.jp", "@用户 和 @José", "ä@b; Größe@home"),
    *("x" * 70 + "用户@例子.广告", "..josé@exämple.de", "\\nmüller@x.de", "emoji😀@x.com"),
    *(
        "headers: {Authorization: `Bearer ${token}`}",
        "Authorization: Bearer {{ token }}",
        "Authorization: Bearer <token>",
    ),
    *('{"Authorization": "Bearer {{access_token}}"}', "Authorization: `Bearer abc123def456`", "token=%s; pw=`x y`"),
    *("06\u00a012\u00a034\u00a056\u00a078", "+33\u202f6\u202f12\u202f34\u202f56\u202f78", "1\u00a0234\u00a0567,89 €"),
    *(
        "+1\u00a0234\u00a0567,89 €",
        "+1 234 567,89",
        "+12 345 678 EUR",
        "0049\u00a030\u00a01234567",
        "020\u202f7946\u202f0958",
    ),
    *("001 00000", "0049 30 12", "0049 30 123", "+49 30 12", "+49 30 123"),
    # full-width forms and no-break or ideographic spaces, read as their ASCII forms
    "call me at ＋４９ ３０ １２３４５６７８ today",
    "card ４１１１ １１１１ １１１１ １１１１ ok",
    "（０３）１２３４－５６７８",
    "４１１１\u3000１１１１\u3000１１１１\u3000１１１１",
    *("call (415)\u00a0555\u00a02671 now", "4111\u00a01111\u00a01111\u00a01111"),
    *("合計 ４５，０００円（税込）", "２０２６年１１月２７日 １２：３４：５６"),
    *("＋１ ２３４ ５６７，８９ €", "ｖ１．２．３．４", "ｐａｓｓｗｏｒｄ＝ｈｕｎｔｅｒ２"),
    *("送信先 ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "password:\u00a0hunter2 now", "１２３－４５－６７８９"),
    # '$' variables (an upper-case name or a secret's) and values that start with a '$'
    *('password: "$ecret"', "token=$ecretTok", "api_key='$Ecret99'", "Authorization: Bearer $ecret"),
    *("token=$token", "api_key=$apiKey", "PASSWORD=$DB_PASSWORD", "Authorization: Bearer $accessToken"),
    # a quoted value after a secret name and a blank, and quoted words that are none
    *("password '$ecret99'", 'token "$ecretTok"', "mysql --password 'S3cret99'", "WITH PASSWORD 'S3cr3t!!'"),
    *('the token "object"', 'grep -r token "./src"', "password 'must not be empty'", 'pin "12"'),
]


def _run_corpus(pure: bool) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("FLIGHTREC_PURE_PYTHON", None)
    if pure:
        env["FLIGHTREC_PURE_PYTHON"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", CORPUS_SCRIPT, str(ROOT / "benchmarks" / "redact_core.py"), json.dumps(PARITY_CASES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@needs_c
def test_corpus_identical_with_and_without_the_extension() -> None:
    """Every redacted corpus text, event and rule count is the same in both interpreters."""
    c, py = _run_corpus(pure=False), _run_corpus(pure=True)
    assert c["native"] is True and py["native"] is False
    assert c["n"] == py["n"] > 5000 + 4 * len(PARITY_CASES)
    assert c["digest"] == py["digest"]
