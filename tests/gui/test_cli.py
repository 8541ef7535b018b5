"""`fxmatch app`: bad options exit 2 with one line; --screenshot renders the main states into PNGs."""

from __future__ import annotations

import pytest
from PyQt6 import QtGui

from fxmatch.cli import main


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(("argv", "said"), [
    (["--model", "nope.onnx"], "no such model file"),
    (["--target", "nope.wav"], "--target nope.wav: no such file"),
    (["--block", "0"], "app: --block must be 16 to 8192 frames, got 0"),
    (["--rate", "1", "--jack-dummy"], "app: --rate must be 8000 to 384000 Hz, got 1"),
    (["--dry-channel", "0"], "app: --dry-channel counts from 1, got 0"),
    (["--fps", "nan"], "--fps must be > 0"),
    (["--mode", "karaoke"], "invalid choice"),
])
def test_bad_options_exit_2_with_one_line(capsys, tmp_path, argv, said):
    assert main(["app", "--settings", str(tmp_path / "s.ini"), *argv]) == 2
    assert said in _one_line(capsys)


def test_an_unknown_device_exits_2_naming_it(capsys, tmp_path, qapp):
    assert main(["app", "--settings", str(tmp_path / "s.ini"), "--output-device", "no-such-card-xyz",
                 "--screenshot", str(tmp_path / "shots")]) == 2
    assert "no audio device 'no-such-card-xyz'" in _one_line(capsys)


def test_screenshot_without_a_usable_set_up_renders_the_start_error(capfd, tmp_path, tiny_model, qapp):
    shots = tmp_path / "shots"
    assert main(["app", "--settings", str(tmp_path / "s.ini"), "--model", str(tiny_model), "--mode", "reference",
                 "--screenshot", str(shots)]) == 0
    assert sorted(p.name for p in shots.iterdir()) == ["idle.png", "start-error.png"]
    assert not (tmp_path / "s.ini").exists()  # a screenshot run never writes the settings
    out, err = capfd.readouterr()
    assert "propagateSizeHints" not in err  # Qt's offscreen chatter is not shown
    assert out.split() == [str(shots / "idle.png"), str(shots / "start-error.png")]


def test_screenshot_leaves_existing_settings_untouched(tmp_path, tiny_model, qapp):
    ini = tmp_path / "s.ini"
    ini.write_text(f"[General]\nmode=analyse\nmodel_path={tiny_model}\nblock_frames=512\n")
    before = ini.read_bytes()
    assert main(["app", "--settings", str(ini), "--model", "does-not-matter.onnx"]) == 2  # refused: no such file
    assert main(["app", "--settings", str(ini), "--mode", "reference", "--block", "1024", "--target",
                 str(tiny_model), "--screenshot", str(tmp_path / "shots")]) == 0
    assert ini.read_bytes() == before


@pytest.mark.audio
def test_screenshot_renders_idle_running_and_frozen_states(capsys, tmp_path, tiny_model, signal_files, jack_server,
                                                           qapp):
    shots = tmp_path / "shots"
    dev = str(jack_server.device)
    assert main(["app", "--settings", str(tmp_path / "s.ini"), "--model", str(tiny_model), "--mode", "reference",
                 "--input-device", dev, "--output-device", dev, "--target", str(signal_files["target"]),
                 "--dry-file", str(signal_files["dry"]), "--screenshot", str(shots),
                 "--screenshot-seconds", "1.5"]) == 0
    names = sorted(p.name for p in shots.iterdir())
    assert names == ["frozen.png", "idle.png", "running.png"]
    for name in names:
        image = QtGui.QImage(str(shots / name))
        assert image.width() == 1440 and image.height() == 900
    assert capsys.readouterr().out.split() == [str(shots / n) for n in ("idle.png", "running.png", "frozen.png")]


@pytest.mark.audio
def test_jack_dummy_runs_the_app_on_its_own_server_and_leaves_none(capsys, tmp_path, tiny_model, signal_files, qapp):
    import os

    from tests.realtime.test_jack import jackd_children

    shots = tmp_path / "shots"
    before = set(jackd_children(os.getpid()))  # the module's jack_server fixture may run
    env_before = os.environ.get("JACK_DEFAULT_SERVER")
    assert main(["app", "--settings", str(tmp_path / "s.ini"), "--model", str(tiny_model), "--jack-dummy",
                 "--mode", "reference", "--target", str(signal_files["target"]), "--dry-file",
                 str(signal_files["dry"]), "--screenshot", str(shots), "--screenshot-seconds", "1.5"]) == 0
    assert sorted(p.name for p in shots.iterdir()) == ["frozen.png", "idle.png", "running.png"]  # it started
    assert set(jackd_children(os.getpid())) == before
    assert os.environ.get("JACK_DEFAULT_SERVER") == env_before
