"""fxmatch.metrics' noise gate: the log-magnitude term ignores what lies below the target's noise floor."""

from __future__ import annotations

import numpy as np
import torch

from fxmatch import testsignals
from fxmatch.metrics import GATE_MAX_DB, GATE_MIN_DB, gate_floors, mrstft_distance, stft_magnitudes


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
