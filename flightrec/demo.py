"""The bundled demo agent: a scripted support agent that fails the way real ones do.

Run it with ``python -m flightrec.demo`` (``flightrec demo`` and ``make demo`` do, recorded).
It is deterministic: no network, a scripted fake LLM, fixed data.
"""

from __future__ import annotations

import sys

import flightrec


class ToolFailure(RuntimeError):
    """The inventory service kept failing."""


def main() -> int:
    """Run the scripted agent until it fails (which triggers the dump)."""
    flightrec.start()
    flightrec.record("task", pin=True, prompt="Customer alice@example.com asks: where is order ORD-2024-000123?")
    for turn in range(1, 40):
        flightrec.record(
            "llm",
            model="fake-llm-1",
            prompt_tokens=400 + 50 * turn,
            completion_tokens=40,
            response=f"turn {turn}: calling lookup_order",
        )
        flightrec.record("tool_call", tool="lookup_order", args={"order": "ORD-2024-000123", "turn": turn})
        if turn > 30:
            flightrec.record("tool_result", tool="lookup_order", error="503 Service Unavailable", origin="transient")
        else:
            flightrec.record("tool_result", tool="lookup_order", result={"status": "in transit", "eta_days": 2})
    print("demo agent: the inventory tool keeps failing; giving up", file=sys.stderr)
    raise ToolFailure("lookup_order failed 9 times in a row (503 Service Unavailable)")


if __name__ == "__main__":
    sys.exit(main())
