"""The main window over the real engine on a JACK dummy server (offscreen Qt, tiny model, looped files).

The window runs its engine in a process of its own (realtime.remote.RemoteEngine) unless told `in_process`.
"""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
from PyQt6 import QtCore, QtWidgets

from fxmatch.preset import read_preset

pytestmark = pytest.mark.audio

WAIT_MS = 15000


def _window(qtbot, settings, tiny_model, signal_files, jack_server, in_process: bool = False):
    from gui.main_window import MainWindow

    w = MainWindow(settings, model_path=str(tiny_model), engine_options={"dry_file": str(signal_files["dry"])},
                   in_process=in_process)
    qtbot.addWidget(w)
    p = w.setup
    p.set_mode("reference")
    assert p.select_device_index(p.input_device, jack_server.device)
    assert p.select_device_index(p.output_device, jack_server.device)
    p.target_file.setText(str(signal_files["target"]))
    w.show()
    return w


@pytest.fixture
def window(qtbot, settings, tiny_model, signal_files, jack_server, no_leftover_windows):
    """A MainWindow set to reference mode on the JACK server, the dry signal looped from a file (engine process)."""
    w = _window(qtbot, settings, tiny_model, signal_files, jack_server)
    yield w
    w.close()


def _start(qtbot, w) -> None:
    assert w.start_engine(), w.setup.error.text()
    qtbot.waitUntil(lambda: w.engine is not None and w.engine.latest_estimate() is not None
                    and len(w.chain_view.cards) == 1, timeout=WAIT_MS)


def test_start_shows_the_estimate_levels_and_status_then_stop_button_stops(qtbot, window):
    from gui.widgets.chain_view import PRESS_START

    assert window.chain_view.message() == PRESS_START
    _start(qtbot, window)
    engine = window.engine
    assert engine.running and window.setup.start.isChecked()
    assert window.header.chain_label.text() == "Distortion"
    assert window.chain_view.cards[0].effect == "Distortion"
    qtbot.waitUntil(lambda: window.meters.target.level_db > -40, timeout=WAIT_MS)
    window.update_status()
    assert window.status_labels["state"].text().startswith("running · 48000 Hz")
    assert window.status_labels["model"].text() == "model tiny-v0 on <b>CPU</b>"
    assert window.status_labels["cpu"].text().startswith("audio load ")
    assert [k for k, lab in window.status_labels.items() if "CPU" in lab.text()] == ["model"]  # no lone "CPU"
    assert window.header.probability_text.text() == window.header.confidence.text  # fxmatch.inference's words
    assert window.chain_view.state().startswith("▶ Playing the estimate")
    assert "xruns" in window.status_labels["xruns"].text()
    assert window.spectrum.target_curve.getData()[0] is not None
    assert not window.setup.mode.isEnabled()  # the set-up is locked while running
    qtbot.mouseClick(window.setup.start, QtCore.Qt.MouseButton.LeftButton)
    assert window.engine is None and not engine.running and not window.setup.start.isChecked()
    assert window.setup.mode.isEnabled()


def test_space_toggles_a_b_and_d_toggles_dry_on_the_engine(qtbot, window):
    _start(qtbot, window)
    engine = window.engine
    assert engine.ab_position == "matched"
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Space)
    assert engine.ab_position == "target" and window.ab.buttons["target"].isChecked()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Space)
    assert engine.ab_position == "matched"
    qtbot.keyClick(window, QtCore.Qt.Key.Key_D)
    assert engine.ab_position == "dry" and window.ab.buttons["dry"].isChecked()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_D)
    assert engine.ab_position == "matched"
    qtbot.mouseClick(window.ab.buttons["target"], QtCore.Qt.MouseButton.LeftButton)
    assert engine.ab_position == "target"
    qtbot.waitUntil(lambda: "dB" in window.ab.distance.text(), timeout=WAIT_MS)


