"""`fxmatch bench realtime`: the live engine on a JACK dummy server, 48 kHz, under load; prints JSON.

Issue 5's "Measure": `seconds` (default 60) at 256 frames per block with the full 7-effect chain playing
(frozen, so the chain stays the full one), analysis every 250 ms (4 Hz), and a busy GUI-like thread (every 16 ms
it polls telemetry, levels and 4096 samples of output and holds the GIL for ~6 ms of pure-Python work); then the
same at 64 frames per block (a second JACK server with a 64-frame period). The benchmark starts and stops its own
uniquely named JACK dummy servers.

Keys: xruns (PortAudio under/overflow flags), callback_mean_ms / callback_p99_ms / callback_max_ms (inside the
callback), estimates_per_s, first_estimate_s (target onset to first published estimate, stream time),
added_latency_blocks (lag between the dry input and the output measured by cross-correlation in A/B "dry",
in blocks: what the engine adds beyond the device's own buffers), block_frames, sample_rate, and the same under
at_64_frames; plus budget_ms, cpu_load, estimate latency, stream latencies, safety trips, the model and provider.
Model: models/fxmatch-default.onnx when it exists, else a freshly exported *untrained* encoder of the default
vocabulary (same size and cost as the shipped one; its estimates mean nothing), said under `model`.
"""

from __future__ import annotations

import logging
import math
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.models import benchmark_model

log = logging.getLogger("fxmatch.bench.realtime")

RATE = 48000
FULL_CHAIN = (
    ("Compressor", {"threshold_db": -20.0, "ratio": 4.0, "attack_ms": 5.0, "release_ms": 100.0}),
    ("Distortion", {"drive_db": 20.0}),
    ("PeakFilter", {"cutoff_frequency_hz": 1000.0, "gain_db": 6.0, "q": 1.0}),
    ("Chorus", {"rate_hz": 1.0, "depth": 0.5, "centre_delay_ms": 7.0, "feedback": 0.2, "mix": 0.5}),
    ("Phaser", {"rate_hz": 0.5, "depth": 0.5, "centre_frequency_hz": 1000.0, "feedback": 0.3, "mix": 0.5}),
    ("Delay", {"delay_seconds": 0.25, "feedback": 0.3, "mix": 0.3}),
    ("Reverb", {"room_size": 0.5, "damping": 0.5, "wet_level": 0.3, "dry_level": 0.8}),
)
TARGET_CHAIN = (("Compressor", {"threshold_db": -24.0, "ratio": 6.0, "attack_ms": 3.0, "release_ms": 80.0}),
                ("Chorus", {"rate_hz": 0.8, "depth": 0.4, "centre_delay_ms": 8.0, "feedback": 0.1, "mix": 0.5}),
                ("Reverb", {"room_size": 0.6, "damping": 0.4, "wet_level": 0.3, "dry_level": 0.8}))


def _signals(folder: Path) -> tuple[Path, Path]:
    """dry.wav (8 s of plucked chords, 1 s of silence first) and target.wav (it through TARGET_CHAIN)."""
    import pedalboard

    from fxmatch import testsignals
    from fxmatch.audio_io import write_audio

    dry = np.concatenate([testsignals.make("chord", RATE, 4.0, seed=s)[0] for s in (1, 2)]) * 0.6
    dry = np.concatenate([np.zeros(RATE, dtype=np.float32), dry.astype(np.float32)])
    target = pedalboard.Pedalboard([getattr(pedalboard, n)(**p) for n, p in TARGET_CHAIN])(dry[None], RATE)
    paths = folder / "dry.wav", folder / "target.wav"
    write_audio(paths[0], dry[None], RATE)
    write_audio(paths[1], target, RATE)
    return paths


class _BusyGui(threading.Thread):
    """A GUI-like thread: every 16 ms, poll the engine, an FFT for a spectrum, and ~6 ms of pure Python."""

    def __init__(self, engine):
        super().__init__(name="busy-gui", daemon=True)
        self.engine = engine
        self.stop_event = threading.Event()
        self.frames = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            t0 = time.perf_counter()
            self.engine.telemetry()
            self.engine.levels()
            self.engine.latest_estimate()
            x = self.engine.recent_audio("output", 4096)
            np.abs(np.fft.rfft(x * np.hanning(x.size)))
            acc = 0
            while time.perf_counter() - t0 < 0.006:  # holds the GIL like a busy Qt paint
                for i in range(200):
                    acc += i * i
            self.frames += 1
            self.stop_event.wait(max(0.0, 0.016 - (time.perf_counter() - t0)))


