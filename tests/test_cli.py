"""The CLI as a user runs it: `python -m flightrec ...` in a real subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import flightrec

from .conftest import REPO, child_env, run_child, run_cli, wait_ready


@pytest.fixture
def crash_dump(frdir: Path) -> Path:
    """A dump written by a child process that crashed."""
    result = run_child(
        """
        import flightrec.auto, flightrec
        for i in range(20):
            flightrec.record("note", i=i)
            flightrec.record("tool_call", tool="search", args={"q": i})
        raise RuntimeError("agent gave up")
        """,
        frdir,
    )
    assert result.returncode == 1
    [dump] = frdir.glob("*.frec")
    return dump


class TestShow:
    def test_summary_names_the_error_and_counts(self, crash_dump: Path) -> None:
        """`show` prints the trigger, the exception and counts by kind."""
        result = run_cli("show", str(crash_dump))
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "RuntimeError: agent gave up" in out
        assert "note 20" in out and "tool_call 20" in out
        assert "trigger   exception" in out

    def test_summary_says_what_redaction_replaced(self, frdir: Path) -> None:
        """`show` prints the header's redaction counts: rules that replaced something, by name."""
        result = run_child(
            """
            import flightrec.auto, flightrec
            flightrec.record("note", to="jane@example.com", cc="joe@example.org", password="hunter2")
            raise RuntimeError("agent gave up")
            """,
            frdir,
        )
        assert result.returncode == 1
        [dump] = frdir.glob("*.frec")
        out = run_cli("show", str(dump)).stdout
        assert "  redaction email 2, secret 1 replaced" in out

    def test_json_streams_one_event_per_line(self, crash_dump: Path) -> None:
        """`show --json` writes every event as a JSON object per line, in order."""
        result = run_cli("show", "--json", str(crash_dump))
        assert result.returncode == 0, result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
        assert rows[0]["kind"] == "note" and rows[0]["data"] == {"i": 0}
        assert rows[-1]["kind"] == "error"

    def test_json_kind_filter(self, crash_dump: Path) -> None:
        """`--kind` keeps only the named kinds."""
        result = run_cli("show", "--json", "--kind", "tool_call", str(crash_dump))
        kinds = {json.loads(line)["kind"] for line in result.stdout.splitlines()}
        assert kinds == {"tool_call"}

    def test_summary_never_writes_control_or_bidi_characters(self, frdir: Path) -> None:
        """Text from the recording (kinds, the exception, a finding's tool name and error) cannot
        drive the terminal: escape sequences, carriage returns and bidi controls are shown escaped."""
        result = run_child(
            """
            import flightrec.auto, flightrec

            @flightrec.tool(name="search\\x1b[8m")
            def search(q):
                raise ValueError("bad \\x1b]52;c;cHduZWQ=\\x07 \\u202eevil")

            flightrec.record("kind\\x1b[2J", text="x")
            try:
                search("q")
            except ValueError:
                pass
            raise RuntimeError("fatal \\x1b[2J\\x1b[H\\rfake\\x9b31m")
            """,
            frdir,
        )
        assert result.returncode == 1, result.stderr
        [dump] = frdir.glob("*.frec")
        out = run_cli("show", str(dump)).stdout
        assert [c for c in out if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 or c == "\u202e"] == []
        assert "by kind   " in out and "kind\\x1b[2J 1" in out
        assert "RuntimeError: fatal \\x1b[2J\\x1b[H\\x0dfake\\x9b31m" in out
        assert "tool 'search\\x1b[8m' failed (invocation): ValueError: bad \\x1b]52;c;cHduZWQ=\\x07 \\u202eevil" in out


