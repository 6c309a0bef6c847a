"""`flightrec scrub`: a dump rewritten with the current rules, the original untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

import flightrec

from .conftest import run_cli


class TestScrub:
    def test_scrub_redacts_an_unredacted_dump_and_drops_kinds_and_fields(self, frdir: Path) -> None:
        """A dump recorded with redaction off comes out redacted, without the dropped kinds and fields."""
        flightrec.start(dir=frdir, triggers=False, resources=0, redact=False)
        for i in range(50):
            flightrec.record("tool_call", tool="mail", args={"to": "alice@example.com"}, internal="x", i=i)
            flightrec.record("token", text="streamed")
        src = flightrec.dump()
        flightrec.stop()
        assert src is not None
        assert b"alice@example.com" in _raw_events(src)
        out = frdir / "clean.frec"
        result = run_cli("scrub", str(src), "-o", str(out), "--drop-kind", "token", "--drop-field", "internal")
        assert result.returncode == 0, result.stderr
        assert "50 events kept, 50 dropped" in result.stdout
        rec = flightrec.load(out)
        events = list(rec.events())
        assert {e.kind for e in events} == {"tool_call"}
        assert all("internal" not in e.data for e in events)
        assert all(e.data["args"]["to"].startswith("<EMAIL:") for e in events)
        assert b"alice@example.com" not in _raw_events(out)
        assert rec.meta["scrubbed"]["replaced"]["email"] == 50
        assert b"alice@example.com" in _raw_events(src), "the original is not modified"

    def test_scrub_refuses_to_overwrite_its_input(self, frdir: Path) -> None:
        """Scrubbing onto the input path is refused with one line."""
        flightrec.start(dir=frdir, triggers=False, resources=0)
        flightrec.record("note", x=1)
        src = flightrec.dump()
        assert src is not None
        result = run_cli("scrub", str(src), "-o", str(src))
        assert result.returncode != 0 and "different" in result.stderr and "Traceback" not in result.stderr

    @pytest.mark.parametrize("rules", ["", ",", " ", " , "])
    def test_rules_that_name_no_rule_are_refused(self, frdir: Path, rules: str) -> None:
        """`--rules ' '` ran no rule at all (the e-mail kept) while `--rules ''` ran every rule:
        a --rules naming no rule is a usage error, and nothing is written."""
        flightrec.start(dir=frdir, triggers=False, resources=0, redact=False)
        flightrec.record("note", to="alice@example.com")
        src = flightrec.dump()
        flightrec.stop()
        assert src is not None
        out = frdir / "clean.frec"
        result = run_cli("scrub", str(src), "--rules", rules, "-o", str(out))
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == (
            f"flightrec: error: --rules {rules!r}: names no rule (leave --rules out to run every rule)\n"
        )
        assert not out.exists()


def _raw_events(path: Path) -> bytes:
    """Every block's decompressed bytes, concatenated."""
    from flightrec import format as fmt

    rec = flightrec.load(path)
    return b"".join(fmt.decode_block_payload(b.header, rec._buf, b.offset) or b"" for b in rec.blocks)
