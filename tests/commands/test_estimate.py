import json

import numpy as np
import pedalboard
import pytest
import soundfile as sf

from fxmatch import shipped, testsignals
from fxmatch.cli import main
from fxmatch.commands import estimate as estimate_cmd
from fxmatch.preset import preset_from_dict, read_preset
from tests.export.helpers import tiny_onnx


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny exported model that favours the chain Distortion."""
    return tiny_onnx(tmp_path_factory.mktemp("model"), favour=1)


def _render(rate, channels, seconds=1.2, seed=0):
    dry = testsignals.make("chord", rate, seconds, seed=seed, channels=channels)
    wet = pedalboard.Distortion(drive_db=25.0)(dry, rate)
    return dry, wet


def _write(path, audio, rate, subtype):
    sf.write(path, np.asarray(audio).T, rate, subtype=subtype)
    return path


def _one_error_line(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fxmatch: error:"), captured.err
    return lines[0]


def _folder_holds_only(folder, names):
    return sorted(p.name for p in folder.iterdir()) == sorted(names)


@pytest.mark.parametrize(
    ("name", "rate", "channels", "subtype"),
    [
        ("mono44.wav", 44100, 1, "PCM_16"),
        ("stereo48_24bit.wav", 48000, 2, "PCM_24"),
        ("stereo48.flac", 48000, 2, "PCM_24"),
        ("mono22_float.wav", 22050, 1, "FLOAT"),
        ("mono8bit.wav", 16000, 1, "PCM_U8"),
    ],
)
def test_estimate_prints_a_table_for_any_rate_and_format(model, tmp_path, capsys, name, rate, channels, subtype):
    _, wet = _render(rate, channels)
    target = _write(tmp_path / name, wet, rate, subtype)
    assert main(["estimate", str(target), "--model", str(model)]) == 0
    out = capsys.readouterr().out
    assert f"{rate} Hz" in out and ("stereo" if channels == 2 else "mono") in out
    for word in ("chain", "Distortion", "drive_db", "dB", "confidence   sure (p = 1.00)", "alternatives",
                 "no effect", "windows      4 of 4 agree on this chain", "uncalibrated model", "tiny-v0",
                 "CPUExecutionProvider"):
        assert word in out, word


def test_estimate_json_prints_a_valid_preset(model, tmp_path, capsys):
    _, wet = _render(48000, 2)
    target = _write(tmp_path / "t.flac", wet, 48000, "PCM_24")
    assert main(["estimate", str(target), "--model", str(model), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    preset = preset_from_dict(data)
    assert preset.effect_names == ["Distortion"]
    assert 5.0 <= preset.chain[0].params["drive_db"] <= 40.0
    est = data["estimate"]
    assert est["model"] == "tiny-v0" and 0.9 < est["confidence"] <= 1.0 and est["consistency"] == 1.0
    assert est["alternatives"] == [{"chain": [], "probability": pytest.approx(1 - est["confidence"], abs=2e-4)}]
    assert est["windows"] == 4  # 1.2 s: 0.5 s windows at 0, 0.25 and 0.5 s, plus one aligned to the end


def test_estimate_writes_the_preset_atomically(model, tmp_path, capsys):
    _, wet = _render(44100, 1)
    target = _write(tmp_path / "t.wav", wet, 44100, "PCM_16")
    out = tmp_path / "out.fxpreset.json"
    assert main(["estimate", str(target), "--model", str(model), "-o", str(out)]) == 0
    preset = read_preset(out)
    assert preset.effect_names == ["Distortion"] and preset.estimate["model"] == "tiny-v0"
    assert "wrote" in capsys.readouterr().err
    assert _folder_holds_only(tmp_path, ["t.wav", "out.fxpreset.json"])


def test_refine_lowers_the_distance_from_a_wrong_encoder_estimate(model, tmp_path, capsys):
    """Rendered at 40 dB, far from the untrained encoder's guess: the refined drive moves up, the distance drops."""
    dry = testsignals.make("chord", 48000, 1.0, seed=0, channels=2)
    d = _write(tmp_path / "dry.wav", dry, 48000, "FLOAT")
    t = _write(tmp_path / "wet.wav", pedalboard.Distortion(drive_db=40.0)(dry, 48000), 48000, "FLOAT")
    assert main(["estimate", str(t), "--model", str(model), "--json"]) == 0
    encoder_drive = preset_from_dict(json.loads(capsys.readouterr().out)).chain[0].params["drive_db"]
    assert encoder_drive < 35.0  # the case needs a wrong start
    assert main(["estimate", str(t), "--dry", str(d), "--refine", "3", "--model", str(model), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    refine = data["estimate"]["refine"]
    assert refine["steps"] == 3 and refine["channels"] == 2 and refine["seconds"] == pytest.approx(1.0)
    assert refine["kept"] == "refined" and refine["distance_after"] < 0.95 * refine["distance_before"], refine
    assert preset_from_dict(data).chain[0].params["drive_db"] > encoder_drive + 0.5


def test_refine_moves_params_towards_the_truth():
    """Direct call: Distortion rendered at 25 dB, starting from 35 dB."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        dry, wet = _render(44100, 1, seconds=0.5)
        d = _write(Path(folder) / "d.wav", dry, 44100, "FLOAT")
        t = _write(Path(folder) / "t.wav", wet, 44100, "FLOAT")
        chain, report = estimate_cmd.refine(("Distortion",), [("Distortion", {"drive_db": 35.0})], str(d), str(t),
                                            steps=8)
    assert report["kept"] == "refined" and report["distance_after"] < 0.8 * report["distance_before"], report
    assert 25.0 - 2.0 < chain[0][1]["drive_db"] < 33.0  # at least 2 dB of the 10 dB error corrected


def test_refine_needs_dry(model, tmp_path, capsys):
    _, wet = _render(44100, 1)
    target = _write(tmp_path / "t.wav", wet, 44100, "PCM_16")
    out = tmp_path / "o.fxpreset.json"
    assert main(["estimate", str(target), "--model", str(model), "--refine", "5", "-o", str(out)]) == 2
    assert "--refine needs --dry" in _one_error_line(capsys)
    assert not out.exists()


def _bad_targets(folder):
    paths = {}
    paths["missing"] = folder / "missing.wav"
    (folder / "empty.wav").write_bytes(b"")
    paths["empty"] = folder / "empty.wav"
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 4)
    paths["corrupt"] = folder / "corrupt.wav"
    nan = testsignals.make("pluck", 44100, 1.0)
    nan[0, 100] = np.nan
    paths["nan"] = _write(folder / "nan.wav", nan, 44100, "FLOAT")
    inf = testsignals.make("pluck", 44100, 1.0)
    inf[0, 5000] = np.inf
    paths["inf"] = _write(folder / "inf.wav", inf, 44100, "FLOAT")
    paths["silence"] = _write(folder / "silence.wav", np.zeros((2, 44100), np.float32), 44100, "PCM_16")
    paths["no_samples"] = _write(folder / "no_samples.wav", np.zeros((1, 0), np.float32), 44100, "PCM_16")
    (folder / "folder.wav").mkdir()
    paths["folder"] = folder / "folder.wav"
    return paths


def test_every_bad_target_exits_2_with_one_line_and_writes_nothing(model, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    outs = tmp_path / "out"
    outs.mkdir()
    expected = {"missing": "no such file", "empty": "empty file", "corrupt": "not a readable audio file",
                "nan": "NaN", "inf": "NaN or infinite", "silence": "silent", "no_samples": "no audio samples",
                "folder": "is a folder"}
    for name, path in _bad_targets(inputs).items():
        out = outs / f"{name}.fxpreset.json"
        assert main(["estimate", str(path), "--model", str(model), "-o", str(out)]) == 2, name
        line = _one_error_line(capsys)
        assert expected[name] in line, (name, line)
    assert list(outs.iterdir()) == []


def test_bad_dry_exits_2(model, tmp_path, capsys):
    _, wet = _render(44100, 1)
    target = _write(tmp_path / "t.wav", wet, 44100, "PCM_16")
    (tmp_path / "dry.wav").write_bytes(b"junk")
    assert main(["estimate", str(target), "--model", str(model), "--dry", str(tmp_path / "dry.wav"),
                 "--refine", "2"]) == 2
    assert "dry.wav" in _one_error_line(capsys)
    silent = _write(tmp_path / "silent_dry.wav", np.zeros((1, 44100), np.float32), 44100, "PCM_16")
    assert main(["estimate", str(target), "--model", str(model), "--dry", str(silent), "--refine", "2"]) == 2
    assert "silent" in _one_error_line(capsys)


def test_corrupt_or_foreign_model_exits_2(tmp_path, capsys):
    _, wet = _render(44100, 1)
    target = _write(tmp_path / "t.wav", wet, 44100, "PCM_16")
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage" * 50)
    out = tmp_path / "o.fxpreset.json"
    assert main(["estimate", str(target), "--model", str(tmp_path / "bad.onnx"), "-o", str(out)]) == 2
    assert "not a loadable ONNX model" in _one_error_line(capsys)
    assert main(["estimate", str(target), "--model", str(tmp_path / "none.onnx")]) == 2
    assert "no such model file" in _one_error_line(capsys)
    assert not out.exists()


def test_missing_default_model_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shipped, "DEFAULT_MODEL", tmp_path / "models" / "fxmatch-default.onnx")
    _, wet = _render(44100, 1)
    target = _write(tmp_path / "t.wav", wet, 44100, "PCM_16")
    assert main(["estimate", str(target)]) == 2
    line = _one_error_line(capsys)
    assert "fxmatch-default.onnx" in line and "--model" in line


@pytest.mark.parametrize("extra", [["--refine", "-1", "--dry", "x.wav"], ["--top", "-2"], ["--threads", "0"],
                                   ["-o", "no/such/folder/p.fxpreset.json"], ["--provider", "tpu"]])
def test_bad_options_exit_2(model, tmp_path, capsys, extra):
    _, wet = _render(44100, 1)
    target = _write(tmp_path / "t.wav", wet, 44100, "PCM_16")
    assert main(["estimate", str(target), "--model", str(model), *extra]) == 2
    _one_error_line(capsys)


@pytest.mark.parametrize("which", ["target", "target_symlink", "target_hardlink", "dry", "model"])
def test_output_onto_an_input_exits_2_and_leaves_it_untouched(model, tmp_path, capsys, which):
    import os

    dry, wet = _render(44100, 1)
    target = _write(tmp_path / "t.wav", wet, 44100, "PCM_16")
    dry_path = _write(tmp_path / "d.wav", dry, 44100, "PCM_16")
    out = {"target": target, "dry": dry_path, "model": model, "target_symlink": tmp_path / "link.fxpreset.json",
           "target_hardlink": tmp_path / "hard.fxpreset.json"}[which]
    if which == "target_symlink":
        out.symlink_to(target)
    if which == "target_hardlink":
        os.link(target, out)
    before = {p: p.read_bytes() for p in (target, dry_path, model)}
    assert main(["estimate", str(target), "--model", str(model), "--dry", str(dry_path), "-o", str(out)]) == 2
    line = _one_error_line(capsys)
    assert f"{out}: is the input file" in line
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize(("out", "reason"), [("/proc/version", r"cannot (create a file in /proc|write) \(.+\)"),
                                           ("/dev/full", r"cannot write \(No space left on device\)")])
def test_output_onto_proc_or_a_full_device_exits_2(model, tmp_path, capsys, out, reason):
    import re

    _, wet = _render(44100, 1)
    target = _write(tmp_path / "t.wav", wet, 44100, "PCM_16")
    assert main(["estimate", str(target), "--model", str(model), "-o", out]) == 2
    line = _one_error_line(capsys)
    assert re.fullmatch(f"fxmatch: error: {out}: {reason}", line), line


def test_output_to_dev_null_works_and_to_a_folder_exits_2(model, tmp_path, capsys):
    _, wet = _render(44100, 1)
    target = _write(tmp_path / "t.wav", wet, 44100, "PCM_16")
    assert main(["estimate", str(target), "--model", str(model), "-o", "/dev/null"]) == 0
    capsys.readouterr()
    (tmp_path / "p.fxpreset.json").mkdir()
    assert main(["estimate", str(target), "--model", str(model), "-o", str(tmp_path / "p.fxpreset.json")]) == 2
    assert f"{tmp_path / 'p.fxpreset.json'}: is a folder" in _one_error_line(capsys)


# ------------------------------------------------------------------------------- how sure, no effect, short input


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny models that say: no effect (clearly), Distortion (barely: p ~ 0.55), Distortion (calibrated)."""
    folder = tmp_path_factory.mktemp("models")
    return {"dry": tiny_onnx(folder, favour=0, name="dry.onnx"),
            "barely": tiny_onnx(folder, favour=1, margin=0.2, name="barely.onnx"),
            "calibrated": tiny_onnx(folder, favour=1, name="cal.onnx", calibrate="heldout:24@3")}


def test_no_effect_is_printed_as_an_answer_and_written_as_an_empty_chain(models, tmp_path, capsys):
    _, wet = _render(44100, 1)
    target = _write(tmp_path / "t.wav", wet, 44100, "PCM_16")
    assert main(["estimate", str(target), "--model", str(models["dry"])]) == 0
    out = capsys.readouterr().out
    assert "chain        no effect detected\nconfidence   sure (p = 1.00)" in out
    assert "params" not in out and "  p = 0.00  Distortion" in out
    out_file = tmp_path / "p.fxpreset.json"
    assert main(["estimate", str(target), "--model", str(models["dry"]), "--json", "-o", str(out_file)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["chain"] == [] and data["estimate"]["no_effect"] is True
    assert data["estimate"]["confidence_level"] == "sure" and data["estimate"]["warnings"] == []
    preset = read_preset(out_file)  # valid against the preset schema
    assert preset.chain == [] and preset.estimate["no_effect"] is True


def test_an_unsure_estimate_says_so_names_the_alternatives_and_warns(models, tmp_path, capsys):
    _, wet = _render(44100, 1)
    target = _write(tmp_path / "t.wav", wet, 44100, "PCM_16")
    assert main(["estimate", str(target), "--model", str(models["barely"])]) == 0
    captured = capsys.readouterr()
    assert "chain        Distortion\nconfidence   unsure: alternatives are close (p = 0.5" in captured.out
    assert "alternatives\n  p = 0.4" in captured.out and "no effect" in captured.out
    warnings = [ln for ln in captured.err.splitlines() if ln.startswith("fxmatch: warning:")]
    assert len(warnings) == 1 and "unsure estimate (p = 0.5" in warnings[0]
    assert "no effect is nearly as likely; listen before you use it" in warnings[0]
    assert main(["estimate", str(target), "--model", str(models["barely"]), "--json", "--top", "0"]) == 0
    captured = capsys.readouterr()
    est = json.loads(captured.out)["estimate"]  # stdout stays JSON, the warning goes to stderr
    assert est["unsure"] is True and est["confidence_level"] == "unsure" and est["alternatives"] == []
    assert 0.5 < est["confidence"] < 0.6 and est["confidence_text"].startswith("unsure: alternatives are close")
    assert est["windows_agreeing"] == est["windows"] == 4 and est["consistency"] == 1.0
    assert est["calibrated"] is False and est["chain_temperature"] == 1.0
    assert "fxmatch: warning: unsure estimate" in captured.err


def test_a_calibrated_model_reports_its_temperature_and_no_uncalibrated_note(models, tmp_path, capsys):
    _, wet = _render(44100, 1)
    target = _write(tmp_path / "t.wav", wet, 44100, "PCM_16")
    assert main(["estimate", str(target), "--model", str(models["calibrated"]), "--json"]) == 0
    est = json.loads(capsys.readouterr().out)["estimate"]
    assert est["calibrated"] is True and est["chain_temperature"] > 2.0 and est["confidence"] < 0.95
    assert main(["estimate", str(target), "--model", str(models["calibrated"])]) == 0
    assert "uncalibrated" not in capsys.readouterr().out


@pytest.mark.parametrize(("seconds", "shown"), [(1 / 44100, "0.0227 ms"), (0.01, "10 ms"), (0.2, "0.20 s")])
def test_too_short_input_exits_2_naming_the_minimum(model, tmp_path, capsys, seconds, shown):
    _, wet = _render(44100, 1)
    target = _write(tmp_path / "t.wav", wet[:, : max(1, round(seconds * 44100))], 44100, "PCM_16")
    out = tmp_path / "o.fxpreset.json"
    assert main(["estimate", str(target), "--model", str(model), "-o", str(out)]) == 2
    line = _one_error_line(capsys)
    assert f"t.wav: too short to analyse ({shown}; the minimum is 0.25 s" in line, line
    assert not out.exists()


def test_input_shorter_than_a_window_and_a_cut_wav_are_estimated_with_warnings(model, tmp_path, capsys):
    _, wet = _render(44100, 1, seconds=2.0)
    short = _write(tmp_path / "short.wav", wet[:, : int(0.3 * 44100)], 44100, "PCM_16")
    assert main(["estimate", str(short), "--model", str(model)]) == 0
    err = capsys.readouterr().err
    assert f"fxmatch: warning: {short}: only 0.30 s of audio, shorter than the model's 0.5 s analysis window" in err
    full = _write(tmp_path / "full.wav", wet, 44100, "PCM_16")
    (tmp_path / "cut.wav").write_bytes(full.read_bytes()[: 44 + 2 * 44100])
    assert main(["estimate", str(tmp_path / "cut.wav"), "--model", str(model), "--json"]) == 0
    captured = capsys.readouterr()
    assert "the WAV header announces 2.00 s of audio but the file holds only 1.00 s" in captured.err
    assert json.loads(captured.out)["estimate"]["warnings"][0].endswith("analysing what is there")


def test_a_model_with_wrong_output_shapes_exits_2_with_one_line(model, tmp_path, capsys):
    from tests.test_inference import _model_metadata, _wrong_shape_onnx

    bad = _wrong_shape_onnx(tmp_path / "bad.onnx", _model_metadata(model), 3, 1)
    _, wet = _render(44100, 1)
    target = _write(tmp_path / "t.wav", wet, 44100, "PCM_16")
    assert main(["estimate", str(target), "--model", str(bad)]) == 2
    assert "output chain_logits has shape [batch, 3] but its metadata needs" in _one_error_line(capsys)


def test_no_search_refines_and_refine_0_turns_it_off(model, tmp_path, capsys):
    """`--dry --no-search` is the single-chain path: it refines with the default steps; `--refine 0` does not."""
    from fxmatch.commands.estimate import DRY_REFINE_STEPS

    dry = testsignals.make("chord", 48000, 1.0, seed=0, channels=1)
    d = _write(tmp_path / "dry.wav", dry, 48000, "FLOAT")
    t = _write(tmp_path / "wet.wav", pedalboard.Distortion(drive_db=40.0)(dry, 48000), 48000, "FLOAT")
    assert main(["estimate", str(t), "--dry", str(d), "--no-search", "--model", str(model), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)["estimate"]
    assert meta["refine"]["steps"] == DRY_REFINE_STEPS and "search" not in meta
    assert main(["estimate", str(t), "--dry", str(d), "--refine", "0", "--model", str(model), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)["estimate"]
    assert "refine" not in meta and "search" not in meta


@pytest.fixture(scope="module")
def no_effect_model(tmp_path_factory):
    """A tiny exported model sure that nothing was applied (the empty chain favoured)."""
    return tiny_onnx(tmp_path_factory.mktemp("model0"), favour=0, name="none.onnx")


def _misaligned_pair(tmp_path, offset: int):
    """dry.wav and wet.wav (48 kHz mono): a chord and the same through a 40 dB Distortion starting `offset` samples
    later (pedalboard's render)."""
    dry = testsignals.make("chord", 48000, 1.5, seed=2, channels=1)
    wet = pedalboard.Distortion(drive_db=40.0)(dry, 48000)
    wet = np.concatenate([np.zeros((1, offset), np.float32), wet], axis=1)
    return (_write(tmp_path / "dry.wav", dry, 48000, "FLOAT"), _write(tmp_path / "wet.wav", wet, 48000, "FLOAT"))


def test_dry_searches_by_default_and_names_the_chain_the_encoder_missed(no_effect_model, tmp_path, capsys):
    """The encoder says "no effect"; with the dry take (10 ms early) the search names Distortion near 40 dB."""
    d, t = _misaligned_pair(tmp_path, 480)
    out = tmp_path / "p.fxpreset.json"
    assert main(["estimate", str(t), "--dry", str(d), "--model", str(no_effect_model), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    preset = read_preset(out)
    assert preset.chain_names == ["Distortion"]  # and the output level, a trailing Gain when audible
    assert abs(preset.chain[0].params["drive_db"] - 40.0) < 3.0, preset.chain[0].params
    meta = preset.estimate
    assert meta["chain_source"] == "search" and meta["encoder_chain"] == [] and meta["no_effect"] is False
    assert meta["search"]["offset_samples"] == 480 and meta["search"]["k"] == estimate_cmd.DEFAULT_SEARCH_K
    assert [r["chain"] for r in meta["ranking"]] == [["Distortion"], []]
    assert meta["ranking"][0]["relative"] < 0.2 < meta["ranking"][1]["relative"]
    assert "its guess: no effect detected" in captured.out and "+10.00 ms (+480 samples" in captured.out
    # the choice counts the encoder's probabilities, yet the clearly closer chain wins over the one it preferred
    assert "x model's probability ^ -" in captured.out
    assert " *" in captured.out and "Distortion" in captured.out.split("ranking")[1]
    assert f"wrote {out}" in captured.err


def test_estimate_dry_is_capture_with_the_models_chains(no_effect_model, tmp_path, capsys):
    """`estimate --dry` runs capture's own core (`commands.capture.capture_files`): on one pair, with the model's
    chains as capture's `--search-k` candidates, both write the same chain, params and output level (a quieter wet
    take: a trailing Gain near -6 dB), and both report what the identification read."""
    dry, wet = (str(p) for p in _misaligned_pair(tmp_path, 240))
    audio, _ = sf.read(wet, dtype="float32")
    quiet = str(_write(tmp_path / "quiet.wav", audio[None] * 0.5, 48000, "FLOAT"))
    a, b = tmp_path / "estimate.fxpreset.json", tmp_path / "capture.fxpreset.json"
    assert main(["estimate", quiet, "--dry", dry, "--model", str(no_effect_model), "-o", str(a)]) == 0
    assert main(["capture", dry, quiet, "--search-k", "64", "--model", str(no_effect_model), "-o", str(b)]) == 0
    out = capsys.readouterr().out
    via_estimate, via_capture = read_preset(a), read_preset(b)
    assert via_estimate.chain_names == via_capture.chain_names == ["Distortion"]
    assert [e.params for e in via_estimate.chain] == [e.params for e in via_capture.chain]
    assert abs(via_estimate.output_level_db + 6.02) < 1.0
    assert via_estimate.estimate["search"]["identification"]["reads"]["Distortion"]["evidence"] > 0.9
    assert out.count("identified   Distortion from the pair alone") == 2


def test_dry_search_k_and_time_budget_reach_the_search(model, tmp_path, capsys):
    d, t = _misaligned_pair(tmp_path, 0)
    assert main(["estimate", str(t), "--dry", str(d), "--model", str(model), "--json", "--search-k", "1",
                 "--time-budget", "0.01"]) == 0
    captured = capsys.readouterr()
    meta = json.loads(captured.out)["estimate"]
    assert meta["search"]["k"] == 1 and meta["search"]["complete"] is False
    assert meta["search"]["candidates"] == 2  # the encoder's first chain (Distortion) and its sub-chain ()
    assert "the time budget (0.01 s) ended the search early" in captured.err


def test_a_dry_file_of_another_performance_exits_2(model, tmp_path, capsys):
    _, t = _misaligned_pair(tmp_path, 0)
    other = _write(tmp_path / "other.wav", testsignals.make("noise", 48000, 1.5, seed=8, channels=1), 48000, "FLOAT")
    assert main(["estimate", str(t), "--dry", str(other), "--model", str(model)]) == 2
    assert "same performance" in _one_error_line(capsys)


@pytest.mark.parametrize(("extra", "message"), [
    (["--search-k", "4"], "--search-k needs --dry"),
    (["--no-search"], "--no-search needs --dry"),
    (["--dry", "d.wav", "--no-search", "--time-budget", "3"], "--time-budget needs the search"),
    (["--dry", "d.wav", "--refine", "5", "--search-k", "4"], "--search-k needs the search"),
    (["--dry", "d.wav", "--search-k", "0"], "--search-k must be >= 1"),
    (["--dry", "d.wav", "--time-budget", "-1"], "--time-budget must be > 0"),
])
def test_search_options_out_of_place_exit_2(model, tmp_path, capsys, extra, message):
    _, wet = _render(44100, 1)
    target = _write(tmp_path / "t.wav", wet, 44100, "PCM_16")
    assert main(["estimate", str(target), "--model", str(model), *extra]) == 2
    assert message in _one_error_line(capsys)
