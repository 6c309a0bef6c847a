"""Memory: context usage against the limit, memory operations, live items at a point."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from ..facts import MemoryData, replay_items
from ..render import clock, highlight_markers, one_line, short
from ..widgets.plot import LimitPlot, Mark
from .base import MainScreen

OP_MARKS = {"retain": ("+", "green"), "evict": ("-", "red"), "summarize": ("~", "yellow")}
MAX_ITEM_ROWS = 1000
"""Live items listed at most (the newest retained)."""
MOVE_SETTLE_S = 0.08
"""How long the plot's cursor rests before the live items follow it."""


class MemoryScreen(MainScreen):
    """Where the context went: usage over time, and what was kept or dropped."""

    NAME = "memory"
    FACTS = ("memory",)

    DEFAULT_CSS = """
    MemoryScreen #mm-msg { height: auto; padding: 0 1; }
    MemoryScreen #mm-cols { height: 1fr; }
    MemoryScreen #mm-cols > Vertical { width: 1fr; }
    MemoryScreen DataTable { height: 1fr; }
    """

    def compose_body(self) -> ComposeResult:
        yield Static(id="mm-msg")
        yield LimitPlot(id="mm-plot")
        with Horizontal(id="mm-cols"):
            with Vertical():
                yield Static("Live items at the selected point", classes="panel-title", id="mm-items-title")
                yield DataTable(id="mm-items", cursor_type="row", zebra_stripes=True)
            with Vertical():
                yield Static("Memory operations  [dim](red: evicted, then needed again)[/]", classes="panel-title")
                yield DataTable(id="mm-ops", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#mm-items", DataTable).add_columns("item", "tokens", "reason", "retained at")
        self.query_one("#mm-ops", DataTable).add_columns("seq", "time", "op", "items", "tokens", "reason")
        self._data: MemoryData | None = None
        self._items_seq = -1
        self._fill()
        self.query_one(LimitPlot).focus()

    def fact_changed(self, name: str) -> None:
        if name == "memory":
            self._fill()

    def _fill(self) -> None:
        data = self.fact("memory")
        msg = self.query_one("#mm-msg", Static)
        placeholder = self.unavailable_text(data, "memory")
        if placeholder is not None:
            msg.update(Text(placeholder, style="italic dim"))
            return
        self._data = data
        plot = self.query_one(LimitPlot)
        if not data.samples and not data.ops:
            msg.update(Text("no context or memory events recorded", style="dim"))
            return
        xs = [float(s[0]) for s in data.samples]
        used = [s[2] for s in data.samples]
        limits = [s[3] for s in data.samples]
        marks = []
        for op in data.ops:
            glyph, style = OP_MARKS.get(op.op, ("?", "white"))
            if op.seq in data.needed_again:
                glyph, style = "!", "bold red"
            marks.append(Mark(float(op.seq), glyph, style))
        plot.set_data(xs, used, limits, marks, unit="tokens")
        plot.border_title = "context tokens vs limit   + retain  - evict  ~ summarize  ! evicted then needed"
        plot.border_subtitle = "←/→ [ ] home end: move"
        peak = max(used, default=0)
        limit = max(limits, default=0)
        text = Text()
        text.append(f"{len(data.samples):,} context samples, peak {peak:,.0f}", style="bold")
        if limit:
            text.append(
                f" of {limit:,.0f} tokens ({peak / limit:.0%})", style="bold red" if peak / limit >= 0.9 else "bold"
            )
        counts: dict[str, int] = {}
        for op in data.ops:
            counts[op.op] = counts.get(op.op, 0) + 1
        text.append("   " + "  ".join(f"{one_line(k)} {v}" for k, v in sorted(counts.items())))
        if data.needed_again:
            text.append(f"   {len(data.needed_again)} evicted then needed again", style="bold red")
        msg.update(text)
        ops = self.query_one("#mm-ops", DataTable)
        ops.clear()
        for op in data.ops[-5000:]:
            again = data.needed_again.get(op.seq)
            style = (
                "bold red"
                if again is not None
                else {"retain": "green", "evict": "red", "summarize": "yellow"}.get(op.op, "")
            )
            op_text = Text(
                one_line(op.op) + (f" → needed again at seq {again}" if again is not None else ""), style=style
            )
            ops.add_row(
                str(op.seq),
                clock(op.ts_ns),
                op_text,
                highlight_markers(Text(short(list(op.ids), 40))),
                "" if op.tokens is None else str(op.tokens),
                highlight_markers(Text(short(op.reason or "", 50))),
                key=str(op.seq),
            )
        selected = plot.selected_index()  # a refresh keeps the point the user is looking at
        self._show_items(len(data.samples) - 1 if selected is None else selected)

    @on(LimitPlot.Moved)
    def _moved(self, message: LimitPlot.Moved) -> None:
        # The live items follow the cursor once it rests: a held arrow key moves the plot at
        # once, and fills the table (thousands of rows, in a big recording) once, not per step.
        if self._pending_move is not None:
            self._pending_move.stop()
            self._pending_move = None
        index = message.index
        data = self._data
        if data is not None and 0 <= index < len(data.samples) and data.samples[index][0] == self._items_seq:
            return  # the point shown already (the plot's first draw says where its cursor is)
        self._pending_move = self.set_timer(MOVE_SETTLE_S, lambda: self._show_items(index))

    _pending_move: Any = None

    def _show_items(self, index: int) -> None:
        data = self._data
        if data is None:
            return
        if data.samples and 0 <= index < len(data.samples):
            seq, ts, used, limit = data.samples[index]
        else:
            seq, ts, used, limit = (data.ops[-1].seq if data.ops else 0), 0, 0.0, 0.0
        self._items_seq = seq
        items = self._live_items(seq, data)
        self._fill_items(seq, items)
        title = self.query_one("#mm-items-title", Static)
        head = Text.assemble(("Live items at seq ", "bold"), (str(seq), "bold cyan"), no_wrap=True, overflow="ellipsis")
        if ts:
            head.append(f"  {clock(ts)}  context {used:,.0f}/{limit:,.0f}")
        head.append(f"  {len(items)} items", style="dim")
        title.update(head)

    def _live_items(self, seq: int, data: MemoryData) -> dict[str, tuple[Any, Any, int]]:
        """Items alive at ``seq`` by replaying the operations; the analysis' exact answer follows."""
        if not self.source.is_live and hasattr(self.source.recording, "live_items"):
            self._items_worker(seq)
        return replay_items(data.ops, seq)

    def _evicted_later(self, data: MemoryData) -> set[str]:
        """The items evicted and then needed again (computed once per fact, not per move)."""
        cached = getattr(self, "_evicted_cache", None)
        if cached is None or cached[0] is not data:
            cached = self._evicted_cache = (data, {i for op in data.ops if op.seq in data.needed_again for i in op.ids})
        return cached[1]

    @work(thread=True, exclusive=True, group="live-items", exit_on_error=False)
    def _items_worker(self, seq: int) -> None:
        """The analysis API's live items (exact across wrap-around), off the UI thread."""
        snap = getattr(self, "_snap", None)
        if snap is None:
            # A separate snapshot: the analysis must not share the UI's decoding cache.
            snap = self._snap = self.source.open_snapshot()
        try:
            live = snap.live_items(seq)
        except Exception:
            return
        items = {
            str(k): (getattr(v, "tokens", None), getattr(v, "reason", None), int(getattr(v, "retained_seq", 0) or 0))
            for k, v in live.items()
        }
        self.app.call_from_thread(self._fill_items, seq, items)

    def _fill_items(self, seq: int, items: dict[str, tuple[Any, Any, int]]) -> None:
        data = self._data
        if data is None or seq != self._items_seq:
            return
        if getattr(self, "_shown_items", None) == (seq, items):
            return  # the analysis' exact answer, as the replay had it already (the usual case)
        self._shown_items = (seq, items)
        table = self.query_one("#mm-items", DataTable)
        table.clear()
        evicted_later = self._evicted_later(data)
        reasons: dict[Any, Text] = {}  # (a few reasons, shared by thousands of items)
        rows = sorted(items.items(), key=lambda kv: kv[1][2])
        if len(rows) > MAX_ITEM_ROWS:
            # Listing every one of thousands costs the table a second a move (it measures each
            # cell): the newest are listed, the title gives the count.
            table.add_row(Text(f"… {len(rows) - MAX_ITEM_ROWS:,} older items not listed", style="dim"), "", "", "")
            rows = rows[-MAX_ITEM_ROWS:]
        for item_id, (tokens, reason, retained) in rows:
            style = "bold red" if item_id in evicted_later else ""
            why = reasons.get(reason)
            if why is None:
                why = reasons[reason] = highlight_markers(Text(short(reason or "", 40)))
            table.add_row(
                highlight_markers(Text(one_line(item_id), style=style))
                if "<" in item_id
                else Text(one_line(item_id), style=style),
                "" if tokens is None else str(tokens),
                why,
                str(retained),
            )
