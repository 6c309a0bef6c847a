"""No way in for other users: where files go and how they are created, whose recorders are
listed, what reaches the bytes on disk (redaction of argv and environment), and that reading
a recording never executes anything from it."""

from __future__ import annotations

import builtins
import marshal
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import flightrec
import flightrec.recorder
from flightrec import format as fmt
from flightrec.cli.attach_cmd import resolve_ring
from flightrec.cli.show_cmd import event_json, summary
from flightrec.dump import write_dump
from flightrec.errors import DumpFailed, RecordingNotFound, UnsafeDirectory
from flightrec.paths import create_private_file, ensure_private_dir
from flightrec.reader import open_recording

from .conftest import child_env, run_child, run_cli, spawn_child, wait_ready
from .fuzz.harness import CORPUS

NOBODY = 65534
"""A uid that is not ours (tests run as root, so chmod alone would not stop the writer)."""


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    return victim


def _blocks_raw(data: bytes) -> list[bytes]:
    """The decompressed payload of every valid block in ``data`` (ring file or dump)."""
    out = []
    pos = data.find(fmt.BLOCK_MAGIC)
    while pos >= 0:
        header = fmt.parse_block_header(data, pos)
        if header is not None:
            raw = fmt.decode_block_payload(header, data, pos)
            if raw is not None:
                out.append(raw)
        pos = data.find(fmt.BLOCK_MAGIC, pos + 1)
    return out


def _leaks(paths: list[Path], secrets: list[str]) -> list[tuple[str, str]]:
    """(file, secret) for every secret found in a file's bytes or in its decompressed blocks."""
    found = []
    for p in paths:
        data = p.read_bytes()
        haystacks = [data, *_blocks_raw(data)]
        for secret in secrets:
            if any(secret.encode() in h for h in haystacks):
                found.append((p.name, secret))
    return found


