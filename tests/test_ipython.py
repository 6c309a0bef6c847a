"""A notebook's uncaught exception: IPython (a Jupyter kernel, the ``ipython`` shell) shows a
cell's exception itself and never calls ``sys.excepthook``; flightrec dumps on it through
IPython's ``post_run_cell`` event. Each case runs a real ``InteractiveShell`` in a fresh
interpreter, as a kernel runs cells."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import flightrec

from .conftest import run_child

pytest.importorskip("IPython")

_SHELL = """
    import json, sys
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    def cell(code):
        result = shell.run_cell(code)
        return type(result.error_in_exec or result.error_before_exec).__name__
    outcomes = [cell(code) for code in json.loads(sys.argv[1])]
    print(json.dumps(outcomes))
"""


def _run_cells(frdir: Path, cells: list[str]) -> list[str]:
    """Run ``cells`` in a real IPython shell in a child; what each one raised ("NoneType": nothing)."""
    code = _SHELL.replace("json.loads(sys.argv[1])", repr(cells))
    result = run_child(code, frdir)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_a_cell_that_raises_dumps_with_its_error(frdir: Path) -> None:
    outcomes = _run_cells(
        frdir,
        [
            "import flightrec; flightrec.start(triggers='excepthook', keep_ring=False)",
            "flightrec.record('note', text='before the failure')",
            "raise ValueError('the tool returned garbage')",
        ],
    )
    assert outcomes == ["NoneType", "NoneType", "ValueError"]
    dumps = sorted(frdir.glob("*.frec"))
    assert len(dumps) == 1
    with flightrec.load(dumps[0]) as recording:
        events = list(recording.events())
    errors = [e for e in events if e.kind == "error"]
    assert [e.data["origin"] for e in errors] == ["cell"]
    assert "the tool returned garbage" in errors[0].data["message"]
    assert any(e.kind == "note" for e in events)


@pytest.mark.parametrize(
    ("cells", "why"),
    [
        (["import flightrec; flightrec.start(triggers='none')", "1/0"], "the trigger is off"),
        (["import flightrec; flightrec.start(triggers='excepthook')", "def f(:"], "a cell that did not compile"),
        (["import flightrec; flightrec.start(triggers='excepthook')", "raise KeyboardInterrupt"], "an interrupt"),
        (["import flightrec; flightrec.start(triggers='excepthook')", "x = 1"], "no failure"),
    ],
)
def test_no_dump_when(frdir: Path, cells: list[str], why: str) -> None:
    _run_cells(frdir, cells)
    assert list(frdir.glob("*.frec")) == [], why


def test_a_recorder_started_later_in_the_session_is_the_one_dumped(frdir: Path) -> None:
    """The hook is installed once and acts for whichever recorder runs when a cell fails, and
    only if that one was started with the trigger."""
    _run_cells(
        frdir,
        [
            "import flightrec; flightrec.start(triggers='excepthook')",
            "flightrec.stop(); flightrec.start(triggers='none')",
            "1/0",
            "flightrec.stop(); flightrec.start(triggers='excepthook')",
            "{}['missing']",
        ],
    )
    dumps = sorted(frdir.glob("*.frec"))
    assert len(dumps) == 1
    with flightrec.load(dumps[0]) as recording:
        errors = [e for e in recording.events() if e.kind == "error"]
    assert [e.data["type"] for e in errors] == ["builtins.KeyError"]
