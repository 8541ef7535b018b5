"""Gain: pedalboard.Gain (juce::dsp::Gain), the output level at the end of a chain.

pedalboard reference: `y = x * decibelsToGain(gain_db)`, memoryless and identical per channel, no ramp (the gain is
set before the processor is prepared, so its smoother starts at the target). JUCE's `decibelsToGain` takes
-100 dB and below as silence (0). Training range -12..12 dB: a level knob's useful span around unity.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from fxmatch.effects.batch import as_batch_param
from fxmatch.effects.gain import SPEC  # noqa: F401 (the twin's spec, beside it)

#: JUCE's `Decibels::decibelsToGain` floor: this level and below is silence
MINUS_INFINITY_DB = -100.0


def decibels_to_gain(gain_db: torch.Tensor) -> torch.Tensor:
    """JUCE's `Decibels::decibelsToGain`: `10 ** (dB / 20)`, 0 at -100 dB and below. Same shape as `gain_db`."""
    return torch.where(gain_db > MINUS_INFINITY_DB, torch.pow(10.0, gain_db / 20.0), torch.zeros_like(gain_db))


def process(x: torch.Tensor, params: Mapping[str, torch.Tensor | float], sample_rate: float) -> torch.Tensor:
    """Scale `x` `[batch, channels, samples]`; param `gain_db` `[batch]` in dB. Returns the same shape."""
    del sample_rate  # memoryless
    gain_db = as_batch_param(params["gain_db"], x.shape[0], x)
    return x * decibels_to_gain(gain_db)[:, None, None]
