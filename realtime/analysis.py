"""The analysis worker: every hop, the last window of the target -> onnxruntime -> a stabilised estimate.

The worker thread reads the newest window of the target from its ring buffer (device rate), resamples it to the
model's rate with soxr, skips it when silent (below fxmatch.inference.SILENCE_DBFS), runs the model (one window)
and feeds the `EstimateStabiliser`:

* chain probabilities and normalised params are smoothed over hops (exponential, `smoothing`); params are
  smoothed in the normalised space, which is linear in each parameter's own scale (log params glide in log);
* the published chain changes only when another chain has been the smoothed favourite for `hysteresis_hops`
  consecutive hops (the first estimate is published at once).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fxmatch.inference import SILENCE_DBFS, EstimatorSession, ModelInfo, rms_dbfs

log = logging.getLogger("fxmatch.realtime.analysis")


@dataclass(frozen=True)
class StableEstimate:
    """What the stabiliser publishes after a hop (the engine turns it into a LiveEstimate)."""

    chain: tuple[str, ...]
    params: tuple[tuple[str, dict[str, float]], ...]
    probability: float
    alternatives: tuple[tuple[tuple[str, ...], float], ...]
    changed: bool  # the chain differs from the previous published one


class EstimateStabiliser:
    """Hysteresis over hops for the chain, exponential smoothing of probabilities and params."""

    def __init__(self, info: ModelInfo, hysteresis_hops: int = 3, smoothing: float = 0.6, top: int = 3):
        self.info = info
        self.hysteresis_hops = max(1, int(hysteresis_hops))
        self.smoothing = float(smoothing)  # weight of the past per hop, in [0, 1)
        self.top = int(top)
        self.probs: np.ndarray | None = None
        self.params: np.ndarray | None = None
        self.current: int | None = None
        self._candidate: int | None = None
        self._count = 0

    def reset(self) -> None:
        """Forget the history (the next window is published at once)."""
        self.probs = self.params = None
        self.current = self._candidate = None
        self._count = 0

    def update(self, probs: np.ndarray, params: np.ndarray) -> StableEstimate:
        """One hop: probs `[n_chains]`, normalised params `[n_chains, n_params]` -> the stabilised estimate."""
        probs = np.asarray(probs, dtype=np.float64).reshape(-1)
        params = np.clip(np.asarray(params, dtype=np.float64).reshape(probs.size, -1), 0.0, 1.0)
        a = self.smoothing
        if self.probs is None:
            self.probs, self.params = probs.copy(), params.copy()
        else:
            self.probs = a * self.probs + (1 - a) * probs
            self.params = a * self.params + (1 - a) * params
        best = int(np.argmax(self.probs))
        changed = False
        if self.current is None:
            self.current, changed = best, True
        elif best == self.current:
            self._candidate, self._count = None, 0
        else:
            if best == self._candidate:
                self._count += 1
            else:
                self._candidate, self._count = best, 1
            if self._count >= self.hysteresis_hops:
                changed = self.info.chains[best] != self.info.chains[self.current]
                self.current, self._candidate, self._count = best, None, 0
        k = self.current
        order = [int(i) for i in np.argsort(-self.probs, kind="stable") if int(i) != k][: self.top]
        return StableEstimate(
            chain=self.info.chains[k],
            params=tuple((n, dict(p)) for n, p in self.info.decode(k, self.params[k])),
            probability=float(self.probs[k]),
            alternatives=tuple((self.info.chains[i], float(self.probs[i])) for i in order),
            changed=changed,
        )


class AnalysisWorker(threading.Thread):
    """Thread: every `hop_s`, estimate the newest window of `read_target(n)` and call `publish(est, latency_s)`.

    `read_target(n)` returns the newest n samples (device rate, mono float32) and `written()` how many samples
    were written so far; `tick()` is called every hop (the engine's watchdog and housekeeping).
    """

    def __init__(self, session: EstimatorSession, device_rate: int, read_target: Callable[[int], np.ndarray],
                 written: Callable[[], int], publish: Callable[[StableEstimate, float], None],
                 stabiliser: EstimateStabiliser, hop_s: float = 0.25, tick: Callable[[], None] | None = None):
        super().__init__(name="fxmatch-analysis", daemon=True)
        self.session = session
        self.info = session.info
        self.device_rate = int(device_rate)
        self.read_target = read_target
        self.written = written
        self.publish = publish
        self.stabiliser = stabiliser
        self.hop_s = float(hop_s)
        self.tick = tick
        self.stop_event = threading.Event()
        w = self.info.window_samples
        # device-rate samples covering one model window, plus a margin for the resampler's edges
        self.pad = 64 if self.device_rate == self.info.sample_rate else 256
        self.n_device = math.ceil(w * self.device_rate / self.info.sample_rate) + self.pad
        self.silent_hops = 0
        self.estimates = 0
        self.errors = 0
        self.last_error: str | None = None
        self.latencies_ms: deque[float] = deque(maxlen=64)
        self.times: deque[float] = deque(maxlen=256)

    def window(self) -> np.ndarray | None:
        """The newest model window (model rate, float32 `[window_samples]`), None when silent or unfilled."""
        if self.written() == 0:
            return None
        x = self.read_target(self.n_device)
        if self.device_rate != self.info.sample_rate:
            import soxr

            x = soxr.resample(x, self.device_rate, self.info.sample_rate, quality="HQ")
        w = self.info.window_samples
        # drop the resampler's right edge, keep the newest full window
        edge = round(self.pad * self.info.sample_rate / self.device_rate) // 2 if self.pad > 64 else 0
        x = x[: x.size - edge] if edge else x
        if x.size < w:
            x = np.concatenate([np.zeros(w - x.size, dtype=np.float32), x])
        y = np.ascontiguousarray(x[-w:], dtype=np.float32)
        if rms_dbfs(y) < SILENCE_DBFS:
            return None
        return y

    def step(self) -> bool:
        """One hop: estimate and publish; False when the window was silent (nothing published)."""
        y = self.window()
        if y is None:
            self.silent_hops += 1
            return False
        t0 = time.perf_counter()
        probs, params = self.session.estimate_windows(y[None])
        latency = time.perf_counter() - t0
        est = self.stabiliser.update(probs[0], params[0])
        self.estimates += 1
        self.latencies_ms.append(latency * 1e3)
        self.times.append(time.monotonic())
        self.publish(est, latency)
        return True

    def rate(self, span_s: float = 5.0) -> float:
        """Estimates per second over the last `span_s` seconds."""
        now = time.monotonic()
        recent = [t for t in self.times if now - t <= span_s]
        if len(recent) < 2:
            return 0.0 if not recent else 1.0 / span_s
        return (len(recent) - 1) / max(1e-9, recent[-1] - recent[0]) if recent[-1] > recent[0] else 0.0

    def run(self) -> None:
        next_t = time.monotonic()
        while not self.stop_event.is_set():
            try:
                if self.tick is not None:
                    self.tick()
                self.step()
            except Exception as exc:  # noqa: BLE001 - the worker reports and keeps going
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("analysis failed: %s", self.last_error)
            next_t += self.hop_s
            now = time.monotonic()
            if next_t < now - self.hop_s:  # fell behind (slow inference): do not try to catch up
                next_t = now
            self.stop_event.wait(max(0.0, next_t - now))

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end and wait for it (at most `timeout` s; inference of one window is the bound)."""
        self.stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
