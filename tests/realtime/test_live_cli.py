"""`fxmatch live` end to end (subprocess) on its own JACK dummy server."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _live(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fxmatch.cli", "live", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.mark.audio
def test_live_prints_estimates_xruns_and_load_then_exits(tiny_model, signal_files):
    r = _live("--jack-dummy", "--mode", "reference", "--target", str(signal_files["target"]), "--dry-file",
              str(signal_files["dry"]), "--model", str(tiny_model), "--provider", "cpu", "--seconds", "2.2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("fxmatch live: reference mode, 48000 Hz, 256 frames")
    status = lines[1:]
    assert len(status) >= 2
    assert "Distortion(drive_db=" in status[-1] and "xruns" in status[-1] and "load" in status[-1]


@pytest.mark.audio
def test_live_lists_devices(tmp_path):
    r = _live("--jack-dummy", "--list-devices")
    assert r.returncode == 0 and "JACK Audio Connection Kit" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--mode", "reference", "--target", "/no/such.wav"], "no such file"),
    (["--seconds", "-1"], "--seconds"),
    (["--mode", "capture", "--input-device", "no such device"], "input device no such device"),
])
def test_live_bad_input_is_one_line_and_exit_2(tiny_model, signal_files, args, message):
    r = _live("--model", str(tiny_model), *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
