"""Capture's batched fit: many candidate chains (or many settings of one) fitted through the twins at once.

Rows of logits (one chain each, params in a `fxmatch.layout.ParamLayout` with the output level last) start from a
warm start, the encoder's or the identified params, a grid over the added effect's narrow-valley params and random
draws; the best are zoomed in on their fine params, then fitted together by Adam on the MR-STFT distance to the
target (`fxmatch.render.ChainRenderer` renders them), each row stopping early on its own. `_Clock` keeps the
deadline, the cancellation and the progress fraction.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fxmatch.capture.candidates import Candidate, sub_chains
from fxmatch.capture.results import CaptureCancelled, CaptureProgress, CaptureProgressFn, ChainFit
from fxmatch.capture.settings import SearchSettings, Stage, stage_rate
from fxmatch.effects import get_spec
from fxmatch.identify import Identification
from fxmatch.layout import ParamLayout
from fxmatch.metrics import mrstft_to_targets, target_spectra
from fxmatch.refine import resample
from fxmatch.render import ChainRenderer

_MIN_IMPROVEMENT = 0.005  # relative improvement that resets a row's early-stop counter
_START_BOUNDS = (0.02, 0.98)  # a start given in units is kept this far inside [0, 1] (off the sigmoid's flat ends)


@dataclass
class _Row:
    """One chain being fitted: its logits `[width]` now, the best distance seen and the logits that gave it."""

    chain: tuple[str, ...]
    z: np.ndarray
    distance: float = math.inf
    best_z: np.ndarray | None = None
    stage: int = 0
    #: the no-effect distance of the signals the row was last fitted on
    no_effect: float = 1.0

    @property
    def relative(self) -> float:
        """The distance over the no-effect one (comparable across sample rates)."""
        return self.distance / max(self.no_effect, 1e-12)


class _Spectra:
    """The target's STFT magnitudes at each resolution, computed once; `distance` is `metrics.mrstft_distance`
    (with `gate`: `mrstft_distance(..., gate=True)`, the log term floored at the target's noise floor), run by the
    fused CPU kernels of `metrics.mrstft_to_targets` (4-5x faster than autograd through torch.stft, forward and
    backward; the same figure up to float32 rounding)."""

    def __init__(self, target: torch.Tensor, fft_sizes: Sequence[int], hop_divisor: int = 4, gate: bool = False):
        self.fft_sizes, self.hop_divisor = tuple(fft_sizes), int(hop_divisor)
        self.spectra = target_spectra(target[None], self.fft_sizes, self.hop_divisor, gate)

    def distance(self, estimate: torch.Tensor) -> torch.Tensor:
        """MR-STFT distance `[batch]` of `estimate` `[batch, samples]` to the target."""
        return mrstft_to_targets(estimate.to(torch.float32).contiguous(), self.spectra)


@dataclass
class _Signals:
    """One stage's signals: the dry excerpt with its pre-roll `[1, samples]`, the target's spectra, lengths."""

    rate: int
    x: torch.Tensor
    spectra: _Spectra
    length: int
    no_effect: float
    native: int
    #: `_sample_cost` of the stage (progress bookkeeping)
    unit: float = 1.0
    #: the target's RMS level over the window
    target_rms: float = 0.0


#: the level-matched no-effect distance is floored at this share of the dry take's own (a wet take that is only a
#: gain of the dry one has none)
_LEVEL_MATCHED_FLOOR = 1e-3


def _stage_signals(xa: np.ndarray, y: np.ndarray, native: int, start: int, length: int, preroll: int,
                   stage: Stage, gate: bool = False, level_matched: bool = False) -> _Signals:
    """The aligned dry `xa` and wet `y` (`[samples]` at `native` Hz) around the excerpt, at the stage's rate
    (`gate`: the distance ignores what lies below the target's noise floor). The no-effect distance is the dry
    excerpt's, at the wet one's RMS level with `level_matched` (when every chain fits the output level, "no effect"
    means the dry take at the wet take's level: a pedal that only changes the level then reads 100 %, not less)."""
    rate = stage_rate(stage, native)
    if stage.seconds is not None:
        length = min(length, int(stage.seconds * native))
    margin = int(0.05 * native)
    lo, hi = max(0, start - preroll - margin), min(y.size, start + length + margin)
    xd = resample(xa[None, lo:hi].astype(np.float32), native, rate)[0]
    yd = resample(y[None, lo:hi].astype(np.float32), native, rate)[0]
    first = round((start - preroll - lo) * rate / native)
    n_pre, n_len = round(preroll * rate / native), round(length * rate / native)
    n_len = min(n_len, xd.size - first - n_pre, yd.size - first - n_pre)
    dry = torch.from_numpy(np.ascontiguousarray(xd[first : first + n_pre + n_len]))[None]
    target = torch.from_numpy(np.ascontiguousarray(yd[first + n_pre : first + n_pre + n_len]))
    spectra = _Spectra(target, stage.fft_sizes, stage.hop_divisor, gate)
    with torch.no_grad():
        no_effect = no_effect_distance(lambda a: float(spectra.distance(a)[0]), dry[:, n_pre:], target, level_matched)
    return _Signals(rate, dry, spectra, n_len, no_effect, native, _sample_cost(stage),
                    float(target.square().mean().sqrt()))


def no_effect_distance(distance: Callable[[torch.Tensor], float], plain: torch.Tensor, target: torch.Tensor,
                       level_matched: bool = True, or_plain: bool = False) -> float:
    """The distance of no effect: `distance` of the dry `plain` itself, or with `level_matched` of `plain` at
    `target`'s RMS level, floored at _LEVEL_MATCHED_FLOOR of the plain one (a wet take that is a gain of the dry);
    with `or_plain` too, the smaller of that and the plain one."""
    plain_distance = distance(plain)
    if not level_matched:
        return plain_distance
    scale = target.square().mean().sqrt() / plain.square().mean().sqrt().clamp_min(1e-12)
    matched = max(distance(plain * scale), _LEVEL_MATCHED_FLOOR * plain_distance)
    return min(matched, plain_distance) if or_plain else matched


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function (logits to [0, 1])."""
    return 1.0 / (1.0 + np.exp(-z))


#: grid points per parameter tried when an effect joins a chain (the chain's other effects at their fitted values):
#: the parameters whose distance has narrow valleys (LFO rates, delay times, centre frequencies) and the main levels
#: (points for an effect new to the search, points for one already fitted in a shorter chain)
GRID: dict[str, dict[str, tuple[int, int]]] = {
    "Compressor": {"threshold_db": (6, 4), "ratio": (3, 2)},
    "Distortion": {"drive_db": (8, 5)},
    "PeakFilter": {"cutoff_frequency_hz": (10, 5), "gain_db": (4, 3)},
    "Chorus": {"rate_hz": (24, 6), "centre_delay_ms": (12, 6)},
    "Phaser": {"rate_hz": (24, 6), "centre_frequency_hz": (8, 5)},
    "Delay": {"delay_seconds": (32, 8)},
    "Reverb": {"room_size": (5, 3), "wet_level": (3, 2)},
    "LowpassFilter": {"cutoff_frequency_hz": (8, 5)},
    "HighpassFilter": {"cutoff_frequency_hz": (6, 4)},
}
#: parameters whose distance ripples on a fine scale (comb-filter notches move with a delay or an LFO's phase): a
#: grid finds their valley, `_zoom` narrows it down, Adam moves them FINE_LR_SCALE times slower than the others
FINE: frozenset[tuple[str, str]] = frozenset({
    ("Chorus", "rate_hz"), ("Chorus", "centre_delay_ms"), ("Phaser", "rate_hz"), ("Phaser", "centre_frequency_hz"),
    ("Delay", "delay_seconds"),
})
FINE_LR_SCALE = 0.1
_GRID_BATCH = 64
_RANDOM_POINTS = 4  # random draws of the new effect's params tried next to its grid
_ZOOM_STEPS = 2  # a zoom tries the best point +- 1 and 2 steps on each fine axis (5 values per axis)
_ZOOM_FACTOR = 2.5  # each zoom level divides the step by this


def _warm_start(chain: tuple[str, ...], fitted: Mapping[tuple[str, ...], _Row],
                layout: ParamLayout) -> tuple[np.ndarray, tuple[str, ...], set[str]]:
    """Start of `chain` in [0, 1] `[width]`: each effect from the best-fitting fitted proper sub-chain holding it
    (else 0.5; the gain at 0 dB); that best sub-chain (() when none is fitted); the effects so started."""
    subs = sorted((fitted[c] for c in sub_chains(chain)[:-1] if c in fitted), key=lambda r: r.relative)
    u = np.full(layout.width, 0.5)
    for row in reversed(subs):
        v = _sigmoid(row.z)
        for n in row.chain:
            u[layout.param_slice(n)] = v[layout.param_slice(n)]
    return u, subs[0].chain if subs else (), {n for r in subs for n in r.chain}


def _grid_axes(name: str, layout: ParamLayout, echoes: Sequence[float], warm: bool) -> list[tuple[int, list[float]]]:
    """(column, values in [0, 1]) of effect `name`'s GRID params (the `warm` grid when the effect was fitted before);
    a Delay's echo times are added to its grid."""
    spec, sl = get_spec(name), layout.param_slice(name)
    axes = []
    for pname, sizes in GRID.get(name, {}).items():
        n = sizes[1] if warm else sizes[0]
        values = list((np.arange(n) + 0.5) / n)
        if name == "Delay" and pname == "delay_seconds":
            values += [float(np.clip(spec.param(pname).normalise(t), 0.0, 1.0)) for t in echoes]
        axes.append((sl.start + spec.param_names.index(pname), values))
    return axes


def _start_points(cand: Candidate, layout: ParamLayout, fitted: Mapping[tuple[str, ...], _Row], echoes: Sequence[float],
                  rng: np.random.Generator, n_random: int,
                  ident: Identification | None = None) -> tuple[np.ndarray, int]:
    """Points `[points, width]` in [0, 1] to try first for `cand`, and how many of the first are identified ones:
    the warm start (`_warm_start`; effects fitted in no sub-chain at the candidate's params or their defaults), the
    same with those effects at their read off the pair (`ident`), the other identified starts of the first effect
    its best fitted sub-chain lacks (`Identification.starts`: several for the LFO rates and delay times), then a
    grid over that effect's GRID params, then `n_random` random draws of its params."""
    base, best_sub, warm = _warm_start(cand.chain, fitted, layout)
    given = dict(cand.params) if cand.params is not None else {}
    read = {n: ident.starts(n) for n in cand.chain} if ident is not None else {}
    identified = base.copy()
    for n in cand.chain:
        if n not in warm:
            base = layout.encode((n,), {n: given.get(n, get_spec(n).defaults())}, base, _START_BOUNDS)
            identified = layout.encode((n,), {n: (read.get(n) or [get_spec(n).defaults()])[0]}, identified,
                                       _START_BOUNDS)
    new = [n for n in cand.chain if n not in best_sub]
    if not cand.chain and ident is not None:  # no effect: the output level is the plain gain read off the pair
        base[layout.gain] = float(np.clip(layout.gain_unit(ident.level_db), 0.02, 0.98))
    points = [base]  # the identified starts come next, besides (not instead of) the defaults: a read off a chain of
    if any(read.get(n) for n in cand.chain if n not in warm):  # several effects can be far off for one of them
        points.append(identified)
    if new:
        points += [layout.encode((new[0],), {new[0]: s}, identified, _START_BOUNDS)
                   for s in (read.get(new[0]) or [])[1:]]
    n_identified = len(points)
    if new:
        axes = _grid_axes(new[0], layout, echoes, new[0] in warm)
        for combo in itertools.product(*(v for _, v in axes)):
            u = base.copy()
            for (col, _), value in zip(axes, combo):
                u[col] = value
            points.append(u)
        sl = layout.param_slice(new[0])
        for _ in range(n_random):
            u = base.copy()
            u[sl] = rng.uniform(0.05, 0.95, size=sl.stop - sl.start)
            points.append(u)
    return np.clip(np.stack(points), 1e-3, 1 - 1e-3), n_identified


def _start_rows(cand: Candidate, renderer: ChainRenderer, sig: _Signals, fitted: Mapping[tuple[str, ...], _Row],
                echoes: Sequence[float], rng: np.random.Generator, settings: SearchSettings,
                clock: _Clock, ident: Identification | None = None) -> list[_Row]:
    """The `restarts` best of `_start_points` (the candidate's own params and the best identified start always
    among them), each zoomed in on the added effect's fine params (`_zoom`), as rows to fit."""
    points, n_identified = _start_points(cand, renderer.layout, fitted, echoes, rng, _RANDOM_POINTS, ident)
    if len(points) == 1:
        chosen = list(points)
    else:
        order = list(np.argsort(_evaluate(points, cand.chain, renderer, sig, settings.fit_gain, clock)))
        top = order[: max(1, settings.restarts)]
        chosen = [points[i] for i in top]
        if cand.params is not None and 0 not in top:
            chosen.append(points[0])
        best_identified = min((i for i in order if i < n_identified), key=order.index)
        if best_identified not in top and best_identified != 0:
            chosen.append(points[best_identified])
    best_sub = _warm_start(cand.chain, fitted, renderer.layout)[1]
    added = [n for n in cand.chain if n not in best_sub][:1]
    rows = []
    for u in chosen:
        for name in added:
            u, _ = _zoom(u, cand.chain, name, renderer, sig, settings.fit_gain, clock, _grid_step(name),
                         _ZOOM_LEVELS)
        rows.append(_Row(cand.chain, _logit(u)))
    return rows


_ZOOM_LEVELS = 3  # zoom levels after a grid (its step / 2.5, / 6.25, / 15.6)
#: zoom levels at the last stage (the recording's rate, the whole excerpt), from the grid's step down to step / 98: a
#: fine param 0.02 off (normalised) can leave a Chorus or a Delay at 50 % of the no-effect distance, and the earlier
#: stages' short, low-rate windows cannot place it closer (docs/capture.md)
_FINAL_ZOOM_LEVELS = 5
#: fine params that pedalboard truncates to whole samples (and their effect): at the last stage their zoom goes on
#: until a step is under one sample (`final_zoom_levels`); step / 98 of the Delay's grid is still 10 samples at
#: 44.1 kHz, and one sample off leaves a 0.2 s echo at 27 % of the no-effect distance
SAMPLE_STEPPED: dict[str, str] = {"Delay": "delay_seconds"}


def final_zoom_levels(name: str, rate: int) -> int:
    """The last stage's zoom levels for effect `name` at `rate` Hz: _FINAL_ZOOM_LEVELS, or for a SAMPLE_STEPPED
    param as many as bring the step (the grid's, divided by _ZOOM_FACTOR per level) under one sample."""
    if name not in SAMPLE_STEPPED:
        return _FINAL_ZOOM_LEVELS
    p = get_spec(name).param(SAMPLE_STEPPED[name])
    samples_per_step = (p.maximum - p.minimum) * rate * _grid_step(name)  # the param is linear in [0, 1] units
    return max(_FINAL_ZOOM_LEVELS, math.ceil(math.log(max(samples_per_step, 1.0)) / math.log(_ZOOM_FACTOR)))


def _logit(u: np.ndarray) -> np.ndarray:
    """Logits of `u` in [0, 1] (clipped to [1e-3, 1 - 1e-3])."""
    u = np.clip(u, 1e-3, 1 - 1e-3)
    return np.log(u / (1 - u))


def _grid_step(name: str) -> float:
    """The coarsest step of effect `name`'s GRID over its fine params (in [0, 1] units)."""
    steps = [1.0 / n[0] for p, n in GRID.get(name, {}).items() if (name, p) in FINE]
    return max(steps, default=0.0)


def _fine_columns(name: str, layout: ParamLayout) -> list[int]:
    """Columns of effect `name`'s FINE params in the layout."""
    spec, sl = get_spec(name), layout.param_slice(name)
    return [sl.start + i for i, p in enumerate(spec.param_names) if (name, p) in FINE]


def _zoom(u: np.ndarray, chain: tuple[str, ...], name: str, renderer: ChainRenderer, sig: _Signals, fit_gain: bool,
          clock: _Clock, step: float, levels: int) -> tuple[np.ndarray, float]:
    """Narrow `u` `[width]` down on effect `name`'s fine params: `levels` grids of +-2 steps around the best point,
    the step divided by 2.5 each level. Returns the best point and its distance (inf when nothing was evaluated)."""
    cols = _fine_columns(name, renderer.layout)
    best, best_d = u, math.inf
    if not cols or step <= 0:
        return best, best_d
    offsets = np.arange(-_ZOOM_STEPS, _ZOOM_STEPS + 1)
    for _ in range(levels):
        step /= _ZOOM_FACTOR
        points = np.repeat(best[None], len(offsets) ** len(cols), axis=0)
        for k, combo in enumerate(itertools.product(offsets, repeat=len(cols))):
            points[k, cols] = np.clip(best[cols] + step * np.asarray(combo), 1e-3, 1 - 1e-3)
        d = _evaluate(points, chain, renderer, sig, fit_gain, clock)
        i = int(np.argmin(d))
        if d[i] < best_d:
            best, best_d = points[i], float(d[i])
    return best, best_d


def _evaluate(points: np.ndarray, chain: tuple[str, ...], renderer: ChainRenderer, sig: _Signals, fit_gain: bool,
              clock: _Clock) -> np.ndarray:
    """Distances `[points]` of `chain` at each row of `points` `[points, width]` in [0, 1] (no gradients; inf for the
    points left when the time budget runs out)."""
    out = []
    for i in range(0, len(points), _GRID_BATCH):
        if clock.check() and out:
            out.append(np.full(len(points) - i, np.inf))
            break
        u = torch.tensor(points[i : i + _GRID_BATCH], dtype=torch.float32)
        with torch.no_grad():
            est = renderer.render(sig.x, u, [chain] * u.shape[0], float(sig.rate), sig.native, fit_gain)
            out.append(sig.spectra.distance(est[:, -sig.length :]).numpy())
        clock.work(u.shape[0] * sig.x.shape[-1] * sig.unit)
        clock.report((), 0, 0)
    values = np.concatenate(out).astype(np.float64)
    return np.where(np.isfinite(values), values, np.inf)


class _Clock:
    """Deadline, cancellation and progress bookkeeping of one search.

    Progress: each stage, when it starts, gets a part of what is left of the fraction in proportion to its planned
    work against the planned work of the stages after it (`_Search._planned`, in samples rendered, weighted by
    `_sample_cost`); within it the fraction follows the work done as 1 - exp(-done / planned) of its part (63 % at
    the planned work, never stalled where the plan was short; the next stage starts from there; 1 at the end)."""

    def __init__(self, budget: float | None, should_stop: Callable[[], bool] | None,
                 progress: CaptureProgressFn | None):
        self.t0 = time.perf_counter()
        self.deadline = None if budget is None else self.t0 + float(budget)
        self.should_stop, self.progress = should_stop, progress
        self.out_of_time = False
        self.fraction, self.base, self.share, self.planned, self.done = 0.0, 0.0, 1.0, 1.0, 0.0
        self.stage, self.stages, self.rate, self.window = 0, 1, 0, 0.0
        self.best: tuple[float, tuple[str, ...]] = (math.inf, ())

    def begin_stage(self, index: int, stages: int, planned: float, later: float, rate: int, window: float) -> None:
        """Stage `index` of `stages` starts: its planned work, the later stages' planned work, its signals."""
        self.base = self.fraction
        self.share = (1.0 - self.base) * planned / max(planned + later, 1e-9)
        self.planned, self.done = max(planned, 1e-9), 0.0
        self.stage, self.stages, self.rate, self.window = index, stages, int(rate), float(window)
        self.best = (math.inf, ())

    def work(self, samples: float) -> None:
        """Count `samples` rendered (and measured) in this stage."""
        self.done += samples

    def report(self, rows: Sequence[_Row], step: int, steps: int) -> None:
        """Note the closest of `rows` and call the progress callback."""
        for r in rows:
            if math.isfinite(r.distance) and r.relative < self.best[0]:
                self.best = (r.relative, r.chain)
        within = 1.0 - math.exp(-self.done / self.planned)  # the planned work is a rough guess: never stall on it
        self.fraction = max(self.fraction, self.base + self.share * within)
        if self.progress is not None and math.isfinite(self.best[0]):
            self.progress(CaptureProgress(self.stage, self.stages, step, steps, min(1.0, self.fraction),
                                          self.best[1], self.best[0], self.rate, self.window,
                                          time.perf_counter() - self.t0))

    def finish(self, best: ChainFit) -> None:
        """The last report: the fraction at 1 and the chosen chain with its figure."""
        self.fraction = 1.0
        if self.progress is not None:
            self.progress(CaptureProgress(self.stage, self.stages, 0, 0, 1.0, best.chain, best.relative, self.rate,
                                          self.window, time.perf_counter() - self.t0, done=True))

    def check(self) -> bool:
        """Raise CaptureCancelled when asked to stop; True when the time budget is spent."""
        if self.should_stop is not None and self.should_stop():
            raise CaptureCancelled("capture: cancelled")
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            self.out_of_time = True
        return self.out_of_time


def _lr_scales(layout: ParamLayout) -> np.ndarray:
    """Per-column step scale `[width]`: FINE_LR_SCALE for FINE params, 1 elsewhere."""
    scale = np.ones(layout.width)
    for name in layout.names:
        scale[_fine_columns(name, layout)] = FINE_LR_SCALE
    return scale


def _fit_stage(rows: list[_Row], sig: _Signals, stage: Stage, index: int, renderer: ChainRenderer,
               settings: SearchSettings, clock: _Clock) -> None:
    """Adam on the logits of all `rows` at once for `stage.steps` steps (each row stops early on its own); the
    logits are `w * _lr_scales`, Adam moving `w`."""
    scale = torch.tensor(_lr_scales(renderer.layout), dtype=torch.float32)
    w = torch.tensor(np.stack([r.z for r in rows]), dtype=torch.float32).div(scale).requires_grad_(True)
    opt = torch.optim.Adam([w], lr=stage.lr)
    active, stall = list(range(len(rows))), [0] * len(rows)
    for r in rows:
        r.distance, r.best_z, r.stage, r.no_effect = math.inf, r.z.copy(), index, sig.no_effect
    for step in range(stage.steps + 1):
        if clock.check() and step > 0:
            break
        z = w.index_select(0, torch.tensor(active)) * scale
        dist = sig.spectra.distance(renderer.render(sig.x, torch.sigmoid(z), [rows[i].chain for i in active],
                                                    float(sig.rate), sig.native, settings.fit_gain)[:, -sig.length :])
        still = _track(rows, active, stall, dist.detach().numpy(), z.detach().numpy(),
                       settings.patience if stage.patience is None else stage.patience)
        clock.work(_FIT_COST * len(active) * sig.x.shape[-1] * sig.unit)
        clock.report(rows, step, stage.steps)
        if step == stage.steps or not still or not dist.requires_grad:  # nothing to fit: no effect, no gain
            break
        opt.zero_grad()
        torch.where(torch.isfinite(dist), dist, torch.zeros_like(dist)).sum().backward()
        w.grad.nan_to_num_(0.0, 0.0, 0.0)
        opt.step()
        active = still
    for r in rows:
        r.z = r.best_z.copy()


def _track(rows: list[_Row], active: list[int], stall: list[int], values: np.ndarray, z: np.ndarray,
           patience: int) -> list[int]:
    """Record each active row's best distance and logits; the rows still improving (within `patience` steps)."""
    still = []
    for j, i in enumerate(active):
        d, row = float(values[j]), rows[i]
        stall[i] = 0 if math.isfinite(d) and d < row.distance * (1 - _MIN_IMPROVEMENT) else stall[i] + 1
        if math.isfinite(d) and d < row.distance:
            row.distance, row.best_z = d, z[j].astype(np.float64)
        if math.isfinite(d) and stall[i] < patience:
            still.append(i)
    return still


def _best_per_chain(rows: list[_Row]) -> list[_Row]:
    """The best row of each chain, best first."""
    best: dict[tuple[str, ...], _Row] = {}
    for r in rows:
        if r.chain not in best or r.relative < best[r.chain].relative:
            best[r.chain] = r
    return sorted(best.values(), key=lambda r: r.relative)


def _survivors(ranked: list[_Row], keep: int | None) -> list[_Row]:
    """The best `keep` chains (all when None) and every sub-chain of the best two that was fitted."""
    if keep is None or keep >= len(ranked):
        return ranked
    chosen = ranked[: max(1, keep)]
    by_chain = {r.chain: r for r in ranked}
    for top in ranked[:2]:
        for c in sub_chains(top.chain):
            if c in by_chain and by_chain[c] not in chosen:
                chosen.append(by_chain[c])
    return chosen


#: for the progress fraction: an Adam step (the render, its gradient and the distance's) costs about this many
#: renders; rows stop early after about this fraction of their steps; the screen does about this fraction of the
#: work planned for every candidate (the beam and early stops; 82-90 of 233 M samples on the bundled examples)
_FIT_COST = 3.0
_FIT_DONE = 0.5
_SCREEN_DONE = 0.4


def _sample_cost(stage: Stage) -> float:
    """Relative cost of one sample rendered and measured at `stage` (the render, plus the distance's STFTs: 2.2x
    as much at the later stages' four sizes as at the screen's two, measured)."""
    return 1.0 + sum(stage.hop_divisor * math.log2(n) for n in stage.fft_sizes) / 53.0


def _fine_count(name: str) -> int:
    """How many of effect `name`'s params are FINE."""
    return sum(1 for n, _ in FINE if n == name)


def _zoom_points(chain: Sequence[str], levels: int) -> int:
    """Points a zoom of each effect of `chain` with fine params evaluates over `levels` levels."""
    return sum(levels * (2 * _ZOOM_STEPS + 1) ** _fine_count(n) for n in chain if _fine_count(n))


def _grid_points(name: str) -> int:
    """Points of effect `name`'s first grid (and its random draws)."""
    return math.prod(sizes[0] for sizes in GRID.get(name, {}).values()) + _RANDOM_POINTS + 1
