"""Tools: per-tool calls, errors by class, latency percentiles; Enter lists a tool's calls."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from ..render import clock, duration, highlight_markers, one_line, short
from ..view import EventFilter
from .base import MainScreen

ORIGIN_STYLE = {"transient": "yellow", "response": "red", "invocation": "magenta", "reasoning": "orchid"}


def _ms(value: Any) -> str:
    try:
        return duration(float(value) / 1000)
    except (TypeError, ValueError):
        return "-"


class ToolsScreen(MainScreen):
    """One row per tool; below it, the calls of the selected tool."""

    NAME = "tools"
    FACTS = ("tool_stats", "tools")

    DEFAULT_CSS = """
    ToolsScreen #tk-stats { height: 2fr; }
    ToolsScreen #tk-calls { height: 3fr; }
    ToolsScreen #tk-msg { height: auto; padding: 0 1; }
    ToolsScreen .panel-title { height: 1; }
    """

    def compose_body(self) -> ComposeResult:
        yield Static(id="tk-msg")
        yield DataTable(id="tk-stats", cursor_type="row", zebra_stripes=True)
        yield Static(
            "Calls  [dim](Enter on a tool lists its calls; Enter on a call shows it in the timeline)[/]",
            classes="panel-title",
            id="tk-calls-title",
        )
        yield DataTable(id="tk-calls", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        super().on_mount()
        stats = self.query_one("#tk-stats", DataTable)
        stats.add_columns("tool", "calls", "errors", "errors by class", "p50", "p95", "max")
        calls = self.query_one("#tk-calls", DataTable)
        calls.add_columns("seq", "time", "tool", "attempt", "latency", "outcome", "arguments")
        self._tool: str | None = None
        self._fill_stats()
        stats.focus()

    def fact_changed(self, name: str) -> None:
        if name == "tool_stats":
            self._fill_stats()
        elif name == "tools" and self._tool is not None:
            self._fill_calls(self._tool)

    def _fill_stats(self) -> None:
        table = self.query_one("#tk-stats", DataTable)
        msg = self.query_one("#tk-msg", Static)
        stats = self.fact("tool_stats")
        table.clear()
        placeholder = self.unavailable_text(stats, "tool statistics")
        if placeholder is not None:
            msg.update(Text(placeholder, style="italic dim"))
            return
        if not stats:
            msg.update(Text("no tool calls recorded", style="dim"))
            return
        total = sum(s.calls for s in stats.values())
        failed = sum(s.errors for s in stats.values())
        msg.update(Text(f"{len(stats)} tools, {total:,} calls, {failed:,} failed", style="bold"))
        for tool, s in sorted(stats.items(), key=lambda kv: (-kv[1].errors, -kv[1].calls, kv[0])):
            by_class = Text()
            for origin, n in sorted((s.errors_by_origin or {}).items(), key=lambda kv: -kv[1]):
                if by_class:
                    by_class.append("  ")
                by_class.append(f"{one_line(origin)} {n}", style=ORIGIN_STYLE.get(str(origin), "red"))
            errors = Text(f"{s.errors:,}", style="bold red" if s.errors else "")
            table.add_row(
                Text(one_line(tool), style="bold"),
                f"{s.calls:,}",
                errors,
                by_class,
                _ms(s.p50_ms),
                _ms(s.p95_ms),
                _ms(s.max_ms),
                key=str(tool),
            )

    def _fill_calls(self, tool: str) -> None:
        table = self.query_one("#tk-calls", DataTable)
        table.clear()
        calls = self.fact("tools")
        title = self.query_one("#tk-calls-title", Static)
        placeholder = self.unavailable_text(calls, "tool calls")
        if placeholder is not None:
            title.update(Text(placeholder, style="italic dim"))
            return
        mine = [c for c in calls if str(c.tool) == tool]
        title.update(
            Text.assemble(
                ("Calls of ", "bold"),
                (one_line(tool), "bold yellow"),
                f"  {len(mine):,}",
                ("  (Enter: show in the timeline)", "dim"),
            )
        )
        for c in mine[-5000:]:
            if c.error:
                outcome = Text(
                    f"✗ {one_line(c.origin or 'error')}: {short(c.error, 50)}",
                    style=ORIGIN_STYLE.get(str(c.origin), "red"),
                )
            elif c.result_seq is None:
                outcome = Text("no result", style="yellow")
            else:
                outcome = Text(f"ok  {short(c.result, 40)}", style="green")
            attempt = str(c.attempt or 1) + (f" (retry of {c.retry_of})" if c.retry_of else "")
            table.add_row(
                str(c.call_seq),
                clock(c.ts_ns) if c.ts_ns else "?",
                Text(one_line(c.tool)),
                attempt,
                _ms(c.latency_ms),
                highlight_markers(outcome),
                highlight_markers(Text(short(c.args, 60))),
                key=str(c.call_seq),
            )

    @on(DataTable.RowSelected, "#tk-stats")
    def _tool_selected(self, message: DataTable.RowSelected) -> None:
        self._tool = str(message.row_key.value)
        if self.fapp.request_fact("tools") is not None:
            self._fill_calls(self._tool)
        calls = self.query_one("#tk-calls", DataTable)
        calls.focus()

    @on(DataTable.RowSelected, "#tk-calls")
    def _call_selected(self, message: DataTable.RowSelected) -> None:
        seq = int(str(message.row_key.value))
        tool = self._tool
        flt = EventFilter(tools=frozenset({tool}), label=f"tool: {tool}") if tool else None
        self.fapp.show_in_timeline(flt, seq=seq)
