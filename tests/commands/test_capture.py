"""`fxmatch capture DRY WET`: writes a valid preset, prints the ranking, exit 2 with one line on bad input."""

from __future__ import annotations

import json

import numpy as np
import pedalboard
import pytest
import soundfile as sf

from fxmatch import testsignals
from fxmatch.cli import main
from fxmatch.preset import read_preset

RATE = 16000


def _write(path, audio, rate=RATE):
    sf.write(path, np.asarray(audio, dtype=np.float32), rate, subtype="FLOAT")
    return str(path)


@pytest.fixture
def pair(tmp_path):
    """(dry.wav, wet.wav): 1.2 s of plucks and the same through a 25 dB Distortion, the wet file 10 ms later."""
    dry = testsignals.make("pluck", RATE, 1.2, seed=3)[0]
    wet = pedalboard.Distortion(drive_db=25.0)(dry[None], RATE)[0]
    wet = np.concatenate([np.zeros(160, dtype=np.float32), wet])
    return _write(tmp_path / "dry.wav", dry), _write(tmp_path / "wet.wav", wet)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fxmatch: error:"), err
    return err[0]


def test_capture_writes_a_valid_preset_and_prints_the_ranking(pair, tmp_path, capsys):
    dry, wet = pair
    out = tmp_path / "out.fxpreset.json"
    assert main(["capture", dry, wet, "-o", str(out), "--time-budget", "4", "--top", "3"]) == 0
    captured = capsys.readouterr()
    preset = read_preset(out)
    assert preset.estimate["capture"]["offset_samples"] == 160
    assert len(preset.estimate["ranking"]) == 3
    assert "offset       +10.00 ms (+160 samples" in captured.out and "ranking" in captured.out
    # without the encoder (no --search-k) the choice is the distance alone, with the parsimony tolerance
    assert "the shortest chain within 5 % of the closest)" in captured.out and "ln(" not in captured.out
    assert f"wrote {out}" in captured.err
    assert preset.effect_names == list(preset.estimate["capture"]["chain"])


def test_capture_json_and_files_at_different_rates(pair, tmp_path, capsys):
    dry, wet = pair
    audio, _ = sf.read(dry, dtype="float32")
    import soxr

    dry22 = _write(tmp_path / "dry22.wav", soxr.resample(audio, RATE, 22050), 22050)
    assert main(["capture", dry22, wet, "--json", "--time-budget", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "fxmatch-preset" and data["estimate"]["capture"]["sample_rate"] == RATE
    assert abs(data["estimate"]["capture"]["offset_samples"] - 160) <= 1


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"),
    ("unrelated", "same performance"),
    ("silent", "silent"),
    ("short", "at least 0.5 s"),
    ("budget", "--time-budget must be > 0"),
])
def test_bad_input_exits_2_with_one_line(pair, tmp_path, capsys, case, message):
    dry, wet = pair
    args = [dry, wet]
    if case == "missing":
        args = [str(tmp_path / "nope.wav"), wet]
    elif case == "unrelated":
        args = [dry, _write(tmp_path / "other.wav", testsignals.make("noise", RATE, 1.2, seed=8)[0])]
    elif case == "silent":
        args = [_write(tmp_path / "zero.wav", np.zeros(RATE)), wet]
    elif case == "short":
        audio, _ = sf.read(dry, dtype="float32")
        args = [_write(tmp_path / "short.wav", audio[:3000]), wet]
    elif case == "budget":
        args = [dry, wet, "--time-budget", "0"]
    assert main(["capture", *args]) == 2
    assert message in _one_error_line(capsys)


def test_a_level_shifted_wet_take_is_matched_with_match_level(pair, tmp_path, capsys):
    """The wet take recorded 9.5 dB lower: --match-level fits the output gain and still names Distortion at 25 dB."""
    from tests.export.helpers import tiny_onnx

    dry, wet = pair
    audio, _ = sf.read(wet, dtype="float32")
    quiet = _write(tmp_path / "quiet.wav", audio * 10 ** (-9.5 / 20))
    model = tiny_onnx(tmp_path, favour=0)  # the model's chains (no effect, Distortion) are the candidates
    assert main(["capture", dry, quiet, "--json", "--match-level", "--search-k", "2", "--model", str(model)]) == 0
    data = json.loads(capsys.readouterr().out)
    cap = data["estimate"]["capture"]
    assert [e["effect"] for e in data["chain"]] == ["Distortion"] and cap["offset_samples"] == 160
    assert abs(data["chain"][0]["params"]["drive_db"] - 25.0) < 3.0 and abs(cap["gain_db"] + 9.5) < 1.5, cap
    assert cap["candidates"] == 2
