"""`fxmatch train --status DIR`, and a real run killed with SIGKILL mid-training then resumed bit for bit."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from fxmatch import cli
from training.checkpoint import load_checkpoint
from training.config import config_from_dict
from training.status import format_duration, process_alive, read_log, run_status, win_entropy_bits
from training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]

#: a run of 30 ms steps on one thread; dropout and a DataLoader worker, so a resume must restore both exactly
KILL_CONFIG = {
    "name": "killtest", "seed": 0, "mode": "wta", "device": "cpu", "torch_threads": 1,
    "effects": ["Compressor", "Distortion"], "max_length": 2, "sample_rate": 16000, "clip_seconds": 0.25,
    "n_fft": 256, "hop_length": 64, "n_mels": 32, "channels": [8, 16], "hidden": 48, "dropout": 0.1,
    "top_k": 2, "n_explore": 1, "temperature_start": 0.5, "temperature_end": 0.05, "anneal_steps": 10,
    "fft_sizes": [256, 64], "steps": 60, "batch_size": 4, "lr": 3.0e-3, "warmup_steps": 2, "log_every": 1,
    "checkpoint_every": 5, "train_examples": 0, "num_workers": 1, "progress": False,
}


def _status(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["train", "--status", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A tiny in-process run of 6 steps (log every 2, checkpoint every 3)."""
    out = tmp_path_factory.mktemp("run")
    torch.set_num_threads(1)
    config = config_from_dict({**KILL_CONFIG, "steps": 6, "log_every": 2, "checkpoint_every": 3, "num_workers": 0})
    Trainer(config, out).train()
    return out


def test_status_of_a_finished_run(finished_run, capsys):
    code, out, err = _status(capsys, str(finished_run), "--json")
    assert code == 0 and err == ""
    s = json.loads(out)
    assert s["state"] == "finished" and s["alive"] is None and s["pid"] is None
    assert (s["step"], s["steps"], s["fraction"], s["checkpoint_step"], s["eta_s"]) == (6, 6, 1.0, 6, 0.0)
    assert s["name"] == "killtest" and s["mode"] == "wta" and s["rate_rows"] == 3 and s["examples_per_s"] > 0
    rows = read_log(finished_run / "log.csv")
    assert s["loss"] == rows[-1]["loss"] and s["fit"] == rows[-1]["fit"] and s["ce"] == rows[-1]["ce"]
    wins = list(json.loads((finished_run / "wins.json").read_text())["wins"].values())
    assert sum(wins) == 6 * 4 and s["n_chains"] == 4 and s["win_entropy_max_bits"] == 2.0
    assert s["win_entropy_bits"] == pytest.approx(win_entropy_bits(wins)) and 0 <= s["win_entropy_bits"] <= 2
    assert 0 <= s["checkpoint_age_s"] < 600

    code, out, _ = _status(capsys, str(finished_run))
    assert code == 0
    assert out.splitlines()[0].startswith(f"{finished_run}: finished")
    assert "step         6 / 6 (100.0 %)" in out and "ETA          done" in out and "win entropy" in out


def test_status_tells_a_live_process_from_a_dead_one(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("log.csv", "wins.json", "checkpoint.pt"):
        (run / name).write_bytes((finished_run / name).read_bytes())
    config = load_checkpoint(run / "checkpoint.pt")["train_config"]
    assert config["steps"] == 6
    # a process whose command line says "train", as scripts/train-bg.sh's does
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "train"])
    try:
        (run / "train.pid").write_text(f"{proc.pid}\n")
        s = run_status(run)
        assert s["alive"] is True and s["pid"] == proc.pid and s["state"] == "running"  # no summary.json: not finished
    finally:
        proc.kill()
    time.sleep(0.2)
    assert not process_alive(proc.pid)  # killed but not reaped: a zombie is not alive
    proc.wait()
    assert not process_alive(proc.pid)
    s = run_status(run)
    assert s["alive"] is False and s["state"] == "stopped"
    code, out, _ = _status(capsys, str(run))
    assert code == 0 and "stopped (pid" in out and "not running" in out


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "no such folder"),
    (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "not a folder"),
    (lambda p: p, "not a training run"),
])
def test_status_of_something_that_is_not_a_run_is_one_line_exit_2(tmp_path, capsys, make, message):
    code, out, err = _status(capsys, str(make(tmp_path)))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_status_usage_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["train"]) == 2
    assert "needs a CONFIG" in capsys.readouterr().err
    assert cli.main(["train", "configs/tiny.yaml", "--status", str(tmp_path)]) == 2
    assert "takes no CONFIG" in capsys.readouterr().err
    assert cli.main(["train", "configs/tiny.yaml", "--json"]) == 2
    assert "--json goes with --status" in capsys.readouterr().err
    (tmp_path / "checkpoint.pt").write_text("not a checkpoint")
    code, _, err = _status(capsys, str(tmp_path))
    assert code == 2 and "not a readable checkpoint" in err and len(err.strip().splitlines()) == 1


def test_status_of_a_checkpoint_without_its_training_state_is_one_line_exit_2(tmp_path, capsys):
    import torch

    torch.save({"format": "fxmatch-checkpoint", "model": {}}, tmp_path / "checkpoint.pt")
    code, out, err = _status(capsys, str(tmp_path))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "not a training checkpoint of fxmatch (no step, elapsed_s" in err


