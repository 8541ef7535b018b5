"""The main window: set-up, the chain, displays, A/B, refine, the chain search, presets and status over the live
engine.

The engine runs in its own process (realtime.remote.RemoteEngine) so that painting, pyqtgraph and the spectra's
FFTs never hold the audio callback's GIL; `in_process=True` (`fxmatch app --in-process`) uses a
realtime.engine.LiveEngine in this process instead (same API). The window polls the engine on QTimers (frames at
`fps`, status at 4 Hz) and updates existing widgets; the audio and the callback counters it reads come from shared
memory. Every engine error is shown in the window (banner or dialog), never raised. Refine runs in a thread of
this process (a few Adam steps); the chain search (`fxmatch.capture`, tens of seconds of CPU) runs in a process of
its own (gui.workers.CaptureWorker), neither in this thread nor in the engine's process.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6 import QtCore, QtGui, QtWidgets

from fxmatch.chains import with_output_level
from fxmatch.errors import FxmatchInputError
from gui import theme
from gui.jobs import BackgroundJob, Offer
from gui.settings import AppSettings
from gui.widgets.ab_panel import AB_SECONDS, ABPanel, CapturePanel, RefinePanel, ab_distance_db
from gui.widgets.chain_view import PRESS_START, ChainData, ChainHeader, ChainView, chain_label, playing_state
from gui.widgets.match_panel import MatchPanel
from gui.widgets.meters import MetersPanel
from gui.widgets.setup_panel import SetupPanel, absolute
from gui.widgets.spectrum import BandAnalyser, SpectrogramView, SpectrumView
from gui.workers import CaptureWorker, RefineWorker

log = logging.getLogger(__name__)

SPECTRUM_FFT = 4096
SPECTROGRAM_SOURCES = ("target", "matched", "dry", "output")
REFINE_SECONDS = 3.0
REFINE_STEPS = 40
#: the chain search: seconds of recent dry and target it hears, the model's most likely chains it fits (with their
#: sub-chains), and its time budget (s)
CAPTURE_SECONDS = 4.0
CAPTURE_K = 16
CAPTURE_BUDGET_S = 45.0
#: Match my tone: the last seconds of the player's dry input and of the record's loop it fits on, its time budget (s)
MATCH_SECONDS = 6.0
MATCH_BUDGET_S = 45.0
#: the task panels' (refine, search, match) narrowest width (px): the window fits 1440 px with all three
TASK_PANEL_MIN_WIDTH = 180
EDIT_COALESCE_MS = 40
#: seconds of target the chain area looks at to say that the target is silent
SILENT_LOOK_S = 1.0


def model_problem(path: str) -> str | None:
    """Why `path` cannot serve as the app's model (None when it loads: an fxmatch ONNX model with its metadata)."""
    if not os.path.isabs(path):
        return f"{path}: a relative path (it depends on the folder the app starts from)"
    try:
        from fxmatch.inference import EstimatorSession

        EstimatorSession(path, providers="cpu", threads=1)
    except FxmatchInputError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - whatever onnxruntime raises: the model is not usable
        return f"{path}: {type(exc).__name__}: {exc}".splitlines()[0]
    return None


def _round_chain(chain: Sequence[tuple[str, Mapping[str, float]]]) -> ChainData:
    return [(n, {k: float(v) for k, v in p.items()}) for n, p in chain]


def _chain_key(chain: Sequence[tuple[str, Mapping[str, float]]]) -> tuple:
    return tuple((n, tuple(sorted((k, round(float(v), 6)) for k, v in p.items()))) for n, p in chain)


