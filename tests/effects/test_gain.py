import numpy as np
import pytest
import torch

from fxmatch.effects.fidelity import compare
from fxmatch.effects.gain import twin as gain
from tests.effects.helpers import stable_seed


@pytest.mark.parametrize("sample_rate", [44100, 48000])
@pytest.mark.parametrize("kind", ["pluck", "noise", "impulse", "silence"])
@pytest.mark.parametrize("channels", [1, 2])
def test_gain_twin_matches_pedalboard_within_100db(make_signal, sample_rate, kind, channels):
    rng = np.random.default_rng(stable_seed("gain", sample_rate, kind, channels))
    x = make_signal(kind, sample_rate, seconds=0.3, channels=channels)
    for _ in range(3):
        params = gain.SPEC.sample(rng)
        result = compare(["Gain"], [params], x, sample_rate)
        assert result["snr_db"] >= 100.0, (params, result)


@pytest.mark.parametrize("gain_db", [-100.0, -120.0, -99.0, 40.0])
def test_gain_far_from_unity_matches_pedalboard(make_signal, gain_db):
    """JUCE takes -100 dB and below as silence; the twin does the same."""
    import pedalboard

    x = make_signal("noise", 44100, seconds=0.2, channels=2)
    reference = pedalboard.Gain(gain_db)(x, 44100).astype(np.float64)
    twin = gain.process(torch.as_tensor(x, dtype=torch.float64)[None], {"gain_db": gain_db}, 44100)[0].numpy()
    np.testing.assert_allclose(twin, reference, rtol=1e-6, atol=0)


def test_gain_gradient_matches_finite_difference():
    x = torch.randn(2, 2, 64, dtype=torch.float64, requires_grad=True)
    gain_db = torch.tensor([-9.0, 6.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, g: gain.process(x, {"gain_db": g}, 44100), (x, gain_db))


def test_gain_batch_items_are_independent():
    x = torch.randn(3, 2, 256)
    gain_db = torch.tensor([-12.0, 0.0, 12.0])
    batched = gain.process(x, {"gain_db": gain_db}, 44100)
    for i in range(3):
        single = gain.process(x[i : i + 1], {"gain_db": gain_db[i : i + 1]}, 44100)
        torch.testing.assert_close(batched[i : i + 1], single)
