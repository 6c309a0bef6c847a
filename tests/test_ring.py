"""The ring and the reader in one process: ordering, wrap-around, threads, live reading."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import flightrec
from flightrec import format as fmt
from flightrec.reader import open_recording


def _filler(rng: random.Random, n: int) -> str:
    """Incompressible text, so blocks fill and the ring wraps quickly."""
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def _notes_then_more(frdir: Path) -> tuple[flightrec.api.Recorder, Callable[[], None]]:
    """A recorder (256 KiB ring) holding 1000 notes, and what records 3000 more (a few laps)."""
    rec = flightrec.start(size="256KiB", block_size="8KiB", dir=frdir, triggers=False, resources=0)
    assert rec is not None
    rng = random.Random(4)

    def notes(first: int, last: int) -> None:
        for i in range(first, last):
            flightrec.record("note", i=i, pad=_filler(rng, 100))

    notes(0, 1000)
    return rec, lambda: notes(1000, 4000)


class TestRoundTrip:
    def test_events_come_back_in_order_with_their_fields(self, recorder: flightrec.api.Recorder) -> None:
        """Every recorded event is read back with its kind, fields, thread and seq."""
        for i in range(500):
            flightrec.record("note", i=i, text=f"event {i}", nested={"a": [1, 2, {"b": None}]})
        path = flightrec.dump()
        assert path is not None
        events = list(flightrec.load(path).events())
        assert [e.seq for e in events] == list(range(1, 501))
        assert [e.data["i"] for e in events] == list(range(500))
        assert events[7].kind == "note"
        assert events[7].thread == threading.current_thread().name
        assert events[7].data["nested"] == {"a": [1, 2, {"b": None}]}

    def test_ring_file_and_dump_give_the_same_events(self, recorder: flightrec.api.Recorder) -> None:
        """One reader serves both: the live ring file and its dump hold the same events."""
        for i in range(3000):
            flightrec.record("note", i=i, pad="x" * 50)
        dump = flightrec.dump()
        assert dump is not None
        from_ring = [(e.seq, e.data) for e in open_recording(recorder.ring_path).events()]
        from_dump = [(e.seq, e.data) for e in flightrec.load(dump).events()]
        assert from_ring == from_dump

    def test_pinned_event_survives_wrap_around(self, frdir: Path) -> None:
        """A pinned event stays readable after the ring has overwritten its block many times."""
        flightrec.start(size="256KiB", block_size="8KiB", dir=frdir, triggers=False, resources=0)
        first = flightrec.record("task", pin=True, prompt="the initial task")
        rng = random.Random(1)
        for i in range(3000):
            flightrec.record("note", i=i, pad=_filler(rng, 200))
        rec = flightrec.load(flightrec.dump())
        events = list(rec.events())
        assert events[0].seq == first and events[0].data["prompt"] == "the initial task"
        assert events[1].seq > first + 1  # the ring did wrap: the task's neighbours are gone


class TestWrapAround:
    def test_wrap_keeps_exactly_the_newest_blocks(self, frdir: Path) -> None:
        """After many wraps the recording is a gap-free run ending at the newest event."""
        rec = flightrec.start(size="256KiB", block_size="8KiB", dir=frdir, triggers=False, resources=0)
        assert rec is not None
        rng = random.Random(2)
        n = 5000
        for i in range(n):
            flightrec.record("note", i=i, pad=_filler(rng, 120))
        ring = rec.ring
        expected_blocks = [b[0] for b in ring.blocks]
        path = flightrec.dump()
        r = flightrec.load(path)
        assert [b.header.block_seq for b in r.blocks] == [*expected_blocks, ring.block_seq]
        seqs = [e.seq for e in r.events()]
        assert seqs[-1] == n
        assert seqs == list(range(seqs[0], n + 1))
        assert seqs[0] > 1000  # old events really were overwritten
        # The surviving blocks are the newest: every block seq from the oldest kept to the newest.
        kept = [b.header.block_seq for b in r.blocks]
        assert kept == list(range(kept[0], kept[-1] + 1))
        assert r.damaged == 0

    def test_orphaned_ring_after_wrap_reads_the_same_window(self, frdir: Path) -> None:
        """Reading the ring file directly after wrapping gives the same events as a dump."""
        rec = flightrec.start(size="256KiB", block_size="8KiB", dir=frdir, triggers=False, resources=0)
        assert rec is not None
        rng = random.Random(3)
        for i in range(4000):
            flightrec.record("note", i=i, pad=_filler(rng, 100))
        dump_seqs = [e.seq for e in flightrec.load(flightrec.dump()).events()]
        ring_seqs = [e.seq for e in open_recording(rec.ring_path).events()]
        assert ring_seqs == dump_seqs

    def test_a_live_ring_reads_as_it_was_when_opened(self, frdir: Path) -> None:
        """The writer wrapping past every block after the ring was opened changes nothing
        that is read: each pass over the events gives the same, gap-free run."""
        rec, more = _notes_then_more(frdir)
        with open_recording(rec.ring_path) as r:
            more()  # the writer wraps past every block there was
            seqs = [e.seq for e in r.events()]
            assert seqs == [e.seq for e in r.events()]
            assert seqs[-1] == 1000 and seqs == list(range(seqs[0], 1001)) and seqs[0] < 800
            assert (r.overwritten, r.damaged) == (0, 0)

    def test_blocks_overwritten_while_a_live_ring_is_read_are_not_called_damaged(
        self, frdir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Read through its mapping (a ring too big to copy), blocks the writer wrapped over
        after they were found are counted as overwritten (gone, as a ring's oldest blocks
        go), not as damaged; `show` says so too."""
        from flightrec import reader
        from flightrec.cli.show_cmd import summary

        monkeypatch.setattr(reader, "_COPY_MAX", 0)
        rec, more = _notes_then_more(frdir)
        with open_recording(rec.ring_path) as r:
            found = len(r.blocks)
            more()  # the writer wraps past every block the reader found
            # what is left is the open block, copied when the ring was opened
            assert [e.seq for e in r.events()] == [e.seq for e in r.open_events]
            assert (r.overwritten, r.damaged) == (found, 0)
            assert all(r.was_overwritten(i) for i in range(found))
            shown = summary(r)
        assert f"wrapped   {found} block(s) overwritten by the running process while being read" in shown
        assert "damage" not in shown

    def test_a_damaged_block_of_a_ring_is_still_damaged(self, frdir: Path) -> None:
        """A payload that fails its CRC under an unchanged header is damage, as before."""
        rec = flightrec.start(size="256KiB", block_size="8KiB", dir=frdir, triggers=False, resources=0, keep_ring=True)
        assert rec is not None
        for i in range(500):
            flightrec.record("note", i=i, pad="x" * 100)
        path = rec.ring_path
        flightrec.stop()
        with open_recording(path) as r:
            offset = r.blocks[1].offset
        data = bytearray(path.read_bytes())
        data[offset + fmt.BLOCK_HEADER_SIZE + 5] ^= 0xFF
        path.write_bytes(bytes(data))
        with open_recording(path) as r:
            list(r.events())
            assert (r.damaged, r.overwritten) == (1, 0) and not r.was_overwritten(1)


