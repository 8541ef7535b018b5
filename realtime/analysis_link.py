"""The engine's link to its analysis: the analysis process (or thread) and the estimates it publishes.

With `analysis="process"` (the default) `AnalysisLink` starts realtime.analysis.AnalysisProcess with the engine (the
model loads meanwhile), attaches it to each start's shared block, restarts it when it dies (`supervise`) and takes
each new estimate from the block's estimate slot (`poll`, on the control thread, under the slot's sequence lock).
With `analysis="thread"` it runs an AnalysisWorker thread in this process, which calls back with each estimate.
Either way the engine turns a `StableEstimate` into the published `LiveEstimate` with `publish`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fxmatch.inference import EstimatorSession
from realtime.analysis import (
    AnalysisProcess,
    AnalysisWorker,
    EstimateStabiliser,
    StableEstimate,
    decode_estimate,
    read_estimate,
)
from realtime.buffers import EngineBuffers
from realtime.config import EngineConfig


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


class AnalysisLink:
    """Where the analysis runs and how its estimates come back (see the module docstring)."""

    def __init__(self, config: EngineConfig, session: EstimatorSession,
                 on_estimate: Callable[[StableEstimate, float], None]) -> None:
        """With analysis="process" the analysis process starts now; `on_estimate(est, latency_s)` is called for
        each new estimate (control thread, or the analysis thread)."""
        c = self.config = config
        self.session = session
        self.on_estimate = on_estimate
        self.stabiliser = EstimateStabiliser(session.info, c.hysteresis_hops, c.smoothing)
        self.process: AnalysisProcess | None = None
        self.worker: AnalysisWorker | None = None
        self.estimate: LiveEstimate | None = None
        self._seq = 0
        self._slot_seq = 0
        if c.analysis == "process":
            self.process = AnalysisProcess(c.model_path, c.providers, c.analysis_threads, c.hysteresis_hops,
                                           c.smoothing, c.analysis_nice)

    @property
    def pid(self) -> int | None:
        """The analysis process's id (None with analysis="thread" or when none runs)."""
        return self.process.pid if self.process is not None else None

    def reset(self) -> None:
        """A fresh stabiliser and slot reader (a start)."""
        c = self.config
        self._slot_seq = 0
        self.stabiliser = EstimateStabiliser(self.session.info, c.hysteresis_hops, c.smoothing)

    def prepare(self, buffers: EngineBuffers, rate: int) -> None:
        """With analysis="thread": the worker thread over the target ring of `buffers` (started by start())."""
        if self.process is None:
            ring = buffers.rings["target"]
            self.worker = AnalysisWorker(self.session, rate, ring.read_last, lambda: ring.written,
                                         self.on_estimate, self.stabiliser, self.config.hop_seconds)

    def start(self, buffers: EngineBuffers, rate: int) -> None:
        """Start estimating from `buffers` at `rate` Hz: attach the process to the block, or start the thread."""
        if self.process is not None:
            cap = buffers.rings["dry"].capacity
            self.process.attach(buffers.owner._fd, EngineBuffers.nbytes(cap), cap, rate, self.config.hop_seconds)
        else:
            self.worker.start()

    def stop(self) -> None:
        """Stop the worker thread (bounded) and detach the analysis process (it keeps its model for the next
        start)."""
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop(timeout=5.0)
        if self.process is not None:
            self.process.detach()

    def close(self) -> None:
        """End the analysis process."""
        if self.process is not None:
            self.process.close()

    def poll(self, buffers: EngineBuffers) -> None:
        """Control thread: pass on the analysis process's newest estimate, if any (read under the slot's lock)."""
        seq, data = read_estimate(buffers.header[EngineBuffers.EST_SEQ : EngineBuffers.EST_SEQ + 1],
                                  buffers.estimate_slot, self._slot_seq)
        if data is None:
            return
        self._slot_seq = seq
        est, latency = decode_estimate(self.session.info, data)
        self.on_estimate(est, latency)

    def supervise(self) -> None:
        """Control thread: restart a dead analysis process."""
        if self.process is not None:
            self.process.supervise()

    def publish(self, est: StableEstimate, latency_s: float, time_s: float) -> LiveEstimate:
        """The next LiveEstimate of `est` (inference `latency_s`, stream time `time_s`), kept as `estimate`."""
        self._seq += 1
        self.estimate = LiveEstimate(chain=est.chain, params=est.params, probability=est.probability,
                                     alternatives=est.alternatives, seq=self._seq, latency_ms=latency_s * 1e3,
                                     time_s=time_s)
        return self.estimate

    def status(self, buffers: EngineBuffers | None) -> dict[str, object]:
        """Telemetry's analysis fields: errors, where it runs, restarts of the process."""
        if self.process is not None:
            errors = int(buffers.header[EngineBuffers.A_ERRORS]) if buffers is not None else 0
            pid = self.process.pid
            where = f"process {pid}" if pid else "process (not running)"
            restarts = self.process.restarts
        else:
            errors = self.worker.errors if self.worker is not None else 0
            where, restarts = "thread", 0
        return {"analysis_errors": errors, "analysis": where, "analysis_restarts": restarts}
