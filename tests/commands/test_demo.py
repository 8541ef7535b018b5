import contextlib
import io
import json
import os
import re
import shutil

import numpy as np
import pytest
import soundfile as sf

from fxmatch import shipped
from fxmatch.audio_io import read_audio
from fxmatch.cli import main
from fxmatch.commands import demo as demo_cmd
from fxmatch.preset import read_preset
from tests.export.helpers import tiny_onnx


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny exported model (16 kHz, Distortion only) that favours the chain Distortion."""
    return tiny_onnx(tmp_path_factory.mktemp("model"), favour=1)


@pytest.fixture(scope="module")
def demo_run(model, tmp_path_factory):
    """`fxmatch demo --model tiny.onnx -o OUT` run once: (exit code, stdout, OUT)."""
    out = tmp_path_factory.mktemp("demo") / "nested" / "out"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["demo", "--model", str(model), "-o", str(out)])
    return rc, buf.getvalue(), out


@pytest.fixture(scope="module")
def examples():
    return demo_cmd.load_examples()


def _one_error_line(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fxmatch: error:"), captured.err
    return lines[0]


def test_bundled_examples_are_small_and_varied(examples):
    folder = shipped.DEFAULT_EXAMPLES
    assert sum(p.stat().st_size for p in folder.iterdir()) < 2_000_000
    lengths = sorted({len(ex.true.chain) for ex in examples})
    assert lengths == [0, 1, 2, 3]
    for ex in examples:
        info = sf.info(str(ex.target))
        assert (info.samplerate, info.channels, info.frames) == (44100, 1, 3 * 44100)


def test_bundled_targets_are_their_dry_clip_through_the_true_chain(examples):
    for ex in examples:
        dry, rate = read_audio(ex.dry)
        target, _ = read_audio(ex.target)
        rendered = ex.true.to_pedalboard()(dry, rate)
        # the target is the rendering stored in 16 bits: within one quantisation step
        assert np.max(np.abs(rendered - target)) <= 1.0 / 32768 + 1e-7, ex.name


def test_demo_prints_the_table_and_names_the_folder(demo_run, examples):
    rc, out, folder = demo_run
    assert rc == 0
    for word in ("true", "estimated", "p = ", "MR-STFT", "no effect", "drive_db", "tiny-v0", "CPUExecutionProvider",
                 "chain correct for 1 of 6"):
        assert word in out, word
    for ex in examples:
        assert ex.name in out
    assert "Compressor -> Chorus -> Reverb" in out and "no effect" in out
    assert len(re.findall(r"\n  how sure   sure \(p = 1\.00\); windows agreeing: (\d+) of \1\n", out)) == len(examples)
    assert "note: tiny-v0 is not calibrated" in out and "unsure" not in out
    assert out.rstrip().splitlines()[-1].strip() == str(folder.resolve())


def test_demo_answers_each_example_with_the_dry_take_too(demo_run, examples):
    """Besides the blind estimate, each example's answer with its dry take (capture through the twins over the
    model's chains): printed, summarised, written as a preset and a C WAV; the guitar's Distortion is found."""
    from fxmatch.preset import read_preset

    rc, out, folder = demo_run
    assert rc == 0 and out.count("\n  with dry   ") == len(examples) and "with the dry take: chain correct for" in out
    for ex in examples:
        preset = read_preset(folder / f"{ex.name}.with-dry.fxpreset.json")
        assert (folder / f"{ex.name}_C_with_dry.wav").is_file()
        assert preset.estimate["chain_source"] == "search"
        if ex.name == "guitar_distortion":
            assert preset.chain_names == ["Distortion"]
            assert preset.estimate["mrstft_to_target"] < 0.1 * preset.estimate["mrstft_no_effect"]


def test_demo_says_which_true_effects_are_inaudible(demo_run):
    """drums: a 0.6 dB PeakFilter; bass: a compressor whose threshold sits above the signal (the bundled examples)."""
    rc, out, _ = demo_run
    assert rc == 0
    block = out[out.index("drums_compressor_peakfilter_delay (drums)"):]
    assert "(PeakFilter is inaudible here: removing it changes the target by only" in block.split("\n\n")[0]
    block = out[out.index("bass_compressor_chorus_reverb (bass)"):]
    assert "(Compressor is inaudible here: removing it leaves the target unchanged" in block.split("\n\n")[0]
    assert out.count("is inaudible here") == 2
    assert re.search(r"chain correct for 1 of 6 \(\d of 6 audibly: ", out)
    # the answers with the dry take are counted by the same rule
    assert re.search(r"with the dry take: chain correct for \d of 6 \(\d of 6 audibly\)", out)


def test_demo_says_no_effect_detected_and_flags_unsure_estimates(tmp_path, examples):
    """A model that always hears no effect, and one that barely prefers Distortion (p ~ 0.55)."""
    dry_model = tiny_onnx(tmp_path, favour=0, name="dry.onnx")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["demo", "--model", str(dry_model), "-o", str(tmp_path / "dry"), "--no-dry"]) == 0
    out = buf.getvalue()
    assert out.count("  estimated  no effect detected") == len(examples)
    assert "chain correct for 1 of 6" in out  # keys_clean: no effect is the right answer
    preset = read_preset(tmp_path / "dry" / "keys_clean.fxpreset.json")
    assert preset.chain == [] and preset.estimate["no_effect"] is True
    barely = tiny_onnx(tmp_path, favour=1, margin=0.2, name="barely.onnx")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["demo", "--model", str(barely), "-o", str(tmp_path / "barely"), "--no-dry"]) == 0
    out = buf.getvalue()
    assert out.count("  how sure   unsure: alternatives are close (p = 0.5") == len(examples)
    assert "6 of 6 estimates are unsure (listen before using them)" in out
    md = (tmp_path / "barely" / "report.md").read_text()
    assert "| how sure |" in md and "unsure: alternatives are close" in md


def test_demo_writes_a_valid_preset_per_example(demo_run, examples):
    _, _, folder = demo_run
    for ex in examples:
        preset = read_preset(folder / f"{ex.name}.fxpreset.json")
        assert preset.effect_names == ["Distortion"]  # the tiny model knows only Distortion and favours it
        est = preset.estimate
        assert est["model"] == "tiny-v0" and est["example"] == ex.name and 0.9 < est["confidence"] <= 1
        assert est["mrstft_to_target"] >= 0 and est["mrstft_no_effect"] >= 0


def test_demo_ab_wavs_are_the_target_and_the_dry_clip_through_the_estimate(demo_run, examples):
    _, _, folder = demo_run
    for ex in examples:
        a, rate_a = read_audio(folder / f"{ex.name}_A_target.wav")
        b, rate_b = read_audio(folder / f"{ex.name}_B_estimate.wav")
        target, rate = read_audio(ex.target)
        dry, _ = read_audio(ex.dry)
        assert rate_a == rate_b == rate and a.shape == b.shape == target.shape
        np.testing.assert_array_equal(a, target)
        preset = read_preset(folder / f"{ex.name}.fxpreset.json")
        np.testing.assert_allclose(b, preset.to_pedalboard()(dry, rate), atol=1e-6)


def test_demo_distances_say_which_rendering_is_closer(demo_run):
    _, _, folder = demo_run

    def est(name):
        return read_preset(folder / f"{name}.fxpreset.json").estimate

    clean, dist = est("keys_clean"), est("guitar_distortion")
    assert clean["mrstft_no_effect"] == 0.0  # the clean target is its dry clip
    assert clean["mrstft_to_target"] > 1.0  # distorting it moves away
    assert dist["mrstft_to_target"] < dist["mrstft_no_effect"]  # a Distortion estimate is closer than no effect


def test_demo_writes_the_report_image_and_markdown(demo_run, examples):
    _, _, folder = demo_run
    png = folder / "report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(str(png))
    assert image.shape[0] > 600 and image.shape[1] > 600
    md = (folder / "report.md").read_text()
    assert "![spectrograms of target and estimate](report.png)" in md
    for ex in examples:
        assert f"## {ex.name}" in md and f"{ex.name}_B_estimate.wav" in md
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # atomic writes leave no temporary files


def test_demo_refine_improves_a_wrong_estimate_and_reports_the_twin_distance(model, tmp_path, capsys):
    """The tiny model's drive is off by a few dB on guitar_distortion: 2 steps move it towards the truth."""
    src = shipped.DEFAULT_EXAMPLES
    index = json.loads((src / "examples.json").read_text())
    entry = next(e for e in index["examples"] if e["name"] == "guitar_distortion")
    for key in ("dry", "target"):
        shutil.copy(src / entry[key], tmp_path / entry[key])
    (tmp_path / "examples.json").write_text(json.dumps({**index, "examples": [entry]}))
    truth = entry["chain"][0]["params"]["drive_db"]
    drives = {}
    for steps in ("0", "2"):
        out = tmp_path / f"out{steps}"
        assert main(["demo", "--model", str(model), "--examples", str(tmp_path), "-o", str(out), "--refine", steps, "--no-dry"]) == 0
        drives[steps] = read_preset(out / "guitar_distortion.fxpreset.json").chain[0].params["drive_db"]
    assert "refine     2 steps" in capsys.readouterr().out
    refine = read_preset(tmp_path / "out2" / "guitar_distortion.fxpreset.json").estimate["refine"]
    assert refine["steps"] == 2 and refine["kept"] == "refined", refine
    assert refine["distance_after"] < 0.8 * refine["distance_before"], refine
    assert abs(drives["0"] - truth) > 2.0  # the case needs a wrong start
    assert abs(drives["2"] - truth) < abs(drives["0"] - truth) - 1.0, drives


