import numpy as np
import pytest
import torch

from fxmatch.effects.distortion import twin as distortion
from fxmatch.effects.fidelity import compare
from tests.effects.helpers import stable_seed


@pytest.mark.parametrize("sample_rate", [44100, 48000])
@pytest.mark.parametrize("kind", ["pluck", "noise", "impulse", "silence"])
@pytest.mark.parametrize("channels", [1, 2])
def test_distortion_twin_matches_pedalboard_within_40db(make_signal, sample_rate, kind, channels):
    rng = np.random.default_rng(stable_seed(sample_rate, kind, channels))
    x = make_signal(kind, sample_rate, seconds=0.3, channels=channels)
    params = distortion.SPEC.sample(rng)
    result = compare(["Distortion"], [params], x, sample_rate)
    assert result["snr_db"] >= 40.0, (params, result)


def test_distortion_gradient_matches_finite_difference():
    x = torch.randn(2, 1, 512, dtype=torch.float64) * 0.1
    drive = torch.tensor([10.0, 25.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda d: distortion.process(x, {"drive_db": d}, 44100), (drive,))


def test_distortion_batch_items_are_independent():
    x = torch.randn(3, 2, 256)
    drive = torch.tensor([5.0, 20.0, 40.0])
    batched = distortion.process(x, {"drive_db": drive}, 44100)
    for i in range(3):
        single = distortion.process(x[i : i + 1], {"drive_db": drive[i : i + 1]}, 44100)
        torch.testing.assert_close(batched[i : i + 1], single)


@pytest.mark.parametrize("drive_db", [-100.0, -150.0])
def test_distortion_drive_at_or_below_minus_100db_is_silence_like_pedalboard(drive_db):
    """JUCE's decibelsToGain takes -100 dB and below as a gain of 0."""
    import pedalboard

    x = (np.random.default_rng(0).standard_normal((2, 2048)) * 0.5).astype(np.float32)
    assert not pedalboard.Distortion(drive_db)(x, 44100).any()
    assert not distortion.process(torch.as_tensor(x)[None], {"drive_db": drive_db}, 44100).any()
