"""Dump writing: atomic files, failures that leave the ring intact, concurrency, caps."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import flightrec
from flightrec.dump import enforce_caps

from .conftest import run_child


class TestFailures:
    def test_unusable_dump_dir_fails_cleanly_and_recovers(
        self, frdir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A dump into an unusable directory returns None with a message; the next one succeeds once fixed."""
        blocker = frdir / "blocker"
        blocker.write_text("a file where the dump directory should be")
        rec = flightrec.start(dir=frdir, dump_dir=blocker / "dumps", triggers=False, resources=0)
        assert rec is not None
        for i in range(100):
            flightrec.record("note", i=i)
        assert flightrec.dump() is None
        assert "flightrec:" in capsys.readouterr().err
        assert rec.dump_failures == 1
        blocker.unlink()
        path = flightrec.dump()
        assert path is not None
        assert [e.data["i"] for e in flightrec.load(path).events()] == list(range(100))
        assert flightrec.load(path).meta["counters"]["dump_failures"] == 1

    def test_disk_full_leaves_no_partial_file_and_the_ring_intact(self, frdir: Path) -> None:
        """With file writes capped (as on a full disk) the dump fails, leaves nothing, and a later dump works."""
        result = run_child(
            """
            import resource, signal, flightrec, pathlib, sys
            flightrec.start(triggers=False, redact=False)
            for i in range(5000):
                flightrec.record("note", i=i, pad="x" * 200)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (20000, resource.RLIM_INFINITY))
            print("first", flightrec.dump())
            resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            flightrec.record("note", i=5000, pad="after")
            print("second", flightrec.dump())
            """,
            frdir,
        )
        assert result.returncode == 0, result.stderr
        lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
        assert lines["first"] == "None"
        assert "writing dump" in result.stderr
        dumps = list(frdir.glob("*.frec"))
        assert [str(p) for p in dumps] == [lines["second"]]
        assert not list(frdir.glob(".*.tmp")), "no temporary file left behind"
        events = list(flightrec.load(dumps[0]).events())
        assert [e.data["i"] for e in events] == list(range(5001))


