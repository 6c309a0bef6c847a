"""Faults around the recorder: failing dumps, unusable ring directories, full file systems,
concurrent dumps, signals, multiprocessing, and the CLI on files it cannot use."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import flightrec
import flightrec.recorder
from flightrec.format import RingField
from flightrec.reader import open_recording, ring_u64

from .conftest import child_env, run_child, run_cli, spawn_child, wait_ready


def _dumps(d: Path) -> list[Path]:
    return sorted(d.glob("*.frec"))


def _one_line_error(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("flightrec: error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


class TestDumpFailures:
    def test_a_failed_dump_is_counted_in_the_ring_header(self, frdir: Path) -> None:
        """A dump into an unusable directory bumps DUMP_FAILURES in the ring header, where any reader sees it."""
        blocker = frdir / "blocker"
        blocker.write_text("a file where the dump directory should be")
        rec = flightrec.start(dir=frdir, dump_dir=blocker / "dumps", triggers=False, resources=0, keep_ring=True)
        assert rec is not None
        for i in range(50):
            flightrec.record("note", i=i)
        assert flightrec.dump() is None
        assert flightrec.dump() is None
        with open_recording(rec.ring_path) as ring:  # as another process would read it: the file
            assert ring_u64(ring._buf, RingField.DUMP_FAILURES) == 2
            assert ring.counters["dump_failures"] == 2
            assert [e.data["i"] for e in ring.events()] == list(range(50)), "the ring is intact"
            assert ring.damaged == 0
        assert not list(blocker.parent.glob("**/*.tmp"))

    def test_a_full_file_system_fails_the_dump_then_recovers(self, frdir: Path) -> None:
        """With writes capped (RLIMIT_FSIZE) the dump fails with a message and a counter; the next one succeeds."""
        result = run_child(
            """
            import resource, flightrec
            rec = flightrec.start(triggers=False, redact=False, keep_ring=True)
            for i in range(3000):
                flightrec.record("note", i=i, pad="z" * 300)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
            print("first", flightrec.dump())
            resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            print("second", flightrec.dump())
            print("ring", rec.ring_path)
            """,
            frdir,
        )
        assert result.returncode == 0, result.stderr
        out = dict(line.split(" ", 1) for line in result.stdout.splitlines())
        assert out["first"] == "None" and "File too large" in result.stderr
        assert Path(out["second"]).exists()
        with open_recording(out["second"]) as dump:
            assert dump.counters["dump_failures"] == 1
            assert len(list(dump.events())) > 0
        assert not list(frdir.glob(".*.tmp"))


class TestRingDirectory:
    def test_ring_dir_under_a_regular_file_falls_back_with_a_warning(self, tmp_path: Path) -> None:
        """FLIGHTREC_DIR below a regular file: the agent runs, its ring goes to the default dir, with a warning."""
        blocker = tmp_path / "blocker"
        blocker.write_text("not a directory")
        runtime = tmp_path / "run"
        runtime.mkdir(mode=0o700)
        result = run_child(
            """
            import flightrec.auto, flightrec
            print(flightrec.record("note", ok=True), flightrec.get_recorder().ring_path)
            """,
            blocker / "sub",
            XDG_RUNTIME_DIR=str(runtime),
            FLIGHTREC_TRIGGERS="none",
            FLIGHTREC_KEEP_RING="1",
        )
        assert result.returncode == 0, result.stderr
        seq, ring = result.stdout.split()
        assert seq == "1" and Path(ring).parent == runtime / "flightrec"
        assert "unusable" in result.stderr and str(blocker) in result.stderr

    def test_no_usable_ring_dir_runs_disabled(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """When neither the configured nor the default directory works, start() warns and returns None."""
        blocker = tmp_path / "blocker"
        blocker.write_text("not a directory")
        mp = pytest.MonkeyPatch()
        mp.setattr(flightrec.recorder, "default_ring_dir", lambda: blocker / "default")
        try:
            assert flightrec.start(dir=blocker / "configured", triggers=False, resources=0) is None
        finally:
            mp.undo()
        assert "not recording" in capsys.readouterr().err
        assert flightrec.record("note", x=1) is None
        assert flightrec.dump() is None

    def test_auto_import_with_no_usable_directory_leaves_the_agent_running(self, tmp_path: Path) -> None:
        """`import flightrec.auto` with every ring directory unusable prints one line and the agent goes on."""
        runtime = tmp_path / "run"
        runtime.mkdir(mode=0o700)
        (runtime / "flightrec").write_text("a file where the ring directory should be")
        env = child_env(tmp_path)
        del env["FLIGHTREC_DIR"]
        env["XDG_RUNTIME_DIR"] = str(runtime)
        result = subprocess.run(
            [sys.executable, "-c", "import flightrec.auto, flightrec; print(flightrec.record('note'), 'agent ran')"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "None agent ran"
        assert result.stderr.startswith("flightrec: not recording")

    def test_a_file_size_limit_at_start_leaves_the_agent_running_unrecorded(self, frdir: Path, tmp_path: Path) -> None:
        """With RLIMIT_FSIZE below the ring size no ring can be created anywhere: one line, and the agent goes on."""
        runtime = tmp_path / "run"
        runtime.mkdir(mode=0o700)
        result = run_child(
            """
            import resource
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))
            import flightrec.auto, flightrec
            print(flightrec.get_recorder(), flightrec.record("note", x=1), flightrec.dump(), "agent ran")
            """,
            frdir,
            XDG_RUNTIME_DIR=str(runtime),
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "None None None agent ran"
        assert "flightrec: not recording" in result.stderr and "File too large" in result.stderr
        assert "Traceback" not in result.stderr

    def test_a_full_file_system_never_kills_the_agent_with_sigbus(self, tmp_path: Path) -> None:
        """A ring dir on a tmpfs too small for the ring: space is reserved up front, so the agent falls back."""
        small = tmp_path / "small"
        small.mkdir(mode=0o700)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(small)],
                                 capture_output=True)  # fmt: skip
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
        try:
            runtime = tmp_path / "run"
            runtime.mkdir(mode=0o700)
            result = run_child(
                """
                import flightrec, random
                rec = flightrec.start(size="1MiB", block_size="16KiB", triggers=False)
                for i in range(20000):
                    flightrec.record("note", i=i, pad="%x" % random.getrandbits(400))
                print("alive", rec.ring_path)
                """,
                small,
                XDG_RUNTIME_DIR=str(runtime),
            )
        finally:
            subprocess.run(["umount", str(small)], check=False)
        assert result.returncode == 0, f"killed by signal {-result.returncode}: {result.stderr}"
        assert result.stdout.startswith("alive") and str(runtime) in result.stdout
        assert "No space left" in result.stderr


class TestConcurrentDumps:
    def test_concurrent_dumps_are_refused_not_queued(
        self, recorder: flightrec.api.Recorder, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """While one dump is being written, seven others return None at once instead of waiting their turn."""
        from flightrec import recorder as recorder_module

        real_write = recorder_module.write_dump
        writing, release = threading.Event(), threading.Event()

        def held_write(*args: Any, **kwargs: Any) -> Path:
            writing.set()
            release.wait(60)  # the first dump stays "being written" until the others are done
            return real_write(*args, **kwargs)

        monkeypatch.setattr(recorder_module, "write_dump", held_write)
        for i in range(2000):
            flightrec.record("note", i=i)
        results: dict[str, Path | None] = {}

        def dump(name: str) -> None:
            results[name] = flightrec.dump(reason=name)

        first = threading.Thread(target=dump, args=("first",))
        first.start()
        assert writing.wait(30)
        others = [threading.Thread(target=dump, args=(f"other{i}",)) for i in range(7)]
        for t in others:
            t.start()
        for t in others:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in others), "a refused dump waited for the one being written"
        release.set()
        first.join()
        assert results["first"] is not None
        assert [results[f"other{i}"] for i in range(7)] == [None] * 7
        assert len(_dumps(recorder.dump_dir)) == 1

    def test_dumps_from_many_threads_while_others_record(self, recorder: flightrec.api.Recorder) -> None:
        """Threads dumping while others record flat out: every dump written is whole and gap-free."""
        stop = threading.Event()
        dumps: list[Path | None] = []

        def record(t: int) -> None:
            i = 0
            while not stop.is_set():
                flightrec.record("note", t=t, i=i, pad="p" * 80)
                i += 1

        def dump() -> None:
            for _ in range(5):
                dumps.append(flightrec.dump())
                time.sleep(0.01)

        writers = [threading.Thread(target=record, args=(t,)) for t in range(3)]
        dumpers = [threading.Thread(target=dump) for _ in range(4)]
        for t in writers + dumpers:
            t.start()
        for t in dumpers:
            t.join()
        stop.set()
        for t in writers:
            t.join()
        written = [p for p in dumps if p is not None]
        assert written
        for p in written:
            with flightrec.load(p) as rec:
                seqs = [e.seq for e in rec.events()]
                assert rec.damaged == 0 and seqs == list(range(seqs[0], seqs[-1] + 1))
        assert not list(recorder.dump_dir.glob(".*.tmp"))


class TestSignals:
    def test_the_agents_sigint_handler_runs(self, frdir: Path) -> None:
        """SIGINT handlers the agent installs, before or after flightrec, are the ones that run."""
        for before in (True, False):
            install = "signal.signal(signal.SIGINT, mine)"
            child = spawn_child(
                f"""
                import signal, sys, time
                def mine(signum, frame):
                    print("agent handler ran", flush=True)
                    sys.exit(4)
                {install if before else ""}
                import flightrec.auto
                {install if not before else ""}
                print("ready", flush=True)
                time.sleep(30)
                """,
                frdir,
            )
            wait_ready(child)
            child.send_signal(signal.SIGINT)
            assert child.wait(timeout=20) == 4
            assert "agent handler ran" in child.stdout.read()

    def test_keyboard_interrupt_keeps_its_meaning(self, frdir: Path) -> None:
        """Ctrl-C raises KeyboardInterrupt where the agent can catch it; uncaught, it ends the process as SIGINT."""
        child = spawn_child(
            """
            import time, flightrec.auto, flightrec
            try:
                print("ready", flush=True)
                time.sleep(30)
            except KeyboardInterrupt:
                print("caught", flush=True)
            flightrec.record("note", after="interrupt")
            print("ready again", flush=True)
            time.sleep(30)
            """,
            frdir,
        )
        wait_ready(child)
        child.send_signal(signal.SIGINT)
        assert child.stdout.readline().strip() == "caught"
        assert child.stdout.readline().strip() == "ready again"
        child.send_signal(signal.SIGINT)
        code = child.wait(timeout=20)
        assert code in (-signal.SIGINT, 130), code
        assert child.stderr is not None and "KeyboardInterrupt" in child.stderr.read()
        assert _dumps(frdir) == [], "an interrupt is not an error: no dump"

    def test_sigterm_ignored_by_the_agent_stays_ignored_after_the_dump(self, frdir: Path) -> None:
        """An agent that ignores SIGTERM still gets its dump, and keeps running."""
        child = spawn_child(
            """
            import signal, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            import flightrec.auto, flightrec
            flightrec.record("note", i=1)
            print("ready", flush=True)
            for _ in range(300):
                time.sleep(0.1)
                if flightrec.get_recorder().dumps:
                    break
            print("still running", flush=True)
            """,
            frdir,
        )
        wait_ready(child)
        child.send_signal(signal.SIGTERM)
        assert child.stdout.readline().strip() == "still running"
        assert child.wait(timeout=20) == 0
        [dump] = _dumps(frdir)
        assert flightrec.load(dump).meta["trigger"]["reason"] == "SIGTERM"

    def test_a_sigterm_handler_installed_after_flightrec_wins(self, frdir: Path) -> None:
        """An agent replacing our SIGTERM handler gets exactly its own behaviour."""
        child = spawn_child(
            """
            import signal, sys, time
            import flightrec.auto
            def mine(signum, frame):
                print("agent handler ran", flush=True)
                sys.exit(5)
            signal.signal(signal.SIGTERM, mine)
            print("ready", flush=True)
            time.sleep(30)
            """,
            frdir,
        )
        wait_ready(child)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=20) == 5
        assert "agent handler ran" in child.stdout.read()

    @pytest.mark.parametrize("pure", ["0", "1"], ids=["c-path", "pure-python"])
    def test_sigterm_landing_inside_the_recorder_still_dumps_and_dies(self, frdir: Path, pure: str) -> None:
        """A SIGTERM handled while the recorder holds its lock (here: inside a flush) does not hang.

        The recorder's lock is not reentrant and the handler runs in the thread it interrupted:
        taking the lock there waited forever. The dump is read back from the ring file instead.
        """
        proc = run_child(
            """
            import os, signal, flightrec
            rec = flightrec.start(size="1MiB", block_size="4KiB", resources=0)
            rec.add_flush_listener(lambda at_risk: os.kill(os.getpid(), signal.SIGTERM))
            i = 0
            while True:
                flightrec.record("note", i=i, text="x" * (i % 300))
                i += 1
            """,
            frdir,
            timeout=60,
            FLIGHTREC_PURE_PYTHON=pure,
        )
        assert proc.returncode == -signal.SIGTERM, proc.stderr
        [dump] = _dumps(frdir)
        with flightrec.load(dump) as rec:
            assert rec.meta["trigger"]["reason"] == "SIGTERM"
            notes = [e.data["i"] for e in rec.events(["note"])]
        assert notes == list(range(len(notes))) and len(notes) > 10  # every committed event, in order
        assert list(frdir.glob("*.ring")) == [] and list(frdir.glob("*.fatal")) == []

    def test_sigterm_waits_for_a_lock_another_thread_holds(self, frdir: Path) -> None:
        """Held by another thread, the lock is waited for: the usual dump, with the signal event."""
        child = spawn_child(
            """
            import threading, time, flightrec
            rec = flightrec.start(resources=0)
            flightrec.record("note", i=1)
            def hold():
                with rec._lock:
                    print("ready", flush=True)
                    time.sleep(0.5)
            threading.Thread(target=hold).start()
            time.sleep(30)
            """,
            frdir,
        )
        wait_ready(child)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=20) == -signal.SIGTERM
        [dump] = _dumps(frdir)
        with flightrec.load(dump) as rec:
            assert [e.kind for e in rec.events()][-2:] == ["note", "signal"]


class TestFailedDumpKeepsTheRing:
    def test_a_crash_whose_dump_fails_leaves_the_ring_to_recover(self, frdir: Path, tmp_path: Path) -> None:
        """The dump directory is unusable: the clean exit after the crash keeps the ring, and says so."""
        not_a_dir = tmp_path / "file"
        not_a_dir.write_text("")
        proc = run_child(
            """
            import flightrec.auto, flightrec
            flightrec.record("note", important="the only copy")
            raise RuntimeError("crash")
            """,
            frdir,
            FLIGHTREC_DUMP_DIR=str(not_a_dir),
        )
        assert proc.returncode == 1 and "RuntimeError: crash" in proc.stderr
        [ring] = frdir.glob("*.ring")
        assert f"flightrec recover {ring}" in proc.stderr
        out = tmp_path / "out"
        out.mkdir(mode=0o700)
        result = run_cli("recover", str(ring), "-o", str(out))
        assert result.returncode == 0, result.stderr
        [dump] = out.glob("*.frec")
        with flightrec.load(dump) as rec:
            assert [e.data.get("important") for e in rec.events(["note"])] == ["the only copy"]
            assert [e.data["type"] for e in rec.events(["error"])] == ["builtins.RuntimeError"]

    def test_a_failed_dump_followed_by_one_that_worked_leaves_no_ring(self, frdir: Path, tmp_path: Path) -> None:
        """The failed dump's events are in the one written after it: the ring is not kept at
        exit for a `recover` that would only duplicate it."""
        dumps = tmp_path / "dumps"
        proc = run_child(
            f"""
            import os, flightrec
            flightrec.start(dump_dir={str(dumps)!r}, triggers=False, resources=0)
            flightrec.record("note", important="kept")
            open({str(dumps)!r}, "w").close()  # a file where the dump directory should be
            print("first", flightrec.dump())
            os.unlink({str(dumps)!r})
            print("second", flightrec.dump())
            flightrec.stop()
            """,
            frdir,
        )
        assert proc.returncode == 0, proc.stderr
        lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
        assert lines["first"] == "None" and lines["second"] != "None"
        assert "ring is kept" not in proc.stderr
        assert list(frdir.glob("*.ring")) == []


MP_SCRIPT = """
import multiprocessing as mp, os, sys
import flightrec.auto, flightrec

