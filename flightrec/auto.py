"""``import flightrec.auto``: start recording from ``FLIGHTREC_*`` variables, with all triggers.

A configuration error is reported as one line on stderr and leaves the agent running
unrecorded: enabling a flight recorder must never be what breaks a process.
"""

from __future__ import annotations

import sys

from .api import start
from .errors import FlightrecError

try:
    recorder = start()
except FlightrecError as _exc:
    print(f"flightrec: not recording: {_exc}", file=sys.stderr)
    recorder = None
except OSError as _exc:
    print(f"flightrec: not recording: {_exc}", file=sys.stderr)
    recorder = None

if recorder is not None:
    # Integrations switch on when the agent imports their library; never fatal.
    try:
        from .integrations.auto import enable_all as _enable_integrations

        _enable_integrations()
    except Exception as _exc:
        print(f"flightrec: integrations not enabled: {_exc}", file=sys.stderr)
