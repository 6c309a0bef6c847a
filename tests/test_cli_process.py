"""The process-facing verbs (ls, recover, dump PID, attach, run) on bad input: damaged ring
files, a --dir that is missing or a file, programs that do not exist, a dump request that is
not answered. Real ring files left by kill -9, real child processes, the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import flightrec
from flightrec.cli.dump_cmd import request_dump
from flightrec.format import RingField
from flightrec.paths import pid_alive

from .conftest import REPO, child_env, run_child, run_cli, spawn_child, wait_ready

U64 = struct.Struct("<Q")

RECORDING_CHILD = """
import flightrec, time
flightrec.start(size="1MiB", triggers=False)
for i in range(50):
    flightrec.record("note", i=i)
print("ready", flush=True)
time.sleep(60)
"""


def _one_error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """Assert the CLI failed with ``code`` and exactly one ``flightrec: error:`` line; return it."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("flightrec: error: "), result.stderr
    return lines[0]


def _without_root_powers() -> list[str]:
    """A command prefix under which file permissions apply: root reads a 0000 directory, so
    root's run drops the capabilities that let it (setpriv, util-linux)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be denied")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]


def _header(ring: Path, field: int) -> int:
    with open(ring, "rb") as f:
        f.seek(field)
        return int(U64.unpack(f.read(8))[0])


def _set_header(ring: Path, field: int, value: int) -> None:
    with open(ring, "r+b") as f:
        f.seek(field)
        f.write(U64.pack(value))


def _scramble(src: Path, dst: Path) -> Path:
    """The reviewer's damage: every 13th byte of the header page from byte 9 flipped (magic kept)."""
    b = bytearray(src.read_bytes())
    for i in range(9, 4096, 13):
        b[i] ^= 0x55
    dst.write_bytes(bytes(b))
    return dst


@pytest.fixture
def dead_ring(tmp_path: Path) -> Path:
    """A ring file left by a recorder killed with -9 (50 note events), in its own directory."""
    d = tmp_path / "killed"
    d.mkdir(mode=0o700)
    child = spawn_child(RECORDING_CHILD, d)
    wait_ready(child)
    child.send_signal(signal.SIGKILL)
    child.wait()
    [ring] = d.glob("*.ring")
    return ring


@pytest.fixture
def live_child(frdir: Path) -> Iterator[subprocess.Popen[str]]:
    """A running recorder (50 events) writing its ring and dumps into ``frdir``."""
    child = spawn_child(RECORDING_CHILD, frdir)
    try:
        wait_ready(child)
        yield child
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
        child.wait()


class TestPidAlive:
    @pytest.mark.parametrize("pid", [0, -1, 2**31, 2**63 + 5, 2**64 - 1])
    def test_values_that_cannot_be_pids_are_not_alive(self, pid: int) -> None:
        """A pid read from a damaged header never raises (it used to: OverflowError from os.kill)."""
        assert pid_alive(pid) is False

    def test_this_process_is_alive(self) -> None:
        assert pid_alive(os.getpid()) is True

    @pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
    def test_a_killed_recorder_not_yet_reaped_is_dead_and_recoverable(self, frdir: Path) -> None:
        """A zombie (killed, its parent has not waited yet) runs no code: `recover` takes its ring
        instead of calling it still running, and `dump PID` does not wait for an answer."""
        child = spawn_child(RECORDING_CHILD, frdir)
        try:
            wait_ready(child)
            child.send_signal(signal.SIGKILL)
            deadline = time.monotonic() + 10
            while Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert pid_alive(child.pid) is False
            result = run_cli("recover", "--dir", str(frdir), "-o", str(frdir), env=child_env(frdir))
            assert result.returncode == 0, result.stderr
            assert "recovered" in result.stdout and len(list(frdir.glob("*.frec"))) == 1
        finally:
            child.kill()
            child.wait()


