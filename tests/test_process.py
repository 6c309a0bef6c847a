"""Real child processes: crashes, signals, kill -9, fork — and what the recorder leaves behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import flightrec
from flightrec.reader import open_recording

from .conftest import REPO, child_env, run_child, run_cli, spawn_child, wait_ready


def _dumps(d: Path) -> list[Path]:
    return sorted(d.glob("*.frec"), key=lambda p: p.stat().st_mtime)


class TestKill9:
    def test_recover_yields_every_event_committed_before_the_kill(self, frdir: Path) -> None:
        """kill -9 mid-recording; `flightrec recover` returns exactly the committed events, in order."""
        child = spawn_child(
            """
            import flightrec, sys
            flightrec.start(size="1MiB", block_size="16KiB")
            i = 0
            while True:
                seq = flightrec.record("note", i=i, text="payload %d" % i)
                print(seq, flush=True)   # printed only after the event is committed
                i += 1
            """,
            frdir,
        )
        assert child.stdout is not None
        last_printed = 0
        while last_printed < 3000:
            line = child.stdout.readline()
            assert line, child.stderr.read() if child.stderr else ""
            last_printed = int(line)
        child.send_signal(signal.SIGKILL)
        child.wait()
        rings = list(frdir.glob("*.ring"))
        assert len(rings) == 1, "the ring file survives a kill -9"
        result = run_cli("recover", "--dir", str(frdir), "-o", str(frdir))
        assert result.returncode == 0, result.stderr
        assert "recovered" in result.stdout
        assert not rings[0].exists()
        [dump] = _dumps(frdir)
        events = list(flightrec.load(dump).events())
        seqs = [e.seq for e in events]
        # Everything up to the last printed seq is there, gap-free, and nothing torn after it.
        assert seqs[-1] >= last_printed
        assert seqs == list(range(seqs[0], seqs[-1] + 1))
        assert all(e.data == {"i": e.seq - 1, "text": f"payload {e.seq - 1}"} for e in events)
        assert flightrec.load(dump).meta["recovered"] is True

    def test_a_recovered_dump_is_named_like_the_programs_other_dumps(self, frdir: Path, tmp_path: Path) -> None:
        """`agent.py`, killed: its recovered dump is `agent-PID-...`, as its own dumps are
        (it was `agent.py-PID-...`)."""
        script = tmp_path / "agent.py"
        script.write_text(
            "import flightrec\nflightrec.start()\nflightrec.dump()\nprint('ready', flush=True)\ninput()\n"
        )
        child = subprocess.Popen(
            [sys.executable, "-u", str(script)],
            env=child_env(frdir),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_ready(child)
        child.send_signal(signal.SIGKILL)
        child.wait()
        result = run_cli("recover", "--dir", str(frdir), "-o", str(frdir))
        assert result.returncode == 0, result.stderr
        names = sorted(d.name for d in _dumps(frdir))
        assert len(names) == 2 and all(n.startswith(f"agent-{child.pid}-") for n in names), names

    def test_recover_refuses_a_live_process(self, frdir: Path) -> None:
        """recover on the ring of a running process says so and exits non-zero."""
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
            [ring] = frdir.glob("*.ring")
            result = run_cli("recover", str(ring))
            assert result.returncode != 0
            assert "still running" in result.stderr
            assert "Traceback" not in result.stderr
        finally:
            child.kill()
            child.wait()


class TestTriggers:
    def test_uncaught_exception_writes_a_dump_with_the_exception(self, frdir: Path) -> None:
        """An uncaught exception dumps the events before it and the exception with its traceback."""
        result = run_child(
            """
            import flightrec.auto, flightrec
            for i in range(100):
                flightrec.record("note", i=i)
            def fail():
                raise ValueError("the tool returned garbage")
            fail()
            """,
            frdir,
        )
        assert result.returncode == 1
        assert "ValueError: the tool returned garbage" in result.stderr  # the original hook still ran
        [dump] = _dumps(frdir)
        rec = flightrec.load(dump)
        exc = rec.meta["exception"]
        assert exc["type"] == "builtins.ValueError"
        assert exc["message"] == "the tool returned garbage"
        assert "in fail" in exc["traceback"]
        events = list(rec.events())
        assert [e.data["i"] for e in events if e.kind == "note"] == list(range(100))
        assert events[-1].kind == "error"
        assert rec.meta["trigger"]["reason"] == "exception"
        assert not list(frdir.glob("*.ring")), "a clean exit removes the ring"

    def test_sigterm_dumps_then_dies_of_sigterm(self, frdir: Path) -> None:
        """SIGTERM writes a dump, then the process still ends as SIGTERM would end it."""
        child = spawn_child(
            """
            import flightrec.auto, flightrec, time
            for i in range(50):
                flightrec.record("note", i=i)
            print("ready", flush=True)
            time.sleep(30)
            """,
            frdir,
        )
        wait_ready(child)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=20) == -signal.SIGTERM
        [dump] = _dumps(frdir)
        rec = flightrec.load(dump)
        assert rec.meta["trigger"]["reason"] == "SIGTERM"
        kinds = [e.kind for e in rec.events()]
        assert kinds.count("note") == 50 and kinds[-1] == "signal"

    def test_sigterm_chains_to_the_agents_own_handler(self, frdir: Path) -> None:
        """A SIGTERM handler installed before flightrec still runs after the dump."""
        child = spawn_child(
            """
            import signal, sys, time
            def mine(signum, frame):
                print("agent handler ran", flush=True)
                sys.exit(3)
            signal.signal(signal.SIGTERM, mine)
            import flightrec.auto
            print("ready", flush=True)
            time.sleep(30)
            """,
            frdir,
        )
        wait_ready(child)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=20) == 3
        assert "agent handler ran" in child.stdout.read()
        assert len(_dumps(frdir)) == 1

    def test_thread_exception_writes_a_dump(self, frdir: Path) -> None:
        """An uncaught exception in a thread dumps; the process goes on."""
        result = run_child(
            """
            import flightrec.auto, flightrec, threading
            flightrec.record("note", where="main")
            def work():
                flightrec.record("note", where="thread")
                raise KeyError("missing fact")
            t = threading.Thread(target=work, name="tool-worker"); t.start(); t.join()
            print("main continues")
            """,
            frdir,
        )
        assert result.returncode == 0 and "main continues" in result.stdout
        assert "KeyError" in result.stderr
        [dump] = _dumps(frdir)
        rec = flightrec.load(dump)
        assert rec.meta["exception"]["type"] == "builtins.KeyError"
        err = next(e for e in rec.events() if e.kind == "error")
        assert err.thread == "tool-worker" and err.data["origin"] == "thread"

    def test_asyncio_task_exception_writes_a_dump(self, frdir: Path) -> None:
        """An exception in an asyncio task that nobody awaits is caught by the loop hook and dumped."""
        result = run_child(
            """
            import asyncio, gc, flightrec.auto
            async def bad():
                raise RuntimeError("task blew up")
            async def main():
                asyncio.get_running_loop().create_task(bad())
                await asyncio.sleep(0.05)
            asyncio.run(main())
            gc.collect()
            """,
            frdir,
        )
        assert result.returncode == 0, result.stderr
        dumps = _dumps(frdir)
        assert dumps, result.stderr
        rec = flightrec.load(dumps[-1])
        assert rec.meta["exception"]["message"] == "task blew up"

    def test_logging_error_triggers_a_dump(self, frdir: Path) -> None:
        """logging.error() records a log event and dumps."""
        result = run_child(
            """
            import logging, flightrec.auto
            logging.getLogger("agent").warning("slow tool")
            logging.getLogger("agent").error("tool failed for good")
            """,
            frdir,
        )
        assert result.returncode == 0, result.stderr
        [dump] = _dumps(frdir)
        logs = [e.data for e in flightrec.load(dump).events() if e.kind == "log"]
        assert [(d["level"], d["message"]) for d in logs] == [
            ("WARNING", "slow tool"),
            ("ERROR", "tool failed for good"),
        ]

    def test_crash_loop_is_rate_limited(self, frdir: Path) -> None:
        """Many automatic triggers in a row write one dump per interval, not one each."""
        result = run_child(
            """
            import logging, flightrec.auto
            for i in range(200):
                logging.getLogger("agent").error("failure %d", i)
            """,
            frdir,
            FLIGHTREC_DUMP_INTERVAL="60",
        )
        assert result.returncode == 0, result.stderr
        assert len(_dumps(frdir)) == 1


class TestLiveReader:
    def test_reader_in_another_process_sees_only_valid_events(self, frdir: Path) -> None:
        """Opening the ring of a child that writes flat out yields only whole, in-order, valid events."""
        child = spawn_child(
            """
            import flightrec
            flightrec.start(size="1MiB", block_size="16KiB", triggers=False)
            print("ready", flush=True)
            i = 0
            while True:
                flightrec.record("note", i=i, check=i * 7, pad="p" * (i % 300))
                i += 1
            """,
            frdir,
        )
        try:
            wait_ready(child)
            [ring] = frdir.glob("*.ring")
            newest = []
            for _ in range(30):
                with open_recording(ring) as r:
                    events = list(r.events())
                seqs = [e.seq for e in events]
                assert seqs == sorted(set(seqs))
                for e in events:
                    assert e.data["check"] == e.data["i"] * 7 and e.data["pad"] == "p" * (e.data["i"] % 300)
                    assert e.seq == e.data["i"] + 1
                newest.append(seqs[-1] if seqs else 0)
                time.sleep(0.01)
            assert newest[-1] > newest[0], "the reader follows the writer"
        finally:
            child.kill()
            child.wait()


def _rings_by_pid(frdir: Path) -> dict[int, Path]:
    """The ring files in ``frdir``, by the pid of the process that made each."""
    return {open_recording(p).meta["pid"]: p for p in frdir.glob("*.ring")}


def _parent_and_child_rings(result: subprocess.CompletedProcess[str], frdir: Path) -> tuple[Path, Path]:
    """The rings of a script that printed its pid and its forked child's: exactly those two."""
    assert result.returncode == 0, result.stderr
    parent_pid, child_pid = map(int, result.stdout.split())
    rings = _rings_by_pid(frdir)
    assert set(rings) == {parent_pid, child_pid}
    return rings[parent_pid], rings[child_pid]


