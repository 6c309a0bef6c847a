"""Attaching to a live child process: new events arrive, dump now, the child dying mid-attach."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flightrec.tui.app import FlightrecApp
from flightrec.tui.screens.timeline import TimelineScreen
from flightrec.tui.sources import DumpSource, LiveSource
from flightrec.tui.widgets.event_list import EventList
from flightrec.tui.widgets.nav import StatusLine

from .util import screen_text, wait_for

SIZE = (120, 30)


@pytest.fixture
def dump_env(frdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Recovered dumps go to the test's directory, not the user's."""
    monkeypatch.setenv("FLIGHTREC_DIR", str(frdir))
    return frdir


async def _dump_written(pilot: Any, app: FlightrecApp) -> Path:
    """The path in the app's "dump written to" notice, once it shows (after ``d``)."""
    await wait_for(
        pilot,
        lambda: any("dump written to" in n.message for n in app._notifications),
        timeout=20,
        what="dump notification",
    )
    message = next(n.message for n in app._notifications if "dump written to" in n.message)
    return Path(message.split("dump written to ", 1)[1])


async def _gone(pilot: Any, app: FlightrecApp) -> str:
    """The app's "is gone" notice, once the poll that found the process dead is applied.

    (Not ``source.status == "killed"``: the poll sets it in its worker thread, a moment before
    the app swaps in that poll's index and notifies.)
    """
    await wait_for(pilot, lambda: any("is gone" in n.message for n in app._notifications), what="the 'is gone' notice")
    assert app.source.status == "killed"
    return next(n.message for n in app._notifications if "is gone" in n.message)