class TestFatalError:
    def test_a_segfault_is_recovered_with_its_fatal_log_and_show_prints_it(self, frdir: Path) -> None:
        """A segfault leaves the ring and faulthandler's log; recover puts the log in the dump, and
        show prints the error and the crashed thread's stack (it printed neither)."""
        proc = run_child(
            """
            import ctypes, flightrec.auto, flightrec
            flightrec.record("note", text="about to crash")
            ctypes.string_at(0)  # a segfault: no Python exception, no dump; only the ring stays
            """,
            frdir,
        )
        assert proc.returncode == -signal.SIGSEGV, proc.stderr
        [fatal] = frdir.glob("*.fatal")
        assert fatal.with_suffix(".ring").exists()
        result = run_cli("recover", "--dir", str(frdir), "-o", str(frdir), env=child_env(frdir))
        assert result.returncode == 0, result.stderr
        [dump] = frdir.glob("*.frec")
        assert not fatal.exists()
        with flightrec.load(dump) as rec:
            assert "Segmentation fault" in rec.meta["fatal_error"]
            assert [e.data["text"] for e in rec.events(["note"])] == ["about to crash"]
        shown = run_cli("show", str(dump), env=child_env(frdir))
        assert shown.returncode == 0, shown.stderr
        assert "  fatal     Fatal Python error: Segmentation fault" in shown.stdout, shown.stdout
        stack = shown.stdout.split("  fatal     ", 1)[1].splitlines()[1:]
        assert stack[0].strip().startswith("Current thread"), shown.stdout
        assert any('File "<string>", line 4 in <module>' in line for line in stack), shown.stdout


class TestDamagedRing:
    def test_ls_lists_a_damaged_ring_and_the_sound_one(self, frdir: Path, dead_ring: Path) -> None:
        """One scrambled ring in the directory: ls says it is damaged and still lists the other."""
        good = Path(shutil.copy(dead_ring, frdir / "good.ring"))
        bad = _scramble(dead_ring, frdir / "x.ring")
        result = run_cli("ls", "--dir", str(frdir))
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert str(good) in result.stdout and "dead: run `flightrec recover`" in result.stdout
        assert str(bad) in result.stdout and "damaged" in result.stdout
        assert f"damaged header (format version {_header(bad, RingField.VERSION) & 0xFFFF}" in result.stdout

    def test_recover_recovers_the_sound_ring_and_reports_the_damaged_one(
        self, frdir: Path, tmp_path: Path, dead_ring: Path
    ) -> None:
        """recover over the directory: the sound ring becomes a dump, the scrambled one is one
        error line (corrupt, exit 4) and is left in place."""
        shutil.copy(dead_ring, frdir / "good.ring")
        bad = _scramble(dead_ring, frdir / "x.ring")
        out = tmp_path / "out"
        out.mkdir(mode=0o700)
        result = run_cli("recover", "--dir", str(frdir), "-o", str(out))
        assert result.returncode == 4, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.splitlines() == [
            f"flightrec: error: could not recover {bad}: damaged ring header "
            f"(format version {_header(bad, RingField.VERSION) & 0xFFFF}, pid {_header(bad, RingField.PID)}, "
            "metadata fails its checksum); nothing could be salvaged"
        ]
        [dump] = out.glob("*.frec")
        assert [e.data["i"] for e in flightrec.load(dump).events()] == list(range(50))
        assert bad.exists()

    def test_recover_of_the_damaged_file_is_one_line(self, frdir: Path, tmp_path: Path, dead_ring: Path) -> None:
        bad = _scramble(dead_ring, frdir / "x.ring")
        line = _one_error_line(run_cli("recover", str(bad), "-o", str(tmp_path / "out")), 4)
        assert "damaged ring header" in line

    def test_a_ring_with_nothing_to_salvage_is_named_once(self, tmp_path: Path, dead_ring: Path) -> None:
        """A ring cut after its header page: 'could not recover X: damaged, ...', not 'X: X: damaged'."""
        cut = tmp_path / "cut.ring"
        cut.write_bytes(dead_ring.read_bytes()[:5000])
        line = _one_error_line(run_cli("recover", str(cut), "-o", str(tmp_path / "out")), 4)
        assert line == f"flightrec: error: could not recover {cut}: damaged, and nothing could be salvaged"
        assert cut.exists()

    def test_recover_salvages_a_ring_whose_pid_and_start_time_are_garbage(
        self, frdir: Path, tmp_path: Path, dead_ring: Path
    ) -> None:
        """Out-of-range pid and start time (the metadata intact): listed as damaged, and recover
        still gets every event out of it."""
        _set_header(dead_ring, RingField.PID, 2**63 + 5)
        _set_header(dead_ring, RingField.START_NS, 2**64 - 1)
        ls = run_cli("ls", "--dir", str(dead_ring.parent))
        assert ls.returncode == 0 and "Traceback" not in ls.stderr
        assert f"damaged header (pid {2**63 + 5}, start time {2**64 - 1})" in ls.stdout
        out = tmp_path / "out"
        result = run_cli("recover", str(dead_ring), "-o", str(out))
        assert result.returncode == 0, result.stderr
        [dump] = out.glob("*.frec")
        assert [e.data["i"] for e in flightrec.load(dump).events()] == list(range(50))

    def test_dump_and_attach_ignore_a_damaged_ring(self, frdir: Path, dead_ring: Path) -> None:
        """dump PID / attach with a scrambled ring in the directory: not found, not a traceback."""
        _scramble(dead_ring, frdir / "x.ring")
        assert "no flightrec recorder found for pid 5" in _one_error_line(run_cli("dump", "5", "--dir", str(frdir)), 5)
        assert "no running flightrec recorder" in _one_error_line(run_cli("attach", "--dir", str(frdir)), 5)

    def test_dump_pid_still_works_next_to_a_damaged_ring(
        self, frdir: Path, dead_ring: Path, live_child: subprocess.Popen[str]
    ) -> None:
        _scramble(dead_ring, frdir / "x.ring")
        result = run_cli("dump", str(live_child.pid), "--dir", str(frdir), env=child_env(frdir))
        assert result.returncode == 0, result.stderr
        assert flightrec.load(result.stdout.strip()).meta["trigger"]["reason"] == "request"


