"""A/B/dry buttons with the spectral-distance readout, the refine controls and the chain search controls."""

from __future__ import annotations

import math

from PyQt6 import QtCore, QtWidgets

from gui import theme

POSITIONS = ("target", "matched", "dry")


class ABPanel(QtWidgets.QFrame):
    """Big A (target) / B (matched) / Dry buttons (space toggles A/B, D dry) and the A↔B distance readout."""

    positionChosen = QtCore.pyqtSignal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("panel")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 10)
        lay.setSpacing(6)
        caption = QtWidgets.QLabel("LISTEN   space A/B · D dry")
        caption.setStyleSheet(f"color: {theme.DIM}; font-size: 8pt; letter-spacing: 1px;")
        lay.addWidget(caption)
        row = QtWidgets.QHBoxLayout()
        row.setSpacing(6)
        self.group = QtWidgets.QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: dict[str, QtWidgets.QPushButton] = {}
        for pos, text, name, tip in (("target", "A", "abA", "A: the target (what you are matching)"),
                                     ("matched", "B", "abB", "B: your dry signal through the estimated chain"),
                                     ("dry", "Dry", "abDry", "the dry signal, unprocessed")):
            b = QtWidgets.QPushButton(text)
            b.setObjectName(name)
            b.setCheckable(True)
            b.setToolTip(tip)
            b.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
            b.clicked.connect(lambda _=False, p=pos: self.positionChosen.emit(p))
            self.group.addButton(b)
            self.buttons[pos] = b
            row.addWidget(b)
        lay.addLayout(row)
        self.distance = QtWidgets.QLabel("A↔B  –")
        self.distance.setToolTip("log-spectral distance between target and matched over the last ~2 s")
        self.distance.setStyleSheet(f"color: {theme.TEXT}; font-size: 11pt; font-weight: 600;")
        lay.addWidget(self.distance)
        self.set_position("matched")

    def set_position(self, position: str) -> None:
        """Check the button of `position` without emitting positionChosen."""
        if position in self.buttons:
            self.buttons[position].setChecked(True)

    def position(self) -> str:
        for pos, b in self.buttons.items():
            if b.isChecked():
                return pos
        return "matched"

    def set_distance(self, db: float | None) -> None:
        """Show the A↔B distance in dB (None: not available)."""
        if db is None or not math.isfinite(db):
            self.distance.setText("A↔B  –")
        else:
            colour = theme.OK if db < 3 else theme.WARN if db < 8 else theme.BAD
            self.distance.setText(f"A↔B  <span style='color:{colour}'>{db:.1f} dB</span>")


class _TaskPanel(QtWidgets.QFrame):
    """A captioned panel that starts a background task: its button, Cancel and a progress bar while it runs, and a
    note line; subclasses add rows between the progress bar and the note (`extra_rows`)."""

    cancelRequested = QtCore.pyqtSignal()

    def __init__(self, caption: str, button_text: str, tooltip: str, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("panel")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 10)
        lay.setSpacing(6)
        label = QtWidgets.QLabel(caption)
        label.setStyleSheet(f"color: {theme.DIM}; font-size: 8pt; letter-spacing: 1px;")
        lay.addWidget(label)
        row = QtWidgets.QHBoxLayout()
        self.button = QtWidgets.QPushButton(button_text)
        self.button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.button.setToolTip(tooltip)
        self.cancel = QtWidgets.QPushButton("Cancel")
        self.cancel.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.cancel.clicked.connect(self.cancelRequested.emit)
        self.cancel.setVisible(False)
        row.addWidget(self.button, 1)
        row.addWidget(self.cancel)
        lay.addLayout(row)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        self.progress.setVisible(False)
        lay.addWidget(self.progress)
        for extra in self.extra_rows():
            lay.addLayout(extra)
        self.note = QtWidgets.QLabel("needs a dry signal (capture or reference mode)")
        self.note.setWordWrap(True)
        self.note.setStyleSheet(f"color: {theme.DIM}; font-size: 9pt;")
        lay.addWidget(self.note)
        self.setMinimumWidth(230)

    def extra_rows(self) -> list[QtWidgets.QLayout]:
        """Rows shown between the progress bar and the note (none here)."""
        return []

    def set_busy(self, busy: bool) -> None:
        """Running: Cancel and the progress bar show, the button is off."""
        self.button.setEnabled(not busy)
        self.cancel.setVisible(busy)
        self.progress.setVisible(busy)
        if busy:
            self.progress.setValue(0)


class RefinePanel(_TaskPanel):
    """The Refine button, its progress and Cancel."""

    refineRequested = QtCore.pyqtSignal()

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__("REFINE", "✦ Refine params",
                         "fit the params to the last seconds of dry and target through the effect twins", parent)
        self.button.clicked.connect(self.refineRequested.emit)

    def set_progress(self, step: int, steps: int, distance: float) -> None:
        """Step `step` of `steps`, the spectral distance so far."""
        self.progress.setValue(int(100 * step / max(1, steps)))
        self.note.setText(f"step {step}/{steps}: distance {distance:.3f}")


class CapturePanel(_TaskPanel):
    """The chain search: Search button, progress and Cancel while it runs, then Keep / Discard for its result."""

    searchRequested = QtCore.pyqtSignal()
    keepRequested = QtCore.pyqtSignal()
    discardRequested = QtCore.pyqtSignal()

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__("SEARCH CHAINS", "⌕ Search chains",
                         "fit the model's most likely chains to the last seconds of dry and target through "
                         "the effect twins (in a process of its own) and play the closest", parent)
        self.button.clicked.connect(self.searchRequested.emit)
        self.keep.clicked.connect(self.keepRequested.emit)
        self.discard.clicked.connect(self.discardRequested.emit)

    def extra_rows(self) -> list[QtWidgets.QLayout]:
        """Keep / Discard, hidden until a search offers a chain."""
        choice = QtWidgets.QHBoxLayout()
        self.keep = QtWidgets.QPushButton("Keep")
        self.keep.setToolTip("keep the found chain playing")
        self.discard = QtWidgets.QPushButton("Discard")
        self.discard.setToolTip("go back to what played before the search")
        for b in (self.keep, self.discard):
            b.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
            b.setVisible(False)
            choice.addWidget(b)
        return [choice]

    def set_busy(self, busy: bool) -> None:
        """Searching: Cancel and the progress bar show, the Search button is off, no chain on offer."""
        super().set_busy(busy)
        if busy:
            self.set_offer(False)

    def set_offer(self, offered: bool) -> None:
        """Show (or hide) Keep / Discard for a found chain."""
        self.keep.setVisible(offered)
        self.discard.setVisible(offered)

    def set_progress(self, p) -> None:
        """A `gui.capture_process.SearchProgress`: the bar and the best chain so far."""
        self.progress.setValue(round(100 * min(1.0, max(0.0, p.fraction))))
        best = " → ".join(p.best_chain) or "no effect"
        self.note.setText(f"stage {p.stage}/{p.stages}, {p.seconds:.0f} s: best so far {best} "
                          f"({100 * p.best_relative:.0f} % of no effect)")
