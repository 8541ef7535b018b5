import numpy as np
import pytest
import torch

from fxmatch import testsignals
from fxmatch.effects.compressor import twin as compressor
from fxmatch.effects.fidelity import compare
from tests.effects.helpers import stable_seed


def _params(batch: int, dtype=torch.float64, **values) -> dict[str, torch.Tensor]:
    base = {"threshold_db": -25.0, "ratio": 6.0, "attack_ms": 2.0, "release_ms": 60.0} | values
    return {k: torch.full((batch,), float(v), dtype=dtype, requires_grad=True) for k, v in base.items()}


@pytest.mark.parametrize("sample_rate", [44100, 48000])
@pytest.mark.parametrize("kind", ["pluck", "noise", "impulse", "silence"])
@pytest.mark.parametrize("channels", [1, 2])
def test_compressor_twin_matches_pedalboard_within_30db(make_signal, sample_rate, kind, channels):
    rng = np.random.default_rng(stable_seed(sample_rate, kind, channels))
    x = make_signal(kind, sample_rate, seconds=0.3, channels=channels)
    for _ in range(3):
        params = compressor.SPEC.sample(rng)
        result = compare(["Compressor"], [params], x, sample_rate)
        assert result["snr_db"] >= 30.0, (params, result)


def test_compressor_median_snr_over_random_draws():
    rng = np.random.default_rng(1234)
    snrs = []
    for i in range(50):
        sample_rate = (44100, 48000)[i % 2]
        x = testsignals.make(("pluck", "chord", "noise")[i % 3], sample_rate, 0.25, seed=i, channels=1 + i % 2)
        snrs.append(compare(["Compressor"], [compressor.SPEC.sample(rng)], x, sample_rate)["snr_db"])
    assert np.median(snrs) >= 30.0
    assert np.min(snrs) >= 30.0


def test_compressor_compresses_loud_signals():
    """Above threshold the level is reduced by the ratio (steady sine, envelope settled)."""
    t = torch.arange(44100, dtype=torch.float64) / 44100
    x = (0.5 * torch.sin(2 * torch.pi * 220 * t))[None, None]
    y = compressor.process(x, _params(1, threshold_db=-20.0, ratio=4.0, release_ms=500.0), 44100)
    expected_peak = 0.1 * (0.5 / 0.1) ** (1 / 4)  # 14 dB over a 0.1 threshold leaves 3.5 dB over it
    assert abs(float(y.detach()[..., -4410:].abs().amax()) / expected_peak - 1) < 0.05
    quiet = compressor.process(x * 0.01, _params(1, threshold_db=-20.0), 44100)
    torch.testing.assert_close(quiet, x * 0.01)


def test_compressor_gradient_matches_finite_difference():
    torch.manual_seed(0)
    x = (torch.randn(2, 2, 200, dtype=torch.float64) * 0.3).requires_grad_()
    thr = torch.tensor([-20.0, -12.0], dtype=torch.float64, requires_grad=True)
    ratio = torch.tensor([3.0, 8.0], dtype=torch.float64, requires_grad=True)
    attack = torch.tensor([1.0, 5.0], dtype=torch.float64, requires_grad=True)
    release = torch.tensor([30.0, 100.0], dtype=torch.float64, requires_grad=True)

    def fn(x, thr, ratio, attack, release):
        params = {"threshold_db": thr, "ratio": ratio, "attack_ms": attack, "release_ms": release}
        return compressor.process(x, params, 44100)

    assert torch.autograd.gradcheck(
        fn, (x, thr, ratio, attack, release), eps=1e-7, atol=1e-5, rtol=1e-3, fast_mode=True
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compressor_gradients_are_finite_and_nonzero(dtype):
    x = torch.as_tensor(testsignals.make("pluck", 44100, 0.3, seed=3, channels=2), dtype=dtype)[None].repeat(2, 1, 1)
    x.requires_grad_()
    params = _params(2, dtype=dtype)
    y = compressor.process(x, params, 44100)
    assert y.dtype == dtype and y.shape == x.shape
    y.square().sum().backward()
    for name, p in params.items():
        assert torch.isfinite(p.grad).all() and (p.grad.abs() > 0).all(), name
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_compressor_silence_has_finite_zero_parameter_gradients():
    x = torch.zeros(1, 1, 512, dtype=torch.float32, requires_grad=True)
    params = _params(1, dtype=torch.float32)
    y = compressor.process(x, params, 44100)
    assert torch.all(y == 0)
    y.sum().backward()
    for p in params.values():
        assert torch.isfinite(p.grad).all()


def test_compressor_float32_close_to_float64():
    x = torch.as_tensor(testsignals.make("noise", 48000, 0.3, seed=5, channels=2))[None]
    y32 = compressor.process(x, _params(1, dtype=torch.float32), 48000)
    y64 = compressor.process(x.double(), _params(1), 48000)
    err = (y32.double() - y64).square().sum() / y64.square().sum()
    assert 10 * torch.log10(err) < -100


def test_compressor_batch_items_are_independent():
    x = torch.randn(3, 2, 256) * 0.3
    params = {
        "threshold_db": torch.tensor([-40.0, -20.0, -5.0]),
        "ratio": torch.tensor([1.5, 4.0, 20.0]),
        "attack_ms": torch.tensor([0.5, 5.0, 50.0]),
        "release_ms": torch.tensor([20.0, 100.0, 500.0]),
    }
    batched = compressor.process(x, params, 44100)
    for i in range(3):
        single = compressor.process(x[i : i + 1], {k: v[i : i + 1] for k, v in params.items()}, 44100)
        torch.testing.assert_close(batched[i : i + 1], single)
