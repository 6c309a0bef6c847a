"""Shared fixtures: a real recorder in a private temp directory, and child-process helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import flightrec

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def frdir(tmp_path: Path) -> Path:
    """A 0700 directory for rings and dumps."""
    d = tmp_path / "fr"
    d.mkdir(mode=0o700)
    return d


@pytest.fixture
def recorder(frdir: Path) -> Iterator[flightrec.api.Recorder]:
    """A running recorder (small ring, no triggers), stopped afterwards."""
    flightrec.stop()
    rec = flightrec.start(size="2MiB", dir=frdir, triggers=False, block_size="16KiB", resources=0)
    assert rec is not None
    yield rec
    flightrec.stop()


@pytest.fixture
def rec(frdir: Path) -> Iterator[Any]:
    """A running recorder (4 MiB ring, no triggers, no resource sampler), stopped afterwards."""
    r = flightrec.start(dir=frdir, size="4MiB", triggers=False, resources=0)
    assert r is not None
    yield r
    flightrec.stop()


def recorded() -> flightrec.Recording:
    """Dump the running recorder and open the dump."""
    path = flightrec.dump("test")
    assert path is not None
    return flightrec.load(path)


@pytest.fixture(autouse=True)
def _no_leftover_recorder() -> Iterator[None]:
    """Every test starts and ends with no recorder running."""
    flightrec.stop()
    yield
    flightrec.stop()


def child_env(frdir: Path, **extra: str) -> dict[str, str]:
    """Environment for a child process recording into ``frdir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTREC_")}
    env["FLIGHTREC_DIR"] = str(frdir)
    env["FLIGHTREC_RESOURCES"] = "0"
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def run_child(code: str, frdir: Path, timeout: float = 60, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter recording into ``frdir``; wait for it."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=child_env(frdir, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# Ctrl-C as a child started from a terminal gets it. A test suite run in the background of a
# non-interactive shell passes SIGINT on ignored, and Python then installs no KeyboardInterrupt
# handler: the signal tests would test that instead. On the code's first line, which is blank
# (so line numbers in the child's tracebacks stay those of the test's code).
_AS_FROM_A_TERMINAL = "import signal as _sig; _sig.signal(_sig.SIGINT, _sig.default_int_handler); del _sig"


def spawn_child(code: str, frdir: Path, **extra: str) -> subprocess.Popen[str]:
    """Start ``code`` in a fresh interpreter recording into ``frdir``; don't wait."""
    source = textwrap.dedent(code)
    if source.startswith("\n"):
        source = _AS_FROM_A_TERMINAL + source
    return subprocess.Popen(
        [sys.executable, "-u", "-c", source],
        env=child_env(frdir, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real ``flightrec`` CLI (``python -m flightrec``)."""
    e = env if env is not None else {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "flightrec", *args], env=e, capture_output=True, text=True, timeout=timeout
    )


def wait_ready(child: subprocess.Popen[str]) -> None:
    """Block until a child started by :func:`spawn_child` prints ``ready`` (its set-up is done)."""
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    assert line == "ready", child.stderr.read() if child.stderr and child.poll() is not None else line


def spy_handled(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, declined: Any) -> list[bool]:
    """Wrap ``module.name``, a C helper that hands the cases it does not take back (returning
    ``declined``): the list it returns says, call by call, whether the helper took the case."""
    native = getattr(module, name)
    answers: list[bool] = []

    def spy(*args: Any) -> Any:
        out = native(*args)
        answers.append(out is not declined)
        return out

    monkeypatch.setattr(module, name, spy)
    return answers
