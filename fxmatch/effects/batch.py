"""Tensor helpers shared by the twins (torch; the specs in `fxmatch.effects.spec` stay torch-free).

Which path a recursive twin runs: the numba kernels need CPU arrays, so for a tensor on any other device (CUDA)
the Compressor, Chorus, Phaser, Delay, Reverb and the filters (PeakFilter, LowpassFilter, HighpassFilter) run torch
ops on that device instead (`use_torch_path`; Distortion and Gain are torch ops anyway); `twin_path("torch")` forces
those torch ops on CPU too, which is how the tests compare the two paths.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from scipy.fft import next_fast_len

TwinPath = Literal["auto", "torch", "numba"]

#: "auto": numba kernels for CPU tensors, torch ops on any other device; "torch": torch ops on every device;
#: "numba": the numba kernels, tensors on another device copied to the CPU and back (the old behaviour)
TWIN_PATH: TwinPath = "auto"


def use_torch_path(x: torch.Tensor) -> bool:
    """True when a twin should run torch ops on `x`'s device rather than numba kernels on the CPU."""
    if TWIN_PATH == "auto":
        return x.device.type != "cpu"
    return TWIN_PATH == "torch"


@contextlib.contextmanager
def twin_path(path: TwinPath) -> Iterator[None]:
    """Run the twins inside the block on `path` ("auto", "torch" or "numba"; module-wide, not thread-local)."""
    global TWIN_PATH
    if path not in ("auto", "torch", "numba"):
        raise ValueError(f"twin path must be 'auto', 'torch' or 'numba', got {path!r}")
    previous, TWIN_PATH = TWIN_PATH, path
    try:
        yield
    finally:
        TWIN_PATH = previous


def as_batch_param(value: Any, batch: int, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a float or `[batch]` tensor parameter to a `[batch]` tensor on `like`'s device and dtype."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        t = t.expand(batch)
    return t.reshape(batch)


def batch_params(params: Mapping[str, Any], names: Sequence[str], like: torch.Tensor) -> list[torch.Tensor]:
    """`as_batch_param` for each of `names` in `params`, in that order (batch size: `like`'s first dimension)."""
    return [as_batch_param(params[name], like.shape[0], like) for name in names]


def linear_recurrence(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`h[n] = a[n] h[n - 1] + b[n]` with `h[-1] = 0` along the last axis of `a`, `b` `[..., samples]`.

    A parallel (Hillis-Steele) scan of the affine maps: ceil(log2(samples)) steps of elementwise torch ops on the
    tensors' device, differentiable by autograd; equal to the sequential recursion up to round-off.
    """
    step = 1
    samples = a.shape[-1]
    while step < samples:
        b = b + a * F.pad(b[..., :-step], (step, 0))
        a = a * F.pad(a[..., :-step], (step, 0), value=1.0)
        step *= 2
    return b


#: The weighted FFT grid's wrap-around, relative to the output (float64 arithmetic)
ALIAS_FLOOR = 1.0e-10


@dataclass(frozen=True)
class WeightedGrid:
    """An exponentially weighted FFT grid for zero-state filtering of `samples` samples by a transfer function.

    Frequency sampling of a recursion whose poles lie near the unit circle needs a grid as long as its ringing (seconds
    for a reverb). Weighting the signal by `alpha**n` (so `z^-1 -> alpha z^-1`) makes the response decay fast
    enough that a grid of twice the signal's length keeps the wrap-around below `ALIAS_FLOOR`; dividing the result by
    `alpha**n` undoes the weighting (in float64: it amplifies round-off by at most `ALIAS_FLOOR ** -0.5`).
    """

    samples: int
    n_fft: int
    alpha: float
    weight: torch.Tensor  # alpha**n, [samples] float64

    @classmethod
    def for_samples(cls, samples: int, device: torch.device) -> WeightedGrid:
        """The grid for signals of `samples` (> 0) samples on `device`."""
        n_fft = next_fast_len(2 * samples, real=True)
        alpha = ALIAS_FLOOR ** (1.0 / n_fft)
        weight = alpha ** torch.arange(samples, device=device, dtype=torch.float64)
        return cls(samples, n_fft, alpha, weight)

    @property
    def bins(self) -> int:
        """The number of rfft bins."""
        return self.n_fft // 2 + 1

    def delay(self, delay: int | torch.Tensor, span: slice = slice(None)) -> torch.Tensor:
        """`z**-delay` on the grid's bins `span` (complex128): `[bins]` for an int, `[rows, bins]` for int64 `[rows]`."""
        bins = torch.arange(self.bins, device=self.weight.device, dtype=torch.int64)[span]
        d = torch.as_tensor(delay, device=self.weight.device, dtype=torch.int64)[..., None]
        phase = ((bins * d) % self.n_fft).to(torch.float64) * (-2.0 * math.pi / self.n_fft)  # exact integer phase
        return torch.polar(torch.exp(d.to(torch.float64) * math.log(self.alpha)).expand_as(phase), phase)

    def filter(self, signal: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
        """`signal` `[..., samples]` (float64) through the transfer function `response` `[..., bins]` (zero state)."""
        spectrum = torch.fft.rfft(signal * self.weight, n=self.n_fft)
        return torch.fft.irfft(spectrum * response, n=self.n_fft)[..., : self.samples] / self.weight


class _Recomputed(torch.autograd.Function):
    """`fn(*inputs, span)` over the whole of `dim`, keeping only `inputs` for the backward pass (see `recomputed`)."""

    @staticmethod
    def forward(ctx, fn, dim: int, length: int, chunk: int, *inputs: torch.Tensor):
        ctx.fn, ctx.dim, ctx.length, ctx.chunk = fn, dim, length, chunk
        ctx.save_for_backward(*inputs)
        return fn(*inputs, slice(0, length))

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):
        inputs = ctx.saved_tensors
        wanted = [i for i, needed in enumerate(ctx.needs_input_grad[4:]) if needed]
        totals: list[torch.Tensor | None] = [None] * len(inputs)
        for start in range(0, ctx.length, ctx.chunk):
            span = slice(start, min(start + ctx.chunk, ctx.length))
            index = (slice(None),) * (ctx.dim % grads[0].ndim) + (span,)
            with torch.enable_grad():
                leaves = [t.detach().requires_grad_(i in wanted) for i, t in enumerate(inputs)]
                outputs = ctx.fn(*leaves, span)
                outputs = outputs if isinstance(outputs, tuple) else (outputs,)
                parts = torch.autograd.grad(outputs, [leaves[i] for i in wanted], [g[index] for g in grads])
            for i, part in zip(wanted, parts):
                totals[i] = part if totals[i] is None else totals[i] + part
        return (None, None, None, None, *totals)


def recomputed(fn, dim: int, length: int, chunk: int, *inputs: torch.Tensor) -> Any:
    """`fn(*inputs, slice(0, length))` whose backward pass rebuilds `fn` over `chunk`-long spans of output axis `dim`.

    For outputs that depend on a few small inputs (parameters) through many large intermediates: autograd would keep
    every intermediate until the backward pass; this keeps the inputs only and, in the backward pass, runs
    `fn(*inputs, span)` (the outputs' part along `dim`) one span at a time with autograd, so memory follows `chunk`.
    """
    return _Recomputed.apply(fn, dim, length, chunk, *inputs)
