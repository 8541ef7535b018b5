"""The real-time engine: live audio in, the matched chain out, estimates of the target's chain as it plays.

This module is the contract between `realtime/` and `gui/` (and `fxmatch live`):

    engine = LiveEngine(EngineConfig(model_path="models/fxmatch-default.onnx", mode="reference",
                                     target_file="song.wav"))
    engine.start()                  # opens a duplex sounddevice stream
    engine.latest_estimate()        # poll (e.g. from a QTimer); never pushed from the audio thread
    engine.set_ab("target")         # A/B with an equal-power crossfade
    engine.stop()                   # idempotent, never hangs

Modes: *capture* (two inputs: `dry_channel` is the instrument, `target_channel` the processed sound), *reference*
(live dry input, target looped from `target_file`), *analyse* (one input, `target_channel`; estimates only, no
re-synthesis, an input-only stream). Extras beyond the contract: `dry_file` (loop the dry signal from a file
instead of the input, for demos and benchmarks), `inject_fault()` (tests), `first_estimate_s` in telemetry.

Processes and threads (the default layout, `analysis="process"`): the process that owns the PortAudio stream does
only audio. Its threads are the PortAudio callback (copies into ring buffers, runs the chain, A/B, safety, limiter;
no locks, no logging, no allocation beyond what pedalboard's process returns, see realtime.streaming_chain), one
control thread (every 20 ms: takes a new estimate from the shared estimate slot and hands the chain to the
callback; every 100 ms: watchdog, spare chains, restarts a dead analysis process, asks for real-time priority for
the callback thread) and the caller's (the GUI's or `fxmatch live`'s), which only reads snapshots. Resampling and
inference run in the analysis process (realtime.analysis.AnalysisProcess), which reads the target ring from the
same shared-memory block and writes estimates into its estimate slot; a capture search runs in a process of its
own as well (realtime.sched.background for its priority). `analysis="thread"` runs an AnalysisWorker thread in
the audio process instead (the old layout; `fxmatch bench realtime` measures it as the worst case).

Scheduling while the stream runs (realtime.sched): the callback thread is put on SCHED_FIFO where the OS grants it
(`Telemetry.callback_priority` says what it got), Python's switch interval is short (`gil_switch_interval_s`,
0.25 ms: a thread that holds the GIL gives it up that soon when the callback asks), and garbage collection is
frozen and disabled (`gc_freeze`; the callback allocates nothing that could form a cycle, and the control thread
runs a young-generation collection every few seconds). `stop()` restores all of it. What the callback writes
and readers poll (rings, callback durations, counters, the estimate slot) lives in one `EngineBuffers` block on
shared memory (in this process's memory only with `analysis="thread"`); `EngineAPI` holds what both engines
(LiveEngine, realtime.remote.RemoteEngine) share.
"""

from __future__ import annotations

import gc
import logging
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any, Self

import numpy as np

from fxmatch.audio_io import rms_dbfs
from fxmatch.errors import FxmatchInputError
from fxmatch.inference import EstimatorSession, to_mono
from realtime.ab import POSITIONS, ABMixer
from realtime.analysis import (
    SLOT_FLOATS,
    AnalysisProcess,
    AnalysisWorker,
    EstimateStabiliser,
    StableEstimate,
    decode_estimate,
    read_estimate,
)
from realtime.ringbuffer import RingBuffer
from realtime.safety import Limiter, unsafe
from realtime.streaming_chain import ChainPlayer, StreamingChain, validate_chain

log = logging.getLogger("fxmatch.realtime")

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
#: a stream with no callback for this long (s) is declared lost
WATCHDOG_S = 2.0
#: the control thread's period (s): how soon a new estimate reaches the callback
CONTROL_S = 0.02
#: a callback that starts this many block periods after the previous one missed a cycle (a timing xrun)
LATE_BLOCKS = 1.5
_XRUN_FLAGS = 0x0F  # paInputUnderflow | paInputOverflow | paOutputUnderflow | paOutputOverflow
_DURATIONS = 65536  # callback durations kept for the statistics (about 6 min at 256 frames / 48 kHz)
_H_CALLBACKS, _H_FRAMES, _H_XRUNS, _H_TRIPS = 2, 3, 4, 5  # EngineBuffers header slots the callback stores
_H_LATE, _H_OVER, _H_TID = 20, 21, 22


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


@dataclass(frozen=True)
class LiveEstimate:
    """A published, stabilised estimate of the target's chain (params in pedalboard units)."""

    chain: tuple[str, ...]                          # effect names in order (() = no effect)
    params: tuple[tuple[str, dict[str, float]], ...]  # (effect, {param: value in pedalboard units}) in chain order
    probability: float                              # of the chain
    alternatives: tuple[tuple[tuple[str, ...], float], ...]  # top other chains with probability
    seq: int                                        # increases with each published estimate
    latency_ms: float                               # inference time of this estimate
    time_s: float                                   # stream time when published


@dataclass(frozen=True)
class Telemetry:
    """A snapshot of the engine's health (callback durations in ms over the last ~65k callbacks)."""

    running: bool
    xruns: int
    callback_mean_ms: float
    callback_p99_ms: float
    callback_max_ms: float
    cpu_load: float
    estimates_per_s: float
    estimate_latency_ms: float
    input_latency_s: float
    output_latency_s: float
    block_frames: int
    sample_rate: int
    provider: str
    model_name: str
    safety_trips: int
    error: str | None
    # extras
    callbacks: int = 0
    first_estimate_s: float | None = None  # from the target's onset to the first estimate (stream time)
    analysis_errors: int = 0
    callback_p50_ms: float = 0.0
    late_callbacks: int = 0                # callbacks that started > 1.5 block periods after the previous one
    over_budget: int = 0                   # callbacks that took longer than a block period
    analysis: str = ""                     # where the analysis runs ("process 1234", "thread")
    analysis_restarts: int = 0             # analysis processes restarted after they died
    callback_priority: str = ""            # what the OS granted the callback thread ("SCHED_FIFO 70", "normal: ...")
    first_estimate_after_start_s: float | None = None  # from the stream's start to the first estimate


