import numpy as np
import pytest
import torch

from fxmatch.effects.delay import twin as delay
from fxmatch.effects.fidelity import compare
from tests.effects.helpers import stable_seed


@pytest.mark.parametrize("sample_rate", [44100, 48000])
@pytest.mark.parametrize("kind", ["pluck", "noise", "impulse", "silence"])
@pytest.mark.parametrize("channels", [1, 2])
def test_delay_twin_matches_pedalboard_within_40db(make_signal, sample_rate, kind, channels):
    rng = np.random.default_rng(stable_seed(sample_rate, kind, channels))
    x = make_signal(kind, sample_rate, seconds=0.5, channels=channels)
    for _ in range(3):
        params = delay.SPEC.sample(rng)
        params["delay_seconds"] = params["delay_seconds"] / 4  # keep several echoes inside 0.5 s
        result = compare(["Delay"], [params], x, sample_rate)
        assert result["snr_db"] >= 40.0, (params, result)


@pytest.mark.parametrize(
    "params",
    [
        {"delay_seconds": 0.0, "feedback": 0.5, "mix": 0.5},  # pedalboard passes the input through
        {"delay_seconds": 1e-6, "feedback": 0.5, "mix": 0.5},  # truncates to 0 samples: the whole line (30 s)
        {"delay_seconds": 1 / 44100, "feedback": 0.9, "mix": 0.4},  # one-sample delay
        {"delay_seconds": 0.01, "feedback": 1.0, "mix": 1.0},  # undamped feedback
        {"delay_seconds": 2.0, "feedback": 0.3, "mix": 0.3},  # longer than the signal
    ],
)
def test_delay_edge_cases_are_exact(make_signal, params):
    x = make_signal("noise", 44100, seconds=0.3, channels=2)
    assert compare(["Delay"], [params], x, 44100)["snr_db"] >= 100.0


def test_delay_integer_delay_truncates_like_pedalboard():
    seconds = torch.tensor([0.05, 0.1, 0.7, 0.0123456], dtype=torch.float64)
    assert delay.integer_delay(seconds, 44100).tolist() == [2205, 4410, 30869, 544]


def test_delay_gradients_match_finite_differences(monkeypatch):
    monkeypatch.setattr(delay, "FLOAT32_EMULATION", False)  # float64 forward, so finite differences are exact
    x = torch.randn(2, 2, 200, dtype=torch.float64, requires_grad=True)
    seconds = torch.tensor([0.0003, 0.0011], dtype=torch.float64)
    feedback = torch.tensor([0.2, 0.6], dtype=torch.float64, requires_grad=True)
    mix = torch.tensor([0.3, 0.55], dtype=torch.float64, requires_grad=True)

    def run(x, feedback, mix):
        return delay.process(x, {"delay_seconds": seconds, "feedback": feedback, "mix": mix}, 44100)

    assert torch.autograd.gradcheck(run, (x, feedback, mix))


def test_delay_time_gradient_follows_the_integer_delay_finite_difference():
    # smooth input: one whole sample of delay is a good finite difference of the continuous delay
    sample_rate = 8000.0
    t = torch.arange(4000, dtype=torch.float64) / sample_rate
    x = (torch.sin(2 * torch.pi * 35.0 * t) * torch.exp(-3 * t))[None, None]
    target = torch.randn(1, 1, 4000, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def loss(samples):
        params = {"delay_seconds": samples / sample_rate, "feedback": 0.5, "mix": 0.5}
        return ((delay.process(x, params, sample_rate) - target) ** 2).sum()

    samples = torch.tensor([400.25], dtype=torch.float64, requires_grad=True)  # exact delay 400
    loss(samples).backward()
    finite_difference = (loss(torch.tensor([401.25])) - loss(torch.tensor([399.25]))) / 2
    assert torch.isfinite(samples.grad).all()
    assert samples.grad.item() == pytest.approx(finite_difference.item(), rel=0.05)


def test_delay_gradients_are_finite_and_nonzero():
    x = torch.randn(3, 2, 4000, requires_grad=True)
    params = {
        "delay_seconds": torch.tensor([0.02, 0.01, 0.03], requires_grad=True),
        "feedback": torch.tensor([0.0, 0.35, 0.7], requires_grad=True),
        "mix": torch.tensor([0.1, 0.35, 0.6], requires_grad=True),
    }
    y = delay.process(x, params, 44100)
    assert y.dtype == torch.float32 and y.shape == x.shape
    (y * torch.randn_like(y)).sum().backward()
    for name, value in [("x", x), *params.items()]:
        assert torch.isfinite(value.grad).all(), name
        assert (value.grad.abs() > 0).all(), name


def test_delay_batch_items_are_independent():
    x = torch.randn(3, 2, 3000)
    params = {
        "delay_seconds": torch.tensor([0.01, 0.02, 0.05]),
        "feedback": torch.tensor([0.0, 0.3, 0.7]),
        "mix": torch.tensor([0.1, 0.4, 0.6]),
    }
    batched = delay.process(x, params, 44100)
    for i in range(3):
        single = delay.process(x[i : i + 1], {k: v[i : i + 1] for k, v in params.items()}, 44100)
        torch.testing.assert_close(batched[i : i + 1], single)
