"""Real-time engine: sounddevice streaming, ring buffers, analysis process, streaming chain, A/B, safety limiter.

Uses `fxmatch` (torch-free parts) and an exported ONNX model; never `training`. The public API is
realtime.engine (EngineConfig, EngineAPI, LiveEngine, LiveEstimate, Telemetry, Levels; a facade over the engine's
parts: realtime.stream, .callback, .analysis_link, .switching, .telemetry, .buffers, .config);
realtime.remote.RemoteEngine is the same API with the engine in its own process (what the desktop app uses);
realtime.analysis runs the model in a process of its own; realtime.sched asks the OS for real-time priority for the
callback and background priority for heavy work (a capture search); realtime.jack starts a JACK dummy server for
tests and machines without sound hardware.
"""

import fxmatch  # noqa: F401 - sets the OpenMP wait policy before torch or numba loads (fxmatch.threads)
