"""Level meters (dBFS) with peak hold and latched clip indicators, painted (cheap at any frame rate)."""

from __future__ import annotations

import math
import time

from PyQt6 import QtCore, QtGui, QtWidgets

from gui import theme

FLOOR_DB = -60.0
RELEASE_DB_PER_S = 24.0
PEAK_HOLD_S = 1.5
CLIP_HOLD_S = 2.0


class LevelMeter(QtWidgets.QWidget):
    """A vertical meter from -60 to 0 dBFS: fast attack, 24 dB/s release, peak hold, clip LED (click to clear)."""

    def __init__(self, label: str, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.label = label
        self.level_db = -math.inf
        self.peak_db = -math.inf
        self.clip = False
        self._shown = FLOOR_DB
        self._peak_t = 0.0
        self._clip_t = 0.0
        self._last = time.monotonic()
        self.setFixedWidth(34)
        self.setMinimumHeight(120)
        self.setToolTip(f"{label} level (dBFS); the red light latches on clipping, click to clear")

    def set_level(self, db: float, clip: bool = False, now: float | None = None) -> None:
        """Feed the latest level (dBFS, -inf for silence) and clip flag."""
        now = time.monotonic() if now is None else now
        dt = max(0.0, now - self._last)
        self._last = now
        db = db if math.isfinite(db) else -math.inf
        self.level_db = db
        target = max(FLOOR_DB, min(0.0, db)) if math.isfinite(db) else FLOOR_DB
        self._shown = target if target >= self._shown else max(target, self._shown - RELEASE_DB_PER_S * dt)
        if db >= self.peak_db or now - self._peak_t > PEAK_HOLD_S:
            self.peak_db, self._peak_t = db, now
        if clip:
            self.clip, self._clip_t = True, now
        elif self.clip and now - self._clip_t > CLIP_HOLD_S:
            self.clip = False
        self.update()

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:
        self.clip = False
        self.peak_db = -math.inf
        self.update()

    @staticmethod
    def _frac(db: float) -> float:
        if not math.isfinite(db):
            return 0.0
        return min(1.0, max(0.0, (db - FLOOR_DB) / -FLOOR_DB))

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        led_h, label_h = 10, 16
        bar = QtCore.QRectF(9, led_h + 6, w - 18, h - led_h - label_h - 10)
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        p.setBrush(QtGui.QColor("#0d0f13"))
        p.drawRoundedRect(bar.adjusted(-2, -2, 2, 2), 3, 3)
        frac = self._frac(self._shown)
        if frac > 0:
            grad = QtGui.QLinearGradient(bar.bottomLeft(), bar.topLeft())
            grad.setColorAt(0.0, QtGui.QColor("#2e8b57"))
            grad.setColorAt(0.7, QtGui.QColor(theme.OK))
            grad.setColorAt(0.85, QtGui.QColor(theme.WARN))
            grad.setColorAt(1.0, QtGui.QColor(theme.BAD))
            fill = QtCore.QRectF(bar.left(), bar.bottom() - frac * bar.height(), bar.width(), frac * bar.height())
            p.setBrush(QtGui.QBrush(grad))
            p.drawRect(fill)
        pk = self._frac(self.peak_db)
        if pk > 0:
            y = bar.bottom() - pk * bar.height()
            p.setPen(QtGui.QPen(QtGui.QColor(theme.TEXT), 1.5))
            p.drawLine(QtCore.QPointF(bar.left(), y), QtCore.QPointF(bar.right(), y))
        p.setPen(QtGui.QPen(QtGui.QColor("#3a3f4c"), 1))
        for db in (-6, -12, -24, -48):
            y = bar.bottom() - self._frac(db) * bar.height()
            p.drawLine(QtCore.QPointF(bar.right() + 1, y), QtCore.QPointF(bar.right() + 4, y))
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        p.setBrush(QtGui.QColor(theme.BAD if self.clip else "#3a1f22"))
        p.drawRoundedRect(QtCore.QRectF(9, 2, w - 18, led_h), 2, 2)
        font = p.font()
        font.setPointSizeF(7.5)
        p.setFont(font)
        p.setPen(QtGui.QColor(theme.DIM))
        p.drawText(QtCore.QRectF(0, h - label_h, w, label_h), QtCore.Qt.AlignmentFlag.AlignCenter, self.label)
        p.end()


class MetersPanel(QtWidgets.QWidget):
    """Dry in, target in and output meters side by side, fed from an engine `Levels`."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        self.dry = LevelMeter("DRY")
        self.target = LevelMeter("TGT")
        self.output = LevelMeter("OUT")
        for m in (self.dry, self.target, self.output):
            lay.addWidget(m)

    def set_levels(self, levels, now: float | None = None) -> None:
        """Update from a Levels-like object (dry_db, target_db, output_db and *_clip flags)."""
        self.dry.set_level(levels.dry_db, levels.dry_clip, now)
        self.target.set_level(levels.target_db, levels.target_clip, now)
        self.output.set_level(levels.output_db, levels.output_clip, now)
