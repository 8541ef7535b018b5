"""Delay: pedalboard.Delay (a juce::dsp::DelayLine without interpolation, a feedback loop and a linear mix).

What pedalboard does (per call with reset=True, every channel alike, float32):

- integer delay `D = int(delay_seconds * sample_rate)` (truncated; `delay_seconds` is stored as float32);
- per sample: `d = pop()` (the sample pushed `D` steps ago, zeros before the start), `push(x + feedback * d)`,
  `y = (1 - mix) * x + mix * d`. Hence `y[n] = (1 - mix) x[n] + mix * sum_{k>=1} feedback^(k-1) x[n - k D]`;
- `delay_seconds == 0` returns the input unchanged; a delay that truncates to 0 samples reads the oldest slot of
  the line, i.e. acts as a delay of `int(30 * sample_rate) + 2` samples (the line's size).

The twin is exact (float64 instead of float32): the feedback comb `w[n] = x[n] + feedback * w[n - D]`,
`echo[n] = w[n - D]` runs in a custom autograd Function whose forward and adjoint backward are numba loops
(O(samples) per channel, far cheaper than the FFT of size >= 2 * samples an exact frequency-domain version needs);
for tensors on another device (CUDA) that FFT version runs as torch ops there (`_delay_torch`, float64, the same
gradients; `fxmatch.effects.batch.twin_path("torch")` forces it on CPU).
The integer delay has a straight-through gradient: the value uses `D`, the gradient w.r.t. `delay_seconds` is that
of a continuous delay, `d echo / dD = -w'(n - D) + feedback * d w / dD (n - D)`, with `w'` a central difference.
"""

from __future__ import annotations

from collections.abc import Mapping

import numba
import numpy as np
import torch
import torch.nn.functional as F

from fxmatch.effects.batch import WeightedGrid, batch_params, use_torch_path
from fxmatch.effects.delay import SPEC  # noqa: F401 (the twin's spec, beside it)

_MAX_DELAY_SECONDS = 30  # pedalboard's delay line capacity

#: Run the forward pass in pedalboard's float32 arithmetic (bit-exact). The backward pass is always the float64
#: adjoint of the exact-arithmetic recursion (a straight-through gradient for the rounding). Set to False for a
#: forward pass in the input's dtype (e.g. to check gradients against finite differences).
FLOAT32_EMULATION = True


@numba.njit(cache=True)
def _echo(x: np.ndarray, delay: int, feedback: float, out: np.ndarray) -> None:
    """Write the echo of row `x` into `out`: `out[n] = w[n - D]`, `w[n] = x[n] + feedback * out[n]`."""
    out[:] = 0.0
    for i in range(delay, x.shape[0]):
        out[i] = x[i - delay] + feedback * out[i - delay]


