"""Timeline: every event in order, filterable, searchable, following a live recorder."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from flightrec.event import Event

from ..facts import Counts, counted_paths, span_paths
from ..render import is_error, one_line, searchable
from ..sources import PollResult
from ..view import EventFilter, TimelineView
from ..widgets.event_list import EventList
from .base import MainScreen


class TimelineScreen(MainScreen):
    """Every event, one line each; Enter opens its payload."""

    NAME = "timeline"
    FACTS = ("steps",)
    LIVE_FACTS = ()
    """Live, step names come from the step_start events as they are decoded: no re-analysis."""

    DEFAULT_CSS = """
    TimelineScreen #tl-bar { height: 1; background: $boost; padding: 0 1; }
    TimelineScreen #tl-search { dock: bottom; display: none; margin-bottom: 1; }
    TimelineScreen #tl-search.visible { display: block; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search"),
        Binding("n", "search_next(1)", "Next match"),
        Binding("N", "search_next(-1)", "Prev match", show=False),
        Binding("e", "next_error(1)", "Next error"),
        Binding("E", "next_error(-1)", "Prev error", show=False),
        Binding("F", "filter", "Filter"),
        Binding("x", "clear_filter", "Clear filter"),
        Binding("f", "follow", "Follow"),
        Binding("escape", "cancel", "Cancel", show=False),
    ]

    def __init__(self) -> None:
        """The timeline of the app's source."""
        super().__init__()
        self.following = False
        self._pattern: re.Pattern[str] | None = None
        self._text = ""
        self._pending_seq: int | None = None
        self._busy = ""
        self._scan_running = False
        self._pending_apply: tuple[EventFilter | None, int | None] | None = None

    # ------------------------------------------------------------------ layout
    def compose_body(self) -> ComposeResult:
        yield EventList(TimelineView(self.source.index), id="tl-list")
        yield Static(id="tl-bar")
        yield Input(placeholder="search events (Enter: find, Esc: cancel)", id="tl-search")

    @property
    def events(self) -> EventList:
        """The event list widget."""
        return self.query_one(EventList)

    def on_mount(self) -> None:
        super().on_mount()
        self.following = self.source.is_live
        lst = self.events
        lst.cursor_moved = lambda _pos: self._update_bar()
        lst.focus()
        if self.following:
            self.call_after_refresh(lambda: lst.move_to(len(lst.view) - 1))
        self.fact_changed("counts")
        self.fact_changed("steps")
        self._update_bar()
        if self._pending_apply is not None:
            flt, seq = self._pending_apply
            self._pending_apply = None
            self.call_after_refresh(self.apply, flt, seq)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.events.focus()

    def fact_changed(self, name: str) -> None:
        if name == "counts" and not self.fact("steps"):
            counts = self.fact("counts")
            if isinstance(counts, Counts) and counts.step_names:
                self.events.span_paths = counted_paths(counts)
                self.events.invalidate()
        if name == "steps":
            steps = self.fact("steps")
            if steps:
                self.events.span_paths = span_paths(steps)
                self.events.invalidate()

    # ------------------------------------------------------------------ public
    def apply(self, flt: EventFilter | None, seq: int | None = None) -> None:
        """Show only events matching ``flt`` (None: all) and select ``seq``."""
        if not self.query(EventList):  # not composed yet: do it once mounted
            self._pending_apply = (flt, seq)
            return
        lst = self.events
        view = TimelineView(self.source.index, flt)
        if flt is not None and not flt.empty and flt.text:
            self._set_search(flt.text)
        if view.filtered:
            self.following = False
            lst.set_view(view, keep_seq=seq is None)
            self._pending_seq = seq
            self._start_scan()
        else:
            lst.set_view(view, keep_seq=seq is None)
            if seq is not None:
                self._goto_seq(seq)
        self._update_bar()

    def _goto_seq(self, seq: int) -> None:
        pos = self.events.view.pos_of_seq(seq)
        if pos is not None:
            self.events.move_to(pos, center=True)

    # ------------------------------------------------------------------ filter scan
    def _start_scan(self) -> None:
        view = self.events.view
        if view.filtered and not self._scan_running:
            self._scan_running = True
            self._scan(view)

    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def _scan(self, view: TimelineView) -> None:
        worker = get_current_worker()
        batch: list[int] = []
        last = time.monotonic()
        scanned = view.scanned_seq
        try:
            for found, scanned in view.scan(view.scanned_seq, lambda: worker.is_cancelled):
                batch.extend(found)
                time.sleep(0)  # let the UI thread take the GIL between blocks
                if time.monotonic() - last > 0.05:
                    self.app.call_from_thread(self._add_matches, view, batch, scanned, False)
                    batch, last = [], time.monotonic()
        finally:
            self.app.call_from_thread(self._add_matches, view, batch, scanned, True)

    def _add_matches(self, view: TimelineView, seqs: list[int], scanned: int, done: bool) -> None:
        if done:
            self._scan_running = False
        lst = self.events
        if view is not lst.view:
            return
        view.add_matches(seqs, scanned)
        if done:
            view.scanning = view.scanned_seq < view.index.last_seq
            if view.scanning:
                self._start_scan()
        lst.update_size()
        lst.refresh()
        if self._pending_seq is not None and (self._pending_seq <= view.scanned_seq or done):
            seq, self._pending_seq = self._pending_seq, None
            self._goto_seq(seq)
        elif len(view) and lst.cursor == 0:
            lst.post_message(EventList.Selected(view.event_at(0), 0))
        if self.following and len(view):
            lst.move_to(len(view) - 1)
        self._update_bar()

    # ------------------------------------------------------------------ live
    def source_changed(self, result: PollResult | None) -> None:
        if result is None:
            return
        lst = self.events
        view = lst.view
        dropped = view.rebase(result.index)
        lst.shift(dropped)
        if view.filtered:
            view.scanning = True
            self._start_scan()
        if self.following and len(view):
            lst.move_to(len(view) - 1)
        self._update_bar()

    def action_follow(self) -> None:
        """Follow the newest events (live), or stop following."""
        if not self.source.live_capable:
            self.notify("follow is for live recorders; this is a recording file", severity="warning")
            return
        self.following = not self.following
        if self.following:
            self.events.move_to(len(self.events.view) - 1)
        self._update_bar()

    @on(EventList.Selected)
    def _selected(self, message: EventList.Selected) -> None:
        if self.following and message.by_user and message.position < len(self.events.view) - 1:
            self.following = False
            self._update_bar()

    @on(EventList.Opened)
    def _opened(self, message: EventList.Opened) -> None:
        self.fapp.open_detail(message.event)

    # ------------------------------------------------------------------ filter
    def action_filter(self) -> None:
        """Choose kinds, threads, tools or text to narrow the timeline."""
        from .filter import FilterScreen

        current = self.events.view.filter or EventFilter()
        counts = self.fapp.request_fact("counts", refresh=True)
        if not isinstance(counts, Counts):
            # Not counted yet (a live ring, or a big dump still being analysed): offer what the
            # blocks decoded so far contain.
            counts = Counts()
            cache = self.source.index.cache
            with cache.lock:
                blocks = list(cache._blocks.values())
            for events in blocks:
                for ev in events:
                    counts.by_kind[ev.kind] += 1
                    counts.threads[ev.thread] += 1
                    if ev.kind in ("tool_call", "tool_result") and ev.data.get("tool") is not None:
                        counts.tools[str(ev.data["tool"])] += 1
        self.app.push_screen(FilterScreen(current, counts), self._filter_chosen)

    def _filter_chosen(self, flt: EventFilter | None) -> None:
        if flt is not None:
            self.apply(flt)

    def action_clear_filter(self) -> None:
        """Show every event again."""
        if self.events.view.filtered:
            self.apply(None)

    # ------------------------------------------------------------------ search
    def action_search(self) -> None:
        """Open the search field."""
        box = self.query_one("#tl-search", Input)
        box.add_class("visible")
        box.value = self._text
        box.focus()

    def _set_search(self, text: str) -> None:
        self._text = text
        self._pattern = re.compile(re.escape(text), re.IGNORECASE) if text else None
        self.events.search = self._pattern
        self.events.invalidate()

    @on(Input.Submitted, "#tl-search")
    def _search_submitted(self, message: Input.Submitted) -> None:
        box = self.query_one("#tl-search", Input)
        box.remove_class("visible")
        self.events.focus()
        self._set_search(message.value.strip())
        if self._text:
            self._find(1, include_current=True)

    def action_cancel(self) -> None:
        """Close the search field, or stop a running search."""
        box = self.query_one("#tl-search", Input)
        if box.has_class("visible"):
            box.remove_class("visible")
            self.events.focus()
            return
        self.workers.cancel_group(self, "find")
        self._busy = ""
        self._update_bar()

    def action_search_next(self, direction: int) -> None:
        """Go to the next (1) or previous (-1) match."""
        if not self._text:
            self.action_search()
            return
        self._find(direction)

    def action_next_error(self, direction: int) -> None:
        """Go to the next (1) or previous (-1) error event."""
        self._busy = "looking for an error…"
        self._update_bar()
        self._find_worker(self.events.view, self.events.cursor + direction, direction, is_error, "error")

    def _find(self, direction: int, include_current: bool = False) -> None:
        text = self._text.lower()

        def match(ev: Event) -> bool:
            return text in searchable(ev)

        start = self.events.cursor + (0 if include_current else direction)
        self._busy = f"searching {self._text!r}…"
        self._update_bar()
        self._find_worker(self.events.view, start, direction, match, f"match for {self._text!r}")

    @work(thread=True, exclusive=True, group="find", exit_on_error=False)
    def _find_worker(
        self, view: TimelineView, start: int, step: int, match: Callable[[Event], bool], what: str
    ) -> None:
        worker = get_current_worker()
        found: int | None = None
        for n, (pos, ev) in enumerate(view.iter_from(start, step)):
            if match(ev):
                found = pos
                break
            if n % 2000 == 0:
                if worker.is_cancelled:
                    return
                time.sleep(0)
        self.app.call_from_thread(self._found, view, found, what, step)

    def _found(self, view: TimelineView, pos: int | None, what: str, step: int) -> None:
        self._busy = ""
        if view is self.events.view and pos is not None:
            self.following = False
            self.events.move_to(pos, center=True)
        elif pos is None:
            where = "after" if step > 0 else "before"
            self.notify(f"no {what} {where} the cursor", severity="warning", timeout=3)
        self._update_bar()

    # ------------------------------------------------------------------ status
    def _update_bar(self) -> None:
        try:
            bar = self.query_one("#tl-bar", Static)
            lst = self.events
        except Exception:
            return
        view = lst.view
        text = Text(no_wrap=True, overflow="ellipsis")
        n = len(view)
        ev = lst.selected_event()
        if n:
            text.append(f"{lst.cursor + 1:,}/{n:,}", style="bold")
        else:
            text.append("0 events", style="bold")
        if ev is not None:
            text.append(f"  seq {ev.seq}", style="dim")
        if view.filtered and view.filter is not None:
            text.append("  filter: ", style="dim")
            text.append(one_line(view.filter.describe()), style="bold yellow")
            if view.scanning:
                total = max(1, view.index.last_seq - view.index.first_seq)
                done = max(0, view.scanned_seq - view.index.first_seq)
                text.append(f"  scanning {min(100, 100 * done // total)}%", style="italic")
        if self._text:
            text.append(f"  search: {self._text!r}", style="dim")
        if self.following:
            text.append("  ⇣ following", style="bold green")
        if self._busy:
            text.append(f"  {self._busy}", style="italic yellow")
        bar.update(text, layout=False)
