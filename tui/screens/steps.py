"""Steps: the step/span tree with durations and errors; Enter shows a step's events."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static, Tree

from ..facts import subtree
from ..render import duration, full_time, highlight_markers, lines_of, one_line, short
from ..view import EventFilter
from .base import MainScreen

MAX_NODES = 20_000
"""Steps shown in the tree; beyond this the tree says how many were left out."""


def step_label(step: Any, slowest: float) -> Text:
    """``name  1.2s ███  ✗ error`` for one step."""
    text = Text()
    err = getattr(step, "error", None)
    text.append(one_line(step.name), style="bold red" if err else "bold")
    ms = step.duration_ms
    if ms is None:
        text.append("  (open)", style="yellow")
    else:
        text.append(f"  {duration(float(ms) / 1000)}", style="cyan")
        if slowest > 0:
            bar = round(8 * float(ms) / slowest)
            text.append("  " + "▇" * bar, style="dark_cyan")
    if err:
        text.append(f"  ✗ {short(err, 60)}", style="red")
    return highlight_markers(text)


class StepsScreen(MainScreen):
    """Every step, nested as the agent nested them."""

    NAME = "steps"
    FACTS = ("steps",)

    DEFAULT_CSS = """
    StepsScreen #st-cols { height: 1fr; }
    StepsScreen Tree { width: 3fr; }
    StepsScreen #st-info { width: 2fr; padding: 0 1; border-left: solid $primary; }
    """

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="st-cols"):
            yield Tree(Text("steps", style="bold"), id="st-tree")
            yield Static(id="st-info")

    def on_mount(self) -> None:
        super().on_mount()
        self._build()
        self.query_one(Tree).focus()

    def fact_changed(self, name: str) -> None:
        if name == "steps":
            self._build()

    def _build(self) -> None:
        tree: Tree[Any] = self.query_one(Tree)
        steps = self.fact("steps")
        tree.clear()
        tree.root.expand()
        info = self.query_one("#st-info", Static)
        placeholder = self.unavailable_text(steps, "steps")
        if placeholder is not None:
            tree.root.set_label(Text(placeholder, style="italic dim"))
            info.update("")
            return
        if not steps:
            tree.root.set_label(Text("no steps recorded (use `with flightrec.step(...)`)", style="dim"))
            return
        slowest = max((float(s.duration_ms or 0) for s in steps), default=0.0)
        errors = sum(1 for s in steps if s.error)
        tree.root.set_label(Text(f"{len(steps):,} steps, {errors} failed", style="bold"))
        nodes: dict[Any, Any] = {}
        ids = {s.id for s in steps}
        for shown, s in enumerate(sorted(steps, key=lambda s: s.start_seq)):
            if shown >= MAX_NODES:
                tree.root.add_leaf(Text(f"… {len(steps) - shown:,} more steps not shown", style="dim"))
                break
            parent = nodes.get(s.parent) if s.parent in ids else tree.root
            if parent is None:
                parent = tree.root
            node = parent.add(step_label(s, slowest), data=s, expand=bool(s.error) or shown < 200)
            nodes[s.id] = node
        for node in nodes.values():
            if not node.children:
                node.allow_expand = False
        info.update(Text("Enter: show this step's events in the timeline", style="dim"))
        # Open on the first failure, what the user came for: the first failed step to end (a
        # failing child ends before the parent it fails, whose own start is earlier). Once the
        # cursor is on a step, a rebuild (a live recording's new steps) keeps it there.
        target = nodes.get(self._on) if self._on is not None else None
        if target is None:
            target = min(
                (node for node in nodes.values() if node.data.error),
                key=lambda node: node.data.end_seq if node.data.end_seq is not None else 1 << 62,
                default=None,
            )
        self._opening = target
        if target is not None:
            self._on = target.data.id
            parent = target.parent
            while parent is not None:  # (shown: a node under a collapsed one has no line)
                parent.expand()
                parent = parent.parent
            self.call_after_refresh(self._open_on, target, 0)

    _on: Any = None
    """The id of the step the cursor is on (kept across rebuilds), None before any."""
    _opening: Any = None
    """The node the last build put the cursor on, until it is there."""

    def _open_on(self, node: Any, tries: int) -> None:
        """Put the cursor on ``node`` once the tree has laid it out (its line is known only
        then: on a loaded machine, not always after the first refresh), unless a later build
        replaced it or the user moved the cursor to another step first."""
        if self._opening is not node or self._on != node.data.id:
            return
        tree: Tree[Any] = self.query_one(Tree)
        tree.last_line  # noqa: B018 (lays the lines out if they are not yet: sets node.line)
        if node.line < 0 and tries < 100:  # not laid out yet: after the next refresh
            self.set_timer(0.02, lambda: self._open_on(node, tries + 1))
            return
        self._opening = None
        tree.move_cursor(node)

    @on(Tree.NodeHighlighted, "#st-tree")
    def _highlighted(self, message: Tree.NodeHighlighted[Any]) -> None:
        step = message.node.data
        info = self.query_one("#st-info", Static)
        if step is None:
            return
        self._on = step.id
        t = Table.grid(padding=(0, 1))
        t.add_column(style="bold")
        t.add_column()
        t.add_row("step", Text(one_line(step.name), style="bold"))
        t.add_row("id", f"#{step.id}" + (f" (parent #{step.parent})" if step.parent is not None else ""))
        t.add_row("thread", Text(one_line(step.thread)))
        t.add_row("started", full_time(step.start_ns))
        t.add_row("ended", full_time(step.end_ns) if step.end_ns else "still open")
        if step.duration_ms is not None:
            t.add_row("duration", duration(float(step.duration_ms) / 1000))
        t.add_row("events", f"seq {step.start_seq} … {step.end_seq if step.end_seq is not None else '?'}")
        if step.error:
            t.add_row("error", Text(lines_of(step.error), style="bold red"))
        for k, v in (step.attrs or {}).items():
            t.add_row(Text(one_line(k)), highlight_markers(Text(short(v, 200))))
        info.update(t)

    @on(Tree.NodeSelected, "#st-tree")
    def _selected(self, message: Tree.NodeSelected[Any]) -> None:
        step = message.node.data
        if step is None:
            return
        spans = subtree(self.fact("steps"), step.id)
        end = step.end_seq if step.end_seq is not None else 1 << 62
        bounds = frozenset(s for s in (step.start_seq, step.end_seq) if s is not None)
        flt = EventFilter(spans=spans, seq_range=(step.start_seq, end), include=bounds, label=f"step: {step.name}")
        self.fapp.show_in_timeline(flt, seq=step.start_seq)
