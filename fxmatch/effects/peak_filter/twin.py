"""PeakFilter: pedalboard.PeakFilter (JUCE IIR::Coefficients::makePeakFilter, an RBJ peaking-EQ biquad).

pedalboard reference: the cutoff is clamped to [0.01 Hz, sample_rate / 2 - 100 Hz] (and JUCE raises it to at least
2 Hz); `A = sqrt(10 ** (gain_db / 20)) = 10 ** (gain_db / 40)`, `w = 2 pi f / sample_rate`, `alpha = sin(w) / (2 q)`,
`b = [1 + alpha A, -2 cos w, 1 - alpha A]`, `a = [1 + alpha / A, -2 cos w, 1 - alpha / A]`, normalised by `a0`,
run per channel by a float32 transposed-direct-form-II filter whose state starts at 0 on every call.

The twin computes the same coefficients with torch (differentiable w.r.t. cutoff, gain and Q) and runs the biquad
with `fxmatch.effects.biquad` (a numba recursion with its adjoint on CPU, frequency sampling on other devices; the
two agree to about 1e-13 in float64). Differences from pedalboard: float64 (tests) or float32 arithmetic with
double-precision coefficient design instead of JUCE's float32 coefficients; 70-130 dB SNR in float64, the lowest
for low, narrow boosts where JUCE's float32 round-off in the recursion is largest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from fxmatch.effects.batch import batch_params
from fxmatch.effects.biquad import filter_biquad
from fxmatch.effects.peak_filter import SPEC  # noqa: F401 (the twin's spec, beside it)


def biquad_coefficients(
    cutoff_frequency_hz: torch.Tensor, gain_db: torch.Tensor, q: torch.Tensor, sample_rate: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised peaking-EQ coefficients `b`, `a` (`[batch, 3]` each, `a[:, 0] = 1`) from params `[batch]`."""
    nyquist_margin = float(sample_rate) / 2.0 - 100.0
    frequency = cutoff_frequency_hz.clamp(2.0, nyquist_margin)  # pedalboard's clamp, then JUCE's 2 Hz floor
    amplitude = torch.pow(10.0, gain_db / 40.0)
    omega = 2.0 * math.pi * frequency / float(sample_rate)
    alpha = torch.sin(omega) / (2.0 * q)
    c2 = -2.0 * torch.cos(omega)
    a0 = 1.0 + alpha / amplitude
    b = torch.stack([1.0 + alpha * amplitude, c2, 1.0 - alpha * amplitude], dim=-1) / a0[:, None]
    a = torch.stack([torch.ones_like(c2), c2 / a0, (1.0 - alpha / amplitude) / a0], dim=-1)
    return b, a


def process(x: torch.Tensor, params: Mapping[str, torch.Tensor | float], sample_rate: float) -> torch.Tensor:
    """Filter `x` `[batch, channels, samples]`; params `[batch]` in Hz, dB and Q. Returns the same shape."""
    samples = x.shape[-1]
    if samples == 0:
        return x
    cutoff, gain_db, q = batch_params(params, ("cutoff_frequency_hz", "gain_db", "q"), x)
    return filter_biquad(x, *biquad_coefficients(cutoff, gain_db, q, sample_rate))
