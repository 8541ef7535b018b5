"""A painted rotary knob for one effect parameter, in the parameter's units and scale, with a glide."""

from __future__ import annotations

import math

from PyQt6 import QtCore, QtGui, QtWidgets

from fxmatch.effects.spec import ParamSpec
from gui import theme

_UNIT_SUFFIXES = ("_db", "_ms", "_hz", "_seconds", "_s")
ARC_DEGREES = 270.0
#: time constant of the glide towards a new value (seconds)
GLIDE_TAU_S = 0.12


def param_label(name: str) -> str:
    """A short readable label for a pedalboard parameter name ('cutoff_frequency_hz' -> 'Cutoff')."""
    base = name
    for suffix in _UNIT_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    words = base.replace("_", " ").strip()
    if len(words) > 10:
        words = words.split()[0]
    return words[:1].upper() + words[1:]


def format_value(value: float, unit: str) -> str:
    """A value with its unit for a knob readout ('1.20 kHz', '-18.0 dB', '0.35 s', '4.0:1' for ratios)."""
    if not math.isfinite(value):
        return "–"
    if unit == "Hz" and abs(value) >= 1000:
        return f"{value / 1000:.2f} kHz"
    a = abs(value)
    digits = 0 if a >= 100 else 1 if a >= 10 else 2
    text = f"{value:.{digits}f}"
    return f"{text} {unit}" if unit else text


