"""Phaser: pedalboard.Phaser (juce::dsp::Phaser, a 6-stage first-order all-pass phaser with feedback).

What pedalboard/JUCE does (per channel, state reset to zero at the start of every call):

- A sine LFO runs at a quarter of the sample rate: at every sample index n = 4k the cutoff of all six stages is
  set from LFO sample k and held for four samples. The LFO value is `sin(phase_k - pi)` with `phase_k` a float32
  accumulator that starts at 0 and grows by `float32(2 pi / (sr / 4)) * rate_hz` per step (wrapped at 2 pi);
  the counter and the phase run on across pedalboard's internal blocks, so the schedule is global.
- `cutoff_k = mapToLog10(clip(lfo_k * depth / 2 + mapFromLog10(centre, 20, 20000), 0, 1), 20, min(20000, 0.49 sr))`.
  The centre is normalised with the sample rate the plugin had when `centre_frequency_hz` was set (the 44.1 kHz
  default inside pedalboard's constructor), hence the fixed 20 kHz there.
- Each stage is a TPT (topology-preserving) first-order all-pass with `G = g / (1 + g)`, `g = tan(pi fc / sr)`:
  `out = (2G - 1) in + 2 (1 - G) s`, `s <- 2G in + (1 - 2G) s`.
- Per sample: `u = x - feedback * w[n-1]` (negative feedback), `w = six all-passes of u`.
- Output `y = (1 - mix) x + mix w` (DryWetMixer, linear rule). All SmoothedValues (depth, feedback, mix, LFO rate)
  are snapped to their targets by the reset, so there are no start-up ramps.

The twin: the LFO -> cutoff -> G mapping is in torch (so gradients reach rate_hz, depth and centre_frequency_hz);
the 7-state linear time-varying recursion is a custom autograd Function whose forward and adjoint (backward)
recursions are numba loops over batch x channels (the backward recomputes the forward states per row). The float32
LFO phase accumulation of JUCE is reproduced exactly in the forward value (it matters: ~30 dB at 3 Hz over 2 s)
with the gradient of the exact float64 phase (straight-through). Everything else runs in float64, pedalboard in
float32; agreement is ~100 dB SNR. For tensors on another device (CUDA) the recursion runs as torch ops there
(`_allpass_chain_torch`: per-update linear maps and a chunked 7-state recurrence; only the float32 LFO phase table
is computed by numba on the CPU from the `[batch]` rates); `fxmatch.effects.batch.twin_path("torch")` forces it
on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numba
import numpy as np
import torch
import torch.nn.functional as F

from fxmatch.effects.batch import batch_params, recomputed, use_torch_path
from fxmatch.effects.lfo import phase as lfo_phase
from fxmatch.effects.phaser import SPEC  # noqa: F401 (the twin's spec, beside it)

_NUM_STAGES = 6
_UPDATE_INTERVAL = 4  # samples between cutoff updates (JUCE maxUpdateCounter)
_MIN_FREQUENCY_HZ = 20.0
_NORM_MAX_FREQUENCY_HZ = min(20000.0, 0.49 * 44100.0)  # range used when the centre was set (constructor-time rate)


@numba.njit(cache=True, parallel=True)
def _allpass_forward(x: np.ndarray, coeff: np.ndarray, feedback: np.ndarray, channels: int) -> np.ndarray:
    """Wet path `w` `[rows, samples]` of rows `x` (row r uses coeff[r // channels] `[*, n_down]`, feedback[r // ch])."""
    rows, n = x.shape
    w = np.empty_like(x)
    for r in numba.prange(rows):
        b = r // channels
        fb = feedback[b]
        s = np.zeros(_NUM_STAGES)
        prev = 0.0
        for i in range(n):
            g = coeff[b, i // _UPDATE_INTERVAL]
            a = x[r, i] - fb * prev
            for st in range(_NUM_STAGES):
                out = (2.0 * g - 1.0) * a + 2.0 * (1.0 - g) * s[st]
                s[st] = 2.0 * g * a + (1.0 - 2.0 * g) * s[st]
                a = out
            w[r, i] = a
            prev = a
    return w


@numba.njit(cache=True, parallel=True)
def _allpass_backward(
    x: np.ndarray, coeff: np.ndarray, feedback: np.ndarray, channels: int, grad_w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adjoint of `_allpass_forward`: grads w.r.t. x `[rows, n]`, coeff per row `[rows, n_down]`, feedback `[rows]`."""
    rows, n = x.shape
    n_down = coeff.shape[1]
    grad_x = np.empty_like(x)
    grad_coeff = np.zeros((rows, n_down))
    grad_fb = np.zeros(rows)
    for r in numba.prange(rows):
        b = r // channels
        fb = feedback[b]
        # recompute the forward pass, keeping (stage input - stage state) and the fed-back output per sample
        diffs = np.empty((n, _NUM_STAGES))
        prev_w = np.empty(n)
        s = np.zeros(_NUM_STAGES)
        prev = 0.0
        for i in range(n):
            g = coeff[b, i // _UPDATE_INTERVAL]
            prev_w[i] = prev
            a = x[r, i] - fb * prev
            for st in range(_NUM_STAGES):
                ss = s[st]
                diffs[i, st] = a - ss
                s[st] = 2.0 * g * a + (1.0 - 2.0 * g) * ss
                a = (2.0 * g - 1.0) * a + 2.0 * (1.0 - g) * ss
            prev = a
        # adjoint recursion backwards in time
        lam_s = np.zeros(_NUM_STAGES)
        lam_w = 0.0  # adjoint of w[i] through the feedback path at i + 1
        gfb = 0.0
        for i in range(n - 1, -1, -1):
            g = coeff[b, i // _UPDATE_INTERVAL]
            lam_a = grad_w[r, i] + lam_w
            gg = 0.0
            for st in range(_NUM_STAGES - 1, -1, -1):
                ls = lam_s[st]
                gg += diffs[i, st] * (lam_a + ls)
                lam_s[st] = 2.0 * (1.0 - g) * lam_a + (1.0 - 2.0 * g) * ls
                lam_a = (2.0 * g - 1.0) * lam_a + 2.0 * g * ls
            grad_coeff[r, i // _UPDATE_INTERVAL] += 2.0 * gg
            grad_x[r, i] = lam_a
            gfb -= prev_w[i] * lam_a
            lam_w = -fb * lam_a
        grad_fb[r] = gfb
    return grad_x, grad_coeff, grad_fb


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    """Detached, contiguous float64 CPU numpy copy of `t`."""
    return np.ascontiguousarray(t.detach().to(device="cpu", dtype=torch.float64).numpy())


class _AllpassChain(torch.autograd.Function):
    """Six modulated TPT all-passes with one-sample negative feedback: x `[B, C, N]`, coeff `[B, K]`, fb `[B]`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: torch.Tensor, feedback: torch.Tensor) -> torch.Tensor:
        batch, channels, n = x.shape
        w = _allpass_forward(_to_numpy(x).reshape(batch * channels, n), _to_numpy(coeff), _to_numpy(feedback), channels)
        ctx.save_for_backward(x, coeff, feedback)
        return torch.from_numpy(w).reshape(batch, channels, n).to(device=x.device, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad_w: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, coeff, feedback = ctx.saved_tensors
        batch, channels, n = x.shape
        gx, gc, gf = _allpass_backward(
            _to_numpy(x).reshape(batch * channels, n),
            _to_numpy(coeff),
            _to_numpy(feedback),
            channels,
            _to_numpy(grad_w).reshape(batch * channels, n),
        )
        grad_x = torch.from_numpy(gx).reshape(batch, channels, n).to(device=x.device, dtype=x.dtype)
        grad_c = torch.from_numpy(gc).reshape(batch, channels, -1).sum(1).to(device=coeff.device, dtype=coeff.dtype)
        grad_f = torch.from_numpy(gf).reshape(batch, channels).sum(1).to(device=feedback.device, dtype=feedback.dtype)
        return (
            grad_x if ctx.needs_input_grad[0] else None,
            grad_c if ctx.needs_input_grad[1] else None,
            grad_f if ctx.needs_input_grad[2] else None,
        )


_STATE = _NUM_STAGES + 1  # the stages' states and the fed-back output


def _block_maps(coeff: torch.Tensor, feedback: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The chain over one cutoff update (4 samples, one G) as linear maps of (state before, the 4 inputs).

    `coeff` `[B, K]`, `feedback` `[B]` -> the state after `[B, K, 7, 11]` and the 4 outputs `[B, K, 4, 11]`, as
    coefficients on the 7 state values before the update and its 4 input samples: the recursion of
    `_allpass_forward` run once on those 11 unit vectors, every update at once.
    """
    batch, updates = coeff.shape
    unit = torch.eye(_STATE + _UPDATE_INTERVAL, dtype=coeff.dtype, device=coeff.device)
    stages = [unit[st].expand(batch, updates, -1) for st in range(_NUM_STAGES)]
    previous = unit[_NUM_STAGES].expand(batch, updates, -1)
    g, fb = coeff[..., None], feedback[:, None, None]
    outputs = []
    for i in range(_UPDATE_INTERVAL):
        a = unit[_STATE + i] - fb * previous
        for st in range(_NUM_STAGES):
            s = stages[st]
            a, stages[st] = (2.0 * g - 1.0) * a + 2.0 * (1.0 - g) * s, 2.0 * g * a + (1.0 - 2.0 * g) * s
        outputs.append(a)
        previous = a
    return torch.stack([*stages, previous], dim=-2), torch.stack(outputs, dim=-2)


_MAPS_CHUNK = 2048  # updates whose block maps the backward pass rebuilds at once (bounds its memory)

def _block_states(step: torch.Tensor, drive: torch.Tensor) -> torch.Tensor:
    """States before each update of `s[k + 1] = step[k] s[k] + drive[k]`, `s[0] = 0`.

    `step` `[B, K, 7, 7]`, `drive` `[B, C, K, 7]` -> `[B, C, K, 7]`. Chunked: within chunks of about sqrt(K) updates
    the prefix products and zero-state responses run for every chunk at once, then the chunks' start states are
    carried from chunk to chunk: about 2 sqrt(K) steps of batched 7x7 products.
    """
    batch, channels, updates, width = drive.shape
    size = max(1, math.isqrt(updates))
    chunks = -(-updates // size)
    pad = chunks * size - updates
    unit = torch.eye(width, dtype=step.dtype, device=step.device)
    step = torch.cat([step, unit.expand(batch, pad, width, width)], dim=1).reshape(batch, chunks, size, width, width)
    drive = F.pad(drive, (0, 0, 0, pad)).reshape(batch, channels, chunks, size, width)
    product = unit.expand(batch, chunks, width, width)
    response = torch.zeros_like(drive[:, :, :, 0])
    products, responses = [], []
    for j in range(size):
        products.append(product)
        responses.append(response)
        product = step[:, :, j] @ product
        response = torch.einsum("bnij,bcnj->bcni", step[:, :, j], response) + drive[:, :, :, j]
    start = torch.zeros_like(response[:, :, 0])
    starts = []
    for c in range(chunks):
        starts.append(start)
        start = torch.einsum("bij,bcj->bci", product[:, c], start) + response[:, :, c]
    states = torch.einsum("bnkij,bcnj->bcnki", torch.stack(products, dim=2), torch.stack(starts, dim=2))
    states = states + torch.stack(responses, dim=3)
    return states.reshape(batch, channels, chunks * size, width)[:, :, :updates]


def _allpass_chain_torch(x: torch.Tensor, coeff: torch.Tensor, feedback: torch.Tensor) -> torch.Tensor:
    """`_AllpassChain` with torch ops on `x`'s device (float64): x `[B, C, N]`, coeff `[B, K]`, fb `[B]`.

    The recursion is linear and its coefficient changes every 4 samples, so each update is a linear map of the
    7 state values and 4 inputs (`_block_maps`, all at once), and the states before the updates solve a 7-state
    linear recurrence (`_block_states`). Gradients come from autograd.
    """
    batch, channels, n = x.shape
    updates = coeff.shape[1]
    xd = F.pad(x.to(torch.float64), (0, updates * _UPDATE_INTERVAL - n)).reshape(batch, channels, updates, -1)
    # recomputed: autograd through `_block_maps` would keep ~100 `[B, K, 11]` intermediates (55 MiB per row-second)
    after, outputs = recomputed(lambda c, fb, span: _block_maps(c[:, span], fb), 1, updates, _MAPS_CHUNK,
                                coeff.to(torch.float64), feedback.to(torch.float64))
    drive = torch.einsum("bkij,bckj->bcki", after[..., _STATE:], xd)
    states = _block_states(after[..., :_STATE], drive)
    w = torch.einsum("bkij,bckj->bcki", outputs[..., :_STATE], states)
    w = w + torch.einsum("bkij,bckj->bcki", outputs[..., _STATE:], xd)
    return w.reshape(batch, channels, -1)[..., :n].to(x.dtype)


def _allpass_coefficients(
    rate_hz: torch.Tensor, depth: torch.Tensor, centre_frequency_hz: torch.Tensor, n_samples: int, sample_rate: float
) -> torch.Tensor:
    """All-pass coefficient G per cutoff update (every 4 samples): params `[B]` -> `[B, ceil(n / 4)]`."""
    n_down = -(-n_samples // _UPDATE_INTERVAL)
    down_rate_hz = sample_rate / _UPDATE_INTERVAL
    lfo = -torch.sin(lfo_phase(rate_hz, n_down, down_rate_hz, wrap=True))  # sin(phase - pi)
    log_min = math.log10(_MIN_FREQUENCY_HZ)
    norm_centre = (torch.log10(centre_frequency_hz) - log_min) / (math.log10(_NORM_MAX_FREQUENCY_HZ) - log_min)
    position = torch.clamp(lfo * (0.5 * depth)[:, None] + norm_centre[:, None], 0.0, 1.0)
    max_hz = min(20000.0, 0.49 * sample_rate)
    cutoff_hz = _MIN_FREQUENCY_HZ * (max_hz / _MIN_FREQUENCY_HZ) ** position
    g = torch.tan(math.pi * cutoff_hz / sample_rate)
    return g / (1.0 + g)


def process(x: torch.Tensor, params: Mapping[str, torch.Tensor | float], sample_rate: float) -> torch.Tensor:
    """Phase `x` `[batch, channels, samples]`; params rate_hz (Hz), depth, centre_frequency_hz (Hz), feedback, mix
    as floats or `[batch]` tensors. Returns the same shape and dtype."""
    n = x.shape[-1]
    rate_hz, depth, centre_hz, feedback, mix = batch_params(
        params, ("rate_hz", "depth", "centre_frequency_hz", "feedback", "mix"), x)
    mix = mix[:, None, None]
    if n == 0:
        return x.clone()
    # the coefficient mapping runs in float64 whatever x's dtype (long float32 phase ramps lose precision)
    coeff = _allpass_coefficients(rate_hz.double(), depth.double(), centre_hz.double(), n, float(sample_rate))
    chain = _allpass_chain_torch if use_torch_path(x) else _AllpassChain.apply
    wet = chain(x, coeff, feedback)
    return torch.lerp(x, wet, mix)  # (1 - mix) x + mix wet
