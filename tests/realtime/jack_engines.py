"""The engine the JACK-server tests build: reference mode on the dummy server, the tiny model, the signal files."""

from __future__ import annotations

import time

from realtime.engine import EngineConfig, LiveEngine

#: the dummy server's rate (Hz) and a chain the tests play
RATE = 48000
CHAIN = (("Compressor", {"threshold_db": -25.0, "ratio": 4.0, "attack_ms": 5.0, "release_ms": 100.0}),
         ("Delay", {"delay_seconds": 0.1, "feedback": 0.3, "mix": 0.3}))


def wait_for(cond, timeout: float = 5.0) -> bool:
    """Poll `cond()` every 20 ms until it holds or `timeout` s pass; its last value."""
    t = time.monotonic()
    while not cond() and time.monotonic() - t < timeout:
        time.sleep(0.02)
    return cond()


def wait_audio(engine, seconds: float, timeout: float = 10.0, block: int = 256) -> bool:
    """Wait until `engine` has streamed `seconds` more audio (its callbacks of `block` frames at RATE), at most
    `timeout` s of wall time: paced by the stream, not by a sleep that a loaded machine may outrun."""
    start = engine.telemetry().callbacks
    need = seconds * RATE / block
    return wait_for(lambda: engine.telemetry().callbacks - start >= need, timeout)


def jack_engine(jack_server, tiny_model, signal_files, engine_class: type[LiveEngine] = LiveEngine,
               **kw) -> LiveEngine:
    """A LiveEngine on `jack_server`'s device in reference mode (target and dry files, CPU, 0.1 s hop); `kw` overrides
    EngineConfig fields; `engine_class` a LiveEngine subclass (tests.realtime.engine_hooks)."""
    cfg = {"model_path": tiny_model, "mode": "reference", "input_device": jack_server.device,
           "output_device": jack_server.device, "target_file": signal_files["target"],
           "dry_file": signal_files["dry"], "providers": "cpu", "hop_seconds": 0.1}
    cfg.update(kw)
    return engine_class(EngineConfig(**cfg))
