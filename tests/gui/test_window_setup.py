"""The window's set-up without a stream: the remembered model is checked on load, device errors name its controls."""

from __future__ import annotations

from pathlib import Path

import pytest

import fxmatch.shipped as shipped_files


@pytest.fixture
def shipped(monkeypatch, tiny_model) -> Path:
    """The tiny model stands in for the shipped one (present or not in this checkout)."""
    monkeypatch.setattr(shipped_files, "DEFAULT_MODEL", tiny_model)
    return tiny_model


def _window(qtbot, settings, **kw):
    from gui.main_window import MainWindow

    w = MainWindow(settings, **kw)
    qtbot.addWidget(w)
    return w


def test_a_remembered_relative_model_is_dropped_with_a_message(qtbot, settings, shipped):
    settings.set("model_path", "models/mine.onnx")
    w = _window(qtbot, settings)
    assert w.setup.model.text() == str(shipped)
    assert w.model_note == ("the remembered model was dropped (models/mine.onnx: a relative path (it depends on the "
                            "folder the app starts from)); using the shipped model")
    assert w.setup.error_text() == w.model_note
    assert settings.get_str("model_path") == ""
    w.close()


def test_a_remembered_model_that_does_not_load_is_dropped(qtbot, settings, shipped, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model at all")
    settings.set("model_path", str(bad))
    w = _window(qtbot, settings)
    assert w.setup.model.text() == str(shipped)
    assert w.model_note.startswith(f"the remembered model was dropped ({bad}: not a loadable ONNX model (")
    assert settings.get_str("model_path") == ""
    w.close()


def test_a_remembered_model_that_loads_is_kept(qtbot, settings, shipped, tmp_path):
    other = tmp_path / "other.onnx"
    other.write_bytes(shipped.read_bytes())
    settings.set("model_path", str(other))
    w = _window(qtbot, settings)
    assert w.setup.model.text() == str(other) and w.model_note is None and w.setup.error_text() == ""
    w.close()


def test_a_bad_model_given_once_does_not_break_the_next_launch(qtbot, settings, shipped, tmp_path, monkeypatch):
    """`fxmatch app --model bad.onnx` from some folder, then the app again from another folder."""
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "bad.onnx").write_bytes(b"\x00" * 64)
    monkeypatch.chdir(tmp_path / "work")
    w = _window(qtbot, settings, model_path="bad.onnx")
    assert w.setup.model.text() == str(tmp_path / "work" / "bad.onnx")  # made absolute
    w.close()  # remembers the set-up
    assert settings.get_str("model_path") == str(tmp_path / "work" / "bad.onnx")
    monkeypatch.chdir(tmp_path)
    again = _window(qtbot, settings)
    assert again.setup.model.text() == str(shipped)
    assert again.model_note.startswith(f"the remembered model was dropped ({tmp_path / 'work' / 'bad.onnx'}: ")
    again.close()
    assert settings.get_str("model_path") == str(shipped)


def test_a_device_error_points_to_the_window_controls(qtbot, settings, shipped, signal_files):
    w = _window(qtbot, settings, in_process=True, engine_options={"output_device": 9999,
                                                                   "dry_file": str(signal_files["dry"])})
    w.setup.set_mode("reference")
    w.setup.target_file.setText(str(signal_files["target"]))
    assert not w.start_engine()
    said = w.setup.error_text()
    assert said.startswith("output device 9999: ")
    assert said.endswith("; choose one in the set-up panel's Output list (↻ lists the devices again)")
    assert "--" not in said
    w.close()
