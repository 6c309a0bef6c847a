"""Detail: one event's payload as a collapsible, highlighted tree."""

from __future__ import annotations

import itertools
import textwrap
from typing import Any, ClassVar

from rich.highlighter import ReprHighlighter
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static, Tree
from textual.widgets.tree import TreeNode

from flightrec.event import Event

from ..render import full_time, highlight_markers, is_error, kind_style, one_line, short, summary

WRAP = 100
"""Characters per line of a wrapped long string."""
MAX_CHILDREN = 1000
"""Items of one list or map shown; a line says how many more there are."""
MAX_LINES = 1000
"""Wrapped lines of one string shown; a line says how many characters are left."""
MAX_DEPTH = 64
"""Levels of nesting shown; a deeper container is shown on one line."""

_highlighter = ReprHighlighter()


def scalar_text(value: Any) -> Text:
    """A highlighted one-line rendering of a scalar; strings quoted, markers styled."""
    if isinstance(value, str):
        text = Text(repr(value), style="green")
    elif isinstance(value, bytes):
        text = Text(f"<{len(value)} bytes> {value[:32].hex()}", style="magenta")
    else:
        text = _highlighter(Text(repr(value)))
    return highlight_markers(text)


def key_text(key: Any) -> str:
    """A map key as shown in the tree, on one line and unambiguous.

    A string key that is all printable characters (and does not start with a quote) is shown
    as it is; any other (a line break, which would cut the label at its first line, a control
    or bidi character, an empty key) as a quoted, escaped literal, ``'a\\nb'``, as string
    values are shown. A bare key never starts with a quote, so a quoted one cannot be another
    key's name.
    """
    if not isinstance(key, str):
        return one_line(str(key))
    if key and key.isprintable() and key[0] not in "'\"":
        return key
    return repr(key)


def add_value(node: TreeNode[Any], key: str, value: Any, depth: int = 0) -> None:
    """Add ``key: value`` under ``node``; containers and long strings become branches.

    ``key`` is shown as it is: a map's key goes through :func:`key_text` first. A recording
    made by hand or by another program may hold what the recorder would have cut (a list
    of a million items, a string of 50 MB, data nested a thousand levels deep): the tree
    shows the first :data:`MAX_CHILDREN` items, :data:`MAX_LINES` lines and
    :data:`MAX_DEPTH` levels, and says what it left out, so the screen opens at once.
    """
    label = Text()
    label.append(key, style="bold")
    if isinstance(value, (dict, list, tuple)) and depth >= MAX_DEPTH:
        label.append(f"  {short(value, 80)}", style="dim")
        label.append("  (nested too deep to show)", style="italic dim")
        node.add_leaf(label)
    elif isinstance(value, dict):
        label.append(f"  {{{len(value)}}}", style="dim")
        child = node.add(label, expand=depth < 3)
        for k, v in itertools.islice(value.items(), MAX_CHILDREN):
            add_value(child, key_text(k), v, depth + 1)
        _more(child, len(value) - MAX_CHILDREN, "entries")
        if not value:
            child.allow_expand = False
    elif isinstance(value, (list, tuple)):
        label.append(f"  [{len(value)}]", style="dim")
        child = node.add(label, expand=depth < 3 and len(value) <= 50)
        for i, v in enumerate(value[:MAX_CHILDREN]):
            add_value(child, f"[{i}]", v, depth + 1)
        _more(child, len(value) - MAX_CHILDREN, "items")
        if not value:
            child.allow_expand = False
    elif isinstance(value, str) and (len(value) > WRAP or "\n" in value):
        # A wrapped line takes at most WRAP characters (a line break at least one): the
        # first MAX_LINES lines come from this head of the string.
        head = value[: WRAP * MAX_LINES]
        lines: list[str] = []
        for para in head.split("\n"):
            lines.extend(textwrap.wrap(para, WRAP, drop_whitespace=False, replace_whitespace=False) or [""])
        whole = len(head) == len(value) and len(lines) <= MAX_LINES
        label.append(f"  str, {len(value):,} chars" + (f", {len(lines)} lines" if whole else ""), style="dim")
        child = node.add(label, expand=len(lines) <= 40)
        for line in lines[:MAX_LINES]:
            child.add_leaf(highlight_markers(Text(one_line(line), style="green")))
        if not whole:
            child.add_leaf(Text(f"… the rest of the {len(value):,} characters is not shown", style="italic dim"))
    else:
        label.append(": ")
        label.append_text(scalar_text(value))
        node.add_leaf(label)


def _more(node: TreeNode[Any], left: int, what: str) -> None:
    """Say how much of a value the tree leaves out."""
    if left > 0:
        node.add_leaf(Text(f"… {left:,} more {what} not shown", style="italic dim"))


class DetailScreen(Screen[None]):
    """The selected event, every field; Escape goes back."""

    DEFAULT_CSS = """
    DetailScreen #dt-head { height: auto; background: $boost; padding: 0 1; }
    DetailScreen Tree { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("plus", "expand_all", "Expand all"),
        Binding("minus", "collapse_all", "Collapse all"),
    ]

    def __init__(self, event: Event) -> None:
        """Show ``event``."""
        super().__init__()
        self.event = event

    def compose(self) -> ComposeResult:
        ev = self.event
        head = Text()
        head.append(f" {one_line(ev.kind)} ", style="reverse " + ("bold red" if is_error(ev) else kind_style(ev.kind)))
        head.append(f"  seq {ev.seq}  {full_time(ev.ts_ns)}  thread {one_line(ev.thread)}")
        if ev.span is not None:
            head.append(f"  span #{ev.span}")
        if ev.parent is not None:
            head.append(f"  parent #{ev.parent}")
        head.append("\n")
        head.append(summary(ev), style="bold")
        yield Static(highlight_markers(head), id="dt-head")
        tree: Tree[Any] = Tree(Text(f"{one_line(ev.kind)} #{ev.seq}", style="bold"), id="dt-tree")
        tree.root.expand()
        for key, value in ev.data.items():
            add_value(tree.root, key_text(key), value)
        if not ev.data:
            tree.root.add_leaf(Text("(no fields)", style="dim"))
        yield tree
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Tree).focus()

    def action_expand_all(self) -> None:
        """Open every branch."""
        self.query_one(Tree).root.expand_all()

    def action_collapse_all(self) -> None:
        """Close every branch but the root."""
        root = self.query_one(Tree).root
        for child in root.children:
            child.collapse_all()
