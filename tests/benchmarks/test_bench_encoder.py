import json
import math

import pytest

from fxmatch.cli import main
from tests.export.helpers import tiny_onnx

KEYS = ("onnx_cpu_ms", "onnx_cpu_1thread_ms", "torch_cpu_ms", "onnx_cuda_ms", "parity_max_abs", "estimate_3min_s",
        "estimate_peak_mb", "provider")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_onnx(tmp_path_factory.mktemp("model"), favour=1)


def test_bench_encoder_quick_prints_and_writes_the_issue_keys(model, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "encoder", "--quick", "--model", str(model), "-o", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == printed
    for key in KEYS:
        assert key in printed, key
    for key in ("onnx_cpu_ms", "onnx_cpu_1thread_ms", "torch_cpu_ms", "estimate_3min_s", "estimate_peak_mb"):
        assert math.isfinite(printed[key]) and printed[key] > 0, key
    assert printed["onnx_cuda_ms"] is None or printed["onnx_cuda_ms"] > 0
    assert printed["parity_max_abs"] < 1e-4  # a fresh encoder of the tiny model's architecture vs its export
    assert printed["model"]["name"] == "tiny-v0" and printed["model"]["sample_rate"] == 16000
    assert printed["input"]["samples"] == 32000  # one 2 s window at the model's rate
    assert "fresh untrained encoder" in printed["reference"]
    assert printed["estimate"]["windows"] > 300  # 3 minutes in 0.5 s windows, hop 0.25 s
    assert printed["provider"] in ("CPUExecutionProvider", "CUDAExecutionProvider")


def test_bench_encoder_missing_model_exits_2(tmp_path, capsys):
    assert main(["bench", "encoder", "--quick", "--model", str(tmp_path / "none.onnx")]) == 2
    assert "none.onnx: no such model file" in capsys.readouterr().err


def test_bench_option_a_benchmark_does_not_take_exits_2(capsys):
    assert main(["bench", "effects", "--quick", "--model", "x.onnx"]) == 2
    assert "takes no --model" in capsys.readouterr().err


def test_bench_encoder_with_a_checkpoint_times_and_checks_that_checkpoint(tmp_path):
    from benchmarks import bench_encoder
    from tests.export.helpers import tiny_checkpoint, tiny_encoder

    ckpt = tiny_checkpoint(tmp_path / "tiny.pt", tiny_encoder(favour=1))
    result = bench_encoder.run(quick=True, checkpoint=str(ckpt))
    assert "PyTorch from checkpoint tiny.pt" in result["reference"]
    assert result["parity_max_abs"] < 1e-4
    assert result["model"]["n_chains"] == 2 and result["model"]["file"].startswith("(temporary)")