def _lag_blocks(engine, block: int, max_blocks: int = 4) -> float:
    """Lag (blocks) of the output behind the dry input while A/B plays "dry": the lag within +-max_blocks with
    the highest normalised correlation over the last 2 s (NaN when the dry signal was silent)."""
    n = 2 * RATE
    dry, out = engine.recent_audio("dry", n).astype(np.float64), engine.recent_audio("output", n).astype(np.float64)
    m = max_blocks * block
    best, best_lag = -2.0, 0
    for lag in range(-m, m + 1):
        a = dry[m : n - m]
        b = out[m + lag : n - m + lag]
        den = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
        if den == 0.0:
            continue
        c = float(np.dot(a, b)) / den
        if c > best:
            best, best_lag = c, lag
    return float("nan") if best == -2.0 else best_lag / block


def _one(model: Path, dry: Path, target: Path, block: int, seconds: float) -> dict[str, Any]:
    from realtime.engine import EngineConfig, LiveEngine
    from realtime.jack import JackDummyServer

    with JackDummyServer(rate=RATE, period=block) as server:
        engine = LiveEngine(EngineConfig(model_path=model, mode="reference", input_device=server.device,
                                         output_device=server.device, block_frames=block, target_file=target,
                                         dry_file=dry, hop_seconds=0.25))
        engine.set_chain(FULL_CHAIN)
        gui = _BusyGui(engine)
        engine.start()
        try:
            gui.start()
            time.sleep(seconds)
            tel = engine.telemetry()
            engine.set_ab("dry")
            time.sleep(0.6)
            lag = _lag_blocks(engine, block)
        finally:
            gui.stop_event.set()
            gui.join(2.0)
            engine.stop()
    return {
        "xruns": tel.xruns,
        "callback_mean_ms": round(tel.callback_mean_ms, 4),
        "callback_p99_ms": round(tel.callback_p99_ms, 4),
        "callback_max_ms": round(tel.callback_max_ms, 4),
        "estimates_per_s": round(tel.estimates_per_s, 3),
        "first_estimate_s": None if tel.first_estimate_s is None else round(tel.first_estimate_s, 3),
        "added_latency_blocks": None if math.isnan(lag) else round(lag, 3),
        "block_frames": block,
        "sample_rate": tel.sample_rate,
        "budget_ms": round(1e3 * block / RATE, 3),
        "callbacks": tel.callbacks,
        "cpu_load": round(tel.cpu_load, 4),
        "estimate_latency_ms": round(tel.estimate_latency_ms, 3),
        "input_latency_s": tel.input_latency_s,
        "output_latency_s": tel.output_latency_s,
        "safety_trips": tel.safety_trips,
        "analysis_errors": tel.analysis_errors,
        "gui_frames_per_s": round(gui.frames / seconds, 1),
        "seconds": seconds,
        "error": tel.error,
    }


def run(quick: bool = False, seconds: float | None = None, model: str | None = None) -> dict[str, Any]:
    """Both runs (256 then 64 frames per block); `seconds` each (default 60, 10 with quick); `model` an ONNX file
    (default: the shipped one, else an untrained stand-in)."""
    from fxmatch.errors import FxmatchInputError
    from fxmatch.inference import EstimatorSession

    seconds = float(seconds if seconds is not None else (10.0 if quick else 60.0))
    if not (math.isfinite(seconds) and seconds > 0):
        raise FxmatchInputError(f"bench realtime: --seconds must be > 0, got {seconds}")
    with tempfile.TemporaryDirectory(prefix="fxmatch-bench-rt-") as tmp:
        folder = Path(tmp)
        if model is not None:
            model_path, model_note = Path(model), f"given ({Path(model).name})"
        else:
            model_path, model_note = benchmark_model(folder)
        session = EstimatorSession(model_path, providers="auto", threads=1)
        dry, target = _signals(folder)
        result = _one(model_path, dry, target, 256, seconds)
        result["at_64_frames"] = _one(model_path, dry, target, 64, seconds)
    result.update({
        "model": model_note,
        "model_window_s": round(session.info.window_seconds, 3),
        "provider": session.provider,
        "chain": [name for name, _ in FULL_CHAIN],
        "analysis_hz": 4.0,
        "busy_gui_thread": "every 16 ms: telemetry + levels + 4096-sample FFT + ~6 ms pure Python holding the GIL",
        "device": "JACK dummy driver via PortAudio's JACK host API (no sound hardware)",
    })
    return result
