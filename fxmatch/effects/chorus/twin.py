"""Chorus: pedalboard.Chorus (juce::dsp::Chorus, float32), a sine-modulated fractional delay with feedback.

What pedalboard/JUCE does (per call with reset=True; all parameter smoothers are reset to their targets, so there
are no start-up ramps):

- LFO: a phase accumulator starting at 0, advanced by `2*pi*rate_hz/sample_rate` per sample and wrapped to
  [0, 2*pi), all in float32; `lfo[n] = sin(phase[n] - pi)`, one LFO shared by all channels (`fxmatch.effects.lfo`).
- delay in ms: `max(1, 20 * (0.5 * depth) * lfo[n] + centre_delay_ms)` (centre delay clipped to [1, 100] ms),
  converted to samples `d[n] = ms * sample_rate / 1000`.
- per channel: `w[n] = x[n] - feedback * y[n-1]`; `w[n]` is pushed into a delay line (zeros before the start) and
  `y[n] = (1 - f) * w[n - D] + f * w[n - D - 1]` with `D = floor(d[n])`, `f = d[n] - D` (linear interpolation).
- output: `mix * y + (1 - mix) * x` (JUCE DryWetMixer, linear rule).

The twin reproduces this exactly (up to float32 vs float64 rounding). The LFO phase is the exact float32
accumulator (its drift from the ideal phase reaches ~1e-2 rad over a few seconds, i.e. a few samples of delay) with
a straight-through gradient from the ideal phase `2*pi*rate_hz*n/sample_rate`. The feedback recursion through the
time-varying delay runs in a custom autograd Function whose forward and adjoint backward are numba loops; it gives
gradients w.r.t. the input, the per-sample delay (through the interpolation slope, hence rate/depth/centre delay)
and the feedback gain. For tensors on another device (CUDA) the recursion runs as torch ops there
(`_feedback_delay_torch`, blocks of the shortest delay; only the float32 LFO phase table is computed by numba on the
CPU from the `[batch]` rates); `fxmatch.effects.batch.twin_path("torch")` forces it on CPU. Where the delay is
clipped (1 ms floor) the gradient w.r.t. rate/depth/centre delay is zero, as the true function is flat there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numba
import numpy as np
import torch
import torch.nn.functional as F

from fxmatch.effects.batch import batch_params, use_torch_path
from fxmatch.effects.chorus import SPEC  # noqa: F401 (the twin's spec, beside it)
from fxmatch.effects.lfo import phase as lfo_phase

_MAX_MODULATION_MS = 20.0  # JUCE maximumDelayModulation
_MIN_DELAY_MS = 1.0
_MAX_CENTRE_DELAY_MS = 100.0
_MAX_DEPTH = 1.0


@numba.njit(cache=True)
def _delay_forward(x: np.ndarray, delay: np.ndarray, feedback: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Feedback delay: x `[B, C, N]`, delay `[B, N]` samples, feedback `[B]` -> (w, y) `[B, C, N]` each."""
    n_batch, n_channels, n_samples = x.shape
    w = np.zeros_like(x)
    y = np.zeros_like(x)
    for b in range(n_batch):
        g = feedback[b]
        for c in range(n_channels):
            last = 0.0
            for n in range(n_samples):
                w[b, c, n] = x[b, c, n] - g * last
                d = delay[b, n]
                di = math.floor(d)
                frac = d - di
                i1 = n - di
                a = w[b, c, i1] if i1 >= 0 else 0.0
                a2 = w[b, c, i1 - 1] if i1 >= 1 else 0.0
                out = a + frac * (a2 - a)
                y[b, c, n] = out
                last = out
    return w, y


@numba.njit(cache=True)
def _delay_backward(
    grad_y: np.ndarray, w: np.ndarray, y: np.ndarray, delay: np.ndarray, feedback: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adjoint of `_delay_forward`: returns (grad_x `[B, C, N]`, grad_delay `[B, N]`, grad_feedback `[B]`)."""
    n_batch, n_channels, n_samples = grad_y.shape
    grad_x = np.zeros_like(grad_y)
    grad_d = np.zeros((n_batch, n_samples), dtype=grad_y.dtype)
    grad_g = np.zeros(n_batch, dtype=grad_y.dtype)
    w_bar = np.zeros(n_samples + 1, dtype=grad_y.dtype)
    for b in range(n_batch):
        g = feedback[b]
        for c in range(n_channels):
            w_bar[:] = 0.0
            acc_g = 0.0
            for n in range(n_samples - 1, -1, -1):
                # y[n] feeds w[n + 1] = x[n + 1] - g * y[n]; w_bar[n + 1] is complete (all readers are later).
                y_bar = grad_y[b, c, n] - g * w_bar[n + 1]
                d = delay[b, n]
                di = math.floor(d)
                frac = d - di
                i1 = n - di
                a = 0.0
                a2 = 0.0
                if i1 >= 0:
                    a = w[b, c, i1]
                    w_bar[i1] += y_bar * (1.0 - frac)
                if i1 >= 1:
                    a2 = w[b, c, i1 - 1]
                    w_bar[i1 - 1] += y_bar * frac
                grad_d[b, n] += y_bar * (a2 - a)
                # w_bar[n] is now complete (readers of w[n] are at times >= n).
                grad_x[b, c, n] = w_bar[n]
                if n >= 1:
                    acc_g -= w_bar[n] * y[b, c, n - 1]
            grad_g[b] += acc_g
    return grad_x, grad_d, grad_g


class _FeedbackDelay(torch.autograd.Function):
    """Time-varying fractional feedback delay (JUCE Chorus core) with a numba forward and adjoint backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, delay: torch.Tensor, feedback: torch.Tensor) -> torch.Tensor:
        xn = x.detach().to("cpu", torch.float64).contiguous().numpy()
        dn = delay.detach().to("cpu", torch.float64).contiguous().numpy()
        gn = feedback.detach().to("cpu", torch.float64).contiguous().numpy()
        w, y = _delay_forward(xn, dn, gn)
        ctx.arrays = (w, y, dn, gn)
        ctx.meta = (x.dtype, x.device, delay.dtype, feedback.dtype)
        return torch.from_numpy(y).to(device=x.device, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):
        w, y, dn, gn = ctx.arrays
        x_dtype, device, d_dtype, g_dtype = ctx.meta
        gy = grad_y.detach().to("cpu", torch.float64).contiguous().numpy()
        grad_x, grad_d, grad_g = _delay_backward(gy, w, y, dn, gn)
        out_x = torch.from_numpy(grad_x).to(device=device, dtype=x_dtype) if ctx.needs_input_grad[0] else None
        out_d = torch.from_numpy(grad_d).to(device=device, dtype=d_dtype) if ctx.needs_input_grad[1] else None
        out_g = torch.from_numpy(grad_g).to(device=device, dtype=g_dtype) if ctx.needs_input_grad[2] else None
        return out_x, out_d, out_g


