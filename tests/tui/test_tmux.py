"""The app in a real terminal: run under tmux, send keys, read the pane as a person would."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux); .ci/run installs it"
)


class Tmux:
    """One tmux server of our own (its own socket), with one session running a command."""

    def __init__(self, command: list[str], env: dict[str, str], size: tuple[int, int] = (130, 36)) -> None:
        self.socket = f"flightrec-test-{uuid.uuid4().hex[:8]}"
        self.session = "tui"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        shell = f"env -u COLUMNS -u LINES {exports} {shlex.join(command)}"
        self.tmux(
            "-f", "/dev/null", "new-session", "-d", "-s", self.session, "-x", str(size[0]), "-y", str(size[1]), shell
        )
        # Detached sessions may keep the default 80x24 whatever -x/-y say: size the window explicitly.
        self.tmux("set-option", "-t", self.session, "window-size", "manual")
        self.tmux("resize-window", "-t", self.session, "-x", str(size[0]), "-y", str(size[1]))

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=20)

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def pane(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session).stdout

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        pane = ""
        while time.monotonic() < deadline:
            pane = self.pane()
            if text in pane:
                return pane
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the pane shows:\n{pane}")

    def alive(self) -> bool:
        return self.tmux("has-session", "-t", self.session).returncode == 0

    def close(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def tmux_app(rich_dump: Path) -> Iterator[Tmux]:
    """``flightrec open`` on the deterministic dump, in a 130x36 tmux pane."""
    env = {"TZ": "UTC", "PYTHONPATH": str(REPO), "TERM": "xterm-256color", "HOME": os.environ.get("HOME", "/tmp")}
    t = Tmux([sys.executable, "-m", "flightrec", "open", str(rich_dump)], env)
    try:
        yield t
    finally:
        t.close()


def test_open_navigate_and_quit(tmux_app: Tmux) -> None:
    """A person sees the overview, switches to the timeline, opens an error's payload, and quits."""
    # Each text is waited for on its own: a terminal repaints in pieces, so one capture may
    # hold part of the screen only.
    tmux_app.wait_for("ToolFailure: lookup_order failed 3 times")
    tmux_app.wait_for("1 Overview")
    tmux_app.wait_for("trigger")
    tmux_app.send("2")
    tmux_app.wait_for("Next error")
    tmux_app.wait_for("→ lookup_order({order: ORD-123, turn: 1})")
    tmux_app.send("e")
    tmux_app.wait_for("✗ lookup_order [transient]")
    tmux_app.send("Enter")
    tmux_app.wait_for("Expand all")
    tmux_app.wait_for("origin: 'transient'")
    tmux_app.wait_for("error: '503 Service Unavailable'")
    tmux_app.send("Escape")
    tmux_app.wait_for("Next error")
    tmux_app.send("q")
    deadline = time.monotonic() + 10
    while tmux_app.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tmux_app.alive(), "the app did not quit on q"
