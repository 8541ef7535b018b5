"""The app's tone match, run in a process of its own (multiprocessing, spawn): no Qt, no audio engine here.

`run_match` is the child's entry point: it runs `fxmatch.match.match` with the record's loop as the reference and
the player's recent dry input as the take, and answers on a queue: ("progress", MatchProgress) at most PROGRESS_HZ
times a second, then exactly one of ("done", MatchResult), ("failed", one-line message) or ("cancelled", None).
`cancel` (a multiprocessing Event) stops it between two renders.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: progress messages per second at most
PROGRESS_HZ = 10.0


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
    try:
        from realtime.sched import background

        background()  # below the audio engine and its analysis (realtime.sched)
        from fxmatch.threads import set_cpu_threads

        set_cpu_threads(request.threads)
        from fxmatch.errors import FxmatchInputError
        from fxmatch.inference import EstimatorSession
        from fxmatch.match import MAX_EVALUATIONS, MatchCancelled, match, same_performance
    except Exception as exc:  # noqa: BLE001 - a broken environment: say so in one line
        queue.put(("failed", f"match: cannot start ({type(exc).__name__}: {exc})".splitlines()[0]))
        return
    last = [0.0]

    def progress(p) -> None:
        now = time.perf_counter()
        if p.done or now - last[0] >= 1.0 / PROGRESS_HZ:
            last[0] = now
            queue.put(("progress", p))

    try:
        session = EstimatorSession(request.model_path, providers="cpu", threads=request.threads)
        if cancel.is_set():
            raise MatchCancelled("match: cancelled")
        result = match(request.reference, request.take, request.sample_rate, session=session,
                       max_evaluations=request.max_evaluations or MAX_EVALUATIONS, time_budget=request.time_budget,
                       progress=progress, should_stop=cancel.is_set, seed=request.seed)
        if request.check_same and same_performance(request.reference, request.take, request.sample_rate):
            result.warnings.insert(0, SAME_PERFORMANCE)
    except MatchCancelled:
        queue.put(("cancelled", None))
    except FxmatchInputError as exc:
        queue.put(("failed", str(exc).splitlines()[0]))
    except Exception as exc:  # never die silently: the window waits for an answer
        log.exception("match failed")
        queue.put(("failed", f"match failed: {type(exc).__name__}: {exc}".splitlines()[0]))
    else:
        queue.put(("done", result))


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
        queue.put(("failed", f"search: cannot compare the takes ({type(exc).__name__}: {exc})".splitlines()[0]))
        return
    if same:
        run_search(request, queue, cancel)
        return
    run_match(MatchRequest(request.target, request.dry, request.sample_rate, request.model_path,
                           time_budget=request.time_budget, seed=request.seed, threads=request.threads,
                           check_same=False),
              _AsSearchProgress(queue), cancel)