def work(tag):
    flightrec.record("note", who=tag)

if __name__ == "__main__":
    flightrec.record("note", who="parent")
    ctx = mp.get_context(sys.argv[1])
    pids = []
    for tag in ("child-a", "child-b"):
        p = ctx.Process(target=work, args=(tag,))
        p.start()
        p.join()
        assert p.exitcode == 0, p.exitcode
        pids.append(p.pid)
    flightrec.record("note", who="parent-after")
    print(os.getpid(), *pids)
"""


class TestMultiprocessing:
    @pytest.mark.parametrize("method", ["fork", "spawn"])
    def test_children_record_into_their_own_rings(self, method: str, frdir: Path, tmp_path: Path) -> None:
        """multiprocessing children (fork and spawn) each record into a ring of their own; the parent's is untouched."""
        script = tmp_path / "agent.py"
        script.write_text(textwrap.dedent(MP_SCRIPT))
        env = child_env(frdir, FLIGHTREC_KEEP_RING="1", FLIGHTREC_TRIGGERS="excepthook,threading,atexit")
        result = subprocess.run(
            [sys.executable, str(script), method], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        parent, *children = map(int, result.stdout.split())
        rings: dict[int, list[str]] = {}
        for p in frdir.glob("*.ring"):
            with open_recording(p) as rec:
                rings[rec.meta["pid"]] = [e.data["who"] for e in rec.events()]
        assert rings[parent] == ["parent", "parent-after"]
        assert [rings[pid] for pid in children] == [["child-a"], ["child-b"]]


class TestCliWrongInput:
    def test_show_reads_a_ring_still_being_written_and_recover_refuses_it(self, frdir: Path) -> None:
        """`show` summarizes the ring of a process writing flat out; `recover` refuses it in one line."""
        child = spawn_child(
            """
            import flightrec
            flightrec.start(size="1MiB", block_size="16KiB", triggers=False)
            print("ready", flush=True)
            i = 0
            while True:
                flightrec.record("note", i=i, pad="q" * (i % 200))
                i += 1
            """,
            frdir,
        )
        try:
            wait_ready(child)
            [ring] = frdir.glob("*.ring")
            for _ in range(3):
                result = run_cli("show", str(ring))
                assert result.returncode == 0, result.stderr
                assert "(ring)" in result.stdout and "note" in result.stdout
            result = run_cli("show", "--json", str(ring))
            assert result.returncode == 0 and result.stdout.count("\n") > 10
            _one_line_error(run_cli("recover", str(ring)))
        finally:
            child.kill()
            child.wait()

    @pytest.mark.parametrize("verb", ["show", "recover", "open"])
    def test_an_empty_file(self, verb: str, tmp_path: Path) -> None:
        """An empty ring or dump file gives one clear line and a non-zero exit, for every verb that reads files."""
        empty = tmp_path / "1234-5678.ring"
        empty.write_bytes(b"")
        _one_line_error(run_cli(verb, str(empty)))

    @pytest.mark.parametrize("verb", ["show", "recover", "open"])
    def test_a_ring_file_from_a_newer_version(self, verb: str, frdir: Path) -> None:
        """A ring file written by a newer format version is refused in one line naming the version."""
        rec = flightrec.start(dir=frdir, triggers=False, resources=0, keep_ring=True, size="1MiB")
        assert rec is not None
        flightrec.record("note", i=1)
        flightrec.stop()
        data = bytearray(rec.ring_path.read_bytes())
        struct.pack_into("<H", data, RingField.VERSION, 2)
        newer = frdir / "999999-1.ring"
        newer.write_bytes(bytes(data))
        result = run_cli(verb, str(newer))
        _one_line_error(result)
        assert "version 2" in result.stderr

    def test_ls_skips_files_it_cannot_read(self, frdir: Path) -> None:
        """`ls` over a directory holding an empty, a garbage and a newer-version ring file lists without failing."""
        (frdir / "1-1.ring").write_bytes(b"")
        (frdir / "2-2.ring").write_bytes(os.urandom(5000))
        (frdir / "3-3.frec").write_bytes(b"FRECDUMP")
        result = run_cli("ls", "--dir", str(frdir))
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr


class TestInterruptedDumps:
    def test_ctrl_c_during_a_dump_leaves_no_temporary_file(self, frdir: Path) -> None:
        """A SIGINT landing while a dump is being written: KeyboardInterrupt reaches the agent,
        but the half-written hidden `.tmp` is removed (it was left for good, and the next dump
        of the same name then failed with "File exists")."""
        child = spawn_child(
            """
            import os, signal, flightrec
            flightrec.start(size="1MiB", triggers=False)
            flightrec.record("note", i=1)
            real_rename = os.rename
            def interrupted(src, dst):   # Ctrl-C arrives just before the dump is renamed into place
                os.kill(os.getpid(), signal.SIGINT)
                real_rename(src, dst)
            os.rename = interrupted
            try:
                flightrec.dump("x")
                print("not interrupted", flush=True)
            except KeyboardInterrupt:
                print("interrupted", flush=True)
            os.rename = real_rename
            print(flightrec.dump("x"), flush=True)
            """,
            frdir,
        )
        out, err = child.communicate(timeout=60)
        lines = out.split()
        assert lines[0] == "interrupted", (out, err)
        assert lines[1].endswith(".frec") and Path(lines[1]).exists(), (out, err)
        assert list(frdir.glob(".*.tmp")) == []


class TestMultiprocessingExit:
    @pytest.mark.parametrize(
        ("method", "imports", "start"),
        [
            # fork: the child inherits the recorder; it ends with os._exit(), which runs no
            # atexit handler, and each left its ring (64 MiB of /dev/shm by default)
            ("fork", "import flightrec", "flightrec.start()"),
            # forkserver: the child imports the main module, whose `import flightrec.auto`
            # starts a recorder there, and ends with os._exit() too
            ("forkserver", "import flightrec.auto, flightrec", "pass"),
        ],
    )
    def test_multiprocessing_children_delete_their_rings_at_exit(
        self, frdir: Path, tmp_path: Path, method: str, imports: str, start: str
    ) -> None:
        """multiprocessing workers and Processes stop their recorders as they exit: no ring is
        left for `recover` to dump, whatever the start method."""
        script = tmp_path / "agent.py"
        script.write_text(
            textwrap.dedent(
                f"""
                import multiprocessing as mp, os
                {imports}

                def work(i):
                    flightrec.record("note", i=i)
                    return os.getpid()

                if __name__ == "__main__":
                    {start}
                    ctx = mp.get_context({method!r})
                    p = ctx.Process(target=work, args=(0,))
                    p.start()
                    p.join()
                    pool = ctx.Pool(2)
                    print(len(set(pool.map(work, range(20)))) + 1, flush=True)
                    pool.close()
                    pool.join()
                """
            )
        )
        result = subprocess.run(
            [sys.executable, str(script)],
            env=child_env(frdir, FLIGHTREC_SIZE="1MiB"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert int(result.stdout) >= 2
        assert list(frdir.glob("*.ring")) == []
        assert _dumps(frdir) == []

    def test_sigterm_during_stop_removes_the_ring(self, frdir: Path) -> None:
        """A SIGTERM that lands while stop() closes the recorder (``Pool.terminate()``, which
        ``with Pool()`` calls, meets workers that are already exiting) killed the process with
        its ring and .fatal left behind, for `recover` to dump a clean exit; they are removed."""
        # GIVEN a process whose stop() is interrupted by SIGTERM, just as it removes the empty
        # fatal log (an audit hook places the signal there: the same point every run)
        result = run_child(
            """
            import os, signal, sys, flightrec
            rec = flightrec.start(size="1MiB")
            flightrec.record("note", i=1)
            fatal = str(rec.ring_path.with_suffix(".fatal"))

            sent = []

            def kill_during_stop(event, args):
                if event == "os.remove" and str(args[0]) == fatal and not sent:
                    sent.append(1)
                    os.kill(os.getpid(), signal.SIGTERM)

            sys.addaudithook(kill_during_stop)
            flightrec.stop()
            print("not killed")
            """,
            frdir,
        )
        # THEN it dies of the signal, leaving neither ring, fatal log nor dump
        assert result.returncode == -signal.SIGTERM, (result.stdout, result.stderr)
        assert sorted(p.name for p in frdir.iterdir()) == []
