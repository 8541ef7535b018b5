"""The engine the JACK-server tests build: reference mode on the dummy server, the tiny model, the signal files."""

from __future__ import annotations

from realtime.engine import EngineConfig, LiveEngine


def jack_engine(jack_server, tiny_model, signal_files, **kw) -> LiveEngine:
    """A LiveEngine on `jack_server`'s device in reference mode (target and dry files, CPU, 0.1 s hop); `kw` overrides
    EngineConfig fields."""
    cfg = {"model_path": tiny_model, "mode": "reference", "input_device": jack_server.device,
           "output_device": jack_server.device, "target_file": signal_files["target"],
           "dry_file": signal_files["dry"], "providers": "cpu", "hop_seconds": 0.1}
    cfg.update(kw)
    return LiveEngine(EngineConfig(**cfg))
