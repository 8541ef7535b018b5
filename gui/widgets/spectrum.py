"""Spectrum (target vs matched, log frequency, dB) and a scrolling spectrogram, drawn with pyqtgraph.

The only signal processing here is for display: a Hann-windowed FFT summed into log-spaced bands.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui

from gui import theme

DB_FLOOR = -100.0


class BandAnalyser:
    """Power in log-spaced bands of the last `n_fft` samples, in dBFS (a full-scale sine in one band reads 0 dB)."""

    def __init__(self, sample_rate: int, n_fft: int = 4096, n_bands: int = 160, f_min: float = 30.0):
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.window = np.hanning(self.n_fft).astype(np.float32)
        self._norm = (self.window.sum() / 2.0) ** 2
        nyq = self.sample_rate / 2.0
        edges_hz = np.geomspace(f_min, nyq * 0.999, n_bands + 1)
        bins = np.unique(np.clip(np.round(edges_hz * self.n_fft / self.sample_rate).astype(int), 1,
                                 self.n_fft // 2))
        self._starts = bins[:-1]
        self._ends = bins[1:]
        #: band centre frequencies (Hz), shape [n_bands_effective]
        self.freqs = np.sqrt(self._starts * self._ends) * self.sample_rate / self.n_fft

    @property
    def n_bands(self) -> int:
        return int(self.freqs.size)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """dBFS per band of mono `x` (its last n_fft samples, zero-padded at the front when shorter)."""
        x = np.asarray(x, dtype=np.float32).reshape(-1)[-self.n_fft:]
        if x.size < self.n_fft:
            x = np.concatenate([np.zeros(self.n_fft - x.size, np.float32), x])
        power = np.abs(np.fft.rfft(x * self.window)) ** 2 / self._norm
        csum = np.concatenate([[0.0], np.cumsum(power, dtype=np.float64)])
        band = csum[self._ends] - csum[self._starts]
        return (10.0 * np.log10(np.maximum(band, 1e-12))).astype(np.float32).clip(DB_FLOOR, 12.0)


def _freq_ticks(log_axis: bool = True) -> list[list[tuple[float, str]]]:
    major = [50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000]
    label = {50: "50", 100: "100", 200: "200", 500: "500", 1000: "1k", 2000: "2k", 5000: "5k", 10000: "10k",
             20000: "20k"}
    return [[(math.log10(f) if log_axis else f, label[f]) for f in major]]


class SpectrumView(pg.PlotWidget):
    """Target (A) and matched (B) spectra overlaid; `set_spectra` updates the existing curves (setData)."""

    SMOOTH_TAU_S = 0.15

    def __init__(self, parent=None):
        super().__init__(parent=parent)
        self.setMenuEnabled(False)
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.setLogMode(x=True, y=False)
        self.setYRange(-90, 0, padding=0)
        self.setXRange(math.log10(30), math.log10(20000), padding=0)
        self.showGrid(x=True, y=True, alpha=0.12)
        self.getAxis("bottom").setTicks(_freq_ticks())
        self.getAxis("left").setWidth(34)
        self.setLabel("left", "dB")
        legend = self.addLegend(offset=(-8, 6), labelTextColor=theme.TEXT)
        legend.setBrush(pg.mkBrush(theme.PANEL + "c0"))
        self.target_curve = self.plot([], [], pen=pg.mkPen(theme.A_COLOUR, width=2), name="A  target",
                                      fillLevel=-100, brush=pg.mkBrush(QtGui.QColor(255, 122, 89, 40)))
        self.matched_curve = self.plot([], [], pen=pg.mkPen(theme.B_COLOUR, width=2), name="B  matched")
        self._state: dict[str, np.ndarray] = {}

    def _smooth(self, key: str, db: np.ndarray, dt: float) -> np.ndarray:
        prev = self._state.get(key)
        if prev is None or prev.shape != db.shape:
            self._state[key] = db.copy()
        else:
            a = 1.0 - math.exp(-max(dt, 1e-3) / self.SMOOTH_TAU_S)
            # fast attack, smoothed release
            self._state[key] = np.where(db > prev, db, prev + a * (db - prev))
        return self._state[key]

    def set_spectra(self, freqs: np.ndarray, target_db: np.ndarray | None, matched_db: np.ndarray | None,
                    dt: float = 1 / 30) -> None:
        """Show the spectra (dB per band at `freqs` Hz); None hides a curve."""
        for key, curve, db in (("t", self.target_curve, target_db), ("m", self.matched_curve, matched_db)):
            if db is None:
                curve.setData([], [])
                self._state.pop(key, None)
            else:
                curve.setData(freqs, self._smooth(key, db, dt))


class SpectrogramView(pg.PlotWidget):
    """Scrolling spectrogram (log frequency rows, `seconds` of history); `push` adds one column."""

    def __init__(self, freqs: np.ndarray, columns: int = 240, seconds: float = 8.0, parent=None):
        super().__init__(parent=parent)
        self.setMenuEnabled(False)
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("inferno"))
        self.addItem(self.image)
        self.getAxis("left").setTicks(_freq_ticks())
        self.getAxis("left").setWidth(34)
        self.getAxis("bottom").setLabel("s")
        self.seconds = float(seconds)
        self._due = 0.0
        self.reset(freqs, columns)

    def reset(self, freqs: np.ndarray, columns: int | None = None) -> None:
        """Start over with band centre frequencies `freqs` (Hz)."""
        cols = columns or self.data.shape[1]
        self.freqs = np.asarray(freqs, dtype=np.float64)
        self.data = np.full((self.freqs.size, cols), DB_FLOOR, dtype=np.float32)
        lo, hi = math.log10(self.freqs[0]), math.log10(self.freqs[-1])
        self.image.setImage(self.data, autoLevels=False, levels=(-90.0, -10.0))
        self.image.setRect(QtCore.QRectF(-self.seconds, lo, self.seconds, hi - lo))
        self.setXRange(-self.seconds, 0, padding=0)
        self.setYRange(lo, hi, padding=0)

    @property
    def column_s(self) -> float:
        """Time per column (s)."""
        return self.seconds / self.data.shape[1]

    def advance(self, dt: float, column_db: np.ndarray) -> int:
        """Push `column_db` as many times as `dt` seconds of scrolling need (the time axis stays true)."""
        self._due += dt
        n = min(int(self._due / self.column_s), self.data.shape[1])
        self._due -= n * self.column_s
        if n and column_db.shape[0] == self.data.shape[0]:
            self.data[:, :-n] = self.data[:, n:]
            self.data[:, -n:] = column_db[:, None]
            self.image.setImage(self.data, autoLevels=False)
        return n

    def push(self, column_db: np.ndarray) -> None:
        """Scroll left by one column and draw `column_db` (dB per band) at the right edge."""
        if column_db.shape[0] != self.data.shape[0]:
            return
        self.data[:, :-1] = self.data[:, 1:]
        self.data[:, -1] = column_db
        self.image.setImage(self.data, autoLevels=False)
