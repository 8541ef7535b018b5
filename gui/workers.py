"""Background work of the app, off the GUI and audio threads: parameter refinement through the twins (a thread),
the chain search and the tone match (processes of their own)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PyQt6 import QtCore

from fxmatch.errors import FxmatchInputError

log = logging.getLogger(__name__)


class RefineWorker(QtCore.QThread):
    """Runs `fxmatch.refine.refine_arrays` on dry/target arrays in its own thread, with progress and cancel.

    Signals: progress(step, steps, distance), succeeded(chain, report), failed(one-line message), cancelled().
    Exactly one of succeeded / failed / cancelled is emitted. `threads` caps torch's CPU threads (audio comes first).
    """

    progress = QtCore.pyqtSignal(int, int, float)
    succeeded = QtCore.pyqtSignal(object, object)
    failed = QtCore.pyqtSignal(str)
    cancelled = QtCore.pyqtSignal()

    def __init__(self, chain: Sequence[tuple[str, Mapping[str, float]]], dry: np.ndarray, target: np.ndarray,
                 sample_rate: int, steps: int = 40, seconds: float = 3.0, threads: int = 1,
                 parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.chain = [(n, dict(p)) for n, p in chain]
        self.dry = np.asarray(dry, dtype=np.float32)
        self.target = np.asarray(target, dtype=np.float32)
        self.sample_rate = int(sample_rate)
        self.steps = int(steps)
        self.seconds = float(seconds)
        self.threads = int(threads)
        self._cancel = False

    def cancel(self) -> None:
        """Ask the worker to stop after the current step (thread-safe)."""
        self._cancel = True

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel and wait up to `timeout` seconds for the thread to end (for closing the window)."""
        self.cancel()
        self.wait(int(timeout * 1000))

    def run(self) -> None:
        from fxmatch.refine import RefineCancelled, refine_arrays

        try:
            from fxmatch.threads import set_cpu_threads

            if self.threads > 0:
                set_cpu_threads(self.threads)  # numba's count is per thread: set it here, in the worker
            chain, report = refine_arrays(
                [n for n, _ in self.chain], self.chain, self.dry, self.target, self.sample_rate, self.steps,
                self.seconds, progress=lambda s, n, d: self.progress.emit(s, n, d),
                should_stop=lambda: self._cancel, dry_name="dry input")
        except RefineCancelled:
            self.cancelled.emit()
        except FxmatchInputError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # never let a worker take the app down
            log.exception("refine failed")
            self.failed.emit(f"refine failed: {type(exc).__name__}: {exc}".splitlines()[0])
        else:
            self.succeeded.emit(chain, report)


class CaptureWorker(QtCore.QObject):
    """Runs the chain search (`gui.capture_process.run_search`) in a process of its own, spawned, so that neither
    the window's thread nor the audio engine's process shares a CPU core's Python with it; a QTimer on the GUI
    thread polls its queue without blocking.

    Signals: progress(SearchProgress), succeeded(CaptureResult), failed(one-line message), cancelled(), and then
    finished(). Exactly one of succeeded / failed / cancelled is emitted, also when the process dies (failed).
    """

    progress = QtCore.pyqtSignal(object)
    succeeded = QtCore.pyqtSignal(object)
    failed = QtCore.pyqtSignal(str)
    cancelled = QtCore.pyqtSignal()
    finished = QtCore.pyqtSignal()

    #: how often the queue is polled (ms)
    POLL_MS = 50
    #: after a cancel, how long the process may take to answer before it is terminated (s)
    CANCEL_GRACE_S = 5.0

    def __init__(self, request, parent: QtCore.QObject | None = None, entry: Any = None,
                 name: str = "fxmatch-search"):
        super().__init__(parent)
        import multiprocessing

        self.request = request
        #: the child's entry point (default `gui.capture_process.run_search`; `gui.match_process.run_match`)
        self.entry = entry
        self.name = name
        self._ctx = multiprocessing.get_context("spawn")
        self._queue = self._ctx.Queue()
        self._cancel = self._ctx.Event()
        self._process = None
        self._cancel_at: float | None = None
        self._done = False
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(self.POLL_MS)
        self._timer.timeout.connect(self.poll)

    @property
    def pid(self) -> int | None:
        """The search process's id (None before start)."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        """True from start until the final signal."""
        return self._process is not None and not self._done

    def start(self) -> None:
        """Spawn the search process and start polling."""
        from gui.capture_process import run_search

        self._process = self._ctx.Process(target=self.entry or run_search,
                                          args=(self.request, self._queue, self._cancel), name=self.name,
                                          daemon=True)
        self._process.start()
        self._timer.start()

    def cancel(self) -> None:
        """Ask the search to stop after its current step; it is terminated if it has not answered in
        CANCEL_GRACE_S."""
        import time

        if self.running and self._cancel_at is None:
            self._cancel.set()
            self._cancel_at = time.monotonic()

    def poll(self) -> None:
        """Read what the process said (never blocks); emit the signals; notice a process that died or hangs."""
        import queue as queue_mod
        import time

        if self._done:
            return
        while True:
            try:
                kind, payload = self._queue.get_nowait()
            except queue_mod.Empty:
                break
            except (EOFError, OSError):
                break
            if kind == "progress":
                self.progress.emit(payload)
                continue
            self._finish(kind, payload)
            return
        proc = self._process
        if proc is not None and not proc.is_alive():
            try:  # the last message may still be in the pipe when the process has just ended
                kind, payload = self._queue.get(timeout=0.2)
                while kind == "progress":
                    kind, payload = self._queue.get(timeout=0.2)
            except (queue_mod.Empty, EOFError, OSError):
                self._finish("failed", f"the search process ended unexpectedly (exit code {proc.exitcode})")
                return
            self._finish(kind, payload)
        elif self._cancel_at is not None and time.monotonic() - self._cancel_at > self.CANCEL_GRACE_S:
            proc.terminate()
            self._finish("cancelled", None)

    def _finish(self, kind: str, payload) -> None:
        self._done = True
        self._timer.stop()
        if kind == "done":
            self.succeeded.emit(payload)
        elif kind == "cancelled":
            self.cancelled.emit()
        else:
            self.failed.emit(str(payload))
        proc = self._process
        if proc is not None:
            proc.join(timeout=2.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=2.0)
        self._queue.close()
        self.finished.emit()

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel and wait up to `timeout` seconds for the answer (terminate after that); for closing the window."""
        import time

        if not self.running:
            return
        self.cancel()
        end = time.monotonic() + timeout
        while self.running and time.monotonic() < end:
            self.poll()
            if self.running:
                time.sleep(0.02)
        if self.running:
            self._process.terminate()
            self._finish("cancelled", None)
