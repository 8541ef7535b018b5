import numpy as np
import pytest
import torch

from fxmatch import testsignals
from fxmatch.effects import biquad
from fxmatch.effects.fidelity import compare
from fxmatch.effects.peak_filter import twin as peak_filter
from tests.effects.helpers import stable_seed


def _params(batch: int, dtype=torch.float64, **values) -> dict[str, torch.Tensor]:
    base = {"cutoff_frequency_hz": 800.0, "gain_db": 6.0, "q": 1.5} | values
    return {k: torch.full((batch,), float(v), dtype=dtype, requires_grad=True) for k, v in base.items()}


@pytest.mark.parametrize("sample_rate", [44100, 48000])
@pytest.mark.parametrize("kind", ["pluck", "noise", "impulse", "silence"])
@pytest.mark.parametrize("channels", [1, 2])
def test_peak_filter_twin_matches_pedalboard_within_40db(make_signal, sample_rate, kind, channels):
    rng = np.random.default_rng(stable_seed(sample_rate, kind, channels))
    x = make_signal(kind, sample_rate, seconds=0.3, channels=channels)
    for _ in range(3):
        params = peak_filter.SPEC.sample(rng)
        result = compare(["PeakFilter"], [params], x, sample_rate)
        assert result["snr_db"] >= 40.0, (params, result)


def test_peak_filter_median_snr_over_random_draws():
    rng = np.random.default_rng(4321)
    snrs = []
    for i in range(50):
        sample_rate = (44100, 48000)[i % 2]
        x = testsignals.make(("pluck", "chord", "noise")[i % 3], sample_rate, 0.25, seed=i, channels=1 + i % 2)
        snrs.append(compare(["PeakFilter"], [peak_filter.SPEC.sample(rng)], x, sample_rate)["snr_db"])
    assert np.median(snrs) >= 40.0
    assert np.min(snrs) >= 40.0


def test_peak_filter_range_corners_match_pedalboard():
    """The slowest-decaying corner (low, narrow boost) and the widest cut, both rates."""
    for sample_rate in (44100, 48000):
        x = testsignals.make("noise", sample_rate, 0.3, seed=7, channels=2)
        for params in (
            {"cutoff_frequency_hz": 200.0, "gain_db": 12.0, "q": 4.0},
            {"cutoff_frequency_hz": 6000.0, "gain_db": -12.0, "q": 0.5},
        ):
            assert compare(["PeakFilter"], [params], x, sample_rate)["snr_db"] >= 40.0, params


def test_peak_filter_response_at_centre_is_the_gain():
    sample_rate, f0 = 48000, 1000.0
    t = torch.arange(sample_rate, dtype=torch.float64) / sample_rate
    x = torch.sin(2 * torch.pi * f0 * t)[None, None]
    for gain_db in (-12.0, 6.0):
        y = peak_filter.process(x, _params(1, cutoff_frequency_hz=f0, gain_db=gain_db), sample_rate)
        ratio = y[..., -4800:].abs().amax() / x[..., -4800:].abs().amax()
        assert abs(20 * torch.log10(ratio).item() - gain_db) < 0.01


def test_peak_filter_gradient_matches_finite_difference():
    torch.manual_seed(0)
    x = torch.randn(2, 2, 200, dtype=torch.float64, requires_grad=True)
    cutoff = torch.tensor([300.0, 3000.0], dtype=torch.float64, requires_grad=True)
    gain = torch.tensor([6.0, -9.0], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([2.0, 0.7], dtype=torch.float64, requires_grad=True)

    def fn(x, cutoff, gain, q):
        return peak_filter.process(x, {"cutoff_frequency_hz": cutoff, "gain_db": gain, "q": q}, 44100)

    assert torch.autograd.gradcheck(fn, (x, cutoff, gain, q), fast_mode=True)


def test_spectral_path_gradient_matches_finite_difference():
    torch.manual_seed(1)
    x = torch.randn(2, 2, 150, dtype=torch.float64, requires_grad=True)
    cutoff = torch.tensor([500.0, 5000.0], dtype=torch.float64, requires_grad=True)
    gain = torch.tensor([-3.0, 10.0], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([0.6, 3.0], dtype=torch.float64, requires_grad=True)

    def fn(x, cutoff, gain, q):
        b, a = peak_filter.biquad_coefficients(cutoff, gain, q, 48000)
        return biquad.filter_spectral(x, b, a)

    assert torch.autograd.gradcheck(fn, (x, cutoff, gain, q), fast_mode=True)


def test_recursive_and_spectral_paths_agree():
    """The CPU recursion and the frequency-sampling path (used off CPU) give the same values and gradients."""
    x = torch.as_tensor(testsignals.make("pluck", 44100, 0.3, seed=2, channels=2), dtype=torch.float64)[None]
    grads = []
    outputs = []
    for fn in (biquad.filter_recursive, biquad.filter_spectral):
        params = _params(1, cutoff_frequency_hz=210.0, gain_db=11.0, q=3.8)
        xi = x.clone().requires_grad_()
        b, a = peak_filter.biquad_coefficients(*params.values(), 44100)
        y = fn(xi, b, a)
        y.square().sum().backward()
        outputs.append(y.detach())
        grads.append([xi.grad, *(p.grad for p in params.values())])
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=1e-10)
    for g0, g1 in zip(*grads):
        torch.testing.assert_close(g0, g1, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_peak_filter_gradients_are_finite_and_nonzero(dtype):
    x = torch.as_tensor(testsignals.make("chord", 44100, 0.3, seed=3, channels=2), dtype=dtype)[None].repeat(2, 1, 1)
    x.requires_grad_()
    params = _params(2, dtype=dtype)
    y = peak_filter.process(x, params, 44100)
    assert y.dtype == dtype and y.shape == x.shape
    y.square().sum().backward()
    for name, p in params.items():
        assert torch.isfinite(p.grad).all() and (p.grad.abs() > 0).all(), name
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_peak_filter_batch_items_are_independent():
    x = torch.randn(3, 2, 256)
    params = {
        "cutoff_frequency_hz": torch.tensor([200.0, 1000.0, 6000.0]),
        "gain_db": torch.tensor([-12.0, 0.0, 12.0]),
        "q": torch.tensor([0.5, 1.0, 4.0]),
    }
    batched = peak_filter.process(x, params, 44100)
    for i in range(3):
        single = peak_filter.process(x[i : i + 1], {k: v[i : i + 1] for k, v in params.items()}, 44100)
        torch.testing.assert_close(batched[i : i + 1], single)