class MainWindow(QtWidgets.QMainWindow):
    """fxmatch's desktop app window. `engine_options` are extra EngineConfig fields (hop_seconds, providers, ...);
    `in_process` runs the engine in this process (LiveEngine) instead of its own (RemoteEngine).

    `model_path` (made absolute) is the model to use; without it the remembered one when it still loads (else it
    is dropped from the settings with a message in the set-up panel), else the shipped model.
    """

    def __init__(self, settings: AppSettings | None = None, model_path: str | None = None,
                 engine_options: Mapping[str, Any] | None = None, fps: float = 40.0,
                 parent: QtWidgets.QWidget | None = None, in_process: bool = False):
        super().__init__(parent)
        self.settings = settings or AppSettings()
        self.in_process = bool(in_process)
        self.engine_options = dict(engine_options or {})
        self.engine = None
        #: the background jobs (gui.jobs.BackgroundJob): one worker each at a time, one set of handlers for all
        self.refine_job = BackgroundJob("refine", self._refine_done, lambda: self._update_refine_enabled(note=False),
                                        self)
        self.capture_job = BackgroundJob("search", self._capture_done, self._capture_finished, self)
        self.match_job = BackgroundJob("match", self._match_done, self._match_finished, self)
        #: the last search's result (fxmatch.capture.CaptureResult); the last tone match's (fxmatch.match.MatchResult)
        self.capture_result = None
        self.match_result = None
        #: why the playing chain plays (gui.widgets.chain_view.SOURCES), said above the cards
        self.playing_source = "estimate"
        self.last_dialog: QtWidgets.QMessageBox | None = None
        self.refine_report: dict[str, Any] | None = None
        self._estimate = None
        self._est_seq = -1
        self._shown_key: tuple | None = None
        self._manual_chain: ChainData | None = None  # chain chosen while stopped (applied on start)
        self._pending_edit: ChainData | None = None
        self._ab = "matched"
        self._analyser: BandAnalyser | None = None
        self._last_tick = time.perf_counter()
        self._tick_count = 0
        self.frame_ms: collections.deque[float] = collections.deque(maxlen=4000)
        self.first_frame_at: float | None = None

        self.setWindowTitle("fxmatch")
        self.setAcceptDrops(True)
        self._build()
        self.setup.restore(self.settings)
        self.model_note: str | None = None
        if model_path:
            self.setup.model.setText(absolute(str(model_path)))
        else:
            self._choose_model()
        geometry = self.settings.get_bytes("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1360, 860)
        self._edit_timer = QtCore.QTimer(self)
        self._edit_timer.setSingleShot(True)
        self._edit_timer.setInterval(EDIT_COALESCE_MS)
        self._edit_timer.timeout.connect(self._flush_edit)
        self.frame_timer = QtCore.QTimer(self)
        self.frame_timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.frame_timer.setInterval(max(1, int(1000 / fps)))
        self.frame_timer.timeout.connect(self.tick)
        self.status_timer = QtCore.QTimer(self)
        self.status_timer.setInterval(250)
        self.status_timer.timeout.connect(self.update_status)
        self.frame_timer.start()
        self.status_timer.start()
        self.update_status()

    # ------------------------------------------------------------------------------------------------ layout
    def _build(self) -> None:
        tb = self.addToolBar("main")
        tb.setMovable(False)
        tb.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.act_load = tb.addAction("Load preset…", self._load_preset_dialog)
        self.act_load.setShortcut(QtGui.QKeySequence("Ctrl+O"))
        self.act_export = tb.addAction("Export preset…", self._export_preset_dialog)
        self.act_export.setShortcut(QtGui.QKeySequence("Ctrl+S"))
        self.act_python = tb.addAction("Export Python…", self._export_python_dialog)
        tb.addSeparator()
        self.act_copy_json = tb.addAction("Copy preset", self.copy_preset_json)
        self.act_copy_json.setShortcut(QtGui.QKeySequence("Ctrl+Shift+C"))
        self.act_copy_py = tb.addAction("Copy Python", self.copy_python)

        central = QtWidgets.QWidget()
        self.setCentralWidget(central)
        root = QtWidgets.QHBoxLayout(central)
        root.setContentsMargins(10, 10, 10, 10)
        root.setSpacing(10)
        self.setup = SetupPanel()
        self.setup.startToggled.connect(self._on_start_toggled)
        root.addWidget(self.setup)

        right = QtWidgets.QVBoxLayout()
        right.setSpacing(10)
        root.addLayout(right, 1)

        chain_panel = QtWidgets.QFrame()
        chain_panel.setObjectName("panel")
        cl = QtWidgets.QVBoxLayout(chain_panel)
        cl.setContentsMargins(12, 10, 12, 12)
        cl.setSpacing(8)
        self.header = ChainHeader()
        self.header.freezeToggled.connect(self.set_frozen)
        self.header.resetRequested.connect(self.reset_to_estimate)
        self.header.alternativeChosen.connect(self.audition)
        self.chain_view = ChainView()
        self.chain_view.chainEdited.connect(self._on_chain_edited)
        cl.addWidget(self.header)
        cl.addWidget(self.chain_view)
        right.addWidget(chain_panel)

        displays = QtWidgets.QFrame()
        displays.setObjectName("panel")
        dl = QtWidgets.QGridLayout(displays)
        dl.setContentsMargins(10, 8, 10, 10)
        dl.setHorizontalSpacing(10)
        dl.setVerticalSpacing(4)
        cap1 = QtWidgets.QLabel("SPECTRUM   A target vs B matched")
        cap2 = QtWidgets.QLabel("SPECTROGRAM")
        for c in (cap1, cap2):
            c.setStyleSheet(theme.CAPTION_STYLE)
        self.spectrogram_source = QtWidgets.QComboBox()
        self.spectrogram_source.addItems(SPECTROGRAM_SOURCES)
        self.spectrogram_source.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.spectrogram_source.setToolTip("signal shown in the spectrogram")
        head2 = QtWidgets.QHBoxLayout()
        head2.addWidget(cap2)
        head2.addStretch(1)
        head2.addWidget(self.spectrogram_source)
        self.spectrum = SpectrumView()
        self._analyser = BandAnalyser(48000, SPECTRUM_FFT)
        self.spectrogram = SpectrogramView(self._analyser.freqs)
        self.spectrum.setMinimumHeight(200)
        dl.addWidget(cap1, 0, 0)
        dl.addLayout(head2, 0, 1)
        dl.addWidget(self.spectrum, 1, 0)
        dl.addWidget(self.spectrogram, 1, 1)
        dl.setColumnStretch(0, 3)
        dl.setColumnStretch(1, 2)
        right.addWidget(displays, 1)

        bottom = QtWidgets.QHBoxLayout()
        bottom.setSpacing(10)
        meters_panel = QtWidgets.QFrame()
        meters_panel.setObjectName("panel")
        ml = QtWidgets.QVBoxLayout(meters_panel)
        ml.setContentsMargins(10, 8, 10, 8)
        cap3 = QtWidgets.QLabel("LEVELS")
        cap3.setStyleSheet(theme.CAPTION_STYLE)
        ml.addWidget(cap3)
        self.meters = MetersPanel()
        ml.addWidget(self.meters, 1)
        meters_panel.setFixedHeight(170)
        bottom.addWidget(meters_panel)
        self.ab = ABPanel()
        self.ab.positionChosen.connect(self.set_ab)
        self.ab.setFixedHeight(170)
        bottom.addWidget(self.ab, 1)
        self.refine_panel = RefinePanel()
        self.refine_panel.refineRequested.connect(self.start_refine)
        self.refine_panel.cancelRequested.connect(self.cancel_refine)
        self.refine_panel.setFixedHeight(170)
        bottom.addWidget(self.refine_panel, 1)
        self.capture_panel = CapturePanel()
        self.capture_panel.searchRequested.connect(self.start_capture)
        self.capture_panel.cancelRequested.connect(self.cancel_capture)
        self.capture_panel.keepRequested.connect(self.keep_capture)
        self.capture_panel.discardRequested.connect(self.discard_capture)
        self.capture_panel.setFixedHeight(170)
        bottom.addWidget(self.capture_panel, 1)
        self.match_panel = MatchPanel()
        self.match_panel.matchRequested.connect(self.start_match)
        self.match_panel.cancelRequested.connect(self.cancel_match)
        self.match_panel.keepRequested.connect(self.keep_match)
        self.match_panel.discardRequested.connect(self.discard_match)
        self.match_panel.setFixedHeight(170)
        bottom.addWidget(self.match_panel, 1)
        # the search's and the tone match's found chains, each offered on its panel with Keep / Discard
        self.capture_offer = Offer(self.capture_panel)
        self.match_offer = Offer(self.match_panel)
        for panel in (self.refine_panel, self.capture_panel, self.match_panel):  # three task panels in 1440 px
            panel.setMinimumWidth(TASK_PANEL_MIN_WIDTH)
        right.addLayout(bottom)

        sb = self.statusBar()
        self.status_labels: dict[str, QtWidgets.QLabel] = {}
        for key in ("state", "model", "latency", "cpu", "xruns", "rate"):
            label = QtWidgets.QLabel("")
            self.status_labels[key] = label
            sb.addPermanentWidget(label) if key != "state" else sb.addWidget(label, 1)

        for seq, fn in (("Space", self.toggle_ab), ("D", self.toggle_dry), ("A", lambda: self.set_ab("target")),
                        ("B", lambda: self.set_ab("matched")), ("F", lambda: self.set_frozen(not self.is_frozen())),
                        ("R", self.reset_to_estimate)):
            sc = QtGui.QShortcut(QtGui.QKeySequence(seq), self)
            sc.setContext(QtCore.Qt.ShortcutContext.WindowShortcut)
            sc.activated.connect(fn)
        self._update_refine_enabled()

    def _choose_model(self) -> None:
        """Keep the remembered model when it loads, else drop it (saying so) and take the shipped one."""
        from fxmatch.shipped import DEFAULT_MODEL

        shipped = str(DEFAULT_MODEL) if DEFAULT_MODEL.is_file() else ""
        remembered = self.setup.model.text()
        if remembered:
            why = model_problem(remembered)
            if why is None:
                return
            self.settings.set("model_path", "")
            then = "using the shipped model" if shipped else "choose a model (.onnx) in the Model field"
            self.model_note = f"the remembered model was dropped ({why}); {then}"
            log.warning("%s", self.model_note)
            self.setup.show_error(self.model_note)
        self.setup.model.setText(shipped)

    # ------------------------------------------------------------------------------------------------ engine
    @property
    def running(self) -> bool:
        return self.engine is not None and bool(self.engine.running)

    def _on_start_toggled(self, checked: bool) -> None:
        if checked:
            self.start_engine()
        else:
            self.stop_engine()

    def engine_config_values(self) -> dict[str, Any]:
        """EngineConfig keyword arguments from the set-up panel and the command line's engine options."""
        values = self.setup.values()
        values["ui"] = "app"  # device errors name this window's controls, not fxmatch live's options
        values.update(self.engine_options)
        return values

    def start_engine(self) -> bool:
        """Create and start the engine from the set-up (its own process unless `in_process`); errors go to the
        panel's banner. True when running."""
        self.stop_engine()
        self.setup.show_error(None)
        try:
            values = self.engine_config_values()
            if not values["model_path"]:
                raise FxmatchInputError("choose a model (.onnx) first")
            if not Path(values["model_path"]).is_file():
                raise FxmatchInputError(f"{values['model_path']}: no such model file")
            if values["mode"] == "reference" and not values["target_file"]:
                raise FxmatchInputError("reference mode needs a target file: drop one on the Target field")
            try:
                from realtime.engine import EngineConfig, LiveEngine
                from realtime.remote import RemoteEngine
            except ImportError as exc:
                raise FxmatchInputError(f"the real-time engine is not available ({exc})") from None
            engine = (LiveEngine if self.in_process else RemoteEngine)(EngineConfig(**values))
            try:
                engine.start()
            except BaseException:
                engine.close()
                raise
        except FxmatchInputError as exc:
            self._start_failed(str(exc))
            return False
        except Exception as exc:  # a device or driver problem the engine did not phrase: still one line
            log.exception("engine start failed")
            self._start_failed(f"could not start: {type(exc).__name__}: {exc}".splitlines()[0])
            return False
        self.engine = engine
        self._est_seq = -1
        self._shown_key = None
        self._analyser = BandAnalyser(int(engine.sample_rate), SPECTRUM_FFT)
        self.spectrogram.reset(self._analyser.freqs)
        try:
            engine.set_ab(self._ab)
            if self._manual_chain is not None:
                engine.set_chain(self._manual_chain)
        except FxmatchInputError as exc:
            self.setup.show_error(str(exc))
        self.setup.set_running(True)
        self.setup.save(self.settings)
        self._update_refine_enabled()
        self.update_status()
        return True

    def _start_failed(self, message: str) -> None:
        self.setup.show_error(message)
        self.setup.set_running(False)
        self._update_refine_enabled()
        self.update_status()

    def stop_engine(self) -> None:
        """Stop the engine (idempotent); the last chain stays on screen and is reapplied on the next start."""
        self.cancel_refine(wait=True)
        engine, self.engine = self.engine, None
        if engine is not None:
            try:
                if engine.frozen:
                    self._manual_chain = _round_chain(engine.current_chain())
                engine.close()  # an in-process LiveEngine also ends its analysis process
            except Exception:
                log.exception("engine stop failed")
        self.chain_view.show_message(PRESS_START)
        self.setup.set_running(False)
        self._update_refine_enabled()
        self.update_status()

    # ------------------------------------------------------------------------------------------------ frames
    def tick(self) -> None:
        """One GUI frame: poll the engine and update the existing widgets (the frame time is recorded)."""
        t0 = time.perf_counter()
        dt = min(0.2, t0 - self._last_tick)
        self._last_tick = t0
        self._tick_count += 1
        engine = self.engine
        if engine is not None:
            try:
                self._poll_engine(engine, dt)
            except Exception as exc:
                log.exception("engine poll failed")
                self.setup.show_error(f"engine: {type(exc).__name__}: {exc}".splitlines()[0])
                self.stop_engine()
        self.chain_view.step(dt)
        self.frame_ms.append((time.perf_counter() - t0) * 1000.0)

    def _poll_engine(self, engine, dt: float) -> None:
        if not engine.running:
            error = engine.telemetry().error
            self.stop_engine()
            self.setup.show_error(error or "the audio stream stopped")
            return
        est = engine.latest_estimate()
        if est is not None and est.seq != self._est_seq:
            self._est_seq = est.seq
            self._estimate = est
            self.header.set_estimate(est.chain, est.probability, est.alternatives)
        frozen = bool(engine.frozen)
        self.header.set_frozen(frozen)
        if self._pending_edit is None and not self.chain_view_dragging():
            chain = engine.current_chain() if frozen or est is None else est.params
            key = _chain_key(chain)
            if key != self._shown_key and (frozen or est is not None):
                self._shown_key = key
                self.chain_view.show_chain(chain, animate=True)
        if est is None and self.chain_view.names() is None and self._tick_count % 8 == 0:
            self.chain_view.show_message(self._waiting_message(engine))
        self._update_state(frozen or self._pending_edit is not None)  # an edit on its way freezes
        self.ab.set_position(engine.ab_position)
        self.meters.set_levels(engine.levels())
        analyser = self._analyser
        tgt = engine.recent_audio("target", analyser.n_fft)
        matched = engine.recent_audio("matched", analyser.n_fft)
        t_db = analyser(tgt)
        m_db = analyser(matched) if self.setup.current_mode() != "analyse" else None
        self.spectrum.set_spectra(analyser.freqs, t_db, m_db, dt)
        source = self.spectrogram_source.currentText()
        column = {"target": t_db, "matched": m_db}.get(source)
        if column is None:
            column = analyser(engine.recent_audio(source, analyser.n_fft))
        self.spectrogram.advance(dt, column)
        if self._tick_count % 15 == 0:  # the distance costs a few ms of FFTs: about 3 times a second
            self.ab.set_distance(self.ab_distance(engine))

    def ab_distance(self, engine) -> float | None:
        """How far B sounds from A over the last AB_SECONDS (gui.widgets.ab_panel.ab_distance_db); None: no B."""
        if self.setup.current_mode() == "analyse" or not engine.sample_rate:
            return None
        rate = int(engine.sample_rate)
        n = int(AB_SECONDS * rate)
        return ab_distance_db(engine.recent_audio("target", n), engine.recent_audio("matched", n), rate)

    def _update_state(self, frozen: bool | None = None) -> None:
        """Say above the cards why the shown chain plays, against the model's most likely chain."""
        frozen = self.is_frozen() if frozen is None else frozen
        source = self.playing_source
        if not frozen:
            source = "estimate"
        elif source == "estimate":  # frozen by someone else than this window: still frozen
            source = "frozen"
        est = self._estimate
        analyse = self.setup.current_mode() == "analyse"
        if est is None:
            text, colour = playing_state(source, self.chain_view.names(), None, None, analyse=analyse)
        else:
            text, colour = playing_state(source, self.chain_view.names(), est.chain, est.probability,
                                         est.alternatives, analyse=analyse)
        self.chain_view.set_state(text, colour)

    def _waiting_message(self, engine) -> str:
        """What the chain area says while the engine runs without an estimate: listening, or the target is silent."""
        from fxmatch.inference import SILENCE_DBFS, rms_dbfs

        rate = int(engine.sample_rate)
        target = engine.recent_audio("target", int(SILENT_LOOK_S * rate))
        if target.size < int(SILENT_LOOK_S * rate) or rms_dbfs(target) >= SILENCE_DBFS:
            return "Listening to the target: the estimated chain appears here after its first analysis window."
        if self.setup.current_mode() == "reference":
            what = "The Target file plays in a loop and is silent here: choose another one."
        else:
            what = (f"Nothing arrives on input channel {self.setup.target_channel.value()}: check the target's "
                    "connection and the Channels setting.")
        return f"The target is silent (below {SILENCE_DBFS:.0f} dBFS for the last {SILENT_LOOK_S:g} s): nothing " \
               f"to estimate. {what}"

    def chain_view_dragging(self) -> bool:
        return any(k._drag is not None for c in self.chain_view.cards for k in c.knobs.values())

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        super().paintEvent(event)
        if self.first_frame_at is None:
            self.first_frame_at = time.perf_counter()

    # ------------------------------------------------------------------------------------------------ status
    def update_status(self) -> None:
        """Refresh the status bar from engine.telemetry()."""
        lab = self.status_labels
        engine = self.engine
        if engine is None:
            lab["state"].setText("stopped" + (f" · {chain_label(self.chain_view.names())}"
                                               if self.chain_view.names() is not None else ""))
            for k in ("latency", "cpu", "xruns", "rate"):
                lab[k].setText("")
            model = Path(self.setup.model.text()).stem if self.setup.model.text() else "no model"
            lab["model"].setText(f"model {model}")
            return
        try:
            t = engine.telemetry()
        except Exception:
            log.exception("telemetry failed")
            return
        frozen = " · frozen" if engine.frozen else ""
        lab["state"].setText(f"running · {t.sample_rate} Hz · {t.block_frames} frames{frozen}")
        provider = t.provider.removesuffix("ExecutionProvider") or t.provider
        lab["model"].setText(f"model {t.model_name} on <b>{provider}</b>")
        lab["model"].setToolTip(f"the model runs in onnxruntime on {t.provider}")
        io_ms = (t.input_latency_s + t.output_latency_s) * 1000.0
        lab["latency"].setText(f"latency {io_ms:.1f} ms · estimate {t.estimate_latency_ms:.0f} ms")
        cpu = t.cpu_load * 100.0
        colour = theme.OK if cpu < 50 else theme.WARN if cpu < 80 else theme.BAD
        lab["cpu"].setText(f"audio load <span style='color:{colour}'>{cpu:.0f}%</span>")
        lab["cpu"].setToolTip("share of the audio callback's time budget in use (PortAudio's CPU load)")
        xcol = theme.OK if t.xruns == 0 else theme.BAD
        lab["xruns"].setText(f"xruns <span style='color:{xcol}'>{t.xruns}</span>")
        lab["rate"].setText(f"{t.estimates_per_s:.1f} est/s")

    # ------------------------------------------------------------------------------------------------ chain
    def is_frozen(self) -> bool:
        return bool(self.engine.frozen) if self.engine is not None else self._manual_chain is not None

    def set_frozen(self, frozen: bool) -> None:
        """Freeze or follow the estimate."""
        if self.engine is not None:
            self.engine.set_frozen(bool(frozen))
        elif not frozen:
            self._manual_chain = None
        if not frozen or self.playing_source == "estimate":
            self.playing_source = "frozen" if frozen else "estimate"
        self.header.set_frozen(self.is_frozen())
        self._update_state()
        self.update_status()

    def reset_to_estimate(self) -> None:
        """Unfreeze and follow the estimate again."""
        self._manual_chain = None
        self._pending_edit = None
        self._edit_timer.stop()
        if self.engine is not None:
            self.engine.reset_to_estimate()
        self._shown_key = None
        self.playing_source = "estimate"
        self.header.set_frozen(False)
        self._update_state(False)

    def apply_chain(self, chain: Sequence[tuple[str, Mapping[str, float]]], animate: bool = True,
                    source: str = "frozen") -> None:
        """Play `chain` now (freezes the estimate; `source` says why, see chain_view.SOURCES); stored for the next
        start when stopped."""
        chain = _round_chain(chain)
        self._manual_chain = chain
        self.playing_source = source
        self._shown_key = _chain_key(chain)
        self.chain_view.show_chain(chain, animate=animate)
        if self.engine is not None:
            try:
                self.engine.set_chain(chain)
            except FxmatchInputError as exc:
                self.show_error_dialog("Cannot play this chain", str(exc))
        self.header.set_frozen(True)
        self._update_state(True)

    def _on_chain_edited(self, chain: ChainData) -> None:
        self._pending_edit = chain
        self._manual_chain = chain
        self._shown_key = _chain_key(chain)
        self.playing_source = "edited"
        self.header.set_frozen(True)
        self._update_state(True)
        if not self._edit_timer.isActive():
            self._edit_timer.start()

    def _flush_edit(self) -> None:
        chain, self._pending_edit = self._pending_edit, None
        if chain is not None and self.engine is not None:
            try:
                self.engine.set_chain(chain)
            except FxmatchInputError as exc:
                self.setup.show_error(str(exc))

    def audition(self, names: Sequence[str]) -> None:
        """Play an alternative chain: known effects keep the estimate's params, others start at their defaults."""
        from fxmatch.effects import get_spec

        known = dict(self._estimate.params) if self._estimate is not None else {}
        known.update(dict(self.chain_view.chain()))
        chain = [(n, dict(known[n]) if n in known else get_spec(n).defaults()) for n in names]
        self.apply_chain(chain, source="alternative")

    # ------------------------------------------------------------------------------------------------ A/B
    def set_ab(self, position: str) -> None:
        """Listen to "target" (A), "matched" (B) or "dry"."""
        self._ab = position
        self.ab.set_position(position)
        if self.engine is not None:
            try:
                self.engine.set_ab(position)
            except FxmatchInputError as exc:
                self.setup.show_error(str(exc))

    def toggle_ab(self) -> None:
        self.set_ab("matched" if self._ab == "target" else "target")

    def toggle_dry(self) -> None:
        if self._ab == "dry":
            self.set_ab(getattr(self, "_before_dry", "matched"))
        else:
            self._before_dry = self._ab
            self.set_ab("dry")

    # ------------------------------------------------------------------------------------------------ refine
    @property
    def worker(self) -> RefineWorker | None:
        """The running refinement's worker (None when idle)."""
        return self.refine_job.worker

    @property
    def capture_worker(self) -> CaptureWorker | None:
        """The running search's worker (None when idle)."""
        return self.capture_job.worker

    @property
    def match_worker(self) -> CaptureWorker | None:
        """The running tone match's worker (None when idle)."""
        return self.match_job.worker

    def _update_refine_enabled(self, note: bool = True) -> None:
        mode = self.setup.current_mode()
        has_dry = self.running and mode in ("capture", "reference")
        busy = self.refine_job.running
        self.refine_panel.button.setEnabled(has_dry and not busy)
        if not busy and note:
            self.refine_panel.note.setText(
                "fit the params to the last seconds of dry and target" if has_dry
                else "needs a running engine with a dry signal (capture or reference mode)")
        searching = self.capture_job.running
        self.capture_panel.button.setEnabled(has_dry and not searching)
        if not searching and note and not self.capture_panel.keep.isVisible():
            self.capture_panel.note.setText(
                "find the chain: the search on the last seconds, or the tone match when your playing is another "
                "performance than the record" if has_dry and mode == "reference" else
                f"find the chain: fit the model's {CAPTURE_K} likeliest chains to the last {CAPTURE_SECONDS:g} s"
                if has_dry else "needs a running engine with a dry signal (capture or reference mode)")
        can_match = self.running and mode == "reference"
        matching = self.match_job.running
        self.match_panel.button.setEnabled(can_match and not matching)
        if not matching and note and not self.match_panel.keep.isVisible():
            self.match_panel.note.setText(
                f"fit the chain to the record using the last {MATCH_SECONDS:g} s of your own playing" if can_match
                else "needs a running engine in reference mode (a record and your instrument)")

    def start_refine(self, steps: int = REFINE_STEPS, seconds: float = REFINE_SECONDS) -> bool:
        """Refine the playing chain's params on the last `seconds` of dry and target in a RefineWorker."""
        if self.engine is None or self.refine_job.running:
            return False
        engine = self.engine
        rate = int(engine.sample_rate)
        n = int(seconds * rate)
        chain = _round_chain(engine.current_chain())
        dry, target = engine.recent_audio("dry", n), engine.recent_audio("target", n)
        worker = RefineWorker(chain, dry, target, rate, steps=steps, seconds=seconds, parent=self)
        self.refine_job.start(worker, self.refine_panel,
                              f"refining {chain_label([c for c, _ in chain])} on {seconds:.0f} s…",
                              lambda: worker.start(QtCore.QThread.Priority.LowPriority))
        self._update_refine_enabled()
        return True

    def cancel_refine(self, wait: bool = False) -> None:
        """Ask a running refinement to stop (and wait for it when `wait`)."""
        self.refine_job.cancel(wait)

    def _refine_done(self, chain: ChainData, report: dict) -> None:
        self.refine_report = report
        d0, d1 = report["distance_before"], report["distance_after"]
        if report["kept"] == "refined":
            self.apply_chain(chain, source="refined")
            self.refine_panel.note.setText(f"refined: distance {d0:.3f} → {d1:.3f} (applied)")
        else:
            self.refine_panel.note.setText(f"no better params found (distance {d0:.3f})")

    # ------------------------------------------------------------------------------------------------ offers
    def _snapshot(self) -> tuple[bool, ChainData | None, str]:
        """What plays now, to go back to on Discard: (frozen, the frozen chain or None, its source)."""
        engine = self.engine
        if engine is not None:
            frozen = bool(engine.frozen)
            return (frozen, _round_chain(engine.current_chain()) if frozen else None,
                    self.playing_source if frozen else "estimate")
        return (self._manual_chain is not None, self._manual_chain, self.playing_source)

    def _restore(self, before: tuple[bool, ChainData | None, str]) -> None:
        frozen, chain, source = before
        if frozen and chain is not None:
            self.apply_chain(chain, source=source)
        else:
            self.reset_to_estimate()

    # ------------------------------------------------------------------------------------------------ search
    def start_capture(self, seconds: float = CAPTURE_SECONDS, k: int | None = CAPTURE_K,
                      time_budget: float | None = CAPTURE_BUDGET_S, settings: Any = None) -> bool:
        """Search the model's `k` likeliest chains (None: all) on the last `seconds` of dry and target in a
        CaptureWorker process (`settings`: fxmatch.capture.SearchSettings, None: the defaults). True if started.
        In reference mode the dry input is usually another performance than the record: unless it turns out to be
        the record's own (then the search is exact), the search process runs the tone match instead."""
        from gui.capture_process import SearchRequest
        from gui.match_process import run_reference_search

        if self.engine is None or self.capture_job.running:
            return False
        engine = self.engine
        rate = int(engine.sample_rate)
        n = int(seconds * rate)
        dry, target = engine.recent_audio("dry", n), engine.recent_audio("target", n)
        request = SearchRequest(np.asarray(dry, dtype=np.float32), np.asarray(target, dtype=np.float32), rate,
                                str(self.engine_config_values()["model_path"]), k, time_budget, settings=settings)
        entry = run_reference_search if self.setup.current_mode() == "reference" else None
        self.capture_job.start(CaptureWorker(request, parent=self, entry=entry), self.capture_panel,
                               f"starting the search on the last {seconds:g} s…")
        self._update_refine_enabled()
        return True

    def cancel_capture(self, wait: bool = False) -> None:
        """Ask a running search to stop (and wait for its process when `wait`)."""
        self.capture_job.cancel(wait)

    def _capture_done(self, result) -> None:
        """Offer the found chain: it plays at once as B (matched); Keep or Discard decide."""
        before = self._snapshot()
        self.capture_result = result
        if not hasattr(result, "best"):  # a tone match (reference mode, another performance): fxmatch.match
            self.apply_chain(result.chain, source="match")
            self.capture_offer.open(before)
            self.capture_panel.note.setText(
                f"your take is another performance than the record: tone match {result.label}, "
                f"{100 * result.relative:.0f} % of your take's own tone distance. Playing as B: space for A/B, "
                "then Keep or Discard")
            return
        best = result.best
        # the fitted output level plays too (a trailing Gain, fxmatch.chains), as capture writes it to presets
        self.apply_chain(with_output_level(best.params, best.gain_db), source="search")
        self.capture_offer.open(before)
        runner = next((f for f in result.ranking[1:] if f.chain != best.chain), None)
        also = f"; next {chain_label(list(runner.chain))} {100 * runner.relative:.0f} %" if runner else ""
        cut = "" if result.complete else " (time budget reached)"
        self.capture_panel.note.setText(
            f"found {chain_label(list(best.chain))}: {100 * best.relative:.0f} % of no effect{also}{cut}. Playing "
            "as B: space for A/B, then Keep or Discard")

    def keep_capture(self) -> None:
        """Keep the found chain (it stays playing, frozen)."""
        self.capture_offer.keep()
        if self.playing_source in ("search", "match"):
            self.playing_source = "kept" if self.playing_source == "search" else "kept-match"
            self._update_state()
        result = self.capture_result
        if result is not None:
            label = chain_label(list(result.best.chain)) if hasattr(result, "best") else result.label
            self.capture_panel.note.setText(f"kept {label}")

    def discard_capture(self) -> None:
        """Go back to what played before the found chain was offered (the estimate, or the chain then frozen)."""
        self.capture_offer.discard(self._restore)

    def _capture_finished(self) -> None:
        self.capture_offer.job_finished()
        self._update_refine_enabled(note=False)

    # ------------------------------------------------------------------------------------------------ match
    def start_match(self, seconds: float = MATCH_SECONDS, time_budget: float | None = MATCH_BUDGET_S,
                    max_evaluations: int | None = None) -> bool:
        """Match my tone (reference mode): fit the chain so that the last `seconds` of the player's dry input sound
        like the last `seconds` of the record's loop (`fxmatch.match`), in a process of its own. True if started."""
        from gui.match_process import MatchRequest, run_match

        if self.engine is None or self.match_job.running or self.setup.current_mode() != "reference":
            return False
        engine = self.engine
        rate = int(engine.sample_rate)
        n = int(seconds * rate)
        take, reference = engine.recent_audio("dry", n), engine.recent_audio("target", n)
        request = MatchRequest(np.asarray(reference, dtype=np.float32), np.asarray(take, dtype=np.float32), rate,
                               str(self.engine_config_values()["model_path"]), max_evaluations, time_budget)
        worker = CaptureWorker(request, parent=self, entry=run_match, name="fxmatch-match")
        self.match_job.start(worker, self.match_panel, f"matching your last {seconds:g} s to the record…")
        self._update_refine_enabled()
        return True

    def cancel_match(self, wait: bool = False) -> None:
        """Ask a running tone match to stop (and wait for its process when `wait`)."""
        self.match_job.cancel(wait)

    def _match_done(self, result) -> None:
        """Offer the matched chain: it plays at once as B; Keep or Discard decide."""
        before = self._snapshot()
        self.match_result = result
        self.apply_chain(result.chain, source="match")
        self.match_offer.open(before)
        blind = chain_label([n for n, _ in result.blind_chain])
        cut = "" if result.complete else " (time budget reached)"
        self.match_panel.note.setText(
            f"matched {result.label}: {100 * result.relative:.0f} % of your take's own tone distance (the "
            f"record's estimate {blind}: {100 * result.blind_distance / max(result.no_effect_distance, 1e-12):.0f} "
            f"%){cut}. Playing as B: space for A/B, then Keep or Discard"
            + "".join(f". Note: {w}" for w in result.warnings))

    def keep_match(self) -> None:
        """Keep the matched chain (it stays playing, frozen)."""
        self.match_offer.keep()
        if self.playing_source == "match":
            self.playing_source = "kept-match"
            self._update_state()
        if self.match_result is not None:
            self.match_panel.note.setText(f"kept {self.match_result.label}")

    def discard_match(self) -> None:
        """Go back to what played before the matched chain was offered."""
        self.match_offer.discard(self._restore)

    def _match_finished(self) -> None:
        self.match_offer.job_finished()
        self._update_refine_enabled(note=False)

    # ------------------------------------------------------------------------------------------------ presets
    def current_preset(self):
        """The chain on screen as a validated fxmatch Preset (with the estimate's metadata when it matches)."""
        from fxmatch.preset import Preset

        chain = self.chain_view.chain()
        est = self._estimate
        meta: dict[str, Any] = {}
        if self.engine is not None:
            meta["model"] = self.engine.telemetry().model_name
        if est is not None and tuple(n for n, _ in chain) == tuple(est.chain):
            meta["confidence"] = round(float(min(1.0, max(0.0, est.probability))), 4)
            meta["alternatives"] = [{"chain": list(c), "probability": round(float(min(1.0, max(0.0, p))), 4)}
                                    for c, p in est.alternatives]
        return Preset.from_chain([(n, {k: round(v, 6) for k, v in p.items()}) for n, p in chain], meta or None)

    def export_preset(self, path: str | Path) -> bool:
        """Write the current chain as .fxpreset.json (atomic); errors in a dialog. True on success."""
        from fxmatch.preset import write_preset

        try:
            write_preset(path, self.current_preset())
        except (FxmatchInputError, OSError) as exc:
            self.show_error_dialog("Cannot export the preset", str(exc))
            return False
        self.statusBar().showMessage(f"wrote {path}", 4000)
        return True

    def export_python(self, path: str | Path) -> bool:
        """Write the current chain as a pedalboard Python snippet (atomic)."""
        from fxmatch.audio_io import write_text_atomic

        try:
            write_text_atomic(path, self.current_preset().to_python())
        except (FxmatchInputError, OSError) as exc:
            self.show_error_dialog("Cannot export the snippet", str(exc))
            return False
        self.statusBar().showMessage(f"wrote {path}", 4000)
        return True

    def load_preset(self, path: str | Path) -> bool:
        """Read and validate a preset and play its chain; errors (naming the field) in a dialog."""
        from fxmatch.preset import read_preset

        try:
            preset = read_preset(path)
        except FxmatchInputError as exc:
            self.show_error_dialog("Cannot load the preset", str(exc))
            return False
        self.apply_chain([(e.effect, e.params) for e in preset.chain], source="preset")
        self.settings.set("last_preset_dir", os.path.dirname(absolute(str(path))))
        notes = preset.training_range_notes()
        if notes:
            more = f" (and {len(notes) - 1} more)" if len(notes) > 1 else ""
            self.statusBar().showMessage(f"loaded {path}: note: {notes[0]}{more}", 15000)
        else:
            self.statusBar().showMessage(f"loaded {path}", 4000)
        return True

    def copy_preset_json(self) -> None:
        try:
            QtWidgets.QApplication.clipboard().setText(self.current_preset().to_json())
        except FxmatchInputError as exc:
            self.show_error_dialog("Cannot copy the preset", str(exc))
            return
        self.statusBar().showMessage("preset JSON copied", 3000)

    def copy_python(self) -> None:
        try:
            QtWidgets.QApplication.clipboard().setText(self.current_preset().to_python())
        except FxmatchInputError as exc:
            self.show_error_dialog("Cannot copy the snippet", str(exc))
            return
        self.statusBar().showMessage("pedalboard snippet copied", 3000)

    def _preset_dir(self) -> str:
        return self.settings.get_str("last_preset_dir", str(Path.home()))

    def _load_preset_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Load preset", self._preset_dir(),
                                                        "fxmatch presets (*.fxpreset.json *.json)")
        if path:
            self.load_preset(path)

    def _export_preset_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export preset", self._preset_dir(),
                                                        "fxmatch presets (*.fxpreset.json)")
        if path:
            if not path.endswith(".fxpreset.json"):
                path += ".fxpreset.json"
            self.export_preset(path)
            self.settings.set("last_preset_dir", os.path.dirname(absolute(path)))

    def _export_python_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export pedalboard snippet", self._preset_dir(),
                                                        "Python (*.py)")
        if path:
            self.export_python(path if path.endswith(".py") else path + ".py")

    # ------------------------------------------------------------------------------------------------ misc
    def show_error_dialog(self, title: str, text: str) -> QtWidgets.QMessageBox:
        """A non-blocking (window-modal) error box; kept in `last_dialog`."""
        if self.last_dialog is not None:
            self.last_dialog.close()
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, title, text,
                                    QtWidgets.QMessageBox.StandardButton.Ok, self)
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        box.destroyed.connect(lambda *_: setattr(self, "last_dialog", None))
        self.last_dialog = box
        box.open()
        return box

    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:
        """Drop a preset (loads it), a model (.onnx) or an audio file (the target file)."""
        from gui.widgets.setup_panel import AUDIO_SUFFIXES

        for url in event.mimeData().urls():
            path = url.toLocalFile()
            low = path.lower()
            if low.endswith(".json"):
                self.load_preset(path)
            elif low.endswith(".onnx") and not self.running:
                self.setup.model.setText(path)
            elif low.endswith(AUDIO_SUFFIXES) and not self.running:
                self.setup.target_file.setText(path)
                if self.setup.current_mode() == "capture":
                    self.setup.set_mode("reference")
        event.acceptProposedAction()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self.frame_timer.stop()
        self.status_timer.stop()
        self.cancel_capture(wait=True)
        self.cancel_match(wait=True)
        self.stop_engine()
        self.setup.save(self.settings)
        self.settings.set("window/geometry", self.saveGeometry())
        self.settings.sync()
        super().closeEvent(event)

    def frame_stats(self) -> dict[str, float]:
        """Mean and p99 of the recorded GUI frame times (ms)."""
        a = np.asarray(self.frame_ms, dtype=np.float64)
        if a.size == 0:
            return {"frames": 0, "mean_ms": math.nan, "p99_ms": math.nan}
        return {"frames": int(a.size), "mean_ms": float(a.mean()), "p99_ms": float(np.percentile(a, 99))}

