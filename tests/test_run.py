"""`flightrec run`: a program run in-process with the recorder on, exit code passed through."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import flightrec
from flightrec.outputs import display_path

from .conftest import child_env


def run_program(
    frdir: Path, tmp_path: Path, *args: str, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`python -m flightrec run --dir FRDIR ARGS...` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "flightrec", "run", "--dir", str(frdir), *args],
        env=child_env(frdir, FLIGHTREC_INTEGRATIONS="none", **env),
        cwd=cwd or tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(path: Path, code: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code))
    return path


class TestScript:
    def test_program_sees_its_argv_and_path_and_is_recorded(self, frdir: Path, tmp_path: Path) -> None:
        """argv is the script's, sys.path[0] its directory, and its events reach the recorder."""
        write(tmp_path / "lib" / "helper.py", "VALUE = 42\n")
        script = write(
            tmp_path / "lib" / "agent.py",
            """
            import json, sys, flightrec
            import helper
            rec = flightrec.get_recorder()
            flightrec.record("note", text="hello")
            print(json.dumps({"argv": sys.argv, "helper": helper.VALUE, "recording": rec is not None,
                              "name": __name__, "recorded": rec.recorded}))
            """,
        )
        result = run_program(frdir, tmp_path, str(script), "--flag", "x")
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert [str(script), "--flag", "x"] == out["argv"]
        assert (out["helper"], out["recording"], out["name"], out["recorded"]) == (42, True, "__main__", 1)
        assert "dump written" not in result.stderr
        assert list(frdir.glob("*.frec")) == []
        assert list(frdir.glob("*.ring")) == [], "a clean exit removes the ring"

    @pytest.mark.parametrize(("code", "expected"), [("sys.exit(3)", 3), ("sys.exit()", 0), ("sys.exit('bye')", 1)])
    def test_exit_code_is_passed_through(self, frdir: Path, tmp_path: Path, code: str, expected: int) -> None:
        """SystemExit codes come back as the process exit code (a message exits 1, printed)."""
        script = write(tmp_path / "exits.py", f"import sys\n{code}\n")
        result = run_program(frdir, tmp_path, str(script))
        assert expected == result.returncode, result.stderr
        if expected == 1:
            assert "bye" in result.stderr

    def test_crash_dumps_prints_the_path_and_exits_1(self, frdir: Path, tmp_path: Path) -> None:
        """An uncaught exception: traceback, a dump holding the error, its path on stderr, exit 1."""
        script = write(
            tmp_path / "crashy.py",
            """
            import flightrec
            with flightrec.step("plan"):
                flightrec.record("note", text="about to fail")
                raise RuntimeError("the model returned garbage")
            """,
        )
        result = run_program(frdir, tmp_path, str(script))
        assert result.returncode == 1
        assert "RuntimeError: the model returned garbage" in result.stderr
        assert "runpy" not in result.stderr and "run_cmd" not in result.stderr, "our frames are hidden"
        [dump] = frdir.glob("*.frec")
        assert f"flightrec: dump written to {dump}" in result.stderr
        assert dump.name.startswith("crashy-")
        with flightrec.load(dump) as rec:
            assert rec.meta["trigger"]["reason"] == "exception"
            assert "the model returned garbage" in rec.meta["exception"]["message"]
            assert str(script) == rec.meta["argv"][0]
            kinds = [e.kind for e in rec.events()]
        assert kinds == ["step_start", "note", "step_end", "error"]

    def test_a_dump_directory_not_in_utf8_is_printed_as_ls_and_show_print_it(self, tmp_path: Path) -> None:
        """Bytes of a path that are not UTF-8 are shown as U+FFFD, not as a '\\udcff' escape."""
        odd = Path(os.fsdecode(bytes(tmp_path) + b"/d\xff"))
        odd.mkdir(mode=0o700)
        script = write(tmp_path / "crashy.py", "raise RuntimeError('boom')\n")
        result = run_program(odd, tmp_path, str(script))
        assert result.returncode == 1
        [dump] = odd.glob("*.frec")
        assert f"flightrec: dump written to {display_path(dump)}" in result.stderr
        assert "\\udcff" not in result.stderr

    def test_killed_by_a_signal_still_says_where_the_dump_went(self, frdir: Path, tmp_path: Path) -> None:
        """SIGTERM's dump is written, and its path printed, before the signal ends the process."""
        script = write(
            tmp_path / "term.py",
            """
            import os, signal, flightrec
            flightrec.record("note", text="about to be terminated")
            os.kill(os.getpid(), signal.SIGTERM)
            """,
        )
        result = run_program(frdir, tmp_path, str(script))
        assert result.returncode == -15, result.stderr
        (dump,) = frdir.glob("*SIGTERM*.frec")
        assert f"flightrec: dump written to {dump}" in result.stderr
        with flightrec.load(dump) as r:
            assert any(e.kind == "note" for e in r.events())

    def test_a_forked_child_says_where_its_own_dumps_went_not_its_parents(self, frdir: Path, tmp_path: Path) -> None:
        """A child forked by the program and ending in the program's code reports its own dump, once."""
        script = write(
            tmp_path / "forky.py",
            """
            import os, sys, flightrec
            flightrec.record("note", text="parent")
            print(flightrec.dump("before-fork"), flush=True)
            pid = os.fork()
            if pid == 0:
                flightrec.record("note", text="child")
                if sys.argv[1] == "raise":
                    raise RuntimeError("the child fails")
                sys.exit(0)
            _, status = os.waitpid(pid, 0)
            print(os.waitstatus_to_exitcode(status), flush=True)
            """,
        )
        # GIVEN a child that ends normally: it wrote nothing, so it names no dump (not its parent's)
        result = run_program(frdir, tmp_path, str(script), "exit")
        assert result.returncode == 0, result.stderr
        parent_dump, child_code = result.stdout.split()
        assert child_code == "0"
        # (Python 3.12+ also warns that a multi-threaded process forks: the recorder's threads)
        said = [line for line in result.stderr.splitlines() if line.startswith("flightrec: ")]
        assert said == [f"flightrec: dump written to {parent_dump}"], result.stderr
        # WHEN the child crashes: its traceback, then where its dump went
        for old in frdir.glob("*.frec"):
            old.unlink()
        result = run_program(frdir, tmp_path, str(script), "raise")
        parent_dump, child_code = result.stdout.split()
        assert (result.returncode, child_code) == (0, "1"), result.stderr
        [child_dump] = list(frdir.glob("*exception.frec"))
        with flightrec.load(child_dump) as rec:
            assert [(e.kind, e.data.get("text")) for e in rec.events()] == [("note", "child"), ("error", None)]
        said = [line for line in result.stderr.splitlines() if line.startswith("flightrec: ")]
        assert sorted(said) == sorted(f"flightrec: dump written to {p}" for p in (parent_dump, child_dump))

    def test_disabled_says_so_once_and_runs_the_program(self, frdir: Path, tmp_path: Path) -> None:
        """FLIGHTREC_DISABLE=1: the program runs, unrecorded, and run says so (no dump, no ring)."""
        script = write(tmp_path / "crashy.py", "print('ran')\nraise SystemExit(3)\n")
        result = run_program(frdir, tmp_path, str(script), FLIGHTREC_DISABLE="1")
        assert (result.returncode, result.stdout) == (3, "ran\n")
        assert result.stderr == "flightrec: FLIGHTREC_DISABLE is set: running the program unrecorded\n"
        assert list(frdir.iterdir()) == []

    def test_a_dir_that_is_a_file_is_refused(self, frdir: Path, tmp_path: Path) -> None:
        """--dir naming a file is a usage error, before anything runs (not a silent fallback)."""
        script = write(tmp_path / "ok.py", "print('ran')\n")
        (tmp_path / "afile").write_text("")
        result = subprocess.run(
            [sys.executable, "-m", "flightrec", "run", "--dir", str(tmp_path / "afile"), str(script)],
            env=child_env(frdir, FLIGHTREC_INTEGRATIONS="none"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2 and "ran" not in result.stdout
        assert result.stderr.strip() == f"flightrec: error: --dir {tmp_path / 'afile'}: not a directory"

    @pytest.mark.parametrize("unsafe", ["writable by others", "a symlink"])
    def test_a_dir_the_recorder_would_refuse_is_refused_before_the_program_runs(
        self, frdir: Path, tmp_path: Path, unsafe: str
    ) -> None:
        """--dir naming a directory writable by others (or a symlink to one) is refused (exit 8),
        as `demo --dir` refuses it: the program ran recorded elsewhere and its dumps failed."""
        script = write(tmp_path / "ok.py", "print('ran')\n")
        target = tmp_path / "shared"
        target.mkdir()
        target.chmod(0o777)
        if unsafe == "a symlink":
            target.chmod(0o700)
            (tmp_path / "link").symlink_to(target)
            target = tmp_path / "link"
        result = subprocess.run(
            [sys.executable, "-m", "flightrec", "run", "--dir", str(target), str(script)],
            env=child_env(frdir, FLIGHTREC_INTEGRATIONS="none"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (result.returncode, result.stdout) == (8, ""), result.stderr
        [line] = result.stderr.splitlines()
        assert line.startswith(f"flightrec: error: {target} is ") and "refusing to use it" in line
        assert list(frdir.iterdir()) == [] and list(target.iterdir()) == []

    def test_an_empty_dir_is_refused_not_the_default(self, frdir: Path, tmp_path: Path) -> None:
        """--dir '' is a usage error, as for ls and recover: not a run recorded in the default
        directory (FLIGHTREC_DIR here), unsaid."""
        script = write(tmp_path / "ok.py", "print('ran')\n")
        result = subprocess.run(
            [sys.executable, "-m", "flightrec", "run", "--dir", "", str(script)],
            env=child_env(frdir, FLIGHTREC_INTEGRATIONS="none", FLIGHTREC_DUMP_ON_EXIT="1"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (result.returncode, result.stdout, result.stderr) == (2, "", "flightrec: error: --dir: empty path\n")
        assert list(frdir.iterdir()) == []

    def test_missing_script_is_one_line_and_exit_5(self, frdir: Path, tmp_path: Path) -> None:
        """A script that does not exist is an error line, like python's own, and exit 5 (not found)."""
        result = run_program(frdir, tmp_path, "nope.py")
        assert result.returncode == 5
        assert result.stderr.strip() == "flightrec: error: nope.py: no such file"

    def test_nothing_to_run(self, frdir: Path, tmp_path: Path) -> None:
        """`flightrec run` without a program says what to give it."""
        result = run_program(frdir, tmp_path)
        assert result.returncode == 2
        assert "nothing to run" in result.stderr


class TestModule:
    def test_dash_m_runs_a_package_with_its_arguments(self, frdir: Path, tmp_path: Path) -> None:
        """`-m pkg args...` runs pkg/__main__.py; options after the module belong to it."""
        write(tmp_path / "mypkg" / "__init__.py", "")
        write(
            tmp_path / "mypkg" / "__main__.py",
            """
            import json, sys, flightrec
            print(json.dumps({"argv": sys.argv[1:], "recording": flightrec.get_recorder() is not None}))
            sys.exit(int(sys.argv[-1]))
            """,
        )
        result = run_program(frdir, tmp_path, "-m", "mypkg", "--size", "5")
        assert result.returncode == 5, result.stderr
        assert json.loads(result.stdout) == {"argv": ["--size", "5"], "recording": True}

    def test_dash_m_crash_produces_a_dump(self, frdir: Path, tmp_path: Path) -> None:
        """A module that crashes is dumped like a script."""
        write(tmp_path / "badmod.py", "raise KeyError('missing tool')\n")
        result = run_program(frdir, tmp_path, "-m", "badmod")
        assert result.returncode == 1
        [dump] = frdir.glob("*.frec")
        assert str(dump) in result.stderr

    def test_size_option_is_used(self, frdir: Path, tmp_path: Path) -> None:
        """--size sets the ring size."""
        script = write(tmp_path / "size.py", "import flightrec\nprint(flightrec.get_recorder().config.size)\n")
        result = subprocess.run(
            [sys.executable, "-m", "flightrec", "run", "--size", "3MiB", "--dir", str(frdir), str(script)],
            env=child_env(frdir, FLIGHTREC_INTEGRATIONS="none"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert str(3 * 1024 * 1024) == result.stdout.strip()

    @pytest.mark.parametrize(
        ("size", "says"),
        [
            (
                "banana",
                "--size: cannot parse size 'banana' (a number of bytes, or with units B, KiB, MiB, GiB, TiB, PiB "
                "(powers of 1024) or KB, MB, GB, TB, PB (powers of 1000); e.g. 64MiB, 512KiB, 1048576)",
            ),
            ("9" * 400, f"--size: '{'9' * 27}...{'9' * 27}' (400 characters) is too large (at most 1PiB)"),
            ("0", "--size must be positive, got '0'"),
            (
                "100k",
                "--size: 100000 bytes is too small for 4 blocks of 65536 bytes (block_size) and the header: "
                "the ring needs at least 270336 bytes (264KiB)",
            ),
        ],
        ids=["banana", "400 nines", "0", "too small"],
    )
    def test_a_bad_size_option_is_named_as_the_user_wrote_it(
        self, frdir: Path, tmp_path: Path, size: str, says: str
    ) -> None:
        """A --size that is not a size is refused as the flag (exit 7), before the program runs."""
        script = write(tmp_path / "ran.py", "print('ran')\n")
        result = run_program(frdir, tmp_path, "--size", size, str(script))
        assert (result.returncode, result.stdout, result.stderr) == (7, "", f"flightrec: error: {says}\n")


class TestZeroCode:
    def test_langgraph_agent_is_recorded_without_a_code_change(self, frdir: Path, tmp_path: Path) -> None:
        """A LangGraph script that never imports flightrec crashes under `flightrec run`: the dump
        holds its graph steps, LLM calls and the failed tool call."""
        pytest.importorskip("langgraph")
        script = write(
            tmp_path / "lg_agent.py",
            """
            from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
            from langchain_core.messages import AIMessage, HumanMessage
            from langchain_core.tools import tool
            from langgraph.graph import START, MessagesState, StateGraph
            from langgraph.prebuilt import ToolNode

            @tool
            def charge_card(amount: int) -> str:
                \"\"\"Charge the customer's card.\"\"\"
                raise PermissionError("card declined")

            model = FakeMessagesListChatModel(responses=[
                AIMessage(content="", tool_calls=[{"name": "charge_card", "args": {"amount": 30}, "id": "c1"}])])
            graph = StateGraph(MessagesState)
            graph.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
            graph.add_node("tools", ToolNode([charge_card], handle_tool_errors=False))
            graph.add_edge(START, "agent")
            graph.add_edge("agent", "tools")
            graph.compile().invoke({"messages": [HumanMessage("pay the invoice")]})
            """,
        )
        result = subprocess.run(
            [sys.executable, "-m", "flightrec", "run", "--dir", str(frdir), str(script)],
            env=child_env(frdir),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1, result.stderr
        assert "PermissionError: card declined" in result.stderr
        [dump] = frdir.glob("*.frec")
        with flightrec.load(dump) as rec:
            kinds = [e.kind for e in rec.events()]
            [call] = rec.events(["tool_result"])
        assert "llm" in kinds and "checkpoint" in kinds
        assert (call.data["tool"], call.data["error_type"]) == ("charge_card", "PermissionError")
