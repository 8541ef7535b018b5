"""The app's widgets on plain data (no engine): knobs, chain cards, header, meters, spectra, set-up, settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PyQt6 import QtCore, QtGui, QtWidgets

from fxmatch.effects import get_spec
from fxmatch.effects.spec import KNOB_BEYOND_TRAINING
from gui.widgets.ab_panel import ABPanel
from gui.widgets.chain_view import ChainHeader, ChainView, chain_label
from gui.widgets.knob import Knob, format_value, param_label
from gui.widgets.meters import LevelMeter
from gui.widgets.setup_panel import FileDropLineEdit, SetupPanel, elide_path
from gui.widgets.spectrum import BandAnalyser, SpectrogramView, SpectrumView


def test_knob_maps_log_parameters_in_their_scale_and_glides(qtbot):
    spec = get_spec("Compressor").param("ratio")  # trained on 1.5 .. 20 (log), pedalboard takes 1 .. 1000
    knob = Knob(spec)
    qtbot.addWidget(knob)
    knob.set_value(math.sqrt(1.5 * 20.0), animate=False)  # geometric midpoint of the training range
    assert knob.shown_norm() == pytest.approx(0.5, abs=1e-6)
    knob.set_value(20.0)
    assert knob.shown_norm() == pytest.approx(0.5, abs=1e-6)  # gliding, not jumping
    for _ in range(10):
        knob.step(1 / 40)
    top = 1.0 - KNOB_BEYOND_TRAINING  # the training range's end; the rest of the arc reaches pedalboard's limit
    assert 0.5 < knob.shown_norm() < top
    for _ in range(100):
        knob.step(1 / 40)
    assert knob.shown_norm() == pytest.approx(top, abs=1e-3)
    assert knob.value() == 20.0
    knob.set_value(1000.0, animate=False)
    assert knob.shown_norm() == pytest.approx(1.0)


def test_knob_emits_edits_in_units_within_range_only_on_user_input(qtbot):
    spec = get_spec("Distortion").param("drive_db")
    knob = Knob(spec)
    qtbot.addWidget(knob)
    knob.set_value(39.9, animate=False)
    seen: list[float] = []
    knob.valueEdited.connect(seen.append)
    knob.set_value(10.0, animate=False)
    assert seen == []
    knob.set_value(99.9, animate=False)
    for _ in range(3):
        qtbot.keyClick(knob, QtCore.Qt.Key.Key_Up)
    assert seen and seen[-1] == pytest.approx(100.0)  # clipped at pedalboard's limit (the preset's)
    qtbot.keyClick(knob, QtCore.Qt.Key.Key_Down)
    assert seen[-1] == pytest.approx(spec.value_at(1.0 - 0.02))
    qtbot.mouseDClick(knob, QtCore.Qt.MouseButton.LeftButton)
    assert seen[-1] == pytest.approx(spec.default_value)


def test_value_formatting_and_labels():
    assert format_value(1234.0, "Hz") == "1.23 kHz"
    assert format_value(-18.04, "dB") == "-18.0 dB"
    assert format_value(0.35, "s") == "0.35 s"
    assert format_value(4.0, "") == "4.00"
    assert param_label("cutoff_frequency_hz") == "Cutoff"
    assert param_label("threshold_db") == "Threshold"
    assert param_label("wet_level") == "Wet level"
    assert chain_label(()) == "no effect"
    assert chain_label(("Compressor", "Reverb")) == "Compressor → Reverb"


def test_chain_view_glides_same_chain_rebuilds_new_one_and_emits_edits(qtbot):
    view = ChainView()
    qtbot.addWidget(view)
    chain = [("Compressor", get_spec("Compressor").defaults()), ("Reverb", get_spec("Reverb").defaults())]
    view.show_chain(chain, animate=False)
    assert [c.effect for c in view.cards] == ["Compressor", "Reverb"]
    cards = list(view.cards)
    moved = dict(chain[1][1], room_size=0.9)
    view.show_chain([chain[0], ("Reverb", moved)])
    assert view.cards == cards  # same cards, knobs glide
    assert view.chain()[1][1]["room_size"] == pytest.approx(0.9)
    view.show_chain([("Delay", get_spec("Delay").defaults())])
    assert [c.effect for c in view.cards] == ["Delay"]
    edits = []
    view.chainEdited.connect(edits.append)
    knob = view.cards[0].knobs["mix"]
    qtbot.keyClick(knob, QtCore.Qt.Key.Key_Up)
    assert len(edits) == 1 and edits[0][0][0] == "Delay"
    assert edits[0][0][1]["mix"] > get_spec("Delay").defaults()["mix"]
    assert set(edits[0][0][1]) == set(get_spec("Delay").param_names)
    view.show_chain([])
    assert view.cards == [] and view.names() == ()


def test_chain_header_shows_probability_and_alternatives_clickable(qtbot):
    header = ChainHeader()
    qtbot.addWidget(header)
    alts = ((("Distortion", "Delay"), 0.12), ((), 0.05), (("Reverb",), 0.02), (("Delay",), 0.01))
    header.show()
    assert header.probability_text.text() == "–"  # before any estimate
    header.set_estimate(("Distortion",), 0.81, alts)
    assert header.probability.value() == 81
    assert header.probability_text.text() == "fairly sure (p = 0.81)"  # the command line's words
    assert not header.probability.isTextVisible()  # the words are beside the bar, not drawn over it
    QtWidgets.QApplication.processEvents()
    label, bar = header.probability_text, header.probability
    assert label.parentWidget() is bar.parentWidget() and not label.geometry().intersects(bar.geometry())
    assert label.width() >= label.fontMetrics().horizontalAdvance(label.text())
    visible = [b for b in header.alt_buttons if not b.isHidden()]
    # alternatives use the names of the title and the cards
    assert len(visible) == 3 and visible[0].text() == "12%  Distortion → Delay"
    with qtbot.waitSignal(header.alternativeChosen) as sig:
        qtbot.mouseClick(visible[1], QtCore.Qt.MouseButton.LeftButton)
    assert sig.args == [()]
    with qtbot.assertNotEmitted(header.freezeToggled):
        header.set_frozen(True)
    assert header.freeze.isChecked()


def test_meter_latches_clip_and_releases_smoothly(qtbot):
    m = LevelMeter("OUT")
    qtbot.addWidget(m)
    m.set_level(-6.0, clip=True, now=0.0)
    assert m.clip and m._shown == pytest.approx(-6.0)
    m.set_level(-40.0, clip=False, now=0.5)
    assert m.clip  # latched
    assert m._shown == pytest.approx(-6.0 - 24.0 * 0.5)  # 24 dB/s release
    m.set_level(-math.inf, clip=False, now=3.0)
    assert not m.clip and m._shown == pytest.approx(-60.0)
    m.set_level(-3.0, clip=True, now=3.1)
    qtbot.mouseClick(m, QtCore.Qt.MouseButton.LeftButton)
    assert not m.clip


def test_band_analyser_reads_a_full_scale_sine_near_0_dbfs_at_its_frequency():
    rate = 48000
    an = BandAnalyser(rate, 4096)
    t = np.arange(8192) / rate
    db = an(np.sin(2 * np.pi * 1000.0 * t).astype(np.float32))
    k = int(np.argmax(db))
    assert an.freqs[k] == pytest.approx(1000.0, rel=0.1)
    assert db[k] == pytest.approx(0.0, abs=1.5)
    assert np.all(db[an.freqs < 300] < -40)
    assert np.all(an(np.zeros(10, np.float32)) == pytest.approx(-100.0))


def test_spectrum_and_spectrogram_update_existing_items(qtbot):
    an = BandAnalyser(48000, 2048)
    spec = SpectrumView()
    gram = SpectrogramView(an.freqs, columns=50, seconds=1.0)
    qtbot.addWidget(spec)
    qtbot.addWidget(gram)
    curve = spec.target_curve
    col = an(np.random.default_rng(0).standard_normal(4096).astype(np.float32) * 0.1)
    spec.set_spectra(an.freqs, col, None)
    assert spec.target_curve is curve and len(curve.getData()[0]) == an.n_bands
    assert len(spec.matched_curve.getData()[0] or []) == 0
    assert gram.advance(0.05, col) == 2  # 20 ms per column
    assert np.allclose(gram.data[:, -1], col) and np.all(gram.data[:, 0] == -100.0)


def test_ab_panel_buttons_emit_positions_and_show_distance(qtbot):
    ab = ABPanel()
    qtbot.addWidget(ab)
    with qtbot.waitSignal(ab.positionChosen) as sig:
        qtbot.mouseClick(ab.buttons["dry"], QtCore.Qt.MouseButton.LeftButton)
    assert sig.args == ["dry"]
    ab.set_position("target")
    assert ab.position() == "target"
    ab.set_distance(4.25)
    assert "noticeable" in ab.distance.text()
    assert "4.2 dB" in ab.distance.text() or "4.3 dB" in ab.distance.text()
    ab.set_distance(None)
    assert "–" in ab.distance.text()


def test_setup_panel_round_trips_through_settings_and_maps_channels_from_1(qtbot, settings, tmp_path):
    panel = SetupPanel()
    qtbot.addWidget(panel)
    panel.set_mode("capture")
    panel.block.setCurrentIndex(panel.block.findData(512))
    panel.sample_rate.setCurrentIndex(panel.sample_rate.findData(44100))
    panel.dry_channel.setValue(3)
    panel.target_channel.setValue(4)
    panel.target_file.setText(str(tmp_path / "t.wav"))
    panel.model.setText(str(tmp_path / "m.onnx"))
    assert not panel.target_file.isEnabled()  # capture mode takes the target from an input
    panel.save(settings)
    settings.sync()
    other = SetupPanel()
    qtbot.addWidget(other)
    from gui.settings import AppSettings

    other.restore(AppSettings(settings.path))
    v = other.values()
    assert v["mode"] == "capture" and v["block_frames"] == 512 and v["sample_rate"] == 44100
    assert v["dry_channel"] == 2 and v["target_channel"] == 3  # EngineConfig counts from 0
    assert v["target_file"] == str(tmp_path / "t.wav") and v["model_path"] == str(tmp_path / "m.onnx")
    assert v["input_device"] is None  # "system default"
    other.set_mode("analyse")
    assert not other.dry_channel.isEnabled() and other.target_channel.isEnabled()


def test_target_field_accepts_a_dropped_audio_file_only(qtbot, tmp_path):
    field = FileDropLineEdit((".wav", ".flac"), "drop")
    qtbot.addWidget(field)

    def drop(path: str) -> bool:
        mime = QtCore.QMimeData()
        mime.setUrls([QtCore.QUrl.fromLocalFile(path)])
        ev = QtGui.QDropEvent(QtCore.QPointF(5, 5), QtCore.Qt.DropAction.CopyAction, mime,
                              QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.NoModifier)
        field.dropEvent(ev)
        return ev.isAccepted()

    with qtbot.waitSignal(field.fileDropped):
        drop(str(tmp_path / "song.flac"))
    assert field.text() == str(tmp_path / "song.flac")
    drop(str(tmp_path / "notes.txt"))
    assert field.text() == str(tmp_path / "song.flac")


def test_elide_path_keeps_the_file_name_whole():
    metrics = QtGui.QFontMetrics(QtGui.QFont("DejaVu Sans", 10))
    path = "/home/someone/music/projects/2024/very-long-folder-name/fxmatch-default.onnx"
    width = metrics.horizontalAdvance("/home/…/fxmatch-default.onnx") + 2
    shown = elide_path(path, metrics, width)
    assert shown.endswith("…/fxmatch-default.onnx") and shown.startswith("/home")
    assert metrics.horizontalAdvance(shown) <= width
    assert elide_path("/a/b.onnx", metrics, 1000) == "/a/b.onnx"
    tiny = elide_path(path, metrics, metrics.horizontalAdvance("fxmat…t.onnx"))
    assert "…" in tiny and tiny.endswith(".onnx") and "/" not in tiny


def test_a_long_path_shows_its_file_name_and_the_whole_path_when_editing(qtbot, tmp_path):
    panel = SetupPanel()  # the real field in its real place (the set-up panel is 330 px wide)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    field = panel.model
    path = "/home/someone/music/projects/2024/very-long-folder-name/fxmatch-default.onnx"
    field.setText(path)
    shown = field.shown_text()
    assert field.text() == path and field.toolTip() == path
    assert shown != path and shown.endswith("…/fxmatch-default.onnx") and shown.startswith("/")
    assert field.fontMetrics().horizontalAdvance(shown) <= field.text_width()
    assert field.cursorPosition() == 0
    assert panel.values()["model_path"] == path
    panel.activateWindow()
    field.setFocus()
    qtbot.waitUntil(field.hasFocus, timeout=2000)
    assert field.shown_text() == path  # editing shows it all
    field.end(False)
    field.insert("x")  # typing changes the whole path
    assert field.text() == path + "x"
    panel.mode.setFocus()
    qtbot.waitUntil(lambda: not field.hasFocus(), timeout=2000)
    assert field.shown_text().endswith("…/fxmatch-default.onnxx") and field.text() == path + "x"


def test_the_set_up_is_saved_with_absolute_paths(qtbot, settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    panel = SetupPanel()
    qtbot.addWidget(panel)
    panel.target_file.setText("takes/t.wav")
    panel.model.setText("models/../m.onnx")
    panel.save(settings)
    assert settings.get_str("target_file") == str(tmp_path / "takes" / "t.wav")
    assert settings.get_str("model_path") == str(tmp_path / "m.onnx")


def test_read_only_settings_never_write(tmp_path):
    from gui.settings import AppSettings

    path = tmp_path / "new" / "fxmatch.ini"
    ro = AppSettings(path, read_only=True)
    ro.set("model_path", "/x.onnx")
    ro.sync()
    assert not path.parent.exists()
    assert ro.get_str("model_path") == ""
    rw = AppSettings(path)
    rw.set("model_path", "/x.onnx")
    rw.sync()
    before = path.read_bytes()
    ro = AppSettings(path, read_only=True)
    assert ro.get_str("model_path") == "/x.onnx"
    ro.set("model_path", "/y.onnx")
    ro.sync()
    del ro
    assert path.read_bytes() == before


def test_chain_view_says_what_it_waits_for_until_a_chain_is_shown(qtbot):
    from gui.widgets.chain_view import PRESS_START

    view = ChainView()
    qtbot.addWidget(view)
    assert view.message() == PRESS_START
    view.show_message("The target is silent")
    assert view.message() == "The target is silent"
    view.show_chain([("Delay", get_spec("Delay").defaults())], animate=False)
    assert view.message() is None and len(view.cards) == 1
    view.show_message(PRESS_START)  # a shown chain stays
    assert view.message() is None and len(view.cards) == 1
