"""No unredacted byte anywhere: planted secrets through every public call, searched in raw bytes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

import flightrec
from flightrec import format as fmt
from flightrec.reader import open_recording
from flightrec.redact import RedactConfig, Redactor
from flightrec.redact import redactor as redactor_module

from .conftest import child_env, recorded

SECRETS = {
    "email": "maria.gonzalez@example-mail.com",
    "openai": "sk-proj-Zx81hQm2RkT7vB4nL0pW9sYcD3eF6gH1jK5",
    "aws": "AKIAQ7Z2NX4RTB6LMW3P",
    "card": "4539 1488 0343 6467",
    "phone": "+44 20 7946 0958",
    "password": "hunter2-correct-horse",
    "github": "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s9",
    "bearer": "abcDEF123456ghiJKL789mno",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dGhpc2lzYXNpZ25hdHVyZQ",
}

AGENT = """
import asyncio, sys
import flightrec
S = {secrets!r}
flightrec.start(keep_ring=True)
flightrec.record("note", text="contact " + S["email"], password=S["password"])
flightrec.record("task", pin=True, prompt="use key " + S["openai"])
flightrec.checkpoint({{"messages": [{{"role": "user", "content": "my card is " + S["card"]}}],
                       "creds": {{"aws": S["aws"]}}}}, label="turn 1")

@flightrec.tool
def lookup(query: str, token: str) -> str:
    return "found " + S["phone"] + " for " + query

@flightrec.tool
def broken(auth: str) -> str:
    raise RuntimeError("upstream rejected Authorization: Bearer " + S["bearer"])

with flightrec.step("plan", note="user " + S["email"]):
    lookup("who is " + S["email"], token=S["github"])
    try:
        broken("Bearer " + S["bearer"])
    except RuntimeError:
        pass
    flightrec.llm(model="m", prompt_tokens=10, completion_tokens=5, latency_ms=1.0,
                  request={{"messages": [{{"role": "user", "content": "my jwt " + S["jwt"]}}]}},
                  response="call " + S["phone"])
    flightrec.memory.retain("fact:1", content="email " + S["email"] + " key " + S["aws"], tokens=12)
raise ValueError("giving up, key was " + S["openai"] + " card " + S["card"])
"""


def _decompressed(path: Path) -> bytes:
    """Every block's raw events, the open block and the pinned area, decompressed, plus the file bytes."""
    rec = open_recording(path)
    parts = [path.read_bytes()]
    for b in rec.blocks:
        parts.append(fmt.decode_block_payload(b.header, rec._buf, b.offset) or b"")
    rec.close()
    return b"\n".join(parts)


