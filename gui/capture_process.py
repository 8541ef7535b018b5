"""The app's chain search, run in a process of its own (multiprocessing, spawn): no Qt, no audio engine here.

`run_search` is the child's entry point: it hears the target with the model (the encoder's K most likely chains and
their sub-chains are the candidates, started from its params), runs `fxmatch.capture.capture` on the dry and
target audio, and answers on a queue: ("progress", SearchProgress) at most PROGRESS_HZ times a second, then exactly
one of ("done", CaptureResult), ("failed", one-line message) or ("cancelled", None). `cancel` (a multiprocessing
Event) stops it between two optimisation steps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: progress messages per second at most (the window redraws its bar at its own rate anyway)
PROGRESS_HZ = 10.0


@dataclass(frozen=True)
class SearchRequest:
    """What to search: dry and target float32 `[samples]` at `sample_rate` Hz, the model (ONNX path) whose `k` most
    likely chains are tried (None: every chain of its vocabulary, no encoder run), time budget (s), seed, torch
    threads, and optional `fxmatch.capture.SearchSettings` (None: the defaults)."""

    dry: np.ndarray
    target: np.ndarray
    sample_rate: int
    model_path: str
    k: int | None = 16
    time_budget: float | None = 45.0
    seed: int = 0
    threads: int = 1
    settings: Any = None


@dataclass(frozen=True)
class SearchProgress:
    """Where the search is: fraction in [0, 1], stage (1-based) of stages, best chain so far and its distance
    relative to no effect, seconds since the start."""

    fraction: float
    stage: int
    stages: int
    best_chain: tuple[str, ...]
    best_relative: float
    seconds: float


def candidates_for(request: SearchRequest) -> list:
    """The candidate chains: the model's `k` most likely for the target and their sub-chains (with its params), or
    every chain of the model's vocabulary when `k` is None."""
    from fxmatch.capture import Candidate, candidates_from_ranked
    from fxmatch.inference import EstimatorSession

    session = EstimatorSession(request.model_path, providers="cpu", threads=1)
    if request.k is None:
        return [Candidate(tuple(c)) for c in session.info.chains]
    estimate = session.estimate_array(request.target, request.sample_rate, top=None, source="target input")
    return candidates_from_ranked(estimate.ranked, request.k)


def run_search(request: SearchRequest, queue: Any, cancel: Any) -> None:
    """The search process: candidates, `capture`, one final message on `queue` (module docstring)."""
    t0 = time.perf_counter()
    try:
        from realtime.sched import background

        background()  # below the audio engine and its analysis: nice 10, off the first core (realtime.sched)
        from fxmatch.threads import set_cpu_threads

        set_cpu_threads(request.threads)
        from fxmatch.capture import CaptureCancelled, SearchSettings, capture
        from fxmatch.errors import FxmatchInputError
    except Exception as exc:  # noqa: BLE001 - a broken environment: say so in one line
        queue.put(("failed", f"search: cannot start ({type(exc).__name__}: {exc})".splitlines()[0]))
        return
    last = [0.0]

    def progress(p) -> None:
        now = time.perf_counter()
        if now - last[0] >= 1.0 / PROGRESS_HZ:
            last[0] = now
            queue.put(("progress", SearchProgress(float(p.fraction), p.stage + 1, p.stages, tuple(p.best_chain),
                                                  float(p.best_relative), now - t0)))

    try:
        candidates = candidates_for(request)
        if cancel.is_set():
            raise CaptureCancelled("capture: cancelled")
        result = capture(request.dry, request.target, request.sample_rate, candidates,
                         settings=request.settings or SearchSettings(), time_budget=request.time_budget,
                         progress=progress, should_stop=cancel.is_set, seed=request.seed)
    except CaptureCancelled:
        queue.put(("cancelled", None))
    except FxmatchInputError as exc:
        queue.put(("failed", str(exc).splitlines()[0]))
    except Exception as exc:  # never die silently: the window waits for an answer
        log.exception("search failed")
        queue.put(("failed", f"search failed: {type(exc).__name__}: {exc}".splitlines()[0]))
    else:
        queue.put(("done", result))
