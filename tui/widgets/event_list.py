"""The timeline's event list: a line-API ScrollView that renders only the visible rows.

A million events cost nothing until shown: :meth:`EventList.render_line` asks the view
model for the one event on that line (decoding its block on first use) and builds a
:class:`~textual.strip.Strip` from plain segments. Rendered strips are cached by
(seq, width, cursor, search), so scrolling back and forth is a dictionary lookup.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from flightrec.event import Event

from ..render import (
    ERROR_STYLE,
    MATCH_STYLE,
    REDACTION,
    REDACTION_STYLE,
    clock,
    is_error,
    kind_style,
    one_line,
    step_label,
)
from ..render import summary as summarize
from ..view import TimelineView

_STYLE_CACHE: dict[str, Style] = {}


def _style(name: str) -> Style:
    style = _STYLE_CACHE.get(name)
    if style is None:
        style = _STYLE_CACHE[name] = Style.parse(name)
    return style


TIME_STYLE = Style(color="grey62")
THREAD_STYLE = Style(color="steel_blue1")
STEP_STYLE = Style(color="cyan", dim=True)
SEQ_STYLE = Style(color="grey42")
CURSOR_STYLE = Style(bgcolor="grey27")
CURSOR_FOCUS_STYLE = Style(bgcolor="dark_blue")
ERROR_LINE_STYLE = Style(bgcolor="rgb(60,0,0)")
DAMAGED_STYLE = Style(color="red", italic=True)
OVERWRITTEN_STYLE = Style(dim=True, italic=True)


def _fit(segments: list[Segment], width: int, bg: Style) -> Strip:
    """Crop or pad ``segments`` to ``width`` cells, with ``bg`` under every cell."""
    out: list[Segment] = []
    used = 0
    for seg in segments:
        text, style = seg.text, seg.style
        n = cell_len(text)
        if used + n > width:
            text = set_cell_size(text, width - used)
            n = width - used
        style = bg + style if style is not None else bg
        out.append(Segment(text, style))
        used += n
        if used >= width:
            break
    if used < width:
        out.append(Segment(" " * (width - used), bg))
    return Strip(out, width)


class EventList(ScrollView, can_focus=True):
    """Every event (or every matching event), one line each, with a cursor."""

    DEFAULT_CSS = """
    EventList {
        height: 1fr;
        overflow-x: hidden;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown,space", "page(1)", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, repaint=False)
    """View position of the selected event."""

    class Selected(Message):
        """The cursor moved onto an event (or a damaged row: ``event`` is None)."""

        def __init__(self, event: Event | None, position: int, by_user: bool = False) -> None:
            super().__init__()
            self.event = event
            self.position = position
            self.by_user = by_user

        def can_replace(self, message: Message) -> bool:
            """Only the latest cursor position matters."""
            return isinstance(message, EventList.Selected)

    class Opened(Message):
        """Enter was pressed on an event."""

        def __init__(self, event: Event) -> None:
            super().__init__()
            self.event = event

    def __init__(self, view: TimelineView, *, name: str | None = None, id: str | None = None) -> None:
        """Show ``view``."""
        super().__init__(name=name, id=id)
        self.view = view
        self.span_paths: dict[int, str] = {}
        """Span id -> step path, once the steps are known."""
        self.search: re.Pattern[str] | None = None
        self._lines: LRUCache[tuple[int, int, int, bool, bool], Strip] = LRUCache(1024)
        self._gen = 0

    # ------------------------------------------------------------------ model
    def set_view(self, view: TimelineView, keep_seq: bool = True) -> None:
        """Show another view (a new filter), keeping the selected event when it is in it."""
        seq = self.selected_seq() if keep_seq else None
        self.view = view
        self.invalidate()
        self.update_size()
        pos = view.pos_of_seq(seq) if seq is not None else None
        self.move_to(pos if pos is not None else 0, center=True)

    def invalidate(self) -> None:
        """Forget rendered lines (new step names, search, view)."""
        self._gen += 1
        self._lines.clear()
        self.refresh()

    def update_size(self) -> None:
        """Resize the virtual canvas to the view's length."""
        self.virtual_size = Size(self.size.width, len(self.view))

    def shift(self, dropped: int) -> None:
        """Positions moved up by ``dropped`` (a live ring lost its oldest events)."""
        if dropped:
            self.cursor = max(0, self.cursor - dropped)
            self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False, immediate=True)
        self.update_size()
        self._lines.clear()
        self.refresh()

    def selected_event(self) -> Event | None:
        """The event under the cursor."""
        return self.view.event_at(self.cursor)

    def selected_seq(self) -> int | None:
        """Seq of the event under the cursor."""
        ev = self.selected_event()
        return ev.seq if ev is not None else None

    # ------------------------------------------------------------------ movement
    def move_to(self, pos: int, center: bool = False, by_user: bool = False) -> None:
        """Put the cursor on ``pos`` and scroll it into view (``by_user``: a key or click moved it)."""
        self._by_user = by_user
        n = len(self.view)
        pos = max(0, min(pos, n - 1)) if n else 0
        old = self.cursor
        self.cursor = pos
        height = max(1, self.scrollable_content_region.height)
        top = int(self.scroll_y)
        if center and not (top <= pos < top + height):
            self.scroll_to(y=max(0, pos - height // 2), animate=False, immediate=True)
        elif pos < top:
            self.scroll_to(y=pos, animate=False, immediate=True)
        elif pos >= top + height:
            self.scroll_to(y=pos - height + 1, animate=False, immediate=True)
        self.refresh_line(old)
        self.refresh_line(pos)

    _by_user = False

    cursor_moved: Callable[[int], None] | None = None
    """Called synchronously when the cursor moves (status bars update in the same frame)."""

    def watch_cursor(self, old: int, new: int) -> None:
        if self.cursor_moved is not None:
            self.cursor_moved(new)
        self.post_message(self.Selected(self.view.event_at(new), new, self._by_user))

    def action_cursor(self, delta: int) -> None:
        """Move the cursor by ``delta`` lines."""
        self.move_to(self.cursor + delta, by_user=True)

    def action_page(self, direction: int) -> None:
        """Move the cursor and the view by one page."""
        height = max(1, self.scrollable_content_region.height)
        n = len(self.view)
        top = int(self.scroll_y)
        new_top = max(0, min(top + direction * height, max(0, n - height)))
        self.scroll_to(y=new_top, animate=False, immediate=True)
        self.move_to(self.cursor + direction * height, by_user=True)
        self.paint_now()

    def paint_now(self) -> None:
        """Repaint the screen now rather than on the next update tick (paging feels immediate).

        Uses Textual's screen update hook; if a future Textual renames it, the normal tick repaints.
        """
        update = getattr(self.screen, "_on_timer_update", None)
        if update is not None and self.screen.is_current:
            update()

    def action_first(self) -> None:
        """Go to the first event."""
        self.move_to(0, by_user=True)

    def action_last(self) -> None:
        """Go to the last event."""
        self.move_to(len(self.view) - 1, by_user=True)

    def key_enter(self, event: events.Key | None = None) -> None:
        if event is not None:
            # Handled here: the key must not bubble on and reach the screen this opens (the
            # Detail tree would take it as a toggle and close its root).
            event.stop()
            event.prevent_default()
        ev = self.selected_event()
        if ev is not None:
            self.post_message(self.Opened(ev))

    def on_click(self, event: events.Click) -> None:
        pos = int(self.scroll_y) + event.y
        if 0 <= pos < len(self.view):
            if pos == self.cursor and event.chain >= 2:
                self.key_enter()
            self.move_to(pos, by_user=True)

    def on_resize(self) -> None:
        self.update_size()
        self._lines.clear()

    # ------------------------------------------------------------------ rendering
    def render_lines(self, crop: Region) -> list[Strip]:
        """Render the lines in ``crop`` straight from :meth:`render_line`.

        The event list has no border, padding, tint or opacity, so Textual's per-line styling
        pass adds nothing but time; the strips already carry the widget's colours.
        """
        self._base = self.rich_style
        strips = [self.render_line(y) for y in crop.line_range]
        filters = self.get_line_filters()
        if filters:
            background = self.background_colors[1]
            for line_filter in filters:
                strips = [strip.apply_filter(line_filter, background) for strip in strips]
        x1, x2 = crop.column_span
        if (x1, x2) != (0, self.size.width):
            strips = [strip.crop(x1, x2) for strip in strips]
        return strips

    _base: Style = Style()

    def render_line(self, y: int) -> Strip:
        """Render one visible line."""
        pos = int(self.scroll_y) + y
        width = self.scrollable_content_region.width
        if pos >= len(self.view) or width <= 0:
            return Strip.blank(self.size.width, self.rich_style)
        is_cursor = pos == self.cursor
        focused = is_cursor and self.has_focus
        ev = self.view.event_at(pos)
        key = (ev.seq if ev is not None else -pos - 1, width, self._gen, is_cursor, focused)
        strip = self._lines.get(key)
        if strip is None:
            bg = (CURSOR_FOCUS_STYLE if focused else CURSOR_STYLE) if is_cursor else None
            strip = self._render_event(ev, pos, width, bg)
            if self.size.width > width:  # the vertical scrollbar's gutter
                strip = Strip([*strip, Segment(" " * (self.size.width - width), self._base)], self.size.width)
            self._lines[key] = strip
        return strip

    def _render_event(self, ev: Event | None, pos: int, width: int, bg: Style | None) -> Strip:
        """One line as a single Strip of exactly ``width`` cells (no intermediate Strips)."""
        if ev is None:
            seg = self.view.index.damaged_at(pos) if not self.view.filtered else None
            text = "⚠ damaged block: these events could not be read"
            style = DAMAGED_STYLE
            if seg is not None and seg.block >= 0 and self.view.index.recording.was_overwritten(seg.block):
                # a live ring that wrapped past these events after the view was taken
                text = f"… events {seg.first_seq}..{seg.last_seq} were overwritten by newer ones (the ring wrapped)"
                style = OVERWRITTEN_STYLE
            elif seg is not None:
                text = f"⚠ damaged block: events {seg.first_seq}..{seg.last_seq} could not be read"
            segs = [Segment(text, style)]
        else:
            span = ev.span
            step = ""
            if span is not None:
                step = self.span_paths.get(span) or self.view.index.step_path(span) or f"#{span}"
            err = is_error(ev)
            kstyle = ERROR_STYLE if err else _style(kind_style(ev.kind))
            segs = [
                Segment(clock(ev.ts_ns) + " ", TIME_STYLE),
                Segment(f"{one_line(ev.thread)[:10]:<10} ", THREAD_STYLE),
                Segment(f"{step_label(one_line(step), 18):<18} ", STEP_STYLE),
                Segment(f"{one_line(ev.kind)[:11]:<11} ", kstyle),
            ]
            segs.extend(self._summary_segments(summarize(ev), ERROR_STYLE if err else None))
            if err and bg is None:
                bg = ERROR_LINE_STYLE
        return _fit(segs, width, self._base + bg if bg is not None else self._base)

    def _summary_segments(self, text: str, style: Style | None) -> list[Segment]:
        """Split ``text`` so redaction markers and search matches get their own style."""
        marks: list[tuple[int, int, Style]] = [(m.start(), m.end(), REDACTION_STYLE) for m in REDACTION.finditer(text)]
        if self.search is not None:
            marks.extend((m.start(), m.end(), MATCH_STYLE) for m in self.search.finditer(text) if m.end() > m.start())
        if not marks:
            return [Segment(text, style)]
        marks.sort()
        out: list[Segment] = []
        pos = 0
        for start, end, mstyle in marks:
            if start < pos:
                continue
            if start > pos:
                out.append(Segment(text[pos:start], style))
            out.append(Segment(text[start:end], mstyle))
            pos = end
        if pos < len(text):
            out.append(Segment(text[pos:], style))
        return out
