"""The Match my tone panel: fit the chain to the record using the player's own take (reference mode)."""

from __future__ import annotations

from PyQt6 import QtCore, QtWidgets

from gui.widgets.ab_panel import CapturePanel
from gui.widgets.chain_view import chain_label


class MatchPanel(CapturePanel):
    """Match my tone: its button, progress and Cancel while the fit runs, then Keep / Discard for its chain."""

    matchRequested = QtCore.pyqtSignal()

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        for child in self.findChildren(QtWidgets.QLabel):
            if child.text() == "SEARCH CHAINS":
                child.setText("MATCH MY TONE")
        self.button.setText("♫ Match my tone")
        self.button.setToolTip("fit the chain so that your own playing (the last seconds of the dry input) sounds "
                               "like the record (its loop): two performances, compared by their tone, in a process "
                               "of its own")
        self.button.clicked.disconnect()
        self.button.clicked.connect(self.matchRequested.emit)
        self.note.setText("needs a running engine in reference mode (a record and your instrument)")

    def set_progress(self, p) -> None:
        """A `fxmatch.match.MatchProgress`: the bar and the closest chain so far."""
        self.progress.setValue(round(100 * min(1.0, max(0.0, p.fraction))))
        best = chain_label(p.best_chain)
        self.note.setText(f"matching, {p.elapsed:.0f} s: closest so far {best} "
                          f"({100 * p.best_relative:.0f} % of your take's own tone distance)")
