"""Fixtures for the real-time tests: a tiny exported model, short signal files, a JACK dummy server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pedalboard
import pytest

from fxmatch import testsignals
from fxmatch.audio_io import write_audio

RATE = 48000


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained exported model (16 kHz, 0.5 s window, Distortion favoured)."""
    from tests.export.helpers import tiny_onnx

    return tiny_onnx(tmp_path_factory.mktemp("rt-model"))


@pytest.fixture(scope="session")
def signal_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """dry.wav (plucked chord, 3 s, 48 kHz) and target.wav (the same through Distortion 25 dB)."""
    folder = tmp_path_factory.mktemp("rt-audio")
    dry = testsignals.make("chord", RATE, 3.0, seed=1)
    target = pedalboard.Pedalboard([pedalboard.Distortion(drive_db=25.0)])(dry, RATE)
    paths = {"dry": folder / "dry.wav", "target": folder / "target.wav", "sine220": folder / "sine220.wav",
             "sine330": folder / "sine330.wav", "target44k": folder / "target44k.wav"}
    write_audio(paths["dry"], dry, RATE)
    write_audio(paths["target"], target, RATE)
    t = np.arange(RATE) / RATE  # exactly 1 s: whole periods, so the loops join without a jump
    write_audio(paths["sine220"], (0.4 * np.sin(2 * np.pi * 220 * t))[None].astype(np.float32), RATE)
    write_audio(paths["sine330"], (0.4 * np.sin(2 * np.pi * 330 * t))[None].astype(np.float32), RATE)
    t44 = np.arange(44100 * 2) / 44100
    write_audio(paths["target44k"], (0.3 * np.sin(2 * np.pi * 440 * t44))[None].astype(np.float32), 44100)
    return paths


@pytest.fixture(scope="module")
def jack_server():
    """A JACK dummy server (48 kHz, 256 frames, unique name) for the module's tests."""
    from realtime.jack import JackDummyServer, JackUnavailable

    server = JackDummyServer(rate=RATE, period=256)
    try:
        server.start()
    except JackUnavailable as exc:  # no jackd, or it cannot run here: the audio tests skip, saying why
        pytest.skip(f"no JACK dummy server can start here: {exc}")
    with server:
        yield server
