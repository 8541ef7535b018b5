"""`fxmatch export --calibrate`: temperature scaling on held-out examples; export option checks."""

import json

import numpy as np
import onnx
import pytest
import torch

from export import calibrate as cal
from export import onnx_export
from export.onnx_export import export_checkpoint
from fxmatch.cli import main
from fxmatch.inference import EstimatorSession, softmax
from tests.export.helpers import SAMPLE_RATE, WINDOW_SECONDS, tiny_checkpoint, tiny_encoder, tiny_onnx, tiny_vocab
from training.data import TargetDataset, write_dataset
from training.sources import SynthSource


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """(calibrated ONNX, the same encoder exported without calibration): a tiny model that always says Distortion
    with p ~ 0.998, calibrated on 40 held-out examples."""
    folder = tmp_path_factory.mktemp("cal")
    return tiny_onnx(folder, favour=1, name="cal.onnx", calibrate="heldout:40"), tiny_onnx(folder, favour=1)


def _meta(path):
    return {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}


def _one_error_line(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fxmatch: error:"), captured.err
    return lines[0]


# ------------------------------------------------------------------------------------------------ the fit


def test_fit_recovers_the_temperature_that_generated_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, size=(4000, 5))
    true_t = 2.5
    probs = softmax(logits / true_t)
    labels = np.array([rng.choice(5, p=p) for p in probs])
    owner = np.arange(4000)
    t = cal.fit_temperature(logits, owner, labels)
    assert t == pytest.approx(true_t, rel=0.08)
    assert cal.nll(logits, owner, labels, t) < cal.nll(logits, owner, labels, 1.0)
    assert cal.nll(logits, owner, labels, t) <= cal.nll(logits, owner, labels, true_t) + 1e-9


def test_window_probabilities_are_averaged_per_example_like_inference():
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    owner = np.array([0, 0, 1])
    probs = cal.aggregate_probabilities(logits, owner, 2, 2.0)
    np.testing.assert_allclose(probs[0], (softmax(logits[0] / 2) + softmax(logits[1] / 2)) / 2)
    np.testing.assert_allclose(probs[1], softmax(logits[2] / 2))


def test_an_over_confident_model_is_calibrated_on_held_out_examples(calibrated):
    path, _ = calibrated
    meta = _meta(path)
    t = meta["chain_temperature"]
    c = meta["calibration"]
    assert t > 2.0 and c["temperature"] == pytest.approx(t, rel=1e-5)  # p ~ 0.998 but right only some of the time
    assert c["n_examples"] == 40 and c["n_windows"] == 40 and c["set"]["kind"] == "heldout"
    assert c["set"]["seed"] == 1 + 1  # the tiny checkpoint's seed (1) + 1: evaluate's heldout examples stay unseen
    assert 0.05 < c["accuracy"] < 0.95
    assert c["nll_after"] < c["nll_before"] and c["ece_after"] < c["ece_before"]
    assert c["ece_after"] < 0.05 and c["mean_confidence_before"] > 0.99
    assert c["mean_confidence_after"] == pytest.approx(c["accuracy"], abs=0.05)


def test_inference_divides_the_chain_logits_by_the_temperature(calibrated):
    path, plain = calibrated
    session, old = EstimatorSession(path), EstimatorSession(plain)
    assert session.info.calibrated and not old.info.calibrated and old.info.chain_temperature == 1.0
    x = np.random.default_rng(3).standard_normal((3, int(SAMPLE_RATE * WINDOW_SECONDS))).astype(np.float32) * 0.1
    logits, _ = session.run(x)
    probs, _ = session.estimate_windows(x)
    np.testing.assert_allclose(probs, softmax(logits.astype(np.float64) / session.info.chain_temperature), rtol=1e-9)
    old_probs, _ = old.estimate_windows(x)
    np.testing.assert_allclose(old_probs, softmax(logits), rtol=1e-5)
    assert (probs.argmax(axis=1) == old_probs.argmax(axis=1)).all()  # the ranking does not change
    assert probs.max() < 0.9 < old_probs.min(axis=0).max()


