"""A sparkline whose bars stand on zero.

Textual's ``Sparkline`` spans the series' minimum to its maximum: an RSS going from 27.7 to
27.8 MiB filled its whole height, like a leak, and a constant series (3 threads throughout)
drew nothing at all, like no data. Here a bar's height is its value against a ceiling (the
series' maximum, or more: 100 for a CPU percentage), so a small change looks small.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

EIGHTHS = " ▁▂▃▄▅▆▇█"


def columns(values: Sequence[float], width: int) -> list[float]:
    """``values`` resampled to ``width`` columns: each column the maximum of the samples it
    covers (a spike stays visible), a sample repeated over several columns when they are fewer."""
    n = len(values)
    out = []
    for i in range(width):
        start = i * n // width
        end = max((i + 1) * n // width, start + 1)
        out.append(max(values[start:end]))
    return out


def render_bars(values: Sequence[float], width: int, height: int, ceiling: float, style: str) -> Text:
    """The bars of ``values`` in a ``width`` x ``height`` cell box, zero at the bottom and
    ``ceiling`` at the top (in eighths of a cell)."""
    text = Text(no_wrap=True, overflow="crop")
    if not values or width <= 0 or height <= 0:
        return text
    top = ceiling if ceiling > 0 else 1.0
    levels = [max(0, min(height * 8, round(v / top * height * 8))) for v in columns(values, width)]
    for row in reversed(range(height)):
        floor = row * 8
        line = "".join(EIGHTHS[min(8, max(0, level - floor))] for level in levels)
        text.append(line, style=style)
        if row:
            text.append("\n")
    return text


class ZeroSparkline(Widget):
    """Bars of a series from zero up to :attr:`ceiling` (default: the series' maximum)."""

    DEFAULT_CSS = """
    ZeroSparkline { height: 5; }
    """

    data: reactive[list[float]] = reactive(list, always_update=True)
    """The samples, oldest first."""

    def __init__(self, *, style: str = "dodger_blue2", floor_ceiling: float = 0.0, id: str | None = None) -> None:
        """An empty plot; ``floor_ceiling`` is the least the top of the plot stands for
        (100 for a percentage: 20% then reaches a fifth of the height, not all of it)."""
        super().__init__(id=id)
        self.bar_style = style
        self.floor_ceiling = floor_ceiling

    def render(self) -> Text:
        values = self.data
        ceiling = max([self.floor_ceiling, *values]) if values else 0.0
        return render_bars(values, self.size.width, self.size.height, ceiling, self.bar_style)
