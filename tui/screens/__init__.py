"""The app's screens, one per module, imported on first use."""

from __future__ import annotations

import importlib
from typing import Any

_MODULES: dict[str, tuple[str, str]] = {
    "overview": ("overview", "OverviewScreen"),
    "timeline": ("timeline", "TimelineScreen"),
    "steps": ("steps", "StepsScreen"),
    "tools": ("tools", "ToolsScreen"),
    "memory": ("memory", "MemoryScreen"),
    "checkpoints": ("checkpoints", "CheckpointsScreen"),
    "resources": ("resources", "ResourcesScreen"),
}


def load(name: str) -> Any:
    """The screen class for a main screen's name."""
    module, cls = _MODULES[name]
    return getattr(importlib.import_module(f".{module}", __name__), cls)
