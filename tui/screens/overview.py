"""Overview: the process, what triggered the dump, the exception, counts and findings."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from flightrec.cli.show_cmd import damage_line, overwritten_line, trigger_time
from flightrec.redact import describe_header

from ..facts import UNAVAILABLE, Counts, Failed
from ..render import duration, full_time, highlight_markers, kind_style, lines_of, one_line, total
from ..view import EventFilter
from .base import MainScreen

SEVERITY_STYLE = {"critical": "bold white on red", "error": "bold red", "warning": "bold yellow", "info": "cyan"}


def _target_key(target: tuple[str, Any]) -> tuple[Any, ...]:
    """What a findings-list entry points at, comparable across rebuilds of the list."""
    what, value = target
    if what == "errors":
        return ("errors",)
    return (what, getattr(value, "kind", None), tuple(getattr(value, "seqs", None) or ()))


class OverviewScreen(MainScreen):
    """Where to start: what ran, how it failed, what the analysis found."""

    NAME = "overview"
    FACTS = ("counts", "findings")

    DEFAULT_CSS = """
    OverviewScreen #ov-cols { height: 1fr; }
    OverviewScreen #ov-left { width: 3fr; padding: 0 1; }
    OverviewScreen #ov-right { width: 2fr; padding: 0 1; }
    OverviewScreen #ov-findings { height: 1fr; min-height: 6; border: round $primary; }
    OverviewScreen #ov-findings:focus { border: round $accent; }
    OverviewScreen #ov-counts { height: auto; }
    OverviewScreen .section { margin-bottom: 1; }
    """

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="ov-cols"):
            with VerticalScroll(id="ov-left"):
                yield Static(id="ov-process", classes="section")
                yield Static(id="ov-exception", classes="section")
            with Vertical(id="ov-right"):
                yield Static(id="ov-counts", classes="section")
                yield Static("Findings  [dim](Enter: show their events)[/]", classes="panel-title")
                yield OptionList(id="ov-findings")

    _keys: list[tuple[Any, ...] | None]
    """Per option of the findings list, what it points at (:func:`_target_key`); None if disabled."""
    _provisional: bool
    """The findings list was built before the findings were computed."""

    def on_mount(self) -> None:
        super().on_mount()
        self._keys, self._provisional = [], True
        self.query_one("#ov-process", Static).update(self._process())
        self.query_one("#ov-exception", Static).update(self._exception())
        self._show_counts()
        self._show_findings()
        self.query_one("#ov-findings", OptionList).focus()

    def fact_changed(self, name: str) -> None:
        if name == "counts":
            self._show_counts()
            self._show_findings()
        elif name == "findings":
            self._show_findings()

    def source_changed(self, result: Any) -> None:
        self.query_one("#ov-process", Static).update(self._process())

    # ------------------------------------------------------------------ sections
    def _process(self) -> Table:
        src = self.source
        meta = src.meta
        t = Table.grid(padding=(0, 1))
        t.add_column(style="bold", no_wrap=True)
        t.add_column()
        argv = meta.get("argv") or []
        t.add_row("process", Text(f"pid {src.pid} on {one_line(meta.get('host', '?'))}"))
        t.add_row("command", highlight_markers(Text(one_line(" ".join(str(a) for a in argv)) or "?")))
        py = meta.get("python")
        t.add_row("python", Text(one_line(f"{py or '?'}   flightrec {meta.get('flightrec_version', '?')}")))
        trigger = meta.get("trigger") or {}
        if trigger:
            t.add_row(
                "trigger",
                Text(
                    one_line(trigger.get("reason", "?"))
                    + (f" in thread {one_line(trigger['thread'])}" if trigger.get("thread") else ""),
                    style="bold yellow",
                ),
            )
        elif src.is_live:
            t.add_row("state", Text("live: attached to a running recorder", style="bold green"))
        idx = src.index
        start = meta.get("start_ns")
        if start:
            t.add_row("started", full_time(start))
        written = trigger_time(meta)
        if written:
            t.add_row("recovered" if meta.get("recovered") else "dumped", full_time(written))
        if idx.first_ts and idx.last_ts:
            span = duration((idx.last_ts - idx.first_ts) / 1e9)
            t.add_row("events", f"{idx.total:,}  from {full_time(idx.first_ts)} to {full_time(idx.last_ts)} ({span})")
        counters = src.counters
        if counters:
            parts = [
                f"recorded {total(counters.get('recorded')):,}",
                f"dropped {total(counters.get('dropped')):,}",
                f"recorder errors {total(counters.get('errors')):,}",
            ]
            if total(counters.get("degraded")):
                parts.append(f"degraded {total(counters['degraded']):,}")
            sampling = counters.get("sampling")
            if isinstance(sampling, dict) and sampling:
                parts.append(f"sampling kept {total(sampling.get('kept')):,}/{total(sampling.get('offered')):,}")
            t.add_row("counters", ", ".join(parts))
        redaction = describe_header(meta.get("redaction"))
        if redaction is not None:
            t.add_row("redaction", Text(redaction, style="bold red" if redaction == "off" else "orchid"))
        damage = damage_line(src.recording)
        if damage is not None:
            t.add_row("damage", Text(damage, style="bold red"))
        gone = overwritten_line(src.recording)
        if gone is not None:
            t.add_row("wrapped", Text(gone, style="dim"))
        return t

    def _exception(self) -> Any:
        meta = self.source.meta
        exc = meta.get("exception")
        fatal = meta.get("fatal_error")
        if not exc and not fatal:
            return Text("no exception recorded in the header", style="dim")
        parts: list[Any] = []
        if exc:
            head = Text()
            head.append(f"{one_line(exc.get('type', 'Exception'))}: ", style="bold red")
            head.append(lines_of(exc.get("message", "")), style="bold")
            if exc.get("origin"):
                head.append(f"   [{one_line(exc['origin'])}]", style="yellow")
            parts.append(highlight_markers(head))
            tb = lines_of(exc.get("traceback") or "").rstrip()
            if tb:
                parts.append(Syntax(tb, "pytb", theme="ansi_dark", word_wrap=True, background_color="default"))
        if fatal:
            parts.append(Text("fatal error log (faulthandler):", style="bold red"))
            parts.append(Text(lines_of(str(fatal)[-4000:])))
        return Group(*parts)

    def _show_counts(self) -> None:
        counts = self.fact("counts")
        widget = self.query_one("#ov-counts", Static)
        if not isinstance(counts, Counts):
            widget.update(Text("counting events…", style="italic dim"))
            return
        t = Table(
            title="Events by kind",
            title_justify="left",
            title_style="bold",
            expand=True,
            show_edge=False,
            box=None,
            padding=(0, 1),
        )
        t.add_column("kind")
        t.add_column("events", justify="right")
        for kind, n in counts.by_kind.most_common():
            t.add_row(Text(one_line(kind), style=kind_style(kind)), f"{n:,}")
        t.add_row(Text("errors", style="bold red"), Text(f"{counts.errors:,}", style="bold red"))
        threads = ", ".join(f"{one_line(name)} ({n:,})" for name, n in counts.threads.most_common(4))
        more = len(counts.threads) - 4
        widget.update(Group(t, Text(f"threads: {threads}" + (f" +{more}" if more > 0 else ""), style="dim")))

    def _show_findings(self) -> None:
        options = self.query_one("#ov-findings", OptionList)
        findings = self.fact("findings")
        counts = self.fact("counts")
        # The highlighted finding, to keep through a rebuild (a live recording's counts change);
        # not the one picked while the analysis still ran (only the errors line could be).
        was = options.highlighted
        keep = self._keys[was] if was is not None and not self._provisional and was < len(self._keys) else None
        options.clear_options()
        self._targets: list[tuple[str, Any]] = []
        items: list[Option] = []
        if findings is None:
            items.append(Option(Text("analysing…", style="italic dim"), disabled=True))
        elif isinstance(findings, Failed):
            items.append(Option(Text(f"findings: the analysis failed ({findings.reason})", style="red"), disabled=True))
        elif findings is UNAVAILABLE:
            items.append(Option(Text("findings: not available in this recording", style="dim"), disabled=True))
        else:
            for f in findings:
                text = Text()
                sev = str(getattr(f, "severity", "info"))
                text.append(f"{sev.upper():<8}", style=SEVERITY_STYLE.get(sev, ""))
                text.append(f"{one_line(getattr(f, 'kind', ''))}: ", style="bold")
                text.append(one_line(getattr(f, "message", "")))
                seqs = list(getattr(f, "seqs", []) or [])
                if seqs:
                    text.append(f"  ({len(seqs)} event{'' if len(seqs) == 1 else 's'})", style="dim")
                items.append(Option(highlight_markers(text), id=f"finding-{len(self._targets)}"))
                self._targets.append(("finding", f))
            if not findings:
                items.append(Option(Text("no findings", style="dim"), disabled=True))
        if isinstance(counts, Counts) and counts.first_error_seq is not None:
            text = Text()
            text.append("ERRORS  ", style="bold red")
            text.append(f"{counts.errors:,} error event(s); first at seq {counts.first_error_seq}")
            items.append(Option(text, id=f"finding-{len(self._targets)}"))
            self._targets.append(("errors", counts.first_error_seq))
        options.add_options(items)
        # Enter acts on the highlighted finding: with none highlighted (a fresh list has none)
        # the key the panel's title offers did nothing until an arrow key was pressed first.
        targets = iter(self._targets)  # (in the order of the enabled options)
        self._keys = [None if item.disabled else _target_key(next(targets)) for item in items]
        self._provisional = findings is None
        enabled = [i for i, key in enumerate(self._keys) if key is not None]
        if enabled:
            options.highlighted = self._keys.index(keep) if keep is not None and keep in self._keys else enabled[0]

    @on(OptionList.OptionSelected, "#ov-findings")
    def _finding_selected(self, message: OptionList.OptionSelected) -> None:
        oid = message.option.id or ""
        if not oid.startswith("finding-"):
            return
        what, value = self._targets[int(oid.split("-", 1)[1])]
        if what == "errors":
            self.fapp.show_in_timeline(EventFilter(errors_only=True, label="errors"), seq=value)
            return
        seqs = sorted(int(s) for s in (getattr(value, "seqs", None) or []))
        if not seqs:
            self.notify("this finding points at no event", severity="warning")
            return
        label = f"finding: {getattr(value, 'kind', '')}"
        self.fapp.show_in_timeline(EventFilter(seqs=frozenset(seqs), label=label), seq=seqs[0])
