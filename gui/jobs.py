"""One background-job controller for the window's long tasks (refine, search chains, match my tone).

A `BackgroundJob` runs one worker at a time for one panel: it wires the worker's signals (progress, succeeded,
failed, cancelled, finished) to the panel and to the window's handlers, shows the panel busy while it runs, says
"failed: ..." / "... cancelled" in the panel's note, and forgets the worker when it has finished. Workers are
`gui.workers.RefineWorker` (a thread) or `gui.workers.CaptureWorker` (a process of its own: the search or the
tone match); both have `start()`, `cancel()` and `stop(timeout)` (cancel and wait).
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
