"""The CLI on bad files and bad output paths: one clear line, a documented exit code, nothing lost.

Every test runs the real CLI (``python -m flightrec``) on real files.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import flightrec
from flightrec import format as fmt
from flightrec.dump import write_dump
from flightrec.format import RingField
from flightrec.reader import open_recording

from .conftest import REPO, child_env, run_cli, spawn_child, wait_ready

USAGE, NOT_OURS, NEWER, CORRUPT, NOT_FOUND, DUMP_FAILED, EXPORT_FAILED = 2, 2, 3, 4, 5, 6, 9


def one_error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """Assert the CLI failed with ``code`` and exactly one ``flightrec: error:`` line; return it."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("flightrec: error: ")
    return line


@pytest.fixture
def dump(frdir: Path) -> Path:
    """A dump of 3,000 events in ~15 blocks (16 KiB each), written in this process."""
    flightrec.start(dir=frdir, size="2MiB", triggers=False, resources=0, block_size="16KiB")
    for i in range(1500):
        flightrec.record("note", text=f"event number {i} " * 3, i=i)
        flightrec.record("tool_call", tool="search", args={"q": i})
    path = flightrec.dump("test")
    flightrec.stop()
    assert path is not None
    return path


@pytest.fixture
def ring(frdir: Path) -> Path:
    """The ring file of a child killed with SIGKILL (an orphaned ring, as after an OOM kill)."""
    child = spawn_child(
        """
        import flightrec, os
        flightrec.start(size="1MiB")
        for i in range(200):
            flightrec.record("note", i=i)
        print("ready", flush=True)
        os.kill(os.getpid(), 9)
        """,
        frdir,
    )
    wait_ready(child)
    child.wait()
    [path] = frdir.glob("*" + fmt.RING_SUFFIX)
    return path


# ====================================================================== 1. export X -o X


