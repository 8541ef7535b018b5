"""The app's tone match, run in a process of its own (multiprocessing, spawn): no Qt, no audio engine here.

`run_match` is the child's entry point: it runs `fxmatch.match.match` with the record's loop as the reference and
the player's recent dry input as the take, and answers on a queue as every job process does (`gui.child_process`):
("progress", MatchProgress), then exactly one of ("done", MatchResult), ("failed", one-line message) or
("cancelled", None). `cancel` (a multiprocessing Event) stops it between two renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gui.child_process import answer, begin, first_line, progress_sender


@dataclass(frozen=True)
class MatchRequest:
    """What to match: the reference (the record) and the player's take, float32 `[samples]` at `sample_rate` Hz,
    the model (ONNX path), the fit's render budget, time budget (s), seed and CPU threads."""

    reference: np.ndarray
    take: np.ndarray
    sample_rate: int
    model_path: str
    max_evaluations: int | None = None
    time_budget: float | None = 45.0
    seed: int = 0
    threads: int = 1
    #: also say when the take is the reference's own performance (`fxmatch.match.same_performance`)
    check_same: bool = True


#: the warning a match carries when the take turned out to be the record's own performance
SAME_PERFORMANCE = ("your input is the record's own performance: Search chains fits it exactly (the sample-wise "
                    "search, as fxmatch capture)")


def run_match(request: MatchRequest, queue: Any, cancel: Any) -> None:
    """The match process: `fxmatch.match.match`, one final message on `queue` (module docstring)."""
    modules = begin("match", request.threads, queue, "fxmatch.inference", "fxmatch.match")
    if modules is None:
        return
    inference, tone = modules
    progress = progress_sender(queue, last=lambda p: p.done)

    def fit() -> Any:
        session = inference.EstimatorSession(request.model_path, providers="cpu", threads=request.threads)
        if cancel.is_set():
            raise tone.MatchCancelled("match: cancelled")
        result = tone.match(request.reference, request.take, request.sample_rate, session=session,
                            max_evaluations=request.max_evaluations or tone.MAX_EVALUATIONS,
                            time_budget=request.time_budget, progress=progress, should_stop=cancel.is_set,
                            seed=request.seed)
        if request.check_same and tone.same_performance(request.reference, request.take, request.sample_rate):
            result.warnings.insert(0, SAME_PERFORMANCE)
        return result

    answer("match", queue, fit, tone.MatchCancelled)


class _AsSearchProgress:
    """A queue front that passes the tone match's progress on as `gui.capture_process.SearchProgress` (one stage),
    so that the Search chains panel shows it as it shows a search."""

    def __init__(self, queue: Any):
        self.queue = queue

    def put(self, item: tuple[str, Any]) -> None:
        kind, payload = item
        if kind == "progress":
            from gui.capture_process import SearchProgress

            payload = SearchProgress(float(payload.fraction), 1, 1, tuple(payload.best_chain),
                                     float(payload.best_relative), float(payload.elapsed))
        self.queue.put((kind, payload))


def run_reference_search(request: Any, queue: Any, cancel: Any) -> None:
    """Search chains in reference mode (a `gui.capture_process.SearchRequest`): when the dry input is the record's
    own performance (`fxmatch.match.same_performance`) the sample-wise search (`run_search`, exact there);
    otherwise, as usually in reference mode, the tone match (`run_match`). Answers as `run_search` does, with a
    `fxmatch.match.MatchResult` as the result of a tone match."""
    from gui.capture_process import run_search

    try:
        from fxmatch.match import same_performance

        same = same_performance(request.target, request.dry, request.sample_rate) is not None
    except Exception as exc:  # noqa: BLE001 - say so in one line; the window waits for an answer
        queue.put(("failed", first_line(f"search: cannot compare the takes ({type(exc).__name__}: {exc})")))
        return
    if same:
        run_search(request, queue, cancel)
        return
    run_match(MatchRequest(request.target, request.dry, request.sample_rate, request.model_path,
                           time_budget=request.time_budget, seed=request.seed, threads=request.threads,
                           check_same=False),
              _AsSearchProgress(queue), cancel)
