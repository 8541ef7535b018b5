"""What the app's background processes (search chains, match my tone) share: no Qt, no audio engine here.

A job's entry point (`gui.capture_process.run_search`, `gui.match_process.run_match`) is spawned by
`gui.workers.CaptureWorker` with a request, a queue and a cancel Event. It calls `begin` (background priority, CPU
threads, the job's imports), sends progress through `progress_sender` (at most PROGRESS_HZ messages a second), and
lets `answer` run the work and put exactly one final message on the queue: ("done", result), ("failed", one-line
message) or ("cancelled", None).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

#: progress messages per second at most (the window redraws its bar at its own rate anyway)
PROGRESS_HZ = 10.0


def first_line(text: str) -> str:
    """The first line of `text` ("" for none): the window shows one line."""
    return (text.splitlines() or [""])[0]


def begin(name: str, threads: int, queue: Any, *modules: str) -> list[ModuleType] | None:
    """A job process's start: background priority (`realtime.sched.background`: below the audio engine and its
    analysis), `threads` CPU threads, then the job's `modules` imported; them, or None after answering ("failed",
    "{name}: cannot start (...)") for a broken environment."""
    try:
        from realtime.sched import background

        background()
        from fxmatch.threads import set_cpu_threads

        set_cpu_threads(threads)
        importlib.import_module("fxmatch.errors")  # `answer` needs it: a broken one says so here
        return [importlib.import_module(m) for m in modules]
    except Exception as exc:  # noqa: BLE001 - a broken environment: say so in one line
        queue.put(("failed", first_line(f"{name}: cannot start ({type(exc).__name__}: {exc})")))
        return None


def progress_sender(queue: Any, convert: Callable[[Any], Any] = lambda p: p,
                    last: Callable[[Any], bool] = lambda p: False) -> Callable[[Any], None]:
    """A progress callback that puts ("progress", convert(p)) on `queue` at most PROGRESS_HZ times a second, and
    always when `last(p)` (the final report)."""
    sent = [0.0]

    def progress(p: Any) -> None:
        now = time.perf_counter()
        if last(p) or now - sent[0] >= 1.0 / PROGRESS_HZ:
            sent[0] = now
            queue.put(("progress", convert(p)))

    return progress


def answer(name: str, queue: Any, work: Callable[[], Any], cancelled: type[BaseException]) -> None:
    """Run `work()` and put its one final message on `queue`: ("done", result), ("cancelled", None) when it raised
    `cancelled`, else ("failed", one line): the input error's message, or "{name} failed: ..." for anything else."""
    from fxmatch.errors import FxmatchInputError

    try:
        result = work()
    except cancelled:
        queue.put(("cancelled", None))
    except FxmatchInputError as exc:
        queue.put(("failed", first_line(str(exc))))
    except Exception as exc:  # never die silently: the window waits for an answer
        log.exception("%s failed", name)
        queue.put(("failed", first_line(f"{name} failed: {type(exc).__name__}: {exc}")))
    else:
        queue.put(("done", result))
