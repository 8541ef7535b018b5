"""A/B/dry buttons with the A↔B readout (how far B sounds from A, in words), the refine controls and the chain search
controls."""

from __future__ import annotations

import math

import numpy as np
from PyQt6 import QtCore, QtWidgets

from fxmatch.audio_io import rms_dbfs
from gui import theme
from gui.widgets.chain_view import chain_label

POSITIONS = ("target", "matched", "dry")

#: the A↔B readout (`ab_distance_db`): seconds of A and B it compares, its FFT, third-octave bands from BAND_LO_HZ
#: to BAND_HI_HZ, the floor under the loudest band (quieter bands are not heard next to it; counting them, the
#: engine's per-bin distance read 11 dB, red, for the bass example low-passed at 3 kHz, where it is 60 dB down and
#: the spectra overlap), and the level below which either side is silent (no reading)
AB_SECONDS = 2.0
AB_NFFT = 4096
BANDS_PER_OCTAVE = 3
BAND_LO_HZ, BAND_HI_HZ = 50.0, 16000.0
MASK_DB = 60.0
SILENT_DBFS = -60.0

#: the A↔B distance in words (upper bound in dB, word, colour), closest first. About 1 dB is the smallest level
#: change one hears in a band, and the readout is an RMS over ~28 bands, so a change in a few bands reads less.
#: Measured on examples/ (the distorted guitar unless named): a +1 dB treble shelf reads 0.5 (very close: hard to
#: tell apart in an A/B); a +3 dB bell at 1 kHz 1.0, a +6 dB bell 2.1, the drive 30 % off 2.5 (close: heard side
#: by side, small knob moves); a low-pass at 6 kHz 3.0 (noticeable: a clear change of tone); a low-pass at 2 kHz
#: 6.9, distortion against no effect 9.5, another instrument 29 (far: a different sound)
DISTANCE_SCALE = ((1.0, "very close", theme.OK), (3.0, "close", theme.OK), (6.0, "noticeable", theme.WARN),
                  (math.inf, "far", theme.BAD))

DISTANCE_TIP = (f"How far B (matched) sounds from A (target) in tone over the last {AB_SECONDS:g} s: their level "
                f"difference across third-octave bands (dB, RMS over the bands; B at A's loudness; bands over "
                f"{MASK_DB:.0f} dB below the loudest count as that floor).\n"
                "very close: under 1 dB (a +1 dB treble shelf)\n"
                "close: under 3 dB (a +3 or +6 dB bell, the drive 30 % off)\n"
                "noticeable: under 6 dB (a low-pass at 6 kHz on a distorted guitar)\n"
                "far: 6 dB or more (distortion against no effect, another instrument)\n"
                "Tone only: delay, reverb and chorus move it little. It compares what A and B played: in reference "
                "mode play what the target plays.")


def band_levels_db(x: np.ndarray, rate: int) -> np.ndarray:
    """Power (dB) of mono `x` in third-octave bands from BAND_LO_HZ to BAND_HI_HZ, averaged over Hann frames."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    frames = np.lib.stride_tricks.sliding_window_view(x, AB_NFFT)[:: AB_NFFT // 2]
    power = np.mean(np.abs(np.fft.rfft(frames * np.hanning(AB_NFFT), axis=-1)) ** 2, axis=0)
    top = min(BAND_HI_HZ, rate / 2.0)
    n_bands = max(1, math.ceil(BANDS_PER_OCTAVE * math.log2(top / BAND_LO_HZ)))
    edges = BAND_LO_HZ * 2.0 ** (np.arange(n_bands + 1) / BANDS_PER_OCTAVE)
    bins = np.unique(np.clip(np.round(np.minimum(edges, top) * AB_NFFT / rate).astype(int), 1, AB_NFFT // 2))
    csum = np.concatenate([[0.0], np.cumsum(power)])
    return 10.0 * np.log10(csum[bins[1:]] - csum[bins[:-1]] + 1e-20)


def ab_distance_db(target: np.ndarray, matched: np.ndarray, rate: int) -> float | None:
    """How far B sounds from A in tone (dB, see DISTANCE_SCALE); None when either is silent or too short."""
    n = min(np.size(target), np.size(matched))
    if n < AB_NFFT or rate <= 2 * BAND_LO_HZ:
        return None
    t = np.asarray(target).reshape(-1)[-n:]
    m = np.asarray(matched).reshape(-1)[-n:]
    if not (rms_dbfs(t) >= SILENT_DBFS and rms_dbfs(m) >= SILENT_DBFS):  # silent, or NaN/Inf samples
        return None
    lt, lm = band_levels_db(t, rate), band_levels_db(m, rate)
    lm = lm + 10.0 * math.log10(np.sum(10.0 ** (lt / 10)) / np.sum(10.0 ** (lm / 10)))  # at A's loudness
    floor = max(lt.max(), lm.max()) - MASK_DB
    diff = np.maximum(lt, floor) - np.maximum(lm, floor)
    return float(np.sqrt(np.mean(diff**2)))


def describe_distance(db: float) -> tuple[str, str]:
    """The A↔B distance (dB) in words a musician reads and its colour: very close, close, noticeable or far."""
    for bound, word, colour in DISTANCE_SCALE:
        if db < bound:
            return word, colour
    return DISTANCE_SCALE[-1][1], DISTANCE_SCALE[-1][2]


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
        caption.setStyleSheet(theme.CAPTION_STYLE)
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
        self.distance.setToolTip(DISTANCE_TIP)
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
        """Show how far B sounds from A: the word (coloured) and the dB behind it (None: not available)."""
        if db is None or not math.isfinite(db):
            self.distance.setText("A↔B  –")
        else:
            word, colour = describe_distance(db)
            self.distance.setText(f"A↔B  <span style='color:{colour}'>{word}</span>"
                                  f"  <span style='color:{theme.DIM}'>{db:.1f} dB</span>")


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
        label.setStyleSheet(theme.CAPTION_STYLE)
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
        best = chain_label(p.best_chain)
        self.note.setText(f"stage {p.stage}/{p.stages}, {p.seconds:.0f} s: best so far {best} "
                          f"({100 * p.best_relative:.0f} % of no effect)")
