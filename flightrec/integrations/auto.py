"""Enable every integration whose library is installed, without importing any of them.

:func:`enable_all` (called by ``import flightrec.auto`` and ``flightrec run``) checks with
:func:`importlib.util.find_spec` which libraries are installed, and for each one arranges
for its integration to switch on *when the application imports the library*: a library
already imported is instrumented at once; otherwise a post-import hook on ``sys.meta_path``
instruments it right after its own import finishes. So flightrec never imports
langchain, opentelemetry or openai by itself, and an installed library the agent never
uses costs nothing.

==================  =========================  =============================================
integration         activates on import of     does
==================  =========================  =============================================
``otel``            ``opentelemetry.sdk.trace``  adds a SpanProcessor to every SDK provider
``langchain``       ``langchain_core``         installs a global callback handler
``openai_agents``   ``agents`` (openai-agents)  ``add_trace_processor``
``openai``          ``openai``                 wraps the client's ``create`` methods
==================  =========================  =============================================

Set ``FLIGHTREC_INTEGRATIONS`` to a comma-separated subset (or ``none``) to choose.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

__all__ = ["INTEGRATIONS", "enable_all", "enabled"]


def _enable_otel(module: ModuleType) -> bool:
    from . import otel

    otel.enable()
    return True


def _enable_langchain(module: ModuleType) -> bool:
    from . import langchain

    langchain.enable()
    return True


def _enable_openai_agents(module: ModuleType) -> bool:
    if not hasattr(module, "add_trace_processor"):
        return False  # the application's own package that happens to be called `agents`
    from . import openai_agents

    openai_agents.enable()
    return True


def _enable_openai(module: ModuleType) -> bool:
    from . import openai_client

    return bool(openai_client.enable())


Enable = Callable[[ModuleType], bool]

INTEGRATIONS: dict[str, tuple[str, str, Enable]] = {
    # name: (distribution's top-level package, module whose import triggers, enable)
    "otel": ("opentelemetry", "opentelemetry.sdk.trace", _enable_otel),
    "langchain": ("langchain_core", "langchain_core", _enable_langchain),
    "openai_agents": ("agents", "agents", _enable_openai_agents),
    "openai": ("openai", "openai", _enable_openai),
}

_lock = threading.RLock()
_watching: dict[str, list[tuple[str, Enable]]] = {}
_state: dict[str, str] = {}
"""Integration name -> ``"waiting"`` (hook installed), ``"enabled"`` or ``"failed: ..."``."""


def _installed(top: str) -> bool:
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _run(name: str, enable: Enable, module: ModuleType) -> None:
    try:
        _state[name] = "enabled" if enable(module) else "not installed"
    except Exception as exc:  # an integration must never break the agent's import
        _state[name] = f"failed: {type(exc).__name__}: {exc}"
        print(f"flightrec: {name} integration not enabled: {type(exc).__name__}: {exc}", file=sys.stderr)


class _Loader:
    """Wraps a module's loader to run the integration right after the module executed."""

    def __init__(self, loader: Any, fullname: str) -> None:
        self.loader = loader
        self.fullname = fullname

    def create_module(self, spec: Any) -> ModuleType | None:
        create = getattr(self.loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        # The module keeps its real loader: nothing downstream sees this wrapper.
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        with _lock:
            callbacks = _watching.pop(self.fullname, [])
        for name, enable in callbacks:
            _run(name, enable, module)
        _uninstall_if_idle()

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.loader, attr)


class _PostImportFinder:
    """A ``sys.meta_path`` entry that only intercepts the modules being watched."""

    def __init__(self) -> None:
        self._busy = threading.local()

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None) -> Any:
        if fullname not in _watching or getattr(self._busy, "on", False):
            return None
        self._busy.on = True
        try:
            spec = importlib.util.find_spec(fullname)
        except (ImportError, ValueError):
            return None
        finally:
            self._busy.on = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _Loader(spec.loader, fullname)  # type: ignore[assignment]
        return spec


_finder = _PostImportFinder()


def _uninstall_if_idle() -> None:
    with _lock:
        if not _watching and _finder in sys.meta_path:
            sys.meta_path.remove(_finder)


def _when_imported(fullname: str, name: str, enable: Enable) -> None:
    """Run ``enable(module)`` now if ``fullname`` is imported, else right after its import."""
    with _lock:
        module = sys.modules.get(fullname)
        if module is None:
            _watching.setdefault(fullname, []).append((name, enable))
            _state[name] = "waiting"
            if _finder not in sys.meta_path:
                sys.meta_path.insert(0, _finder)
            return
    _run(name, enable, module)


def _selected(names: Sequence[str] | None) -> list[str]:
    if names is not None:
        return [n for n in names if n in INTEGRATIONS]
    env = os.environ.get("FLIGHTREC_INTEGRATIONS")
    if env is None:
        return list(INTEGRATIONS)
    value = env.strip().lower()
    if value in ("", "none", "off", "0", "false", "no"):
        return []
    if value in ("all", "on", "1", "true", "yes"):
        return list(INTEGRATIONS)
    wanted = [p.strip() for p in value.split(",") if p.strip()]
    unknown = [n for n in wanted if n not in INTEGRATIONS]
    if unknown:
        print(
            f"flightrec: FLIGHTREC_INTEGRATIONS: unknown integration(s) {', '.join(unknown)}; "
            f"known: {', '.join(INTEGRATIONS)}",
            file=sys.stderr,
        )
    return [n for n in wanted if n in INTEGRATIONS]


def enable_all(names: Sequence[str] | None = None) -> dict[str, str]:
    """Enable the integrations whose library is installed (all, or those in ``names``).

    Never imports a library: each integration switches on when the application imports
    its library (or at once if it already has). Never raises.

    Args:
        names: integration names (see :data:`INTEGRATIONS`); default: all, or the ones in
            ``FLIGHTREC_INTEGRATIONS``.

    Returns:
        The state of each integration considered: ``"enabled"``, ``"waiting"`` (installed,
        not imported yet), ``"not installed"`` or ``"failed: <reason>"``.
    """
    out: dict[str, str] = {}
    for name in _selected(names):
        top, trigger, enable = INTEGRATIONS[name]
        try:
            if _state.get(name) in ("enabled", "waiting"):
                pass
            elif not _installed(top):
                _state[name] = "not installed"
            else:
                _when_imported(trigger, name, enable)
        except Exception as exc:
            _state[name] = f"failed: {type(exc).__name__}: {exc}"
        out[name] = _state.get(name, "not installed")
    return out


def enabled() -> dict[str, str]:
    """The state of every integration :func:`enable_all` has considered so far."""
    return dict(_state)