class Knob(QtWidgets.QWidget):
    """Rotary control of one parameter: drag vertically, wheel, arrow keys; double-click resets to the default.

    `set_value` (from the estimate) glides the needle; only user edits emit `valueEdited(units)`.
    """

    valueEdited = QtCore.pyqtSignal(float)

    def __init__(self, spec: ParamSpec, colour: str = theme.ACCENT, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.spec = spec
        self.colour = QtGui.QColor(colour)
        self._value = float(spec.default_value)
        self._shown = self._to_norm(self._value)
        self._drag: tuple[float, float] | None = None
        self.setFixedSize(74, 92)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        lo, hi = spec.valid_range
        self.setToolTip(f"{spec.name}: {lo:g} to {hi:g} {spec.unit} ({spec.scale}; the model was trained on "
                        f"{spec.minimum:g} to {spec.maximum:g})\n"
                        "drag or scroll to edit; shift for fine steps; double-click for the default")
        self.setAccessibleName(spec.name)

    # ----- value mapping (the spec's knob maths: pedalboard's limits, in the parameter's scale)
    def _to_norm(self, value: float) -> float:
        """Units -> [0, 1] knob position (clipped to the parameter's valid range)."""
        return self.spec.position(value)

    def _from_norm(self, norm: float) -> float:
        """[0, 1] knob position -> units."""
        return self.spec.value_at(norm)

    def value(self) -> float:
        """The value in units (the target of the glide)."""
        return self._value

    def shown_norm(self) -> float:
        """Where the needle is now, in [0, 1]."""
        return self._shown

    def set_value(self, value: float, animate: bool = True) -> None:
        """Show `value` (units): glide there when `animate`, else jump. Ignored while the user drags."""
        if self._drag is not None or not math.isfinite(value):
            return
        self._value = float(value)
        if not animate:
            self._shown = self._to_norm(self._value)
        self.update()

    def step(self, dt: float) -> bool:
        """Advance the glide by `dt` seconds; True when the needle moved."""
        target = self._to_norm(self._value)
        delta = target - self._shown
        if abs(delta) < 1e-4:
            if delta:
                self._shown = target
                self.update()
            return False
        self._shown += delta * (1.0 - math.exp(-max(dt, 0.0) / GLIDE_TAU_S))
        self.update()
        return True

    def _edit_norm(self, norm: float) -> None:
        norm = min(max(norm, 0.0), 1.0)
        self._shown = norm
        self._value = self._from_norm(norm)
        self.update()
        self.valueEdited.emit(self._value)

    # ----- interaction
    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:
        if event.button() == QtCore.Qt.MouseButton.LeftButton:
            self._drag = (event.position().y(), self._shown)
            event.accept()

    def mouseMoveEvent(self, event: QtGui.QMouseEvent) -> None:
        if self._drag is None:
            return
        y0, n0 = self._drag
        fine = event.modifiers() & QtCore.Qt.KeyboardModifier.ShiftModifier
        self._edit_norm(n0 + (y0 - event.position().y()) / (800.0 if fine else 160.0))

    def mouseReleaseEvent(self, event: QtGui.QMouseEvent) -> None:
        self._drag = None

    def mouseDoubleClickEvent(self, event: QtGui.QMouseEvent) -> None:
        self._drag = None
        self._edit_norm(self._to_norm(self.spec.default_value))

    def wheelEvent(self, event: QtGui.QWheelEvent) -> None:
        notches = event.angleDelta().y() / 120.0
        fine = event.modifiers() & QtCore.Qt.KeyboardModifier.ShiftModifier
        if notches:
            self._edit_norm(self._to_norm(self._value) + notches * (0.002 if fine else 0.02))
        event.accept()

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        k = event.key()
        if k in (QtCore.Qt.Key.Key_Up, QtCore.Qt.Key.Key_Right):
            self._edit_norm(self._to_norm(self._value) + 0.02)
        elif k in (QtCore.Qt.Key.Key_Down, QtCore.Qt.Key.Key_Left):
            self._edit_norm(self._to_norm(self._value) - 0.02)
        else:
            super().keyPressEvent(event)

    # ----- painting
    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        w = self.width()
        d = 50.0
        rect = QtCore.QRectF((w - d) / 2, 6, d, d)
        start = 225.0  # degrees, Qt counts counter-clockwise from 3 o'clock
        pen = QtGui.QPen(QtGui.QColor("#303542"), 5, cap=QtCore.Qt.PenCapStyle.RoundCap)
        p.setPen(pen)
        p.drawArc(rect, int(start * 16), int(-ARC_DEGREES * 16))
        pen.setColor(self.colour)
        p.setPen(pen)
        p.drawArc(rect, int(start * 16), int(-ARC_DEGREES * self._shown * 16))
        inner = rect.adjusted(8, 8, -8, -8)
        grad = QtGui.QRadialGradient(inner.center() - QtCore.QPointF(4, 4), inner.width())
        grad.setColorAt(0, QtGui.QColor("#3b4150"))
        grad.setColorAt(1, QtGui.QColor("#1d2027"))
        p.setPen(QtGui.QPen(QtGui.QColor("#11131a"), 1))
        p.setBrush(QtGui.QBrush(grad))
        p.drawEllipse(inner)
        angle = math.radians(start - ARC_DEGREES * self._shown)
        c = inner.center()
        r = inner.width() / 2 - 3
        tip = QtCore.QPointF(c.x() + r * math.cos(angle), c.y() - r * math.sin(angle))
        p.setPen(QtGui.QPen(QtGui.QColor(theme.TEXT), 2.5, cap=QtCore.Qt.PenCapStyle.RoundCap))
        p.drawLine(c + (tip - c) * 0.35, tip)
        font = p.font()
        font.setPointSizeF(8.5)
        p.setFont(font)
        p.setPen(QtGui.QColor(theme.TEXT))
        p.drawText(QtCore.QRectF(0, 58, w, 16), QtCore.Qt.AlignmentFlag.AlignCenter,
                   format_value(self._value, self.spec.unit))
        p.setPen(QtGui.QColor(theme.DIM))
        p.drawText(QtCore.QRectF(0, 74, w, 16), QtCore.Qt.AlignmentFlag.AlignCenter, param_label(self.spec.name))
        if self.hasFocus():
            p.setPen(QtGui.QPen(self.colour, 1, QtCore.Qt.PenStyle.DotLine))
            p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(QtCore.QRectF(1, 1, w - 2, self.height() - 2), 4, 4)
        p.end()