@dataclass(frozen=True)
class Levels:
    """dBFS of the last ~100 ms (-inf for silence) and clip flags latched until read."""

    dry_db: float
    target_db: float
    output_db: float
    dry_clip: bool
    target_clip: bool
    output_clip: bool


RING_NAMES = ("dry", "target", "matched", "output")


class EngineBuffers:
    """What the callback writes and readers poll, on one flat buffer (this process's memory or shared memory).

    Layout (native byte order, every field aligned to 8 bytes):
    int64 header[32] | float64 durations[65536] | float64 estimate slot[1024] | float32 rings[4][capacity] (dry,
    target, matched, output). Header slots: 0 magic, 1 ring capacity, 2 callbacks, 3 frames, 4 xruns, 5 safety
    trips, 6-8 clip counts (dry, target, output: blocks with a peak >= 0.999), 9-16 the rings' counters (written,
    reserved) in ring order, 17 the estimate slot's sequence lock, 18 analysis hops, 19 analysis errors, 20 late
    callbacks, 21 callbacks over budget, 22 the callback thread's native id, 23 the analysis process's pid.
    `durations[i % 65536]` is the i-th callback's duration in seconds. The callback is the only writer of its
    fields and the analysis process (realtime.analysis) of the slot and 17-19, 23; each stores a counter (one
    aligned 8-byte store) after the data it counts, so a reader that reads a counter first sees finished data (see
    realtime.ringbuffer for the guarantee across processes). `writer=False` attaches to a block another process
    writes (checks the magic and capacity, touches nothing).
    """

    MAGIC = 0x66786D6174636802
    HEADER = 32
    owner: object = None  # what keeps `buffer` mapped (a shared memory block)
    CALLBACKS, FRAMES, XRUNS, TRIPS, CLIPS, RINGS = 2, 3, 4, 5, 6, 9
    EST_SEQ, A_HOPS, A_ERRORS, LATE, OVER, CB_TID, A_PID = 17, 18, 19, _H_LATE, _H_OVER, _H_TID, 23

    @classmethod
    def nbytes(cls, capacity: int) -> int:
        """Bytes needed for rings of `capacity` samples."""
        return cls.HEADER * 8 + _DURATIONS * 8 + SLOT_FLOATS * 8 + len(RING_NAMES) * int(capacity) * 4

    def __init__(self, capacity: int, buffer=None, writer: bool = True) -> None:
        capacity = int(capacity)
        size = self.nbytes(capacity)
        raw = np.empty(size, dtype=np.uint8) if buffer is None else np.frombuffer(buffer, dtype=np.uint8, count=size)
        h = self.HEADER * 8
        self.header = raw[:h].view(np.int64)
        self.durations = raw[h : h + _DURATIONS * 8].view(np.float64)
        self.estimate_slot = raw[h + _DURATIONS * 8 : h + (_DURATIONS + SLOT_FLOATS) * 8].view(np.float64)
        if writer:
            self.header.fill(0)
            self.durations.fill(0.0)
            self.estimate_slot.fill(0.0)
            self.header[1] = capacity
        elif self.header[0] != self.MAGIC or self.header[1] != capacity:
            raise ValueError(f"not an engine buffer of capacity {capacity} (magic {int(self.header[0]):#x}, "
                             f"capacity {int(self.header[1])})")
        off = h + (_DURATIONS + SLOT_FLOATS) * 8
        self.rings: dict[str, RingBuffer] = {}
        for i, name in enumerate(RING_NAMES):
            data = raw[off + i * capacity * 4 : off + (i + 1) * capacity * 4].view(np.float32)
            counter = self.header[self.RINGS + 2 * i : self.RINGS + 2 * i + 2]
            self.rings[name] = RingBuffer(capacity, data=data, counter=counter, prefault=writer)
        self.clips = self.header[self.CLIPS : self.CLIPS + 3]
        if writer:
            self.header[0] = self.MAGIC  # last: a reader that sees the magic sees a zeroed block

    def callback_stats(self) -> tuple[int, float, float, float, float]:
        """(callbacks, mean, p50, p99, max duration in ms) over the last 65536 callbacks."""
        n = int(self.header[self.CALLBACKS])
        if not n:
            return 0, 0.0, 0.0, 0.0, 0.0
        d = self.durations[: min(n, _DURATIONS)] * 1e3
        p50, p99 = np.percentile(d, (50, 99))
        return n, float(d.mean()), float(p50), float(p99), float(d.max())


def _load_loop(path: str | Path, rate: int, what: str) -> np.ndarray:
    """A file as mono float32 at `rate` (soxr), for looping in the callback."""
    from fxmatch.audio_io import read_audio

    p = Path(path)
    if not p.exists():
        raise FxmatchInputError(f"{what} {p}: no such file")
    audio, file_rate = read_audio(p)
    mono = to_mono(audio)
    if file_rate != rate:
        import soxr

        mono = soxr.resample(mono, file_rate, rate, quality="HQ").astype(np.float32)
    if mono.size < 16:
        raise FxmatchInputError(f"{what} {p}: too short to loop ({mono.size} samples)")
    return np.ascontiguousarray(mono, dtype=np.float32)


class _Loop:
    """A looping player over a preallocated array (callback side: slice copies only)."""

    def __init__(self, audio: np.ndarray):
        self.audio = audio
        self.pos = 0

    def read(self, out: np.ndarray) -> None:
        n, size, pos = out.shape[0], self.audio.shape[0], self.pos
        done = 0
        while done < n:
            k = min(n - done, size - pos)
            out[done : done + k] = self.audio[pos : pos + k]
            done += k
            pos = (pos + k) % size
        self.pos = pos


def _db(x: np.ndarray) -> float:
    """RMS level of `x` in dBFS for the meters (fxmatch.audio_io.rms_dbfs); -inf for silence or non-finite audio."""
    level = rms_dbfs(x)
    return level if math.isfinite(level) else float("-inf")


def device_error(which: str, device: int | str | None, reason: str, ui: str = "cli") -> str:
    """The one-line error for an unusable `which` ("input"/"output") device, telling `ui`'s user what to do."""
    if ui == "app":
        todo = f"choose one in the set-up panel's {which.capitalize()} list (↻ lists the devices again)"
    else:
        todo = (f"pick one with --{which}-device (list them with `fxmatch live --list-devices`; --jack-dummy "
                f"streams through a JACK dummy server)")
    if device is None:
        return f"no default {which} device ({reason}); {todo}"
    return f"{which} device {device}: {reason}; {todo}"


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