class TestExportNeverWritesItsInput:
    @pytest.mark.parametrize("how", ["same", "dot-slash", "symlink", "hardlink"])
    def test_output_naming_the_input_is_refused(self, dump: Path, tmp_path: Path, how: str) -> None:
        """-o naming the input (as given, via ./, a symlink or a hard link) is refused; the input is untouched."""
        src = tmp_path / "self.frec"
        src.write_bytes(dump.read_bytes())
        before = src.read_bytes()
        out = {"same": str(src), "dot-slash": f"{tmp_path}/./self.frec"}.get(how)
        if how == "symlink":
            (tmp_path / "link.frec").symlink_to(src)
            out = str(tmp_path / "link.frec")
        elif how == "hardlink":
            os.link(src, tmp_path / "hard.frec")
            out = str(tmp_path / "hard.frec")
        assert out is not None
        for f in ("jsonl", "chrome", "otlp"):
            line = one_error_line(run_cli("export", str(src), "-f", f, "-o", out), EXPORT_FAILED)
            assert "is the input file" in line and "different" in line
        assert src.read_bytes() == before

    def test_a_live_agents_ring_is_refused_and_the_agent_keeps_recording(self, frdir: Path) -> None:
        """export RING -o RING on a live recorder: refused; the agent survives and its ring stays whole."""
        code = (
            "import flightrec, sys\n"
            "flightrec.start(size='1MiB')\n"
            "flightrec.record('note', i=0)\n"
            "print('ready', flush=True)\n"
            "sys.stdin.readline()\n"
            "flightrec.record('note', i=1)\n"
            "print(flightrec.dump('after'), flush=True)\n"
        )
        child = subprocess.Popen(
            [sys.executable, "-c", code],
            env=child_env(frdir),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_ready(child)
            [ring] = frdir.glob("*" + fmt.RING_SUFFIX)
            size = ring.stat().st_size
            one_error_line(run_cli("export", str(ring), "-o", str(ring)), EXPORT_FAILED)
            assert child.poll() is None and ring.stat().st_size == size
            out, err = child.communicate("go\n", timeout=60)
            assert child.returncode == 0, err
            with open_recording(out.strip()) as rec:
                assert [e.data["i"] for e in rec.events("note")] == [0, 1]
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()

    def test_scrub_refuses_a_hard_link_to_its_input_too(self, dump: Path, tmp_path: Path) -> None:
        """scrub shares export's check: a hard link to the input is the input."""
        os.link(dump, tmp_path / "same.frec")
        line = one_error_line(run_cli("scrub", str(dump), "-o", str(tmp_path / "same.frec")), DUMP_FAILED)
        assert "is the input file" in line


# ====================================================================== 2. scrub -o


class TestScrubOutputIsUsedAsGiven:
    def test_a_directory_is_refused_and_nothing_written_into_it(self, dump: Path, tmp_path: Path) -> None:
        """-o DIR used to write DIR's parent/-2.frec: now an error, and no file appears anywhere."""
        target = tmp_path / "adir"
        target.mkdir()
        line = one_error_line(run_cli("scrub", str(dump), "-o", str(target)), DUMP_FAILED)
        assert "is a directory" in line
        assert list(target.iterdir()) == [] and not list(tmp_path.glob("*-2.frec"))

    def test_a_device_is_refused(self, dump: Path) -> None:
        """-o /dev/full used to write /dev/-2.frec: a dump goes only to a regular file."""
        before = set(Path("/dev").glob("*.frec"))
        line = one_error_line(run_cli("scrub", str(dump), "-o", "/dev/full"), DUMP_FAILED)
        assert "not a regular file" in line
        assert set(Path("/dev").glob("*.frec")) == before

    def test_a_missing_directory_is_not_created(self, dump: Path, tmp_path: Path) -> None:
        """-o missing/x.frec is an error; the directory is not created."""
        line = one_error_line(run_cli("scrub", str(dump), "-o", str(tmp_path / "missing" / "x.frec")), DUMP_FAILED)
        assert "does not exist" in line
        assert not (tmp_path / "missing").exists()

    def test_an_existing_file_is_replaced_like_export_does(self, dump: Path, tmp_path: Path) -> None:
        """-o existing.frec replaces it (export -o does too); no existing-2.frec."""
        (tmp_path / "out").mkdir()
        out = tmp_path / "out" / "existing.frec"
        out.write_text("old")
        result = run_cli("scrub", str(dump), "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert f"-> {out}:" in result.stdout
        assert sorted(p.name for p in out.parent.iterdir()) == ["existing.frec"]
        with open_recording(out) as rec:
            assert "scrubbed" in rec.meta and rec.event_count == 3000

    def test_dash_is_standard_output(self, dump: Path, tmp_path: Path) -> None:
        """-o - writes the dump to stdout (like export), the summary to stderr; no file named '-'."""
        out = tmp_path / "piped.frec"
        with open(out, "wb") as f:
            result = _scrub_to_stdout(dump, tmp_path, f.fileno())
        assert result.returncode == 0, result.stderr
        assert "-> standard output: 3000 events kept" in result.stderr
        assert not (tmp_path / "-").exists()
        with open_recording(out) as rec:
            assert rec.damaged == 0 and not rec.warnings and rec.event_count == 3000

    def test_dash_to_a_terminal_is_refused(self, dump: Path, tmp_path: Path) -> None:
        """A binary dump is never written to a terminal."""
        primary, secondary = os.openpty()
        try:
            result = _scrub_to_stdout(dump, tmp_path, secondary)
        finally:
            os.close(primary)
            os.close(secondary)
        one_error_line(result, USAGE)
        assert not (tmp_path / "-").exists()

    def test_without_o_an_earlier_scrub_is_kept(self, dump: Path) -> None:
        """The default output never replaces a file: the second scrub writes FILE.scrubbed-2.frec."""
        for name in ("scrubbed.frec", "scrubbed-2.frec"):
            result = run_cli("scrub", str(dump))
            assert result.returncode == 0, result.stderr
            assert (dump.parent / f"{dump.stem}.{name}").is_file()


class TestAutomaticDumpNames:
    @pytest.mark.parametrize(("name", "second"), [("a.frec", "a-2.frec"), ("plain", "plain-2"), ("x.tar", "x.tar-2")])
    def test_a_taken_name_gets_a_numbered_one_keeping_its_suffix(
        self, dump: Path, frdir: Path, tmp_path: Path, name: str, second: str
    ) -> None:
        """The recorder's collision names: `<stem>-2.frec` for .frec names, `<name>-2` for others."""
        with open_recording(dump) as rec:
            blocks = [bytes(rec._buf[b.offset : b.offset + b.header.total_len]) for b in rec.blocks]
            meta = rec.meta
        out = tmp_path / "out"
        first = write_dump(out, name, meta, blocks)
        again = write_dump(out, name, meta, blocks)
        assert (first.name, again.name) == (name, second)
        assert sorted(p.name for p in out.iterdir()) == sorted([name, second])


# ====================================================================== 3. scrub --rules


def test_unknown_rule_is_a_usage_error(dump: Path) -> None:
    """--rules nosuchrule: one line naming it and the known rules, usage-error exit code, no file written."""
    line = one_error_line(run_cli("scrub", str(dump), "--rules", "email,nosuchrule"), USAGE)
    assert "unknown redaction rule(s) nosuchrule; known: " in line and "email" in line.split("known:")[1]
    assert not list(dump.parent.glob("*scrubbed*"))


# ====================================================================== 4. ENOSPC


class TestWriteFailures:
    @pytest.mark.parametrize("f", ["jsonl", "chrome", "otlp"])
    def test_a_full_disk_is_one_line(self, dump: Path, f: str) -> None:
        """-o /dev/full in every format: `cannot write /dev/full: No space left on device`, exit 9."""
        line = one_error_line(run_cli("export", str(dump), "-f", f, "-o", "/dev/full"), EXPORT_FAILED)
        assert line == "flightrec: error: cannot write /dev/full: No space left on device"

    def test_a_full_stdout_is_one_line(self, dump: Path) -> None:
        """Standard output on a full disk: one line, nothing else printed at exit."""
        with open("/dev/full", "w") as full:
            result = subprocess.run(
                [sys.executable, "-m", "flightrec", "export", str(dump)],
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                timeout=60,
            )
        line = one_error_line(result, EXPORT_FAILED)
        assert "cannot write to standard output: No space left on device" in line

    @pytest.mark.parametrize("f", ["jsonl", "chrome", "otlp"])
    def test_a_failed_export_leaves_no_partial_file_and_an_old_one_intact(
        self, dump: Path, tmp_path: Path, f: str
    ) -> None:
        """A write failing mid-way (file size limit: EFBIG, like ENOSPC) removes what the export created."""

        def limit() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing the process
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

        outdir = tmp_path / "out"
        outdir.mkdir()
        new, old = outdir / "new.out", outdir / "old.out"
        old.write_text("precious")
        for out in (new, old):
            result = subprocess.run(
                [sys.executable, "-m", "flightrec", "export", str(dump), "-f", f, "-o", str(out)],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                preexec_fn=limit,
                timeout=60,
            )
            line = one_error_line(result, EXPORT_FAILED)
            assert line.startswith(f"flightrec: error: cannot write {out}: File too large")
        assert sorted(p.name for p in outdir.iterdir()) == ["old.out"]
        assert old.read_text() == "precious"

    def test_an_export_replaces_an_existing_file_and_keeps_a_symlink(self, dump: Path, tmp_path: Path) -> None:
        """-o an existing file replaces it; -o a symlink writes its target and leaves the link."""
        outdir = tmp_path / "out"
        outdir.mkdir()
        target = outdir / "events.jsonl"
        target.write_text("old\n")
        (outdir / "link.jsonl").symlink_to(target)
        for out in (target, outdir / "link.jsonl"):
            result = run_cli("export", str(dump), "-o", str(out))
            assert result.returncode == 0, result.stderr
            assert len(target.read_text().splitlines()) == 3000
        assert (outdir / "link.jsonl").is_symlink()
        assert sorted(p.name for p in outdir.iterdir()) == ["events.jsonl", "link.jsonl"]


# ====================================================================== 5. flags


class TestFlags:
    def test_show_kind_filters_the_summary(self, dump: Path) -> None:
        """show --kind K without --json counts only K (it used to be ignored)."""
        result = run_cli("show", str(dump), "--kind", "tool_call")
        assert result.returncode == 0, result.stderr
        assert "events    1500 of kind tool_call from" in result.stdout
        assert "by kind   tool_call 1500\n" in result.stdout + "\n" and "note" not in result.stdout
        both = run_cli("show", str(dump), "--kind", "tool_call", "--kind", "note")
        assert "events    3000 of kind tool_call, note" in both.stdout

    def test_endpoint_with_output_is_refused(self, dump: Path, tmp_path: Path) -> None:
        """--endpoint and -o: one of them, not the second silently ignored."""
        out = tmp_path / "x.json"
        args = ["-f", "otlp", "--endpoint", "http://127.0.0.1:9", "-o", str(out)]
        line = one_error_line(run_cli("export", str(dump), *args), USAGE)
        assert "--endpoint" in line and "-o" in line
        assert not out.exists()

    @pytest.mark.parametrize(("flag", "value"), [("--header", "a=b"), ("--timeout", "3")])
    def test_endpoint_options_without_endpoint_are_refused(self, dump: Path, flag: str, value: str) -> None:
        """--header / --timeout only mean something with --endpoint."""
        line = one_error_line(run_cli("export", str(dump), "-f", "jsonl", flag, value), USAGE)
        assert f"{flag} needs --endpoint" in line


# ====================================================================== 6. messages


def _with_version(data: bytes, offset: int, version: int) -> bytes:
    out = bytearray(data)
    struct.pack_into("<H", out, offset, version)
    return bytes(out)


class TestMessages:
    def test_a_garbage_version_is_a_corrupt_header_not_a_newer_format(self, tmp_path: Path) -> None:
        """Garbage after the magic: `corrupt header`, exit 4, never `upgrade flightrec`."""
        bad = tmp_path / "bad.frec"
        garbage = os.urandom(4000).replace(fmt.BLOCK_MAGIC, b"xxxx")
        bad.write_bytes(_with_version(fmt.DUMP_MAGIC + garbage, 8, 21761))
        line = one_error_line(run_cli("show", str(bad)), CORRUPT)
        assert "corrupt header" in line and "upgrade" not in line

    def test_a_garbage_version_with_intact_blocks_is_salvaged(self, dump: Path, tmp_path: Path) -> None:
        """A damaged version field alone: the events are salvaged, the header called corrupt."""
        bad = tmp_path / "bad.frec"
        bad.write_bytes(_with_version(dump.read_bytes(), 8, 21761))
        result = run_cli("show", str(bad))
        assert result.returncode == 0, result.stderr
        assert "events    3000" in result.stdout and "corrupt header" in result.stdout

    def test_a_plausible_newer_version_says_upgrade(self, dump: Path, tmp_path: Path) -> None:
        """Version 2 with the right magic: a newer format, exit 3, `upgrade flightrec`."""
        newer = tmp_path / "newer.frec"
        newer.write_bytes(_with_version(dump.read_bytes(), 8, fmt.FORMAT_VERSION + 1))
        assert "upgrade flightrec" in one_error_line(run_cli("show", str(newer)), NEWER)

    def test_a_ring_with_a_garbage_version_is_not_a_newer_format(self, ring: Path, tmp_path: Path) -> None:
        """The same for a ring file; a plausible version still says upgrade."""
        bad, newer = tmp_path / "bad.ring", tmp_path / "newer.ring"
        bad.write_bytes(_with_version(ring.read_bytes(), RingField.VERSION, 21761))
        newer.write_bytes(_with_version(ring.read_bytes(), RingField.VERSION, fmt.FORMAT_VERSION + 1))
        result = run_cli("show", str(bad))
        assert result.returncode == 0, result.stderr
        assert "corrupt ring header" in result.stdout and "upgrade" not in result.stdout
        assert "events    200" in result.stdout
        assert "upgrade flightrec" in one_error_line(run_cli("show", str(newer)), NEWER)

    def test_a_recovered_dump_shows_when_it_was_recovered(self, ring: Path, frdir: Path) -> None:
        """`trigger   recover at <time>`, not `at ?`."""
        result = run_cli("recover", str(ring), "-o", str(frdir), env=child_env(frdir))
        assert result.returncode == 0, result.stderr
        [dump] = frdir.glob("*.frec")
        shown = run_cli("show", str(dump)).stdout
        assert re.search(r"trigger   recover at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\n", shown), shown

    def test_damage_without_warnings_has_no_stray_separator(self, dump: Path, tmp_path: Path) -> None:
        """A block failing its CRC (found through the index) is counted; the line ends there."""
        with open_recording(dump) as rec:
            victim = rec.blocks[2]
        data = bytearray(dump.read_bytes())
        data[victim.offset + fmt.BLOCK_HEADER_SIZE + 10] ^= 0xFF
        bad = tmp_path / "flipped.frec"
        bad.write_bytes(bytes(data))
        result = run_cli("show", str(bad))
        assert result.returncode == 0, result.stderr
        assert "  damage    1 damaged block(s) skipped\n" in result.stdout

    def test_an_empty_path_is_not_the_current_directory(self) -> None:
        """show '' said `.: is a directory`."""
        line = one_error_line(run_cli("show", ""), NOT_FOUND)
        assert "empty" in line and "directory" not in line

    @pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "/proc/self/status"])
    def test_not_a_regular_file(self, tmp_path: Path, kind: str) -> None:
        """A FIFO (no hang), a device or a /proc pseudo-file: `not a regular file`, not `empty file`."""
        path = kind
        if kind == "fifo":
            os.mkfifo(tmp_path / "fifo")
            path = str(tmp_path / "fifo")
        line = one_error_line(run_cli("show", path), NOT_OURS)
        assert "not a regular file" in line and "empty" not in line

    def test_an_empty_regular_file_is_still_called_empty(self, tmp_path: Path) -> None:
        """The pseudo-file check does not change what an empty file is called."""
        (tmp_path / "empty.frec").write_bytes(b"")
        assert "empty file" in one_error_line(run_cli("show", str(tmp_path / "empty.frec")), NOT_OURS)

    def test_non_utf8_file_names_print_readably(self, dump: Path, tmp_path: Path) -> None:
        """A Latin-1 name shows with U+FFFD, never as `\\udcff` surrogate escapes."""
        name = os.fsdecode(b"\xff\xfe.frec")
        (tmp_path / name).write_bytes(dump.read_bytes())
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "utf-8"}
        shown = run_cli("show", str(tmp_path / name), env=env)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines()[0].startswith(f"{tmp_path}/\ufffd\ufffd.frec  (dump)")
        missing = one_error_line(run_cli("show", str(tmp_path / os.fsdecode(b"\xfe.frec")), env=env), NOT_FOUND)
        assert "\ufffd.frec: no such file" in missing and "\\udc" not in missing
        same = one_error_line(run_cli("export", str(tmp_path / name), "-o", str(tmp_path / name), env=env), 9)
        assert "\\udc" not in same and "\ufffd\ufffd.frec" in same


