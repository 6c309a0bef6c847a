"""No unredacted byte anywhere: planted secrets through every public call, searched in raw bytes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from flightrec import format as fmt
from flightrec.reader import open_recording

from .conftest import child_env

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
