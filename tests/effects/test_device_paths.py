"""The twins' torch path (what runs on CUDA tensors) against their numba kernels, both on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fxmatch.effects import batch, get_effect, get_spec
from fxmatch.effects.batch import linear_recurrence, twin_path, use_torch_path
from fxmatch.effects.delay import twin as delay
from fxmatch.effects.reverb import twin as reverb
from tests.effects.helpers import stable_seed

#: the twins with a numba kernel and a torch path (the filters share fxmatch.effects.biquad); Distortion and Gain are
#: torch ops only
TORCH_PATH_EFFECTS = ("Compressor", "Chorus", "Phaser", "Delay", "Reverb", "PeakFilter", "LowpassFilter",
                      "HighpassFilter")


def _run(effect: str, x: torch.Tensor, params: dict[str, torch.Tensor], path: str, rate: int):
    """Output and the gradients of a fixed random projection of it w.r.t. the input and every parameter."""
    x = x.detach().clone().requires_grad_()
    params = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    with twin_path(path):
        y = get_effect(effect).process(x, params, rate)
    weights = torch.from_numpy(np.random.default_rng(0).standard_normal(y.shape))
    grads = torch.autograd.grad((y * weights).sum(), [x, *params.values()])
    return y.detach(), grads


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("effect", TORCH_PATH_EFFECTS)
def test_torch_path_matches_the_numba_kernels_on_cpu_outputs_and_gradients(monkeypatch, effect, channels):
    # the Reverb's and Delay's numba forwards emulate float32 by default; the torch path runs the float64 maths
    monkeypatch.setattr(reverb, "FLOAT32_EMULATION", False)
    monkeypatch.setattr(delay, "FLOAT32_EMULATION", False)
    rate = (44100, 48000)[channels - 1]
    rng = np.random.default_rng(stable_seed(effect, channels))
    spec = get_spec(effect)
    draws = [spec.sample(rng) for _ in range(3)]
    params = {p.name: torch.tensor([d[p.name] for d in draws], dtype=torch.float64) for p in spec.params}
    samples = rate if effect == "Delay" else 3000  # long enough for the Delay's echoes
    x = torch.from_numpy(rng.standard_normal((3, channels, samples)) * 0.3)
    y_numba, g_numba = _run(effect, x, params, "numba", rate)
    y_torch, g_torch = _run(effect, x, params, "torch", rate)
    torch.testing.assert_close(y_torch, y_numba, rtol=1e-9, atol=1e-10)
    for name, a, b in zip(["input", *params], g_torch, g_numba):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-8 * max(1.0, float(b.abs().max())), msg=name)


def test_the_torch_path_is_chosen_for_other_devices_and_forced_by_twin_path():
    cpu = torch.zeros(1)
    assert batch.TWIN_PATH == "auto" and not use_torch_path(cpu)
    assert use_torch_path(torch.zeros(1, device="meta"))
    with twin_path("torch"):
        assert use_torch_path(cpu)
    assert not use_torch_path(cpu)
    with pytest.raises(ValueError, match="twin path"), twin_path("gpu"):  # type: ignore[arg-type]
        pass


def test_linear_recurrence_is_the_sequential_recursion():
    rng = np.random.default_rng(5)
    a = torch.from_numpy(rng.uniform(0.0, 1.0, (3, 1000)))
    b = torch.from_numpy(rng.standard_normal((3, 1000)))
    h, expected = torch.zeros(3, dtype=torch.float64), []
    for n in range(1000):
        h = a[:, n] * h + b[:, n]
        expected.append(h)
    torch.testing.assert_close(linear_recurrence(a, b), torch.stack(expected, dim=-1), rtol=1e-12, atol=1e-12)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("effect", TORCH_PATH_EFFECTS)
def test_twins_on_cuda_tensors_stay_there_and_match_the_cpu(effect):
    rng = np.random.default_rng(stable_seed(effect, "cuda"))
    spec = get_spec(effect)
    params = {k: torch.tensor([v]) for k, v in spec.sample(rng).items()}
    x = torch.from_numpy(rng.standard_normal((1, 2, 44100)) * 0.3).float()
    y_cpu = get_effect(effect).process(x, params, 44100)
    y_cuda = get_effect(effect).process(x.cuda(), {k: v.cuda() for k, v in params.items()}, 44100)
    assert y_cuda.device.type == "cuda"
    error = (y_cuda.cpu().double() - y_cpu.double()).pow(2).sum() / y_cpu.double().pow(2).sum().clamp_min(1e-30)
    assert float(error) < 1e-6  # float32 round-off (and the Reverb's float32 emulation on CPU)


def test_recomputed_gives_autograds_gradients_span_by_span():
    a = torch.randn(3, 10, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 1, dtype=torch.float64, requires_grad=True)

    def fn(a, b, span):
        return torch.sin(a[:, span] * b) * a[:, span], b * a[:, span] ** 2

    weights = torch.randn(3, 10, dtype=torch.float64), torch.randn(3, 10, dtype=torch.float64)
    expected = torch.autograd.grad(sum((o * w).sum() for o, w in zip(fn(a, b, slice(None)), weights)), (a, b))
    got = torch.autograd.grad(sum((o * w).sum() for o, w in zip(batch.recomputed(fn, 1, 10, 3, a, b), weights)), (a, b))
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e)
