"""fxmatch.native_rate: one Phaser mapping for pedalboard's floats (the tone match) and the twins' tensors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from fxmatch.native_rate import phaser_at_rate

PARAMS = {"rate_hz": 1.0, "depth": 0.6, "centre_frequency_hz": 900.0, "feedback": 0.2, "mix": 0.5}


@pytest.mark.parametrize(("rate", "native"), [(16000, 48000), (22050, 44100), (48000, 16000)])
def test_floats_and_tensors_map_alike(rate, native):
    floats = phaser_at_rate(PARAMS, rate, native)
    tensors = phaser_at_rate({k: torch.tensor([v], dtype=torch.float64) for k, v in PARAMS.items()}, rate, native)
    assert list(floats) == list(PARAMS) and isinstance(floats["depth"], float)
    for k, v in floats.items():
        assert float(tensors[k]) == pytest.approx(v, rel=1e-12)


def test_a_lower_rate_raises_centre_and_depth_and_the_native_rate_changes_nothing():
    """pedalboard's sweep scale (20 Hz - min(20 kHz, 0.49 rate)) is shorter at a lower rate."""
    moved = phaser_at_rate(PARAMS, 16000, 48000)
    assert moved["centre_frequency_hz"] > PARAMS["centre_frequency_hz"] and moved["depth"] > PARAMS["depth"]
    assert phaser_at_rate(PARAMS, 44100, 44100) == pytest.approx(PARAMS, rel=1e-12)


def test_imports_without_torch():
    code = "import sys, fxmatch.native_rate; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "False", out.stderr
