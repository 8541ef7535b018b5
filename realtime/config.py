"""The live engine's settings: EngineConfig, its limits and its checks (one line for each bad field)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from fxmatch.errors import FxmatchInputError

MODES = ("capture", "reference", "analyse")
#: where the analysis runs: its own process (default) or a thread of the audio process
ANALYSIS_LAYOUTS = ("process", "thread")
#: who reads the engine's device errors: `fxmatch live` (they name its options) or the app (its controls)
UIS = ("cli", "app")
#: the callback's buffers hold this many frames; larger device blocks are refused at start
MAX_FRAMES = 8192
#: the smallest block (frames) a config may ask for
MIN_FRAMES = 16
#: sample rates (Hz) a config may ask for
MIN_RATE, MAX_RATE = 8000, 384000


@dataclass
class EngineConfig:
    """Every knob of the live engine (sounddevice device ids or names; None = the default device)."""

    model_path: str | Path                 # exported fxmatch ONNX model
    mode: str = "reference"                # "capture" | "reference" | "analyse"
    input_device: int | str | None = None  # sounddevice device id/name; None = default
    output_device: int | str | None = None
    sample_rate: int | None = None         # None = the device's default rate
    block_frames: int = 256
    dry_channel: int = 0                   # input channel of the dry signal (capture, reference)
    target_channel: int = 1                # input channel of the target (capture, analyse)
    target_file: str | Path | None = None  # reference mode: target played (looped) from this file
    hop_seconds: float = 0.25              # analysis hop
    providers: str = "auto"                # onnxruntime: auto (CUDA when it works, else CPU) | cpu
    crossfade_ms: float = 30.0
    # extras
    dry_file: str | Path | None = None     # loop the dry signal from this file instead of the input
    analysis_threads: int = 1              # onnxruntime CPU threads (leave cores to the audio thread)
    hysteresis_hops: int = 3               # hops a new chain must lead before it replaces the playing one
    smoothing: float = 0.6                 # per-hop weight of the past in the estimate's smoothing
    glide_ms: float = 60.0                 # time constant of parameter glides in the callback
    loudness_match: bool = True            # A/B sources matched to the target's loudness
    output_channels: int = 2               # at most; the mono output is copied to each
    gil_switch_interval_s: float | None = 0.00025  # sys.setswitchinterval while running (None: leave it)
    analysis: str = "process"              # "process": resampling + inference in a process of its own; "thread"
    gc_freeze: bool = True                 # garbage collection frozen and disabled while streaming
    realtime_priority: bool = True         # SCHED_FIFO for the callback thread where the OS grants it
    analysis_nice: int | None = None       # the analysis process's nice value (None: realtime.sched's default)
    latency: str | float = "low"           # sounddevice latency hint
    ui: str = "cli"                        # who reads the device errors: "cli" (names options) or "app" (controls)



def validate_config(config: EngineConfig) -> None:
    """FxmatchInputError (one line) when an EngineConfig field is out of range or a file is missing."""
    c = config
    if c.mode not in MODES:
        raise FxmatchInputError(f"mode must be one of {', '.join(MODES)}, got {c.mode!r}")
    if not isinstance(c.block_frames, int) or not MIN_FRAMES <= c.block_frames <= MAX_FRAMES:
        raise FxmatchInputError(f"block_frames must be an integer in [{MIN_FRAMES}, {MAX_FRAMES}], "
                                f"got {c.block_frames!r}")
    if c.sample_rate is not None and (not isinstance(c.sample_rate, int)
                                      or not MIN_RATE <= c.sample_rate <= MAX_RATE):
        raise FxmatchInputError(f"sample_rate must be an integer in [{MIN_RATE}, {MAX_RATE}] Hz, "
                                f"got {c.sample_rate!r}")
    for name in ("dry_channel", "target_channel"):
        v = getattr(c, name)
        if not isinstance(v, int) or v < 0:
            raise FxmatchInputError(f"{name} must be an integer >= 0, got {v!r}")
    if c.mode == "capture" and c.dry_file is None and c.dry_channel == c.target_channel:
        raise FxmatchInputError(f"capture mode needs two different input channels (dry and target are both "
                                f"channel {c.dry_channel + 1}, counting from 1)")
    if c.mode == "reference" and c.target_file is None:
        raise FxmatchInputError("reference mode needs a target file (the target is looped from it)")
    if not (math.isfinite(c.hop_seconds) and 0.02 <= c.hop_seconds <= 10):
        raise FxmatchInputError(f"hop_seconds must be in [0.02, 10] s, got {c.hop_seconds!r}")
    if not (math.isfinite(c.crossfade_ms) and 0 < c.crossfade_ms <= 2000):
        raise FxmatchInputError(f"crossfade_ms must be in (0, 2000] ms, got {c.crossfade_ms!r}")
    if c.analysis not in ANALYSIS_LAYOUTS:
        raise FxmatchInputError(f"analysis must be one of {', '.join(ANALYSIS_LAYOUTS)}, got {c.analysis!r}")
    if c.ui not in UIS:
        raise FxmatchInputError(f"ui must be one of {', '.join(UIS)}, got {c.ui!r}")
    if c.providers not in ("auto", "cpu", "cuda"):
        raise FxmatchInputError(f"providers must be auto, cpu or cuda, got {c.providers!r}")
    for what, path in (("target file", c.target_file), ("dry file", c.dry_file)):
        if path is not None and not Path(path).is_file():
            raise FxmatchInputError(f"{what} {path}: no such file")
