"""Real-time engine: sounddevice streaming, ring buffers, analysis worker, streaming chain, A/B, safety limiter.

Uses `fxmatch` (torch-free parts) and an exported ONNX model; never `training`. The public API is
realtime.engine (EngineConfig, LiveEngine, LiveEstimate, Telemetry, Levels); realtime.remote.RemoteEngine is the
same API with the engine in its own process (what the desktop app uses); realtime.jack starts a JACK dummy server
for tests and machines without sound hardware.
"""
