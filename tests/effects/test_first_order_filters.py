"""The first-order filter twins (HighpassFilter, LowpassFilter): one set of tests, each run for both filters."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np
import pytest
import torch

from fxmatch import testsignals
from fxmatch.effects import biquad
from fxmatch.effects.fidelity import compare
from fxmatch.effects.highpass_filter import twin as highpass_filter
from fxmatch.effects.lowpass_filter import twin as lowpass_filter
from tests.effects.helpers import stable_seed


@dataclass(frozen=True)
class Filter:
    """A first-order filter twin and the cutoffs (Hz) its tests use, chosen inside its training range."""

    twin: ModuleType
    highpass: bool
    #: cutoffs at and beyond the training range's ends
    range_ends: tuple[float, ...]
    #: the -3 dB test's cutoff and the filter's gain at DC
    f0: float
    dc_gain: float
    #: cutoffs of two, one and three batch items
    two: tuple[float, float]
    spectral_two: tuple[float, float]
    one: float
    finite_two: tuple[float, float]
    three: tuple[float, float, float]

    @property
    def name(self) -> str:
        """pedalboard's name of the filter."""
        return self.twin.SPEC.name


FILTERS = {
    "highpass": Filter(highpass_filter, True, (40.0, 1000.0, 5.0, 20000.0), 300.0, 0.0, (50.0, 800.0),
                       (40.0, 1000.0), 40.0, (60.0, 600.0), (40.0, 200.0, 1000.0)),
    "lowpass": Filter(lowpass_filter, False, (1000.0, 12000.0, 20.0, 20000.0), 3000.0, 1.0, (1200.0, 9000.0),
                      (1000.0, 11000.0), 1000.0, (1500.0, 8000.0), (1000.0, 4000.0, 12000.0)),
}

each_filter = pytest.mark.parametrize("kind", list(FILTERS))


@pytest.mark.parametrize("sample_rate", [44100, 48000])
@pytest.mark.parametrize("signal", ["pluck", "noise", "impulse", "silence"])
@pytest.mark.parametrize("channels", [1, 2])
@each_filter
def test_first_order_filter_twin_matches_pedalboard_within_60db(make_signal, kind, sample_rate, signal, channels):
    f = FILTERS[kind]
    rng = np.random.default_rng(stable_seed(kind, sample_rate, signal, channels))
    x = make_signal(signal, sample_rate, seconds=0.3, channels=channels)
    for _ in range(3):
        params = f.twin.SPEC.sample(rng)
        result = compare([f.name], [params], x, sample_rate)
        assert result["snr_db"] >= 60.0, (params, result)


@each_filter
def test_first_order_filter_median_snr_over_random_draws_is_above_100db(kind):
    f = FILTERS[kind]
    rng = np.random.default_rng(2468)
    snrs = []
    for i in range(30):
        sample_rate = (44100, 48000)[i % 2]
        x = testsignals.make(("pluck", "chord", "noise")[i % 3], sample_rate, 0.25, seed=i, channels=1 + i % 2)
        snrs.append(compare([f.name], [f.twin.SPEC.sample(rng)], x, sample_rate)["snr_db"])
    assert np.median(snrs) >= 100.0, snrs
    assert np.min(snrs) >= 60.0, snrs


@pytest.mark.parametrize("kind, cutoff", [(kind, cutoff) for kind, f in FILTERS.items() for cutoff in f.range_ends])
def test_first_order_filter_range_ends_and_beyond_match_pedalboard(kind, cutoff):
    for sample_rate in (44100, 48000):
        x = testsignals.make("noise", sample_rate, 0.3, seed=7, channels=2)
        assert compare([FILTERS[kind].name], [{"cutoff_frequency_hz": cutoff}], x, sample_rate)["snr_db"] >= 60.0


