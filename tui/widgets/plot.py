"""A small bar plot of a series against a limit, with event marks and a cursor column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

BARS = " ▁▂▃▄▅▆▇█"


@dataclass(frozen=True, slots=True)
class Mark:
    """A glyph under one point of the plot (a retain, an evict...)."""

    x: float
    """Position on the same axis as the samples (e.g. seq)."""
    glyph: str
    style: str


class LimitPlot(Widget, can_focus=True):
    """Values over an axis as vertical bars, a limit line, marks below, and a cursor."""

    DEFAULT_CSS = """
    LimitPlot { height: 14; border: round $primary; }
    LimitPlot:focus { border: round $accent; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left,h", "move(-1)", "Earlier", show=False),
        Binding("right,l", "move(1)", "Later", show=False),
        Binding("left_square_bracket", "move(-10)", "-10", show=False),
        Binding("right_square_bracket", "move(10)", "+10", show=False),
        Binding("home", "move(-100000)", "Start", show=False),
        Binding("end", "move(100000)", "End", show=False),
    ]

    column: reactive[int] = reactive(-1)
    """The selected column (-1: the last one)."""

    class Moved(Message):
        """The cursor moved to the sample at ``index``."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, *, id: str | None = None) -> None:
        """An empty plot."""
        super().__init__(id=id)
        self.xs: list[float] = []
        self.values: list[float] = []
        self.limits: list[float] = []
        self.marks: list[Mark] = []
        self.unit = ""

    def set_data(
        self, xs: list[float], values: list[float], limits: list[float], marks: list[Mark], unit: str = ""
    ) -> None:
        """Plot ``values`` (and ``limits``) at positions ``xs``, with ``marks``."""
        self.xs, self.values, self.limits, self.marks, self.unit = xs, values, limits, marks, unit
        self.refresh()

    def _columns(self, width: int) -> list[tuple[int, int]]:
        """For each column, the (first, last) sample index it covers."""
        n = len(self.values)
        if n == 0 or width <= 0:
            return []
        return [(c * n // width, max(c * n // width, (c + 1) * n // width - 1)) for c in range(width)]

    def selected_index(self) -> int | None:
        """The sample under the cursor."""
        cols = self._columns(max(1, self.content_region.width - 8))
        if not cols:
            return None
        c = self.column if 0 <= self.column < len(cols) else len(cols) - 1
        return cols[c][1]

    def action_move(self, delta: int) -> None:
        """Move the cursor by ``delta`` samples (to the first column showing the sample; by one
        column at least, when a column holds several samples)."""
        cols = self._columns(max(1, self.content_region.width - 8))
        if not cols:
            return
        c = self.column if 0 <= self.column < len(cols) else len(cols) - 1
        target = max(0, min(len(self.values) - 1, cols[c][1] + delta))
        new = next((k for k, (_, last) in enumerate(cols) if last >= target), len(cols) - 1)
        if new == c and cols[c][1] != target:
            new = max(0, min(len(cols) - 1, c + (1 if delta > 0 else -1)))
        self.column = new

    def watch_column(self) -> None:
        idx = self.selected_index()
        if idx is not None:
            self.post_message(self.Moved(idx))
        self.refresh()

    def render(self) -> Text:
        width = max(1, self.content_region.width - 8)
        height = max(2, self.content_region.height - 1)
        cols = self._columns(width)
        if not cols:
            return Text("no samples", style="dim")
        peak = max(max(self.values), max(self.limits, default=0.0)) or 1.0
        col_vals = [max(self.values[a : b + 1]) for a, b in cols]
        col_lims = [max(self.limits[a : b + 1]) if self.limits else 0.0 for a, b in cols]
        cursor = self.column if 0 <= self.column < len(cols) else len(cols) - 1
        text = Text(no_wrap=True)
        levels = height * 8
        run = _Runs(text)
        for row in range(height):
            top = height - row  # rows counted from the bottom, 1-based
            label = ""
            if row == 0:
                label = _short_num(peak)
            elif row == height - 1:
                label = "0"
            text.append(f"{label:>7} ", style="dim")
            for c, (v, lim) in enumerate(zip(col_vals, col_lims, strict=False)):
                level = round(levels * v / peak)
                lim_row = round(height * lim / peak) if lim else -1
                fill = level - (top - 1) * 8
                ratio = v / lim if lim else 0.0
                colour = "green" if ratio < 0.7 else ("yellow" if ratio < 0.9 else "red")
                bg = " on grey23" if c == cursor else ""
                if fill >= 8:
                    ch = "█"
                elif fill > 0:
                    ch = BARS[fill]
                else:
                    ch = "─" if top == lim_row else " "
                    colour = "bold red" if top == lim_row else colour
                if top == lim_row and fill < 8 and fill > 0:
                    colour = "red"
                run.add(ch, colour + bg)
            run.flush()
            text.append("\n")
        # marks row
        text.append(" " * 8)
        line = [" "] * len(cols)
        styles = [""] * len(cols)
        if self.xs:
            import bisect

            col_first_x = [self.xs[a] for a, _ in cols]
            for m in self.marks:
                c = max(0, bisect.bisect_right(col_first_x, m.x) - 1)
                if line[c] == " " or m.style.startswith("bold"):
                    line[c], styles[c] = m.glyph, m.style
        for c, (ch, st) in enumerate(zip(line, styles, strict=False)):
            run.add(ch, st + (" on grey23" if c == cursor else ""))
        run.flush()
        return text


class _Runs:
    """Appends characters to a Text, one span per run of equal style (small SVGs, fast renders)."""

    def __init__(self, text: Text) -> None:
        self.text = text
        self.chars: list[str] = []
        self.style = ""

    def add(self, ch: str, style: str) -> None:
        if style != self.style:
            self.flush()
            self.style = style
        self.chars.append(ch)

    def flush(self) -> None:
        if self.chars:
            self.text.append("".join(self.chars), style=self.style or None)
            self.chars = []


def _short_num(v: float) -> str:
    if v >= 1_000_000:
        return f"{v / 1_000_000:.1f}M"
    if v >= 1_000:
        return f"{v / 1_000:.1f}k"
    return f"{v:.0f}"
