"""Distortion: pedalboard.Distortion (JUCE Gain followed by a tanh waveshaper).

pedalboard reference: `y = tanh(x * 10 ** (drive_db / 20))`, memoryless and identical per channel; the gain is
JUCE's `decibelsToGain`, so a drive of -100 dB or below is silence.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from fxmatch.effects.batch import as_batch_param
from fxmatch.effects.distortion import SPEC  # noqa: F401 (the twin's spec, beside it)
from fxmatch.effects.gain.twin import decibels_to_gain


def process(x: torch.Tensor, params: Mapping[str, torch.Tensor | float], sample_rate: float) -> torch.Tensor:
    """Distort `x` `[batch, channels, samples]`; params `drive_db` `[batch]` in dB. Returns the same shape."""
    del sample_rate  # memoryless
    drive_db = as_batch_param(params["drive_db"], x.shape[0], x)
    gain = decibels_to_gain(drive_db)[:, None, None]
    return torch.tanh(x * gain)
