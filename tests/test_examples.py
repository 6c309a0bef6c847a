"""The scripts in examples/ run as their docstrings and examples/README.md say they do."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .conftest import REPO, child_env

EXAMPLES = REPO / "examples"


def run_example(script: str, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<script>`` from the repository root, as the README shows, in a fresh interpreter."""
    env = child_env(tmp, TMPDIR=str(tmp))  # (the research agent records into a new temp dir: keep it in tmp)
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


class TestExamples:
    def test_the_research_agent_dumps_and_inspect_dump_reads_it(self, tmp_path: Path) -> None:
        """The research agent dumps, shows its retried search; inspect_dump prints every section of that dump."""
        agent = run_example("async_research_agent.py", tmp=tmp_path)
        assert agent.returncode == 0, agent.stderr
        [dump] = re.findall(r"^dump: (\S+\.frec)$", agent.stdout, re.M)
        assert Path(dump).is_relative_to(tmp_path)
        assert "attempt=2 retry_of=" in agent.stdout, agent.stdout  # the linked retry of the timed-out search
        assert "origin=transient" in agent.stdout
        inspect = run_example("inspect_dump.py", dump, tmp=tmp_path)
        assert inspect.returncode == 0, inspect.stderr
        for section in ("steps:", "tools:", "context:", "checkpoints: 3 (3 rebuildable)", "findings:"):
            assert section in inspect.stdout, inspect.stdout

    def test_inspect_dump_on_a_bad_file_says_why_in_one_line(self, tmp_path: Path) -> None:
        """A missing file or one that is not a recording is one error line and the CLI's exit code, no traceback."""
        not_a_dump = tmp_path / "notes.txt"
        not_a_dump.write_text("just some notes\n")
        for path, code in ((tmp_path / "missing.frec", 5), (not_a_dump, 2)):
            result = run_example("inspect_dump.py", str(path), tmp=tmp_path)
            assert result.returncode == code, result.stderr
            assert "Traceback" not in result.stderr
            assert result.stderr.strip().splitlines() == [result.stderr.strip()]
            assert result.stderr.startswith("inspect_dump: error: ")
