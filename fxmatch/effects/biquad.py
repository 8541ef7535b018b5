"""Zero-state biquad filtering shared by the filter twins (PeakFilter, LowpassFilter, HighpassFilter).

JUCE's `dsp::IIR::Filter` runs a transposed-direct-form-II recursion whose state starts at 0 on every pedalboard
call; a first-order section is the same recursion with `b2 = a2 = 0`. Two interchangeable paths, both
differentiable w.r.t. the input and the coefficients `b`, `a` `[batch, 3]` (`a[:, 0] = 1`):

- `filter_recursive` (CPU): the recursion as a numba-jitted `autograd.Function` whose backward is the adjoint
  (a time-reversed all-pole pass, then the FIR taps).
- `filter_spectral` (any device): frequency sampling of `B(z) / A(z)` on an FFT grid long enough for the signal
  plus the impulse response's tail (until it has decayed below -140 dB, from the largest pole radius), i.e. a
  zero-state linear convolution with time aliasing far below -100 dB.

The two agree to about 1e-13 in float64; `filter_biquad` picks the recursion on CPU and the spectral path on any
other device, nothing but the FFT length going back to the host (`fxmatch.effects.batch.twin_path("torch")`
forces the spectral path on CPU).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from scipy.fft import next_fast_len

from fxmatch.effects.batch import use_torch_path

_TAIL_DECAY = 1.0e-7  # impulse-response tail dropped below this magnitude (-140 dB)
_MAX_TAIL = 1 << 22  # cap on the tail length in samples (only reached for pathological, near-unstable filters)


def tail_length(a: torch.Tensor) -> int:
    """Samples until the slowest-decaying impulse response of denominators `a` `[batch, 3]` is below the floor.

    The pole radii come from the quadratic formula with torch ops on `a`'s device; one number comes back to the
    host (the FFT length must be known there).
    """
    a1, a2 = a[:, 1].detach().double(), a[:, 2].detach().double()
    disc = a1 * a1 - 4.0 * a2
    root = torch.sqrt(disc.abs())
    real = torch.maximum((root - a1).abs(), (root + a1).abs()) / 2.0  # two real poles
    radius = float(torch.where(disc >= 0, real, torch.sqrt(a2.abs())).max()) if a.shape[0] else 0.0
    if radius <= 0.0:
        return 16
    if radius >= 1.0:
        return _MAX_TAIL
    # A near-double pole decays like n * r**n: double the single-pole length and add a margin.
    length = 2.0 * math.log(_TAIL_DECAY) / math.log(radius) + 64.0
    return int(min(length, _MAX_TAIL))


class _SpectralFilter(torch.autograd.Function):
    """Zero-state FFT filtering `irfft(rfft(x, n) * response, n)[..., :samples]` with a hand-written adjoint.

    Autograd through `rfft` would run a full-length complex FFT in the backward; the adjoints here need one real
    FFT pair: the input gradient correlates the output gradient with the (time-aliased) impulse response, and the
    response gradient is the cross-spectrum of output gradient and input, weighted as `irfft` folds the bins.
    """

    @staticmethod
    def forward(x: torch.Tensor, response: torch.Tensor, n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
        spectrum = torch.fft.rfft(x, n=n_fft)
        return torch.fft.irfft(spectrum * response[:, None, :], n=n_fft)[..., : x.shape[-1]], spectrum

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: tuple) -> None:
        _, response, n_fft = inputs
        _, spectrum = output
        ctx.mark_non_differentiable(spectrum)
        ctx.save_for_backward(response, spectrum)
        ctx.n_fft = n_fft

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor, _grad_spectrum: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        response, spectrum = ctx.saved_tensors
        n_fft, samples = ctx.n_fft, grad_y.shape[-1]
        grad_x = grad_response = None
        grad_spectrum = torch.fft.rfft(grad_y, n=n_fft)
        if ctx.needs_input_grad[0]:
            grad_x = torch.fft.irfft(grad_spectrum * response.conj()[:, None, :], n=n_fft)[..., :samples]
        if ctx.needs_input_grad[1]:
            cross = (grad_spectrum * spectrum.conj()).sum(dim=1)  # [batch, bins]
            weight = torch.full((cross.shape[-1],), 2.0 / n_fft, dtype=grad_y.dtype, device=grad_y.device)
            weight[0] = 1.0 / n_fft
            if n_fft % 2 == 0:
                weight[-1] = 1.0 / n_fft
            grad_response = cross * weight
            # irfft ignores the imaginary parts of the DC and Nyquist bins
            grad_response[:, 0] = grad_response[:, 0].real.to(grad_response.dtype)
            if n_fft % 2 == 0:
                grad_response[:, -1] = grad_response[:, -1].real.to(grad_response.dtype)
        return grad_x, grad_response, None


def frequency_response(b: torch.Tensor, a: torch.Tensor, n_fft: int) -> torch.Tensor:
    """`B(z) / A(z)` of biquads `b`, `a` `[batch, 3]` on the `n_fft // 2 + 1` rfft bins (closed form). Complex."""
    omega = torch.arange(n_fft // 2 + 1, dtype=b.dtype, device=b.device) * (2.0 * math.pi / n_fft)
    cos1, sin1, cos2, sin2 = torch.cos(omega), torch.sin(omega), torch.cos(2.0 * omega), torch.sin(2.0 * omega)

    def polynomial(c: torch.Tensor) -> torch.Tensor:
        real = c[:, 0:1] + c[:, 1:2] * cos1 + c[:, 2:3] * cos2
        imag = -(c[:, 1:2] * sin1 + c[:, 2:3] * sin2)
        return torch.complex(real, imag)

    return polynomial(b) / polynomial(a)


@numba.njit(cache=True, parallel=True)
def _biquad_forward(x, b, a):  # pragma: no cover - numba
    """Zero-state transposed-direct-form-II biquad per row: `x` `[rows, samples]`, `b`, `a` `[rows, 3]`."""
    rows, samples = x.shape
    y = np.empty_like(x)
    for r in numba.prange(rows):
        b0, b1, b2, a1, a2 = b[r, 0], b[r, 1], b[r, 2], a[r, 1], a[r, 2]
        s1 = x.dtype.type(0.0)
        s2 = x.dtype.type(0.0)
        for n in range(samples):
            xn = x[r, n]
            out = b0 * xn + s1
            s1 = b1 * xn - a1 * out + s2
            s2 = b2 * xn - a2 * out
            y[r, n] = out
    return y


@numba.njit(cache=True, parallel=True)
def _biquad_backward(grad_y, x, y, b, a):  # pragma: no cover - numba
    """Adjoint of `_biquad_forward`: `u = A^-T grad_y` (time-reversed all-pole pass), then `B^T u` and the taps."""
    rows, samples = x.shape
    grad_x = np.empty_like(x)
    grad_b = np.zeros(b.shape, dtype=x.dtype)
    grad_a = np.zeros(a.shape, dtype=x.dtype)
    for r in numba.prange(rows):
        b0, b1, b2, a1, a2 = b[r, 0], b[r, 1], b[r, 2], a[r, 1], a[r, 2]
        u1 = 0.0  # u[n + 1]
        u2 = 0.0  # u[n + 2]
        gb0 = gb1 = gb2 = ga1 = ga2 = 0.0
        for n in range(samples - 1, -1, -1):
            u = grad_y[r, n] - a1 * u1 - a2 * u2
            grad_x[r, n] = b0 * u + b1 * u1 + b2 * u2
            gb0 += u * x[r, n]
            if n >= 1:
                gb1 += u * x[r, n - 1]
                ga1 -= u * y[r, n - 1]
            if n >= 2:
                gb2 += u * x[r, n - 2]
                ga2 -= u * y[r, n - 2]
            u2 = u1
            u1 = u
        grad_b[r, 0], grad_b[r, 1], grad_b[r, 2] = gb0, gb1, gb2
        grad_a[r, 1], grad_a[r, 2] = ga1, ga2
    return grad_x, grad_b, grad_a


def _numpy(t: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    """A detached, contiguous numpy view (or copy) of `t` in `dtype` (copied to the CPU when elsewhere)."""
    return t.detach().to("cpu", dtype).contiguous().numpy()


class _BiquadFunction(torch.autograd.Function):
    """Zero-state biquad on CPU rows `x` `[rows, samples]` with per-row `b`, `a` `[rows, 3]`; numba both ways."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        y = torch.from_numpy(_biquad_forward(_numpy(x, x.dtype), _numpy(b, x.dtype), _numpy(a, x.dtype)))
        y = y.to(x.device)
        ctx.save_for_backward(x, y, b, a)
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x, y, b, a = ctx.saved_tensors
        dtype = x.dtype
        grads = _biquad_backward(
            _numpy(grad_y, dtype), _numpy(x, dtype), _numpy(y, dtype), _numpy(b, dtype), _numpy(a, dtype)
        )
        return tuple(torch.from_numpy(g).to(x.device) for g in grads)


