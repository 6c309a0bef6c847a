"""What every main screen shares: the navigation bar, the source's status line, the footer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from ..facts import UNAVAILABLE, Failed
from ..widgets.nav import NavBar, StatusLine

if TYPE_CHECKING:
    from ..app import FlightrecApp
    from ..sources import PollResult, Source


class MainScreen(Screen[None]):
    """A main screen: subclasses set ``NAME`` and implement :meth:`compose_body`."""

    NAME: ClassVar[str] = ""
    FACTS: ClassVar[tuple[str, ...]] = ()
    """Analysis facts this screen shows; requested when it is shown."""
    LIVE_FACTS: ClassVar[tuple[str, ...] | None] = None
    """Facts re-computed while a live recorder grows (default: all of FACTS)."""

    @property
    def fapp(self) -> FlightrecApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    @property
    def source(self) -> Source:
        """The source being shown."""
        src = self.fapp.source
        assert src is not None
        return src

    def compose(self) -> ComposeResult:
        yield NavBar(self.NAME)
        yield StatusLine()
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets."""
        yield from ()

    def on_mount(self) -> None:
        self.fapp.source_changed.subscribe(self, self._source_changed)
        self.fapp.fact_ready.subscribe(self, self._fact_ready)
        # Every screen's on_mount shows the facts computed so far: they are shown. Unmarked,
        # the on_screen_resume that follows the mount delivered them again and the screen was
        # built twice (two 20,000-node step trees, 4,000-row tables: seconds of frozen UI).
        self._shown_facts = {name: value for name in (*self.FACTS, "counts") if (value := self.fact(name)) is not None}

    def on_screen_resume(self) -> None:
        live = self.fapp.source is not None and self.fapp.source.is_live
        for name in self.LIVE_FACTS if live and self.LIVE_FACTS is not None else self.FACTS:
            value = self.fapp.request_fact(name, refresh=True)
            if value is not None:
                self._deliver(name)

    _shown_facts: dict[str, Any]
    """Fact name -> the value the screen shows (a value delivered again is not re-shown)."""

    def fact(self, name: str) -> Any:
        """A computed fact, None while pending, UNAVAILABLE when it cannot be computed."""
        return self.fapp.facts.get(name)

    def _fact_ready(self, name: str) -> None:
        if name in self.FACTS or name == "counts":
            self._deliver(name)

    def _deliver(self, name: str) -> None:
        # Only a fact the screen has not shown yet: coming back to a screen must not rebuild
        # it from the same fact (seconds on a big recording, and the cursor would be lost).
        value = self.fact(name)
        shown: dict[str, Any] | None = getattr(self, "_shown_facts", None)
        if shown is None:  # (before the mount)
            shown = self._shown_facts = {}
        if name in shown and shown[name] is value:
            return
        shown[name] = value
        self.fact_changed(name)

    def fact_changed(self, name: str) -> None:
        """A fact this screen uses was (re)computed."""

    def _source_changed(self, result: PollResult | None) -> None:
        self.query_one(StatusLine).refresh_status()
        self.source_changed(result)
        if self.is_current and result is not None and result.added:
            for name in self.FACTS if self.LIVE_FACTS is None else self.LIVE_FACTS:
                self.fapp.request_fact(name, refresh=True)

    def source_changed(self, result: PollResult | None) -> None:
        """A live source was re-read."""

    @staticmethod
    def unavailable_text(value: Any, what: str) -> str | None:
        """The placeholder to show for a pending or unavailable fact, or None when it is there."""
        if value is None:
            return f"computing {what}…"
        if isinstance(value, Failed):
            return f"{what}: the analysis failed ({value.reason})"
        if value is UNAVAILABLE:
            return f"{what}: not available in this recording (this flightrec has no analysis for it)"
        return None
