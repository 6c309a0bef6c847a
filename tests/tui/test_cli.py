"""``flightrec open / attach / tui``: wrong input gives one clear line and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from flightrec import format as fmt
from tests.conftest import run_cli


def assert_one_line_error(result: object, *needles: str) -> None:
    """Exit non-zero, one line on stderr naming the problem, and no traceback."""
    assert result.returncode != 0  # type: ignore[attr-defined]
    err = result.stderr.strip()  # type: ignore[attr-defined]
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("flightrec: error: ")
    for needle in needles:
        assert needle in err


class TestOpen:
    def test_missing_file(self, tmp_path: Path) -> None:
        """A path that does not exist."""
        assert_one_line_error(run_cli("open", str(tmp_path / "nope.frec")), "no such file")

    def test_directory(self, tmp_path: Path) -> None:
        """A directory is not a recording."""
        assert_one_line_error(run_cli("open", str(tmp_path)), "is a directory")

    def test_foreign_file(self, tmp_path: Path) -> None:
        """A file that is not ours."""
        p = tmp_path / "notes.txt"
        p.write_text("hello, this is not a recording\n")
        assert_one_line_error(run_cli("open", str(p)), "not a flightrec recording")

    def test_newer_version(self, tmp_path: Path) -> None:
        """A dump from a newer format version asks for an upgrade."""
        p = tmp_path / "future.frec"
        p.write_bytes(fmt.DUMP_PREAMBLE.pack(fmt.DUMP_MAGIC, fmt.FORMAT_VERSION + 1, 0, 0, 0) + b"\0" * 64)
        assert_one_line_error(run_cli("open", str(p)), "upgrade flightrec")

    def test_no_terminal(self, rich_dump: Path) -> None:
        """A valid dump but no terminal (stdout is a pipe) says what to use instead."""
        assert_one_line_error(run_cli("open", str(rich_dump)), "needs a terminal")


class TestAttach:
    def test_unknown_pid(self, frdir: Path) -> None:
        """A pid with no recorder."""
        assert_one_line_error(run_cli("attach", "999999", "--dir", str(frdir)), "no flightrec recorder found")

    def test_nothing_running(self, frdir: Path) -> None:
        """No pid and no live recorder."""
        assert_one_line_error(run_cli("attach", "--dir", str(frdir)), "no running flightrec recorder")

    def test_missing_ring_file(self, tmp_path: Path) -> None:
        """A path that is neither a pid nor a file."""
        assert_one_line_error(run_cli("attach", str(tmp_path / "x.ring")), "no such pid or ring file")

    def test_a_dump_is_not_attachable(self, rich_dump: Path) -> None:
        """Attaching to a dump points at `flightrec open`."""
        assert_one_line_error(run_cli("attach", str(rich_dump)), "flightrec open")


class TestTui:
    def test_no_terminal(self, frdir: Path) -> None:
        """The start screen needs a terminal too."""
        assert_one_line_error(run_cli("tui", "--dir", str(frdir)), "needs a terminal")


def test_agent_side_never_imports_textual() -> None:
    """`import flightrec` (and the CLI's parser) load no TUI code."""
    import subprocess
    import sys

    code = (
        "import sys, flightrec, flightrec.cli.main as m; m.build_parser(); "
        "print(any(k == 'textual' or k.startswith('textual.') for k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("verb", ["open", "attach", "tui"])
def test_help(verb: str) -> None:
    """Each verb documents itself."""
    result = run_cli(verb, "--help")
    assert result.returncode == 0
    assert "usage: flightrec" in result.stdout
