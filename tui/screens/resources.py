"""Resources: RSS, CPU, threads and open files over time."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..render import clock, human_bytes
from ..widgets.bars import ZeroSparkline
from .base import MainScreen

SERIES: list[tuple[str, str, str]] = [
    ("rss", "RSS", "bytes"),
    ("cpu_percent", "CPU %", "percent"),
    ("threads", "threads", "count"),
    ("open_files", "open files", "count"),
]
STYLE = {"cpu_percent": "orange3"}


def _fmt(value: float, unit: str) -> str:
    if unit == "bytes":
        return human_bytes(value)
    if unit == "percent":
        return f"{value:.1f}%"
    return f"{value:.0f}"


class ResourcesScreen(MainScreen):
    """One bar plot per resource (from zero: see ZeroSparkline), with min / max / last."""

    NAME = "resources"
    FACTS = ("resources",)

    DEFAULT_CSS = """
    ResourcesScreen #rs-box { padding: 0 1; }
    ResourcesScreen ZeroSparkline { height: 5; margin-bottom: 1; }
    ResourcesScreen .rs-label { height: 1; }
    """

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="rs-box"):
            yield Static(id="rs-msg")
            for key, _, unit in SERIES:
                yield Static(classes="rs-label", id=f"rs-label-{key}")
                ceiling = 100.0 if unit == "percent" else 0.0
                yield ZeroSparkline(style=STYLE.get(key, "dodger_blue2"), floor_ceiling=ceiling, id=f"rs-{key}")

    def on_mount(self) -> None:
        super().on_mount()
        self._fill()

    def fact_changed(self, name: str) -> None:
        if name == "resources":
            self._fill()

    def _fill(self) -> None:
        rows: Any = self.fact("resources")
        msg = self.query_one("#rs-msg", Static)
        placeholder = self.unavailable_text(rows, "resource samples")
        if placeholder is not None:
            msg.update(Text(placeholder, style="italic dim"))
            return
        if not rows:
            msg.update(
                Text(
                    "no resource samples recorded (one every FLIGHTREC_RESOURCES seconds, 1 by default;"
                    " `off` records none)",
                    style="dim",
                )
            )
            return
        first, last = rows[0], rows[-1]
        msg.update(
            Text.assemble((f"{len(rows):,} samples", "bold"), f"  from {clock(first.ts_ns)} to {clock(last.ts_ns)}")
        )
        for key, title, unit in SERIES:
            values = [float(getattr(r, key, 0) or 0) for r in rows]
            label = self.query_one(f"#rs-label-{key}", Static)
            label.update(
                Text.assemble(
                    (f"{title:<11}", "bold"),
                    f"last {_fmt(values[-1], unit)}   min {_fmt(min(values), unit)}   max {_fmt(max(values), unit)}",
                )
            )
            self.query_one(f"#rs-{key}", ZeroSparkline).data = values
