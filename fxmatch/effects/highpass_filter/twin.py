"""HighpassFilter: pedalboard.HighpassFilter (JUCE's first-order IIR high-pass, 6 dB per octave, -3 dB at the cutoff).

Why it is in the vocabulary: a low cut, the other half of a tone stage: amps, cabinets, pedals and mixing engineers
thin out the lows of a guitar (a small speaker, a coupling capacitor, a "tight" switch). Training range 40-1000 Hz
(log): from a gentle rumble cut up to a telephone-thin sound.

pedalboard reference (measured on its impulse response, pedalboard 0.9): `n = tan(pi f / sample_rate)` (the bilinear
transform with the cutoff prewarped), `b = [1, -1] / (n + 1)`, `a = [1, (n - 1) / (n + 1)]`, in float32, run per
channel by the transposed-direct-form-II filter that PeakFilter uses, its state at 0 on every call; the cutoff is
not clamped. The twin computes the same coefficients in the input's dtype (differentiable w.r.t. the cutoff) and
runs them through the shared biquad machinery (`fxmatch.effects.biquad`, `b2 = a2 = 0`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from fxmatch.effects.batch import as_batch_param
from fxmatch.effects.biquad import filter_biquad, first_order_coefficients
from fxmatch.effects.highpass_filter import SPEC  # noqa: F401 (the twin's spec, beside it)


def process(x: torch.Tensor, params: Mapping[str, torch.Tensor | float], sample_rate: float) -> torch.Tensor:
    """High-pass `x` `[batch, channels, samples]`; `cutoff_frequency_hz` `[batch]` in Hz. Returns the same shape."""
    cutoff = as_batch_param(params["cutoff_frequency_hz"], x.shape[0], x)
    return filter_biquad(x, *first_order_coefficients(cutoff, sample_rate, highpass=True))
