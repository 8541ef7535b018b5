"""`fxmatch evaluate`: expected calibration error, reliability diagrams, a corrupt checkpoint in one line."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from fxmatch import cli
from tests.export.helpers import SAMPLE_RATE, WINDOW_SECONDS, tiny_checkpoint, tiny_onnx, tiny_vocab
from training.data import TargetDataset, write_dataset
from training.evaluate import calibration_summary, expected_calibration_error, reliability_bins
from training.sources import SynthSource


@pytest.fixture(scope="module")
def disk_set(tmp_path_factory):
    """Eight held-out examples of the tiny vocabulary (Distortion only), 16 kHz, 0.5 s."""
    source = SynthSource(seed=5, split="heldout", sample_rate=SAMPLE_RATE, clip_seconds=WINDOW_SECONDS)
    return write_dataset(TargetDataset(source, tiny_vocab(), seed=11, length=8), tmp_path_factory.mktemp("s") / "s")


def _main(capsys, *argv):
    rc = cli.main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return rc, out, err


def test_ece_of_known_cases():
    assert expected_calibration_error([0.8] * 10, [True] * 8 + [False] * 2) == pytest.approx(0.0)
    assert expected_calibration_error([0.9] * 4, [True, False, False, False]) == pytest.approx(0.65)
    # two bins: half the examples at 0.95 (all right: gap 0.05), half at 0.55 (none right: gap 0.55)
    assert expected_calibration_error([0.95, 0.95, 0.55, 0.55], [True, True, False, False]) == pytest.approx(0.3)
    assert expected_calibration_error([], []) is None


def test_reliability_bins_count_and_average_each_bin():
    bins = reliability_bins([0.05, 0.5, 0.52, 1.0], [False, True, False, True], n_bins=10)
    assert [b["count"] for b in bins] == [1, 0, 0, 0, 0, 2, 0, 0, 0, 1]  # 1.0 falls in the last bin
    assert bins[5]["confidence"] == pytest.approx(0.51) and bins[5]["accuracy"] == 0.5
    assert bins[1]["confidence"] is None and bins[9]["lower"] == pytest.approx(0.9)
    summary = calibration_summary([0.05, 0.5, 0.52, 1.0], [False, True, False, True], n_bins=10)
    assert summary["n"] == 4 and summary["accuracy"] == 0.5 and summary["mean_confidence"] == pytest.approx(0.5175)


def test_evaluate_reports_ece_and_writes_a_reliability_diagram_per_model(disk_set, tmp_path, capsys):
    sure = tiny_onnx(tmp_path, favour=1, name="sure.onnx")  # says Distortion with p ~ 0.998 every time
    cal = tiny_onnx(tmp_path, favour=1, name="cal.onnx", calibrate="heldout:24@3")
    out = tmp_path / "eval"
    rc, stdout, err = _main(capsys, "evaluate", sure, disk_set, "--compare", cal, "-o", out, "--no-progress",
                            "--no-oracle")
    assert rc == 0, err
    report = json.loads((out / "eval.json").read_text())
    first, second = report["order"][:2]
    mine = report["estimators"][first]["calibration"]
    accuracy = report["estimators"][first]["chain_accuracy"]
    assert mine["n"] == 8 and mine["accuracy"] == pytest.approx(accuracy)
    assert mine["ece"] == pytest.approx(mine["mean_confidence"] - accuracy, abs=1e-9)  # one bin, over-confident
    calibrated = report["estimators"][second]["calibration"]
    assert calibrated["ece"] < mine["ece"]
    assert report["models"][1]["calibrated"] is True and report["models"][1]["chain_temperature"] > 2.0
    assert report["models"][0]["calibrated"] is False and report["models"][0]["chain_temperature"] == 1.0
    assert sorted(p.name for p in out.glob("reliability*.png")) == ["reliability-tiny-v0_cal.onnx.png",
                                                                    "reliability.png"]
    for png in out.glob("reliability*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert report["files"][f"reliability:{first}"] == str(out / "reliability.png")
    assert "| model | ECE | mean top probability | chain accuracy | temperature |" in stdout
    assert f"| {first} | {mine['ece']:.3f} |" in stdout and "not calibrated (no chain temperature)" in stdout
    assert f"| {second} | {calibrated['ece']:.3f} |" in stdout and "| T = " in stdout


def _corrupt_checkpoints(folder):
    good = tiny_checkpoint(folder / "good.pt")
    data = good.read_bytes()
    (folder / "truncated.pt").write_bytes(data[: len(data) // 2])
    (folder / "garbage.pt").write_bytes(b"\x00\x01garbage" * 50)
    with open(folder / "pickle.pt", "wb") as fh:
        pickle.dump({"model": _Foreign()}, fh)
    torch.save({"model": _Foreign()}, folder / "foreign.pt")
    return ["truncated.pt", "garbage.pt", "pickle.pt", "foreign.pt"]


class _Foreign:
    pass


def test_a_corrupt_checkpoint_is_one_line_not_torchs_weights_only_text(disk_set, tmp_path, capsys):
    for name in _corrupt_checkpoints(tmp_path):
        rc, _, err = _main(capsys, "evaluate", tmp_path / name, disk_set, "-o", tmp_path / "o", "--no-progress")
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and lines[0].startswith(f"fxmatch: error: {tmp_path / name}: "), err
        assert "weights_only" not in err and "Weights only" not in err and "\x1b" not in err, err
        assert "not a readable checkpoint" in lines[0]