def test_freeze_and_edit_play_live_and_reset_follows_the_estimate_again(qtbot, window):
    _start(qtbot, window)
    engine = window.engine
    qtbot.mouseClick(window.header.freeze, QtCore.Qt.MouseButton.LeftButton)
    assert engine.frozen
    qtbot.mouseClick(window.header.freeze, QtCore.Qt.MouseButton.LeftButton)
    assert not engine.frozen
    knob = window.chain_view.cards[0].knobs["drive_db"]
    before = knob.value()
    qtbot.keyClick(knob, QtCore.Qt.Key.Key_Down if before > 20 else QtCore.Qt.Key.Key_Up)
    edited = knob.value()
    assert edited != pytest.approx(before)
    assert window.header.freeze.isChecked()
    qtbot.waitUntil(lambda: engine.frozen and engine.current_chain()[0][1]["drive_db"] == pytest.approx(edited),
                    timeout=WAIT_MS)
    seq = engine.latest_estimate().seq
    qtbot.waitUntil(lambda: engine.latest_estimate().seq > seq + 1, timeout=WAIT_MS)
    assert engine.current_chain()[0][1]["drive_db"] == pytest.approx(edited)  # frozen: estimates do not move it
    assert knob.value() == pytest.approx(edited)
    qtbot.mouseClick(window.header.reset, QtCore.Qt.MouseButton.LeftButton)
    assert not engine.frozen and not window.header.freeze.isChecked()
    est = engine.latest_estimate()
    qtbot.waitUntil(lambda: knob.value() == pytest.approx(dict(engine.latest_estimate().params)["Distortion"]
                                                          ["drive_db"]), timeout=WAIT_MS)
    assert est is not None


def test_alternative_chain_auditions_on_the_engine(qtbot, window):
    _start(qtbot, window)
    engine = window.engine
    qtbot.waitUntil(lambda: window.header.alt_buttons[0].isVisible(), timeout=WAIT_MS)
    assert "no effect" in window.header.alt_buttons[0].text()
    qtbot.mouseClick(window.header.alt_buttons[0], QtCore.Qt.MouseButton.LeftButton)
    assert engine.frozen and engine.current_chain() == ()
    assert window.chain_view.cards == []


def test_preset_export_and_load_round_trip_through_the_engine(qtbot, window, tmp_path):
    _start(qtbot, window)
    engine = window.engine
    out = tmp_path / "mine.fxpreset.json"
    assert window.export_preset(out)
    preset = read_preset(out)
    shown = window.chain_view.chain()
    assert preset.effect_names == ["Distortion"]
    assert preset.chain[0].params["drive_db"] == pytest.approx(shown[0][1]["drive_db"], abs=1e-5)
    assert preset.estimate["model"] == "tiny-v0" and 0 <= preset.estimate["confidence"] <= 1
    snippet = tmp_path / "mine.py"
    assert window.export_python(snippet)
    scope: dict = {}
    exec(snippet.read_text(), scope)  # noqa: S102 - our own snippet: it must build the same pedalboard
    assert scope["board"][0].drive_db == pytest.approx(preset.chain[0].params["drive_db"], abs=1e-4)
    data = json.loads(out.read_text())
    data["chain"][0]["params"]["drive_db"] = 7.5
    other = tmp_path / "other.fxpreset.json"
    other.write_text(json.dumps(data))
    assert window.load_preset(other)
    assert engine.frozen and engine.current_chain()[0][1]["drive_db"] == pytest.approx(7.5)
    qtbot.waitUntil(lambda: window.chain_view.cards[0].knobs["drive_db"].value() == pytest.approx(7.5),
                    timeout=WAIT_MS)
    assert window.statusBar().currentMessage() == f"loaded {other}"
    window.copy_preset_json()
    assert json.loads(QtWidgets.QApplication.clipboard().text())["chain"][0]["params"]["drive_db"] == 7.5
    window.copy_python()
    assert "Distortion(drive_db=7.5)" in QtWidgets.QApplication.clipboard().text()


@pytest.mark.parametrize(("content", "field"), [
    ('{"format": "fxmatch-preset", "version": 1, "chain": [{"effect": "Flanger", "params": {}}]}', "chain[0].effect"),
    ('{"format": "fxmatch-preset", "version": 1, "chain": [{"effect": "Distortion", "params": {"drive_db": 120}}]}',
     "drive_db: 120 is outside what pedalboard's Distortion accepts"),
    ("not json", "not valid JSON"),
])
def test_a_bad_preset_shows_a_dialog_naming_the_field_and_changes_nothing(qtbot, window, tmp_path, content, field):
    _start(qtbot, window)
    before = window.engine.current_chain()
    bad = tmp_path / "bad.fxpreset.json"
    bad.write_text(content)
    assert not window.load_preset(bad)
    box = window.last_dialog
    assert box is not None and box.isVisible() and field in box.text()
    assert window.engine.current_chain() == before and not window.engine.frozen
    box.close()
    qtbot.waitUntil(lambda: window.last_dialog is None, timeout=2000)


