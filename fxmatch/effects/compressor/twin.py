"""Compressor: pedalboard.Compressor (juce::dsp::Compressor: peak ballistics envelope and a hard-knee gain computer).

pedalboard reference, per channel, state starting at 0 on every call (reset=True):

- level `v[n] = |x[n]|` (JUCE's BallisticsFilter in its default *peak* mode, no RMS);
- envelope `e[n] = v[n] + c * (e[n-1] - v[n])` with `c = exp(-2 pi 1000 / (sample_rate * time_ms))`, the attack time
  when `v[n] > e[n-1]` (rising) and the release time otherwise;
- gain `g[n] = 1` if `e[n] < threshold` else `(e[n] / threshold) ** (1 / ratio - 1)` with
  `threshold = 10 ** (threshold_db / 20)`; output `y[n] = g[n] * x[n]` (no make-up gain, no look-ahead, no knee).

The twin runs the same recursion and gain computer in one fused `torch.autograd.Function` whose forward and backward
(the adjoint recursion of the envelope, accumulated backwards in time) are numba-jitted loops over rows of
`batch * channels` for CPU tensors; for tensors on another device (CUDA) the same maths runs as torch ops there
(`_compress_torch`: the envelope by a parallel scan, its attack/release choice as a fixed point, gradients by
autograd; `fxmatch.effects.batch.twin_path("torch")` forces it on CPU). The gain computer is written in the log domain,
`gain = exp((1 / ratio - 1) * (log e - log threshold))` above threshold and 1 below, so it is continuous with a kink
at the threshold: gradients are finite everywhere and zero for threshold and ratio while the envelope stays below
threshold. The attack/release branch choice is kept from the forward pass and not differentiated (it is a
comparison). Differences from pedalboard: float64 (tests) or float32 arithmetic with `exp`/`log` instead of JUCE's
float32 `pow`; about 110-130 dB SNR in float64.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numba
import numpy as np
import torch
import torch.nn.functional as F

from fxmatch.effects.batch import batch_params, linear_recurrence, use_torch_path
from fxmatch.effects.compressor import SPEC  # noqa: F401 (the twin's spec, beside it)

_MIN_TIME_MS = 1.0e-3  # JUCE uses an instantaneous envelope (coefficient 0) below this time


@numba.njit(cache=True, parallel=True)
def _forward_kernel(x, attack, release, log_threshold, slope):  # pragma: no cover - numba
    """Per row: output `g(e) * x`, envelope `e`, gain `g`, rising mask; `x` `[rows, samples]`, the rest `[rows]`."""
    rows, samples = x.shape
    y = np.empty_like(x)
    env = np.empty_like(x)
    gain = np.empty_like(x)
    rising = np.zeros(x.shape, dtype=np.bool_)
    for r in numba.prange(rows):
        threshold = np.exp(log_threshold[r])
        e = x.dtype.type(0.0)
        for n in range(samples):
            v = abs(x[r, n])
            if v > e:
                c = attack[r]
                rising[r, n] = True
            else:
                c = release[r]
            e = v + c * (e - v)
            env[r, n] = e
            g = 1.0 if e < threshold else np.exp(slope[r] * (np.log(e) - log_threshold[r]))
            gain[r, n] = g
            y[r, n] = g * x[r, n]
    return y, env, gain, rising


@numba.njit(cache=True, parallel=True)
def _backward_kernel(grad_y, x, env, gain, rising, attack, release, log_threshold, slope):  # pragma: no cover - numba
    """Adjoint of `_forward_kernel`: gradients for `x` `[rows, samples]` and attack, release, log threshold, slope."""
    rows, samples = x.shape
    grad_x = np.empty_like(x)
    grad_attack = np.zeros(rows, dtype=x.dtype)
    grad_release = np.zeros(rows, dtype=x.dtype)
    grad_log_threshold = np.zeros(rows, dtype=x.dtype)
    grad_slope = np.zeros(rows, dtype=x.dtype)
    for r in numba.prange(rows):
        threshold = np.exp(log_threshold[r])
        adjoint = 0.0  # dL/de[n], accumulated backwards through e[n+1] = ... + c[n+1] e[n]
        next_c = 0.0
        g_attack = 0.0
        g_release = 0.0
        g_log_threshold = 0.0
        g_slope = 0.0
        for n in range(samples - 1, -1, -1):
            e = env[r, n]
            xn = x[r, n]
            gy = grad_y[r, n]
            adjoint = adjoint * next_c
            if e < threshold:
                grad_x[r, n] = gy
            else:
                g = gain[r, n]
                grad_x[r, n] = gy * g
                d_gain = gy * xn * g
                d_over = d_gain * slope[r]
                g_slope += d_gain * (np.log(e) - log_threshold[r])
                g_log_threshold -= d_over
                adjoint += d_over / e
            c = attack[r] if rising[r, n] else release[r]
            v = abs(xn)
            previous = env[r, n - 1] if n > 0 else 0.0
            d_c = adjoint * (previous - v)
            if rising[r, n]:
                g_attack += d_c
            else:
                g_release += d_c
            d_v = adjoint * (1.0 - c)
            if xn > 0:
                grad_x[r, n] += d_v
            elif xn < 0:
                grad_x[r, n] -= d_v
            next_c = c
        grad_attack[r] = g_attack
        grad_release[r] = g_release
        grad_log_threshold[r] = g_log_threshold
        grad_slope[r] = g_slope
    return grad_x, grad_attack, grad_release, grad_log_threshold, grad_slope


def _numpy(t: torch.Tensor) -> np.ndarray:
    """A detached, contiguous CPU numpy view (or copy) of `t`."""
    return t.detach().cpu().contiguous().numpy()


class _CompressorFunction(torch.autograd.Function):
    """Fused JUCE compressor on rows `x` `[rows, samples]`, per-row coefficients `[rows]`; numba forward/adjoint."""

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,
        attack: torch.Tensor,
        release: torch.Tensor,
        log_threshold: torch.Tensor,
        slope: torch.Tensor,
    ) -> torch.Tensor:
        arrays = [_numpy(t.to(x.dtype)) for t in (x, attack, release, log_threshold, slope)]
        y, env, gain, rising = _forward_kernel(*arrays)
        ctx.save_for_backward(x, attack, release, log_threshold, slope)
        ctx.env, ctx.gain, ctx.rising = env, gain, rising
        return torch.from_numpy(y).to(x.device)

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x, attack, release, log_threshold, slope = ctx.saved_tensors
        arrays = [_numpy(t.to(x.dtype)) for t in (x, attack, release, log_threshold, slope)]
        grads = _backward_kernel(_numpy(grad_y.to(x.dtype)), arrays[0], ctx.env, ctx.gain, ctx.rising, *arrays[1:])
        return tuple(torch.from_numpy(g).to(device=x.device, dtype=x.dtype) for g in grads)


def envelope_coefficient(time_ms: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """JUCE ballistics coefficient `exp(-2 pi 1000 / (sample_rate * time_ms))` for times `[batch]` in ms."""
    coefficient = torch.exp(-2.0 * math.pi * 1000.0 / float(sample_rate) / time_ms.clamp_min(_MIN_TIME_MS))
    return torch.where(time_ms < _MIN_TIME_MS, torch.zeros_like(coefficient), coefficient)


def process(x: torch.Tensor, params: Mapping[str, torch.Tensor | float], sample_rate: float) -> torch.Tensor:
    """Compress `x` `[batch, channels, samples]`; params `[batch]` in dB, ratio and ms. Returns the same shape."""
    batch, channels, samples = x.shape
    if samples == 0:
        return x
    threshold_db, ratio, attack_ms, release_ms = batch_params(
        params, ("threshold_db", "ratio", "attack_ms", "release_ms"), x)

    per_row = [
        envelope_coefficient(attack_ms, sample_rate),
        envelope_coefficient(release_ms, sample_rate),
        threshold_db * (math.log(10.0) / 20.0),
        1.0 / ratio - 1.0,
    ]
    per_row = [t.repeat_interleave(channels) for t in per_row]
    compress = _compress_torch if use_torch_path(x) else _CompressorFunction.apply
    y = compress(x.reshape(batch * channels, samples), *per_row)
    return y.reshape(batch, channels, samples)


def _envelope(level: torch.Tensor, attack: torch.Tensor, release: torch.Tensor) -> torch.Tensor:
    """JUCE's peak ballistics on rows `level` `[rows, samples]` with torch ops (coefficients `[rows]`).

    The attack/release choice depends on the envelope itself; it is found as a fixed point: guess the rising
    samples, solve the then linear recursion with a parallel scan, re-read the rising samples from the result, until
    they agree. Each round settles at least the first sample still wrong (the recursion is causal), so the loop ends;
    on audio it takes 5 to 10 rounds. The choice is not differentiated (as in the numba adjoint).
    """
    attack, release = attack[:, None], release[:, None]
    with torch.no_grad():
        rising = torch.ones_like(level, dtype=torch.bool)
        for _ in range(level.shape[-1] + 1):
            c = torch.where(rising, attack, release)
            env = linear_recurrence(c, (1.0 - c) * level)
            now = level > F.pad(env[:, :-1], (1, 0))
            if torch.equal(now, rising):
                break
            rising = now
    c = torch.where(rising, attack, release)
    return linear_recurrence(c, (1.0 - c) * level)


def _compress_torch(x: torch.Tensor, attack: torch.Tensor, release: torch.Tensor, log_threshold: torch.Tensor,
                    slope: torch.Tensor) -> torch.Tensor:
    """`_CompressorFunction` with torch ops on `x`'s device (rows `[rows, samples]`, coefficients `[rows]`)."""
    env = _envelope(x.abs(), attack, release)
    log_threshold, slope = log_threshold[:, None], slope[:, None]
    over = env >= torch.exp(log_threshold)
    log_env = torch.log(torch.where(over, env, torch.ones_like(env)))
    gain = torch.where(over, torch.exp(slope * (log_env - log_threshold)), torch.ones_like(env))
    return gain * x
