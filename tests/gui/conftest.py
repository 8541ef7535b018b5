"""Fixtures for the app's tests: offscreen Qt, a temp settings file, a tiny model, signal files, a JACK server."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pedalboard
import pytest

from fxmatch import testsignals
from fxmatch.audio_io import write_audio

# A JACK dummy server (48 kHz, 256 frames, unique name) per test module, the realtime tests' own fixture: where none
# can start (no jackd, or it will not run here) the app's audio tests skip, saying why, instead of erroring.
from tests.realtime.conftest import jack_server  # noqa: F401

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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained exported model (16 kHz, 0.5 s window, vocabulary Distortion, Distortion favoured)."""
    from tests.export.helpers import tiny_onnx

    return tiny_onnx(tmp_path_factory.mktemp("gui-model"))


@pytest.fixture(scope="session")
def signal_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """dry.wav (plucked chord, 3 s, 48 kHz) and target.wav (the same through Distortion at 25 dB)."""
    folder = tmp_path_factory.mktemp("gui-audio")
    dry = testsignals.make("chord", RATE, 3.0, seed=1)
    target = pedalboard.Pedalboard([pedalboard.Distortion(drive_db=25.0)])(dry, RATE)
    paths = {"dry": folder / "dry.wav", "target": folder / "target.wav"}
    write_audio(paths["dry"], dry, RATE)
    write_audio(paths["target"], target, RATE)
    return paths


@pytest.fixture
def no_leftover_windows(qapp):
    """Fails the test if a top-level widget it created is still visible after it ends."""
    from PyQt6 import QtWidgets

    before = {id(w) for w in QtWidgets.QApplication.topLevelWidgets()}
    yield
    QtWidgets.QApplication.processEvents()
    left = [w for w in QtWidgets.QApplication.topLevelWidgets() if id(w) not in before and w.isVisible()]
    assert not left, f"widgets left open: {[type(w).__name__ for w in left]}"
