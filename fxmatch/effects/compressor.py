"""Compressor: pedalboard.Compressor (juce::dsp::Compressor: peak ballistics envelope and a hard-knee gain computer).

pedalboard reference, per channel, state starting at 0 on every call (reset=True):

- level `v[n] = |x[n]|` (JUCE's BallisticsFilter in its default *peak* mode, no RMS);
- envelope `e[n] = v[n] + c * (e[n-1] - v[n])` with `c = exp(-2 pi 1000 / (sample_rate * time_ms))`, the attack time
  when `v[n] > e[n-1]` (rising) and the release time otherwise;
- gain `g[n] = 1` if `e[n] < threshold` else `(e[n] / threshold) ** (1 / ratio - 1)` with
  `threshold = 10 ** (threshold_db / 20)`; output `y[n] = g[n] * x[n]` (no make-up gain, no look-ahead, no knee).

The twin runs the same recursion with `torchcomp.core.compressor_core` (numba forward, adjoint recursion through
torchlpc in the backward), which smooths a signal with coefficient `1 - c` and takes the attack branch when the
input falls below its previous output; feeding it the negated level `-v` gives exactly JUCE's branch choice. The
gain computer is written in the log domain (`relu` of the level above threshold), so it is continuous with a
kink at the threshold: gradients are finite everywhere and zero for parameters that do not act (threshold and
ratio while the envelope stays below threshold). Differences from pedalboard: float64/float32 torch arithmetic
instead of JUCE's float32 (about 120 dB SNR in float64); the branch choice itself is not differentiated (as in
any hard attack/release switch).
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torchcomp.core import compressor_core

from fxmatch.effects.spec import EffectSpec, ParamSpec, as_batch_param

SPEC = EffectSpec(
    name="Compressor",
    params=(
        ParamSpec("threshold_db", "dB", -40.0, -5.0, "linear", -20.0, "level above which the gain is reduced"),
        ParamSpec("ratio", "", 1.5, 20.0, "log", 4.0, "input/output slope above threshold (in dB)"),
        ParamSpec("attack_ms", "ms", 0.5, 50.0, "log", 5.0, "envelope time constant while the level rises"),
        ParamSpec("release_ms", "ms", 20.0, 500.0, "log", 100.0, "envelope time constant while the level falls"),
    ),
    description="feed-forward peak compressor with a hard knee (juce::dsp::Compressor)",
)

_MIN_TIME_MS = 1.0e-3  # JUCE uses an instantaneous envelope (coefficient 0) below this time
_TINY_LEVEL = 1.0e-30  # floor before the log; far below any threshold in range


def _smoothing_coefficient(time_ms: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """torchcomp coefficient `1 - exp(-2 pi 1000 / (sample_rate * time_ms))` for times `[batch]` in ms."""
    exponent = -2.0 * math.pi * 1000.0 / float(sample_rate) / time_ms.clamp_min(_MIN_TIME_MS)
    coefficient = -torch.expm1(exponent)
    return torch.where(time_ms < _MIN_TIME_MS, torch.ones_like(coefficient), coefficient)


def envelope(x: torch.Tensor, attack_ms: torch.Tensor, release_ms: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """JUCE peak ballistics envelope of `x` `[batch, channels, samples]`; times `[batch]` in ms. Same shape."""
    batch, channels, samples = x.shape
    level = x.abs().reshape(batch * channels, samples)
    attack = _smoothing_coefficient(attack_ms, sample_rate).repeat_interleave(channels)
    release = _smoothing_coefficient(release_ms, sample_rate).repeat_interleave(channels)
    initial = torch.zeros(batch * channels, dtype=x.dtype, device=x.device)
    # torchcomp picks the attack coefficient when its input is below its previous output: on -level, that is
    # exactly JUCE's "level above the previous envelope".
    negated = compressor_core(-level.contiguous(), initial, attack.contiguous(), release.contiguous())
    return (-negated).reshape(batch, channels, samples)


def process(x: torch.Tensor, params: Mapping[str, torch.Tensor | float], sample_rate: float) -> torch.Tensor:
    """Compress `x` `[batch, channels, samples]`; params `[batch]` in dB, ratio and ms. Returns the same shape."""
    batch = x.shape[0]
    if x.shape[-1] == 0:
        return x
    threshold_db = as_batch_param(params["threshold_db"], batch, x)
    ratio = as_batch_param(params["ratio"], batch, x)
    attack_ms = as_batch_param(params["attack_ms"], batch, x)
    release_ms = as_batch_param(params["release_ms"], batch, x)

    env = envelope(x, attack_ms, release_ms, sample_rate)
    log_threshold = (threshold_db * (math.log(10.0) / 20.0))[:, None, None]
    over = torch.relu(torch.log(env.clamp_min(_TINY_LEVEL)) - log_threshold)
    gain = torch.exp((1.0 / ratio - 1.0)[:, None, None] * over)
    return gain * x