def filter_recursive(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Biquads `b`, `a` `[batch, 3]` run as a recursion (numba, CPU) over `x` `[batch, channels, samples]`."""
    batch, channels, samples = x.shape
    rows = x.reshape(batch * channels, samples)
    y = _BiquadFunction.apply(rows, b.repeat_interleave(channels, dim=0), a.repeat_interleave(channels, dim=0))
    return y.reshape(batch, channels, samples)


def filter_spectral(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Biquads `b`, `a` `[batch, 3]` applied by frequency sampling (any device) to `x` `[batch, channels, samples]`."""
    n_fft = next_fast_len(x.shape[-1] + tail_length(a), real=True)
    response = frequency_response(b, a, n_fft)  # [batch, bins]
    y, _ = _SpectralFilter.apply(x.contiguous(), response, n_fft)
    return y


def filter_biquad(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Biquads `b`, `a` `[batch, 3]` over `x` `[batch, channels, samples]`: the recursion on CPU, else spectral
    (`fxmatch.effects.batch.use_torch_path`)."""
    if x.shape[-1] == 0:
        return x
    if use_torch_path(x):
        return filter_spectral(x, b, a)
    return filter_recursive(x, b, a)


def first_order_coefficients(
    cutoff_frequency_hz: torch.Tensor, sample_rate: float, highpass: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """JUCE's first-order low- or high-pass `b`, `a` (`[batch, 3]`, `b2 = a2 = 0`) from cutoffs `[batch]` in Hz.

    `juce::dsp::IIR::Coefficients::makeFirstOrderLowPass` / `HighPass`: the bilinear transform of a one-pole
    prototype with the cutoff prewarped, `n = tan(pi f / sample_rate)`, `b = [n, n] / (n + 1)` (low-pass) or
    `[1, -1] / (n + 1)` (high-pass), `a = [1, (n - 1) / (n + 1)]`. pedalboard passes the cutoff through unclamped;
    the twin clamps it to [0.01 Hz, 0.49999 sample_rate] (outside, JUCE's own precondition `0 < f <= sr / 2` fails
    and the filter is dead or unstable), so it equals pedalboard wherever pedalboard's output is stable.
    """
    frequency = cutoff_frequency_hz.clamp(0.01, 0.49999 * float(sample_rate))
    n = torch.tan(math.pi * frequency / float(sample_rate))
    scale = 1.0 / (n + 1.0)
    zero = torch.zeros_like(n)
    b0 = n * scale if not highpass else scale
    b1 = b0 if not highpass else -scale
    b = torch.stack([b0, b1, zero], dim=-1)
    a = torch.stack([torch.ones_like(n), (n - 1.0) * scale, zero], dim=-1)
    return b, a
