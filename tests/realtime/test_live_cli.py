"""`fxmatch live` end to end (subprocess) on its own JACK dummy server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _live(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fxmatch.cli", "live", *args], capture_output=True, text=True,
                          timeout=timeout, check=False, env=dict(os.environ, **(env or {})))


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


def _jackd_pids() -> set[int]:
    """Every jackd process on the machine."""
    from tests.realtime.test_jack import _stat

    pids = (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
    return {pid for pid in pids if (_stat(pid) or ("",))[0] == "jackd"}


@pytest.mark.parametrize("args, message", [
    (["--jack-dummy", "--rate", "1"], "live: --rate must be 8000 to 384000 Hz, got 1"),
    (["--jack-dummy", "--rate", "1000000"], "live: --rate must be 8000 to 384000 Hz, got 1000000"),
    (["--jack-dummy", "--block", "0"], "live: --block must be 16 to 8192 frames, got 0"),
    (["--jack-dummy", "--block", "100000"], "live: --block must be 16 to 8192 frames, got 100000"),
    (["--jack-dummy", "--dry-channel", "0"], "live: --dry-channel counts from 1, got 0"),
    (["--target-channel", "-1"], "live: --target-channel counts from 1, got -1"),
])
def test_bad_rate_block_or_channel_exits_2_before_any_server_starts(tiny_model, args, message):
    before = _jackd_pids()
    t0 = time.monotonic()
    r = _live("--model", str(tiny_model), "--list-devices", *args)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"fxmatch: error: {message}"]
    assert time.monotonic() - t0 < 30  # no jack_lsp timeouts
    assert _jackd_pids() - before == set()


@pytest.mark.audio
def test_channels_count_from_1(tiny_model, signal_files):
    # the dummy server has 2 capture channels: 1 and 2 work, 3 does not exist
    r = _live("--jack-dummy", "--mode", "capture", "--dry-channel", "1", "--target-channel", "2", "--model",
              str(tiny_model), "--provider", "cpu", "--seconds", "1")
    assert r.returncode == 0, r.stderr
    r = _live("--jack-dummy", "--mode", "capture", "--dry-channel", "3", "--target-channel", "1", "--model",
              str(tiny_model), "--provider", "cpu", "--seconds", "1")
    assert r.returncode == 2
    assert "has 2 input channel(s); capture mode needs channel 3 (channels count from 1)" in r.stderr


def _machine_has_audio_devices() -> bool:
    code = "import sounddevice as sd; print(len(sd.query_devices()))"
    env = dict(os.environ, JACK_NO_START_SERVER="1", JACK_DEFAULT_SERVER="fxmatch-no-such-server")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                          timeout=60).stdout.strip() != "0"


def test_an_empty_device_list_says_what_to_do():
    from realtime.cli import NO_DEVICES, device_listing

    assert device_listing([]) == NO_DEVICES
    assert "--jack-dummy" in NO_DEVICES and "connect an audio interface" in NO_DEVICES
    assert device_listing(["a device"]) == "['a device']"


@pytest.mark.skipif(_machine_has_audio_devices(), reason="this machine has audio devices (the case needs none)")
def test_without_devices_list_devices_and_start_say_how_to_get_one(tiny_model, signal_files):
    env = {"JACK_NO_START_SERVER": "1", "JACK_DEFAULT_SERVER": "fxmatch-no-such-server"}
    r = _live("--list-devices", env=env)
    assert r.returncode == 0
    said = ("no audio devices found: connect an audio interface (and close programs that hold it), or add "
            "--jack-dummy to stream through a JACK dummy server (package jackd2, see scripts/install.sh)")
    assert r.stdout.strip().splitlines() == [said]
    r = _live("--model", str(tiny_model), "--target", str(signal_files["target"]), "--dry-file",
              str(signal_files["dry"]), "--seconds", "1", env=env)
    assert r.returncode == 2
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("fxmatch: error: no default output device (")
    assert line.endswith("); pick one with --output-device (list them with `fxmatch live --list-devices`; "
                         "--jack-dummy streams through a JACK dummy server)")


@pytest.mark.parametrize("dry, target", [(1, 2), (2, 1), (4, 3)])
def test_live_channels_count_from_1_like_the_app(tiny_model, dry, target):
    """`fxmatch live --dry-channel N` means the interface's input N (EngineConfig counts from 0), as in the app."""
    import argparse

    from realtime.cli import add_arguments, engine_config

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--mode", "capture", "--dry-channel", str(dry), "--target-channel", str(target)])
    config = engine_config(args, tiny_model, None, None)
    assert (config.dry_channel, config.target_channel) == (dry - 1, target - 1)
    assert (parser.parse_args([]).dry_channel, parser.parse_args([]).target_channel) == (1, 2)
