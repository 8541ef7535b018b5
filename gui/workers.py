"""Background work of the app: parameter refinement through the twins, off the GUI and audio threads."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

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

    def run(self) -> None:
        from fxmatch.refine import RefineCancelled, refine_arrays

        try:
            import torch

            if self.threads > 0 and torch.get_num_threads() != self.threads:
                torch.set_num_threads(self.threads)
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