class TestNoLeaks:
    def test_planted_secrets_never_reach_the_ring_or_the_dump(self, frdir: Path) -> None:
        """Secrets through record, pin, checkpoint, tools, llm, memory, exceptions and argv: zero found."""
        code = textwrap.dedent(AGENT.format(secrets=SECRETS))
        argv = [sys.executable, "-c", code, f"--api-key={SECRETS['openai']}", SECRETS["email"]]
        result = subprocess.run(argv, env=child_env(frdir), capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        assert "ValueError" in result.stderr
        [dump] = frdir.glob("*.frec")
        [ring] = frdir.glob("*.ring")
        rec = open_recording(dump)
        kinds = {e.kind for e in rec.events()}
        assert {"note", "task", "checkpoint", "tool_call", "tool_result", "llm", "memory", "error"} <= kinds
        assert rec.meta["exception"]["type"] == "builtins.ValueError"
        assert any("<EMAIL:" in a for a in rec.meta["argv"])
        for path in (dump, ring):
            blob = _decompressed(path)
            for name, secret in SECRETS.items():
                for form in {secret, secret.replace(" ", "")}:
                    assert form.encode() not in blob, f"{name} leaked into {path.name}"


@pytest.fixture(params=["c", "python"])
def walk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the C dict walk (when built) and with the Python one."""
    if request.param == "python":
        monkeypatch.setattr(redactor_module, "_dict_walk", None)
    elif redactor_module._dict_walk is None:
        pytest.skip("the C extension is not built")
    return str(request.param)


class TestKeys:
    """A dict key is data: an e-mail, a phone number or a token used as a key is replaced."""

    PII_KEYS: ClassVar[dict[str, Any]] = {
        "maria.gonzalez@example-mail.com": 1,
        "+44 20 7946 0958": "x",
        "10.1.2.3": [1],
    }

    def test_keys_are_scanned_by_the_pattern_rules(self, walk: str) -> None:
        r = Redactor(key=b"k" * 32)
        for _ in range(2):  # first sight, then the key cache
            out = r.redact({"users": dict(self.PII_KEYS), "n": 1})
            assert isinstance(out, dict)
            keys = list(out["users"])
            assert [k.split(":")[0] for k in keys] == ["<EMAIL", "<PHONE", "<IPV4"], keys
            assert out["users"][keys[1]] == "x" and out["n"] == 1
        assert r.stats()["email"] == 2

    def test_keys_never_reach_an_event_or_a_checkpoint(self, rec: Any, walk: str) -> None:
        flightrec.record("note", **self.PII_KEYS)
        flightrec.checkpoint({"by_user": dict(self.PII_KEYS)}, label="t")
        got = recorded()
        text = repr([e.data for e in got.events()]) + repr(got.state_at(got.checkpoints()[-1].seq))
        for key in self.PII_KEYS:
            assert key not in text

    def test_secret_named_keys_keep_their_names(self, walk: str) -> None:
        out = Redactor(key=b"k" * 32).redact({"user_password": "hunter2", "max_tokens": 5})
        assert isinstance(out, dict) and list(out) == ["user_password", "max_tokens"]


class TestNames:
    """Thread names and a dump's reason are text the agent chooses: the pattern rules run on them."""

    EMAIL = "maria.gonzalez@example-mail.com"

    def test_thread_name_and_dump_reason(self, rec: Any) -> None:
        def work() -> None:
            flightrec.record("note", text="in the session's thread")

        t = threading.Thread(target=work, name=f"session {self.EMAIL}")
        t.start()
        t.join()
        path = flightrec.dump(reason=f"support ticket for {self.EMAIL}")
        assert path is not None
        assert "maria" not in path.name
        got = flightrec.load(path)
        [note] = [e for e in got.events() if e.kind == "note"]
        assert note.thread.startswith("session <EMAIL:")
        assert got.meta["trigger"]["reason"].startswith("support ticket for <EMAIL:")
        assert self.EMAIL.encode() not in path.read_bytes()

    def test_thread_exception_header(self, frdir: Path) -> None:
        code = textwrap.dedent(
            f"""
            import threading, flightrec
            flightrec.start()
            def boom():
                raise RuntimeError("failed")
            t = threading.Thread(target=boom, name="worker {self.EMAIL}")
            t.start(); t.join()
            flightrec.stop()
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", code], env=child_env(frdir), capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        [dump] = frdir.glob("*.frec")
        got = flightrec.load(dump)
        assert got.meta["trigger"]["thread"].startswith("worker <EMAIL:")
        errors = [e for e in got.events() if e.kind == "error"]
        assert errors and errors[0].data["thread"].startswith("worker <EMAIL:")
        assert self.EMAIL.encode() not in _decompressed(dump)


class TestCut:
    """A value that a string's truncation at max_value splits is replaced whole, not stored in part."""

    VALUES: ClassVar[list[str]] = [
        "maria.gonzalez@example-mail.com",
        "4539 1488 0343 6467",
        "sk-proj-Zx81hQm2RkT7vB4nL0pW9sYcD3eF6gH1jK5",
        "DE89 3704 0044 0532 0130 00",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dGhpc2lzYXNpZ25hdHVyZQ",
        "postgres://app:hunter2-correct-horse@db.internal/x",
    ]

    def test_value_across_the_cut(self, walk: str) -> None:
        r = Redactor(RedactConfig(max_str=40), key=b"k" * 32)
        for value in self.VALUES:
            whole = r.redact({"v": value})
            assert isinstance(whole, dict) and "<" in whole["v"], value
            for before in range(20, 39):
                text = "note: " + "y " * 20
                out = r.redact({"v": text[:before] + " " + value + " and more text after it"})
                assert isinstance(out, dict)
                stored = out["v"]
                assert "…<truncated" in stored
                kept = stored.split("…<truncated")[0]
                # no piece of the secret (5 characters or more) is kept
                secret = value.split(":")[-1] if "://" in value else value
                pieces = {secret[i : i + 5] for i in range(len(secret) - 4)}
                assert not any(p in kept for p in pieces), (value, stored)

    def test_a_clean_cut_is_unchanged(self, walk: str) -> None:
        r = Redactor(RedactConfig(max_str=10), key=b"k" * 32)
        assert r.redact(["abcdefghijklmnop", "x@y.io here and more"]) == [
            "abcdefghij…<truncated 6 chars>",
            "<EMAIL:" + r.redact("x@y.io")[7:13] + "> her…<truncated 10 chars>",  # type: ignore[index]
        ]
        assert r.stats()["email"] == 2

    def test_bytes_value_across_the_cut(self, walk: str) -> None:
        """Bytes cut at max_bytes: the value the cut splits is replaced whole, not stored in part."""
        r = Redactor(RedactConfig(max_bytes=40), key=b"k" * 32)
        for value in self.VALUES:
            secret = (value.split(":")[-1] if "://" in value else value).encode()
            pieces = {secret[i : i + 5] for i in range(len(secret) - 4)}
            # (a two-byte character before the value: the cut may split it, and then its
            # bytes are kept as they are)
            for filler in ("y ", "é"):
                for before in range(20, 39):
                    text = ("note: " + filler * 20)[:before] + " " + value + " and more text after it"
                    out = r.redact({"v": text.encode()})
                    assert isinstance(out, dict)
                    stored = out["v"]
                    assert isinstance(stored, bytes) and "…<truncated".encode() in stored
                    kept = stored.split("…<truncated".encode())[0]
                    assert not any(p in kept for p in pieces), (value, stored)
                    assert text.encode().startswith(kept) or b"<" in kept, (value, stored)

    def test_bytes_cut_inside_a_character_of_a_secret_value(self, walk: str) -> None:
        """A secret value whose character the cut splits is replaced whole; a clean cut keeps every byte."""
        r = Redactor(RedactConfig(max_bytes=20), key=b"k" * 32)
        value = "password=abcdefghijé-ça"  # (the cut at 20 bytes splits the "é")
        whole = r.redact(value)
        out = r.redact(value.encode() + b" more")
        assert isinstance(whole, str) and isinstance(out, bytes)
        assert out == whole.encode() + "…<truncated 10 bytes>".encode()
        clean = "abcdefghijklmnopqrsé".encode() + b" tail"
        assert r.redact(clean) == clean[:20] + "…<truncated 6 bytes>".encode()


class TestBytes:
    """Bytes are text to the rules even when they are not all UTF-8 (a Latin-1 body, binary framing)."""

    SECRET = b"sk-proj-Zx81hQm2RkT7vB4nL0pW9sYcD3eF6gH1jK5"

    def test_invalid_utf8_bytes_never_reach_the_ring_or_the_dump(self, rec: Any, walk: str) -> None:
        body = b"\x00\x17caf\xe9 Authorization: Bearer abcDEF123456ghi \xff key " + self.SECRET + b" \xfe"
        flightrec.record("http", body=body, frame=bytearray(b"\x80\x81" + self.SECRET))
        flightrec.checkpoint({"raw": body}, label="t")
        got = recorded()
        [event] = [e for e in got.events() if e.kind == "http"]
        stored = event.data["body"]
        assert stored.startswith(b"\x00\x17caf\xe9 Authorization: Bearer <AUTH_HEADER:")
        assert b"<OPENAI_KEY:" in stored and stored.endswith(b" \xfe")
        assert event.data["frame"].startswith(b"\x80\x81<OPENAI_KEY:")
        assert got.state_at(got.checkpoints()[-1].seq)["raw"] == stored
        blob = _decompressed(got.path) + _decompressed(Path(rec.ring_path))
        assert self.SECRET not in blob and b"abcDEF123456ghi" not in blob


class TestArgv:
    """The command line in a dump's header: flags named like secrets lose their values."""

    ARGS: ClassVar[list[str]] = ["--pin", "482913", "--auth=alice:s3cret-pw", "--otp", "9142537", "-p", "8080"]

    def test_secret_flags_never_reach_the_ring_or_the_dump(self, frdir: Path) -> None:
        code = "import flightrec; flightrec.start(keep_ring=True); flightrec.record('note'); flightrec.dump()"
        argv = [sys.executable, "-c", code, *self.ARGS]
        result = subprocess.run(argv, env=child_env(frdir), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        [dump] = frdir.glob("*.frec")
        [ring] = frdir.glob("*.ring")
        args = flightrec.load(dump).meta["argv"][1:]
        # ("-p" stays: in most programs it is a port or a plug-in, not a password)
        want = ["--pin", "<SECRET", "--auth=<SECRET", "--otp", "<SECRET", "-p", "8080"]
        assert [a.split(":")[0] for a in args] == want
        for path in (dump, ring):
            blob = _decompressed(path)
            for secret in ("482913", "s3cret-pw", "9142537"):
                assert secret.encode() not in blob, (secret, path.name)


class TestSecretKeysInText:
    """A secret-named key inside a string (JSON text, a query string, a header) loses its value too."""

    TEXTS: ClassVar[dict[str, str]] = {
        "result": '{"api_key": "abc123secretvalue", "password": "hunter2-correct", "user": "bob"}',
        "url": "https://api.example.com/login?user=bob&password=p4ss-w0rd-xyz&next=/",
        "header": "X-Api-Key: k3y-v4lu3-0123456789",
    }
    SECRETS = ("abc123secretvalue", "hunter2-correct", "p4ss-w0rd-xyz", "k3y-v4lu3-0123456789")

    def test_never_reach_the_ring_or_the_dump(self, rec: Any, walk: str) -> None:
        flightrec.record("tool_result", **self.TEXTS)
        flightrec.checkpoint({"messages": [{"role": "tool", "content": self.TEXTS["result"]}]}, label="t")
        got = recorded()
        [event] = [e for e in got.events() if e.kind == "tool_result"]
        assert event.data["result"].startswith('{"api_key": "<SECRET:') and event.data["result"].endswith(
            '"user": "bob"}'
        )
        assert event.data["url"].startswith("https://api.example.com/login?user=bob&password=<SECRET:")
        assert got.meta["redaction"]["replaced"]["secret"] >= 4
        blob = _decompressed(got.path) + _decompressed(Path(rec.ring_path))
        for secret in self.SECRETS:
            assert secret.encode() not in blob, secret


class TestShortTexts:
    """The shortest secret a rule knows, a three-letter secret name and a one-character value, is replaced."""

    TEXTS: ClassVar[dict[str, str]] = {"a": "pin=7", "b": "otp:4", "c": "cvv=9", "d": "cvc:1"}

    def test_never_reach_the_ring_or_the_dump(self, rec: Any, walk: str) -> None:
        flightrec.record("form", **self.TEXTS)
        got = recorded()
        [event] = [e for e in got.events() if e.kind == "form"]
        for name, text in self.TEXTS.items():
            assert event.data[name].startswith(text[:4] + "<SECRET:"), event.data
        assert got.meta["redaction"]["replaced"]["secret"] == len(self.TEXTS)

    def test_short_texts_that_are_no_secret_stay(self, walk: str) -> None:
        r = Redactor(key=b"k" * 32)
        clean = {"a": "pwd=1", "b": "pin:", "c": "x=1", "d": "a@b.c", "e": "pin=", "f": "12:30"}
        assert r.redact(clean) == clean
        assert r.stats()["secret"] == 0


class TestTemplates:
    """A template's stand-in for a credential is kept readable; a credential quoted with backticks is not."""

    CODE = "fetch(url, {headers: {Authorization: `Bearer ${token}`}})"
    CONFIG = '{"Authorization": "Bearer {{access_token}}"}\nAuthorization: Bearer <token>'
    REAL = "headers: {Authorization: `Bearer s3cr3t-t0ken-value`}"

    def test_placeholders_stay_and_the_credential_goes(self, rec: Any, walk: str) -> None:
        flightrec.record("tool_result", code=self.CODE, config=self.CONFIG, real=self.REAL)
        got = recorded()
        [event] = [e for e in got.events() if e.kind == "tool_result"]
        assert (event.data["code"], event.data["config"]) == (self.CODE, self.CONFIG)
        assert event.data["real"].startswith("headers: {Authorization: `Bearer <AUTH_HEADER:")
        assert got.meta["redaction"]["replaced"]["auth_header"] == 1
        assert b"s3cr3t-t0ken-value" not in _decompressed(got.path) + _decompressed(Path(rec.ring_path))


class TestInternationalAddresses:
    """E-mail addresses with letters of other scripts (RFC 6531) never reach the ring or a dump."""

    ADDRESSES = ("josé@exämple.de", "用户@例子.广告", "kunde@bücher.example", "иван@почта.рф")

    def test_never_reach_the_ring_or_the_dump(self, rec: Any, walk: str) -> None:
        flightrec.record("note", **{f"a{i}": f"write to {a} today" for i, a in enumerate(self.ADDRESSES)})
        flightrec.checkpoint({"messages": [{"role": "user", "content": " ".join(self.ADDRESSES)}]}, label="t")
        got = recorded()
        [event] = [e for e in got.events() if e.kind == "note"]
        assert all(v.startswith("write to <EMAIL:") and v.endswith("> today") for v in event.data.values())
        assert got.meta["redaction"]["replaced"]["email"] >= 2 * len(self.ADDRESSES)
        blob = _decompressed(got.path) + _decompressed(Path(rec.ring_path))
        for address in self.ADDRESSES:
            for part in (address, address.split("@")[0], address.split("@")[1]):
                assert part.encode() not in blob, part


class TestNoBreakSpaces:
    """Phone numbers grouped by no-break spaces are replaced; amounts grouped the same way are kept."""

    PHONES = ("06\u00a012\u00a034\u00a056\u00a078", "+33\u202f6\u202f12\u202f34\u202f56\u202f78")
    AMOUNT = "solde : +1\u00a0234\u00a0567,89\u00a0€ (1\u202f234\u202f567,89 €)"

    def test_phones_never_reach_the_ring_or_the_dump(self, rec: Any, walk: str) -> None:
        flightrec.record("note", home=f"appelez le {self.PHONES[0]}", mobile=self.PHONES[1], amount=self.AMOUNT)
        got = recorded()
        [event] = [e for e in got.events() if e.kind == "note"]
        assert event.data["home"].startswith("appelez le <PHONE:") and event.data["mobile"].startswith("<PHONE:")
        assert event.data["amount"] == self.AMOUNT
        blob = _decompressed(got.path) + _decompressed(Path(rec.ring_path))
        for phone in self.PHONES:
            assert phone.encode() not in blob and phone[-8:].encode() not in blob, phone


class TestFullWidthAndNoBreakGroups:
    """Phones and cards in full-width digits (CJK text) or grouped by no-break spaces are replaced
    in events and LLM calls; full-width amounts, dates and times around them are kept."""

    PHONE = "＋４９ ３０ １２３４５６７８"
    CARD = "４１１１ １１１１ １１１１ １１１１"
    US_PHONE = "(415)\u00a0555\u00a02671"
    NBSP_CARD = "4111\u00a01111\u00a01111\u00a01111"
    PROSE = "合計 ４５，０００円（税込）、２０２６年１１月２７日 １２：３４：５６"

    def test_never_reach_the_ring_or_the_dump(self, rec: Any, walk: str) -> None:
        flightrec.record("note", phone=f"call me at {self.PHONE} today", card=f"カード {self.CARD}", prose=self.PROSE)
        flightrec.llm(
            model="m",
            request={"messages": [{"role": "user", "content": f"call {self.US_PHONE} now, card {self.NBSP_CARD} ok"}]},
            response=f"{self.PROSE}。電話 {self.PHONE}",
        )
        got = recorded()
        [note] = [e for e in got.events() if e.kind == "note"]
        assert note.data["phone"].startswith("call me at <PHONE:") and note.data["phone"].endswith("> today")
        assert note.data["card"].startswith("カード <CARD:") and note.data["prose"] == self.PROSE
        [llm] = [e for e in got.events() if e.kind == "llm"]
        content = llm.data["request"]["messages"][0]["content"]
        assert content.startswith("call <PHONE:") and " now, card <CARD:" in content and content.endswith("> ok")
        assert llm.data["response"].startswith(self.PROSE + "。電話 <PHONE:")
        blob = _decompressed(got.path) + _decompressed(Path(rec.ring_path))
        for value in (self.PHONE, self.CARD, self.US_PHONE, self.NBSP_CARD):
            assert value.encode() not in blob and value[-6:].encode() not in blob, value


class TestDollarAndBlankSeparatedValues:
    """A secret that starts with '$', or is quoted after a secret name and a blank with no ':' or
    '=', never reaches the ring or a dump; variables and quoted words stay readable."""

    SECRETS = ("$ecret99", "$ecretTok", "$unshine")
    KEPT = 'token=$token; api_key=$apiKey; PASSWORD=$DB_PASSWORD; grep -rn token "./src"; the token "object"'

    def test_never_reach_the_ring_or_the_dump(self, rec: Any, walk: str) -> None:
        flightrec.record(
            "tool_call", cmd="mysql --password '$ecret99' -e 'SELECT 1'", note='token "$ecretTok"', kept=self.KEPT
        )
        flightrec.llm(model="m", request={"prompt": 'my password: "$unshine"'}, response="ok")
        got = recorded()
        [call] = [e for e in got.events() if e.kind == "tool_call"]
        assert call.data["cmd"].startswith("mysql --password '<SECRET:") and call.data["kept"] == self.KEPT
        assert call.data["note"].startswith('token "<SECRET:')
        blob = _decompressed(got.path) + _decompressed(Path(rec.ring_path))
        for secret in self.SECRETS:
            assert secret.encode() not in blob, secret
