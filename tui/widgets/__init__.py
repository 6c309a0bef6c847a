"""Widgets of the flightrec TUI."""
