"""The flightrec Textual app: one app for dumps, live recorders and the start screen.

The app owns the :class:`~tui.sources.Source`, the background work (polling a live ring,
computing analysis facts) and navigation between screens. Screens read
``app.source`` and ``app.facts`` and subscribe to :attr:`FlightrecApp.source_changed` and
:attr:`FlightrecApp.fact_ready`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import get_current_worker

from flightrec.errors import FlightrecError
from flightrec.event import Event
from flightrec.reader import Recording

from .facts import OFFLOAD_EVENTS, UNAVAILABLE, AnalysisProcess, Cancelled, Failed, available, compute
from .sources import LiveSource, PollResult, Source
from .view import EventFilter

SCREENS: dict[str, tuple[str, str]] = {
    "overview": ("1", "Overview"),
    "timeline": ("2", "Timeline"),
    "steps": ("3", "Steps"),
    "tools": ("4", "Tools"),
    "memory": ("5", "Memory"),
    "checkpoints": ("6", "Checkpoints"),
    "resources": ("7", "Resources"),
}
"""Main screens: name -> (key, title), in navigation order."""

LIVE_REFRESH_S = 5.0
"""Minimum seconds between two recomputations of one analysis fact on a live recorder."""

SCREEN_HELP: dict[str, str] = {
    "overview": "Process, trigger, exception, counts and findings",
    "timeline": "Every event in order: filter, search, jump to errors",
    "steps": "The step/span tree with durations and errors",
    "tools": "Per-tool calls, errors by class, latency percentiles",
    "memory": "Context usage against the limit; live items; evictions",
    "checkpoints": "Pick two checkpoints and diff their state",
    "resources": "RSS and CPU over time",
}


def _screen_class(name: str) -> type[Screen[Any]]:
    """Import one screen module lazily (start-up cost is paid per screen, on first use)."""
    from . import screens

    return screens.load(name)


class FlightrecApp(App[int]):
    """Read a flightrec recording: a dump, a live recorder's ring, or pick one from a list."""

    TITLE = "flightrec"
    ENABLE_COMMAND_PALETTE = True
    CSS = """
    Screen { background: $surface; }
    .muted { color: $text-muted; }
    .panel-title { text-style: bold; color: $accent; padding: 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(key, f"goto('{name}')", title, show=False) for name, (key, title) in SCREENS.items()),
        Binding("question_mark", "help", "Help"),
        Binding("d", "dump_now", "Dump now"),
        Binding("ctrl+r", "recover", "Recover"),
        Binding("backspace", "home", "Back to list"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        source: Source | None = None,
        *,
        start_dir: str | None = None,
        poll_interval: float = 0.5,
        initial: str = "overview",
    ) -> None:
        """Open ``source``; without one, start on the list of recorders and dumps.

        Args:
            source: what to show; None shows the start screen.
            start_dir: directory the start screen lists (default: the per-user dirs).
            poll_interval: seconds between re-reads of a live ring.
            initial: the first main screen shown.
        """
        super().__init__()
        self.source: Source | None = source
        self.start_dir = start_dir
        self.poll_interval = poll_interval
        self.initial = initial
        self.facts: dict[str, Any] = {}
        self.facts_seq: dict[str, int] = {}
        self._fact_time: dict[str, float] = {}
        self.source_changed: Signal[PollResult | None] = Signal(self, "source-changed")
        self.fact_ready: Signal[str] = Signal(self, "fact-ready")
        self._fact_queue: list[str] = []
        self._fact_lock = threading.Lock()
        self._fact_worker_running = False
        self._poll_timer: Any = None
        self._polling = False
        self._installed: list[str] = []
        self._painted = threading.Event()
        """Set once the first screen is on the terminal: background work waits for it."""
        self._quitting = threading.Event()
        self._analysis = AnalysisProcess()

    # ------------------------------------------------------------------ lifecycle
    def on_mount(self) -> None:
        if self.source is None:
            from .screens.start import StartScreen

            self.push_screen(StartScreen(self.start_dir))
        else:
            self._show_source(self.initial)

    def on_unmount(self) -> None:
        # The fact worker (if any) sees this, stops waiting and terminates the analysis process;
        # an idle one is a daemon process, ended at interpreter exit.
        self._quitting.set()

    def _show_source(self, initial: str) -> None:
        src = self.source
        assert src is not None
        self.facts.clear()
        self.facts_seq.clear()
        self._fact_time.clear()
        self.sub_title = src.title()
        for name in SCREENS:
            self.install_screen(_screen_class(name)(), name)
            self._installed.append(name)
        self.push_screen(initial)
        self.call_after_refresh(self._painted.set)
        if not src.is_live:  # live, each screen asks for what it shows (a pass over the ring is not free)
            self.request_fact("counts")
        if src.is_live:
            self._poll_timer = self.set_interval(self.poll_interval, self._poll)

    def open_source(self, source: Source, initial: str = "overview") -> None:
        """Replace what is shown (from the start screen, or after a recover)."""
        self._close_source()
        self.source = source
        self._show_source(initial)

    def _close_source(self) -> None:
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        while len(self.screen_stack) > 1 and not getattr(self.screen, "IS_HOME", False):
            self.pop_screen()
        for name in self._installed:
            try:
                self.uninstall_screen(name)
            except Exception:
                pass
        self._installed.clear()
        with self._fact_lock:
            self._fact_queue.clear()

    def action_home(self) -> None:
        """Back to the start screen (only when the app was started on it)."""
        if not any(getattr(s, "IS_HOME", False) for s in self.screen_stack):
            return
        self._close_source()
        self.source = None
        self.sub_title = ""

    # ------------------------------------------------------------------ navigation
    def action_goto(self, name: str) -> None:
        """Show one of the main screens."""
        if self.source is None or name not in self._installed:
            return
        while len(self.screen_stack) > 1 and self.screen._name not in self._installed:
            if getattr(self.screen, "IS_HOME", False):
                self.push_screen(name)
                return
            self.pop_screen()
        if self.screen._name == name:
            return
        if self.screen._name in self._installed:
            self.switch_screen(name)
        else:
            self.push_screen(name)

    def show_in_timeline(self, flt: EventFilter | None = None, seq: int | None = None) -> None:
        """Switch to the timeline, narrowed by ``flt`` and/or with ``seq`` selected."""
        if self.source is None:
            return
        timeline = self.get_screen("timeline")
        self.action_goto("timeline")
        timeline.apply(flt, seq)  # type: ignore[attr-defined]

    def open_detail(self, event: Event) -> None:
        """Show one event's payload."""
        from .screens.detail import DetailScreen

        self.push_screen(DetailScreen(event))

    def action_help(self) -> None:
        """Show the key map."""
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every screen and action, for the command palette."""
        if self.source is not None:
            for name, (key, title) in SCREENS.items():
                yield SystemCommand(
                    f"Go to {title}", f"[{key}] {SCREEN_HELP[name]}", lambda n=name: self.action_goto(n)
                )
            yield SystemCommand(
                "Timeline: filter",
                "Narrow the timeline by kind, thread, tool or text",
                lambda: self._timeline_action("filter"),
            )
            yield SystemCommand(
                "Timeline: clear filter", "Show every event again", lambda: self._timeline_action("clear_filter")
            )
            yield SystemCommand(
                "Timeline: next error", "Jump to the next error event", lambda: self._timeline_action("next_error(1)")
            )
            yield SystemCommand(
                "Timeline: search", "Free-text search in the events", lambda: self._timeline_action("search")
            )
            if self.source.live_capable:
                yield SystemCommand(
                    "Timeline: follow", "Toggle following the newest events", lambda: self._timeline_action("follow")
                )
            if self.source.is_live:
                yield SystemCommand("Dump now", "Ask the recorder to write a dump", self.action_dump_now)
            if self.check_action("recover", ()):
                yield SystemCommand("Recover", "Turn the dead process's ring into a dump", self.action_recover)
            if any(getattr(s, "IS_HOME", False) for s in self.screen_stack):
                yield SystemCommand("Back to the list", "Recorders and dumps", self.action_home)
        yield SystemCommand("Help", "Show the key map", self.action_help)
        yield from super().get_system_commands(screen)

    def _timeline_action(self, action: str) -> None:
        self.action_goto("timeline")
        self.call_after_refresh(self.run_action, action, self.get_screen("timeline"))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide actions that do not apply (dump needs a live process, recover a dead one)."""
        src = self.source
        if action == "dump_now":
            return bool(src is not None and src.is_live)
        if action == "home":
            return self.source is not None and any(getattr(s, "IS_HOME", False) for s in self.screen_stack)
        if action == "recover":
            return bool(src is not None and src.live_capable and src.status in ("exited", "killed"))
        return True

    # ------------------------------------------------------------------ facts
    def request_fact(self, name: str, refresh: bool = False) -> Any:
        """The fact if computed; otherwise schedule it (published on :attr:`fact_ready`)."""
        src = self.source
        if src is None:
            return None
        have = name in self.facts
        # A ring that can grow: a fact computed before its last events is stale, also once the
        # process has ended (its last events arrived after the last refresh).
        stale = have and src.live_capable and self.facts_seq.get(name, 0) < src.index.last_seq
        # A live recorder changes all the time; recomputing a pass over the whole ring on every
        # poll would burn a core, so a stale fact is refreshed at most every LIVE_REFRESH_S.
        recent = time.monotonic() - self._fact_time.get(name, 0.0) < LIVE_REFRESH_S
        if have and not (refresh and stale and not recent):
            return self.facts[name]
        if not available(src.recording, name):
            self.facts[name] = UNAVAILABLE
            return UNAVAILABLE
        with self._fact_lock:
            if name not in self._fact_queue:
                self._fact_queue.append(name)
            start = not self._fact_worker_running
            self._fact_worker_running = True
        if start:
            self.run_worker(self._fact_worker, thread=True, group="facts", exit_on_error=False)
        return self.facts.get(name)

    def _fact_worker(self) -> None:
        src = self.source
        if src is None:
            return
        offload = src.index.total > OFFLOAD_EVENTS
        worker = get_current_worker()

        def stop() -> bool:
            # Textual cancels every worker when the app exits: stop waiting then.
            return worker.is_cancelled or self._quitting.is_set()

        snapshot: Recording | None = None
        self._painted.wait(2.0)  # the first screen first; the analysis can wait a frame
        if self._quitting.is_set():
            return
        try:
            while not stop():
                with self._fact_lock:
                    if not self._fact_queue or self.source is not src:
                        self._fact_worker_running = False
                        return
                    name = self._fact_queue.pop(0)
                last = src.index.last_seq
                value: Any = None
                if offload:
                    try:
                        value = self._analysis.compute(str(src.path), name, stop, keep=not src.live_capable)
                    except Cancelled:
                        return
                    except FlightrecError:
                        offload = False  # the file is gone (a process that exited): use our mapping
                    except Exception as exc:
                        if stop():
                            return
                        value = Failed(f"{type(exc).__name__}: {exc}")
                        self._from_thread(stop, self._fact_failed, name, exc)
                if value is None:
                    if snapshot is None:
                        snapshot = src.open_snapshot()
                    try:
                        value = compute(name, snapshot)
                    except Exception as exc:  # analysis bugs must not take the viewer down
                        value = Failed(f"{type(exc).__name__}: {exc}")
                        self._from_thread(stop, self._fact_failed, name, exc)
                self._from_thread(stop, self._fact_done, src, name, value, last)
        except Cancelled:
            return
        finally:
            with self._fact_lock:
                self._fact_worker_running = False

    def _from_thread(self, stop: Any, callback: Any, *args: Any) -> None:
        """``call_from_thread`` unless the app is closing (it would wait forever for a dead loop)."""
        if stop() or not self.is_running:
            raise Cancelled(getattr(callback, "__name__", "callback"))
        self.call_from_thread(callback, *args)

    def _fact_failed(self, name: str, exc: BaseException) -> None:
        self.notify(f"{name}: analysis failed ({type(exc).__name__}: {exc})", severity="error")

    def _fact_done(self, src: Source | None, name: str, value: Any, last_seq: int) -> None:
        if src is not self.source:
            return
        self.facts[name] = value
        self.facts_seq[name] = last_seq
        self._fact_time[name] = time.monotonic()
        self.fact_ready.publish(name)

    # ------------------------------------------------------------------ live
    def _poll(self) -> None:
        if self._polling or self.source is None or not self.source.is_live:
            return
        self._polling = True
        self.run_worker(self._poll_worker, thread=True, group="poll", exit_on_error=False)

    def _poll_worker(self) -> None:
        src = self.source
        try:
            result = src.poll() if src is not None else None
        except Exception as exc:  # a torn read we did not anticipate: try again next time
            result = None
            self.call_from_thread(self.log.warning, f"poll failed: {exc!r}")
        finally:
            self._polling = False
        if result is not None:
            self.call_from_thread(self._apply_poll, src, result)

    def _apply_poll(self, src: Source | None, result: PollResult) -> None:
        if src is not self.source or src is None:
            return
        was_live = True
        src.index = result.index
        self.source_changed.publish(result)
        if not src.is_live and was_live:
            if self._poll_timer is not None:
                self._poll_timer.stop()
                self._poll_timer = None
            # No more polls will refresh the facts: recompute those computed before the last
            # events (the screen shown asks now, the others when shown).
            self._fact_time.clear()
            from .screens.base import MainScreen

            if isinstance(self.screen, MainScreen):
                self.screen.on_screen_resume()
            reason = getattr(src, "exit_reason", "") or src.status
            self.notify(
                f"pid {src.pid} is gone: {reason}. Keeping the {src.index.total:,} events captured; "
                f"press ctrl+r to recover them into a dump in {dump_dir_for(src)}.",
                title="Process ended",
                severity="warning",
                timeout=30,
            )
            self.refresh_bindings()

    def action_dump_now(self) -> None:
        """Ask the live recorder for a dump (it is written by the agent's recorder)."""
        src = self.source
        if src is None or not src.is_live:
            self.notify("dump now needs a live recorder", severity="warning")
            return
        self.notify(f"asking pid {src.pid} for a dump…")
        self.run_worker(lambda: self._dump_worker(src), thread=True, group="dump", exit_on_error=False)

    def _dump_worker(self, src: Source) -> None:
        from flightrec.cli.dump_cmd import request_dump

        try:
            path = request_dump(src.path, timeout=10.0)
        except (FlightrecError, OSError) as exc:
            self.call_from_thread(self.notify, f"dump failed: {exc}", severity="error")
            return
        if path:
            self.call_from_thread(self.notify, f"dump written to {path}", title="Dump", timeout=15)
        else:
            self.call_from_thread(self.notify, "the recorder could not write the dump", severity="error")

    def action_recover(self) -> None:
        """Turn the ring of a process that is gone into a dump, and show that dump."""
        src = self.source
        if not isinstance(src, LiveSource) or src.is_live:
            self.notify("recover is for a process that has exited or was killed", severity="warning")
            return
        try:
            out = recover_source(src)
        except (FlightrecError, OSError) as exc:
            self.notify(f"recover failed: {exc}", severity="error")
            return
        from .sources import DumpSource

        current = self.screen._name if self.screen._name in self._installed else "overview"
        self.open_source(DumpSource.open(out), initial=current or "overview")
        self.notify(f"recovered into {out}", title="Recovered", timeout=15)


