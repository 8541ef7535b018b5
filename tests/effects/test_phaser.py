import numpy as np
import pytest
import torch

from fxmatch.effects import lfo
from fxmatch.effects.fidelity import compare
from fxmatch.effects.phaser import twin as phaser
from tests.effects.helpers import stable_seed


@pytest.mark.parametrize("sample_rate", [44100, 48000])
@pytest.mark.parametrize("kind", ["pluck", "noise", "impulse", "silence"])
@pytest.mark.parametrize("channels", [1, 2])
def test_phaser_twin_matches_pedalboard_within_60db(make_signal, sample_rate, kind, channels):
    rng = np.random.default_rng(stable_seed(sample_rate, kind, channels, "phaser"))
    x = make_signal(kind, sample_rate, seconds=0.3, channels=channels)
    params = phaser.SPEC.sample(rng)
    result = compare(["Phaser"], [params], x, sample_rate)
    assert result["snr_db"] >= 60.0, (params, result)


def test_phaser_snr_over_random_draws_meets_the_per_case_bar(make_signal):
    rng = np.random.default_rng(1234)
    snrs = []
    for i in range(16):
        sample_rate = (44100, 48000)[i % 2]
        x = make_signal(("pluck", "chord")[i // 2 % 2], sample_rate, seconds=0.4, seed=i, channels=1 + i // 4 % 2)
        snrs.append(compare(["Phaser"], [phaser.SPEC.sample(rng)], x, sample_rate)["snr_db"])
    assert np.median(snrs) >= 60.0 and np.min(snrs) >= 60.0, snrs


def test_phaser_extreme_params_match_pedalboard(make_signal):
    """Fastest LFO, full depth (clipped sweep), strongest feedback over 1 s (several pedalboard blocks)."""
    x = make_signal("pluck", 44100, seconds=1.0, channels=2)
    for params in (
        {"rate_hz": 3.0, "depth": 1.0, "centre_frequency_hz": 3000.0, "feedback": 0.7, "mix": 0.8},
        {"rate_hz": 0.1, "depth": 0.2, "centre_frequency_hz": 300.0, "feedback": 0.0, "mix": 0.3},
    ):
        result = compare(["Phaser"], [params], x, 44100)
        assert result["snr_db"] >= 60.0, (params, result)


def test_allpass_chain_gradcheck():
    x = torch.randn(2, 2, 37, dtype=torch.float64, requires_grad=True)
    coeff = (torch.rand(2, 10, dtype=torch.float64) * 0.8 + 0.05).requires_grad_()
    feedback = torch.tensor([0.3, 0.7], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(phaser._AllpassChain.apply, (x, coeff, feedback))


def _float64_phase(rate_hz: np.ndarray, down_rate_hz: float, n_down: int) -> np.ndarray:
    return np.mod(2 * np.pi / down_rate_hz * rate_hz[:, None] * np.arange(n_down), 2 * np.pi)


def test_phaser_gradients_match_finite_differences(monkeypatch):
    # the float32 LFO phase is a straight-through correction; the smooth float64 phase makes finite differences exact
    monkeypatch.setattr(lfo, "float32_phase", _float64_phase)
    x = torch.randn(2, 2, 96, dtype=torch.float64) * 0.3
    names = phaser.SPEC.param_names
    values = {
        "rate_hz": [2.5, 40.0],  # a fast LFO so the phase moves within the few samples
        "depth": [0.3, 0.5],
        "centre_frequency_hz": [700.0, 1500.0],  # no clipping of the sweep at these depths
        "feedback": [0.4, 0.6],
        "mix": [0.5, 0.7],
    }
    leaves = tuple(torch.tensor(values[n], dtype=torch.float64, requires_grad=True) for n in names)

    def run(*p: torch.Tensor) -> torch.Tensor:
        return phaser.process(x, dict(zip(names, p)), 44100)

    assert torch.autograd.gradcheck(run, leaves)
    xg = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda xx: phaser.process(xx, {n: v[0] for n, v in values.items()}, 44100), (xg,))


def test_phaser_gradients_finite_and_nonzero():
    x = (torch.randn(2, 2, 8000) * 0.2).requires_grad_()
    params = {
        "rate_hz": torch.tensor([1.5, 0.5], requires_grad=True),
        "depth": torch.tensor([0.5, 0.8], requires_grad=True),
        "centre_frequency_hz": torch.tensor([800.0, 2000.0], requires_grad=True),
        "feedback": torch.tensor([0.3, 0.6], requires_grad=True),
        "mix": torch.tensor([0.5, 0.4], requires_grad=True),
    }
    y = phaser.process(x, params, 44100)
    assert y.dtype == torch.float32 and y.shape == x.shape
    y.square().mean().backward()
    for name, p in list(params.items()) + [("x", x)]:
        assert torch.isfinite(p.grad).all(), name
        assert (p.grad.abs() > 0).all() if p.ndim == 1 else p.grad.abs().sum() > 0, name


def test_phaser_batch_items_are_independent():
    x = torch.randn(3, 2, 3001, dtype=torch.float64) * 0.2
    params = {
        "rate_hz": torch.tensor([0.1, 1.0, 3.0], dtype=torch.float64),
        "depth": torch.tensor([0.2, 0.6, 1.0], dtype=torch.float64),
        "centre_frequency_hz": torch.tensor([300.0, 1000.0, 3000.0], dtype=torch.float64),
        "feedback": torch.tensor([0.0, 0.4, 0.7], dtype=torch.float64),
        "mix": torch.tensor([0.3, 0.5, 0.8], dtype=torch.float64),
    }
    batched = phaser.process(x, params, 48000)
    for i in range(3):
        single = phaser.process(x[i : i + 1], {k: v[i : i + 1] for k, v in params.items()}, 48000)
        torch.testing.assert_close(batched[i : i + 1], single)