def telemetry_from(buffers: EngineBuffers | None, status: Mapping[str, Any]) -> Telemetry:
    """Telemetry from the callback's counters in `buffers` and the other fields in `status` (status_fields())."""
    if buffers is None:
        n, mean, p50, p99, mx, xruns, trips, late, over = 0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, 0
    else:
        n, mean, p50, p99, mx = buffers.callback_stats()
        h = buffers.header
        xruns, trips = int(h[EngineBuffers.XRUNS]), int(h[EngineBuffers.TRIPS])
        late, over = int(h[EngineBuffers.LATE]), int(h[EngineBuffers.OVER])
    return Telemetry(xruns=xruns, callback_mean_ms=mean, callback_p99_ms=p99, callback_max_ms=mx,
                     safety_trips=trips, callbacks=n, callback_p50_ms=p50, late_callbacks=late, over_budget=over,
                     **status)


class EngineReadings:
    """The reads the GUI polls, over EngineBuffers (`_buffers`, None before start), `_sample_rate` and `config`.

    Shared by LiveEngine (buffers in its own memory) and realtime.remote.RemoteEngine (buffers in shared memory
    written by an engine process): the same code gives the same answers.
    """

    config: EngineConfig
    _buffers: EngineBuffers | None = None
    _sample_rate: int = 0
    _clip_seen: np.ndarray | None = None
    _ab_position: str = "matched"
    _frozen: bool = False

    @property
    def sample_rate(self) -> int:
        """The device rate in use (Hz; 0 before start)."""
        return self._sample_rate

    @property
    def ab_position(self) -> str:
        """"target", "matched" or "dry": what the output plays (or fades to)."""
        return self._ab_position

    @property
    def frozen(self) -> bool:
        """Whether estimates are kept from changing the playing chain."""
        return self._frozen

    def recent_audio(self, which: str, n_samples: int) -> np.ndarray:
        """The last `n_samples` (mono float32, device rate) of "dry" | "target" | "matched" | "output"."""
        if which not in RING_NAMES:
            raise FxmatchInputError(f"recent_audio: unknown signal {which!r} (dry, target, matched or output)")
        buffers = self._buffers
        n = max(0, int(n_samples))
        if buffers is None:
            return np.zeros(n, dtype=np.float32)
        ring = buffers.rings[which]
        if n > ring.capacity:
            out = np.zeros(n, dtype=np.float32)
            out[n - ring.capacity :] = ring.read_last(ring.capacity)
            return out
        return ring.read_last(n)

    def levels(self) -> Levels:
        """dBFS of the last ~100 ms of dry, target and output, and the clip flags latched since the last call."""
        n = max(1, int(0.1 * self._sample_rate)) if self._sample_rate else 0
        buffers = self._buffers
        flags = (False, False, False)
        if buffers is not None:
            counts = buffers.clips.copy()
            seen = self._clip_seen if self._clip_seen is not None else np.zeros(3, dtype=np.int64)
            flags = tuple(bool(c > s) for c, s in zip(counts, seen, strict=True))
            self._clip_seen = counts
        return Levels(dry_db=_db(self.recent_audio("dry", n)), target_db=_db(self.recent_audio("target", n)),
                      output_db=_db(self.recent_audio("output", n)),
                      dry_clip=flags[0], target_clip=flags[1], output_clip=flags[2])

    def ab_distance_db(self) -> float | None:
        """Log-spectral distance (dB) between target and matched over the last ~2 s; None when either is silent."""
        if not self._sample_rate or self.config.mode == "analyse":
            return None
        n = int(2.0 * self._sample_rate)
        t, m = self.recent_audio("target", n), self.recent_audio("matched", n)
        if _db(t) < -60 or _db(m) < -60:
            return None
        nfft = 2048
        win = np.hanning(nfft).astype(np.float32)

        def spectrum(x: np.ndarray) -> np.ndarray:
            frames = np.lib.stride_tricks.sliding_window_view(x, nfft)[:: nfft // 2]
            return np.mean(np.abs(np.fft.rfft(frames * win, axis=-1)) ** 2, axis=0) + 1e-12

        st, sm = spectrum(t), spectrum(m)
        f = np.fft.rfftfreq(nfft, 1.0 / self._sample_rate)
        band = (f >= 50) & (f <= min(16000, self._sample_rate / 2))
        lt, lm = 10 * np.log10(st[band]), 10 * np.log10(sm[band])
        diff = lt - lm
        diff -= 10 * np.log10(np.sum(st[band]) / np.sum(sm[band]))  # loudness-matched, as the A/B plays them
        return float(np.sqrt(np.mean(diff**2)))


class EngineAPI(EngineReadings):
    """The engine API (see the module docstring), defined once for LiveEngine and realtime.remote.RemoteEngine.

    This class holds what both do the same way: the context manager, listeners, checking A/B positions and chains,
    and the freeze / hand-set chain state a restart replays. Subclasses implement start, stop, running,
    telemetry, latest_estimate, current_chain and the `_apply_*` hooks (called after the checks, with the state
    already updated). Public methods: any non-audio thread.
    """

    def _init_api(self, config: EngineConfig) -> None:
        """The shared state (call from __init__ after validate_config)."""
        self.config = config
        self._listeners: list[Callable[[], None]] = []
        self._frozen = False
        self._ab_position = "matched" if config.mode != "analyse" else "target"
        self._manual: tuple | None = None  # a chain set by hand (played again by the next start)

    # -- implemented by each engine --------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the stream runs."""
        raise NotImplementedError

    def start(self) -> None:
        """Open and start the stream and the analysis (FxmatchInputError on device problems)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the stream and the analysis; idempotent, never hangs."""
        raise NotImplementedError

    def close(self) -> None:
        """stop() and end what a restart would reuse (LiveEngine: its analysis process); the engine is done."""
        self.stop()

    def telemetry(self) -> Telemetry:
        """A snapshot of xruns, callback durations, load, estimate rate and latency, stream latencies, errors."""
        raise NotImplementedError

    def latest_estimate(self) -> LiveEstimate | None:
        """The newest smoothed, hysteresis-stabilised estimate (None before the first)."""
        raise NotImplementedError

    def current_chain(self) -> tuple[tuple[str, dict[str, float]], ...]:
        """What is playing now: (effect, {param: value}) with the values the parameters glide to."""
        raise NotImplementedError

    def _apply_ab(self, position: str) -> None:
        raise NotImplementedError

    def _apply_frozen(self, frozen: bool) -> None:
        raise NotImplementedError

    def _apply_chain(self, spec: tuple) -> None:
        raise NotImplementedError

    def _apply_reset(self) -> None:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_ab(self, position: str) -> None:
        """Play "target" (A), "matched" (B) or "dry", with an equal-power crossfade of `crossfade_ms`."""
        if position not in POSITIONS:
            raise FxmatchInputError(f"A/B position must be one of {', '.join(POSITIONS)}, got {position!r}")
        self._ab_position = position
        self._apply_ab(position)

    def set_frozen(self, frozen: bool) -> None:
        """Freeze: estimates keep coming but stop changing the playing chain."""
        self._frozen = bool(frozen)
        self._apply_frozen(self._frozen)

    def set_chain(self, chain: Sequence[tuple[str, Mapping[str, float]]]) -> None:
        """Play this chain now (manual edit, an alternative, a preset); implies frozen. FxmatchInputError if bad."""
        spec = validate_chain(chain)
        self._frozen = True
        self._manual = spec
        self._apply_chain(spec)

    def reset_to_estimate(self) -> None:
        """Unfreeze and go back to following the estimate (plays the latest one now)."""
        self._frozen = False
        self._manual = None
        self._apply_reset()

    def add_listener(self, fn: Callable[[], None]) -> None:
        """Call `fn()` (never from the audio thread) after each estimate and on stop/error."""
        self._listeners.append(fn)

    def _notify(self) -> None:
        for fn in list(self._listeners):
            try:
                fn()
            except Exception:  # a listener's bug must not stop the engine
                log.exception("engine listener failed")


class SharedBlock(shared_memory.SharedMemory):
    """SharedMemory whose finaliser keeps quiet when numpy views still use the mapping (it is unmapped later)."""

    def __del__(self) -> None:
        try:
            self.close()
        except BufferError:  # numpy views are alive; the mmap is released with the last of them
            pass


def _new_shared_block(nbytes: int) -> SharedBlock:
    """An anonymous shared-memory block of `nbytes` (created, then unlinked at once: nothing can leak in
    /dev/shm; the analysis process gets its file descriptor)."""
    try:
        block = SharedBlock(create=True, size=int(nbytes))
    except OSError as exc:
        raise FxmatchInputError(f"could not allocate {nbytes / 2**20:.0f} MiB of shared memory for the engine's "
                                f"buffers ({exc.strerror or exc}; is /dev/shm full?)") from None
    block.unlink()
    return block


class LiveEngine(EngineAPI):
    """The live engine (see the module docstring). All public methods are called from non-audio threads."""

    def __init__(self, config: EngineConfig) -> None:
        """Validate the config and load the model (FxmatchInputError on a bad config or model); with
        analysis="process" the analysis process starts now (it loads the model meanwhile)."""
        validate_config(config)
        self._init_api(config)
        c = config
        self.session = EstimatorSession(c.model_path, providers=c.providers, threads=c.analysis_threads,
                                        batch_size=1)
        self.info = self.session.info
        self._scales = {(e.name, p.name): p.scale for e in self.info.effects for p in e.params}
        self._lock = threading.RLock()  # control side (public methods, control thread); never taken by the callback
        self._stream = None
        self._worker: AnalysisWorker | None = None
        self._analysis: AnalysisProcess | None = None
        self._control: threading.Thread | None = None
        self._control_stop = threading.Event()
        self._running = False
        self._error: str | None = None
        self._sample_rate = 0
        self._estimate: LiveEstimate | None = None
        self._seq = 0
        self._slot_seq = 0
        self._saved_switch: float | None = None
        self._gc_was_enabled: bool | None = None
        self._latency = (0.0, 0.0)
        self._stopping = False
        self._next_buffers: EngineBuffers | None = None
        self._priority = ""
        self._est_times: deque[float] = deque(maxlen=256)
        self._est_latencies: deque[float] = deque(maxlen=64)
        self._start_frame = 0
        # what _allocate sets for each start (and prepare_offline); the callback reads only these
        self._n_out = 0
        self._buffers: EngineBuffers | None = None
        self._clip_seen: np.ndarray | None = None
        self._rings: dict[str, RingBuffer] = {}
        self._stats = np.zeros(EngineBuffers.HEADER, dtype=np.int64)
        self._dry_buf = self._target_buf = self._matched_buf = self._out_buf = self._scratch = None
        self._fade_in: np.ndarray | None = None
        self._durations = np.zeros(1, dtype=np.float64)
        self._n_callbacks = 0
        self._frames_done = 0
        self._xruns = 0
        self._late = 0
        self._over = 0
        self._trips = 0
        self._inject = 0
        self._muted = False
        self._last_callback = time.monotonic()
        self._last_t0 = 0.0
        self._tid_known = False
        self._late_s = math.inf
        self._budget_s = math.inf
        self._clip = np.zeros(3, dtype=np.int64)
        self._onset_frame: int | None = None
        self._first_estimate_frame: int | None = None
        self._callback_error: str | None = None
        self._target_loop: _Loop | None = None
        self._dry_loop: _Loop | None = None
        self._player = ChainPlayer(48000, c.block_frames, c.crossfade_ms, MAX_FRAMES)
        self._mixer: ABMixer | None = None
        self._limiter: Limiter | None = None
        self._stabiliser = EstimateStabiliser(self.info, c.hysteresis_hops, c.smoothing)
        if c.analysis == "process":
            self._analysis = AnalysisProcess(c.model_path, c.providers, c.analysis_threads, c.hysteresis_hops,
                                             c.smoothing, c.analysis_nice)

    def __del__(self) -> None:
        analysis = getattr(self, "_analysis", None)
        if analysis is not None:
            analysis.close()

    # -- properties ------------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the stream runs (False after stop() or after a stream error)."""
        return self._running

    @property
    def analysis_pid(self) -> int | None:
        """The analysis process's id (None with analysis="thread" or when none runs)."""
        return self._analysis.pid if self._analysis is not None else None

    # -- start / stop ----------------------------------------------------------------------------------------------

    def _channels_needed(self) -> tuple[int, int]:
        c = self.config
        if c.mode == "analyse":
            return c.target_channel + 1, 0
        need = []
        if c.dry_file is None:
            need.append(c.dry_channel + 1)
        if c.mode == "capture":
            need.append(c.target_channel + 1)
        return (max(need) if need else 0), 1
    def _resolve(self) -> tuple[int | None, int | None, int, int, int]:
        """(input device, output device, input channels, output channels, rate) or FxmatchInputError."""
        import sounddevice as sd

        c = self.config
        n_in, want_out = self._channels_needed()
        in_dev = out_dev = None
        n_out = 0
        rate = c.sample_rate
        try:
            if n_in:
                info = sd.query_devices(c.input_device, "input")
                in_dev = int(info["index"])
                if info["max_input_channels"] < n_in:
                    raise FxmatchInputError(
                        f"input device {info['name']!r} has {info['max_input_channels']} input channel(s); "
                        f"{c.mode} mode needs channel {n_in} (channels count from 1)")
                rate = rate or int(info["default_samplerate"])
            if want_out:
                info = sd.query_devices(c.output_device, "output")
                out_dev = int(info["index"])
                n_out = max(1, min(int(c.output_channels), int(info["max_output_channels"])))
                rate = rate or int(info["default_samplerate"])
        except FxmatchInputError:
            raise
        except (ValueError, sd.PortAudioError) as exc:
            which = "input" if in_dev is None and n_in else "output"
            dev = c.input_device if which == "input" else c.output_device
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FxmatchInputError(device_error(which, dev, msg, c.ui)) from None
        try:
            if n_in:
                sd.check_input_settings(in_dev, channels=n_in, dtype="float32", samplerate=rate)
            if n_out:
                sd.check_output_settings(out_dev, channels=n_out, dtype="float32", samplerate=rate)
        except (ValueError, sd.PortAudioError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FxmatchInputError(f"the device does not accept {rate} Hz with {n_in} in / {n_out} out channels "
                                    f"({msg})") from None
        return in_dev, out_dev, n_in, n_out, int(rate)

    def ring_capacity(self, rate: int) -> int:
        """Samples each ring holds at `rate` Hz (15 s, and at least 3 model windows and a block)."""
        window_dev = math.ceil(self.info.window_samples * rate / self.info.sample_rate)
        return max(int(15 * rate), 3 * window_dev + MAX_FRAMES)

    def _allocate(self, rate: int, n_out: int, buffers: EngineBuffers | None = None) -> None:
        c = self.config
        self._sample_rate = rate
        self._n_out = n_out
        cap = self.ring_capacity(rate)
        buffers, self._next_buffers = buffers or self._next_buffers, None
        if buffers is not None and buffers.rings["dry"].capacity != cap:
            raise ValueError(f"engine buffers hold {buffers.rings['dry'].capacity} samples per ring, need {cap}")
        if buffers is None:
            if c.analysis == "process":  # the analysis process maps the same block
                block = _new_shared_block(EngineBuffers.nbytes(cap))
                buffers = EngineBuffers(cap, block.buf)
                buffers.owner = block
            else:
                buffers = EngineBuffers(cap)
        self._buffers = buffers
        self._clip_seen = np.zeros(3, dtype=np.int64)
        self._rings = buffers.rings
        self._stats = buffers.header
        self._dry_buf = np.zeros((1, MAX_FRAMES), dtype=np.float32)
        self._target_buf = np.zeros(MAX_FRAMES, dtype=np.float32)
        self._matched_buf = np.zeros(MAX_FRAMES, dtype=np.float32)
        self._out_buf = np.zeros(MAX_FRAMES, dtype=np.float32)
        self._scratch = np.zeros(MAX_FRAMES, dtype=np.float32)
        self._fade_in = np.linspace(0.0, 1.0, MAX_FRAMES, dtype=np.float32)
        self._durations = buffers.durations
        self._n_callbacks = self._frames_done = 0
        self._xruns = self._late = self._over = self._trips = self._inject = 0
        self._muted = False
        self._last_callback = time.monotonic()
        self._last_t0 = 0.0
        self._tid_known = False
        self._late_s = LATE_BLOCKS * c.block_frames / rate
        self._budget_s = c.block_frames / rate
        self._clip = buffers.clips  # blocks with a peak >= 0.999 (dry, target, output), counted
        self._onset_frame = None
        self._first_estimate_frame = None
        self._callback_error = None
        self._slot_seq = 0
        self._est_times.clear()
        self._est_latencies.clear()
        self._target_loop = _Loop(_load_loop(c.target_file, rate, "target file")) if c.mode == "reference" else None
        self._dry_loop = _Loop(_load_loop(c.dry_file, rate, "dry file")) if c.dry_file is not None else None
        self._player = ChainPlayer(rate, c.block_frames, c.crossfade_ms, MAX_FRAMES)
        self._mixer = ABMixer(rate, c.crossfade_ms, loudness_match=c.loudness_match, max_frames=MAX_FRAMES,
                              position=self._ab_position)
        self._limiter = Limiter(rate, max_frames=MAX_FRAMES)
        self._stabiliser = EstimateStabiliser(self.info, c.hysteresis_hops, c.smoothing)

    def use_buffers(self, buffers: EngineBuffers) -> None:
        """Put the next start()'s (or prepare_offline()'s) rings, counters and durations on `buffers` (e.g. shared
        memory that realtime.remote's parent reads; `buffers.owner` a SharedMemory whose file descriptor the
        analysis process maps); their capacity must be ring_capacity(rate)."""
        self._next_buffers = buffers

    def resolve_devices(self) -> tuple[int, int]:
        """(sample rate in Hz, output channels) that start() would open; FxmatchInputError on device problems."""
        _, _, _, n_out, rate = self._resolve()
        return rate, n_out

    def _tune_for_streaming(self) -> None:
        """Short GIL switch interval and garbage collection frozen (restored by _untune)."""
        c = self.config
        if c.gil_switch_interval_s and self._saved_switch is None:
            self._saved_switch = sys.getswitchinterval()
            sys.setswitchinterval(float(c.gil_switch_interval_s))
        if c.gc_freeze and self._gc_was_enabled is None:
            self._gc_was_enabled = gc.isenabled()
            gc.collect()
            gc.freeze()  # what exists now is never scanned again
            gc.disable()

    def _untune(self) -> None:
        if self._saved_switch is not None:
            sys.setswitchinterval(self._saved_switch)
            self._saved_switch = None
        if self._gc_was_enabled is not None:
            gc.unfreeze()
            if self._gc_was_enabled:
                gc.enable()
            self._gc_was_enabled = None

    def start(self) -> None:
        """Open and start the stream and the analysis (FxmatchInputError on device problems)."""
        import sounddevice as sd

        with self._lock:
            if self._running:
                return
            c = self.config
            in_dev, out_dev, n_in, n_out, rate = self._resolve()
            self._allocate(rate, n_out)
            self._error = None
            self._stopping = False
            self._priority = "" if c.realtime_priority else "normal (not asked)"
            if c.mode != "analyse":
                self._publish_chain(self._manual or (), force=True)
            kwargs = {"samplerate": rate, "blocksize": c.block_frames, "dtype": "float32", "latency": c.latency,
                      "finished_callback": self._finished}
            try:
                if n_in and n_out:
                    stream = sd.Stream(device=(in_dev, out_dev), channels=(n_in, n_out),
                                       callback=self._cb_duplex, **kwargs)
                elif n_out:
                    stream = sd.OutputStream(device=out_dev, channels=n_out, callback=self._cb_output, **kwargs)
                else:
                    stream = sd.InputStream(device=in_dev, channels=n_in, callback=self._cb_input, **kwargs)
            except (ValueError, sd.PortAudioError) as exc:
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise FxmatchInputError(f"could not open the audio stream at {rate} Hz, {c.block_frames} frames "
                                        f"({msg})") from None
            self._stream = stream
            lat = stream.latency
            self._latency = (float(lat[0]), float(lat[1])) if isinstance(lat, tuple) else (
                (float(lat), 0.0) if n_in and not n_out else (0.0, float(lat)))
            if self._analysis is None:
                self._worker = AnalysisWorker(
                    self.session, rate, lambda n: self._rings["target"].read_last(n),
                    lambda: self._rings["target"].written, self._on_estimate, self._stabiliser, c.hop_seconds)
            self._tune_for_streaming()
            self._running = True
            try:
                stream.start()
            except sd.PortAudioError as exc:
                self._running = False
                self._close_stream()
                self._untune()
                raise FxmatchInputError(f"could not start the audio stream ({exc})") from None
            self._last_callback = time.monotonic()
            if self._analysis is not None:
                self._analysis.attach(self._buffers.owner._fd, EngineBuffers.nbytes(self._buffers.rings["dry"].capacity),
                                      self._buffers.rings["dry"].capacity, rate, c.hop_seconds)
            else:
                self._worker.start()
            self._control_stop.clear()
            self._control = threading.Thread(target=self._control_loop, name="fxmatch-control", daemon=True)
            self._control.start()
            log.info("live engine running: %s mode, %d Hz, %d frames, model %s on %s, analysis in a %s", c.mode,
                     rate, c.block_frames, self.info.label, self.session.provider, c.analysis)

    def _close_stream(self, timeout: float = 3.0) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return

        def close() -> None:
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            except Exception:  # closing a broken stream: nothing more to do
                log.debug("closing the stream failed", exc_info=True)

        t = threading.Thread(target=close, name="fxmatch-stream-close", daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            log.warning("the audio stream did not close within %.0f s; abandoning it", timeout)

    def _stop_helpers(self) -> None:
        """Stop the control thread and the worker, detach the analysis process (bounded waits)."""
        self._control_stop.set()
        control, self._control = self._control, None
        if control is not None and control is not threading.current_thread():
            control.join(2.0)
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop(timeout=5.0)
        if self._analysis is not None:
            self._analysis.detach()

    def stop(self) -> None:
        """Stop the stream, the control thread and the analysis; idempotent, never hangs (bounded waits). The
        analysis process stays (model loaded) for the next start; `close()` ends it."""
        with self._lock:
            self._stopping = True
            was_running = self._running
            self._running = False
        self._stop_helpers()
        self._close_stream()
        self._untune()
        if was_running:
            self._notify()

    def close(self) -> None:
        """stop() and end the analysis process."""
        self.stop()
        if self._analysis is not None:
            self._analysis.close()

    def _fail(self, message: str) -> None:
        """A stream error: record it, stop everything (from the control thread)."""
        if self._error is None:
            self._error = message
        log.error("live engine stopped: %s", message)
        self._running = False
        self._stop_helpers()
        self._close_stream()
        self._untune()
        self._notify()

    def _finished(self) -> None:
        # PortAudio's thread, after the stream ended: never blocks; the control thread's watchdog does the rest
        if not self._stopping and self._error is None:
            self._error = self._callback_error or "the audio stream stopped (device lost or server gone)"
        if not self._stopping:
            self._running = False

    # -- the control thread ----------------------------------------------------------------------------------------

    def _control_loop(self) -> None:
        """Every CONTROL_S: a new estimate from the slot; every 5th: housekeeping; with analysis="thread" (the GUI's
        process, whose Qt objects form cycles) every 5 s a young-generation garbage collection (automatic
        collection is off while streaming; the audio process proper allocates almost nothing that forms cycles)."""
        if self.config.realtime_priority:
            from realtime.sched import HELPER_PRIORITY, realtime_thread

            realtime_thread(0, HELPER_PRIORITY)
        collect = self._analysis is None
        n = 0
        while not self._control_stop.wait(CONTROL_S):
            try:
                if self._analysis is not None:
                    self._take_estimate()
                n += 1
                if n % 5 == 0:
                    self._housekeeping()
                if collect and n % 250 == 0 and self._gc_was_enabled is not None:
                    gc.collect(1)
            except Exception:  # the control thread must keep going
                log.exception("engine control step failed")

    def _take_estimate(self) -> None:
        """Publish the analysis process's newest estimate (read from the slot under its sequence lock)."""
        buffers = self._buffers
        seq, data = read_estimate(buffers.header[EngineBuffers.EST_SEQ : EngineBuffers.EST_SEQ + 1],
                                  buffers.estimate_slot, self._slot_seq)
        if data is None:
            return
        self._slot_seq = seq
        est, latency = decode_estimate(self.info, data)
        self._on_estimate(est, latency)

    def _housekeeping(self) -> None:
        """Control thread, every 100 ms: watchdog, callback priority, analysis process, spare chains, release."""
        if self._stopping:
            return
        if self._error is not None and self._stream is not None:
            self._fail(self._error)
            return
        stream = self._stream
        if stream is not None and self._running:
            silent_for = time.monotonic() - self._last_callback
            if silent_for > max(WATCHDOG_S, 8 * self.config.block_frames / max(1, self._sample_rate)):
                self._fail(f"no audio callbacks for {silent_for:.1f} s (device lost or server stopped)")
                return
        if not self._priority:
            tid = int(self._stats[_H_TID])
            if tid:
                from realtime.sched import realtime_thread

                self._priority = realtime_thread(tid)
                log.info("callback thread %d: %s", tid, self._priority)
        if self._analysis is not None and self._running:
            self._analysis.supervise()
        if self.config.mode != "analyse":
            player = self._player
            if player.trips_pending and player.spare is None and player.current is not None:
                player.trips_pending = 0
                player.replace_spare(self._build(player.current.target_spec()))
            player.collect()

    # -- the audio callback ----------------------------------------------------------------------------------------

    def _cb_duplex(self, indata: np.ndarray, outdata: np.ndarray, frames: int, time_info, status) -> None:
        self._process(indata, outdata, frames, status)

    def _cb_output(self, outdata: np.ndarray, frames: int, time_info, status) -> None:
        self._process(None, outdata, frames, status)

    def _cb_input(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        self._process(indata, None, frames, status)

    def _process(self, indata: np.ndarray | None, outdata: np.ndarray | None, frames: int, status) -> None:
        t0 = time.perf_counter()
        st = self._stats
        try:
            if status and status._flags & _XRUN_FLAGS:  # under/overflows; not "priming output"
                self._xruns += 1
                st[_H_XRUNS] = self._xruns
            if t0 - self._last_t0 > self._late_s and self._n_callbacks:  # a missed cycle (timing xrun)
                self._late += 1
                st[_H_LATE] = self._late
            elif not self._tid_known and status is not None:
                self._tid_known = True  # once: the control thread asks for real-time priority for this thread
                st[_H_TID] = threading.get_native_id()
            self._last_t0 = t0
            if frames > MAX_FRAMES:
                if outdata is not None:
                    outdata.fill(0.0)
                return
            self._block(indata, outdata, frames)
        except Exception as exc:  # noqa: BLE001 - a bug must not leave the stream running silently
            import sounddevice as sd

            self._callback_error = f"audio callback failed: {type(exc).__name__}: {exc}"
            self._error = self._callback_error
            raise sd.CallbackAbort from None
        finally:
            d = time.perf_counter() - t0
            if d > self._budget_s:
                self._over += 1
                st[_H_OVER] = self._over
            n = self._n_callbacks
            self._durations[n % _DURATIONS] = d
            self._n_callbacks = n + 1
            self._frames_done += frames
            # published for readers (maybe in another process) after what they count
            st[_H_TRIPS] = self._trips
            st[_H_FRAMES] = self._frames_done
            st[_H_CALLBACKS] = n + 1
            self._last_callback = time.monotonic()
    def _block(self, indata: np.ndarray | None, outdata: np.ndarray | None, frames: int) -> None:
        c = self.config
        rings = self._rings
        target = self._target_buf[:frames]
        # sources
        if self._target_loop is not None:
            self._target_loop.read(target)
        elif indata is not None:
            target[:] = indata[:, c.target_channel]
        peak_t = max(float(target.max()), -float(target.min()))
        if peak_t >= 0.999:
            self._clip[1] += 1
        if self._onset_frame is None and peak_t > 1e-3:
            self._onset_frame = self._frames_done
        rings["target"].write(target)
        if outdata is None:  # analyse: no re-synthesis
            return
        dry2 = self._dry_buf[:, :frames]
        dry = dry2[0]
        if self._dry_loop is not None:
            self._dry_loop.read(dry)
        else:
            dry[:] = indata[:, c.dry_channel]
        if max(float(dry.max()), -float(dry.min())) >= 0.999:
            self._clip[0] += 1
        if self._inject:
            dry[frames // 2] = np.nan if self._inject == 1 else 1e6
            self._inject = 0
        rings["dry"].write(dry)
        # the chain
        matched = self._matched_buf[:frames]
        self._player.process(dry2, matched)
        tripped = unsafe(matched)
        if tripped:
            self._trips += 1
            self._player.trip()
            matched[:] = 0.0
        rings["matched"].write(matched)
        if not math.isfinite(float(np.dot(dry, dry))):
            np.nan_to_num(dry, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        # A/B, safety, limiter
        out = self._out_buf[:frames]
        self._mixer.mix(target, matched, dry, out)
        if tripped or unsafe(out):
            if not tripped:
                self._trips += 1
            out[:] = 0.0
            self._muted = True
        elif self._muted:  # fade back in over one block after a trip
            out *= self._fade_in[-frames:] if frames == MAX_FRAMES else self._ramp_in(frames)
            self._muted = False
        peak = self._limiter.process(out)
        if peak > 1.0:
            self._clip[2] += 1
        rings["output"].write(out)
        outdata[:] = out[:, None]

    def _ramp_in(self, frames: int) -> np.ndarray:
        r = self._scratch[:frames]
        np.multiply(self._fade_in[:frames], (MAX_FRAMES - 1) / max(1, frames - 1), out=r)
        np.minimum(r, 1.0, out=r)
        return r

    # -- estimates and chains (control side) ------------------------------------------------------------------------

    def _build(self, spec: Sequence[tuple[str, Mapping[str, float]]]) -> StreamingChain:
        return StreamingChain(spec, self._sample_rate, self.config.block_frames, self._scales, self.config.glide_ms)

    def _publish_chain(self, spec: Sequence[tuple[str, Mapping[str, float]]], force: bool = False) -> None:
        """Play `spec` (a validated chain or an estimate's): glide when the playing chain has the same effects, else
        fade to a freshly built one."""
        with self._lock:
            if not self._sample_rate:
                return
            playing = self._player.playing
            if playing is not None and not force and playing.same_effects([n for n, _ in spec]):
                playing.set_targets([p for _, p in spec])
                return
            self._player.publish(self._build(spec), self._build(spec))

    def _on_estimate(self, est: StableEstimate, latency_s: float) -> None:
        """Control thread (or the analysis thread): publish the estimate and, unless frozen, play it."""
        with self._lock:
            self._seq += 1
            if self._first_estimate_frame is None:
                self._first_estimate_frame = self._frames_done
            self._estimate = LiveEstimate(chain=est.chain, params=est.params, probability=est.probability,
                                          alternatives=est.alternatives, seq=self._seq,
                                          latency_ms=latency_s * 1e3,
                                          time_s=self._frames_done / max(1, self._sample_rate))
            self._est_times.append(time.monotonic())
            self._est_latencies.append(latency_s * 1e3)
            if not self._frozen and self.config.mode != "analyse":
                self._publish_chain(est.params)
        self._notify()

    def latest_estimate(self) -> LiveEstimate | None:
        """The newest smoothed, hysteresis-stabilised estimate (None before the first)."""
        return self._estimate

    def _apply_ab(self, position: str) -> None:
        if self._mixer is not None:
            self._mixer.set_position(position)

    def _apply_frozen(self, frozen: bool) -> None:
        pass  # the next estimate reads self._frozen

    def _apply_chain(self, spec: tuple) -> None:
        with self._lock:
            if self._sample_rate and self.config.mode != "analyse":
                self._publish_chain(spec)

    def _apply_reset(self) -> None:
        with self._lock:
            est = self._estimate
            if est is not None and self._sample_rate and self.config.mode != "analyse":
                self._publish_chain(est.params)

    def current_chain(self) -> tuple[tuple[str, dict[str, float]], ...]:
        """What is playing now: (effect, {param: value}) with the values the parameters glide to."""
        playing = self._player.playing
        if playing is not None:
            return playing.target_spec()
        return tuple((n, dict(p)) for n, p in (self._manual or ()))

    # -- readings (any non-audio thread; recent_audio, levels, ab_distance_db from EngineReadings) -------------------

    def estimate_rate(self, span_s: float = 5.0) -> float:
        """Estimates published per second over the last `span_s` seconds."""
        now = time.monotonic()
        recent = [t for t in self._est_times if now - t <= span_s]
        if len(recent) < 2:
            return 0.0 if not recent else 1.0 / span_s
        return (len(recent) - 1) / (recent[-1] - recent[0]) if recent[-1] > recent[0] else 0.0

    def status_fields(self) -> dict[str, Any]:
        """Telemetry's fields that do not come from EngineBuffers (cheap: no statistics over the durations)."""
        stream = self._stream
        cpu = 0.0
        if stream is not None:
            try:
                cpu = float(stream.cpu_load)
            except Exception:  # noqa: BLE001 - a closing stream
                cpu = 0.0
        lat = list(self._est_latencies)
        first = after_start = None
        onset, first_frame, rate = self._onset_frame, self._first_estimate_frame, self._sample_rate
        if first_frame is not None and rate:
            after_start = first_frame / rate
            if onset is not None:
                first = max(0.0, (first_frame - onset) / rate)
        if self._analysis is not None:
            errors = int(self._buffers.header[EngineBuffers.A_ERRORS]) if self._buffers is not None else 0
            pid = self._analysis.pid
            where = f"process {pid}" if pid else "process (not running)"
            restarts = self._analysis.restarts
        else:
            errors = self._worker.errors if self._worker is not None else 0
            where, restarts = "thread", 0
        return {"running": self._running, "cpu_load": cpu, "estimates_per_s": self.estimate_rate(),
                "estimate_latency_ms": float(np.mean(lat[-8:])) if lat else 0.0,
                "input_latency_s": self._latency[0], "output_latency_s": self._latency[1],
                "block_frames": self.config.block_frames, "sample_rate": self._sample_rate,
                "provider": self.session.provider, "model_name": self.info.label, "error": self._error,
                "first_estimate_s": first, "analysis_errors": errors, "analysis": where,
                "analysis_restarts": restarts, "callback_priority": self._priority,
                "first_estimate_after_start_s": after_start}

    def telemetry(self) -> Telemetry:
        """A snapshot of xruns, callback durations, load, estimate rate and latency, stream latencies, errors."""
        return telemetry_from(self._buffers, self.status_fields())

    # -- extras for tests --------------------------------------------------------------------------------------------

    def prepare_offline(self, sample_rate: int, output_channels: int = 1) -> None:
        """Allocate everything start() would, without a stream or worker (deterministic block tests)."""
        with self._lock:
            self._allocate(int(sample_rate), int(output_channels) if self.config.mode != "analyse" else 0)
            if self.config.mode != "analyse":
                self._publish_chain(self._manual or (), force=True)
            self._stabiliser = EstimateStabiliser(self.info, self.config.hysteresis_hops, self.config.smoothing)

    def process_block(self, indata: np.ndarray | None) -> np.ndarray | None:
        """Run the callback's processing on one input block `[frames, channels]` (None: no input) -> output block
        `[frames, output channels]` (None in analyse mode); after prepare_offline()."""
        frames = indata.shape[0] if indata is not None else self.config.block_frames
        out = np.zeros((frames, self._n_out), dtype=np.float32) if self._n_out else None
        self._process(None if indata is None else np.ascontiguousarray(indata, dtype=np.float32), out, frames, None)
        if self._callback_error:
            raise RuntimeError(self._callback_error)
        return out

    def inject_fault(self, kind: str = "nan") -> None:
        """Tests: put a NaN ("nan") or a huge sample ("runaway") into the next dry block."""
        self._inject = 1 if kind == "nan" else 2
