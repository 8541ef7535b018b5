import numpy as np
import pytest
import torch

from fxmatch import testsignals
from fxmatch.effects import lfo
from fxmatch.effects.chorus import twin as chorus
from fxmatch.effects.fidelity import compare
from tests.effects.helpers import stable_seed


@pytest.mark.parametrize("sample_rate", [44100, 48000])
@pytest.mark.parametrize("kind", ["pluck", "noise", "impulse", "silence"])
@pytest.mark.parametrize("channels", [1, 2])
def test_chorus_twin_matches_pedalboard_within_60db(make_signal, sample_rate, kind, channels):
    rng = np.random.default_rng(stable_seed(sample_rate, kind, channels))
    x = make_signal(kind, sample_rate, seconds=0.4, channels=channels)
    params = chorus.SPEC.sample(rng)
    result = compare(["Chorus"], [params], x, sample_rate)
    assert result["snr_db"] >= 60.0, (params, result)


def test_chorus_median_snr_over_random_draws():
    rng = np.random.default_rng(7)
    snrs = []
    for i in range(50):
        sample_rate = (44100, 48000)[i % 2]
        channels = 1 + (i // 2) % 2
        x = testsignals.make(("pluck", "chord")[(i // 4) % 2], sample_rate, 0.5, seed=i, channels=channels)
        snrs.append(compare(["Chorus"], [chorus.SPEC.sample(rng)], x, sample_rate)["snr_db"])
    assert np.median(snrs) >= 60.0, snrs
    assert min(snrs) >= 40.0, snrs


def _tiny_case():
    # Low sample rate so that a 1-5 ms delay is a few tens of samples and the modulation is visible in 300 samples.
    x = torch.randn(2, 2, 300, dtype=torch.float64) * 0.3
    params = {
        "rate_hz": torch.tensor([15.0, 27.0], dtype=torch.float64),
        "depth": torch.tensor([0.3, 0.8], dtype=torch.float64),
        "centre_delay_ms": torch.tensor([4.0, 6.0], dtype=torch.float64),
        "feedback": torch.tensor([0.4, 0.2], dtype=torch.float64),
        "mix": torch.tensor([0.5, 0.7], dtype=torch.float64),
    }
    return x, params, 8000.0


@pytest.mark.parametrize("name", ["depth", "centre_delay_ms", "feedback", "mix"])
def test_chorus_gradcheck_params(name):
    x, params, sample_rate = _tiny_case()

    def fn(value):
        return chorus.process(x, {**params, name: value}, sample_rate)

    value = params[name].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (value,), atol=1e-6, rtol=1e-4)


def test_chorus_gradcheck_input():
    x, params, sample_rate = _tiny_case()
    x = x[:, :, :120].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: chorus.process(v, params, sample_rate), (x,))


def _ideal_phase(rate_hz, sample_rate, n_samples):
    return 2 * np.pi * rate_hz[:, None] / sample_rate * np.arange(n_samples)[None, :]


def test_chorus_gradcheck_rate_with_ideal_lfo(monkeypatch):
    # The forward LFO is JUCE's exact float32 accumulator, a staircase in rate at float32 resolution, whose gradient
    # is taken from the ideal phase; with the ideal phase in the forward too, the gradient must be exact.
    monkeypatch.setattr(lfo, "float32_phase", _ideal_phase)
    x, params, sample_rate = _tiny_case()
    rate = params["rate_hz"].clone().requires_grad_(True)

    def fn(r):
        return chorus.process(x, {**params, "rate_hz": r}, sample_rate)

    assert torch.autograd.gradcheck(fn, (rate,), atol=1e-6, rtol=1e-4)


def test_chorus_rate_gradient_close_to_coarse_finite_difference():
    # Against the exact float32 LFO: a smooth input and a step of 44+ float32 ulps of the phase increment, so that
    # neither the accumulator's staircase nor the interpolation kinks dominate the finite difference.
    _, params, sample_rate = _tiny_case()
    # Delay kept above the 1 ms floor (whose kinks would also blur a coarse difference).
    params["depth"] = torch.tensor([0.3, 0.5], dtype=torch.float64)
    params["centre_delay_ms"] = torch.tensor([4.0, 8.0], dtype=torch.float64)
    t = torch.arange(300, dtype=torch.float64) / sample_rate
    x = torch.stack([torch.sin(2 * np.pi * 150 * t), torch.cos(2 * np.pi * 210 * t)])[None].repeat(2, 1, 1) * 0.3
    weights = torch.sin(2 * np.pi * 170 * t)

    def loss(rate):
        return (chorus.process(x, {**params, "rate_hz": rate}, sample_rate) * weights).sum(dim=(1, 2))

    rate = params["rate_hz"].clone().requires_grad_(True)
    loss(rate).sum().backward()
    step = 1e-3 * rate.detach()
    numeric = (loss(rate.detach() + step) - loss(rate.detach() - step)) / (2 * step)
    assert torch.all(torch.isfinite(rate.grad)) and torch.all(rate.grad.abs() > 1e-3)
    torch.testing.assert_close(rate.grad, numeric, rtol=3e-2, atol=1e-2)


def test_chorus_gradients_finite_and_nonzero_float32():
    rng = np.random.default_rng(3)
    x = torch.as_tensor(
        np.stack([testsignals.make("pluck", 44100, 0.5, seed=s, channels=2) for s in range(3)])
    ).requires_grad_(True)
    draws = [chorus.SPEC.sample(rng) for _ in range(3)]
    params = {n: torch.tensor([d[n] for d in draws], requires_grad=True) for n in chorus.SPEC.param_names}
    y = chorus.process(x, params, 44100)
    assert y.dtype == torch.float32 and y.shape == x.shape
    (y**2).mean().backward()
    assert torch.all(torch.isfinite(x.grad)) and x.grad.abs().sum() > 0
    for name, value in params.items():
        assert torch.all(torch.isfinite(value.grad)), name
        assert torch.all(value.grad != 0), name


def test_chorus_batch_items_are_independent():
    x = torch.randn(3, 2, 2048)
    params = {
        "rate_hz": torch.tensor([0.2, 1.5, 4.0]),
        "depth": torch.tensor([0.1, 0.5, 0.9]),
        "centre_delay_ms": torch.tensor([3.0, 10.0, 20.0]),
        "feedback": torch.tensor([0.0, 0.25, 0.5]),
        "mix": torch.tensor([0.2, 0.5, 0.8]),
    }
    batched = chorus.process(x, params, 44100)
    for i in range(3):
        single = chorus.process(x[i : i + 1], {k: v[i : i + 1] for k, v in params.items()}, 44100)
        torch.testing.assert_close(batched[i : i + 1], single)
