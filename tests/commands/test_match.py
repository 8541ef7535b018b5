"""`fxmatch match REFERENCE MY_TAKE`: writes a valid preset, says when the take is the same performance, exit 2
with one line on bad input."""

from __future__ import annotations

import json

import numpy as np
import pedalboard
import pytest
import soundfile as sf

from fxmatch import testsignals
from fxmatch.cli import main
from fxmatch.preset import read_preset

RATE = 44100


def _take(seed: int, seconds: float = 3.0) -> np.ndarray:
    x = testsignals.pluck(RATE, seconds, np.random.default_rng(seed), n_notes=6)[0]
    return (x * 0.1 / np.sqrt(np.mean(np.square(x, dtype=np.float64)))).astype(np.float32)


def _write(path, audio, rate=RATE) -> str:
    sf.write(path, np.asarray(audio, dtype=np.float32), rate, subtype="FLOAT")
    return str(path)


@pytest.fixture
def files(tmp_path):
    """(reference.wav, take.wav, x1.wav): plucks through a Distortion, other plucks, and the reference's dry take."""
    x1 = _take(1)
    ref = pedalboard.Distortion(drive_db=30.0)(x1[None], float(RATE))[0]
    return (_write(tmp_path / "reference.wav", ref), _write(tmp_path / "take.wav", _take(2)),
            _write(tmp_path / "x1.wav", x1))


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fxmatch: error:"), err
    return err[0]


def test_match_writes_a_valid_preset_and_prints_the_chain(files, tmp_path, capsys):
    ref, take, _ = files
    out = tmp_path / "matched.fxpreset.json"
    assert main(["match", ref, take, "-o", str(out), "--evaluations", "40", "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "matched" in text and "blind" in text and "output level" in text
    preset = read_preset(out)
    assert preset.estimate["match"]["chain"] == preset.chain_names
    assert not list(tmp_path.glob("*.tmp*"))


def test_match_json_prints_the_preset(files, capsys):
    ref, take, _ = files
    assert main(["match", ref, take, "--json", "--evaluations", "20", "--threads", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "fxmatch-preset" and "match" in data["estimate"]


@pytest.mark.parametrize("seconds, heard", [(None, 3.0), (1.5, 1.5)])
def test_match_hears_the_loudest_seconds_asked_for(files, capsys, seconds, heard):
    """Both takes are 3 s: the default (4 s) hears them whole, --seconds 1.5 the loudest 1.5 s of each."""
    ref, take, _ = files
    extra = [] if seconds is None else ["--seconds", str(seconds)]
    assert main(["match", ref, take, "--json", "--evaluations", "10", "--threads", "1", *extra]) == 0
    assert json.loads(capsys.readouterr().out)["estimate"]["match"]["heard_seconds"] == pytest.approx(heard, abs=0.01)


def test_match_says_when_the_take_is_the_same_performance(files, capsys):
    ref, _, x1 = files
    assert main(["match", ref, x1, "--evaluations", "10", "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "same performance" in err and "fxmatch capture" in err


@pytest.mark.parametrize("args, message", [
    (["--time-budget", "0"], "--time-budget must be > 0"),
    (["--evaluations", "0"], "--evaluations must be >= 1"),
    (["--top", "0"], "--top must be >= 1"),
    (["--seconds", "0.5"], "--seconds must be >= 1"),
    (["--seconds", "nan"], "--seconds must be > 0"),
    (["--seconds", "61"], "--seconds must be at most 60"),
])
def test_match_bad_options_exit_2_with_one_line(files, capsys, args, message):
    ref, take, _ = files
    assert main(["match", ref, take, *args]) == 2
    assert message in _one_error_line(capsys)


def test_match_missing_file_exits_2(files, tmp_path, capsys):
    ref, _, _ = files
    assert main(["match", ref, str(tmp_path / "nope.wav")]) == 2
    assert "no such" in _one_error_line(capsys)


def test_match_silent_take_exits_2(files, tmp_path, capsys):
    ref, _, _ = files
    silent = _write(tmp_path / "silent.wav", np.zeros(RATE * 2))
    assert main(["match", ref, silent, "--threads", "1"]) == 2
    assert "silent" in _one_error_line(capsys)


def test_match_output_into_a_missing_folder_exits_2_and_writes_nothing(files, tmp_path, capsys):
    ref, take, _ = files
    assert main(["match", ref, take, "-o", str(tmp_path / "no" / "such" / "out.fxpreset.json")]) == 2
    _one_error_line(capsys)
    assert not (tmp_path / "no").exists()