class TestConcurrency:
    def test_concurrent_dumps_write_one_file(self, recorder: flightrec.api.Recorder) -> None:
        """Eight threads dumping at once: one dump is written, the others are refused, none corrupt."""
        for i in range(20000):
            flightrec.record("note", i=i, pad="y" * 100)
        barrier = threading.Barrier(8)
        results: list[Path | None] = []

        def go() -> None:
            barrier.wait()
            results.append(flightrec.dump())

        threads = [threading.Thread(target=go) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        written = [r for r in results if r is not None]
        assert len(written) >= 1
        for path in written:
            rec = flightrec.load(path)
            assert rec.damaged == 0
            seqs = [e.seq for e in rec.events()]
            assert seqs == list(range(seqs[0], seqs[-1] + 1))
        assert len(written) < 8, "concurrent dumps are refused, not queued"


class TestCaps:
    def test_oldest_dumps_are_deleted_beyond_the_cap(self, frdir: Path) -> None:
        """The dump directory keeps at most max_dumps files, deleting the oldest."""
        flightrec.start(dir=frdir, triggers=False, resources=0, max_dumps=3)
        paths = []
        for i in range(6):
            flightrec.record("note", i=i)
            p = flightrec.dump(reason=f"r{i}")
            assert p is not None
            paths.append(p)
        left = sorted(frdir.glob("*.frec"))
        assert len(left) == 3
        assert set(left) == set(paths[-3:])

    def test_enforce_caps_by_bytes(self, tmp_path: Path) -> None:
        """Byte caps delete oldest first until the incoming dump fits."""
        import os
        import time

        for i in range(5):
            p = tmp_path / f"d{i}.frec"
            p.write_bytes(b"x" * 1000)
            os.utime(p, (time.time() + i, time.time() + i))
        removed = enforce_caps(tmp_path, 0, 3500, incoming=1000)
        assert sorted(p.name for p in removed) == ["d0.frec", "d1.frec", "d2.frec"]


class TestNames:
    @pytest.mark.parametrize(
        ("argv0", "prog"),
        [("agent.py", "agent"), ("-c", "c"), (".hidden.py", "hidden"), ("---", "python"), ("", "python")],
    )
    def test_a_dump_name_never_starts_with_a_dot_or_a_dash(
        self, monkeypatch: pytest.MonkeyPatch, argv0: str, prog: str
    ) -> None:
        """`python -c` or a hidden script would make a hidden file, or one that reads as an option."""
        from flightrec.dump import dump_name

        monkeypatch.setattr("sys.argv", [argv0])
        assert dump_name(42, "exception", now=0).startswith(f"{prog}-42-")


class TestExplicitPath:
    def test_an_explicit_path_never_prunes_its_directory(self, frdir: Path, tmp_path: Path) -> None:
        """dump(path=...) into a directory of the user's own .frec files deletes none of them."""
        mine = tmp_path / "mine"
        mine.mkdir()
        for i in range(5):
            (mine / f"keep-{i}.frec").write_bytes(b"someone else's dump")
        flightrec.start(dir=frdir, triggers=False, resources=0, max_dumps=3, max_dump_bytes="1KiB")
        flightrec.record("note", i=1)
        out = flightrec.dump(path=mine / "new.frec")
        assert out == mine / "new.frec"
        assert sorted(p.name for p in mine.glob("*.frec")) == [f"keep-{i}.frec" for i in range(5)] + ["new.frec"]

    def test_a_directory_path_gets_the_dump_inside_it(self, frdir: Path, tmp_path: Path) -> None:
        """dump(path=DIR) writes DIR/<usual name>.frec, not a file named like DIR beside it."""
        target = tmp_path / "into"
        target.mkdir()
        flightrec.start(dir=frdir, triggers=False, resources=0)
        flightrec.record("note", i=1)
        out = flightrec.dump(reason="manual", path=target)
        assert out is not None and out.parent == target and out.name.endswith("-manual.frec")
        assert [e.data for e in flightrec.load(out).events()] == [{"i": 1}]


def _two_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Two new directories: where a child starts, and where it moves to with chdir."""
    base, elsewhere = tmp_path / "base", tmp_path / "elsewhere"
    base.mkdir()
    elsewhere.mkdir()
    return base, elsewhere


class TestDumpDirectory:
    def test_a_relative_dump_directory_is_fixed_at_start(self, frdir: Path, tmp_path: Path) -> None:
        """A relative dump directory means the one under the working directory at start: a
        chdir later moves neither the dumps nor the meaning of the (absolute) path returned."""
        base, elsewhere = _two_dirs(tmp_path)
        result = run_child(
            f"""
            import os, flightrec
            os.chdir({str(base)!r})
            flightrec.start(triggers=False, resources=0, dump_dir="dumps")
            os.chdir({str(elsewhere)!r})
            print(flightrec.dump(reason="manual"))
            """,
            frdir,
        )
        assert result.returncode == 0, result.stderr
        out = Path(result.stdout.strip())
        assert out.is_absolute() and out.parent == base / "dumps" and out.exists()
        assert not (elsewhere / "dumps").exists()

    def test_the_ring_header_says_where_dumps_go(self, frdir: Path, tmp_path: Path) -> None:
        """A viewer reads the dump directory in the ring's header (to recover next to the
        process's own dumps); a path that redaction would change is left out."""
        rec = flightrec.start(dir=frdir, triggers=False, resources=0)
        assert rec is not None
        with flightrec.load(rec.ring_path) as ring:
            assert ring.meta["config"]["dump_dir"] == str(frdir)
        flightrec.stop()
        private = tmp_path / "alice@example.com"
        rec = flightrec.start(dir=frdir, dump_dir=private, triggers=False, resources=0)
        assert rec is not None
        with flightrec.load(rec.ring_path) as ring:
            assert "dump_dir" not in ring.meta["config"]
            assert "alice@example.com" not in str(ring.meta)
        flightrec.stop()

    def test_a_relative_ring_directory_is_fixed_at_start(self, frdir: Path, tmp_path: Path) -> None:
        """A ring made in a relative directory is still removed at a clean stop after a chdir."""
        base, elsewhere = _two_dirs(tmp_path)
        result = run_child(
            f"""
            import os, flightrec
            os.chdir({str(base)!r})
            rec = flightrec.start(triggers=False, resources=0, dir="rings")
            print(rec.ring_path)
            os.chdir({str(elsewhere)!r})
            flightrec.stop()
            """,
            frdir,
        )
        assert result.returncode == 0, result.stderr
        ring = Path(result.stdout.strip())
        assert ring.is_absolute() and ring.parent == base / "rings"
        assert list((base / "rings").iterdir()) == []
