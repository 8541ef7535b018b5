"""Widgets of the desktop app; each takes plain data (estimates, levels, arrays), none talks to the engine."""
