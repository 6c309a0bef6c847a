"""Checkpoints: pick two and see how the agent's state changed between them."""

from __future__ import annotations

import difflib
import threading
from typing import Any, ClassVar

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from ..render import clock, highlight_markers, human_bytes, one_line, short
from .base import MainScreen

OP_STYLE = {
    "added": ("+", "green"),
    "removed": ("-", "red"),
    "changed": ("~", "yellow"),
    "add": ("+", "green"),
    "remove": ("-", "red"),
    "change": ("~", "yellow"),
}


def text_diff(old: str, new: str) -> Text:
    """A line diff of two strings, or a character-level one when both are one line."""
    out = Text()
    if "\n" not in old and "\n" not in new:
        matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
        minus, plus = Text("    - ", style="red"), Text("    + ", style="green")
        for tag, a0, a1, b0, b1 in matcher.get_opcodes():
            if tag == "equal":
                minus.append(one_line(old[a0:a1]))
                plus.append(one_line(new[b0:b1]))
            else:
                minus.append(one_line(old[a0:a1]), style="bold white on dark_red")
                plus.append(one_line(new[b0:b1]), style="bold black on green")
        out.append_text(highlight_markers(minus))
        out.append("\n")
        out.append_text(highlight_markers(plus))
        return out
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), "before", "after", lineterm="", n=2))
    for line in lines[2:] if len(lines) > 2 else lines:
        style = (
            "green"
            if line.startswith("+")
            else "red"
            if line.startswith("-")
            else ("cyan" if line.startswith("@@") else "")
        )
        out.append_text(highlight_markers(Text("    " + one_line(line), style=style)))
        out.append("\n")
    return out


def render_diff(entries: list[Any], a_label: str, b_label: str) -> Group:
    """The diff entries as coloured lines; changed strings get a text diff."""
    parts: list[Any] = []
    head = Text()
    head.append(f"{len(entries)} change(s) from ", style="bold")
    head.append(one_line(a_label), style="bold cyan")
    head.append(" to ", style="bold")
    head.append(one_line(b_label), style="bold cyan")
    parts.append(head)
    if not entries:
        parts.append(Text("the two states are identical", style="dim"))
    for e in entries:
        glyph, style = OP_STYLE.get(str(e.op), ("?", "white"))
        line = Text()
        line.append(f"{glyph} ", style="bold " + style)
        line.append(one_line(e.path) or "(root)", style="bold " + style)
        if str(e.op).startswith("add"):
            line.append(f"  = {short(e.new, 100)}")
        elif str(e.op).startswith("remove"):
            line.append(f"  was {short(e.old, 100)}", style="dim")
        parts.append(highlight_markers(line))
        if str(e.op).startswith("change"):
            if isinstance(e.old, str) and isinstance(e.new, str):
                parts.append(text_diff(e.old, e.new))
            else:
                parts.append(highlight_markers(Text(f"    - {short(e.old, 110)}", style="red")))
                parts.append(highlight_markers(Text(f"    + {short(e.new, 110)}", style="green")))
    return Group(*parts)


def default_base(cps: list[Any]) -> Any:
    """Side A of the first diff: the latest checkpoint before the last whose state differs
    from the last one's (an agent retrying a step checkpoints the same state again and again,
    and "the two states are identical" says nothing), else the one before the last."""
    last = cps[-1]
    if last.root is not None:
        for cp in reversed(cps[:-1]):
            if cp.root is not None and cp.root != last.root and cp.rebuildable:
                return cp
    return cps[-2]