def dump_dir_for(src: Source) -> Path:
    """Where a dump of ``src``'s process belongs: the directory its recorder writes dumps to.

    ``d`` asks the recorder for a dump, which it writes there; ``ctrl+r`` puts the dump it
    recovers there too (as ``flightrec recover`` does), so that a process's dumps are in one
    place, whichever way they were made. A ring that does not say (an older flightrec's, or a
    path redaction would change), or whose directory is gone, falls back to this user's
    dump directory.
    """
    from flightrec.cli.recover_cmd import default_out_dir
    from flightrec.dump import recorded_dump_dir

    return recorded_dump_dir(src.meta) or default_out_dir()


def recover_source(src: LiveSource) -> Path:
    """Write a dump from a dead process's ring (from our mapping if the file is gone), where
    ``flightrec recover`` would (:func:`flightrec.cli.recover_cmd.recover_into`)."""
    from flightrec.cli.recover_cmd import recover_file, recover_into

    if src.path.exists():
        return recover_file(src.path, None)
    return recover_into(src.recording, None)


def run_app(app: FlightrecApp) -> int:
    """Run the app in this terminal; returns the exit code."""
    if not sys.stdout.isatty() or not sys.stdin.isatty():
        raise FlightrecError("the TUI needs a terminal (use `flightrec show` for text output)")
    app.run()
    return int(app.return_code or 0)
