"""The flightrec Textual TUI (installed as ``flightrec.tui``)."""