class CheckpointsScreen(MainScreen):
    """Every checkpoint; ``a`` and ``b`` pick the two to compare."""

    NAME = "checkpoints"
    FACTS = ("checkpoints",)

    DEFAULT_CSS = """
    CheckpointsScreen #ck-table { height: 2fr; }
    CheckpointsScreen #ck-diff-box { height: 3fr; border-top: solid $primary; padding: 0 1; }
    CheckpointsScreen #ck-msg { height: auto; padding: 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "pick('a')", "Pick A"),
        Binding("b", "pick('b')", "Pick B"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static(id="ck-msg")
        yield DataTable(id="ck-table", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="ck-diff-box"):
            yield Static(id="ck-diff")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#ck-table", DataTable).add_columns("", "seq", "time", "label", "size", "state", "rebuildable")
        self.picked: dict[str, Any] = {}
        self._fill()
        self.query_one("#ck-table", DataTable).focus()

    def fact_changed(self, name: str) -> None:
        if name == "checkpoints":
            self._fill()

    def _checkpoints(self) -> list[Any]:
        cps = self.fact("checkpoints")
        return list(cps) if cps else []

    def _fill(self) -> None:
        cps = self.fact("checkpoints")
        msg = self.query_one("#ck-msg", Static)
        placeholder = self.unavailable_text(cps, "checkpoints")
        if placeholder is not None:
            msg.update(Text(placeholder, style="italic dim"))
            return
        if not cps:
            msg.update(Text("no checkpoints recorded (flightrec.checkpoint(state, label=...))", style="dim"))
            return
        msg.update(
            Text.assemble(
                (f"{len(cps)} checkpoints", "bold"),
                ("   a / b: pick the two to compare (default: the last, against the latest with another state)", "dim"),
            )
        )
        if not self.picked and len(cps) >= 2:
            self.picked = {"a": default_base(cps), "b": cps[-1]}
        self._render_table()
        self._diff()

    def _render_table(self) -> None:
        table = self.query_one("#ck-table", DataTable)
        row = table.cursor_row
        table.clear()
        a, b = self.picked.get("a"), self.picked.get("b")
        previous = None
        for cp in self._checkpoints():
            mark = (
                Text("A", style="bold reverse cyan")
                if cp is a
                else (Text("B", style="bold reverse magenta") if cp is b else Text(""))
            )
            rebuild = Text("yes", style="green") if cp.rebuildable else Text("NO", style="bold red")
            same = cp.root is not None and previous is not None and cp.root == previous.root
            previous = cp
            table.add_row(
                mark,
                str(cp.seq),
                clock(cp.ts_ns) if cp.ts_ns else "?",
                highlight_markers(Text(one_line(cp.label))),
                human_bytes(cp.size) if cp.size else "-",
                Text("unchanged", style="dim") if same else Text(""),
                rebuild,
                key=str(cp.seq),
            )
        if table.row_count:
            if not self._placed:  # first fill: on B, the newest, where the story ends
                self._placed = True
                row = table.row_count - 1
            table.move_cursor(row=min(max(row, 0), table.row_count - 1))

    def action_pick(self, which: str) -> None:
        """Make the checkpoint under the cursor side ``a`` or ``b`` of the diff."""
        cps = self._checkpoints()
        table = self.query_one("#ck-table", DataTable)
        if not cps or table.cursor_row < 0 or table.cursor_row >= len(cps):
            return
        self.picked[which] = cps[table.cursor_row]
        self._render_table()
        self._diff()

    @on(DataTable.RowSelected, "#ck-table")
    def _selected(self) -> None:
        # Enter picks the next free side, alternating.
        self.action_pick("b" if self.picked.get("a") is not None and self._next_side == "b" else "a")
        self._next_side = "a" if self._next_side == "b" else "b"

    _next_side = "a"
    _placed = False

    def _diff(self) -> None:
        a, b = self.picked.get("a"), self.picked.get("b")
        box = self.query_one("#ck-diff", Static)
        if a is None or b is None:
            box.update(Text("pick two checkpoints (a, b)", style="dim"))
            return
        box.update(Text(one_line(f"diffing {a.label} → {b.label}…"), style="italic dim"))
        self._diff_worker(a, b)

    _snap: Any = None
    _snap_key: Any = None
    _snap_lock = threading.Lock()

    @work(thread=True, exclusive=True, group="diff", exit_on_error=False)
    def _diff_worker(self, a: Any, b: Any) -> None:
        src = self.source
        try:
            with self._snap_lock:
                # One snapshot while the recording does not change: a new one analyses every
                # event again before its first diff (seconds on a big recording, GIL held).
                key = (id(src), src.index.last_seq)
                if self._snap is None or self._snap_key != key:
                    old, self._snap, self._snap_key = self._snap, src.open_snapshot(), key
                    if old is not None:
                        old.close()
                entries = list(self._snap.diff(a.seq, b.seq))
            result: Any = render_diff(entries, f"A {a.label} (seq {a.seq})", f"B {b.label} (seq {b.seq})")
        except Exception as exc:
            result = Text(one_line(f"cannot diff: {type(exc).__name__}: {exc}"), style="bold red")
        self.app.call_from_thread(self.query_one("#ck-diff", Static).update, result)
