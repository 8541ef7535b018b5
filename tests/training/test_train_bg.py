"""scripts/train-bg.sh: a detached run that logs to its folder, refuses a second start, and resumes when re-run."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import torch
import yaml

from training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "train-bg.sh"
TINY = {
    "name": "bg", "seed": 0, "mode": "supervised", "device": "cpu", "torch_threads": 1,
    "effects": ["Distortion"], "max_length": 1, "sample_rate": 16000, "clip_seconds": 0.25,
    "n_fft": 256, "hop_length": 64, "n_mels": 16, "channels": [4], "hidden": 16, "dropout": 0.0,
    "steps": 4, "batch_size": 2, "warmup_steps": 1, "log_every": 1, "checkpoint_every": 2, "progress": False,
}


def _wait_for_exit(pid: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError(f"training process {pid} still running after {timeout_s} s")


def _start(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(SCRIPT), str(config), str(out), *extra], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_train_bg_runs_detached_refuses_a_second_start_and_resumes_after_a_kill(tmp_path):
    config = tmp_path / "bg.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    first = _start(config, out, "--set", "steps=100000")  # far more than the test waits for
    assert first.returncode == 0, first.stderr
    pid = int((out / "train.pid").read_text())
    second = _start(config, out)
    assert second.returncode == 2 and "already training" in second.stderr
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    _wait_for_exit(pid)
    step = load_checkpoint(out / "checkpoint.pt")["step"]
    assert step >= 2
    resumed = _start(config, out, "--set", f"steps={step + 2}")
    assert resumed.returncode == 0, resumed.stderr
    _wait_for_exit(int((out / "train.pid").read_text()))
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["step"] == step + 2
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert "Traceback" not in (out / "train.out").read_text()


def test_train_bg_usage_error_is_exit_2(tmp_path):
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and "usage" in result.stderr
