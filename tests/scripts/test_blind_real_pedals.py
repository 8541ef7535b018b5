"""scripts/blind_real_pedals.py: the shipped model, blind, on a real-pedal pair folder (one recording's pairs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from training import guitarix

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "blind_real_pedals.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, check=False)


def test_one_line_per_pair_and_the_count_of_those_naming_distortion(tmp_path):
    pairs = guitarix.make_pairs(tmp_path / "pairs", recordings=("guit_em9",))
    done = _run(str(ROOT / "models" / "fxmatch-default.onnx"), str(tmp_path / "pairs"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    rows = [line.split(" | ") for line in lines[:-1]]
    assert [r[0] for r in rows] == [p["name"] for p in pairs]
    named = sum("Distortion" in r[1] for r in rows)
    assert lines[-1] == f"Distortion named {named} of {len(pairs)}"
    assert all(r[2] == "—" or 0.0 <= float(r[2]) <= 1.0 for r in rows)


def test_a_folder_without_pairs_is_one_line_and_exit_2(tmp_path):
    done = _run(str(ROOT / "models" / "fxmatch-default.onnx"), str(tmp_path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "error:" in done.stderr
