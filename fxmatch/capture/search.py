"""The capture search: align, take an excerpt, screen every candidate chain length by length, carry the best on
through the later stages, realign with the best chain's twin output, and rank (`capture`)."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import numpy as np
import scipy.signal
import torch

from fxmatch.capture.alignment import (
    MAX_OFFSET_SECONDS,
    MIN_SECONDS,
    Alignment,
    _overlap,
    _shift,
    align,
    echo_times,
    moved,
)
from fxmatch.capture.candidates import Candidate, all_candidates
from fxmatch.capture.fit import (
    _FINAL_ZOOM_LEVELS,
    _FIT_COST,
    _FIT_DONE,
    _SCREEN_DONE,
    _ZOOM_FACTOR,
    _ZOOM_LEVELS,
    FINE,
    _best_per_chain,
    _Clock,
    _evaluate,
    _fine_columns,
    _fit_stage,
    _grid_points,
    _grid_step,
    _logit,
    _Row,
    _sample_cost,
    _sigmoid,
    _Signals,
    _stage_signals,
    _start_rows,
    _survivors,
    _zoom,
    _zoom_points,
    final_zoom_levels,
    no_effect_distance,
)
from fxmatch.capture.results import CaptureProgressFn, CaptureResult, ChainFit, _rank, fit_warnings
from fxmatch.capture.settings import SearchSettings, Stage, stage_rate
from fxmatch.effects import get_spec
from fxmatch.errors import FxmatchInputError
from fxmatch.identify import EVIDENCE_THRESHOLD, Identification, identify
from fxmatch.layout import ParamLayout
from fxmatch.mono import checked_mono
from fxmatch.render import ChainRenderer

#: effects farthest from their own sound at another rate (the Phaser's all-pass cutoffs warp with the rate and its
#: sweep is scaled to it): where a stage runs below the recording's rate, chains holding one are fitted at the
#: recording's rate all the same
NATIVE_RATE_EFFECTS: frozenset[str] = frozenset({"Phaser"})


def _needs_native(chain: Sequence[str]) -> bool:
    """True when `chain` holds a NATIVE_RATE_EFFECTS effect."""
    return any(n in NATIVE_RATE_EFFECTS for n in chain)


def _extending(level: list[Candidate], fitted: Mapping[tuple[str, ...], _Row], n: int,
               beam: int | None) -> list[Candidate]:
    """The candidates of `level` (chains of `n` effects) holding one of the best `beam` fitted chains of `n - 1`
    effects (all of them when `beam` is None or no such chain was fitted)."""
    shorter = sorted((r for r in fitted.values() if len(r.chain) == n - 1), key=lambda r: r.relative)
    if beam is None or not shorter:
        return level
    best = {r.chain for r in shorter[: max(1, beam)]}
    return [c for c in level if any(s in best for s in itertools.combinations(c.chain, n - 1))]


def _prepare(dry: np.ndarray, wet: np.ndarray, sample_rate: int, alignment: Alignment | None,
             max_offset_s: float = MAX_OFFSET_SECONDS) -> tuple[np.ndarray, np.ndarray, Alignment]:
    """Mono float64 dry and wet (`[samples]` each) and their alignment, checked (length, silence, overlap)."""
    if not (isinstance(sample_rate, (int, np.integer)) and sample_rate >= 8000):
        raise FxmatchInputError(f"capture: the sample rate must be an integer of at least 8000 Hz, got {sample_rate}")
    x, y = checked_mono(dry, "capture: the dry signal"), checked_mono(wet, "capture: the wet signal")
    for sig, what in ((x, "dry"), (y, "wet")):
        if sig.size < MIN_SECONDS * sample_rate:
            raise FxmatchInputError(f"capture: the {what} signal lasts {sig.size / sample_rate:.2f} s, too short to "
                                    f"fit anything: at least {MIN_SECONDS:g} s is needed")
    al = alignment if alignment is not None else align(x, y, int(sample_rate), max_offset_s)
    lo, hi = _overlap(x, y, al.offset)
    if hi - lo < MIN_SECONDS * sample_rate:
        raise FxmatchInputError(f"capture: once aligned ({al.offset_ms:+.1f} ms) the recordings overlap for "
                                f"{max(0, hi - lo) / sample_rate:.2f} s; at least {MIN_SECONDS:g} s is needed")
    return x, y, al


def _excerpt(xa: np.ndarray, y: np.ndarray, rate: int, lo: int, hi: int,
             settings: SearchSettings) -> tuple[int, int, int]:
    """(start, length, pre-roll) in samples of the excerpt: the earliest within [lo, hi) holding at least half the
    energy of the loudest; the twins start up to `max_preroll_seconds` before it (from `lo` when they can: the
    LFOs of Chorus and Phaser then start where the wet recording's did)."""
    from fxmatch.inference import SILENCE_DBFS

    length = min(hi - lo, int(settings.excerpt_seconds * rate))
    start = lo + _early_loud_excerpt(y[lo:hi], length, max(1, rate // 20))

    dry = xa[start : start + length]
    if float(np.sqrt(np.mean(dry**2))) < 10 ** (SILENCE_DBFS / 20):
        raise FxmatchInputError("capture: the dry signal is silent where the wet one is loudest")
    return start, length, min(start - lo, int(settings.max_preroll_seconds * rate))


def _early_loud_excerpt(y: np.ndarray, length: int, step: int) -> int:
    """Start of the earliest `length`-sample window of `y` (on a grid of `step`) with half the loudest one's energy."""
    if y.size <= length:
        return 0
    energy = np.concatenate([[0.0], np.cumsum(np.square(y, dtype=np.float64))])
    starts = np.arange(0, y.size - length + 1, step)
    window = energy[starts + length] - energy[starts]
    return int(starts[np.argmax(window >= 0.5 * window.max())])


def capture(
    dry: np.ndarray,
    wet: np.ndarray,
    sample_rate: int,
    candidates: Sequence[Candidate] | None = None,
    *,
    settings: SearchSettings | None = None,
    time_budget: float | None = None,
    progress: CaptureProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    seed: int = 0,
    alignment: Alignment | None = None,
) -> CaptureResult:
    """Find the chain (and params) that turns `dry` into `wet` (float `[samples]` or `[channels, samples]`, one
    rate in Hz; channels are averaged).

    Aligns the two (`align`, unless `alignment` is given), takes an early loud `excerpt_seconds` of the wet signal
    (the twins run from up to `max_preroll_seconds` before it), screens every candidate (default: the 64 chains of
    the default vocabulary) in the first stage, carries the best few on through the later stages (refining the
    alignment to a sample with the best chain's twin output before the last), and ranks them by MR-STFT distance
    with the parsimony rule `choose`. `time_budget` (s) ends the search early (the result then says
    `complete=False`); `should_stop()` is polled every step (CaptureCancelled); `seed` draws the random starts.
    With `settings.fit_gain` (the default) every chain also fits the chain-wide output level (`ChainFit.gain_db`;
    a preset holds it as a trailing Gain, `fxmatch.chains.with_output_level`). With `settings.identify` (the
    default) each candidate effect's params are first read off the aligned pair (`fxmatch.identify`) and the twins
    start from those reads as well as from the grids (`CaptureResult.identification` keeps them).
    """
    settings = settings or SearchSettings()
    cands = list(candidates) if candidates is not None else all_candidates()
    if not cands:
        raise FxmatchInputError("capture: no candidate chains to try")
    if not any(len(c.chain) == 0 for c in cands):
        cands.append(Candidate(()))
    x, y, al = _prepare(dry, wet, sample_rate, alignment, settings.max_offset_seconds)
    search = _Search(x, y, int(sample_rate), al, cands, settings, _Clock(time_budget, should_stop, progress))
    if search.identification is not None and search.identification.linear:
        search.cands = [c for c in search.cands if not c.chain]  # a plain gain of the dry take: no effect to fit
    search.screen(np.random.default_rng(seed))
    for index in range(1, len(settings.stages)):
        if search.clock.out_of_time:
            break
        if alignment is None and index == len(settings.stages) - 1:
            search.realign(index)
        search.carry_on(index)
        if index == len(settings.stages) - 1 and not search.clock.out_of_time:
            search.inherit(index)
    return search.result(len(cands))


class _Search:
    """The state of one search: the aligned signals, the excerpt, the fitted rows per chain and the clock."""

    def __init__(self, x: np.ndarray, y: np.ndarray, rate: int, alignment: Alignment, cands: list[Candidate],
                 settings: SearchSettings, clock: _Clock):
        self.x, self.y, self.rate, self.alignment = x, y, rate, alignment
        self.cands, self.settings, self.clock = cands, settings, clock
        self.xa = _shift(x, alignment.offset, y.size)
        lo, hi = self.overlap = _overlap(x, y, alignment.offset)
        self.start, self.length, self.preroll = _excerpt(self.xa, y, rate, lo, hi, settings)
        self.renderer = ChainRenderer(ParamLayout.of_chains([c.chain for c in cands], output_level=True))
        self.fitted: dict[tuple[str, ...], _Row] = {}
        self.no_effect: dict[int, float] = {}
        self.identification: Identification | None = None
        if settings.identify:  # at most IDENTIFY_SHARE of a time budget
            names = {n for c in cands for n in c.chain}
            budget = None if clock.deadline is None else IDENTIFY_SHARE * (clock.deadline - clock.t0)
            self.identification = identify(self.xa, y, rate, origin=self.start - self.preroll, effects=names,
                                           stop=lambda: clock.check() or (budget is not None and
                                                                          time.perf_counter() - clock.t0 > budget))
        self.echo_window = _echo_window(self.identification, self.preroll / rate)
        self.echoes: list[float] = []  # the echo times read off the pair's impulse response (s; by `screen`)
        if _slow_lfo(self.identification):  # the last stage hears more of a slow LFO's sweep (`SLOW_LFO_HZ`)
            self.length = max(self.length, min(hi - self.start, int(SLOW_LFO_EXCERPT_SECONDS * rate)))

    def _stage(self, index: int) -> Stage:
        """Stage `index` as run on this pair: a window shorter than the identified echo (`_echo_window`) is
        lengthened to hear it."""
        stage = self.settings.stages[index]
        if stage.seconds is not None and stage.seconds < self.echo_window:
            stage = replace(stage, seconds=self.echo_window)
        return stage

    def _signals(self, index: int, native: bool = False) -> _Signals:
        """Stage `index`'s signals (at the recording's own rate when `native`)."""
        stage = self._stage(index)
        sig = _stage_signals(self.xa, self.y, self.rate, self.start, self.length, self.preroll,
                             replace(stage, rate=self.rate) if native else stage, self.settings.gate_noise,
                             self.settings.fit_gain)
        if not native:
            self.no_effect[index] = sig.no_effect
        return sig

    def _stage_pair(self, index: int) -> dict[bool, _Signals]:
        """Stage `index`'s signals at its rate (False) and at the recording's rate (True)."""
        low = self._signals(index)
        return {False: low, True: low if low.rate == self.rate else self._signals(index, native=True)}

    def _fit(self, rows: list[_Row], sigs: dict[bool, _Signals], index: int) -> None:
        """Fit `rows` at stage `index`: those holding a NATIVE_RATE_EFFECTS effect on the native-rate signals."""
        for native in (False, True):
            group = [r for r in rows if _needs_native(r.chain) == native]
            if group:
                _fit_stage(group, sigs[native], self.settings.stages[index], index, self.renderer, self.settings,
                           self.clock)

    def _samples(self, index: int, native: bool = False) -> float:
        """Samples of stage `index`'s dry signal (pre-roll and window; at the recording's rate when `native`)."""
        st = self._stage(index)
        rate = self.rate if native else stage_rate(st, self.rate)
        length = self.length if st.seconds is None else min(self.length, int(st.seconds * self.rate))
        return rate * (length + self.preroll) / self.rate

    def _planned(self, index: int, chains: Sequence[tuple[str, ...]] | None = None) -> float:
        """Rough work of stage `index` (samples rendered) for `chains`, for the progress fraction (None: a later
        stage's likely rows, the closest chains fitted so far, or before any is, average candidates)."""
        st, n = self.settings.stages[index], len(self.cands)
        fit, unit = (st.steps + 1) * _FIT_COST * _FIT_DONE, _sample_cost(st)
        if index == 0:
            restarts = max(1, self.settings.restarts)
            return _SCREEN_DONE * unit * sum(((_grid_points(c.chain[-1]) if c.chain else 1)
                                              + restarts * (_zoom_points(c.chain[-1:], _ZOOM_LEVELS) + fit))
                                             * self._samples(0, _needs_native(c.chain)) for c in self.cands)
        levels = _FINAL_ZOOM_LEVELS if index == len(self.settings.stages) - 1 else 1
        rows = min(n, (st.keep or n) + 3)

        def cost(chain: tuple[str, ...]) -> float:
            points = _zoom_points(chain, levels) + self._read_points(chain) + fit
            return unit * points * self._samples(index, _needs_native(chain))

        if chains is not None:
            return sum(cost(c) for c in chains)
        if self.fitted:
            return sum(cost(r.chain) for r in sorted(self.fitted.values(), key=lambda r: r.relative)[:rows])
        return rows * float(np.mean([cost(c.chain) for c in self.cands]))

    def _begin(self, index: int, chains: Sequence[tuple[str, ...]] | None = None) -> None:
        """Tell the clock that stage `index` starts (its planned work for `chains`, the later stages' guessed)."""
        st = self._stage(index)
        later = sum(self._planned(j) for j in range(index + 1, len(self.settings.stages)))
        window = self.length / self.rate if st.seconds is None else min(self.length / self.rate, st.seconds)
        self.clock.begin_stage(index, len(self.settings.stages), self._planned(index, chains), later,
                               stage_rate(st, self.rate), window)

    def screen(self, rng: np.random.Generator) -> None:
        """Stage 0, chain length by chain length: the candidates extending one of the best `beam` chains one effect
        shorter, each started from the best of a grid around that chain's fit, then fitted all together."""
        self._begin(0)
        sigs = self._stage_pair(0)
        echoes = self.echoes = echo_times(self.xa, self.y, self.rate)
        for n in sorted({len(c.chain) for c in self.cands}):
            level = _extending([c for c in self.cands if len(c.chain) == n], self.fitted, n, self.settings.beam)
            rows = [r for c in level
                    for r in _start_rows(c, self.renderer, sigs[_needs_native(c.chain)], self.fitted, echoes, rng,
                                         self.settings, self.clock, self.identification)]
            self._fit(rows, sigs, 0)
            self.fitted.update({r.chain: r for r in _best_per_chain(rows)})
            if self.clock.out_of_time:
                break

    def realign(self, index: int) -> None:
        """Before stage `index`: move the dry signal by the lag (within +-_REALIGN_SECONDS) at which the best chain's
        twin output matches the wet signal best, when that brings the chain closer at the recording's rate."""
        best = min((r for r in self.fitted.values() if r.stage == index - 1), key=lambda r: r.relative)
        lag = _residual_lag(self.xa, self.y, self.rate, self.start, self.length, self.preroll, best, self.renderer,
                            self.settings.fit_gain)
        if not lag:
            return
        al, u = self.alignment, _sigmoid(best.z)[None]
        before = _evaluate(u, best.chain, self.renderer, self._signals(index, True), self.settings.fit_gain,
                           self.clock)
        xa, self.xa = self.xa, _shift(self.x, al.offset + lag, self.y.size)
        after = _evaluate(u, best.chain, self.renderer, self._signals(index, True), self.settings.fit_gain,
                          self.clock)
        if after[0] < before[0]:
            self.alignment = moved(al, lag, self.x, self.y)
        else:
            self.xa = xa

    def carry_on(self, index: int) -> None:
        """Stage `index`: the best chains so far (and sub-chains of the best two), their Delay, Chorus and Phaser moved
        to the closest of the reads (and echo times) off the pair (`_nearest_read`), zoomed in on their fine params
        at this stage's rate (the last stage from the grid's step down, `final_zoom_levels`), then fitted further."""
        # the chains fitted furthest first: a chain the last stage did not carry on kept its distance on that earlier
        # stage's shorter, lower-rate window, which is not comparable (it read closer than the carried ones did)
        rows = _survivors(sorted(self.fitted.values(), key=lambda r: (-r.stage, r.relative)),
                          self.settings.stages[index].keep)
        self._begin(index, [r.chain for r in rows])
        sigs = self._stage_pair(index)
        last = index == len(self.settings.stages) - 1
        scale = 1.0 if last else _ZOOM_FACTOR ** -_ZOOM_LEVELS
        for row in rows:
            u, sig = _sigmoid(row.z), sigs[_needs_native(row.chain)]
            for name in READ_AGAIN:
                if name in row.chain:
                    u = self._nearest_read(u, row.chain, name, sig)
            for name in row.chain:
                levels = final_zoom_levels(name, sig.rate) if last else 1
                u, _ = _zoom(u, row.chain, name, self.renderer, sig, self.settings.fit_gain, self.clock,
                             _grid_step(name) * scale, levels)
            row.z = _logit(u)
        self._fit(rows, sigs, index)

    def inherit(self, index: int) -> None:
        """After the last stage `index`: each of the INHERIT_ROWS closest chains without one of its effects, at the
        chain's own params for the others, measured on that stage's signals; a candidate sub-chain that reads closer
        so than its own fit takes those params (a longer chain's extra effect may only have bought its shared effects
        another run of fitting: a Chorus at 15 % of no effect alone, at 7.5 % behind a 0.05 dB bell)."""
        sigs = self._stage_pair(index)
        names = {c.chain for c in self.cands}
        rows = sorted((r for r in self.fitted.values() if r.stage == index), key=lambda r: r.relative)
        for row in rows[:INHERIT_ROWS]:
            u = _sigmoid(row.z)
            for i in range(len(row.chain)):
                sub = row.chain[:i] + row.chain[i + 1 :]
                if sub not in names:
                    continue
                sig = sigs[_needs_native(sub)]
                points = self._with_matched_level(u, sub, sig)
                ds = _evaluate(points, sub, self.renderer, sig, self.settings.fit_gain, self.clock)
                k = int(np.argmin(ds))
                d = float(ds[k])
                own = self.fitted.get(sub)
                if own is None or own.stage < index or d < own.distance:
                    self.fitted[sub] = _Row(sub, _logit(points[k]), d, None, index, sig.no_effect)

    def _with_matched_level(self, u: np.ndarray, chain: tuple[str, ...], sig: _Signals) -> np.ndarray:
        """`u` `[width]` and, when the chain fits its output level, `u` with the level at which `chain`'s twin output
        is as loud (RMS) as the target over the stage's window `[points, width]`: an effect taken out of a chain
        (a drive of 5 dB) leaves the others' fitted output level that much off."""
        if not self.settings.fit_gain:
            return u[None]
        layout = self.renderer.layout
        unity = u.copy()
        unity[layout.gain] = layout.gain_unit(0.0)
        with torch.no_grad():
            out = self.renderer.render(sig.x, torch.tensor(unity[None], dtype=torch.float32), [chain],
                                       float(sig.rate), sig.native, True)[0, -sig.length :]
        rms = float(out.square().mean().sqrt())
        if rms <= 1e-12:
            return u[None]
        matched = u.copy()
        matched[layout.gain] = np.clip(layout.gain_unit(20 * np.log10(sig.target_rms / rms)), 1e-3, 1 - 1e-3)
        return np.stack([u, matched])

    def _nearest_read(self, u: np.ndarray, chain: tuple[str, ...], name: str, sig: _Signals) -> np.ndarray:
        """`u` `[width]`, or `u` with effect `name` set to one of the identification's reads of it (all its params),
        or only its FINE params set to a read's (for the Delay also to one of the impulse response's echo times),
        whichever is closest on `sig`: the earlier stages' short, low-rate windows can leave a delay in another comb
        valley than the read (or its feedback well below a sharp comb's, which a low rate blurs), an LFO's rate or a
        chorus's delay in another valley (a 3.74 Hz chorus read at 13.3 ms, fitted at 17.7 ms: 50 % of no effect
        against 15 %), and a stage's zoom (+-2 steps around the row) does not reach them."""
        layout, spec = self.renderer.layout, get_spec(name)
        starts, fine, values = self._reads(name)
        points = [u, *(layout.encode(chain, {name: s}, u, (1e-3, 1 - 1e-3)) for s in starts)]
        for vals in values:
            v = u.copy()
            for col, p, value in zip(_fine_columns(name, layout), fine, vals):
                v[col] = np.clip(spec.param(p).normalise(value), 1e-3, 1 - 1e-3)
            points.append(v)
        if len(points) == 1:
            return u
        d = _evaluate(np.stack(points), chain, self.renderer, sig, self.settings.fit_gain, self.clock)
        return points[int(np.argmin(d))]

    def _reads(self, name: str) -> tuple[list[dict[str, float]], list[str], list[tuple[float, ...]]]:
        """Effect `name`'s reads off the pair (whole param sets), its FINE params, and their distinct values over the
        reads (for the Delay also the impulse response's echo times): what `_nearest_read` tries."""
        read = None if self.identification is None else self.identification.reads.get(name)
        starts = [] if read is None else list(read.starts)
        fine = [p for p in get_spec(name).param_names if (name, p) in FINE]
        values = [tuple(s[p] for p in fine) for s in starts]
        if name == "Delay":  # its only FINE param is the time
            values += [(t,) for t in self.echoes]
        return starts, fine, list(dict.fromkeys(values))

    def _read_points(self, chain: tuple[str, ...]) -> int:
        """Points `_nearest_read` evaluates for `chain` at a later stage (0 when there is nothing to try)."""
        total = 0
        for name in READ_AGAIN:
            if name in chain:
                starts, _, values = self._reads(name)
                total += 1 + len(starts) + len(values) if starts or values else 0
        return total

    def result(self, n_candidates: int) -> CaptureResult:
        """The ranking of every fitted chain (the parsimonious choice first) and the search's figures."""
        layout, last = self.renderer.layout, max(r.stage for r in self.fitted.values())
        prior = {c.chain: c.prior for c in self.cands}
        fits = []
        for r in self.fitted.values():
            u = _sigmoid(r.z)
            gain = float(layout.gain_db(u[layout.gain])) if self.settings.fit_gain else 0.0
            fits.append(ChainFit(r.chain, layout.decode(r.chain, u, within_limits=True), r.distance, r.relative, gain,
                                 r.stage, prior.get(r.chain)))
        ranking = _rank(fits, self.settings.tolerance, self.settings.prior_weight, self.settings.slack)
        ranking, take_relative = self.take_check(ranking)
        result = CaptureResult(ranking, self.alignment,
                               stage_rate(self.settings.stages[last], self.rate), self.start / self.rate,
                               self.length / self.rate, self.no_effect[last], time.perf_counter() - self.clock.t0,
                               n_candidates, not self.clock.out_of_time)
        result.take_relative, result.take_seconds = take_relative, self._take()[1] / self.rate
        result.warnings = fit_warnings(result)
        result.identification = self.identification
        self.clock.finish(result.best)
        return result

    def _take(self) -> tuple[int, int]:
        """(start, length) in samples of the take check's segment: the overlap, from its start (where the LFOs
        start), up to TAKE_CHECK_SECONDS."""
        lo, hi = self.overlap
        return lo, min(hi - lo, int(TAKE_CHECK_SECONDS * self.rate))

    def take_check(self, ranking: list[ChainFit]) -> tuple[list[ChainFit], float | None]:
        """`check_on_take` over `_take`'s segment (none shorter than half a second)."""
        start, length = self._take()
        if length < self.rate // 2 or not ranking:
            return ranking, None
        return check_on_take(self.xa[start : start + length], self.y[start : start + length], self.rate, ranking,
                             self.settings.gate_noise, self.settings.fit_gain)


def check_on_take(dry: np.ndarray, wet: np.ndarray, rate: int, ranking: list[ChainFit],
                  gate: bool = False, fit_gain: bool = True) -> tuple[list[ChainFit], float]:
    """The ranking, and the chosen chain's distance over the take (`dry`, `wet`: aligned `[samples]`) relative to no
    effect: the dry take as given or at the wet take's RMS level (floored as the search's figure is), whichever is
    closer. Each of the first TAKE_CHECK_CHAINS chains is rendered by pedalboard with its output level. When the
    choice is no closer to the wet take than no effect there (an excerpt can hide what the rest of the take shows:
    an LFO fitted on a few seconds drifting off later, a compressor's envelope elsewhere, an output level that
    suits the excerpt only), the closest chain there that is closer takes its place, or else no effect at the
    output level (0 dB, the wet take's RMS level or its own fit) closest over the take: the answer is never
    farther from the wet take than the dry take itself. With `gate` a chain must be closer than no effect under the
    gated distance (the search's; the figure returned) and under the plain one (`mrstft_distance`, the benchmarks'
    score) alike. Without `fit_gain` (the search fitted no output level) no effect is the dry take as given."""
    from fxmatch.audibility import render_chain
    from fxmatch.metrics import mrstft_distance

    target = torch.as_tensor(wet, dtype=torch.float32)
    plain = torch.as_tensor(dry, dtype=torch.float32)
    gates = (gate, False) if gate else (False,)

    def distance(out: np.ndarray | torch.Tensor, g: bool) -> float:
        return float(mrstft_distance(torch.as_tensor(out, dtype=torch.float32)[None], target[None], gate=g))

    def distances(out: np.ndarray | torch.Tensor) -> np.ndarray:
        return np.array([distance(out, g) for g in gates])

    no_effect = np.array([max(no_effect_distance(lambda a, g=g: distance(a, g), plain, target, fit_gain,
                                                 or_plain=True), 1e-12) for g in gates])
    checked = {f.chain: distances(render_chain(f.params, dry, rate) * 10 ** (f.gain_db / 20)) / no_effect
               for f in ranking[:TAKE_CHECK_CHAINS]}
    if checked[ranking[0].chain].max() < 1.0:
        return ranking, float(checked[ranking[0].chain][0])
    closer = sorted((float(r[0]), i) for i, f in enumerate(ranking[:TAKE_CHECK_CHAINS])
                    if (r := checked[f.chain]).max() < 1.0)
    if closer:
        pick = closer[0][1]
        return [ranking[pick], *ranking[:pick], *ranking[pick + 1 :]], closer[0][0]
    pick = next((i for i, f in enumerate(ranking) if not f.chain), None)
    fitted = 0.0 if pick is None else ranking[pick].gain_db
    matched = 20 * np.log10(max(float(target.square().mean().sqrt()), 1e-12)
                            / max(float(plain.square().mean().sqrt()), 1e-12))
    gains = [0.0, matched, fitted] if fit_gain else [0.0]
    rel = {g: distances(plain * 10 ** (g / 20)) / no_effect for g in dict.fromkeys(gains)}
    gain = min(rel, key=lambda g: (float(rel[g].max()), float(rel[g][0])))
    relative = float(rel[gain][0])
    if pick is None:
        none = ChainFit((), [], relative * float(no_effect[0]), relative, gain, ranking[0].stage)
        return [none, *ranking], relative
    none = replace(ranking[pick], gain_db=float(gain))
    return [none, *ranking[:pick], *ranking[pick + 1 :]], relative


#: effects whose identified reads (and for the Delay, echo times) the later stages try again, in this order
#: (`_Search._nearest_read`)
READ_AGAIN: tuple[str, ...] = ("Delay", "Chorus", "Phaser")
#: the effects with an LFO among them (`_slow_lfo`)
LFO_READS: frozenset[str] = frozenset({"Chorus", "Phaser"})
#: `_Search.inherit` hands the params of this many of the last stage's closest chains to their sub-chains
INHERIT_ROWS = 4
#: the take check (`check_on_take`) renders the first chains of the ranking over at most this much of the take
TAKE_CHECK_SECONDS = 20.0
TAKE_CHECK_CHAINS = 6
#: the share of a time budget the identification may take before the twins start
IDENTIFY_SHARE = 0.3
#: a Chorus or Phaser read (evidence at least EVIDENCE_THRESHOLD) slower than this (Hz) lengthens the excerpt to
#: SLOW_LFO_EXCERPT_SECONDS where the take allows: 1.5 s hears a sixth of a 0.1 Hz sweep, and its rate, depth and
#: centre trade off there (the demo's chord: 1.7 % of no effect on the excerpt, 10.9 % over its 3 s; fitted on
#: 3 s, 1.2 % and 1.5 %)
SLOW_LFO_HZ = 0.5
SLOW_LFO_EXCERPT_SECONDS = 3.0
#: a stage's window reaches this far past the identified echo (s), so that the echo lies inside it
ECHO_MARGIN_SECONDS = 0.1


def _slow_lfo(ident: Identification | None) -> bool:
    """Whether the identification read a Chorus or Phaser (`LFO_READS`) slower than SLOW_LFO_HZ with evidence."""
    if ident is None:
        return False
    return any(read.evidence >= EVIDENCE_THRESHOLD and read.params.get("rate_hz", math.inf) < SLOW_LFO_HZ
               for name, read in ident.reads.items() if name in LFO_READS)


def _echo_window(ident: Identification | None, preroll_s: float) -> float:
    """The shortest stage window (s) that hears the identified Delay's first echo: its time plus ECHO_MARGIN_SECONDS,
    less the pre-roll the twins run first (0 when no Delay was read with evidence: the stages' own windows). Without
    it a screen of 0.5 s from the recording's first note cannot tell a 0.7 s echo from none, and the Delay's read,
    exact, ties with every other start."""
    read = None if ident is None else ident.reads.get("Delay")
    if read is None or read.evidence < EVIDENCE_THRESHOLD or not read.starts:
        return 0.0
    return max(0.0, float(read.starts[0]["delay_seconds"]) + ECHO_MARGIN_SECONDS - preroll_s)


#: how far the twins' output may move the alignment after the screen (s)
_REALIGN_SECONDS = 0.003


def _residual_lag(xa: np.ndarray, y: np.ndarray, rate: int, start: int, length: int, preroll: int, row: _Row,
                  renderer: ChainRenderer, fit_gain: bool) -> int:
    """Lag (samples) by which `row`'s twin output of the aligned dry `xa` best matches `y` over the excerpt."""
    w = int(_REALIGN_SECONDS * rate)
    first = start - preroll - w
    seg = _shift(xa, -first, preroll + length + 2 * w)
    x = torch.from_numpy(seg.astype(np.float32))[None]
    u = torch.from_numpy(_sigmoid(row.z).astype(np.float32))[None]
    with torch.no_grad():
        out = renderer.render(x, u, [row.chain], float(rate), None, fit_gain)[0].numpy().astype(np.float64)
    target = y[start : start + length]
    ref = out[preroll:]
    values = scipy.signal.correlate(ref, target, mode="valid", method="fft")
    return w - int(np.argmax(values))
