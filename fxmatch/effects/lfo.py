"""The sine LFO of JUCE's modulated effects (juce::dsp::Oscillator in Chorus and Phaser), shared by their twins.

JUCE's LFO phase is a float32 accumulator that starts at 0, grows by `float32(2 pi / rate) * rate_hz` per step and
is wrapped to [0, 2 pi); its value is `sin(phase - pi)`. Over seconds the accumulator drifts from the ideal phase
`2 pi rate_hz n / rate` (~1e-2 rad), which is audible, so the twins use the exact accumulator in the forward value
and the ideal phase's gradient (straight-through): `phase`.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch


@numba.njit(cache=True)
def float32_phase(rate_hz: np.ndarray, step_rate: float, steps: int) -> np.ndarray:
    """JUCE's float32 phase accumulator at `step_rate` steps a second: `[batch]` rates -> `[batch, steps]` phases in
    [0, 2 pi) (float64 array of float32 values)."""
    two_pi = np.float32(2.0 * math.pi)
    base = np.float32(two_pi / np.float32(step_rate))
    out = np.empty((rate_hz.shape[0], steps), dtype=np.float64)
    for b in range(rate_hz.shape[0]):
        inc = np.float32(base * np.float32(rate_hz[b]))
        phase = np.float32(0.0)
        for k in range(steps):
            out[b, k] = phase
            phase = np.float32(phase + inc)
            while phase >= two_pi:
                phase = np.float32(phase - two_pi)
    return out


def phase(rate_hz: torch.Tensor, steps: int, step_rate: float, wrap: bool = False) -> torch.Tensor:
    """LFO phase `[batch, steps]` in rad (float64) from `[batch]` rates (Hz), `step_rate` steps a second: the value
    of `float32_phase`, the gradient of the ideal `2 pi rate_hz k / step_rate`.

    With `wrap`, the straight-through offset is wrapped to [-pi, pi], so the value is the ideal phase plus the
    accumulator's drift (near the ideal, unwrapped); else it is the accumulator's own value in [0, 2 pi)."""
    k = torch.arange(steps, device=rate_hz.device, dtype=torch.float64)
    ideal = (2.0 * math.pi / step_rate) * rate_hz.to(torch.float64)[:, None] * k
    exact = float32_phase(rate_hz.detach().to("cpu", torch.float64).numpy(), float(step_rate), steps)
    offset = torch.from_numpy(exact).to(rate_hz.device) - ideal.detach()
    if wrap:
        offset = offset - 2.0 * math.pi * torch.round(offset / (2.0 * math.pi))
    return ideal + offset
