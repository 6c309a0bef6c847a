"""Filter: choose the kinds, threads and tools the timeline shows, and a text to match."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, SelectionList

from ..facts import Counts
from ..render import one_line
from ..view import EventFilter


class FilterScreen(ModalScreen["EventFilter | None"]):
    """Pick a filter; returns the new :class:`EventFilter` (or None if cancelled)."""

    DEFAULT_CSS = """
    FilterScreen { align: center middle; }
    FilterScreen > Vertical { width: 100; max-width: 95%; height: 80%; border: round $accent;
                              background: $surface; padding: 0 1; }
    FilterScreen #fl-lists { height: 1fr; }
    FilterScreen SelectionList { width: 1fr; height: 1fr; }
    FilterScreen #fl-buttons { height: 3; align: right middle; }
    FilterScreen Label { text-style: bold; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "apply", "Apply")]

    def __init__(self, current: EventFilter, counts: Any) -> None:
        """Start from ``current``; ``counts`` (if computed) lists the choices."""
        super().__init__()
        self.current = current
        self.counts = counts if isinstance(counts, Counts) else None

    def _choices(self, counter: Any, selected: frozenset[str]) -> list[tuple[Text, str, bool]]:
        # Shown as text, escaped: a name from the recording is neither markup nor terminal codes.
        if counter is None:
            return [(Text(one_line(name)), name, True) for name in sorted(selected)]
        return [(Text(f"{one_line(name)} ({n:,})"), name, name in selected) for name, n in counter.most_common()]

    def compose(self) -> ComposeResult:
        c = self.counts
        with Vertical():
            yield Label("Filter the timeline: tick what to show (nothing ticked: no condition)")
            with Horizontal(id="fl-lists"):
                with Vertical():
                    yield Label("kinds")
                    yield SelectionList[str](
                        *self._choices(c.by_kind if c else None, self.current.kinds), id="fl-kinds"
                    )
                with Vertical():
                    yield Label("threads")
                    yield SelectionList[str](
                        *self._choices(c.threads if c else None, self.current.threads), id="fl-threads"
                    )
                with Vertical():
                    yield Label("tools")
                    yield SelectionList[str](*self._choices(c.tools if c else None, self.current.tools), id="fl-tools")
            yield Input(self.current.text, placeholder="text the event must contain", id="fl-text")
            yield Checkbox("errors only", self.current.errors_only, id="fl-errors")
            with Horizontal(id="fl-buttons"):
                yield Button("Apply", variant="primary", id="fl-apply")
                yield Button("Clear all", id="fl-clear")
                yield Button("Cancel", id="fl-cancel")

    def on_mount(self) -> None:
        self.query_one("#fl-kinds").focus()

    def result(self) -> EventFilter:
        """The filter as currently chosen."""
        kinds = frozenset(self.query_one("#fl-kinds", SelectionList).selected)
        threads = frozenset(self.query_one("#fl-threads", SelectionList).selected)
        tools = frozenset(self.query_one("#fl-tools", SelectionList).selected)
        text = self.query_one("#fl-text", Input).value.strip()
        errors = self.query_one("#fl-errors", Checkbox).value
        return replace(self.current, kinds=kinds, threads=threads, tools=tools, text=text, errors_only=errors)

    @on(Button.Pressed, "#fl-apply")
    @on(Input.Submitted, "#fl-text")
    def action_apply(self) -> None:
        """Close and apply."""
        self.dismiss(self.result())

    @on(Button.Pressed, "#fl-clear")
    def _clear(self) -> None:
        self.dismiss(EventFilter())

    @on(Button.Pressed, "#fl-cancel")
    def action_cancel(self) -> None:
        """Close without changing anything."""
        self.dismiss(None)