class TestFileCreation:
    def test_a_symlink_planted_at_a_new_files_path_is_not_followed(self, tmp_path: Path) -> None:
        """create_private_file refuses a path holding a symlink (live or dangling); the target stays untouched."""
        victim = _victim(tmp_path)
        live, dangling = tmp_path / "live.ring", tmp_path / "dangling.ring"
        live.symlink_to(victim)
        dangling.symlink_to(tmp_path / "would-be-created")
        for planted in (live, dangling):
            with pytest.raises(FileExistsError):
                create_private_file(planted)
        assert victim.read_text() == "precious"
        assert not (tmp_path / "would-be-created").exists()

    def test_a_symlink_at_the_ring_path_never_redirects_the_ring(
        self, frdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """start() with a symlink planted at its ring's exact name writes elsewhere, leaving the target alone."""
        victim = _victim(tmp_path)
        fallback = tmp_path / "fallback"
        monkeypatch.setattr(flightrec.recorder, "_time_ns", lambda: 1_700_000_000_000_000_000)
        monkeypatch.setattr(flightrec.recorder, "default_ring_dir", lambda: fallback)
        planted = frdir / f"{os.getpid()}-1700000000000000000{fmt.RING_SUFFIX}"
        planted.symlink_to(victim)
        rec = flightrec.start(dir=frdir, triggers=False, resources=0)
        assert rec is not None
        flightrec.record("note", x=1)
        assert rec.ring_path.parent == fallback
        assert victim.read_text() == "precious" and planted.is_symlink()

    def test_a_pre_created_file_at_the_ring_path_is_not_reused(
        self, frdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A file someone else created at the ring's name is neither opened nor truncated."""
        monkeypatch.setattr(flightrec.recorder, "_time_ns", lambda: 1_700_000_000_000_000_001)
        monkeypatch.setattr(flightrec.recorder, "default_ring_dir", lambda: tmp_path / "fallback")
        planted = frdir / f"{os.getpid()}-1700000000000000001{fmt.RING_SUFFIX}"
        planted.write_text("theirs")
        os.chown(planted, NOBODY, NOBODY)
        rec = flightrec.start(dir=frdir, triggers=False, resources=0)
        assert rec is not None and rec.ring_path != planted
        assert planted.read_text() == "theirs" and planted.stat().st_uid == NOBODY

    def test_symlinks_at_the_dump_paths_never_redirect_the_dump(self, frdir: Path, tmp_path: Path) -> None:
        """A symlink at a dump's final name is skipped or replaced, one at its temporary name fails the dump: the
        target is never written."""
        victim = _victim(tmp_path)
        rec = flightrec.start(dir=frdir, triggers=False, resources=0)
        assert rec is not None
        flightrec.record("note", x=1)
        (frdir / "a.frec").symlink_to(victim)  # final name, live target
        (frdir / "b.frec").symlink_to(tmp_path / "b-target")  # final name, dangling target
        (frdir / f".c.frec.{os.getpid()}.tmp").symlink_to(victim)  # temporary name
        a = flightrec.dump(path=frdir / "a.frec")
        b = flightrec.dump(path=frdir / "b.frec")
        c = flightrec.dump(path=frdir / "c.frec")
        assert a is not None and a.name == "a-2.frec" and (frdir / "a.frec").is_symlink()
        assert b is not None and not b.is_symlink() and not (tmp_path / "b-target").exists()
        assert c is None and rec.dump_failures == 1
        assert victim.read_text() == "precious"
        for p in (a, b):
            assert [e.data for e in flightrec.load(p).events()] == [{"x": 1}]


class TestUnsafeDirectories:
    def test_a_directory_owned_by_another_user_is_refused(self, tmp_path: Path) -> None:
        """A 0700 directory owned by uid 65534 is refused with a message naming the owner."""
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, NOBODY, NOBODY)
        with pytest.raises(UnsafeDirectory, match=f"owned by uid {NOBODY}, not by you"):
            ensure_private_dir(theirs)
        with pytest.raises(DumpFailed, match=f"owned by uid {NOBODY}"):
            write_dump(theirs, "x.frec", {}, [])
        assert list(theirs.iterdir()) == []

    def test_a_ring_dir_owned_by_someone_else_falls_back_with_a_warning(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """start(dir=<someone else's dir>) writes nothing there and says why on stderr."""
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, NOBODY, NOBODY)
        monkeypatch.setattr(flightrec.recorder, "default_ring_dir", lambda: tmp_path / "mine")
        rec = flightrec.start(dir=theirs, triggers=False, resources=0)
        assert rec is not None and rec.ring_path.parent == tmp_path / "mine"
        assert f"owned by uid {NOBODY}" in capsys.readouterr().err
        assert list(theirs.iterdir()) == []

    @pytest.mark.parametrize("mode", [0o777, 0o770, 0o722])
    def test_a_dump_dir_writable_by_others_is_refused(self, mode: int, frdir: Path, tmp_path: Path) -> None:
        """A dump directory that group or others can write to is refused, and the failure is counted."""
        shared = tmp_path / "shared"
        shared.mkdir()
        os.chmod(shared, mode)
        rec = flightrec.start(dir=frdir, dump_dir=shared, triggers=False, resources=0)
        assert rec is not None
        assert flightrec.dump() is None and rec.dump_failures == 1
        assert list(shared.iterdir()) == []

    def test_an_unusable_dump_dir_is_named_at_start(
        self, frdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A dump directory that exists but will be refused is named on stderr at start(), while
        it can still be fixed, not first at the crash whose dump it then fails to take."""
        shared = tmp_path / "shared"
        shared.mkdir()
        os.chmod(shared, 0o777)
        rec = flightrec.start(dir=frdir, dump_dir=shared, triggers=False, resources=0)
        assert rec is not None
        assert capsys.readouterr().err == (
            f"flightrec: dump directory {shared} is unusable: {shared} is writable by other users; refusing to "
            "use it (chmod 700 it); dumps will fail until it is fixed (the ring is then kept for `flightrec recover`)\n"
        )
        flightrec.stop()
        # One that does not exist yet is made by the first dump: nothing to say, nothing made yet.
        later = tmp_path / "later"
        rec = flightrec.start(dir=frdir, dump_dir=later, triggers=False, resources=0)
        assert rec is not None and capsys.readouterr().err == "" and not later.exists()
        assert flightrec.dump() is not None and later.is_dir()

    def test_forked_workers_do_not_repeat_it(self, frdir: Path, tmp_path: Path) -> None:
        """A pool of forked workers, each recording (each with its own recorder), says it once."""
        shared = tmp_path / "shared"
        shared.mkdir()
        os.chmod(shared, 0o777)
        result = run_child(
            """
            import multiprocessing as mp
            import flightrec
            flightrec.start(triggers=False)

            def work(i):
                flightrec.record("note", i=i)
                return i

            if __name__ == "__main__":
                with mp.get_context("fork").Pool(3) as pool:
                    assert pool.map(work, range(6)) == list(range(6))
                flightrec.stop()
            """,
            frdir,
            FLIGHTREC_DUMP_DIR=str(shared),
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr.count("is unusable") == 1, result.stderr

    def test_a_symlinked_directory_is_refused(self, tmp_path: Path) -> None:
        """A symlink standing where the directory should be is refused, even if it points to a private dir."""
        real = tmp_path / "real"
        real.mkdir(mode=0o700)
        link = tmp_path / "link"
        link.symlink_to(real)
        with pytest.raises(UnsafeDirectory, match="symlink"):
            ensure_private_dir(link)


class TestOnlyOwnRecorders:
    def test_ls_dump_and_attach_ignore_another_users_recorder(self, frdir: Path) -> None:
        """A live recorder whose ring belongs to another uid is not listed, not dumped and not attached to."""
        child = spawn_child(
            """
            import flightrec, time
            flightrec.start(triggers=False)
            print("ready", flush=True)
            time.sleep(30)
            """,
            frdir,
        )
        try:
            wait_ready(child)
            [ring] = frdir.glob("*.ring")
            dump = frdir / "theirs.frec"
            dump.write_bytes(b"FRECDUMP")
            env = child_env(frdir)
            assert str(child.pid) in run_cli("ls", env=env).stdout
            os.chown(ring, NOBODY, NOBODY)
            os.chown(dump, NOBODY, NOBODY)
            listing = run_cli("ls", env=env).stdout
            assert str(child.pid) not in listing and "theirs.frec" not in listing
            result = run_cli("dump", str(child.pid), env=env)
            assert result.returncode != 0 and "no flightrec recorder" in result.stderr
            with pytest.raises(RecordingNotFound):
                resolve_ring(str(child.pid), str(frdir))
        finally:
            child.kill()
            child.wait()


SECRETS = {
    "flag": "s3cr3t-flag-VALUE",
    "assigned": "hunter2-assigned-VALUE",
    "github": "ghp_" + "Zq9" * 12,
    "url": "pa55w0rd-in-url",
    "env": "env-secret-VALUE",
    "unlisted": "unlisted-env-VALUE",
}
AGENT = """
import sys, flightrec.auto, flightrec
flightrec.record("note", step=1)
raise RuntimeError("auth failed with " + sys.argv[3])
"""


class TestWhatReachesTheDisk:
    def test_secrets_in_argv_and_env_never_reach_ring_or_dump_bytes(self, frdir: Path, tmp_path: Path) -> None:
        """Tokens on the command line and in listed variables are redacted before any byte exists, in the ring
        file and in the dump (raw bytes and every decompressed block), exception message included."""
        script = tmp_path / "agent.py"
        script.write_text(textwrap.dedent(AGENT))
        env = child_env(
            frdir,
            FLIGHTREC_KEEP_RING="1",
            FLIGHTREC_ENV_KEYS="DB_PASSWORD,MY_SETTING",
            DB_PASSWORD=SECRETS["env"],
            MY_SETTING="visible-setting",
            SOME_OTHER_TOKEN=SECRETS["unlisted"],
        )
        argv = [
            "--api-key",
            SECRETS["flag"],
            SECRETS["github"],
            f"--password={SECRETS['assigned']}",
            f"https://bob:{SECRETS['url']}@example.com/repo",
        ]
        result = subprocess.run(
            [sys.executable, str(script), *argv], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 1 and "auth failed" in result.stderr
        files = sorted(frdir.glob("*.frec")) + sorted(frdir.glob("*.ring"))
        assert {p.suffix for p in files} == {".frec", ".ring"}
        assert _leaks(files, list(SECRETS.values())) == []
        [dump] = sorted(frdir.glob("*.frec"))
        meta = flightrec.load(dump).meta
        assert meta["env"]["MY_SETTING"] == "visible-setting"
        assert meta["env"]["DB_PASSWORD"].startswith("<SECRET:")
        assert "SOME_OTHER_TOKEN" not in str(meta)
        assert meta["argv"][1:3] == ["--api-key", meta["argv"][2]] and meta["argv"][2].startswith("<SECRET:")
        assert "<GITHUB_TOKEN:" in meta["exception"]["message"]

    def test_no_environment_variable_is_recorded_by_default(self, frdir: Path) -> None:
        """Without FLIGHTREC_ENV_KEYS the header has no env at all, and no variable's value is in the files."""
        code = "import flightrec.auto, flightrec; flightrec.record('note'); flightrec.dump()"
        env = child_env(frdir, FLIGHTREC_KEEP_RING="1", PLAIN_VARIABLE="plain-VALUE-xyz")
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        files = sorted(frdir.glob("*.frec")) + sorted(frdir.glob("*.ring"))
        assert len(files) == 2
        assert _leaks(files, ["plain-VALUE-xyz"]) == []
        assert "env" not in flightrec.load(sorted(frdir.glob("*.frec"))[0]).meta

    def test_undecodable_bytes_in_argv_do_not_cost_the_recording(self, frdir: Path) -> None:
        """A Latin-1 file name on the command line (surrogate escapes) is stored escaped; ring and dump still work."""
        code = "import flightrec.auto, flightrec; flightrec.record('note', x=1); print(flightrec.dump())"
        env = child_env(frdir)
        result = subprocess.run(
            [sys.executable.encode(), b"-c", code.encode(), b"caf\xe9.txt"], env=env, capture_output=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        dump = Path(result.stdout.decode().strip())
        meta = flightrec.load(dump).meta
        assert meta["argv"][-1] == "caf\\udce9.txt"


class TestReadingExecutesNothing:
    @pytest.fixture
    def no_execution(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make every way of running code from data fail loudly while the test reads."""

        def forbidden(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("reading a recording tried to execute something")

        for mod, name in ((pickle, "loads"), (pickle, "load"), (pickle, "Unpickler"), (marshal, "loads")):
            monkeypatch.setattr(mod, name, forbidden)
        monkeypatch.setattr(builtins, "eval", forbidden)
        monkeypatch.setattr(builtins, "exec", forbidden)
        monkeypatch.setattr(os, "system", forbidden)
        monkeypatch.setattr(subprocess, "Popen", forbidden)

    def test_ext_types_in_a_crafted_dump_come_back_as_data(self, no_execution: None) -> None:
        """MessagePack extension types in a dump's header and events are returned as opaque data, never run."""
        with open_recording(CORPUS / "crafted-ext-types.bin") as rec:
            events = list(rec.events())
            custom = rec.meta["custom"]
            text = summary(rec)
            lines = [event_json(e) for e in events]
        assert [e.seq for e in events] == [1, 2, 3]
        ext = events[0].data["ext"]
        assert (ext.code, ext.data) == (42, b"__import__('os').system('touch /tmp/pwned')")
        assert (custom.code, custom.data) == (42, ext.data)
        assert '"$ext": 42' in lines[0] and "events    3" in text
        assert not Path("/tmp/pwned").exists()

    def test_every_corpus_file_reads_without_executing_anything(self, no_execution: None) -> None:
        """Opening, iterating and summarizing every corpus file goes through no code-executing path."""
        for p in sorted(CORPUS.iterdir()):
            with open_recording(p) as rec:
                for ev in rec.events():
                    event_json(ev)
                summary(rec)
