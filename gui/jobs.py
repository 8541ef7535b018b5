"""One background-job controller for the window's long tasks (refine, search chains, match my tone).

A `BackgroundJob` runs one worker at a time for one panel: it wires the worker's signals (progress, succeeded,
failed, cancelled, finished) to the panel and to the window's handlers, shows the panel busy while it runs, says
"failed: ..." / "... cancelled" in the panel's note, and forgets the worker when it has finished. Workers are
`gui.workers.RefineWorker` (a thread) or `gui.workers.CaptureWorker` (a process of its own: the search or the
tone match); both have `start()`, `cancel()` and `stop(timeout)` (cancel and wait).

An `Offer` is what a search's or a tone match's result shares once it is done: the found chain plays at once as B,
and the panel's Keep or Discard decide (Discard goes back to what played before).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6 import QtCore


class BackgroundJob(QtCore.QObject):
    """One kind of background task of the window (`name`: "refine", "search", "match"), one worker at a time.

    `on_done(*result)` receives the worker's `succeeded` arguments; `on_finished()` runs after every end (done,
    failed or cancelled), once the panel is no longer busy."""

    def __init__(self, name: str, on_done: Callable[..., None], on_finished: Callable[[], None] | None = None,
                 parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.name = name
        self.on_done = on_done
        self.on_finished = on_finished
        self.worker: Any = None
        self.panel: Any = None

    @property
    def running(self) -> bool:
        """True from `start` until the worker's `finished`."""
        return self.worker is not None

    def start(self, worker: Any, panel: Any, note: str, start: Callable[[], None] | None = None) -> bool:
        """Run `worker` for `panel` (its progress bar, Cancel, note); False (and nothing started) while another
        worker of this job runs. `start` starts the worker (default `worker.start()`)."""
        if self.worker is not None:
            return False
        self.worker, self.panel = worker, panel
        worker.progress.connect(panel.set_progress)
        worker.succeeded.connect(self.on_done)
        worker.failed.connect(self._failed)
        worker.cancelled.connect(self._cancelled)
        worker.finished.connect(self._finished)
        panel.set_busy(True)
        panel.note.setText(note)
        (start or worker.start)()
        return True

    def cancel(self, wait: bool = False) -> None:
        """Ask the running worker to stop (and wait for it, up to its own grace time, when `wait`)."""
        worker = self.worker
        if worker is None:
            return
        if wait:
            worker.stop()
            if self.worker is worker:  # a thread's finished signal is queued: end here
                self._finished()
        else:
            worker.cancel()

    def _failed(self, message: str) -> None:
        if self.panel is not None:
            self.panel.note.setText(message)

    def _cancelled(self) -> None:
        if self.panel is not None:
            self.panel.note.setText(f"{self.name} cancelled")

    def _finished(self) -> None:
        worker, self.worker = self.worker, None
        if worker is None:
            return
        worker.deleteLater()
        if self.panel is not None:
            self.panel.set_busy(False)
        if self.on_finished is not None:
            self.on_finished()


class Offer:
    """A found chain offered on a job's `panel` with Keep / Discard, and what played before it (to go back to).

    It holds no reference to the window, which passes what it needs (with the window's methods kept here, the app's
    tests crashed in pytest-qt's teardown: a segmentation fault while Qt processed the closed windows' events)."""

    def __init__(self, panel: Any):
        self.panel = panel
        #: what played before the offered chain (the window's snapshot; None: no offer open)
        self.before: Any = None

    def open(self, before: Any) -> None:
        """The found chain plays now, `before` is what played until then: show Keep / Discard."""
        self.before = before
        self.panel.set_offer(True)

    def keep(self) -> None:
        """Keep the offered chain (it stays playing): nothing to go back to, Keep / Discard go."""
        self.before = None
        self.panel.set_offer(False)

    def discard(self, restore: Callable[[Any], None]) -> None:
        """Go back to what played before the offered chain (`restore(before)` plays it) and say so in the note."""
        before, self.before = self.before, None
        self.panel.set_offer(False)
        if before is None:
            return
        restore(before)
        self.panel.note.setText("discarded: back to what played before")

    def job_finished(self) -> None:
        """After the job's end (its panel no longer busy): Keep / Discard show again while an offer is open."""
        if self.before is not None:
            self.panel.set_offer(True)
