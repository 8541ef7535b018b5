"""Inference-time refinement of a chain's parameters through the differentiable twins, on arrays.

`refine_arrays` runs Adam on the chain's normalised params (logit space) minimising the multi-resolution STFT
distance between twins(dry) and the target, and keeps whichever params (the given or the refined) are closer.
`fxmatch estimate --refine` reads files and calls it; the desktop app calls it on the engine's recent audio.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fxmatch.errors import FxmatchInputError

REFINE_LR = 0.1
REFINE_MAX_RATE = 48000

#: progress(step, steps, distance) after each evaluated step; return value ignored
ProgressFn = Callable[[int, int, float], None]


class RefineCancelled(Exception):
    """Raised by `refine_arrays` when its `should_stop` callback returns True."""


def resample(x: np.ndarray, rate: int, to: int) -> np.ndarray:
    """`[channels, samples]` float32 from `rate` to `to` Hz (soxr, high quality)."""
    if rate == to:
        return x
    import soxr

    out = soxr.resample(np.ascontiguousarray(x.T), rate, to, quality="HQ")
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, x.shape[0]).T)


def loudest_excerpt(target: np.ndarray, length: int, step: int) -> int:
    """Start of the `length`-sample excerpt of mono `target` with the most energy (on a grid of `step`)."""
    if target.size <= length:
        return 0
    energy = np.concatenate([[0.0], np.cumsum(np.square(target, dtype=np.float64))])
    starts = np.arange(0, target.size - length + 1, max(1, step))
    return int(starts[np.argmax(energy[starts + length] - energy[starts])])


def _as_2d(x: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] == 0:
        raise FxmatchInputError(f"refine: {what} must be audio shaped [samples] or [channels, samples]")
    if not np.all(np.isfinite(a)):
        raise FxmatchInputError(f"refine: {what} contains NaN or infinite samples")
    return a


#: Adam's step for the output level, in dB
LEVEL_LR_DB = 0.5


def refine_arrays(
    chain_names: Sequence[str],
    chain_params: Sequence[tuple[str, Mapping[str, float]]],
    dry: np.ndarray,
    target: np.ndarray,
    sample_rate: int,
    steps: int,
    seconds: float = 4.0,
    lr: float = REFINE_LR,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    dry_name: str = "dry",
    fit_output_level: bool = True,
) -> tuple[list[tuple[str, dict[str, float]]], dict[str, Any]]:
    """Refine `chain_params` so that twins(dry) sounds like `target`; both float32 `[samples]` or `[ch, samples]`.

    Inputs share `sample_rate` (Hz; brought down to at most 48 kHz); they keep their channels when both have the
    same number, else both are mixed to mono; the loudest `seconds` of the target (with the matching dry excerpt)
    are used. With `fit_output_level` the chain's output level (a trailing Gain, fxmatch.chains) is fitted too,
    starting where the chain's output matches the target's RMS. Returns the better of the given and the refined
    chain (units, clipped to each parameter's valid range; the output level as a trailing Gain) and a report
    {steps, seconds, sample_rate, channels, distance_before, distance_after, kept, output_level_db}.
    `should_stop()` is polled between steps (RefineCancelled when it returns True). The effects are
    `chain_params`' (a trailing Gain is the output level, not one of them); `chain_names` is kept for callers.
    """
    import torch

    from fxmatch.chains import split_output_level, with_output_level
    from fxmatch.effects.chain import Chain
    from fxmatch.inference import SILENCE_DBFS, rms_dbfs
    from fxmatch.layout import ParamLayout
    from fxmatch.metrics import mrstft_distance

    dry, tgt = _as_2d(dry, dry_name), _as_2d(target, "target")
    if dry.shape[0] != tgt.shape[0]:
        dry, tgt = dry.mean(axis=0, keepdims=True), tgt.mean(axis=0, keepdims=True)
    rate = min(int(sample_rate), REFINE_MAX_RATE)
    dry, tgt = resample(dry, int(sample_rate), rate), resample(tgt, int(sample_rate), rate)
    n = min(dry.shape[1], tgt.shape[1])
    if n < int(0.1 * rate):
        raise FxmatchInputError(f"{dry_name}: dry and target overlap for less than 0.1 s; nothing to refine on")
    length = min(n, int(seconds * rate))
    start = loudest_excerpt(tgt[:, :n].mean(axis=0), length, rate // 10)
    dry, tgt = dry[:, start : start + length], tgt[:, start : start + length]
    if rms_dbfs(dry) < SILENCE_DBFS:
        raise FxmatchInputError(f"{dry_name}: the dry signal is silent where the target is loudest")

    given = [(n_, dict(p)) for n_, p in chain_params]
    effects, level_db = split_output_level(given)
    chain = Chain([name for name, _ in effects])
    x = torch.from_numpy(np.ascontiguousarray(dry))[None]
    y = torch.from_numpy(np.ascontiguousarray(tgt))[None]
    report: dict[str, Any] = {"steps": int(steps), "seconds": round(length / rate, 3), "sample_rate": rate,
                              "channels": int(dry.shape[0])}
    layout = ParamLayout(tuple(e.spec for e in chain.effects))  # the chain's own vector: its effects in order
    u0 = layout.encode(chain.names, dict(effects), np.zeros(layout.width), bounds=(1e-3, 1 - 1e-3))
    z = torch.tensor(np.log(u0 / (1 - u0)), dtype=torch.float32, requires_grad=len(chain) > 0)

    def render(u: torch.Tensor) -> torch.Tensor:
        return chain.process_normalised(x, u[None], float(rate)) if len(chain) else x

    with torch.no_grad():
        first = render(torch.sigmoid(z))
        before = float(mrstft_distance(first * 10.0 ** (level_db / 20.0), y))
        matched = 20.0 * math.log10(max(float(y.square().mean().sqrt()), 1e-9)
                                    / max(float(first.square().mean().sqrt()), 1e-9))
    if not (len(chain) or fit_output_level) or steps <= 0 and not fit_output_level:
        report.update(distance_before=before, distance_after=before, kept="encoder", output_level_db=level_db)
        return given, report
    gain = torch.tensor(matched if fit_output_level else level_db, dtype=torch.float32,
                        requires_grad=fit_output_level)
    groups = ([{"params": [z], "lr": lr}] if len(chain) else []) + \
             ([{"params": [gain], "lr": LEVEL_LR_DB}] if fit_output_level else [])
    opt = torch.optim.Adam(groups)
    history: list[tuple[float, np.ndarray, float]] = []
    for step in range(int(steps) + 1):
        if should_stop is not None and should_stop():
            raise RefineCancelled("refine: cancelled")
        u = torch.sigmoid(z)
        dist = mrstft_distance(render(u) * torch.pow(10.0, gain / 20.0), y)
        d = float(dist.detach())
        if not math.isfinite(d):
            break
        history.append((d, u.detach().numpy().astype(np.float64).copy(), float(gain.detach())))
        if progress is not None:
            progress(step, int(steps), d)
        if step == steps:
            break
        opt.zero_grad()
        dist.backward()
        grads = [t.grad for t in (z, gain) if t.requires_grad]
        if not all(g is not None and torch.all(torch.isfinite(g)) for g in grads):
            break
        opt.step()
    if not history:
        raise RuntimeError("refine: the twins produced a non-finite distance for the given estimate")
    best_d, best_u, best_gain = min(history, key=lambda h: h[0])
    kept = "refined" if best_d < before else "encoder"
    report.update(distance_before=before, distance_after=min(best_d, before), kept=kept,
                  output_level_db=round(best_gain if kept == "refined" else level_db, 3))
    if kept == "encoder":
        return given, report
    out = layout.decode(chain.names, best_u, within_limits=True)
    return with_output_level(out, best_gain if fit_output_level else level_db), report