class TestCountersOfADeadRing:
    def test_events_the_header_does_not_count_yet_are_counted(self, tmp_path: Path, dead_ring: Path) -> None:
        """The recorder publishes its counters now and then: a process killed before it did
        leaves a header saying 0 recorded next to 50 events. Reading and recovering the ring
        count at least the events there are (the highest seq read)."""
        _set_header(dead_ring, RingField.RECORDED, 0)
        with flightrec.load(dead_ring) as r:
            highest = max(e.seq for e in r.events())
            assert r.counters["recorded"] == highest >= 50
        out = tmp_path / "out"
        assert run_cli("recover", str(dead_ring), "-o", str(out)).returncode == 0
        [dump] = out.glob("*.frec")
        with flightrec.load(dump) as d:
            assert d.counters["recorded"] == highest
        show = run_cli("show", str(dump))
        assert f"recorded {highest}" in show.stdout, show.stdout

    def test_a_published_count_above_what_was_read_is_kept(self, dead_ring: Path) -> None:
        """Events overwritten in the ring were still recorded: a larger published count stands."""
        _set_header(dead_ring, RingField.RECORDED, 10_000)
        with flightrec.load(dead_ring) as r:
            assert r.counters["recorded"] == 10_000


class TestRecoverWhereTheProcessDumped:
    """``recover`` without ``-o`` puts a ring's dump where its process wrote its own dumps
    (the ring header says), as the TUI's ctrl+r does; else in this user's dump directory."""

    def _killed(self, tmp_path: Path, dumps: Path) -> Path:
        rings = tmp_path / "rings"
        rings.mkdir(mode=0o700)
        child = spawn_child(RECORDING_CHILD, rings, FLIGHTREC_DUMP_DIR=str(dumps))
        wait_ready(child)
        child.send_signal(signal.SIGKILL)
        child.wait()
        [ring] = rings.glob("*.ring")
        return ring

    def _recover(self, tmp_path: Path, ring: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
        mine = tmp_path / "viewer-dumps"
        env = {**os.environ, "PYTHONPATH": str(REPO), "FLIGHTREC_DUMP_DIR": str(mine)}
        env.pop("FLIGHTREC_DIR", None)
        return run_cli("recover", "--dir", str(ring.parent), env=env), mine

    def test_the_dump_goes_beside_the_process_own_dumps(self, tmp_path: Path) -> None:
        dumps = tmp_path / "agent-dumps"
        dumps.mkdir(mode=0o700)
        ring = self._killed(tmp_path, dumps)
        result, mine = self._recover(tmp_path, ring)
        assert result.returncode == 0, result.stderr
        [dump] = dumps.glob("*.frec")
        assert f"-> {dump}" in result.stdout
        assert not mine.exists()

    def test_a_directory_that_is_gone_is_not_made_again(self, tmp_path: Path) -> None:
        """A path read from a ring file is never created: the dump goes to this user's (stderr says why)."""
        dumps = tmp_path / "agent-dumps"
        dumps.mkdir(mode=0o700)
        ring = self._killed(tmp_path, dumps)
        dumps.rmdir()
        result, mine = self._recover(tmp_path, ring)
        assert result.returncode == 0, result.stderr
        assert not dumps.exists()
        [dump] = mine.glob("*.frec")
        assert f"-> {dump}" in result.stdout
        assert result.stderr == f"flightrec: its dump directory {dumps} is gone; the dump goes to {mine} instead\n"

    def test_a_path_read_from_the_ring_cannot_drive_the_terminal(self, tmp_path: Path) -> None:
        """The note quotes the dump directory the ring header names: its escape sequences are
        shown escaped, as `show` shows the header's text."""
        dumps = tmp_path / "agent\x1b]0;retitled\x07dumps"
        dumps.mkdir(mode=0o700)
        ring = self._killed(tmp_path, dumps)
        dumps.rmdir()
        result, mine = self._recover(tmp_path, ring)
        assert result.returncode == 0, result.stderr
        shown = str(dumps).replace("\x1b", "\\x1b").replace("\x07", "\\x07")
        assert result.stderr == f"flightrec: its dump directory {shown} is gone; the dump goes to {mine} instead\n"

    def test_a_directory_others_can_write_to_is_not_used(self, tmp_path: Path) -> None:
        """The dump goes to this user's dump directory, and stderr says why it is not beside the others."""
        dumps = tmp_path / "agent-dumps"
        dumps.mkdir(mode=0o700)
        ring = self._killed(tmp_path, dumps)
        dumps.chmod(0o777)
        result, mine = self._recover(tmp_path, ring)
        assert result.returncode == 0, result.stderr
        assert list(dumps.iterdir()) == []
        assert len(list(mine.glob("*.frec"))) == 1
        assert result.stderr == (
            f"flightrec: dump directory {dumps} is unusable: {dumps} is writable by other users; refusing to use "
            f"it (chmod 700 it); the dump goes to {mine} instead\n"
        )


class TestRecoverOutDir:
    """``recover -o DIR``: a missing DIR is made (0700) and stderr says so, as ``run --dir``
    and ``demo --dir`` make theirs; a file or an empty path is a usage error, before any
    ring is read."""

    def test_a_missing_directory_is_made_and_said(self, tmp_path: Path, dead_ring: Path) -> None:
        out = tmp_path / "new" / "dumps"
        result = run_cli("recover", str(dead_ring), "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert result.stderr == f"flightrec: made the directory {out}\n"
        [dump] = out.glob("*.frec")
        assert result.stdout == f"recovered {dead_ring} -> {dump}\n"
        assert out.stat().st_mode & 0o777 == 0o700
        assert [e.data["i"] for e in flightrec.load(dump).events()] == list(range(50))

    def test_an_existing_directory_is_not_mentioned(self, tmp_path: Path, dead_ring: Path) -> None:
        out = tmp_path / "dumps"
        out.mkdir(mode=0o700)
        result = run_cli("recover", str(dead_ring), "-o", str(out))
        assert result.returncode == 0 and result.stderr == "", result.stderr

    def test_a_file_is_a_usage_error_and_the_ring_is_kept(self, tmp_path: Path, dead_ring: Path) -> None:
        out = tmp_path / "afile"
        out.write_text("x")
        line = _one_error_line(run_cli("recover", str(dead_ring), "-o", str(out)), 2)
        assert line == f"flightrec: error: -o {out}: not a directory"
        assert dead_ring.exists() and out.read_text() == "x"

    def test_a_directory_others_can_write_to_is_refused_once_before_reading(
        self, tmp_path: Path, dead_ring: Path
    ) -> None:
        """One line, exit 8 (as run --dir and demo --dir), not a failed dump (exit 6) per ring."""
        out = tmp_path / "shared"
        out.mkdir()
        out.chmod(0o777)
        line = _one_error_line(run_cli("recover", str(dead_ring), "-o", str(out)), 8)
        assert line == f"flightrec: error: {out} is writable by other users; refusing to use it (chmod 700 it)"
        assert dead_ring.exists() and list(out.iterdir()) == []

    def test_an_empty_path_is_a_usage_error_not_the_default(self, tmp_path: Path, dead_ring: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "FLIGHTREC_DUMP_DIR": str(tmp_path / "default")}
        line = _one_error_line(run_cli("recover", str(dead_ring), "-o", "", env=env), 2)
        assert line == "flightrec: error: -o: empty path"
        assert dead_ring.exists() and not (tmp_path / "default").exists()


class TestDirArgument:
    @pytest.mark.parametrize(
        "verb",
        [["ls"], ["recover"], ["dump", "5"], ["attach"], ["tui"]],
        ids=["ls", "recover", "dump", "attach", "tui"],
    )
    def test_a_missing_dir_is_not_found(self, verb: list[str], tmp_path: Path) -> None:
        missing = tmp_path / "nonexistent"
        line = _one_error_line(run_cli(*verb, "--dir", str(missing)), 5)
        assert line == f"flightrec: error: --dir {missing}: no such directory"

    @pytest.mark.parametrize(
        "verb",
        [["ls"], ["recover"], ["dump", "5"], ["attach"], ["tui"]],
        ids=["ls", "recover", "dump", "attach", "tui"],
    )
    def test_a_file_as_dir_is_a_usage_error(self, verb: list[str], tmp_path: Path, dead_ring: Path) -> None:
        line = _one_error_line(run_cli(*verb, "--dir", str(dead_ring)), 2)
        assert line == f"flightrec: error: --dir {dead_ring}: not a directory"

    @pytest.mark.parametrize(
        "verb",
        [["ls"], ["recover"], ["dump", "5"], ["attach"], ["tui"]],
        ids=["ls", "recover", "dump", "attach", "tui"],
    )
    def test_a_dir_that_cannot_be_read_is_a_usage_error(self, verb: list[str], tmp_path: Path) -> None:
        """A --dir the user may not list is said to be so, not listed as empty ("(none)", "nothing to recover")."""
        closed = tmp_path / "closed"
        closed.mkdir(mode=0o000)
        try:
            result = subprocess.run(
                [*_without_root_powers(), sys.executable, "-m", "flightrec", *verb, "--dir", str(closed)],
                env={**os.environ, "PYTHONPATH": str(REPO)},
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            closed.chmod(0o700)
        line = _one_error_line(result, 2)
        assert line == f"flightrec: error: --dir {closed}: cannot read it (Permission denied)"

    def test_a_dangling_link_does_not_hide_the_other_dumps(
        self, frdir: Path, live_child: subprocess.Popen[str]
    ) -> None:
        """A `*.frec` symlink to nowhere in the directory is skipped, not the whole directory."""
        result = run_cli("dump", str(live_child.pid), env=child_env(frdir))
        assert result.returncode == 0, result.stderr
        dump = Path(result.stdout.strip())
        # Links until the directory lists one before the dump (the order is the file system's).
        for i in range(1000):
            (frdir / f"l{i}.frec").symlink_to(frdir / "nowhere")
            names = os.listdir(frdir)
            if names.index(f"l{i}.frec") < names.index(dump.name):
                break
        listed = run_cli("ls", "--dir", str(frdir))
        assert listed.returncode == 0, listed.stderr
        assert str(dump) in listed.stdout

    def test_an_empty_dir_lists_nothing(self, tmp_path: Path) -> None:
        """An existing empty directory is fine: (none), exit 0."""
        result = run_cli("ls", "--dir", str(tmp_path))
        assert result.returncode == 0 and result.stdout.count("(none)") == 2


def _run(tmp_path: Path, frdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m flightrec run --dir FRDIR ARGS...` in ``tmp_path``."""
    return subprocess.run(
        [sys.executable, "-m", "flightrec", "run", "--dir", str(frdir), *args],
        env=child_env(frdir, FLIGHTREC_INTEGRATIONS="none"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


class TestRunNotFound:
    def test_missing_module_is_not_found_without_a_dump(self, frdir: Path, tmp_path: Path) -> None:
        line = _one_error_line(_run(tmp_path, frdir, "-m", "nosuchmod_flightrec"), 5)
        assert line == "flightrec: error: -m nosuchmod_flightrec: no module named 'nosuchmod_flightrec'"
        assert not list(frdir.iterdir()), "no dump, and the ring is gone"

    def test_missing_script_is_not_found_the_same_way(self, frdir: Path, tmp_path: Path) -> None:
        assert _one_error_line(_run(tmp_path, frdir, "missing.py"), 5) == "flightrec: error: missing.py: no such file"

    def test_missing_submodule_and_missing_parent(self, frdir: Path, tmp_path: Path) -> None:
        (tmp_path / "pkg").mkdir()
        (tmp_path / "pkg" / "__init__.py").write_text("")
        assert "no module named 'pkg.nope'" in _one_error_line(_run(tmp_path, frdir, "-m", "pkg.nope"), 5)
        assert "no module named 'nopkg'" in _one_error_line(_run(tmp_path, frdir, "-m", "nopkg.sub"), 5)
        assert "without a __main__" in _one_error_line(_run(tmp_path, frdir, "-m", "pkg"), 5)
        assert not list(frdir.glob("*.frec"))

    def test_directory_without_main_is_not_found(self, frdir: Path, tmp_path: Path) -> None:
        (tmp_path / "adir").mkdir()
        assert "without a __main__.py" in _one_error_line(_run(tmp_path, frdir, "adir"), 5)
        assert not list(frdir.glob("*.frec"))

    @pytest.mark.parametrize("name", [".rel", "..x", ""])
    def test_relative_or_empty_module_name_is_a_usage_error(self, name: str, frdir: Path, tmp_path: Path) -> None:
        """It used to write a hidden dump named `.rel-<pid>-...-exception.frec`."""
        (tmp_path / "rel.py").write_text("print('ran')\n")
        result = _run(tmp_path, frdir, "-m", name)
        assert "not an absolute module name" in _one_error_line(result, 2)
        assert result.stdout == ""
        assert not list(frdir.iterdir())

    def test_a_module_that_raises_importerror_is_a_crash_and_dumps(self, frdir: Path, tmp_path: Path) -> None:
        """It exists: its own ImportError (a missing dependency) is the program's crash."""
        (tmp_path / "needsdep.py").write_text("import flightrec_missing_dependency_xyz\n")
        result = _run(tmp_path, frdir, "-m", "needsdep")
        assert result.returncode == 1
        [dump] = frdir.glob("*.frec")
        assert dump.name.startswith("needsdep-")
        assert f"flightrec: dump written to {dump}" in result.stderr
        assert flightrec.load(dump).meta["exception"]["type"].endswith("ModuleNotFoundError")

    def test_a_package_whose_init_raises_is_a_crash_and_dumps(self, frdir: Path, tmp_path: Path) -> None:
        """`-m pkg.mod` imports pkg first, recorded: an error there is the program's."""
        (tmp_path / "brokenpkg").mkdir()
        (tmp_path / "brokenpkg" / "__init__.py").write_text("raise RuntimeError('init failed')\n")
        (tmp_path / "brokenpkg" / "mod.py").write_text("")
        result = _run(tmp_path, frdir, "-m", "brokenpkg.mod")
        assert result.returncode == 1
        assert "RuntimeError: init failed" in result.stderr
        assert len(list(frdir.glob("*.frec"))) == 1

    def test_module_is_looked_for_in_the_current_directory(self, frdir: Path, tmp_path: Path) -> None:
        """As from the `flightrec` console script, whose own sys.path[0] is its bin directory
        (not the current directory, as under `python -m flightrec`): -m finds a module in the
        current directory, like `python -m`."""
        bin_dir, work = tmp_path / "bin", tmp_path / "work"
        bin_dir.mkdir()
        work.mkdir()
        entry = bin_dir / "flightrec_entry.py"
        entry.write_text("import sys\nfrom flightrec.cli.main import main\nsys.exit(main())\n")
        (work / "heremod.py").write_text("print('here')\n")
        result = subprocess.run(
            [sys.executable, str(entry), "run", "--dir", str(frdir), "-m", "heremod"],
            env=child_env(frdir, FLIGHTREC_INTEGRATIONS="none"),
            cwd=work,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == "here\n"

    def test_an_existing_module_still_runs(self, frdir: Path, tmp_path: Path) -> None:
        (tmp_path / "okmod.py").write_text("import sys, json; print(json.dumps(sys.argv[1:]))\n")
        result = _run(tmp_path, frdir, "-m", "okmod", "a", "-m", "b")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == ["a", "-m", "b"]


class TestDumpTimeout:
    @pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-inf", "soon"])
    def test_bad_timeout_is_refused_before_asking(
        self, value: str, frdir: Path, live_child: subprocess.Popen[str]
    ) -> None:
        """argparse refuses it (exit 2); the recorder is never asked, so no dump appears later."""
        [ring] = frdir.glob("*.ring")
        result = run_cli("dump", str(live_child.pid), f"--timeout={value}", env=child_env(frdir))
        assert result.returncode == 2
        assert "argument --timeout" in result.stderr and "Traceback" not in result.stderr
        assert _header(ring, RingField.DUMP_REQUEST) == 0
        time.sleep(0.6)  # the housekeeper looks every 0.2 s
        assert not list(frdir.glob("*.frec"))

    def test_request_dump_refuses_a_bad_timeout(self, dead_ring: Path) -> None:
        for value in (0.0, -1.0, float("nan"), float("inf")):
            with pytest.raises(ValueError, match="timeout"):
                request_dump(dead_ring, value)
        assert _header(dead_ring, RingField.DUMP_REQUEST) == 0

    def test_an_unanswered_request_is_withdrawn(self, frdir: Path, live_child: subprocess.Popen[str]) -> None:
        """The recorder is stopped (SIGSTOP) when asked: the CLI gives up and takes the request
        back, so the process does not dump once it continues; the next request is served."""
        [ring] = frdir.glob("*.ring")
        env = child_env(frdir)
        os.kill(live_child.pid, signal.SIGSTOP)
        try:
            line = _one_error_line(run_cli("dump", str(live_child.pid), "--timeout", "0.3", env=env), 1)
            assert "did not answer within 0.3s" in line and "request withdrawn" in line
            assert _header(ring, RingField.DUMP_REQUEST) == _header(ring, RingField.DUMP_ACK) == 0
        finally:
            os.kill(live_child.pid, signal.SIGCONT)
        time.sleep(1.0)  # five housekeeper rounds
        assert not list(frdir.glob("*.frec")), "a withdrawn request must not produce a dump"
        result = run_cli("dump", str(live_child.pid), env=env)
        assert result.returncode == 0, result.stderr
        [dump] = frdir.glob("*.frec")
        assert result.stdout.strip() == str(dump)

    def test_a_request_served_after_its_withdrawal_is_not_taken_for_the_next(
        self, frdir: Path, live_child: subprocess.Popen[str]
    ) -> None:
        """If the recorder had begun the dump when the CLI gave up, the acknowledgement ends up
        ahead of the request counter: the next request must still ask for a new dump, not take
        the acknowledgement for its answer."""
        [ring] = frdir.glob("*.ring")
        env = child_env(frdir)
        first = run_cli("dump", str(live_child.pid), env=env)
        assert first.returncode == 0, first.stderr
        # As after a withdrawal that raced with the recorder: request put back, ack ahead of it.
        _set_header(ring, RingField.DUMP_REQUEST, 0)
        second = run_cli("dump", str(live_child.pid), env=env)
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() != first.stdout.strip(), "a new dump, not the previous one"
        assert len(list(frdir.glob("*.frec"))) == 2