def test_status_reads_a_whole_checkpoint_while_the_trainer_rewrites_it(finished_run, tmp_path):
    # A second process replaces checkpoint.pt 40 times with the trainer's own save_checkpoint (temp file, rename),
    # a new step each time; every status read meanwhile sees one complete checkpoint, never a cut one.
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    for name in ("log.csv", "wins.json", "checkpoint.pt"):
        shutil.copy(finished_run / name, run / name)
    code = ("import sys, torch; from training.checkpoint import load_checkpoint, save_checkpoint; "
            "p = sys.argv[1]; c = load_checkpoint(p); print('ready', flush=True)\n"
            "for i in range(100, 140):\n    c['step'] = i; save_checkpoint(p, c)")
    writer = subprocess.Popen([sys.executable, "-c", code, str(run / "checkpoint.pt")], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    seen = set()
    try:
        assert writer.stdout.readline().strip() == "ready"
        while writer.poll() is None:
            seen.add(run_status(run)["checkpoint_step"])
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == 0
    seen.add(run_status(run)["checkpoint_step"])
    assert seen <= {6, *range(100, 140)} and 139 in seen and len(seen) >= 3, seen
    assert not [p.name for p in run.iterdir() if p.name not in ("log.csv", "wins.json", "checkpoint.pt")]


def test_read_log_keeps_the_latest_history_and_skips_a_cut_line(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("step,loss,examples_per_s\n1,3.0,10\n2,2.5,10\n3,2.0,10\n2,2.4,12\n3,2.1,12\n4,1.9,1")
    rows = read_log(path)
    assert [(r["step"], r["loss"]) for r in rows] == [(1, 3.0), (2, 2.4), (3, 2.1), (4, 1.9)]
    path.write_text("step,loss,examples_per_s\n1,3.0,10\n2,2.")
    assert [r["step"] for r in read_log(path)] == [1]


def test_status_of_a_diverged_run_names_what_is_not_finite(tmp_path, capsys):
    (tmp_path / "log.csv").write_text("step,loss,fit,ce,examples_per_s\n10,1.5,0.5,1.0,20\n20,nan,nan,1.1,21\n")
    code, out, _ = _status(capsys, str(tmp_path), "--json")
    s = json.loads(out)
    assert code == 0 and (s["loss"], s["fit"], s["ce"], s["non_finite"]) == (None, None, 1.1, ["fit", "loss"])
    assert s["step"] == 20 and s["steps"] is None and s["eta_s"] is None and s["examples_per_s"] == 20.5
    code, out, _ = _status(capsys, str(tmp_path))
    assert code == 0 and "(not finite: fit, loss)" in out and "step         20 / ?" in out and "ETA          ?" in out


def test_format_duration():
    assert [format_duration(s) for s in (None, 5, 125, 3725, 3 * 86400 + 7200)] == \
        ["?", "5 s", "2 min 5 s", "1 h 2 min", "3 d 2 h"]


def _train(config: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "fxmatch.cli", "train", str(config), "--out", str(out), *extra],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _logged_step(out: Path) -> int:
    rows = read_log(out / "log.csv")
    return int(rows[-1]["step"]) if rows else 0


def test_a_run_killed_mid_training_resumes_to_the_same_weights_bit_for_bit(tmp_path, capsys):
    config = tmp_path / "kill.yaml"
    config.write_text(yaml.safe_dump(KILL_CONFIG))
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    first = KILL_CONFIG["checkpoint_every"]

    proc = _train(config, killed)
    try:
        deadline = time.monotonic() + 120
        # past the first checkpoint and still stepping: a logged step beyond it
        while _logged_step(killed) <= first and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    at_kill = load_checkpoint(killed / "checkpoint.pt")["step"]
    logged = _logged_step(killed)
    assert first <= at_kill < KILL_CONFIG["steps"] and logged > first
    assert logged < KILL_CONFIG["steps"]

    (killed / "train.pid").write_text(f"{proc.pid}\n")
    code, out, _ = _status(capsys, str(killed), "--json")
    s = json.loads(out)
    assert code == 0 and s["state"] == "stopped" and s["step"] == max(logged, at_kill) and s["eta_s"] > 0
    assert s["n_chains"] == 4 and s["win_entropy_bits"] is not None  # wins.json is whole (replaced atomically)

    runs = [_train(config, killed, "--resume"), _train(config, straight)]
    for p in runs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()

    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(killed / "checkpoint.pt")
    assert a["step"] == b["step"] == KILL_CONFIG["steps"]
    assert a["model"].keys() == b["model"].keys()
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for index, state in a["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(value, b["optimizer"]["state"][index][name]), (index, name)
    assert a["win_counts"] == b["win_counts"]
    # the resumed log holds each step once, its losses equal to the uninterrupted run's
    with (straight / "log.csv").open() as fa, (killed / "log.csv").open() as fb:
        rows_a, rows_b = list(csv.DictReader(fa)), list(csv.DictReader(fb))
    assert [r["step"] for r in rows_b] == [r["step"] for r in rows_a]
    assert [(r["loss"], r["fit"], r["ce"]) for r in rows_b] == [(r["loss"], r["fit"], r["ce"]) for r in rows_a]
