"""Audio distances: SNR and a multi-resolution STFT distance (auraloss-style, batched, differentiable)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
import torch
from torch.nn import functional as F

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
    return _stft(x, n_fft, hop_divisor).abs().clamp_min(1e-7)


def stft_magnitudes(x: torch.Tensor, fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES,
                    hop_divisor: int = 4) -> list[torch.Tensor]:
    """STFT magnitudes of `x` `[batch, ..., samples]` at each FFT size (flattened to `[batch * ..., bins, frames]`;
    hops of n_fft / `hop_divisor`, floored at 1e-7)."""
    flat = x.reshape(-1, x.shape[-1])
    return [_stft_mag(flat, n_fft, hop_divisor) for n_fft in fft_sizes]


#: `gate_floors`: the log-magnitude floor sits this factor above the target's noise floor (the GATE_NOISE_QUANTILE
#: over frequency of each bin's 10th percentile over time; 10: about 10 dB above the noise's RMS in a bin) ...
GATE_NOISE_FACTOR = 10.0
#: ... but never more than GATE_MAX_DB nor less than GATE_MIN_DB below the target's level (RMS over its bins)
GATE_MAX_DB = 80.0
GATE_MIN_DB = 40.0
#: ... where the noise floor is read over frequency: a broadband hiss or dither lies under every bin, while a
#: sustained instrument leaves bins between and above its partials nearly empty, so a low quantile reads the hiss
#: and not a filtered drive's quiet harmonics (the median read those as floor; docs/capture.md "Which noise floor")
GATE_NOISE_QUANTILE = 0.01


def gate_floors(target_magnitudes: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per resolution, the magnitude `[rows]` below which `mrstft_from_magnitudes(..., floors=...)` ignores
    log-magnitude differences, for targets given by their `stft_magnitudes` `[rows, bins, frames]`.

    The floor is GATE_NOISE_FACTOR times the target's noise floor (each bin's 10th percentile over time, the
    GATE_NOISE_QUANTILE of those over frequency: a dither or hiss floor, not the tones), kept between GATE_MAX_DB
    and GATE_MIN_DB below the target's RMS level. Without it a 16-bit dither floor or a window's leakage into empty
    bins (where the log term is noise against noise) dominates the distance of quiet or band-limited targets."""
    floors = []
    with torch.no_grad():
        for t in target_magnitudes:
            t = t.reshape(t.shape[0], t.shape[-2], -1)
            level = t.square().mean(dim=(1, 2)).sqrt()
            noise = torch.quantile(torch.quantile(t, 0.1, dim=2), GATE_NOISE_QUANTILE, dim=1)
            lo, hi = level * 10 ** (-GATE_MAX_DB / 20), level * 10 ** (-GATE_MIN_DB / 20)
            floors.append(torch.minimum(torch.maximum(GATE_NOISE_FACTOR * noise, lo), hi).clamp_min(_FLOOR))
    return floors


