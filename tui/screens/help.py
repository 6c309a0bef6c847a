"""Help: the key map."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from ..app import SCREENS
from ..keys import KEYS_MARKDOWN


class HelpScreen(ModalScreen[None]):
    """Every key, by screen; any of Escape, ``?`` or ``q`` closes it, ``1`` … ``7`` close it and
    show that screen (the table says they work everywhere: a modal screen holds back the app's
    own bindings)."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90; max-width: 95%; height: 90%; border: round $accent;
                                  background: $surface; padding: 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "app.pop_screen", "Close"),
        *(Binding(key, f"leave('{name}')", title, show=False) for name, (key, title) in SCREENS.items()),
    ]

    def action_leave(self, name: str) -> None:
        """Close the help and show main screen ``name``."""
        app = self.app
        app.pop_screen()
        goto = getattr(app, "action_goto", None)  # FlightrecApp's; a bare App has no screens to go to
        if goto is not None:
            goto(name)

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(KEYS_MARKDOWN + "\nThe command palette (`ctrl+p`) reaches every screen and action.\n")