# ====================================================================== 7. truncated dumps


class TestTruncatedDump:
    def test_a_dump_cut_mid_block_counts_the_torn_block(self, dump: Path, tmp_path: Path) -> None:
        """Cut inside a block (its payload, its header, its magic): 1 damaged block, `file truncated`."""
        with open_recording(dump) as rec:
            blocks = list(rec.blocks)
        victim = blocks[3]
        cut_dump = tmp_path / "cut.frec"
        for cut in (victim.offset + victim.header.total_len // 2, victim.offset + 30, victim.offset + 2):
            cut_dump.write_bytes(dump.read_bytes()[:cut])
            with open_recording(cut_dump) as rec:
                assert rec.damaged == 1, cut
                assert any("file truncated" in w for w in rec.warnings)
                assert rec.event_count == sum(b.count for b in blocks[:3])
            shown = run_cli("show", str(cut_dump))
            assert shown.returncode == 0, shown.stderr
            assert "damage    1 damaged block(s) skipped" in shown.stdout and "file truncated" in shown.stdout

    def test_a_dump_cut_at_a_block_boundary_has_no_torn_block(self, dump: Path, tmp_path: Path) -> None:
        """Nothing was cut off inside a block: nothing counted as damaged (but the file is
        truncated all the same, and says so: see below)."""
        with open_recording(dump) as rec:
            victim = rec.blocks[3]
        cut_dump = tmp_path / "cut.frec"
        cut_dump.write_bytes(dump.read_bytes()[: victim.offset])
        with open_recording(cut_dump) as rec:
            assert rec.damaged == 0 and not any("the block at byte" in w for w in rec.warnings)

    def test_a_dump_cut_between_blocks_or_in_its_index_says_it_is_truncated(self, dump: Path, tmp_path: Path) -> None:
        """Cut at a block boundary, after the last block, or in the index or trailer: `show`
        says the file is truncated (it said only 'index footer missing or damaged', which a
        damaged footer says too), and every whole block is read."""
        data = dump.read_bytes()
        with open_recording(dump) as rec:
            blocks = list(rec.blocks)
            total = rec.event_count
        last_end = blocks[-1].offset + blocks[-1].header.total_len
        cut_dump = tmp_path / "cut.frec"
        truncated = "file truncated: the index footer is cut off by the end of the file; blocks found by scanning"
        for cut in (blocks[3].offset, last_end, last_end + 56, len(data) - 32, len(data) - 1):
            cut_dump.write_bytes(data[:cut])
            with open_recording(cut_dump) as rec:
                assert rec.warnings == [truncated], cut
                assert rec.damaged == 0
                assert rec.event_count == (sum(b.count for b in blocks[:3]) if cut == blocks[3].offset else total)
            shown = run_cli("show", str(cut_dump))
            assert shown.returncode == 0, shown.stderr
            assert f"  damage    {truncated}\n" in shown.stdout  # (no "0 damaged block(s) skipped; " before it)
        flipped = bytearray(data)
        flipped[-3] ^= 0xFF  # the trailer's magic: damaged, not cut
        cut_dump.write_bytes(bytes(flipped))
        with open_recording(cut_dump) as rec:
            assert rec.warnings == ["index footer missing or damaged: blocks found by scanning"]


def _scrub_to_stdout(dump: Path, cwd: Path, stdout: int) -> subprocess.CompletedProcess[str]:
    """``flightrec scrub DUMP -o -`` with its standard output on the file descriptor ``stdout``."""
    return subprocess.run(
        [sys.executable, "-m", "flightrec", "scrub", str(dump), "-o", "-"],
        cwd=cwd,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