@numba.njit(cache=True)
def _delay_forward(x: np.ndarray, delay: np.ndarray, feedback: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """pedalboard's delay on `[rows, samples]` (per-row params; delay 0 = pass through)."""
    rows, n = x.shape
    y = np.empty_like(x)
    echo = np.empty(n)
    for r in range(rows):
        if delay[r] == 0:
            y[r] = x[r]
            continue
        _echo(x[r], delay[r], feedback[r], echo)
        for i in range(n):
            y[r, i] = (1.0 - mix[r]) * x[r, i] + mix[r] * echo[i]
    return y


@numba.njit(cache=True)
def _delay_forward_float32(x: np.ndarray, delay: np.ndarray, feedback: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """`_delay_forward` in pedalboard's float32 arithmetic and operation order (x, feedback, mix float32)."""
    rows, n = x.shape
    y = np.empty_like(x)
    line = np.empty(n, dtype=np.float32)  # line[i] = x[i] + feedback * echo[i], read back `delay` samples later
    for r in range(rows):
        d = delay[r]
        if d == 0:
            y[r] = x[r]
            continue
        fb = feedback[r]
        wet = mix[r]
        dry = np.float32(1.0) - wet
        for i in range(n):
            echo = line[i - d] if i >= d else np.float32(0.0)
            line[i] = x[r, i] + fb * echo
            y[r, i] = x[r, i] * dry + wet * echo
    return y


@numba.njit(cache=True)
def _delay_backward(
    grad_y: np.ndarray, x: np.ndarray, delay: np.ndarray, feedback: np.ndarray, mix: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Adjoint of `_delay_forward`: gradients w.r.t. x `[rows, samples]`, feedback, mix and a continuous delay."""
    rows, n = x.shape
    grad_x = np.empty_like(x)
    grad_fb = np.zeros(rows)
    grad_mix = np.zeros(rows)
    grad_delay = np.zeros(rows)
    echo = np.empty(n)
    w_bar = np.empty(n)
    tangent = np.empty(n)  # d echo / d delay
    for r in range(rows):
        d = delay[r]
        if d == 0:
            grad_x[r] = grad_y[r]
            continue
        fb = feedback[r]
        m = mix[r]
        _echo(x[r], d, fb, echo)
        # adjoint backwards in time: w_bar[i] = echo_bar[i + d], echo_bar[j] = mix * grad_y[j] + fb * w_bar[j]
        acc_fb = 0.0
        acc_mix = 0.0
        for i in range(n - 1, -1, -1):
            wb = 0.0
            if i + d < n:
                wb = m * grad_y[r, i + d] + fb * w_bar[i + d]
            w_bar[i] = wb
            grad_x[r, i] = (1.0 - m) * grad_y[r, i] + wb
            acc_fb += wb * echo[i]
            acc_mix += grad_y[r, i] * (echo[i] - x[r, i])
        # tangent of a continuous delay: v[i] = -w'(i - d) + fb * v[i - d], w = x + fb * echo
        acc_delay = 0.0
        for i in range(n):
            v = 0.0
            if i >= d:
                j = i - d
                prev = x[r, j - 1] + fb * echo[j - 1] if j >= 1 else 0.0
                nxt = x[r, j + 1] + fb * echo[j + 1] if j + 1 < n else x[r, j] + fb * echo[j]
                v = -0.5 * (nxt - prev) + fb * tangent[j]
            tangent[i] = v
            acc_delay += m * grad_y[r, i] * v
        grad_fb[r] = acc_fb
        grad_mix[r] = acc_mix
        grad_delay[r] = acc_delay
    return grad_x, grad_fb, grad_mix, grad_delay


class _DelayFunction(torch.autograd.Function):
    """pedalboard's delay on `[rows, samples]`; gradients w.r.t. x, feedback, mix and the continuous delay."""

    @staticmethod
    def forward(ctx, x, feedback, mix, delay_continuous, delay_int):
        x_np = x.detach().cpu().numpy()
        dtype = np.float32 if FLOAT32_EMULATION else x_np.dtype
        kernel = _delay_forward_float32 if FLOAT32_EMULATION else _delay_forward
        args = (delay_int.cpu().numpy().astype(np.int64), _np(feedback, dtype), _np(mix, dtype))
        y = torch.from_numpy(kernel(np.ascontiguousarray(x_np, dtype=dtype), *args)).to(x.device, x.dtype)
        ctx.save_for_backward(x, feedback, mix, delay_int)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, feedback, mix, delay_int = ctx.saved_tensors
        x_np = x.detach().cpu().numpy()
        grads = _delay_backward(
            _np(grad_y, x_np.dtype),
            x_np,
            delay_int.cpu().numpy().astype(np.int64),
            _np(feedback, x_np.dtype),
            _np(mix, x_np.dtype),
        )
        gx, gfb, gmix, gdelay = (torch.from_numpy(g).to(device=x.device, dtype=x.dtype) for g in grads)
        return gx, gfb, gmix, gdelay, None


def _delay_torch(x: torch.Tensor, feedback: torch.Tensor, mix: torch.Tensor, delay_continuous: torch.Tensor,
                 delay_int: torch.Tensor) -> torch.Tensor:
    """`_DelayFunction` with torch ops on `x`'s device (float64): rows `x` `[rows, samples]`, params `[rows]`.

    The echo `z^-D / (1 - feedback z^-D) X` on an exponentially weighted FFT grid (`WeightedGrid`); the continuous delay's straight-through gradient is the numba adjoint's tangent
    `v = -(z^-D / (1 - feedback z^-D)) w'` (`w = x + feedback * echo`, `w'` its central difference), added as
    `(delay - delay.detach()) * v`; the other gradients come from autograd.
    """
    n = x.shape[-1]
    if n == 0:
        return x.clone()
    xd, fb, m = x.to(torch.float64), feedback.to(torch.float64)[:, None], mix.to(torch.float64)[:, None]
    grid = WeightedGrid.for_samples(n, x.device)
    delayed = grid.delay(delay_int)  # [rows, bins]
    comb = delayed / (1.0 - fb * delayed)
    echo = grid.filter(xd, comb)
    with torch.no_grad():
        w = xd + fb * echo
        ahead = torch.cat([w[:, 1:], w[:, -1:]], dim=1)
        behind = F.pad(w[:, :-1], (1, 0))
        tangent = -grid.filter(0.5 * (ahead - behind), comb)
    nudge = (delay_continuous - delay_continuous.detach()).to(torch.float64)[:, None]  # 0, with the delay's gradient
    y = (1.0 - m) * xd + m * (echo + nudge * tangent)
    passing = (delay_int == 0).to(x.device)[:, None]
    return torch.where(passing, xd, y).to(x.dtype)


def _np(t: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """Detached, contiguous CPU numpy copy of `t` in `dtype`."""
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=dtype)


def integer_delay(delay_seconds: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """pedalboard's delay in whole samples `[batch]` (int64) for `delay_seconds` `[batch]` (> 0)."""
    seconds_f32 = delay_seconds.detach().to(torch.float32).to(torch.float64)
    delay = torch.floor(seconds_f32 * float(sample_rate)).to(torch.int64)
    line_size = max(4, int(_MAX_DELAY_SECONDS * float(sample_rate)) + 2)
    return torch.where(delay <= 0, torch.full_like(delay, line_size), delay)


def process(x: torch.Tensor, params: Mapping[str, torch.Tensor | float], sample_rate: float) -> torch.Tensor:
    """Delay `x` `[batch, channels, samples]`; params `[batch]`: delay_seconds (s), feedback, mix. Same shape out."""
    batch, channels, n = x.shape
    delay_seconds, feedback, mix = batch_params(params, ("delay_seconds", "feedback", "mix"), x)

    delay = integer_delay(delay_seconds, sample_rate)
    delay = torch.where(delay_seconds.detach() == 0, torch.zeros_like(delay), delay)  # 0: pass through
    rows = lambda t: t[:, None].expand(batch, channels).reshape(-1)
    delay_fn = _delay_torch if use_torch_path(x) else _DelayFunction.apply
    y = delay_fn(
        x.reshape(batch * channels, n).contiguous(),
        rows(feedback),
        rows(mix),
        rows(delay_seconds * float(sample_rate)),
        rows(delay),
    )
    return y.reshape(batch, channels, n)