def test_start_errors_are_shown_in_the_window_not_raised(qtbot, window, tiny_model):
    p = window.setup
    p.output_device.addItem("gone", 9999)  # (the dry signal comes from a file: the output is what opens)
    p.output_device.setCurrentIndex(p.output_device.count() - 1)
    assert not window.start_engine()
    assert window.engine is None and not p.start.isChecked()
    assert p.error.isVisible() and "9999" in p.error.text()
    p.refresh_devices()
    assert p.select_device_index(p.output_device, window.setup.input_device.currentData())
    p.sample_rate.addItem("12345 Hz", 12345)
    p.sample_rate.setCurrentIndex(p.sample_rate.count() - 1)
    qtbot.mouseClick(p.start, QtCore.Qt.MouseButton.LeftButton)  # the Start button path
    assert window.engine is None and not p.start.isChecked() and "12345" in p.error.text()
    assert "\n" not in p.error.text()
    p.sample_rate.setCurrentIndex(0)
    p.model.setText(str(tiny_model) + ".missing")
    assert not window.start_engine() and "no such model file" in p.error.text()


def test_a_stream_that_stops_underneath_is_reported_and_the_window_recovers(qtbot, window):
    _start(qtbot, window)
    window.engine.stop()  # as if the device went away
    qtbot.waitUntil(lambda: window.engine is None, timeout=WAIT_MS)
    assert window.setup.error.isVisible() and "stopped" in window.setup.error.text()
    assert not window.setup.start.isChecked()
    _start(qtbot, window)  # and it starts again
    assert not window.setup.error.isVisible()


def _drive(chain) -> float:
    return dict(chain)["Distortion"]["drive_db"]


def test_refine_runs_in_a_worker_with_progress_and_applies_the_better_params(qtbot, window):
    """Target rendered at 25 dB, playing a deliberately wrong 35 dB: refine lowers the distance and applies it."""
    _start(qtbot, window)
    window.apply_chain([("Distortion", {"drive_db": 35.0})], animate=False)
    qtbot.waitUntil(lambda: _drive(window.engine.current_chain()) == pytest.approx(35.0), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.refine_panel.button.isEnabled(), timeout=WAIT_MS)
    steps: list[int] = []
    assert window.start_refine(steps=4, seconds=1.0)
    window.worker.progress.connect(lambda s, n, d: steps.append(s))
    assert not window.refine_panel.button.isEnabled() and window.refine_panel.cancel.isVisible()
    qtbot.waitUntil(lambda: window.worker is None, timeout=60000)
    report = window.refine_report
    assert report is not None and report["steps"] == 4, window.refine_panel.note.text()
    assert steps and steps[-1] == 4, steps
    assert report["kept"] == "refined", report
    assert report["distance_after"] < 0.95 * report["distance_before"], report
    assert "applied" in window.refine_panel.note.text() and window.engine.frozen
    qtbot.waitUntil(lambda: _drive(window.engine.current_chain()) < 34.0, timeout=WAIT_MS)
    assert _drive(window.engine.current_chain()) > 25.0 - 2.0
    assert window.refine_panel.button.isEnabled()
    # cancel
    assert window.start_refine(steps=500, seconds=1.0)
    window.cancel_refine()
    qtbot.waitUntil(lambda: window.worker is None, timeout=60000)
    assert "cancelled" in window.refine_panel.note.text()


def _small_search():
    """A quick search for tests: 1 s excerpt, a 16 kHz screen and one short round at 48 kHz."""
    from fxmatch.capture import SearchSettings, Stage

    return SearchSettings(excerpt_seconds=1.0, stages=(Stage(16000, None, 8, 0.15, (1024, 256), 2),
                                                       Stage(48000, 2, 8)))