class TestErrors:
    @pytest.mark.parametrize("make", ["missing", "directory", "empty", "text", "newer"])
    def test_bad_input_is_one_line_and_non_zero(self, make: str, tmp_path: Path, crash_dump: Path) -> None:
        """Wrong input gives one clear line on stderr, a non-zero exit, and no traceback."""
        target = tmp_path / "target.frec"
        if make == "directory":
            target = tmp_path
        elif make == "empty":
            target.write_bytes(b"")
        elif make == "text":
            target.write_text("just some text\n")
        elif make == "newer":
            data = bytearray(crash_dump.read_bytes())
            data[8] = 99
            target.write_bytes(bytes(data))
        result = run_cli("show", str(target))
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("flightrec: error: ")
        assert result.stderr.count("\n") == 1

    @pytest.mark.parametrize(
        ("args", "says"),
        [
            (["show", ""], "the path is empty: give a dump or ring file"),
            (["export", ""], "the path is empty: give a dump or ring file"),
            (["scrub", ""], "the path is empty: give a dump or ring file"),
            (["open", ""], "the path is empty: give a dump or ring file (`flightrec ls` lists the dumps)"),
            (["recover", ""], "the path is empty: give a ring file"),
            (["attach", ""], "the path is empty: give a pid or a ring file"),
        ],
        ids=["show", "export", "scrub", "open", "recover", "attach"],
    )
    def test_an_empty_path_is_not_found_as_show_says(self, args: list[str], says: str) -> None:
        """`VERB ''`: the line `show` gives (exit 5), not a traceback (scrub), not '.: is a
        directory' (recover, attach: Path('') is '.'), not exit 1 (open)."""
        result = run_cli(*args)
        assert (result.returncode, result.stderr) == (5, f"flightrec: error: {says}\n")

    @pytest.mark.parametrize("where", ["/", ".", ".."])
    def test_scrub_of_a_directory_without_a_name_is_one_line(self, where: str, tmp_path: Path) -> None:
        """`scrub /` (no file name to derive FILE.scrubbed.frec from) says it is a directory."""
        result = subprocess.run(
            [sys.executable, "-m", "flightrec", "scrub", where],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (result.returncode, result.stderr) == (
            2,
            f"flightrec: error: {where}: is a directory, not a flightrec recording\n",
        )

    @pytest.mark.parametrize("verb", ["show", "run", "export"])
    def test_an_unknown_option_shows_the_commands_usage(self, verb: str) -> None:
        """`flightrec VERB --bogus ...`: the error and the usage are the command's, not the top level's."""
        result = run_cli(verb, "--bogus", "x")
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.startswith(f"usage: flightrec {verb} ")
        assert result.stderr.endswith(f"flightrec {verb}: error: unrecognized arguments: --bogus\n")

    def test_an_error_line_cannot_drive_the_terminal(self, tmp_path: Path) -> None:
        """A file name quoted in an error is shown with its control characters escaped."""
        result = run_cli("show", str(tmp_path / "x\x1b[2J\r.frec"))
        assert (result.returncode, result.stderr) == (
            5,
            f"flightrec: error: {tmp_path}/x\\x1b[2J\\x0d.frec: no such file\n",
        )

    def test_recovering_a_dump_says_it_is_one(self, crash_dump: Path) -> None:
        """`recover x.frec` (a dump, not a ring) is a wrong argument that says what the file is
        and what reads it, and leaves the file alone."""
        before = crash_dump.read_bytes()
        result = run_cli("recover", str(crash_dump))
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == (
            f"flightrec: error: {crash_dump} is a dump already, not a ring file: nothing to recover "
            f"(`flightrec show {crash_dump}` reads it)\n"
        )
        assert crash_dump.read_bytes() == before

    @pytest.mark.parametrize(
        "args", [["show", "DUMP"], ["show", "--json", "DUMP"], ["export", "-f", "chrome", "DUMP"], ["open", "DUMP"]]
    )
    def test_closed_standard_output_is_one_line(self, args: list[str], crash_dump: Path) -> None:
        """Started with standard output closed (`flightrec show x >&-`): one error line, exit 1
        (9 for export, whose output could not be written)."""
        argv = [str(crash_dump) if a == "DUMP" else a for a in args]
        result = subprocess.run(
            [sys.executable, "-m", "flightrec", *argv],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            preexec_fn=lambda: os.close(1),
        )
        assert result.returncode == (9 if args[0] == "export" else 1), result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("flightrec: error: "), result.stderr

    def test_run_with_closed_standard_output_passes_the_exit_code(self, frdir: Path, tmp_path: Path) -> None:
        """`flightrec run` with standard output closed runs the program as python would (its
        prints go nowhere) and passes its exit code through."""
        script = tmp_path / "prints.py"
        script.write_text("import sys\nprint('hello')\nsys.exit(3)\n")
        result = subprocess.run(
            [sys.executable, "-m", "flightrec", "run", str(script)],
            env=child_env(frdir, FLIGHTREC_INTEGRATIONS="none"),
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            preexec_fn=lambda: os.close(1),
        )
        assert (result.returncode, result.stderr) == (3, "")

    @pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
    @pytest.mark.parametrize("args", [("show",), ("show", "--json"), ("ls",)])
    def test_a_full_disk_on_standard_output_is_one_line(self, args: tuple[str, ...], crash_dump: Path) -> None:
        """`flightrec show x > /dev/full`: one error line and a non-zero exit, not a traceback."""
        import subprocess
        import sys

        from .conftest import REPO

        cmd = [sys.executable, "-m", "flightrec", *args]
        if args[0] == "show":
            cmd.append(str(crash_dump))
        else:
            cmd += ["--dir", str(crash_dump.parent)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open("/dev/full", "w") as full:
            result = subprocess.run(cmd, env=env, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert result.stderr == "flightrec: error: cannot write to standard output: No space left on device\n"

    def test_unknown_verb_and_flag(self) -> None:
        """argparse errors exit 2 with usage, not a traceback."""
        result = run_cli("frobnicate")
        assert result.returncode == 2 and "Traceback" not in result.stderr
        result = run_cli("show", "--nope", "x")
        assert result.returncode == 2 and "Traceback" not in result.stderr


class TestLs:
    def test_lists_live_recorders_and_dumps(self, frdir: Path, crash_dump: Path) -> None:
        """`ls` shows a running recorder's pid and command, and the dumps."""
        from .conftest import spawn_child

        child = spawn_child(
            """
            import flightrec, time
            flightrec.start()
            print("ready", flush=True)
            time.sleep(30)
            """,
            frdir,
        )
        try:
            wait_ready(child)
            result = run_cli("ls", env=child_env(frdir))
            assert result.returncode == 0, result.stderr
            assert str(child.pid) in result.stdout and "live" in result.stdout
            assert crash_dump.name in result.stdout
        finally:
            child.kill()
            child.wait()

    def test_an_unrelated_bad_variable_does_not_hide_flightrec_dir(self, frdir: Path, crash_dump: Path) -> None:
        """FLIGHTREC_DIR is read alone: with a typo in FLIGHTREC_SAMPLING (or any other variable)
        ls still looks there (it fell back to the default directories, without a word)."""
        result = run_cli("ls", env=child_env(frdir, FLIGHTREC_SAMPLING="token=bogus"))
        assert result.returncode == 0, result.stderr
        assert str(crash_dump) in result.stdout

    def test_a_kept_ring_says_recover_makes_it_a_dump(self, frdir: Path) -> None:
        """A ring its process closed and kept (a failed dump, FLIGHTREC_KEEP_RING) is listed with
        what to do with it, as a dead process's ring is: recover turns either into a dump."""
        result = run_child(
            """
            import flightrec
            flightrec.start(keep_ring=True)
            flightrec.record("note", text="kept")
            """,
            frdir,
        )
        assert result.returncode == 0, result.stderr
        [ring] = frdir.glob("*.ring")
        listed = run_cli("ls", "--dir", str(frdir))
        assert listed.returncode == 0, listed.stderr
        [line] = [row for row in listed.stdout.splitlines() if row.strip().startswith(ring.name.split("-")[0])]
        assert "closed: run `flightrec recover`" in line
        recovered = run_cli("recover", "--dir", str(frdir), "-o", str(frdir))
        assert recovered.returncode == 0 and not ring.exists(), recovered.stderr
        assert len(list(frdir.glob("*.frec"))) == 1

    def test_a_command_line_or_file_name_cannot_drive_the_terminal(self, frdir: Path) -> None:
        """A recorded argv (read from the ring header) and a dump's file name are shown with
        their escape sequences escaped, as `show` shows them: not sent to the terminal."""
        result = run_child(
            """
            import sys, flightrec
            sys.argv = ["agent.py", "\x1b]0;retitled\x07\x1b[2J"]
            flightrec.start(keep_ring=True)
            flightrec.record("note", text="kept")
            """,
            frdir,
        )
        assert result.returncode == 0, result.stderr
        (frdir / "d\x1b[2Jx.frec").write_bytes(b"")
        listed = run_cli("ls", "--dir", str(frdir))
        assert listed.returncode == 0, listed.stderr
        out = listed.stdout
        assert [c for c in out if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0] == []
        assert "agent.py \\x1b]0;retitled\\x07\\x1b[2J" in out
        assert f"{frdir}/d\\x1b[2Jx.frec" in out


class TestDemo:
    def test_dir_is_used_as_it_is_and_made_private_only_when_new(self, tmp_path: Path) -> None:
        """`demo --dir D` leaves an existing D's permissions alone; a new D is made 0700."""
        env = {**child_env(tmp_path), "FLIGHTREC_INTEGRATIONS": "none"}
        shared = tmp_path / "shared"
        shared.mkdir()
        shared.chmod(0o755)  # the user's own directory, readable by others: usable as it is
        result = run_cli("demo", "--dir", str(shared), "--no-tui", env=env)
        assert result.returncode == 0, result.stderr
        assert len(list(shared.glob("demo-*-exception.frec"))) == 1
        assert stat.S_IMODE(shared.stat().st_mode) == 0o755
        fresh = tmp_path / "new" / "demo"
        result = run_cli("demo", "--dir", str(fresh), "--no-tui", env=env)
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o700

    def test_an_empty_dir_is_refused_not_a_temporary_one(self, tmp_path: Path) -> None:
        """demo --dir '' is a usage error, as for ls and recover: not the no-`--dir` default."""
        result = run_cli("demo", "--dir", "", "--no-tui")
        assert (result.returncode, result.stdout, result.stderr) == (2, "", "flightrec: error: --dir: empty path\n")

    def test_dir_that_is_a_file_or_unsafe_is_one_line(self, tmp_path: Path) -> None:
        """`demo --dir` naming a file is a usage error (2); one writable by others is refused (8)."""
        env = {**child_env(tmp_path), "FLIGHTREC_INTEGRATIONS": "none"}
        afile = tmp_path / "afile"
        afile.write_text("")
        result = run_cli("demo", "--dir", str(afile), "--no-tui", env=env)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == f"flightrec: error: --dir {afile}: not a directory\n"
        open_dir = tmp_path / "open"
        open_dir.mkdir()
        open_dir.chmod(0o777)
        result = run_cli("demo", "--dir", str(open_dir), "--no-tui", env=env)
        assert (result.returncode, result.stdout) == (8, "")
        assert result.stderr == (
            f"flightrec: error: {open_dir} is writable by other users; refusing to use it (chmod 700 it)\n"
        )
        assert stat.S_IMODE(open_dir.stat().st_mode) == 0o777 and list(open_dir.iterdir()) == []


class TestFilesAreprivate:
    def test_ring_and_dump_permissions(self, frdir: Path) -> None:
        """Ring and dump files are 0600, their directory 0700."""
        rec = flightrec.start(dir=frdir / "sub", triggers=False, resources=0)
        assert rec is not None
        path = flightrec.dump()
        assert path is not None
        for p in (rec.ring_path, path):
            assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(frdir / "sub").st_mode) == 0o700

    def test_directory_writable_by_others_is_refused(self, tmp_path: Path) -> None:
        """A world-writable ring directory is refused; the recorder falls back to the default one."""
        bad = tmp_path / "shared"
        bad.mkdir()
        os.chmod(bad, 0o777)
        rec = flightrec.start(dir=bad, triggers=False, resources=0)
        assert rec is not None
        assert bad not in rec.ring_path.parents
