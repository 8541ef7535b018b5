"""Audio distances: SNR and a multi-resolution STFT distance (auraloss-style, batched, differentiable)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

DEFAULT_FFT_SIZES: tuple[int, ...] = (2048, 1024, 512, 256)


def snr_db(reference: np.ndarray | torch.Tensor, estimate: np.ndarray | torch.Tensor) -> float:
    """SNR in dB of `estimate` against `reference` (any equal shapes); +inf when identical, 0 dB for silence."""
    ref = np.asarray(reference, dtype=np.float64)
    err = ref - np.asarray(estimate, dtype=np.float64)
    signal, noise = float(np.sum(ref**2)), float(np.sum(err**2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float(-10.0 * np.log10(noise / err.size)) if noise > 0 else float("inf")
    return float(10.0 * np.log10(signal / noise))


def _stft_mag(x: torch.Tensor, n_fft: int, hop_divisor: int = 4) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop_length=n_fft // hop_divisor, window=window, return_complex=True, center=True)
    return spec.abs().clamp_min(1e-7)


def stft_magnitudes(x: torch.Tensor, fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES,
                    hop_divisor: int = 4) -> list[torch.Tensor]:
    """STFT magnitudes of `x` `[batch, ..., samples]` at each FFT size (flattened to `[batch * ..., bins, frames]`;
    hops of n_fft / `hop_divisor`, floored at 1e-7)."""
    flat = x.reshape(-1, x.shape[-1])
    return [_stft_mag(flat, n_fft, hop_divisor) for n_fft in fft_sizes]


def mrstft_from_magnitudes(
    estimate: torch.Tensor,
    target_magnitudes: Sequence[torch.Tensor],
    fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES,
    reduce: bool = True,
    hop_divisor: int = 4,
) -> torch.Tensor:
    """`mrstft_distance` of `estimate` to a target given by its `stft_magnitudes` (computed once, reused).

    The target's magnitudes hold one row per estimate, or a single row that every estimate is measured against.
    """
    batch = estimate.shape[0]
    est = estimate.reshape(-1, estimate.shape[-1])
    total = torch.zeros(batch, device=estimate.device, dtype=estimate.dtype)
    for n_fft, t in zip(fft_sizes, target_magnitudes):
        e = _stft_mag(est, n_fft, hop_divisor).reshape(batch, -1)
        t = t.reshape(1 if t.shape[0] == 1 else batch, -1)
        sc = torch.linalg.vector_norm(t - e, dim=-1) / torch.linalg.vector_norm(t, dim=-1).clamp_min(1e-7)
        log_mag = (torch.log(t) - torch.log(e)).abs().mean(dim=-1)
        total = total + sc + log_mag
    total = total / len(fft_sizes)
    return total.mean() if reduce else total


def mrstft_distance(
    estimate: torch.Tensor,
    target: torch.Tensor,
    fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES,
    reduce: bool = True,
) -> torch.Tensor:
    """Multi-resolution STFT distance: mean over resolutions of spectral convergence + mean |log mag diff|.

    Inputs `[batch, ..., samples]`; returns a scalar (reduce) or `[batch]`. Zero for identical inputs,
    symmetric in its log-magnitude term, invariant to nothing (a gain change is a distance).
    """
    return mrstft_from_magnitudes(estimate, stft_magnitudes(target, fft_sizes), fft_sizes, reduce)
