import numpy as np
import pytest
import torch

from fxmatch.effects.fidelity import compare
from fxmatch.effects.reverb import twin as reverb
from fxmatch.effects.reverb.twin import _ReverbFunction
from tests.effects.helpers import stable_seed

# tiny comb/allpass delays so that gradcheck sees every recursion within a few dozen samples
_TINY_COMBS = np.array([[5, 7, 11, 13, 17, 19, 23, 29], [6, 8, 12, 14, 18, 20, 24, 30]])
_TINY_ALLPASSES = np.array([[4, 3, 2, 1], [5, 4, 3, 2]])


@pytest.mark.parametrize("sample_rate", [44100, 48000])
@pytest.mark.parametrize("kind", ["pluck", "noise", "impulse", "silence"])
@pytest.mark.parametrize("channels", [1, 2])
def test_reverb_twin_matches_pedalboard_within_40db(make_signal, sample_rate, kind, channels):
    rng = np.random.default_rng(stable_seed(sample_rate, kind, channels))
    x = make_signal(kind, sample_rate, seconds=0.4, channels=channels)
    for _ in range(2):
        params = reverb.SPEC.sample(rng)
        result = compare(["Reverb"], [params], x, sample_rate)
        assert result["snr_db"] >= 40.0, (params, result)


@pytest.mark.parametrize("params", [{"room_size": 1.0, "damping": 0.0}, {"room_size": 0.0, "damping": 1.0}])
def test_reverb_extreme_settings_match_pedalboard(make_signal, params):
    x = make_signal("pluck", 44100, seconds=0.4, channels=2)
    params = {**params, "wet_level": 1.0, "dry_level": 0.0}
    assert compare(["Reverb"], [params], x, 44100)["snr_db"] >= 60.0


@pytest.mark.parametrize("channels", [1, 2])
def test_reverb_float32_emulation_is_bit_exact_on_x86(make_signal, channels):
    if not reverb._JUCE_UNDENORMALISES:
        pytest.skip("bit-exactness checked on x86 builds of pedalboard")
    x = make_signal("chord", 48000, seconds=0.5, channels=channels)
    params = reverb.SPEC.sample(np.random.default_rng(channels))
    assert compare(["Reverb"], [params], x, 48000)["snr_db"] == float("inf")


def test_reverb_float64_forward_is_within_round_off(make_signal, monkeypatch):
    monkeypatch.setattr(reverb, "FLOAT32_EMULATION", False)
    x = make_signal("pluck", 44100, seconds=0.5, channels=2)
    params = reverb.SPEC.sample(np.random.default_rng(7))
    assert compare(["Reverb"], [params], x, 44100)["snr_db"] >= 100.0


def test_reverb_delay_lengths_follow_juce():
    combs, allpasses = reverb.delay_lengths(48000)
    assert combs[0].tolist() == [1214, 1293, 1389, 1475, 1547, 1622, 1694, 1760]
    assert combs[1, 0] == (48000 * (1116 + 23)) // 44100
    assert allpasses[0].tolist() == [605, 480, 371, 244]


@pytest.fixture
def float64_forward(monkeypatch):
    """Exact-arithmetic forward pass, so that finite differences are accurate."""
    monkeypatch.setattr(reverb, "FLOAT32_EMULATION", False)


@pytest.mark.parametrize("sides", [1, 2])
def test_reverb_recursion_gradients_match_finite_differences(float64_forward, sides):
    x = torch.randn(2, sides, 80, dtype=torch.float64, requires_grad=True)
    params = [
        torch.tensor(v, dtype=torch.float64, requires_grad=True)
        for v in ([0.2, 0.95], [0.0, 0.7], [0.3, 0.5], [0.5, 0.9])  # room_size, damping, wet_level, dry_level
    ]

    def run(x, *p):
        return _ReverbFunction.apply(x, *p, _TINY_COMBS[:sides], _TINY_ALLPASSES[:sides])

    assert torch.autograd.gradcheck(run, (x, *params))


def test_reverb_parameter_gradients_match_finite_differences(float64_forward):
    x = torch.randn(2, 2, 2600, dtype=torch.float64) * 0.3
    values = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in ([0.3, 0.9], [0.2, 0.7], [0.3, 0.5])]
    values.append(torch.tensor([0.5, 0.9], dtype=torch.float64, requires_grad=True))

    def run(*p):
        return reverb.process(x, dict(zip(reverb.SPEC.param_names, p)), 48000)

    assert torch.autograd.gradcheck(run, values, fast_mode=True)


def test_reverb_gradients_are_finite_and_nonzero():
    x = torch.randn(3, 2, 3000, requires_grad=True)
    params = {
        "room_size": torch.tensor([0.1, 0.5, 0.95], requires_grad=True),
        "damping": torch.tensor([0.0, 0.5, 1.0], requires_grad=True),
        "wet_level": torch.tensor([0.1, 0.3, 0.6], requires_grad=True),
        "dry_level": torch.tensor([0.4, 0.7, 1.0], requires_grad=True),
    }
    y = reverb.process(x, params, 44100)
    assert y.dtype == torch.float32 and y.shape == x.shape
    (y * torch.randn_like(y)).sum().backward()
    for name, value in [("x", x), *params.items()]:
        assert torch.isfinite(value.grad).all(), name
        assert (value.grad.abs() > 0).all(), name


def test_reverb_batch_items_are_independent():
    x = torch.randn(3, 2, 3000)
    params = {
        "room_size": torch.tensor([0.1, 0.5, 0.95]),
        "damping": torch.tensor([0.0, 0.5, 1.0]),
        "wet_level": torch.tensor([0.1, 0.3, 0.6]),
        "dry_level": torch.tensor([0.4, 0.7, 1.0]),
    }
    batched = reverb.process(x, params, 44100)
    for i in range(3):
        single = reverb.process(x[i : i + 1], {k: v[i : i + 1] for k, v in params.items()}, 44100)
        torch.testing.assert_close(batched[i : i + 1], single)


def test_reverb_passes_other_channel_counts_through_like_pedalboard(make_signal):
    x = make_signal("noise", 44100, seconds=0.1, channels=3)
    params = reverb.SPEC.defaults()
    assert compare(["Reverb"], [params], x, 44100)["snr_db"] == float("inf")
