"""Reverb: pedalboard.Reverb (juce::Reverb, a Freeverb: 8 damped feedback combs in parallel, 4 allpasses in series).

What pedalboard/JUCE does (per call with reset=True, float32; `width=1`, `freeze_mode=0`, pedalboard's defaults):

- comb delays `(int(sample_rate) * t) // 44100` for `t` in 1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617
  (right channel: `t + 23`), allpass delays likewise from 556, 441, 341, 225 (right: `t + 23`);
- input `u = 0.015 * x` (mono) or `u = 0.015 * (left + right)` (stereo: one shared input);
- each comb (delay M): `o[n] = t[n - M]`, `l[n] = (1 - d) o[n] + d l[n - 1]`, `t[n] = u[n] + f l[n]`, output `o`,
  with damping `d = 0.4 * damping` and feedback `f = 0.7 + 0.28 * room_size` (the one-pole lowpass sits in the
  feedback path and is updated before the write);
- the comb sum goes through 4 allpasses `t[n] = s[n] + 0.5 t[n - M]`, `out[n] = t[n - M] - s[n]`;
- output per channel `2 * dry_level * x + 3 * wet_level * wet` (JUCE's wet/dry scale factors, width 1: no
  cross-feed between the channels). Other channel counts pass through unchanged (JUCE's processor does nothing).
- The parameter smoothers (10 ms) are reset to their targets when pedalboard prepares the plugin, so a fresh call
  has no start ramp (checked on impulses: the first sample already has the full dry gain).

The twin runs the same recursions in float64 in a custom autograd Function whose forward and adjoint backward are
numba loops (gradients w.r.t. the input, room_size, damping, wet_level and dry_level). An FFT version would need
every comb's transfer function on a grid of >= 2x the signal length per batch item: more work than the recursion
itself. Differences from pedalboard: float64 instead of float32 and no JUCE_UNDENORMALISE quantisation (which
rounds the comb states to multiples of ~7e-9), i.e. round-off only. For tensors on another device (CUDA) the same
float64 maths runs as torch ops there (`_reverb_torch`, an exponentially weighted FFT of the closed-form transfer
function; `fxmatch.effects.batch.twin_path("torch")` forces it on CPU).
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Mapping

import numba
import numpy as np
import torch

from fxmatch.effects.batch import WeightedGrid, batch_params, recomputed, use_torch_path
from fxmatch.effects.reverb import SPEC  # noqa: F401 (the twin's spec, beside it)

_COMB_TUNINGS = (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617)  # samples at 44.1 kHz
_ALLPASS_TUNINGS = (556, 441, 341, 225)
_STEREO_SPREAD = 23
_INPUT_GAIN = 0.015
_WET_SCALE = 3.0
_DRY_SCALE = 2.0
_ROOM_SCALE, _ROOM_OFFSET, _DAMP_SCALE = 0.28, 0.7, 0.4
_ALLPASS_FEEDBACK = 0.5

#: Run the forward pass in JUCE's float32 arithmetic and operation order (bit-exact with pedalboard on x86). The
#: backward pass is always the float64 adjoint of the exact-arithmetic recursion (a straight-through gradient for
#: the rounding). Set to False for a float64 forward (e.g. to check gradients against finite differences).
FLOAT32_EMULATION = True
#: JUCE_UNDENORMALISE is active on Intel builds only (elsewhere it is an empty macro).
_JUCE_UNDENORMALISES = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def delay_lengths(sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Comb `[2, 8]` and allpass `[2, 4]` delays in samples for the left/right channel, as JUCE computes them."""
    sr = int(sample_rate)
    combs = [[(sr * (t + side * _STEREO_SPREAD)) // 44100 for t in _COMB_TUNINGS] for side in (0, 1)]
    allpasses = [[(sr * (t + side * _STEREO_SPREAD)) // 44100 for t in _ALLPASS_TUNINGS] for side in (0, 1)]
    return np.asarray(combs, dtype=np.int64), np.asarray(allpasses, dtype=np.int64)


@numba.njit(cache=True)
def _input(x: np.ndarray, b: int, gain: float, u: np.ndarray) -> None:
    """The combs' one input for batch item `b` into `u` `[samples]`: `gain * (left + right)`, or `gain * x` for one
    side, in `u`'s dtype (float32 for the float32 emulation, float64 otherwise)."""
    for i in range(x.shape[2]):
        u[i] = x[b, 0, i]
        for s in range(1, x.shape[1]):
            u[i] += x[b, s, i]
        u[i] *= gain


@numba.njit(cache=True)
def _reverb_forward(
    x: np.ndarray, gains: np.ndarray, comb_delays: np.ndarray, allpass_delays: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Freeverb on `x` `[batch, sides, samples]` (sides 1 or 2; `gains` `[4, batch]`: JUCE's comb feedback, lowpass
    coefficient, wet and dry gains, as `_gains` makes them).

    Returns the output `[batch, sides, samples]`, the wet signal `[batch, sides, samples]` and the comb lowpass
    states `l` `[batch, sides, combs, samples]` (kept for the adjoint).
    """
    batch, sides, n = x.shape
    n_combs = comb_delays.shape[1]
    y = np.empty_like(x)
    wet_out = np.empty_like(x)
    states = np.empty((batch, sides, n_combs, n), dtype=x.dtype)
    u = np.empty(n)
    acc = np.empty(n)
    buf = np.empty(n)
    for b in range(batch):
        f, d, wet, dry = gains[0, b], gains[1, b], gains[2, b], gains[3, b]
        _input(x, b, _INPUT_GAIN, u)
        for s in range(sides):
            acc[:] = 0.0
            for c in range(n_combs):
                m = comb_delays[s, c]
                state = states[b, s, c]
                last = 0.0
                for i in range(min(m, n)):  # nothing has come out of the delay line yet
                    last = d * last
                    buf[i] = u[i] + f * last
                    state[i] = last
                for i in range(m, n):
                    o = buf[i - m]
                    last = (1.0 - d) * o + d * last
                    buf[i] = u[i] + f * last
                    acc[i] += o
                    state[i] = last
            for a in range(allpass_delays.shape[1]):
                m = allpass_delays[s, a]
                for i in range(n):
                    delayed = buf[i - m] if i >= m else 0.0
                    inp = acc[i]
                    buf[i] = inp + _ALLPASS_FEEDBACK * delayed
                    acc[i] = delayed - inp
            for i in range(n):
                wet_out[b, s, i] = acc[i]
                y[b, s, i] = dry * x[b, s, i] + wet * acc[i]
    return y, wet_out, states


@numba.njit(cache=True)
def _reverb_forward_float32(
    x: np.ndarray, gains: np.ndarray, comb_delays: np.ndarray, allpass_delays: np.ndarray, undenormalise: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_reverb_forward` in JUCE's float32 arithmetic and operation order (all arrays float32).

    With `undenormalise`, comb and allpass states get JUCE_UNDENORMALISE (`v = (v + 0.1f) - 0.1f`, x86 builds).
    """
    batch, sides, n = x.shape
    n_combs = comb_delays.shape[1]
    tiny = np.float32(0.1)
    one = np.float32(1.0)
    half = np.float32(_ALLPASS_FEEDBACK)
    gain = np.float32(_INPUT_GAIN)
    y = np.empty_like(x)
    wet_out = np.empty_like(x)
    states = np.empty((batch, sides, n_combs, n), dtype=np.float32)
    u = np.empty(n, dtype=np.float32)
    acc = np.empty(n, dtype=np.float32)
    buf = np.empty(n, dtype=np.float32)
    rings = np.empty((n_combs, max(1, comb_delays.max())), dtype=np.float32)
    lasts = np.empty(n_combs, dtype=np.float32)
    heads = np.empty(n_combs, dtype=np.int64)
    for b in range(batch):
        f, d, wet, dry = gains[0, b], gains[1, b], gains[2, b], gains[3, b]
        one_minus_d = one - d
        _input(x, b, gain, u)
        for s in range(sides):
            # the combs side by side, sample by sample: the same float32 operations in the same order (each comb's
            # recursion, and acc summing comb 0 to 7), but 8 independent recursions in flight instead of one, each
            # through a circular delay line of its own length
            rings[:] = 0.0
            lasts[:] = 0.0
            heads[:] = 0
            for i in range(n):
                ui = u[i]
                total = np.float32(0.0)
                for c in range(n_combs):
                    h = heads[c]
                    o = rings[c, h]
                    last = o * one_minus_d + lasts[c] * d
                    if undenormalise:
                        last = (last + tiny) - tiny
                    t = ui + last * f
                    if undenormalise:
                        t = (t + tiny) - tiny
                    rings[c, h] = t
                    h += 1
                    heads[c] = 0 if h == comb_delays[s, c] else h
                    lasts[c] = last
                    total += o
                    states[b, s, c, i] = last
                acc[i] = total
            for a in range(allpass_delays.shape[1]):
                m = allpass_delays[s, a]
                for i in range(n):
                    delayed = buf[i - m] if i >= m else np.float32(0.0)
                    inp = acc[i]
                    t = inp + delayed * half
                    if undenormalise:
                        t = (t + tiny) - tiny
                    buf[i] = t
                    acc[i] = delayed - inp
            for i in range(n):
                wet_out[b, s, i] = acc[i]
                y[b, s, i] = acc[i] * wet + x[b, s, i] * dry
    return y, wet_out, states


@numba.njit(cache=True)
def _reverb_backward(
    grad_y: np.ndarray, x: np.ndarray, wet_out: np.ndarray, states: np.ndarray, gains: np.ndarray,
    comb_delays: np.ndarray, allpass_delays: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Adjoint of `_reverb_forward`: gradients w.r.t. x `[batch, sides, samples]` and the gains `[4, batch]`."""
    batch, sides, n = x.shape
    n_combs = comb_delays.shape[1]
    grad_x = np.empty_like(x)
    grad_gains = np.zeros((4, batch))
    u = np.empty(n)
    u_bar = np.empty(n)
    g_out = np.empty(n)
    g_in = np.empty(n)
    buf = np.empty(n)
    for b in range(batch):
        f, d, wet, dry = gains[0, b], gains[1, b], gains[2, b], gains[3, b]
        _input(x, b, _INPUT_GAIN, u)
        u_bar[:] = 0.0
        acc_fb, acc_damp, acc_wet, acc_dry = 0.0, 0.0, 0.0, 0.0
        for s in range(sides):
            for i in range(n):
                g = grad_y[b, s, i]
                acc_dry += g * x[b, s, i]
                acc_wet += g * wet_out[b, s, i]
                g_out[i] = wet * g
            # allpasses in reverse order: t_bar[i] = 0.5 t_bar[i + m] + out_bar[i + m], in_bar[i] = t_bar[i] - out_bar[i]
            for a in range(allpass_delays.shape[1] - 1, -1, -1):
                m = allpass_delays[s, a]
                for i in range(n - 1, -1, -1):
                    t_bar = 0.0
                    if i + m < n:
                        t_bar = _ALLPASS_FEEDBACK * buf[i + m] + g_out[i + m]
                    buf[i] = t_bar
                    g_in[i] = t_bar - g_out[i]
                g_out[:] = g_in
            # combs: t_bar[i] = o_bar[i + m], l_bar[i] = f t_bar[i] + d l_bar[i + 1], o_bar[i] = s_bar[i] + (1-d) l_bar[i]
            for c in range(n_combs):
                m = comb_delays[s, c]
                l_bar = 0.0
                for i in range(n - 1, -1, -1):
                    t_bar = buf[i + m] if i + m < n else 0.0
                    l_bar = f * t_bar + d * l_bar
                    buf[i] = g_out[i] + (1.0 - d) * l_bar
                    u_bar[i] += t_bar
                    last = states[b, s, c, i]
                    acc_fb += t_bar * last
                    o = u[i - m] + f * states[b, s, c, i - m] if i >= m else 0.0
                    last_prev = states[b, s, c, i - 1] if i >= 1 else 0.0
                    acc_damp += l_bar * (last_prev - o)
        for s in range(sides):
            for i in range(n):
                grad_x[b, s, i] = dry * grad_y[b, s, i] + _INPUT_GAIN * u_bar[i]
        grad_gains[0, b], grad_gains[1, b], grad_gains[2, b], grad_gains[3, b] = acc_fb, acc_damp, acc_wet, acc_dry
    return grad_x, grad_gains


class _ReverbFunction(torch.autograd.Function):
    """Freeverb on `[batch, sides, samples]` from the raw params `[batch]` (room_size, damping, wet/dry levels)."""

    @staticmethod
    def forward(ctx, x, room_size, damping, wet_level, dry_level, comb_delays, allpass_delays):
        raw = [_np(p) for p in (room_size, damping, wet_level, dry_level)]
        if FLOAT32_EMULATION:
            f32 = np.float32
            room, damp, wet, dry = (r.astype(f32) for r in raw)
            gains = np.stack([room * f32(_ROOM_SCALE) + f32(_ROOM_OFFSET), damp * f32(_DAMP_SCALE),
                              wet * f32(_WET_SCALE), dry * f32(_DRY_SCALE)])
            y, wet_out, states = _reverb_forward_float32(np.ascontiguousarray(x.detach().cpu().numpy(), dtype=f32),
                                                         gains, comb_delays, allpass_delays, _JUCE_UNDENORMALISES)
        else:
            y, wet_out, states = _reverb_forward(x.detach().cpu().numpy(), np.stack(_gains(*raw)), comb_delays,
                                                 allpass_delays)
        ctx.save_for_backward(x, room_size, damping, wet_level, dry_level)
        ctx.arrays = (wet_out, states, comb_delays, allpass_delays)
        return torch.from_numpy(y).to(device=x.device, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad_y):
        x, *params = ctx.saved_tensors
        wet_out, states, comb_delays, allpass_delays = ctx.arrays
        x_np = x.detach().cpu().numpy()
        g_y = np.ascontiguousarray(grad_y.detach().cpu().numpy(), dtype=x_np.dtype)
        gains = np.stack(_gains(*[_np(p) for p in params]))
        g_x, g_gains = _reverb_backward(g_y, x_np, wet_out, states, gains, comb_delays, allpass_delays)
        scaled = g_gains * np.array([_ROOM_SCALE, _DAMP_SCALE, _WET_SCALE, _DRY_SCALE])[:, None]
        as_t = lambda a: torch.from_numpy(np.asarray(a)).to(device=x.device, dtype=x.dtype)
        return (as_t(g_x), *(as_t(g) for g in scaled), None, None)


def _gains(
    room_size: np.ndarray, damping: np.ndarray, wet_level: np.ndarray, dry_level: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """JUCE's internal comb feedback, lowpass coefficient, wet and dry gains (float64) from the raw params."""
    return (
        _ROOM_OFFSET + _ROOM_SCALE * room_size,
        _DAMP_SCALE * damping,
        _WET_SCALE * wet_level,
        _DRY_SCALE * dry_level,
    )


def _np(t: torch.Tensor) -> np.ndarray:
    """Detached, contiguous float64 CPU numpy copy of `t`."""
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float64)


_RESPONSE_CHUNK = 1 << 14  # rfft bins of the reverb's response the backward pass rebuilds at once


def _freeverb_response(grid: WeightedGrid, comb_delays: np.ndarray, allpass_delays: np.ndarray,
                       feedback: torch.Tensor, damp: torch.Tensor, span: slice) -> torch.Tensor:
    """One side's wet transfer function on `grid`'s bins `span`: combs summed, then allpasses; params `[batch, 1]`."""
    lowpass = 1.0 - damp * grid.delay(1, span)  # [batch, bins]
    response = torch.zeros_like(lowpass)
    for m in comb_delays:
        delayed = grid.delay(int(m), span)
        response = response + delayed * lowpass / (lowpass - feedback * (1.0 - damp) * delayed)
    g = _ALLPASS_FEEDBACK
    for m in allpass_delays:
        delayed = grid.delay(int(m), span)
        response = response * ((1.0 + g) * delayed - 1.0) / (1.0 - g * delayed)
    return response


def _reverb_torch(x: torch.Tensor, room_size: torch.Tensor, damping: torch.Tensor, wet_level: torch.Tensor,
                  dry_level: torch.Tensor, comb_delays: np.ndarray, allpass_delays: np.ndarray) -> torch.Tensor:
    """`_reverb_forward` (float64) with torch ops on `x`'s device: `x` `[batch, sides, samples]`, params `[batch]`.

    The reverb is linear and time-invariant per batch item, so its zero-state output is a product of closed-form
    transfer functions on an FFT grid: each comb `z^-M (1 - d z^-1) / (1 - d z^-1 - f (1 - d) z^-M)` summed, then
    each allpass `((1 + g) z^-M - 1) / (1 - g z^-M)`. The recursions ring for seconds, so the grid is exponentially
    weighted (`fxmatch.effects.batch.WeightedGrid`). Gradients come from autograd.
    """
    _, sides, samples = x.shape
    if samples == 0:
        return x.clone()
    xd = x.to(torch.float64)
    feedback, damp, wet, dry = (p.to(torch.float64)[:, None] for p in _gains(room_size, damping, wet_level, dry_level))
    grid = WeightedGrid.for_samples(samples, x.device)
    out = []
    for s in range(sides):
        # recomputed: autograd would keep a dozen `[batch, bins]` complex intermediates per comb
        response = recomputed(functools.partial(_freeverb_response, grid, comb_delays[s], allpass_delays[s]), -1,
                              grid.bins, _RESPONSE_CHUNK, feedback, damp)
        out.append(dry * xd[:, s] + wet * grid.filter(_INPUT_GAIN * xd.sum(dim=1), response))
    return torch.stack(out, dim=1).to(x.dtype)


def process(x: torch.Tensor, params: Mapping[str, torch.Tensor | float], sample_rate: float) -> torch.Tensor:
    """Reverb `x` `[batch, channels, samples]` (1 or 2 channels); params `[batch]` in [0, 1]. Same shape out."""
    channels = x.shape[1]
    room_size, damping, wet_level, dry_level = batch_params(
        params, ("room_size", "damping", "wet_level", "dry_level"), x)
    if channels not in (1, 2):
        return x
    comb_delays, allpass_delays = delay_lengths(sample_rate)
    reverb = _reverb_torch if use_torch_path(x) else _ReverbFunction.apply
    return reverb(
        x.contiguous(), room_size, damping, wet_level, dry_level, comb_delays[:channels], allpass_delays[:channels]
    )