@each_filter
def test_first_order_filter_is_3db_down_at_its_cutoff_and_has_its_gain_at_dc(kind):
    f = FILTERS[kind]
    sample_rate = 48000
    t = torch.arange(sample_rate, dtype=torch.float64) / sample_rate
    x = torch.stack([torch.sin(2 * torch.pi * f.f0 * t), torch.ones_like(t)])[None]
    y = f.twin.process(x, {"cutoff_frequency_hz": f.f0}, sample_rate)
    ratio = y[0, 0, -4800:].abs().amax() / x[0, 0, -4800:].abs().amax()
    assert abs(20 * torch.log10(ratio).item() + 10 * np.log10(2)) < 0.01
    torch.testing.assert_close(y[0, 1, -100:], torch.full((100,), f.dc_gain, dtype=torch.float64), rtol=1e-7,
                               atol=1e-10)


@each_filter
def test_first_order_filter_cutoff_above_nyquist_stays_finite(kind):
    """pedalboard runs an unstable filter there; the twin clamps the cutoff below the Nyquist frequency."""
    x = torch.randn(1, 1, 44100, dtype=torch.float64)
    y = FILTERS[kind].twin.process(x, {"cutoff_frequency_hz": 30000.0}, 44100)
    assert torch.isfinite(y).all() and y.abs().max() < 10


@each_filter
def test_first_order_filter_gradient_matches_finite_difference(kind):
    f = FILTERS[kind]
    torch.manual_seed(0)
    x = torch.randn(2, 2, 200, dtype=torch.float64, requires_grad=True)
    cutoff = torch.tensor(f.two, dtype=torch.float64, requires_grad=True)

    def fn(x, cutoff):
        return f.twin.process(x, {"cutoff_frequency_hz": cutoff}, 44100)

    assert torch.autograd.gradcheck(fn, (x, cutoff), fast_mode=True)


@each_filter
def test_first_order_filter_spectral_path_gradient_matches_finite_difference(kind):
    f = FILTERS[kind]
    torch.manual_seed(1)
    x = torch.randn(2, 1, 150, dtype=torch.float64, requires_grad=True)
    cutoff = torch.tensor(f.spectral_two, dtype=torch.float64, requires_grad=True)

    def fn(x, cutoff):
        return biquad.filter_spectral(x, *biquad.first_order_coefficients(cutoff, 48000, highpass=f.highpass))

    assert torch.autograd.gradcheck(fn, (x, cutoff), fast_mode=True)


@each_filter
def test_first_order_filter_recursive_and_spectral_paths_agree(kind):
    f = FILTERS[kind]
    x = torch.as_tensor(testsignals.make("pluck", 44100, 0.3, seed=2, channels=2), dtype=torch.float64)[None]
    outputs, grads = [], []
    for fn in (biquad.filter_recursive, biquad.filter_spectral):
        cutoff = torch.tensor([f.one], dtype=torch.float64, requires_grad=True)
        xi = x.clone().requires_grad_()
        y = fn(xi, *biquad.first_order_coefficients(cutoff, 44100, highpass=f.highpass))
        y.square().sum().backward()
        outputs.append(y.detach())
        grads.append([xi.grad, cutoff.grad])
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=1e-10)
    for g0, g1 in zip(*grads):
        torch.testing.assert_close(g0, g1, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@each_filter
def test_first_order_filter_gradients_are_finite_and_nonzero(kind, dtype):
    f = FILTERS[kind]
    x = torch.as_tensor(testsignals.make("chord", 44100, 0.3, seed=3, channels=2), dtype=dtype)[None].repeat(2, 1, 1)
    x.requires_grad_()
    cutoff = torch.tensor(f.finite_two, dtype=dtype, requires_grad=True)
    y = f.twin.process(x, {"cutoff_frequency_hz": cutoff}, 44100)
    assert y.dtype == dtype and y.shape == x.shape
    y.square().sum().backward()
    assert torch.isfinite(cutoff.grad).all() and (cutoff.grad.abs() > 0).all()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@each_filter
def test_first_order_filter_batch_items_are_independent(kind):
    f = FILTERS[kind]
    x = torch.randn(3, 2, 256)
    cutoff = torch.tensor(f.three)
    batched = f.twin.process(x, {"cutoff_frequency_hz": cutoff}, 44100)
    for i in range(3):
        single = f.twin.process(x[i : i + 1], {"cutoff_frequency_hz": cutoff[i : i + 1]}, 44100)
        torch.testing.assert_close(batched[i : i + 1], single)
