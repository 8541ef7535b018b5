"""The app's chain search, run in a process of its own (multiprocessing, spawn): no Qt, no audio engine here.

`run_search` is the child's entry point: it hears the target with the model (the encoder's K most likely chains and
their sub-chains are the candidates, started from its params), runs `fxmatch.capture.capture` on the dry and
target audio, and answers on a queue as every job process does (`gui.child_process`): ("progress", SearchProgress),
then exactly one of ("done", CaptureResult), ("failed", one-line message) or ("cancelled", None). `cancel` (a
multiprocessing Event) stops it between two optimisation steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from gui.child_process import answer, begin, progress_sender


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
    modules = begin("search", request.threads, queue, "fxmatch.capture")
    if modules is None:
        return
    (capture,) = modules
    progress = progress_sender(queue, lambda p: SearchProgress(float(p.fraction), p.stage + 1, p.stages,
                                                               tuple(p.best_chain), float(p.best_relative),
                                                               time.perf_counter() - t0))

    def search() -> Any:
        candidates = candidates_for(request)
        if cancel.is_set():
            raise capture.CaptureCancelled("capture: cancelled")
        return capture.capture(request.dry, request.target, request.sample_rate, candidates,
                               settings=request.settings or capture.SearchSettings(),
                               time_budget=request.time_budget, progress=progress, should_stop=cancel.is_set,
                               seed=request.seed)

    answer("search", queue, search, capture.CaptureCancelled)