def mrstft_from_magnitudes(
    estimate: torch.Tensor,
    target_magnitudes: Sequence[torch.Tensor],
    fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES,
    reduce: bool = True,
    hop_divisor: int = 4,
    floors: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """`mrstft_distance` of `estimate` to a target given by its `stft_magnitudes` (computed once, reused).

    The target's magnitudes hold one row per estimate, or a single row that every estimate is measured against.
    `floors` (`gate_floors` of the target, one `[rows]` per resolution) floors both magnitudes of the log term there
    (differences below the target's noise floor do not count); None: the fixed 1e-7 floor.
    """
    batch = estimate.shape[0]
    est = estimate.reshape(-1, estimate.shape[-1])
    total = torch.zeros(batch, device=estimate.device, dtype=estimate.dtype)
    for r, (n_fft, t) in enumerate(zip(fft_sizes, target_magnitudes)):
        e = _stft_mag(est, n_fft, hop_divisor).reshape(batch, -1)
        t = t.reshape(1 if t.shape[0] == 1 else batch, -1)
        sc = torch.linalg.vector_norm(t - e, dim=-1) / torch.linalg.vector_norm(t, dim=-1).clamp_min(1e-7)
        if floors is None:
            log_mag = (torch.log(t) - torch.log(e)).abs().mean(dim=-1)
        else:
            f = floors[r].to(e.dtype).reshape(t.shape[0], -1).amax(dim=1, keepdim=True)  # rows as `t`'s
            log_mag = (torch.log(torch.maximum(t, f)) - torch.log(torch.maximum(e, f))).abs().mean(dim=-1)
        total = total + sc + log_mag
    total = total / len(fft_sizes)
    return total.mean() if reduce else total


def mrstft_distance(
    estimate: torch.Tensor,
    target: torch.Tensor,
    fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES,
    reduce: bool = True,
    gate: bool = False,
) -> torch.Tensor:
    """Multi-resolution STFT distance: mean over resolutions of spectral convergence + mean |log mag diff|.

    Inputs `[batch, ..., samples]`; returns a scalar (reduce) or `[batch]`. Zero for identical inputs,
    symmetric in its log-magnitude term, invariant to nothing (a gain change is a distance). `gate`: the log term
    ignores what lies below the target's noise floor (`gate_floors`; the capture search's distance).
    """
    mags = stft_magnitudes(target, fft_sizes)
    return mrstft_from_magnitudes(estimate, mags, fft_sizes, reduce, floors=gate_floors(mags) if gate else None)


# ---------------------------------------------------------------------------------------------------------------------
# The same distance, fused for training: the target's spectra computed once, the estimate's STFT taken a few rows at a
# time (a chunk's spectrum stays in cache, where whole-batch temporaries of tens of MB cost a page fault per 4 kB), and
# magnitude, clamp and squared difference in one numba pass over the complex spectrum, with its adjoint.

#: samples per STFT chunk of `mrstft_to_targets` (one 2 s clip at 44.1 kHz, two 1 s clips)
CHUNK_SAMPLES = 1 << 17
_FLOOR = 1.0e-7


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _magnitude_and_sq_error(spec: np.ndarray, target: np.ndarray, rows: np.ndarray, mag: np.ndarray,
                            sq: np.ndarray) -> None:
    """mag = max(|spec|, 1e-7) `[n, frames, bins]` (float32) and sq[i] = sum (t - mag)^2 (float64 sum).

    spec `[n, frames, bins, 2]` (re, im; C-contiguous float32); target `[m, frames, bins]`; rows `[n]`: the target
    row of each estimate. Flat float32 loops, which LLVM vectorises.
    """
    floor = np.float32(_FLOOR)
    for i in range(spec.shape[0]):
        s = spec[i].reshape(-1)
        t = target[rows[i]].reshape(-1)
        m = mag[i].reshape(-1)
        acc = 0.0
        for q in range(t.size):
            re = s[2 * q]
            im = s[2 * q + 1]
            e = max(math.sqrt(re * re + im * im), floor)
            m[q] = e
            d = t[q] - e
            acc += d * d
        sq[i] = acc


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _l1_to_rows(values: np.ndarray, target: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """out[i] = sum |target[rows[i]] - values[i]| (float64 sum) of `[n, ...]` and `[m, ...]` float32 arrays."""
    for i in range(values.shape[0]):
        v = values[i].reshape(-1)
        t = target[rows[i]].reshape(-1)
        acc = 0.0
        for q in range(v.size):
            acc += abs(t[q] - v[q])
        out[i] = acc


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _overlap_add(frames: np.ndarray, window: np.ndarray, hop: int, offset: int, out: np.ndarray) -> None:
    """out[i, offset + t * hop + k] += window[k] * frames[i, t, k]: the adjoint of stft's windowed framing."""
    n_fft = window.shape[0]
    for i in range(frames.shape[0]):
        for t in range(frames.shape[1]):
            start = offset + t * hop
            for k in range(n_fft):
                out[i, start + k] += window[k] * frames[i, t, k]


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _magnitude_terms_backward(spec: np.ndarray, target: np.ndarray, rows: np.ndarray, norm_coef: np.ndarray,
                              log_coef: np.ndarray, log_floors: np.ndarray, grad: np.ndarray) -> None:
    """Adjoint of (||t - e||, sum |log max(t, f) - log max(e, f)|) w.r.t. spec `[n, frames, bins, 2]` into grad (same
    shape).

    norm_coef[i] = upstream gradient / ||t - e|| (0 where the norm is 0), log_coef[i] = upstream gradient of the log
    sum, log_floors[i] = f, the log term's floor of estimate i (float32 `[n]` all three); e = max(|spec|, 1e-7)
    passes no gradient where |spec| < 1e-7 (torch's clamp_min), the log term none where e <= f (torch's maximum),
    and sign(log max(t, f) - log e) is taken as sign(max(t, f) - e).
    """
    floor = np.float32(_FLOOR)
    zero = np.float32(0.0)
    for i in range(spec.shape[0]):
        s = spec[i].reshape(-1)
        t = target[rows[i]].reshape(-1)
        g_out = grad[i].reshape(-1)
        cn = norm_coef[i]
        cl = log_coef[i]
        f = log_floors[i]
        for q in range(t.size):
            re = s[2 * q]
            im = s[2 * q + 1]
            m = math.sqrt(re * re + im * im)
            e = max(m, floor)  # no division by 0 below; masked where m < floor
            d = t[q] - e
            dl = max(t[q], f) - e
            sign = zero if e <= f else (np.float32(1.0) if dl > zero else (np.float32(-1.0) if dl < zero else zero))
            g = (-cn * d - cl * sign / e) / e
            if m < floor:
                g = zero
            g_out[2 * q] = g * re
            g_out[2 * q + 1] = g * im


def _terms_forward(phys: torch.Tensor, target: torch.Tensor, log_target: torch.Tensor, log_floors: torch.Tensor,
                   rows: torch.Tensor) -> torch.Tensor:
    """(||t - e||, sum |log max(t, f) - log max(e, f)|) `[n, 2]` (float64) of spectra `phys` `[n, frames, bins, 2]`
    vs target rows (`log_target`: log max(t, f); `log_floors`: f of each estimate, `[n]`)."""
    mag = torch.empty(phys.shape[:-1], dtype=torch.float32)
    sq = np.empty(phys.shape[0], dtype=np.float64)
    rows_np = rows.numpy()
    _magnitude_and_sq_error(phys.numpy(), target.numpy(), rows_np, mag.numpy(), sq)
    log_sum = np.empty(phys.shape[0], dtype=np.float64)
    torch.maximum(mag, log_floors.view(-1, 1, 1), out=mag)
    _l1_to_rows(mag.log_().numpy(), log_target.numpy(), rows_np, log_sum)
    return torch.stack([torch.from_numpy(np.sqrt(sq)), torch.from_numpy(log_sum)], dim=1)


class _SpectralTerms(torch.autograd.Function):
    """Per row and FFT size, (||t - e||, sum |log t - log e|) `[n, sizes, 2]` (float64) of a reflect-padded signal
    `[n, samples + 2 * (max size // 2)]` (float32) against rows of `TargetSpectra`.

    Forward: torch.stft (no graph) and the fused magnitude kernels. Backward: the kernels' adjoint gives the gradient
    of each spectrum, and the STFT's adjoint is written out (an inverse real FFT per frame with the DC and Nyquist
    bins doubled, times n_fft / 2 and the window, then overlap-added with `fold`) instead of autograd's walk back
    through stft's framing view.
    """

    @staticmethod
    def forward(ctx, padded: torch.Tensor, spectra: TargetSpectra, rows: torch.Tensor) -> torch.Tensor:
        widest = max(spectra.fft_sizes) // 2
        length = padded.shape[1]
        specs, terms = [], []
        with torch.no_grad():
            for r, n_fft in enumerate(spectra.fft_sizes):
                cut = widest - n_fft // 2
                window = torch.hann_window(n_fft, dtype=padded.dtype)
                spec = torch.stft(padded[:, cut : length - cut], n_fft, hop_length=n_fft // spectra.hop_divisor,
                                  window=window, return_complex=True, center=False)
                phys = torch.view_as_real(spec.transpose(1, 2))  # [n, frames, bins, 2], contiguous from torch.stft
                if not phys.is_contiguous():
                    phys = phys.contiguous()
                terms.append(_terms_forward(phys, spectra.magnitudes[r], spectra.log_magnitudes[r],
                                           spectra.log_floors[r][rows], rows))
                specs.append(phys)
        ctx.specs, ctx.spectra, ctx.rows, ctx.length = specs, spectra, rows, length
        out = torch.stack(terms, dim=1)
        ctx.norms = out[:, :, 0].clone()
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        spectra, rows, length = ctx.spectra, ctx.rows, ctx.length
        widest = max(spectra.fft_sizes) // 2
        grad_out = grad_out.detach().to(torch.float64)
        grad = torch.zeros(ctx.specs[0].shape[0], length, dtype=torch.float32)
        for r, (n_fft, phys) in enumerate(zip(spectra.fft_sizes, ctx.specs)):
            norm = ctx.norms[:, r]
            norm_coef = torch.where(norm > 0, grad_out[:, r, 0] / norm.clamp_min(1e-300), torch.zeros_like(norm))
            g = torch.empty_like(phys)
            _magnitude_terms_backward(phys.numpy(), spectra.magnitudes[r].numpy(), rows.numpy(),
                                      norm_coef.float().contiguous().numpy(),
                                      grad_out[:, r, 1].float().contiguous().numpy(),
                                      spectra.log_floors[r][rows].contiguous().numpy(), g.numpy())
            g_complex = torch.view_as_complex(g)  # [n, frames, bins]
            g_complex[:, :, 0] *= 2.0
            g_complex[:, :, -1] *= 2.0
            frames = torch.fft.irfft(g_complex, n=n_fft, dim=-1)  # [n, frames, n_fft]
            window = torch.hann_window(n_fft, dtype=frames.dtype) * (n_fft / 2)
            _overlap_add(frames.contiguous().numpy(), window.numpy(), n_fft // spectra.hop_divisor,
                         widest - n_fft // 2, grad.numpy())
        ctx.specs = None
        return grad, None, None


@dataclass
class TargetSpectra:
    """Targets' magnitudes prepared for `mrstft_to_targets`: per FFT size, `[m, frames, bins]` (floored at 1e-7,
    float32, frames-major as torch.stft lays them out), the log term's floor of each row `[m]` (float32; 1e-7, or
    `gate_floors` with `target_spectra(..., gate=True)`), the logs of the magnitudes at that floor, and the
    magnitudes' norms `[m]` (float64)."""

    fft_sizes: tuple[int, ...]
    hop_divisor: int
    magnitudes: list[torch.Tensor]
    log_magnitudes: list[torch.Tensor]
    norms: list[torch.Tensor]
    log_floors: list[torch.Tensor]

    @property
    def n_rows(self) -> int:
        return self.magnitudes[0].shape[0]


def _stft(x: torch.Tensor, n_fft: int, hop_divisor: int) -> torch.Tensor:
    """Complex STFT of `x` `[..., samples]`: Hann window of `n_fft`, hop `n_fft // hop_divisor`, centred."""
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    return torch.stft(x, n_fft, hop_length=n_fft // hop_divisor, window=window, return_complex=True, center=True)


def target_spectra(target: torch.Tensor, fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES,
                   hop_divisor: int = 4, gate: bool = False) -> TargetSpectra:
    """`TargetSpectra` of `target` `[m, samples]` (float32 CPU, no gradient): the magnitudes of `stft_magnitudes`
    (`gate`: the log term floored at each row's `gate_floors`, as `mrstft_distance(..., gate=True)`)."""
    with torch.no_grad():
        target = target.detach().to(torch.float32).reshape(-1, target.shape[-1]).contiguous()
        mags, norms = [], []
        for n_fft in fft_sizes:
            phys = torch.view_as_real(_stft(target, n_fft, hop_divisor).transpose(1, 2)).contiguous()
            mag = torch.empty(phys.shape[:-1], dtype=torch.float32)
            zeros = torch.zeros(1, *phys.shape[1:-1], dtype=torch.float32)
            sq = np.empty(phys.shape[0], dtype=np.float64)
            _magnitude_and_sq_error(phys.numpy(), zeros.numpy(), np.zeros(phys.shape[0], dtype=np.int64),
                                    mag.numpy(), sq)
            mags.append(mag)
            norms.append(torch.from_numpy(np.sqrt(sq)))
        floors = (gate_floors([m.transpose(1, 2) for m in mags]) if gate
                  else [torch.full((target.shape[0],), _FLOOR) for _ in mags])
        floors = [f.to(torch.float32).contiguous() for f in floors]
        logs = [torch.maximum(m, f.view(-1, 1, 1)).log() for m, f in zip(mags, floors)]
    return TargetSpectra(tuple(int(s) for s in fft_sizes), hop_divisor, mags, logs, norms, floors)


def mrstft_to_targets(estimate: torch.Tensor, spectra: TargetSpectra, rows: torch.Tensor | None = None,
                      chunk_samples: int = CHUNK_SAMPLES) -> torch.Tensor:
    """`mrstft_distance(estimate, target, reduce=False)` `[n]` of `estimate` `[n, samples]` (float32 CPU) against
    target rows `rows` `[n]` of `spectra` (default: row i, or row 0 for a single target), differentiable.

    Equal to `mrstft_from_magnitudes` up to float32 rounding (its sums are accumulated in float64 here).
    """
    n, n_samples = estimate.shape
    if rows is None:
        rows = torch.zeros(n, dtype=torch.long) if spectra.n_rows == 1 else torch.arange(n)
    rows = rows.to(torch.long).contiguous()
    step = max(1, chunk_samples // max(1, n_samples))
    widest = max(spectra.fft_sizes) // 2
    parts = []
    for start, chunk in zip(range(0, n, step), estimate.split(step)):
        # torch.stft's centring pad, once for all sizes: a narrower reflection is the inner part of a wider one
        padded = F.pad(chunk.unsqueeze(1), (widest, widest), mode="reflect").squeeze(1)
        parts.append(_SpectralTerms.apply(padded, spectra, rows[start : start + step]))
    terms = torch.cat(parts)  # [n, sizes, 2]
    total = torch.zeros(n, dtype=torch.float64)
    for r, mag in enumerate(spectra.magnitudes):
        total = total + (terms[:, r, 0] / spectra.norms[r][rows].clamp_min(_FLOOR)
                         + terms[:, r, 1] / (mag.shape[1] * mag.shape[2]))
    return (total / len(spectra.fft_sizes)).to(estimate.dtype)
