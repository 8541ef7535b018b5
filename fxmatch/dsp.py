"""Shared frequency-domain helpers for the LTI parts of the effect twins.

An LTI filter with a transfer function `H` evaluated on an rfft grid of `n_fft` points computes a *circular*
convolution. For an input of `L` samples and an impulse response that is (numerically) zero beyond `T` samples,
the first `L` output samples are exact when `n_fft >= L + T`; `fft_size` picks a fast size for that.
"""

from __future__ import annotations

import math

import torch

#: odd 5-smooth factors; FFT sizes are `m * 2**k` with one of them (large power-of-two part: fast in pocketfft)
_ODD_FACTORS: tuple[int, ...] = (1, 3, 5, 9, 15, 25, 27, 45, 75, 81, 125, 135, 225)


def fft_size(n_samples: int, tail_samples: int = 0) -> int:
    """Fast FFT length `m * 2**k` >= `n_samples + tail_samples` (input length plus impulse-response length)."""
    need = max(2, int(n_samples) + int(tail_samples))
    return min(m << max(0, (need - 1) // m).bit_length() if m < need else m for m in _ODD_FACTORS)


def rfft_omega(n_fft: int, like: torch.Tensor) -> torch.Tensor:
    """Angular frequencies (rad/sample) of the `n_fft // 2 + 1` rfft bins, real dtype of `like`."""
    real = like.real.dtype if like.is_complex() else like.dtype
    return torch.arange(n_fft // 2 + 1, device=like.device, dtype=real) * (2.0 * math.pi / n_fft)


def lti_filter(x: torch.Tensor, transfer: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Filter `x` `[..., samples]` by `transfer` (complex, broadcastable to `[..., n_fft // 2 + 1]`).

    Returns the first `samples` outputs, real, in `x`'s dtype. Exact (up to round-off) when `n_fft` is at least
    the input length plus the impulse-response length (see `fft_size`).
    """
    n = x.shape[-1]
    complex_dtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
    spectrum = torch.fft.rfft(x, n=n_fft) * transfer.to(complex_dtype)
    return torch.fft.irfft(spectrum, n=n_fft)[..., :n]
