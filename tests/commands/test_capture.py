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
    assert main(["capture", dry, wet, "-o", str(out), "--time-budget", "20", "--top", "3"]) == 0
    captured = capsys.readouterr()
    preset = read_preset(out)
    assert preset.estimate["capture"]["offset_samples"] == 160
    assert len(preset.estimate["ranking"]) == 3
    assert "offset       +10.00 ms (+160 samples" in captured.out and "ranking" in captured.out
    # without the encoder (no --search-k) the choice is the distance alone, with the parsimony tolerance
    assert "the shortest chain within 5 % of the closest plus 1 % of no effect)" in captured.out
    assert "ln(" not in captured.out
    assert f"wrote {out}" in captured.err
    assert preset.chain_names == list(preset.estimate["capture"]["chain"])


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


@pytest.mark.parametrize("flag", [[], ["--match-level"]])
def test_a_level_shifted_wet_take_gets_its_output_level_in_the_preset(pair, tmp_path, capsys, flag):
    """The wet take recorded 9.5 dB lower: the search fits the output level (always; --match-level is a deprecated
    no-op kept for old scripts), still names Distortion at 25 dB, and the preset ends in a Gain of about -9.5 dB."""
    from fxmatch.preset import read_preset
    from tests.export.helpers import tiny_onnx

    dry, wet = pair
    audio, _ = sf.read(wet, dtype="float32")
    quiet = _write(tmp_path / "quiet.wav", audio * 10 ** (-9.5 / 20))
    model = tiny_onnx(tmp_path, favour=0)  # the model's chains (no effect, Distortion) are the candidates
    out = tmp_path / "quiet.fxpreset.json"
    assert main(["capture", dry, quiet, "--json", *flag, "--search-k", "2", "--model", str(model),
                 "-o", str(out)]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    cap = data["estimate"]["capture"]
    assert [e["effect"] for e in data["chain"]] == ["Distortion", "Gain"] and cap["offset_samples"] == 160
    assert abs(data["chain"][0]["params"]["drive_db"] - 25.0) < 3.0 and abs(cap["gain_db"] + 9.5) < 1.5, cap
    assert data["chain"][1]["params"]["gain_db"] == pytest.approx(cap["output_level_db"], abs=1e-3)
    assert cap["candidates"] == 2
    preset = read_preset(out)
    assert preset.chain_names == ["Distortion"] and abs(preset.output_level_db + 9.5) < 1.5
    assert ("--match-level is no longer needed" in captured.err) == bool(flag)


# ----------------------------------------------------------------------------------------------------------------
# issue 25: capture says when it does not fit


def _take(seconds: float = 3.0, seed: int = 3) -> np.ndarray:
    """8 seeded plucks over `seconds` at 16 kHz, float32 `[samples]`."""
    return testsignals.pluck(RATE, seconds, np.random.default_rng(seed), n_notes=8)[0]


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("fxmatch: warning:")]


def test_another_instrument_is_captured_with_warnings_on_stderr_and_in_json(tmp_path, capsys):
    """The bundled guitar DI against the keys chord's wet take (another instrument; the issue's "keys_dry against
    guitar_wet", exit 0 without a word): exit 0, one stderr line per warning, the same lines in --json."""
    args = ["capture", "examples/guitar_distortion_dry.flac", "examples/chord_peakfilter_phaser_target.flac",
            "--json", "--time-budget", "4", "--seed", "1"]
    assert main(args) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    lines = _warnings(captured.err)
    assert any("may not be one performance" in w for w in data["estimate"]["warnings"])
    assert [f"fxmatch: warning: {w}" for w in data["estimate"]["warnings"]] == lines
    assert data["estimate"]["capture"]["partials_correlation"] < 0.2
    assert any("still far" in w for w in data["estimate"]["warnings"]), data["estimate"]["warnings"]


@pytest.mark.filterwarnings("error")  # a numpy RuntimeWarning would fail the command (exit 1)
@pytest.mark.parametrize("start, seconds", [(1.5, 1.0), (2.0, 0.5)])
def test_an_excerpt_of_the_wet_take_is_found_in_the_dry_take(tmp_path, capsys, start, seconds):
    """A 1 s and a 0.5 s excerpt (was: refused, or "overlap 0.00 s" with two RuntimeWarnings)."""
    dry = _take()
    wet = pedalboard.Distortion(drive_db=25.0)(dry[None], RATE)[0]
    excerpt = wet[int(start * RATE) : int((start + seconds) * RATE)]
    args = ["capture", _write(tmp_path / "dry.wav", dry), _write(tmp_path / "wet.wav", excerpt), "--time-budget", "3"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"offset       {-1000 * start:+.2f} ms" in out and "found along the whole of the longer file" in out, out


def test_a_wet_file_too_short_to_fit_anything_says_the_minimum(tmp_path, capsys):
    dry = _take()
    short = _write(tmp_path / "short.wav", dry[RATE : RATE + int(0.3 * RATE)])
    assert main(["capture", _write(tmp_path / "dry.wav", dry), short]) == 2
    line = _one_error_line(capsys)
    assert "the wet signal lasts 0.30 s, too short to fit anything: at least 0.5 s is needed" in line


def test_a_dry_file_2s_late_is_aligned_without_an_edge_warning(tmp_path, capsys):
    """The dry take starting 2 s later than the wet one (was: pinned at -1000 ms without a word)."""
    take = _take()
    dry = np.concatenate([0.3 * _take(2.0, seed=9), take])
    wet = pedalboard.Distortion(drive_db=25.0)(take[None], RATE)[0]
    args = ["capture", _write(tmp_path / "dry.wav", dry), _write(tmp_path / "wet.wav", wet), "--time-budget", "3",
            "--json"]
    assert main(args) == 0
    cap = json.loads(capsys.readouterr().out)["estimate"]["capture"]
    assert cap["offset_samples"] == -2 * RATE and not cap["offset_at_edge"] and cap["whole_take_search"]


def test_max_offset_is_checked_before_the_work(pair, capsys):
    dry, wet = pair
    assert main(["capture", dry, wet, "--max-offset", "0"]) == 2
    assert "--max-offset must be > 0" in _one_error_line(capsys)


def test_progress_goes_to_a_log_as_plain_lines(pair, capsys, monkeypatch):
    """stderr not a terminal (a log): plain lines naming the stage, no carriage returns (was: nothing for minutes)."""
    from fxmatch.commands import progress

    monkeypatch.setattr(progress, "PLAIN_PROGRESS_SECONDS", 0.0)
    dry, wet = pair
    assert main(["capture", dry, wet, "--time-budget", "3"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("fxmatch: searching")]
    assert lines and "\r" not in err
    assert "stage 1 of 3 (16 kHz, 0.5 s)" in lines[0] and "closest so far" in lines[0]


def test_progress_on_a_terminal_rewrites_one_line_and_ends_with_the_choice(capsys):
    from fxmatch.capture import CaptureProgress
    from fxmatch.commands.capture import progress_line
    from fxmatch.commands.progress import progress_printer

    show = progress_printer(progress_line, tty=True)
    show(CaptureProgress(0, 3, 1, 20, 0.2, ("Reverb",), 0.25, 16000, 0.5, 1.0))
    show(CaptureProgress(2, 3, 0, 0, 1.0, ("Chorus", "Reverb"), 0.3, 44100, 1.5, 9.0, done=True))
    err = capsys.readouterr().err
    assert err.startswith("\rsearching  20 %  stage 1 of 3 (16 kHz, 0.5 s)")
    assert err.endswith("\rsearched 100 %  chosen: Chorus -> Reverb (30.0 % of no effect), 9 s\x1b[K")