def _whos(result: subprocess.CompletedProcess[str], frdir: Path) -> tuple[list[object], list[object]]:
    """The ``who`` of every event in the parent's ring and in the child's (see above)."""
    parent_ring, child_ring = _parent_and_child_rings(result, frdir)
    parent = [e.data["who"] for e in open_recording(parent_ring).events()]
    return parent, [e.data["who"] for e in open_recording(child_ring).events()]


class TestFork:
    def test_forked_child_records_into_its_own_ring(self, frdir: Path) -> None:
        """After os.fork() the child records into a new ring; the parent's is untouched."""
        result = run_child(
            """
            import os, flightrec
            flightrec.start(triggers=False, keep_ring=True)
            flightrec.record("note", who="parent-before")
            pid = os.fork()
            if pid == 0:
                flightrec.record("note", who="child")
                flightrec.stop()
                os._exit(0)
            os.waitpid(pid, 0)
            flightrec.record("note", who="parent-after")
            print(os.getpid(), pid)
            flightrec.stop()
            """,
            frdir,
        )
        parent, child = _whos(result, frdir)
        assert parent == ["parent-before", "parent-after"]
        assert child == ["child"]

    def test_a_child_that_execs_or_exits_at_once_leaves_no_ring(self, frdir: Path) -> None:
        """Children that record nothing (fork+exec, fork+os._exit, subprocess with preexec_fn,
        SIGTERM, stop()) leave no ring behind: each left one, listed as dead by `flightrec ls`."""
        result = run_child(
            """
            import os, signal, subprocess, time, flightrec.auto, flightrec
            flightrec.record("note", who="parent")
            def child(body):
                pid = os.fork()
                if pid == 0:
                    try:
                        body()
                    finally:
                        os._exit(0)
                return os.waitpid(pid, 0)[1]
            child(lambda: os.execv("/bin/true", ["/bin/true"]))
            child(lambda: None)                              # os._exit(0) straight away
            child(lambda: flightrec.stop())
            subprocess.run(["/bin/true"], preexec_fn=lambda: None, check=True)
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.write(w, b"up")   # (a SIGTERM before the child's set-up is over may be lost)
                time.sleep(30)
                os._exit(0)
            os.read(r, 2)
            os.kill(pid, signal.SIGTERM)
            print(os.getpid(), os.waitpid(pid, 0)[1] == signal.SIGTERM, flush=True)
            """,
            frdir,
            FLIGHTREC_KEEP_RING="1",
        )
        assert result.returncode == 0, result.stderr
        parent, killed = result.stdout.split()
        assert killed == "True"
        rings = [p.name for p in frdir.glob("*.ring")]
        assert rings == [r for r in rings if r.startswith(f"{parent}-")] and len(rings) == 1, result.stdout
        assert _dumps(frdir) == [], "nothing was recorded in the children: nothing to dump"
        listed = run_cli("ls", "--dir", str(frdir))
        assert listed.returncode == 0 and "dead" not in listed.stdout, listed.stdout

    def test_a_child_that_records_then_dies_leaves_a_ring_to_recover(self, frdir: Path) -> None:
        """The child's ring is made by its first event: killed after it, the child leaves a ring
        that `flightrec ls` lists as dead and `recover` turns into a dump of its events."""
        result = run_child(
            """
            import os, signal, flightrec
            flightrec.start(triggers=False)
            flightrec.record("note", who="parent")
            pid = os.fork()
            if pid == 0:
                for i in range(3):
                    flightrec.record("note", who="child", i=i)
                os.kill(os.getpid(), signal.SIGKILL)
            os.waitpid(pid, 0)
            print(pid)
            flightrec.stop()
            """,
            frdir,
        )
        assert result.returncode == 0, result.stderr
        child_pid = int(result.stdout)
        [ring] = frdir.glob("*.ring")
        assert ring.name.startswith(f"{child_pid}-")
        listed = run_cli("ls", "--dir", str(frdir))
        assert "dead" in listed.stdout and str(child_pid) in listed.stdout, listed.stdout
        recovered = run_cli("recover", "--dir", str(frdir), "-o", str(frdir))
        assert recovered.returncode == 0, recovered.stderr
        [dump] = _dumps(frdir)
        events = [(e.data["who"], e.data["i"]) for e in flightrec.load(dump).events() if e.kind == "note"]
        assert events == [("child", 0), ("child", 1), ("child", 2)]

    def test_a_forked_childs_fatal_error_goes_next_to_its_own_ring(self, frdir: Path) -> None:
        """A child that records and then crashes (SIGSEGV) leaves its ring with its `.fatal`
        traceback beside it, which `recover` puts in the dump; it was written into the parent's
        `.fatal`, left behind after the parent's clean exit."""
        result = run_child(
            """
            import faulthandler, os, flightrec.auto, flightrec
            flightrec.record("note", who="parent")
            pid = os.fork()
            if pid == 0:
                flightrec.record("note", who="child")
                def crash_in_the_child():
                    faulthandler._sigsegv()
                crash_in_the_child()
            os.waitpid(pid, 0)
            print(pid)
            """,
            frdir,
        )
        assert result.returncode == 0, result.stderr
        child_pid = int(result.stdout)
        left = sorted(p.name for p in frdir.iterdir())
        assert len(left) == 2 and all(name.startswith(f"{child_pid}-") for name in left), left
        recovered = run_cli("recover", "--dir", str(frdir), "-o", str(frdir))
        assert recovered.returncode == 0, recovered.stderr
        [dump] = _dumps(frdir)
        recording = flightrec.load(dump)
        assert "crash_in_the_child" in recording.meta["fatal_error"]
        assert [e.data["who"] for e in recording.events() if e.kind == "note"] == ["child"]

    def test_first_events_from_many_child_threads_make_one_ring(self, frdir: Path) -> None:
        """Threads of a forked child racing to record first make one recorder between them:
        one ring holding every event (steps, tools and memory calls make it too)."""
        result = run_child(
            """
            import os, threading, flightrec
            flightrec.start(triggers=False, keep_ring=True)
            pid = os.fork()
            if pid == 0:
                go = threading.Event()
                @flightrec.tool
                def lookup(q):
                    return q
                def work(n):
                    go.wait()
                    if n == 0:
                        with flightrec.step("plan"):
                            lookup("x")
                    elif n == 1:
                        flightrec.memory.retain("doc-1", tokens=3)
                    for i in range(50):
                        flightrec.record("note", n=n, i=i)
                threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
                for t in threads:
                    t.start()
                go.set()
                for t in threads:
                    t.join()
                flightrec.stop()
                os._exit(0)
            os.waitpid(pid, 0)
            print(os.getpid(), pid)
            flightrec.stop()
            """,
            frdir,
        )
        _, child_ring = _parent_and_child_rings(result, frdir)
        kinds = [e.kind for e in open_recording(child_ring).events()]
        assert kinds.count("note") == 200
        assert {"step_start", "step_end", "tool_call", "tool_result", "memory"} <= set(kinds), kinds

    def test_a_grandchild_of_a_child_that_never_recorded_records(self, frdir: Path) -> None:
        """Forked again before recording anything: the grandchild still records into its own ring,
        and the child in between makes none."""
        result = run_child(
            """
            import os, flightrec
            flightrec.start(triggers=False, keep_ring=True)
            pid = os.fork()
            if pid == 0:
                grandchild = os.fork()
                if grandchild == 0:
                    flightrec.record("note", who="grandchild")
                    flightrec.stop()
                    os._exit(0)
                os.waitpid(grandchild, 0)
                print(os.getpid(), grandchild, flush=True)
                os._exit(0)
            os.waitpid(pid, 0)
            flightrec.stop()
            """,
            frdir,
        )
        assert result.returncode == 0, result.stderr
        child_pid, grandchild_pid = map(int, result.stdout.split())
        rings = _rings_by_pid(frdir)
        assert child_pid not in rings
        assert [e.data["who"] for e in open_recording(rings[grandchild_pid]).events()] == ["grandchild"]

    @pytest.mark.parametrize("pure", ["0", "1"])
    def test_fork_hooks_registered_before_start_record_in_their_own_process(self, frdir: Path, pure: str) -> None:
        """`os.register_at_fork` hooks registered before `start()` run before flightrec's: the
        child's went into the parent's ring (lost there, under the parent's next event); they
        now go to the child's ring, and the parent's before and after hooks to the parent's."""
        result = run_child(
            """
            import os, flightrec
            os.register_at_fork(
                before=lambda: flightrec.record("note", who="before"),
                after_in_parent=lambda: flightrec.record("note", who="after-in-parent"),
                after_in_child=lambda: flightrec.record("note", who="after-in-child"),
            )
            flightrec.start(triggers=False, keep_ring=True)
            pid = os.fork()
            if pid == 0:
                flightrec.record("note", who="child")
                flightrec.stop()
                os._exit(0)
            os.waitpid(pid, 0)
            flightrec.record("note", who="parent")
            print(os.getpid(), pid)
            flightrec.stop()
            """,
            frdir,
            FLIGHTREC_PURE_PYTHON=pure,
        )
        parent, child = _whos(result, frdir)
        assert parent == ["before", "after-in-parent", "parent"]
        assert child == ["after-in-child", "child"]

    def test_a_fork_hook_in_the_grandchild_of_a_child_that_never_recorded_records_in_its_ring(
        self, frdir: Path
    ) -> None:
        """The same hook in a grandchild forked before the child recorded: one ring, with the
        hook's event and the grandchild's (the hook's ring was abandoned by flightrec's own hook
        a moment later, and the grandchild made a second one)."""
        result = run_child(
            """
            import os, flightrec
            level = 0
            os.register_at_fork(after_in_child=lambda: level == 1 and flightrec.record("note", who="hook"))
            flightrec.start(triggers=False, keep_ring=True)
            pid = os.fork()
            if pid == 0:
                level = 1
                grandchild = os.fork()
                if grandchild == 0:
                    flightrec.record("note", who="grandchild")
                    flightrec.stop()
                    os._exit(0)
                os.waitpid(grandchild, 0)
                print(grandchild, flush=True)
                os._exit(0)
            os.waitpid(pid, 0)
            flightrec.stop()
            """,
            frdir,
        )
        assert result.returncode == 0, result.stderr
        grandchild_pid = int(result.stdout)
        rings = [p for p in frdir.glob("*.ring") if p.name.startswith(f"{grandchild_pid}-")]
        assert len(rings) == 1, rings
        assert [e.data["who"] for e in open_recording(rings[0]).events()] == ["hook", "grandchild"]

    def test_a_fork_while_the_resource_thread_imports_psutil_does_not_hang_the_child(self, frdir: Path) -> None:
        """The resource sampler imports psutil in its own thread as the recorder starts: a fork
        in the middle of that import left psutil's import lock held, in the child, by a thread
        the child does not have, and the child hung for good at its own import of it (or of any
        module psutil was importing). A fork now waits for that import to end."""
        result = run_child(
            """
            import os, sys, threading, time, flightrec
            importing = threading.Event()

            class SlowPsutil:  # psutil's import takes a while (a cold disk, a loaded machine)
                def find_spec(self, name, path=None, target=None):
                    if name == "psutil":
                        importing.set()
                        time.sleep(0.5)
                    return None

            sys.meta_path.insert(0, SlowPsutil())
            flightrec.start(triggers=False, resources=1)
            importing.wait(30)
            pid = os.fork()  # while the sampler thread holds psutil's import lock
            if pid == 0:
                import psutil
                os._exit(0)
            deadline = time.monotonic() + 20
            while os.waitpid(pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    print("hung")
                    break
                time.sleep(0.05)
            else:
                print("exited")
            flightrec.stop()
            """,
            frdir,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "exited"


class TestDumpRequest:
    def test_flightrec_dump_pid_asks_a_running_recorder(self, frdir: Path) -> None:
        """`flightrec dump PID` makes the running process write a dump and prints its path."""
        child = spawn_child(
            """
            import flightrec, time
            flightrec.start(triggers=False)
            for i in range(10):
                flightrec.record("note", i=i)
            print("ready", flush=True)
            time.sleep(30)
            """,
            frdir,
        )
        try:
            wait_ready(child)
            env = child_env(frdir)
            result = run_cli("dump", str(child.pid), env=env)
            assert result.returncode == 0, result.stderr
            path = Path(result.stdout.strip())
            assert path.exists()
            rec = flightrec.load(path)
            assert rec.meta["trigger"]["reason"] == "request"
            assert [e.data["i"] for e in rec.events()] == list(range(10))
        finally:
            child.kill()
            child.wait()

    def test_a_requested_dump_that_fails_is_not_answered_with_the_previous_one(
        self, frdir: Path, tmp_path: Path
    ) -> None:
        """The recorder dumped once; then its dump directory becomes unusable. `flightrec dump PID`
        says the dump could not be written (it printed the earlier dump's path, exit 0)."""
        dumps = tmp_path / "dumps"
        dumps.mkdir(mode=0o700)
        child = spawn_child(
            f"""
            import flightrec, time
            flightrec.start(triggers=False, dump_dir={str(dumps)!r})
            flightrec.record("note", i=1)
            print(flightrec.dump("first"), flush=True)
            print("ready", flush=True)
            time.sleep(30)
            """,
            frdir,
        )
        try:
            assert child.stdout is not None
            first = child.stdout.readline().strip()
            assert first.endswith(".frec"), first
            wait_ready(child)
            Path(first).unlink()
            dumps.rmdir()
            dumps.write_text("not a directory any more")
            result = run_cli("dump", str(child.pid), env=child_env(frdir))
            assert result.returncode == 1, (result.stdout, result.stderr)
            assert result.stdout == ""
            assert "could not write the dump" in result.stderr
        finally:
            child.kill()
            child.wait()

    def test_dump_of_an_unknown_pid_is_one_clear_line(self, frdir: Path) -> None:
        """Asking a pid that has no recorder fails with one line and a non-zero code."""
        result = run_cli("dump", "999999", env=child_env(frdir))
        assert result.returncode != 0
        assert result.stderr.count("\n") == 1 and "no flightrec recorder" in result.stderr


_ = (REPO, os, time, pytest)
