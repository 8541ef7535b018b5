"""Audio set-up: mode, devices, rate, block size, channel mapping, target file and model (drag and drop)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from PyQt6 import QtCore, QtGui, QtWidgets

from gui import theme

log = logging.getLogger(__name__)

MODES = (("capture", "Capture (dry + target inputs)"), ("reference", "Reference file (dry input)"),
         ("analyse", "Analyse only (target input)"))
RATES = (None, 44100, 48000, 88200, 96000)
BLOCKS = (64, 128, 256, 512, 1024, 2048)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")


def list_devices() -> tuple[list[dict[str, Any]], str | None]:
    """sounddevice's devices as dicts with an `index` and `label`, and an error line when PortAudio fails."""
    try:
        import sounddevice as sd

        apis = sd.query_hostapis()
        out = []
        for i, d in enumerate(sd.query_devices()):
            api = apis[d["hostapi"]]["name"] if d["hostapi"] < len(apis) else "?"
            out.append({"index": i, "name": d["name"], "hostapi": api, "label": f"{d['name']}  ({api})",
                        "inputs": int(d["max_input_channels"]), "outputs": int(d["max_output_channels"]),
                        "default_rate": float(d["default_samplerate"])})
        return out, None
    except Exception as exc:  # noqa: BLE001 - PortAudio missing or broken: the panel says so
        return [], f"cannot list audio devices: {type(exc).__name__}: {exc}".splitlines()[0]


def absolute(path: str | None) -> str:
    """`path` made absolute (settings outlive the folder the app was started from); '' for none."""
    return os.path.abspath(os.path.expanduser(path)) if path else ""


def elide_path(path: str, metrics: QtGui.QFontMetrics, width: int) -> str:
    """`path` shortened to `width` pixels: the whole file name and as much of the folder's start as fits
    ('/home/me/…/take.wav'); the file name itself elided in the middle only when even that does not fit."""
    if metrics.horizontalAdvance(path) <= width:
        return path
    head, name = os.path.split(path)
    tail = "…" + os.sep + name
    if metrics.horizontalAdvance(tail) > width:
        return metrics.elidedText(name, QtCore.Qt.TextElideMode.ElideMiddle, width)
    keep = 0
    while keep < len(head) and metrics.horizontalAdvance(head[: keep + 1] + tail) <= width:
        keep += 1
    return head[:keep] + tail


