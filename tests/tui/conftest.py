"""Fixtures for the TUI tests: recordings (real and deterministic), a live child, a fixed clock."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import child_env

from . import agent, builder

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop (Textual's Pilot is async; no plugin needed)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**args))
    return True


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Times on screen are local: pin the zone so the tests see the same text everywhere."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.fixture
def rich_dump(tmp_path: Path) -> Path:
    """The deterministic support-agent dump (fixed pid, clock and contents)."""
    return builder.rich_dump(tmp_path / "dumps")


@pytest.fixture(scope="session")
def real_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dump written by the real recorder for an instrumented agent run."""
    import flightrec

    flightrec.stop()
    d = tmp_path_factory.mktemp("real")
    os.chmod(d, 0o700)
    return agent.run(d)


@pytest.fixture
def live_child(frdir: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A child process recording ~300 events/s until killed; yields it and its ring file."""
    from flightrec.cli.discovery import find_rings

    proc = subprocess.Popen(
        [sys.executable, "-u", str(HERE / "agent.py"), str(frdir), "live", "300"],
        env=child_env(frdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        rings = [r for r in find_rings(str(frdir)) if r.pid == proc.pid]
        assert rings, "the child's ring file was not found"
        yield proc, rings[0].path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture(scope="session")
def demo_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dump the bundled demo agent (``python -m flightrec.demo``) writes when it fails."""
    d = tmp_path_factory.mktemp("demo")
    os.chmod(d, 0o700)
    subprocess.run(
        [sys.executable, "-m", "flightrec.demo"], env=child_env(d), capture_output=True, text=True, timeout=120
    )
    dumps = sorted(d.glob("*.frec"))
    if not dumps:
        pytest.skip("the demo agent wrote no dump")
    return dumps[-1]