class TestThreads:
    def test_eight_threads_give_unique_gap_free_seqs(self, recorder: flightrec.api.Recorder) -> None:
        """Eight threads recording at once produce unique, gap-free sequence numbers."""
        per_thread = 2000
        barrier = threading.Barrier(8)

        def work(t: int) -> None:
            barrier.wait()
            for i in range(per_thread):
                flightrec.record("note", t=t, i=i)

        threads = [threading.Thread(target=work, args=(t,), name=f"worker-{t}") for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        events = list(flightrec.load(flightrec.dump()).events())
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, 8 * per_thread + 1))
        for t in range(8):  # each thread's own events are in its own order
            mine = [e.data["i"] for e in events if e.data["t"] == t]
            assert mine == list(range(per_thread))
            assert {e.thread for e in events if e.data["t"] == t} == {f"worker-{t}"}

    def test_reader_of_a_live_ring_sees_only_valid_events(self, frdir: Path) -> None:
        """A reader opening the ring while a writer thread appends sees only whole, valid events."""
        rec = flightrec.start(size="512KiB", block_size="8KiB", dir=frdir, triggers=False, resources=0)
        assert rec is not None
        stop = threading.Event()

        def writer() -> None:
            i = 0
            while not stop.is_set():
                flightrec.record("note", i=i, check=i * 7, pad="p" * (i % 300))
                i += 1

        th = threading.Thread(target=writer)
        th.start()
        try:
            for _ in range(8):
                r = open_recording(rec.ring_path)
                events = list(r.events())
                seqs = [e.seq for e in events]
                assert seqs == sorted(set(seqs))
                for e in events:
                    assert e.data["check"] == e.data["i"] * 7
                    assert e.data["pad"] == "p" * (e.data["i"] % 300)
                r.close()
        finally:
            stop.set()
            th.join()