def test_search_runs_in_its_own_process_offers_the_chain_and_keep_or_discard(qtbot, window):
    """Target = the dry file through a 25 dB Distortion; playing a wrong 5 dB: the search, in a process that is
    neither the window's nor the engine's, reports progress and offers Distortion near 25 dB, playing at once;
    Discard goes back to the 5 dB chain, a second search is kept."""
    _start(qtbot, window)
    window.apply_chain([("Distortion", {"drive_db": 5.0})], animate=False)
    qtbot.waitUntil(lambda: window.capture_panel.button.isEnabled(), timeout=WAIT_MS)
    qtbot.wait(3500)  # 3 s of the looped files in the engine's buffers
    seen: list = []
    assert window.start_capture(seconds=3.0, settings=_small_search())
    worker = window.capture_worker
    worker.progress.connect(seen.append)
    assert worker.pid not in (None, os.getpid(), window.engine.pid)
    assert not window.capture_panel.button.isEnabled() and window.capture_panel.cancel.isVisible()
    assert not window.start_capture()  # one search at a time
    qtbot.waitUntil(lambda: window.capture_worker is None, timeout=90000)
    result = window.capture_result
    assert result is not None, window.capture_panel.note.text()
    assert result.best.chain == ("Distortion",) and abs(result.best.params[0][1]["drive_db"] - 25.0) < 3.0
    assert seen and 0 < seen[-1].fraction <= 1 and seen[-1].stages == 2
    assert "found Distortion" in window.capture_panel.note.text() and window.capture_panel.keep.isVisible()
    assert window.engine.frozen
    qtbot.waitUntil(lambda: abs(_drive(window.engine.current_chain()) - 25.0) < 3.0, timeout=WAIT_MS)
    window.discard_capture()
    qtbot.waitUntil(lambda: _drive(window.engine.current_chain()) == pytest.approx(5.0), timeout=WAIT_MS)
    assert not window.capture_panel.keep.isVisible() and window.engine.frozen
    assert window.start_capture(seconds=3.0, settings=_small_search())
    qtbot.waitUntil(lambda: window.capture_worker is None, timeout=90000)
    window.keep_capture()
    assert not window.capture_panel.keep.isVisible() and "kept Distortion" in window.capture_panel.note.text()
    assert abs(_drive(window.engine.current_chain()) - 25.0) < 3.0


def test_search_can_be_cancelled_and_its_process_ends(qtbot, window):
    _start(qtbot, window)
    qtbot.waitUntil(lambda: window.capture_panel.button.isEnabled(), timeout=WAIT_MS)
    assert window.start_capture(seconds=2.0, k=None)  # the default search: long enough to cancel
    worker = window.capture_worker
    qtbot.waitUntil(lambda: "stage" in window.capture_panel.note.text(), timeout=60000)
    process = worker._process
    window.cancel_capture()
    qtbot.waitUntil(lambda: window.capture_worker is None, timeout=30000)
    assert "cancelled" in window.capture_panel.note.text() and window.capture_result is None
    assert not process.is_alive() and window.capture_panel.button.isEnabled()
    assert not window.capture_panel.keep.isVisible()
    assert window.start_capture(seconds=2.0, k=None)  # a search process that dies is reported, not waited for
    os.kill(window.capture_worker.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: window.capture_worker is None, timeout=10000)
    assert "ended unexpectedly" in window.capture_panel.note.text() and window.capture_panel.button.isEnabled()


def test_closing_stops_the_engine_and_remembers_the_set_up(qtbot, settings, window, signal_files):
    _start(qtbot, window)
    engine = window.engine
    window.setup.block.setCurrentIndex(window.setup.block.findData(256))
    window.close()
    assert not engine.running
    from gui.main_window import MainWindow
    from gui.settings import AppSettings

    again = MainWindow(AppSettings(settings.path))
    qtbot.addWidget(again)
    v = again.setup.values()
    assert v["mode"] == "reference" and v["target_file"] == str(signal_files["target"])
    assert again.setup.device_name(again.setup.input_device) == window.setup.device_name(window.setup.input_device)
    again.close()