def test_demo_without_the_shipped_model_says_so_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shipped, "DEFAULT_MODEL", tmp_path / "models" / "fxmatch-default.onnx")
    out = tmp_path / "out"
    assert main(["demo", "-o", str(out)]) == 2
    line = _one_error_line(capsys)
    assert "shipped model" in line and "--model" in line
    assert not out.exists()


def test_demo_with_a_missing_model_file_exits_2(tmp_path, capsys):
    assert main(["demo", "--model", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "out")]) == 2
    assert "nope.onnx: no such model file" in _one_error_line(capsys)


def test_demo_with_a_corrupt_model_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file at all")
    assert main(["demo", "--model", str(bad), "-o", str(tmp_path / "out")]) == 2
    assert "bad.onnx" in _one_error_line(capsys)


def test_demo_output_under_a_file_exits_2(model, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert main(["demo", "--model", str(model), "-o", str(blocker / "out")]) == 2
    assert "cannot write the demo output" in _one_error_line(capsys)
    assert main(["demo", "--model", str(model), "-o", str(blocker)]) == 2
    assert "is not a folder" in _one_error_line(capsys)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write into read-only folders")
def test_demo_read_only_output_folder_exits_2(model, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert main(["demo", "--model", str(model), "-o", str(ro)]) == 2
        assert "cannot write the demo output" in _one_error_line(capsys)
    finally:
        ro.chmod(0o700)


def test_demo_missing_or_bad_examples_exit_2(model, tmp_path, capsys):
    assert main(["demo", "--model", str(model), "--examples", str(tmp_path / "none")]) == 2
    assert "examples folder" in _one_error_line(capsys)
    (tmp_path / "examples.json").write_text("{not json")
    assert main(["demo", "--model", str(model), "--examples", str(tmp_path)]) == 2
    assert "examples.json: not a readable examples index" in _one_error_line(capsys)
    index = {"format": "fxmatch-examples", "version": 1,
             "examples": [{"name": "x", "dry": "x_dry.flac", "target": "x_target.flac",
                           "chain": [{"effect": "Fuzz", "params": {}}]}]}
    (tmp_path / "examples.json").write_text(json.dumps(index))
    assert main(["demo", "--model", str(model), "--examples", str(tmp_path)]) == 2
    assert "unknown effect 'Fuzz'" in _one_error_line(capsys)
    index["examples"][0]["chain"] = []
    (tmp_path / "examples.json").write_text(json.dumps(index))
    assert main(["demo", "--model", str(model), "--examples", str(tmp_path)]) == 2
    assert "x_dry.flac is missing" in _one_error_line(capsys)


def test_demo_negative_refine_exits_2(model, capsys):
    assert main(["demo", "--model", str(model), "--refine", "-1"]) == 2
    assert "--refine" in _one_error_line(capsys)


@pytest.mark.parametrize("role", ["target", "dry"])
def test_demo_output_onto_an_example_file_exits_2_before_any_work(model, tmp_path, capsys, role):
    """An examples folder used as OUT_DIR whose audio has the name of a file the demo writes: refused, untouched."""
    src = shipped.DEFAULT_EXAMPLES
    index = json.loads((src / "examples.json").read_text())
    entry = next(e for e in index["examples"] if e["name"] == "guitar_distortion")
    clash = {"target": "guitar_distortion_A_target.wav", "dry": "guitar_distortion_B_estimate.wav"}[role]
    other = "dry" if role == "target" else "target"
    x, rate = read_audio(src / entry[role])
    sf.write(tmp_path / clash, x.T, rate, subtype="PCM_16")
    shutil.copy(src / entry[other], tmp_path / entry[other])
    (tmp_path / "examples.json").write_text(json.dumps({**index, "examples": [{**entry, role: clash}]}))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert main(["demo", "--model", str(model), "--examples", str(tmp_path), "-o", str(tmp_path)]) == 2
    line = _one_error_line(capsys)
    assert f"{tmp_path / clash}: is the input file" in line
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