class TestBadPayloads:
    def test_unserializable_value_is_stored_as_repr(self, frdir: Path) -> None:
        """An object msgpack cannot encode is stored as its repr, not lost and not raised."""
        flightrec.start(dir=frdir, triggers=False, redact=False, resources=0)

        class Thing:
            def __repr__(self) -> str:
                return "<Thing 42>"

        flightrec.record("note", obj=Thing(), ok=1)
        ev = next(flightrec.load(flightrec.dump()).events())
        assert ev.data["obj"] == "<Thing 42>"
        assert ev.data["ok"] == 1

    def test_oversized_event_is_truncated_with_a_marker(self, recorder: flightrec.api.Recorder) -> None:
        """A 10 MB value is stored truncated, with the marker and the original size."""
        flightrec.record("note", big="x" * 10_000_000, small="kept")
        ev = next(flightrec.load(flightrec.dump()).events())
        assert ev.data["small"] == "kept"
        assert len(ev.data["big"]) < 10_000
        assert "truncated" in ev.data["big"]

    def test_broken_repr_and_cycles_never_raise(self, frdir: Path) -> None:
        """Cyclic data and objects whose repr raises are recorded degraded; the caller sees nothing."""
        flightrec.start(dir=frdir, triggers=False, redact=False, resources=0)

        class Evil:
            def __repr__(self) -> str:
                raise RuntimeError("no repr for you")

        cyclic: list[object] = []
        cyclic.append(cyclic)
        assert flightrec.record("note", evil=Evil()) is not None
        assert flightrec.record("note", loop=cyclic) is not None
        assert flightrec.record("note", huge=10**100) is not None
        events = list(flightrec.load(flightrec.dump()).events())
        assert len(events) == 3
        assert "Evil" in str(events[0].data["evil"])


class TestDisabled:
    def test_calls_without_a_recorder_are_no_ops(self) -> None:
        """record/dump before start() do nothing and return None."""
        assert flightrec.get_recorder() is None
        assert flightrec.record("note", x=1) is None
        assert flightrec.dump() is None

    def test_disable_env_var_turns_start_into_a_no_op(self, frdir: Path, monkeypatch: object) -> None:
        """FLIGHTREC_DISABLE=1 makes start() return None and create no ring."""
        import os

        os.environ["FLIGHTREC_DISABLE"] = "1"
        try:
            assert flightrec.start(dir=frdir) is None
            assert list(frdir.iterdir()) == []
        finally:
            del os.environ["FLIGHTREC_DISABLE"]

    def test_stop_removes_the_ring_file(self, frdir: Path) -> None:
        """A clean stop() deletes the ring unless keep_ring is set."""
        rec = flightrec.start(dir=frdir, triggers=False, resources=0)
        assert rec is not None and rec.ring_path.exists()
        flightrec.stop()
        assert not rec.ring_path.exists()
        rec = flightrec.start(dir=frdir, triggers=False, keep_ring=True, resources=0)
        assert rec is not None
        flightrec.stop()
        assert rec.ring_path.exists()

    def test_start_is_idempotent(self, recorder: flightrec.api.Recorder) -> None:
        """A second start() returns the running recorder."""
        assert flightrec.start() is recorder
