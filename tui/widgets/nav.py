"""The bar of screens at the top and the source's status line under it."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from ..render import duration, total


class NavBar(Static):
    """``flightrec │ 1 Overview  2 Timeline …`` with the current screen highlighted."""

    DEFAULT_CSS = """
    NavBar { height: 1; background: $panel; color: $text; }
    """

    def __init__(self, current: str) -> None:
        """Highlight ``current``."""
        super().__init__()
        self.current = current

    def on_mount(self) -> None:
        self.update(self._text())

    def _text(self) -> Text:
        from ..app import SCREENS

        text = Text()
        text.append(" flightrec ", style="bold reverse")
        for name, (key, title) in SCREENS.items():
            style = "bold reverse $accent" if name == self.current else ""
            text.append(" ")
            text.append(f" {key} {title} ", style="bold black on #ffa62b" if name == self.current else style)
        return text


class StatusLine(Static):
    """What is shown and its state: dump / live (rate, drops) / exited (recover)."""

    DEFAULT_CSS = """
    StatusLine { height: 1; background: $boost; padding: 0 1; }
    """

    def on_mount(self) -> None:
        self.refresh_status()

    def refresh_status(self) -> None:
        """Re-read the source's state."""
        app: Any = self.app
        src = app.source
        if src is None:
            self.update("")
            return
        text = Text(overflow="ellipsis", no_wrap=True)
        status = src.status
        counters = src.counters
        if status == "live":
            text.append("● LIVE ", style="bold green")
            text.append(f"{src.rate:,.0f} ev/s  ")
        elif status == "stalled":
            text.append("● NOT RESPONDING ", style="bold yellow")
        elif status in ("exited", "killed"):
            text.append(f"■ {status.upper()} ", style="bold red")
            text.append("ctrl+r: recover  ", style="bold")
        elif status == "ring":
            text.append("RING FILE ", style="bold yellow")
        else:
            text.append("DUMP ", style="bold cyan")
        text.append(src.title(), style="bold")
        idx = src.index
        text.append(f"  {idx.total:,} events")
        if idx.first_ts and idx.last_ts:
            text.append(f" over {duration((idx.last_ts - idx.first_ts) / 1e9)}")
        dropped = total(counters.get("dropped"))
        sampling = counters.get("sampling") or {}
        sampled = total(sampling.get("dropped")) if isinstance(sampling, dict) else 0
        text.append("  dropped ", style="dim")
        text.append(f"{dropped:,}", style="bold red" if dropped else "")
        if sampled and sampled != dropped:
            text.append(f" (sampled out {sampled:,})", style="dim")
        errors = total(counters.get("errors"))
        if errors:
            text.append(f"  recorder errors {errors:,}", style="yellow")
        if src.recording.damaged:
            text.append(f"  damaged blocks {src.recording.damaged}", style="bold red")
        if src.recording.overwritten:  # a live ring that wrapped while shown: normal, not damage
            text.append(f"  overwritten blocks {src.recording.overwritten}", style="dim")
        self.update(text, layout=False)
