"""`import flightrec.auto` enables the integrations of installed libraries, importing none of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import run_child

HEAVY = ("langchain", "langchain_core", "langgraph", "opentelemetry", "openai", "agents")

PROBE = f"""
import json, sys
heavy = {HEAVY!r}
def loaded():
    return sorted({{m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy}})
"""


def _last_json(stdout: str) -> object:
    return json.loads(stdout.strip().splitlines()[-1])


class TestAuto:
    def test_importing_flightrec_and_auto_imports_no_integration_library(self, frdir: Path) -> None:
        """Neither `import flightrec` nor `import flightrec.auto` imports langchain, OTel or openai."""
        result = run_child(
            PROBE
            + """
import flightrec
a = loaded()
import flightrec.auto
from flightrec.integrations.auto import enabled
print(json.dumps([a, loaded(), enabled()]))
""",
            frdir,
        )
        assert result.returncode == 0, result.stderr
        before, after, states = _last_json(result.stdout)  # type: ignore[misc]
        assert before == []
        assert after == []
        assert {"otel", "langchain", "openai_agents"} <= set(states)

    @pytest.mark.parametrize(
        ("imports", "check", "name"),
        [
            (
                "import langchain_core.callbacks",
                "from langchain_core.tracers.context import _configure_hooks\n"
                "from flightrec.integrations.langchain import FlightrecCallbackHandler as H\n"
                "ok = any(h[2] is H for h in _configure_hooks)",
                "langchain",
            ),
            (
                "from opentelemetry.sdk.trace import TracerProvider",
                "from flightrec.integrations.otel import FlightrecSpanProcessor as P\n"
                "ok = any(isinstance(p, P) for p in TracerProvider()._active_span_processor._span_processors)",
                "otel",
            ),
            (
                "import agents",
                "from flightrec.integrations.openai_agents import FlightrecTracingProcessor as P\n"
                "ok = any(isinstance(p, P) for p in agents.tracing.get_trace_provider()._multi_processor._processors)",
                "openai_agents",
            ),
        ],
        ids=["langchain", "otel", "openai_agents"],
    )
    def test_integration_switches_on_when_the_app_imports_the_library(
        self, frdir: Path, imports: str, check: str, name: str
    ) -> None:
        """After `import flightrec.auto`, importing the library enables its integration."""
        top = {"langchain": "langchain_core", "otel": "opentelemetry.sdk", "openai_agents": "agents"}[name]
        pytest.importorskip(top)
        result = run_child(
            f"""
import json
import flightrec.auto
{imports}
{check}
from flightrec.integrations.auto import enabled
print(json.dumps([ok, enabled()[{name!r}]]))
""",
            frdir,
            OPENAI_AGENTS_DISABLE_TRACING="0",
        )
        assert result.returncode == 0, result.stderr
        assert _last_json(result.stdout) == [True, "enabled"]

    def test_environment_selects_integrations(self, frdir: Path) -> None:
        """FLIGHTREC_INTEGRATIONS=none enables nothing."""
        result = run_child(
            """
import json
import flightrec.auto
from flightrec.integrations.auto import enabled
print(json.dumps(enabled()))
""",
            frdir,
            FLIGHTREC_INTEGRATIONS="none",
        )
        assert result.returncode == 0, result.stderr
        assert _last_json(result.stdout) == {}

    def test_disabled_recorder_enables_nothing(self, frdir: Path) -> None:
        """FLIGHTREC_DISABLE=1: no recorder, so no hook is installed either."""
        result = run_child(
            """
import json
import flightrec.auto
from flightrec.integrations.auto import enabled
print(json.dumps(enabled()))
""",
            frdir,
            FLIGHTREC_DISABLE="1",
        )
        assert _last_json(result.stdout) == {}