def test_the_engine_runs_in_its_own_process_and_its_death_is_shown(qtbot, window):
    from realtime.remote import RemoteEngine

    _start(qtbot, window)
    engine = window.engine
    assert isinstance(engine, RemoteEngine) and engine.pid not in (None, os.getpid())
    os.kill(engine.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: window.engine is None, timeout=5000)
    assert window.setup.error.isVisible() and "ended unexpectedly" in window.setup.error.text()
    assert not window.setup.start.isChecked() and "\n" not in window.setup.error.text()
    _start(qtbot, window)  # a new engine process
    assert window.engine.pid not in (None, engine.pid) and not window.setup.error.isVisible()


def test_in_process_engine_option_runs_the_live_engine_here(qtbot, settings, tiny_model, signal_files, jack_server,
                                                           no_leftover_windows):
    from realtime.engine import LiveEngine

    w = _window(qtbot, settings, tiny_model, signal_files, jack_server, in_process=True)
    try:
        _start(qtbot, w)
        assert type(w.engine) is LiveEngine and w.header.chain_label.text() == "Distortion"
        qtbot.waitUntil(lambda: w.meters.target.level_db > -40, timeout=WAIT_MS)
    finally:
        w.close()


def test_a_preset_beyond_the_training_range_plays_with_a_note(qtbot, window, tmp_path):
    _start(qtbot, window)
    path = tmp_path / "hot.fxpreset.json"
    path.write_text(json.dumps({"format": "fxmatch-preset", "version": 1,
                                "chain": [{"effect": "Distortion", "params": {"drive_db": 50.0}}]}))
    assert window.load_preset(path)
    assert window.last_dialog is None
    assert window.statusBar().currentMessage() == (
        f"loaded {path}: note: chain[0].params.drive_db = 50 dB is outside the model's training range [5, 40] dB: "
        "pedalboard plays it, but estimates never return it")
    qtbot.waitUntil(lambda: window.engine.current_chain()[0][1]["drive_db"] == pytest.approx(50.0), timeout=WAIT_MS)


def test_an_all_zero_target_is_called_silent_and_stop_says_press_start(qtbot, settings, tiny_model, signal_files,
                                                                       jack_server, tmp_path, no_leftover_windows):
    from fxmatch.audio_io import write_audio
    from gui.widgets.chain_view import PRESS_START

    zeros = tmp_path / "zeros.wav"
    write_audio(zeros, np.zeros((1, 96000), dtype=np.float32), 48000)
    w = _window(qtbot, settings, tiny_model, signal_files, jack_server)
    try:
        w.setup.target_file.setText(str(zeros))
        assert w.start_engine(), w.setup.error_text()
        qtbot.waitUntil(lambda: (w.chain_view.message() or "").startswith("The target is silent"), timeout=WAIT_MS)
        assert w.chain_view.message() == (
            "The target is silent (below -70 dBFS for the last 1 s): nothing to estimate. The Target file plays in "
            "a loop and is silent here: choose another one.")
        assert w.engine.running and w.engine.latest_estimate() is None and w.chain_view.cards == []
        w.stop_engine()
        assert w.chain_view.message() == PRESS_START
    finally:
        w.close()


def test_a_target_that_starts_silent_is_called_silent_until_it_plays(qtbot, settings, tiny_model, signal_files,
                                                                     jack_server, tmp_path, no_leftover_windows):
    import soundfile as sf

    from fxmatch.audio_io import write_audio

    sound, rate = sf.read(signal_files["target"], dtype="float32", always_2d=True)
    late = tmp_path / "late.wav"
    write_audio(late, np.concatenate([np.zeros((3 * rate, sound.shape[1]), np.float32), sound]).T, rate)
    w = _window(qtbot, settings, tiny_model, signal_files, jack_server)
    try:
        w.setup.target_file.setText(str(late))
        assert w.start_engine(), w.setup.error_text()
        qtbot.waitUntil(lambda: (w.chain_view.message() or "").startswith("The target is silent"), timeout=WAIT_MS)
        assert w.engine.latest_estimate() is None
        qtbot.waitUntil(lambda: len(w.chain_view.cards) == 1, timeout=WAIT_MS)  # it plays: the chain replaces it
        assert w.chain_view.message() is None and w.engine.latest_estimate() is not None
    finally:
        w.close()