class FileDropLineEdit(QtWidgets.QLineEdit):
    """A path field that accepts a dropped file (any of `suffixes`).

    Without focus a path too long for the field is shown shortened (`elide_path`: the file name stays whole, the
    folder is cut in the middle; the whole path is the tooltip); with focus it shows the whole path for editing. `text()` and
    `setText()` always mean the whole path; `shown_text()` is what the field displays.
    """

    fileDropped = QtCore.pyqtSignal(str)

    def __init__(self, suffixes: tuple[str, ...], placeholder: str, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.suffixes = suffixes
        self._full = ""
        self.setPlaceholderText(placeholder)
        self.setAcceptDrops(True)
        self.textChanged.connect(self._typed)

    def text(self) -> str:  # type: ignore[override]
        """The whole path (whatever is displayed)."""
        return self._full

    def setText(self, text: str | None) -> None:  # type: ignore[override]
        """Set the whole path."""
        self._full = text or ""
        self.setToolTip(self._full)
        self._display()

    def shown_text(self) -> str:
        """What the field displays now (elided without focus)."""
        return super().text()

    def text_width(self) -> int:
        """Pixels available to the displayed text."""
        opt = QtWidgets.QStyleOptionFrame()
        self.initStyleOption(opt)
        rect = self.style().subElementRect(QtWidgets.QStyle.SubElement.SE_LineEditContents, opt, self)
        margins = self.textMargins()
        return max(0, rect.width() - margins.left() - margins.right() - 4)  # QLineEdit's own 2 px each side

    def _typed(self, text: str) -> None:
        if self.hasFocus():
            self._full = text
            self.setToolTip(text)

    def _display(self) -> None:
        shown = self._full
        if not self.hasFocus():
            shown = elide_path(self._full, self.fontMetrics(), self.text_width())
        if super().text() != shown:
            super().setText(shown)
            if not self.hasFocus():
                self.setCursorPosition(0)

    def focusInEvent(self, event: QtGui.QFocusEvent) -> None:
        super().focusInEvent(event)
        self._display()

    def focusOutEvent(self, event: QtGui.QFocusEvent) -> None:
        super().focusOutEvent(event)
        self._display()

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        super().resizeEvent(event)
        self._display()

    def _path(self, event: QtGui.QDropEvent | QtGui.QDragEnterEvent) -> str | None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        for u in urls:
            if u.isLocalFile() and u.toLocalFile().lower().endswith(self.suffixes):
                return u.toLocalFile()
        return None

    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:
        if self._path(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QtGui.QDragMoveEvent) -> None:
        event.acceptProposedAction() if self._path(event) else event.ignore()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:
        path = self._path(event)
        if path:
            self.setText(path)
            self.fileDropped.emit(path)
            event.acceptProposedAction()


class SetupPanel(QtWidgets.QFrame):
    """The audio set-up form with the Start/Stop button and a one-line error banner (never a dialog)."""

    startToggled = QtCore.pyqtSignal(bool)

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("panel")
        self.setFixedWidth(330)
        self._devices: list[dict[str, Any]] = []
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(12, 12, 12, 12)
        lay.setSpacing(8)
        title = QtWidgets.QLabel("AUDIO SET-UP")
        title.setStyleSheet(theme.CAPTION_STYLE)
        lay.addWidget(title)
        form = QtWidgets.QFormLayout()
        form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignLeft)
        form.setHorizontalSpacing(8)
        form.setVerticalSpacing(6)
        self.mode = QtWidgets.QComboBox()
        for key, text in MODES:
            self.mode.addItem(text, key)
        self.input_device = QtWidgets.QComboBox()
        self.output_device = QtWidgets.QComboBox()
        for combo in (self.input_device, self.output_device):
            combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)
        self.rescan = QtWidgets.QToolButton()
        self.rescan.setText("↻")
        self.rescan.setToolTip("list the audio devices again")
        self.rescan.clicked.connect(self.refresh_devices)
        in_row = QtWidgets.QHBoxLayout()
        in_row.addWidget(self.input_device, 1)
        in_row.addWidget(self.rescan)
        self.sample_rate = QtWidgets.QComboBox()
        for r in RATES:
            self.sample_rate.addItem("device default" if r is None else f"{r} Hz", r)
        self.block = QtWidgets.QComboBox()
        for b in BLOCKS:
            self.block.addItem(f"{b} frames", b)
        self.dry_channel = QtWidgets.QSpinBox()
        self.target_channel = QtWidgets.QSpinBox()
        for spin in (self.dry_channel, self.target_channel):
            spin.setRange(1, 64)
        chan_row = QtWidgets.QHBoxLayout()
        chan_row.addWidget(QtWidgets.QLabel("dry"))
        chan_row.addWidget(self.dry_channel)
        chan_row.addSpacing(6)
        chan_row.addWidget(QtWidgets.QLabel("target"))
        chan_row.addWidget(self.target_channel)
        self.target_file = FileDropLineEdit(AUDIO_SUFFIXES, "drop a processed recording here")
        self.browse_target = QtWidgets.QToolButton()
        self.browse_target.setText("…")
        self.browse_target.clicked.connect(self._browse_target)
        tf_row = QtWidgets.QHBoxLayout()
        tf_row.addWidget(self.target_file, 1)
        tf_row.addWidget(self.browse_target)
        self.model = FileDropLineEdit((".onnx",), "exported fxmatch model (.onnx)")
        self.browse_model = QtWidgets.QToolButton()
        self.browse_model.setText("…")
        self.browse_model.clicked.connect(self._browse_model)
        m_row = QtWidgets.QHBoxLayout()
        m_row.addWidget(self.model, 1)
        m_row.addWidget(self.browse_model)
        form.addRow("Mode", self.mode)
        form.addRow("Input", in_row)
        form.addRow("Output", self.output_device)
        form.addRow("Rate", self.sample_rate)
        form.addRow("Block", self.block)
        form.addRow("Channels", chan_row)
        form.addRow("Target", tf_row)
        form.addRow("Model", m_row)
        self._form = form
        lay.addLayout(form)
        self.start = QtWidgets.QPushButton("▶  Start")
        self.start.setObjectName("start")
        self.start.setCheckable(True)
        self.start.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.start.toggled.connect(self._on_start)
        lay.addWidget(self.start)
        self.error = QtWidgets.QLabel("")
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        self.error.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.error)
        self.hint = QtWidgets.QLabel("")
        self.hint.setObjectName("dim")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet(f"color: {theme.DIM}; font-size: 9pt;")
        lay.addWidget(self.hint)
        lay.addStretch(1)
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.refresh_devices()
        self._mode_changed()

    # ----- devices
    def refresh_devices(self) -> None:
        """List the devices again, keeping the current choices when they still exist."""
        keep_in, keep_out = self.device_name(self.input_device), self.device_name(self.output_device)
        self._devices, err = list_devices()
        for combo, kind, keep in ((self.input_device, "inputs", keep_in), (self.output_device, "outputs", keep_out)):
            combo.blockSignals(True)
            combo.clear()
            combo.addItem("system default", None)
            for d in self._devices:
                if d[kind] > 0:
                    combo.addItem(d["label"], d["index"])
                    combo.setItemData(combo.count() - 1, f"{d[kind]} ch, {d['default_rate']:.0f} Hz default",
                                      QtCore.Qt.ItemDataRole.ToolTipRole)
            combo.blockSignals(False)
            if keep:
                self.select_device(combo, keep)
        if err:
            self.show_error(err)

    @staticmethod
    def device_name(combo: QtWidgets.QComboBox) -> str | None:
        """Label of the chosen device (None for the system default)."""
        return None if combo.currentData() is None else combo.currentText()

    @staticmethod
    def select_device(combo: QtWidgets.QComboBox, label: str | None) -> bool:
        """Choose the device with this label (or the default for None); False when it is not listed."""
        if label is None:
            combo.setCurrentIndex(0)
            return True
        i = combo.findText(label)
        if i >= 0:
            combo.setCurrentIndex(i)
        return i >= 0

    def select_device_index(self, combo: QtWidgets.QComboBox, index: int | None) -> bool:
        """Choose the device with sounddevice index `index`; False when it is not listed."""
        i = combo.findData(index)
        if i >= 0:
            combo.setCurrentIndex(i)
        return i >= 0

    # ----- mode
    def current_mode(self) -> str:
        return str(self.mode.currentData())

    def set_mode(self, mode: str) -> None:
        i = self.mode.findData(mode)
        if i >= 0:
            self.mode.setCurrentIndex(i)

    def _mode_changed(self) -> None:
        mode = self.current_mode()
        self.dry_channel.setEnabled(mode in ("capture", "reference"))
        self.target_channel.setEnabled(mode in ("capture", "analyse"))
        self.target_file.setEnabled(mode == "reference")
        self.browse_target.setEnabled(mode == "reference")
        self.hint.setText({
            "capture": "Dry and target come from two input channels (e.g. a pedal's input and output). "
                       "B plays the dry input through the estimated chain.",
            "reference": "The target file plays in a loop (A); play your instrument into the dry input to hear "
                         "it through the estimated chain (B).",
            "analyse": "Only estimates the target input's chain; nothing is played through it.",
        }[mode])

    # ----- config
    def values(self) -> dict[str, Any]:
        """The form as EngineConfig keyword arguments (channels 0-based; model as `model_path`)."""
        return {
            "model_path": self.model.text().strip(),
            "mode": self.current_mode(),
            "input_device": self.input_device.currentData(),
            "output_device": self.output_device.currentData(),
            "sample_rate": self.sample_rate.currentData(),
            "block_frames": int(self.block.currentData()),
            "dry_channel": self.dry_channel.value() - 1,
            "target_channel": self.target_channel.value() - 1,
            "target_file": self.target_file.text().strip() or None,
        }

    def _browse_target(self) -> None:
        start = str(Path(self.target_file.text()).parent) if self.target_file.text() else ""
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Target recording", start, "Audio (" + " ".join("*" + s for s in AUDIO_SUFFIXES) + ")")
        if path:
            self.target_file.setText(path)

    def _browse_model(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "fxmatch model", self.model.text(), "ONNX (*.onnx)")
        if path:
            self.model.setText(path)

    # ----- state
    def _on_start(self, checked: bool) -> None:
        self.start.setText("■  Stop" if checked else "▶  Start")
        self.startToggled.emit(checked)

    def set_running(self, running: bool) -> None:
        """Reflect the engine state: the form is locked while running (no signal emitted)."""
        self.start.blockSignals(True)
        self.start.setChecked(running)
        self.start.setText("■  Stop" if running else "▶  Start")
        self.start.blockSignals(False)
        for w in (self.mode, self.input_device, self.output_device, self.sample_rate, self.block, self.rescan,
                  self.model, self.browse_model):
            w.setEnabled(not running)
        if running:
            for w in (self.dry_channel, self.target_channel, self.target_file, self.browse_target):
                w.setEnabled(False)
        else:
            self._mode_changed()

    def show_error(self, text: str | None) -> None:
        """Show one error line in the panel (None or '' hides it)."""
        self.error.setText(text or "")
        self.error.setVisible(bool(text))

    def error_text(self) -> str:
        return self.error.text() if self.error.isVisible() or self.error.text() else ""

    # ----- settings
    def save(self, settings) -> None:
        """Write the form to an AppSettings."""
        v = self.values()
        settings.set("mode", v["mode"])
        settings.set("input_device", self.device_name(self.input_device) or "")
        settings.set("output_device", self.device_name(self.output_device) or "")
        settings.set("sample_rate", v["sample_rate"] or 0)
        settings.set("block_frames", v["block_frames"])
        settings.set("dry_channel", v["dry_channel"] + 1)
        settings.set("target_channel", v["target_channel"] + 1)
        settings.set("target_file", absolute(v["target_file"]))
        settings.set("model_path", absolute(v["model_path"]))

    def restore(self, settings) -> None:
        """Fill the form from an AppSettings (missing devices fall back to the default)."""
        self.set_mode(settings.get_str("mode", "reference"))
        self.select_device(self.input_device, settings.get_str("input_device", "") or None)
        self.select_device(self.output_device, settings.get_str("output_device", "") or None)
        rate = settings.get_int("sample_rate", 0) or None
        i = self.sample_rate.findData(rate)
        self.sample_rate.setCurrentIndex(max(0, i))
        i = self.block.findData(settings.get_int("block_frames", 256))
        self.block.setCurrentIndex(i if i >= 0 else self.block.findData(256))
        self.dry_channel.setValue(settings.get_int("dry_channel", 1))
        self.target_channel.setValue(settings.get_int("target_channel", 2))
        self.target_file.setText(settings.get_str("target_file", ""))
        model = settings.get_str("model_path", "")
        if model and not self.model.text():
            self.model.setText(model)
