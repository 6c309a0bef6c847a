"""Start: live recorders and dumps of the current user; Enter opens one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from flightrec.cli.discovery import find_dumps, find_rings, human_age, human_size
from flightrec.errors import FlightrecError
from flightrec.outputs import display_path

from ..render import one_line
from ..sources import open_source, process_alive


class StartScreen(Screen[None]):
    """Pick what to look at: a running agent or a dump."""

    IS_HOME = True

    DEFAULT_CSS = """
    StartScreen #sr-head { height: auto; padding: 0 1; background: $panel; }
    StartScreen DataTable { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh_list", "Refresh"),
        Binding("enter", "open", "Open", show=False),
    ]

    def __init__(self, directory: str | None = None) -> None:
        """List the recorders and dumps in ``directory`` (default: the per-user directories)."""
        super().__init__()
        self.directory = directory
        self._paths: dict[str, tuple[str, Path]] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="sr-head")
        yield DataTable(id="sr-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("", "what", "pid", "age / time", "size", "command / path")
        self.action_refresh_list()
        self.set_interval(2.0, self.action_refresh_list)
        table.focus()

    def on_screen_resume(self) -> None:
        self.action_refresh_list()

    def action_refresh_list(self) -> None:
        """Re-scan the directories."""
        if not self.is_current:
            return
        table = self.query_one(DataTable)
        selected = None
        if table.row_count and table.cursor_row >= 0:
            try:
                selected = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
            except Exception:
                selected = None
        table.clear()
        self._paths.clear()
        rings = find_rings(self.directory)
        dumps = find_dumps(self.directory)
        for r in rings:
            key = f"ring:{r.path}"
            self._paths[key] = ("ring", r.path)
            if r.damaged:  # its header's pid and age mean nothing: say what is wrong instead
                state = Text("✗ damaged", style="bold red")
                note = Text(one_line(f"{display_path(r.path)}   (damaged header: {r.problem})"))
                table.add_row(state, "recorder", "?", "?", human_size(r.size), note, key=key)
                continue
            alive = r.alive and not r.closed and process_alive(r.pid)
            state = Text("● live", style="bold green") if alive else Text("✗ dead", style="bold red")
            table.add_row(
                state,
                "recorder",
                str(r.pid),
                human_age(r.age_s),
                human_size(r.size),
                Text(one_line(r.command[:100]) + ("" if alive else "   (dead: opens read-only; ctrl+r recovers)")),
                key=key,
            )
        for d in dumps:
            key = f"dump:{d.path}"
            self._paths[key] = ("dump", d.path)
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d.mtime))
            table.add_row(
                Text("■ dump", style="bold cyan"),
                "dump",
                "",
                when,
                human_size(d.size),
                Text(one_line(display_path(d.path))),
                key=key,
            )
        head = Text()
        head.append("flightrec", style="bold")
        head.append(f"   {len(rings)} recorder(s), {len(dumps)} dump(s)")
        if not rings and not dumps:
            head.append(
                "   nothing here yet: start an agent with `import flightrec.auto`, or run `flightrec demo`", style="dim"
            )
        else:
            head.append("   Enter: open   r: refresh", style="dim")
        self.query_one("#sr-head", Static).update(head)
        if selected is not None and selected in self._paths:
            table.move_cursor(row=table.get_row_index(selected))

    @on(DataTable.RowSelected)
    def _row_selected(self, message: DataTable.RowSelected) -> None:
        self._open(str(message.row_key.value))

    def action_open(self) -> None:
        """Open the highlighted recorder or dump."""
        table = self.query_one(DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
            self._open(str(key))

    def _open(self, key: str) -> None:
        entry = self._paths.get(key)
        if entry is None:
            return
        app: Any = self.app
        try:
            source = open_source(entry[1])
        except FlightrecError as exc:
            self.notify(str(exc), severity="error")
            self.action_refresh_list()
            return
        if entry[0] == "ring" and not source.live_capable:
            from ..sources import LiveSource

            try:
                source = LiveSource.attach(entry[1])
            except FlightrecError:
                pass
        app.open_source(source, initial="timeline" if source.is_live else "overview")