def _feedback_delay_torch(x: torch.Tensor, delay: torch.Tensor, feedback: torch.Tensor) -> torch.Tensor:
    """`_FeedbackDelay` with torch ops on `x`'s device (float64): x `[B, C, N]`, delay `[B, N]`, feedback `[B]`.

    Every read reaches at least `L` = the shortest whole delay back (>= 1 ms), so a block of `L` samples reads only
    earlier blocks: per block, the interpolated reads from a window of the recent ones, then the block's delay-line
    input `w = x - feedback * y[n - 1]`, N / L steps in all. Gradients come from autograd (through the
    interpolation weight for the delay, as in the numba adjoint).
    """
    batch, channels, n = x.shape
    if n == 0:
        return x.clone()
    whole = torch.floor(delay.detach()).to(torch.int64)
    frac = delay - whole
    size = max(1, int(whole.min()))
    blocks = -(-n // size)
    pad = blocks * size - n
    reach = -(-(int(whole.max()) + 1) // size)  # blocks a read may go back, the current one excluded
    x = F.pad(x.to(torch.float64), (0, pad))
    whole = torch.cat([whole, whole[:, -1:].expand(batch, pad)], dim=1)  # the padding's reads are dropped
    frac = torch.cat([frac, frac[:, -1:].expand(batch, pad)], dim=1).to(torch.float64)
    ahead = torch.arange(blocks * size, device=x.device) + reach * size  # a sample's place in its block's window
    first = ahead[None] - whole  # the window index of w[n - D] in the block's window
    rows_b = torch.arange(batch, device=x.device)[:, None, None]
    rows_c = torch.arange(channels, device=x.device)[None, :, None]
    fb = feedback.to(torch.float64)[:, None, None]
    history = [x.new_zeros(batch, channels, size)] * reach
    last = x.new_zeros(batch, channels, 1)
    outputs = []
    for k in range(blocks):
        window = torch.cat(history[k:k + reach], dim=-1)  # w over the `reach` blocks before block k
        span = slice(k * size, (k + 1) * size)
        index = (first[:, span] - k * size)[:, None, :]
        a, b = window[rows_b, rows_c, index], window[rows_b, rows_c, index - 1]
        y = a + frac[:, None, span] * (b - a)
        history.append(x[..., span] - fb * torch.cat([last, y[..., :-1]], dim=-1))
        last = y[..., -1:]
        outputs.append(y)
    return torch.cat(outputs, dim=-1)[..., :n]


def delay_samples(
    rate_hz: torch.Tensor, depth: torch.Tensor, centre_delay_ms: torch.Tensor, n_samples: int, sample_rate: float
) -> torch.Tensor:
    """Modulated delay `[batch, samples]` in samples (float64) from `[batch]` rate (Hz), depth, centre delay (ms)."""
    lfo = -torch.sin(lfo_phase(rate_hz, n_samples, sample_rate))  # sin(phase - pi)
    centre = centre_delay_ms.to(torch.float64).clamp(_MIN_DELAY_MS, _MAX_CENTRE_DELAY_MS)
    swing_ms = _MAX_MODULATION_MS * 0.5 * depth.to(torch.float64)
    delay_ms = torch.clamp_min(swing_ms[:, None] * lfo + centre[:, None], _MIN_DELAY_MS)
    max_delay = math.ceil((_MAX_MODULATION_MS * _MAX_DEPTH * 0.5 + _MAX_CENTRE_DELAY_MS) * sample_rate / 1000.0)
    return torch.clamp_max(delay_ms * (sample_rate / 1000.0), float(max_delay))


def process(x: torch.Tensor, params: Mapping[str, torch.Tensor | float], sample_rate: float) -> torch.Tensor:
    """Chorus `x` `[batch, channels, samples]` with `[batch]` params in pedalboard units; same shape and dtype out."""
    n_samples = x.shape[-1]
    rate_hz, depth, centre_delay_ms, feedback, mix = batch_params(
        params, ("rate_hz", "depth", "centre_delay_ms", "feedback", "mix"), x)
    mix = mix.clamp(0.0, 1.0)
    delay = delay_samples(rate_hz, depth, centre_delay_ms, n_samples, float(sample_rate))
    x64 = x.to(torch.float64)
    feedback_delay = _feedback_delay_torch if use_torch_path(x) else _FeedbackDelay.apply
    wet = feedback_delay(x64, delay, feedback.to(torch.float64))
    mix64 = mix.to(torch.float64)[:, None, None]
    return (mix64 * wet + (1.0 - mix64) * x64).to(x.dtype)
