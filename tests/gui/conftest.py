"""Fixtures for the app's tests: offscreen Qt, a temp settings file, a tiny model, signal files, a JACK server."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pytest

# The realtime tests' own fixtures: a tiny untrained exported model (16 kHz, 0.5 s window, Distortion favoured), the
# signal files (dry.wav: plucked chord, 3 s, 48 kHz; target.wav: the same through Distortion at 25 dB) and a JACK
# dummy server (48 kHz, 256 frames, unique name) per test module; where none can start (no jackd, or it will not run
# here) the app's audio tests skip, saying why, instead of erroring.
from tests.realtime.conftest import jack_server, signal_files, tiny_model  # noqa: F401

RATE = 48000


@pytest.fixture(scope="session")
def qapp_cls():
    """pytest-qt's QApplication, themed like the app."""
    from PyQt6 import QtWidgets

    return QtWidgets.QApplication


@pytest.fixture(scope="session", autouse=True)
def _themed(qapp):
    from gui.cli import make_app

    make_app()


@pytest.fixture
def settings(tmp_path: Path):
    """AppSettings in a temp INI file (never the user's)."""
    from gui.settings import AppSettings

    return AppSettings(tmp_path / "settings" / "fxmatch.ini")


@pytest.fixture
def no_leftover_windows(qapp):
    """Fails the test if a top-level widget it created is still visible after it ends."""
    from PyQt6 import QtWidgets

    before = {id(w) for w in QtWidgets.QApplication.topLevelWidgets()}
    yield
    QtWidgets.QApplication.processEvents()
    left = [w for w in QtWidgets.QApplication.topLevelWidgets() if id(w) not in before and w.isVisible()]
    assert not left, f"widgets left open: {[type(w).__name__ for w in left]}"