class TestLive:
    async def test_new_events_arrive_and_are_followed(self, live_child: tuple[subprocess.Popen[str], Path]) -> None:
        """The timeline grows while the child records, follows the tail, and shows the rate."""
        _, ring = live_child
        app = FlightrecApp(LiveSource.attach(ring), initial="timeline", poll_interval=0.1)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, TimelineScreen), what="the timeline")
            screen = app.screen
            assert isinstance(screen, TimelineScreen)
            lst = screen.query_one(EventList)
            first = app.source.index.total
            # (generous deadlines: a loaded machine slows the child and, in pure Python, each poll)
            await wait_for(pilot, lambda: app.source.index.total > first + 100, timeout=60, what="new events")
            await wait_for(pilot, lambda: lst.cursor == len(lst.view) - 1, timeout=60, what="following the tail")
            # (what the screen shows follows the poll that moved the cursor; and a loaded machine
            # may delay the child's heartbeat enough to show it as not responding for a while)
            await wait_for(
                pilot,
                lambda: all(s in screen_text(app) for s in ("● LIVE", "ev/s", "following")),
                timeout=60,
                what="the live status and the following mark",
            )
            # f stops following; new events keep arriving without moving the cursor. (pilot.press
            # can return before the key, forwarded from the app to the focused list, reaches the
            # screen's binding: a poll in between moved the cursor on, as it was still following.)
            await pilot.press("f")
            await wait_for(pilot, lambda: not screen.following, what="following stopped")
            cursor = lst.cursor
            total = app.source.index.total
            await wait_for(pilot, lambda: app.source.index.total > total + 50, timeout=60, what="more events")
            assert lst.cursor == cursor

    async def test_dump_now(self, live_child: tuple[subprocess.Popen[str], Path], frdir: Path) -> None:
        """d asks the recorder for a dump; the app reports where it went."""
        _, ring = live_child
        app = FlightrecApp(LiveSource.attach(ring), initial="timeline", poll_interval=0.1)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("d")
            path = await _dump_written(pilot, app)
            assert path.exists() and path.suffix == ".frec"

    async def test_child_killed_mid_attach_is_reported_and_recoverable(
        self, live_child: tuple[subprocess.Popen[str], Path], dump_env: Path
    ) -> None:
        """Killing the child is reported on screen (no traceback); ctrl+r recovers its ring into a dump."""
        proc, ring = live_child
        app = FlightrecApp(LiveSource.attach(ring), initial="timeline", poll_interval=0.1)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.source.index.total > 50, what="some events")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            await _gone(pilot, app)
            kept = app.source.index.total
            await wait_for(
                pilot, lambda: all(s in screen_text(app) for s in ("KILLED", "ctrl+r")), what="the killed status shown"
            )
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: isinstance(app.source, DumpSource), what="recovered dump")
            assert app.source.index.total >= kept
            assert app.source.path.parent == dump_env
            assert not ring.exists()

    async def test_dump_now_and_recover_put_dumps_in_the_process_dump_directory(
        self, live_child: tuple[subprocess.Popen[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """d and ctrl+r write their dumps in one place, where the process's own dumps go (its
        FLIGHTREC_DIR here), whatever the viewer's settings; the app says where each went."""
        # GIVEN a viewer whose own dump directory is elsewhere than the child's
        viewer_dir = tmp_path / "viewer"
        viewer_dir.mkdir(mode=0o700)
        monkeypatch.setenv("FLIGHTREC_DIR", str(viewer_dir))
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        proc, ring = live_child
        process_dir = ring.parent
        app = FlightrecApp(LiveSource.attach(ring), initial="timeline", poll_interval=0.1)
        async with app.run_test(size=SIZE) as pilot:
            # WHEN d asks the recorder for a dump
            await pilot.press("d")
            asked = await _dump_written(pilot, app)
            # THEN it is in the process's dump directory, and the path shown is absolute
            assert asked.is_absolute() and asked.parent == process_dir and asked.exists()
            # WHEN the process dies and ctrl+r recovers its ring
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            gone = await _gone(pilot, app)
            assert f"into a dump in {process_dir}." in gone
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: isinstance(app.source, DumpSource), what="recovered dump")
            # THEN the recovered dump is next to the one d asked for, and the app says so
            recovered = app.source.path
            assert recovered.parent == process_dir
            assert any(f"recovered into {recovered}" in n.message for n in app._notifications)
            assert not list(viewer_dir.iterdir()) and not (tmp_path / "state").exists()

    async def test_facts_are_recomputed_once_the_child_is_gone(
        self, live_child: tuple[subprocess.Popen[str], Path]
    ) -> None:
        """The counts on screen cover every event kept, not those seen before the child died."""
        proc, ring = live_child
        app = FlightrecApp(LiveSource.attach(ring), initial="overview", poll_interval=0.1)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "counts" in app.facts, what="counts")
            counted = app.facts["counts"].total
            await wait_for(pilot, lambda: app.source.index.total > counted + 50, what="events after the counts")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            await _gone(pilot, app)
            kept = app.source.index.total
            await wait_for(pilot, lambda: app.facts["counts"].total == kept, timeout=60, what="counts of every event")
            await wait_for(pilot, lambda: f"{kept:,}" in screen_text(app), what="the counts shown")


class TestRingTail:
    def test_incremental_reads_match_a_full_read_across_wraps(self, frdir: Path) -> None:
        """Polling a small ring that wraps many times finds exactly the blocks a full scan finds."""
        import time

        from flightrec.tui.ringtail import RingTail

        from flightrec.cli.discovery import find_rings
        from flightrec.reader import open_recording
        from tests.conftest import spawn_child

        proc = spawn_child(
            """
            import time, flightrec
            flightrec.start(triggers=False, resources=0, size="1MiB", block_size="16KiB", keep_ring=True)
            print("ready", flush=True)
            for i in range(1, 250_001):  # the ring goes round about four times
                flightrec.record("note", text="tick", n=i, payload="x" * 60)
                if i % 1000 == 0:
                    time.sleep(0.005)  # paced: a lap takes at least a quarter of a second
            flightrec.stop()
            """,
            frdir,
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            ring = find_rings(str(frdir))[0].path
            tail = RingTail(ring)
            seen_wrap = False
            polls = 0
            # Watch until the child is done, not for a fixed time: a loaded machine slows it.
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline:
                polls += 1
                first = tail.snapshot().blocks[:1]
                seen_wrap = seen_wrap or bool(first and first[0].header.block_seq > 1)
                time.sleep(0.03)
            proc.wait(timeout=30)
            inc = tail.snapshot()
            full = open_recording(ring)
            assert seen_wrap, "the ring should have wrapped while we watched"
            assert [b.header.block_seq for b in inc.blocks] == [b.header.block_seq for b in full.blocks]
            assert inc.meta["closed"]
            assert tail.full_scans <= max(2, polls // 4), "polls should mostly scan only the new bytes"
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


class TestWrappedWhileShown:
    async def test_events_the_ring_wrapped_past_are_shown_as_overwritten_not_damaged(self, frdir: Path) -> None:
        """Blocks listed by the view and overwritten by the recorder before they were shown say so,
        quietly: a live ring losing its oldest blocks is normal, not damage."""
        import random

        import flightrec

        rec = flightrec.start(size="256KiB", block_size="8KiB", dir=frdir, triggers=False, resources=0)
        assert rec is not None
        rng = random.Random(5)

        def fill(n: int) -> None:
            for i in range(n):
                flightrec.record("note", i=i, pad="".join(rng.choice("abcdefgh0123456789") for _ in range(100)))

        fill(1000)
        # no re-read of the ring while the test runs: the view keeps the blocks it listed
        app = FlightrecApp(LiveSource.attach(rec.ring_path), initial="timeline", poll_interval=3600)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert "i=0 " in screen_text(app)  # it opens on the oldest events: those blocks are read
            fill(3000)  # wraps past every block the view listed
            lst = app.screen.query_one(EventList)
            for key in ("end", "pageup", "pageup", "pageup"):  # to blocks not read yet
                await pilot.press(key)
                await pilot.pause()
            assert lst.cursor < 999 - 50
            text = screen_text(app)
            assert "were overwritten by newer ones (the ring wrapped)" in text, text
            assert "damaged" not in text, text
            status = app.screen.query_one(StatusLine)
            status.refresh_status()  # (as after a poll)
            line = str(status.render())
            assert "overwritten blocks" in line and "damaged" not in line, line