def test_calibration_on_a_data_set_folder(tmp_path):
    source = SynthSource(seed=5, split="heldout", sample_rate=SAMPLE_RATE, clip_seconds=WINDOW_SECONDS)
    folder = write_dataset(TargetDataset(source, tiny_vocab(), seed=11, length=12), tmp_path / "set")
    ckpt = tiny_checkpoint(tmp_path / "c.pt", tiny_encoder(favour=1))
    report = export_checkpoint(ckpt, tmp_path / "m.onnx", calibrate=str(folder))
    c = report.calibration
    assert c["set"] == {"kind": "folder", "spec": str(folder), "n": 12, "skipped_outside_vocabulary": 0}
    assert report.metadata["chain_temperature"] > 1.0 and c["nll_after"] < c["nll_before"]


def test_export_cli_reports_the_calibration(tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "c.pt", tiny_encoder(favour=1))
    assert main(["export", str(ckpt), str(tmp_path / "m.onnx"), "--calibrate", "heldout:12@4"]) == 0
    out = capsys.readouterr().out
    assert "calibrated on heldout:12@4 (12 examples, 12 windows): chain temperature" in out and "ECE" in out
    assert main(["export", str(ckpt), str(tmp_path / "j.onnx"), "--calibrate", "heldout:12@4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["chain_temperature"] == pytest.approx(report["calibration"]["temperature"], rel=1e-5)
    assert report["calibration"]["set"]["seed"] == 4
    assert main(["export", str(ckpt), str(tmp_path / "n.onnx")]) == 0
    assert "not calibrated" in capsys.readouterr().out
    assert "chain_temperature" not in _meta(tmp_path / "n.onnx")


# ------------------------------------------------------------------------------------------------ bad options


@pytest.mark.parametrize(("argv", "message"), [
    (["--opset", "5"], "--opset must be 13 to 20, got 5"),
    (["--opset", "99"], "--opset must be 13 to 20, got 99"),
    (["--tolerance", "-1"], "--tolerance must be a relative limit > 0 and <= 1, got -1"),
    (["--tolerance", "0"], "--tolerance must be"),
    (["--tolerance", "nan"], "--tolerance must be"),
    (["--tolerance", "5"], "--tolerance must be"),
    (["--window-seconds", "-1"], "--window-seconds must be a positive number of seconds"),
    (["--hop-seconds", "inf"], "--hop-seconds must be a positive number of seconds"),
    (["--calibrate", "held"], "neither a data set folder nor heldout[:N][@SEED]"),
    (["--calibrate", "heldout:0"], "needs N > 0"),
])
def test_bad_export_options_exit_2_with_one_line_and_write_nothing(tmp_path, capfd, argv, message):
    ckpt = tiny_checkpoint(tmp_path / "c.pt")
    capfd.readouterr()
    assert main(["export", str(ckpt), str(tmp_path / "m.onnx"), *argv]) == 2
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("fxmatch: error: export: "), err
    assert message in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def test_an_exporter_failure_is_one_line_and_its_graph_dump_is_not_shown(tmp_path, capfd, monkeypatch):
    ckpt = tiny_checkpoint(tmp_path / "c.pt")

    def failing_export(*args, **kwargs):
        print("graph(%audio : Float(*, *)\n" * 100)  # what torch prints before it gives up
        raise RuntimeError("Unsupported: ONNX export of operator X\n" + "IR line\n" * 40)

    monkeypatch.setattr(torch.onnx, "export", failing_export)
    capfd.readouterr()
    assert main(["export", str(ckpt), str(tmp_path / "m.onnx")]) == 1
    out, err = capfd.readouterr()
    assert out == "" and err.strip().splitlines() == [
        ("fxmatch: export failed, nothing written: torch.onnx could not export the model at opset 17 "
         "(Unsupported: ONNX export of operator X)")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def test_an_invalid_chain_temperature_in_the_metadata_is_refused(calibrated, tmp_path):
    path, _ = calibrated
    from fxmatch.errors import FxmatchInputError

    for bad in ("0", "-2", '"hot"', "true"):
        model = onnx.load(str(path))
        for p in model.metadata_props:
            if p.key == "chain_temperature":
                p.value = bad
        onnx.save(model, str(tmp_path / "bad.onnx"))
        with pytest.raises(FxmatchInputError, match="'chain_temperature' must be a positive number"):
            EstimatorSession(tmp_path / "bad.onnx")


def test_export_check_options_accepts_the_defaults():
    onnx_export.check_options()
    onnx_export.check_options(13, 1.0, 0.5, 0.25)
    onnx_export.check_options(20, 1e-9)
