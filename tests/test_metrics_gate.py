"""fxmatch.metrics' noise gate: the log-magnitude term ignores what lies below the target's noise floor."""

from __future__ import annotations

import numpy as np
import torch

from fxmatch import testsignals
from fxmatch.metrics import (
    GATE_MAX_DB,
    GATE_MIN_DB,
    gate_floors,
    mrstft_distance,
    mrstft_from_magnitudes,
    mrstft_to_targets,
    stft_magnitudes,
    target_spectra,
)


def _noisy(x: np.ndarray, level_db: float, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy((x + 10 ** (level_db / 20) * rng.standard_normal(x.size)).astype(np.float32))[None]


def test_the_gate_ignores_independent_noise_floors_but_not_the_signal():
    """Two copies of quiet plucks with their own noise 60 dB down: the plain distance is dominated by the noise
    against noise in the quiet bins, the gated one is not; a real difference (3 dB) still counts."""
    x = testsignals.make("pluck", 16000, 1.2, seed=3)[0] * 0.1
    a, b = _noisy(x, -90.0, 1), _noisy(x, -90.0, 2)
    plain, gated = float(mrstft_distance(a, b)), float(mrstft_distance(a, b, gate=True))
    louder = float(mrstft_distance(a * 10 ** (3 / 20), b, gate=True))
    assert gated < 0.1 * plain and louder > 5 * gated
    assert float(mrstft_distance(b, b, gate=True)) == 0.0


def test_gate_floors_stay_between_their_limits_per_row():
    """One floor per target row and resolution, between GATE_MAX_DB and GATE_MIN_DB below the row's RMS level."""
    x = testsignals.make("pluck", 16000, 1.0, seed=3)[0]
    rows = torch.stack([torch.from_numpy(x), _noisy(x, -20.0, 1)[0]])  # clean, and noise 14 dB under the plucks
    mags = stft_magnitudes(rows, (1024, 256))
    for m, floor in zip(mags, gate_floors(mags)):
        level = m.square().mean(dim=(1, 2)).sqrt()
        assert floor.shape == (2,)
        assert torch.all(floor >= level * 10 ** (-GATE_MAX_DB / 20) * 0.999)
        assert torch.all(floor <= level * 10 ** (-GATE_MIN_DB / 20) * 1.001)
        assert floor[1] > 10 * floor[0]  # the noisy row's floor follows its noise (to its cap)



def test_the_gate_reads_hiss_under_a_sustained_tone_not_its_quiet_harmonics():
    """A drive-like sustained tone whose harmonics fill the spectrum to 15 kHz, falling by 60 dB, over hiss 120 dB
    down: the floor lies under the quietest harmonics, so they still count in the distance. (The gate's first
    estimate, the median over frequency, read the harmonics themselves as the floor and cut at 40 dB.)"""
    rate, f0 = 44100, 55.0
    t = np.arange(int(rate * 1.5)) / rate
    harmonics = np.arange(1, int(15000 / f0) + 1)
    gains = 10 ** (-60 / 20 * (harmonics - 1) / (harmonics.size - 1))
    phases = np.random.default_rng(0).uniform(0, 2 * np.pi, harmonics.size)
    tone = (gains[:, None] * np.sin(2 * np.pi * f0 * harmonics[:, None] * t + phases[:, None])).sum(axis=0) * 0.01
    mags = stft_magnitudes(_noisy(tone, -120.0, 1), (2048,))[0]
    floor = gate_floors([mags])[0][0]
    bin_hz = rate / 2048
    top_harmonics = torch.quantile(mags[0, int(10000 / bin_hz):int(15000 / bin_hz)], 0.1, dim=1)
    assert floor < top_harmonics.min()


def test_the_fused_distance_gates_as_the_plain_one_forward_and_backward():
    """`mrstft_to_targets` on `target_spectra(..., gate=True)` (the capture search's loss) gives the gated distance
    of `mrstft_from_magnitudes` and its gradient; the floors matter here (the gated figure is lower than the plain)."""
    x = testsignals.make("pluck", 16000, 0.6, seed=3)[0] * 0.1
    target = _noisy(x, -90.0, 1)
    gen = torch.Generator().manual_seed(4)
    estimate = (_noisy(x, -90.0, 2).expand(3, -1) * torch.tensor([[1.0], [0.7], [1.3]])
                + 1e-3 * torch.randn(3, x.size, generator=gen)).contiguous()
    sizes = (1024, 256)
    mags = stft_magnitudes(target, sizes)
    for gate in (False, True):
        a, b = estimate.clone().requires_grad_(), estimate.clone().requires_grad_()
        ref = mrstft_from_magnitudes(a, mags, sizes, reduce=False, floors=gate_floors(mags) if gate else None)
        fused = mrstft_to_targets(b, target_spectra(target, sizes, gate=gate))
        assert torch.allclose(fused, ref, rtol=1e-4), (gate, fused, ref)
        ref.sum().backward()
        fused.sum().backward()
        cos = torch.nn.functional.cosine_similarity(a.grad.flatten(), b.grad.flatten(), dim=0)
        assert cos > 0.999 and torch.allclose(a.grad.norm(), b.grad.norm(), rtol=1e-3), (gate, cos)
    plain = mrstft_to_targets(estimate, target_spectra(target, sizes))
    gated = mrstft_to_targets(estimate, target_spectra(target, sizes, gate=True))
    assert torch.all(gated < 0.85 * plain)
