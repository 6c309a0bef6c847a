"""Regenerate the README's SVG screenshots of every TUI screen.

Run from the repository root: ``.venv/bin/python docs/screenshots/make.py``. The screens
show the dump of the bundled demo agent (``flightrec demo``), so the README shows what a
new user sees.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from flightrec.tui.app import FlightrecApp  # noqa: E402
from flightrec.tui.sources import open_source  # noqa: E402

from tests.tui.util import screen_text, wait_for  # noqa: E402

OUT = Path(__file__).resolve().parent
SIZE = (130, 36)

SHOTS: list[tuple[str, str, list[str], tuple[str, ...]]] = [
    ("overview", "overview", [], ("findings",)),
    ("timeline", "timeline", ["e"], ("steps",)),
    ("detail", "timeline", ["e", "enter"], ("steps",)),
    ("steps", "steps", [], ("steps",)),
    ("tools", "tools", ["enter"], ("tool_stats", "tools")),
    ("memory", "memory", [], ("memory",)),
    ("resources", "resources", [], ("resources",)),
    ("checkpoints", "checkpoints", [], ("checkpoints",)),
]


async def shoot(path: Path, name: str, screen: str, keys: list[str], facts: tuple[str, ...]) -> None:
    app = FlightrecApp(open_source(path), initial=screen)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: all(f in app.facts for f in ("counts", *facts)), what=name)
        await pilot.pause(0.3)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.3)
        if name == "checkpoints":
            await wait_for(pilot, lambda: "change(s) from" in screen_text(app), what="diff")
            await pilot.pause(0.2)
        (OUT / f"{name}.svg").write_text(app.export_screenshot(title=f"flightrec — {name}", simplify=True))
        print(f"wrote {OUT / (name + '.svg')}")


async def main() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
    tmp = Path(tempfile.mkdtemp(prefix="flightrec-shots-"))
    os.chmod(tmp, 0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTREC_")}
    env.update(FLIGHTREC_DIR=str(tmp), PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "flightrec.demo"], env=env, capture_output=True, check=False)
    demo = sorted(tmp.glob("*.frec"))[-1]
    for name, screen, keys, facts in SHOTS:
        await shoot(demo, name, screen, keys, facts)


if __name__ == "__main__":
    asyncio.run(main())
