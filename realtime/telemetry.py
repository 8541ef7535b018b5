"""Telemetry: the engine's health (xruns, callback durations, load, estimate rate), levels and the recent audio.

What the callback counts lives in realtime.buffers.EngineBuffers; `telemetry_from` adds the fields the control
side knows (`EstimateLog`, the stream's load and latencies, the analysis's state). `EngineReadings` is what the GUI
polls, the same code over LiveEngine's buffers and over realtime.remote's shared block.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fxmatch.audio_io import rms_dbfs
from fxmatch.errors import FxmatchInputError
from realtime.buffers import RING_NAMES, EngineBuffers
from realtime.config import EngineConfig


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


def _db(x: np.ndarray) -> float:
    """RMS level of `x` in dBFS for the meters (fxmatch.audio_io.rms_dbfs); -inf for silence or non-finite audio."""
    level = rms_dbfs(x)
    return level if math.isfinite(level) else float("-inf")


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


class EstimateLog:
    """When estimates were published and how long their inference took (control side: estimate rate, latency,
    time to the first estimate)."""

    def __init__(self) -> None:
        self.times: deque[float] = deque(maxlen=256)
        self.latencies_ms: deque[float] = deque(maxlen=64)
        self.first_frame: int | None = None  # stream frame of the first estimate

    def clear(self) -> None:
        """Forget everything (a new start)."""
        self.times.clear()
        self.latencies_ms.clear()
        self.first_frame = None

    def add(self, latency_s: float, frame: int) -> None:
        """An estimate published at stream frame `frame`, `latency_s` of inference."""
        if self.first_frame is None:
            self.first_frame = frame
        self.times.append(time.monotonic())
        self.latencies_ms.append(latency_s * 1e3)

    def rate(self, span_s: float = 5.0) -> float:
        """Estimates published per second over the last `span_s` seconds."""
        now = time.monotonic()
        recent = [t for t in self.times if now - t <= span_s]
        if len(recent) < 2:
            return 0.0 if not recent else 1.0 / span_s
        return (len(recent) - 1) / (recent[-1] - recent[0]) if recent[-1] > recent[0] else 0.0

    def fields(self, onset_frame: int | None, rate: int) -> dict[str, Any]:
        """Telemetry's estimate fields: rate, mean latency of the last 8, first estimate after onset and start."""
        lat = list(self.latencies_ms)
        first = after_start = None
        if self.first_frame is not None and rate:
            after_start = self.first_frame / rate
            if onset_frame is not None:
                first = max(0.0, (self.first_frame - onset_frame) / rate)
        return {"estimates_per_s": self.rate(), "estimate_latency_ms": float(np.mean(lat[-8:])) if lat else 0.0,
                "first_estimate_s": first, "first_estimate_after_start_s": after_start}


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
