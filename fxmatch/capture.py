"""Capture: with the dry signal known, find the effect chain (and its params) that turns it into the wet one.

Given the dry recording x (e.g. a guitar's DI) and the wet one y (the pedal's output), `capture` first aligns them
(the earliest strong peak of a regularised dry-to-wet impulse response within +-1 s, sharpened to a sample) and
refuses a pair whose band envelopes do not correlate (not the same performance). It then fits the candidate chains
through the differentiable twins on a short excerpt: chain length by chain length, each chain started from a grid
around the fit of the chain one effect shorter (a beam of the best ones extended), all chains of a length fitted in
one batch (Adam on logits of the normalised params, multi-resolution STFT loss, early stop); the best few go on at
higher rates (the Phaser always at the recording's own rate), the alignment is refined with the best chain's twin
output, and the shortest chain within a tolerance of the closest wins (parsimony; with the encoder's probabilities,
"closest" counts its log-probability of each chain too: `choose`). Layers: imports only fxmatch,
torch, numpy and scipy.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.signal
import torch

from fxmatch.effects import KNOWN_EFFECTS, get_spec
from fxmatch.errors import FxmatchInputError
from fxmatch.identify import Identification, identify, impulse_response
from fxmatch.layout import GAIN_RANGE_DB, ParamLayout
from fxmatch.metrics import DEFAULT_FFT_SIZES, gate_floors, mrstft_from_magnitudes, stft_magnitudes
from fxmatch.refine import RefineCancelled, resample
from fxmatch.render import ChainRenderer
from fxmatch.vocabulary import ChainVocabulary

#: how far apart the dry and wet recordings may start (s)
MAX_OFFSET_SECONDS = 1.0
#: below this correlation of the band envelopes (log energy in 16 bands, 10 ms frames) the two recordings are not
#: the same performance
MIN_CORRELATION = 0.3
#: a peak of the dry-to-wet impulse response earlier than the strongest one wins when it reaches this fraction of
#: it (the direct sound before a louder echo or chorus voice)
EARLY_PEAK_RATIO = 0.5
#: the alignment looks at most at this much audio (s)
ALIGN_SECONDS = 30.0
_N_BANDS = 16
_SHARPEN_SECONDS = 0.001  # the whitened search around the chosen peak (s)
_SHARPEN_FLOOR = 1e-3  # its regularisation: nearly a phase-only (PHAT) correlation


#: an offset within this fraction of the window's half-width (at least 5 ms) of its edge is reported as pinned there
#: (a performance further apart than the window leaves the best peak 0-20 ms inside the edge)
EDGE_FRACTION = 0.02
#: where the windowed search fails, is pinned at its edge, or one file is longer than the other by more than the
#: window, the whole take is searched too (`_whole_take_lags`: onsets at every lag, refined by the windowed search)
#: the whole-take search's answer must correlate at least this much (its best of many offsets runs higher by chance:
#: 0.31 for plucks against noise bursts)
WHOLE_TAKE_MIN_CORRELATION = 0.5
_FINE_SECONDS = 0.03  # the windowed search around each of the whole-take search's lags (s; its frames are 10 ms)


@dataclass(frozen=True)
class Alignment:
    """Where the wet recording lies against the dry one: `wet[n] ~ dry[n - offset]` (samples at `sample_rate`)."""

    offset: int
    sample_rate: int
    correlation: float
    #: the wet recording's level against the dry one's over their overlap (RMS, dB)
    level_db: float = 0.0
    #: the windowed search's half-width (s)
    window_s: float = MAX_OFFSET_SECONDS
    #: the offset is at the edge of the window searched: the recordings may start further apart
    at_edge: bool = False
    #: found by the whole-take search (the shorter file placed anywhere in the longer one)
    whole_take: bool = False
    #: correlation of the aligned recordings' partials (`partials_correlation`; None: not measured)
    partials: float | None = None

    @property
    def offset_ms(self) -> float:
        """The offset in milliseconds (positive: the wet recording starts later)."""
        return 1000.0 * self.offset / self.sample_rate


def _mono(x: np.ndarray, what: str) -> np.ndarray:
    """`[samples]` or `[channels, samples]` float audio as float64 `[samples]` (channels averaged), checked."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 2:
        a = a.mean(axis=0)
    if a.ndim != 1 or a.size == 0:
        raise FxmatchInputError(f"capture: the {what} signal must be audio shaped [samples] or [channels, samples]")
    if not np.all(np.isfinite(a)):
        raise FxmatchInputError(f"capture: the {what} signal contains NaN or infinite samples")
    return a


def _frame_size(sample_rate: int) -> tuple[int, int]:
    """(STFT size, hop) of the band envelopes: 10 ms hops, windows of at least 2.5 hops."""
    hop = max(1, sample_rate // 100)
    return max(256, 1 << int(np.ceil(np.log2(2.5 * hop)))), hop


def band_levels(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Log energy of `x` `[samples]` in 16 log-spaced bands (80 Hz - 10 kHz) per 10 ms frame `[16, frames]`."""
    size, hop = _frame_size(sample_rate)
    f, _, spec = scipy.signal.stft(x, sample_rate, nperseg=size, noverlap=size - hop, boundary=None, padded=False)
    power = np.abs(spec) ** 2
    edges = np.geomspace(80.0, min(10_000.0, sample_rate / 2), _N_BANDS + 1)
    energy = np.stack([power[(f >= lo) & (f < hi)].sum(axis=0) for lo, hi in itertools.pairwise(edges)])
    return np.log(energy + 1e-6 * max(float(energy.max()), 1e-30))


def band_envelopes(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """`band_levels` of `x` with the mean removed per band."""
    level = band_levels(x, sample_rate)
    return level - level.mean(axis=1, keepdims=True)


def envelope_correlation(x: np.ndarray, y: np.ndarray, sample_rate: int, offset: int) -> float:
    """Correlation of the band envelopes of `x` and of `y` advanced by `offset` samples (1: same notes, same times),
    over the length of the shorter (what `y` lacks there is silence: a partial overlap correlates less)."""
    a = band_envelopes(x, sample_rate)
    b = band_envelopes(_shift(y, -offset, y.size), sample_rate)
    n = min(a.shape[1], b.shape[1])
    a, b = a[:, :n], b[:, :n]
    return float(np.sum(a * b) / (np.sqrt(np.sum(a * a) * np.sum(b * b)) + 1e-30))


def overlap_correlation(x: np.ndarray, y: np.ndarray, sample_rate: int, offset: int) -> float:
    """Correlation of the band envelopes of `y` and of `x` delayed by `offset` samples over their overlap only (the
    whole-take search's measure; 0 when they overlap for less than an envelope frame)."""
    lo, hi = _overlap(x, y, offset)
    if hi - lo < _frame_size(sample_rate)[0]:
        return 0.0
    a = band_envelopes(x[lo - offset : hi - offset], sample_rate)
    b = band_envelopes(y[lo:hi], sample_rate)
    return float(np.sum(a * b) / (np.sqrt(np.sum(a * a) * np.sum(b * b)) + 1e-30))


def partials_correlation(x: np.ndarray, y: np.ndarray, sample_rate: int, offset: int) -> float | None:
    """Correlation of the spectral fine structure of `y` and of `x` delayed by `offset` samples over their overlap
    (each ~90 ms frame's log spectrum less its 200 Hz moving average, 80 Hz - 5 kHz, where both are within 60 dB of
    their loudest): where the partials of the notes lie. Near 1 for one take through effects that keep its notes
    (EQ, compression, mixed reverb), 0.1-0.9 through distortion, chorus or phaser; near 0 for two performances
    (another instrument, other notes), even at the same tempo. None when they overlap for less than two frames."""
    n = 1 << round(math.log2(0.093 * sample_rate))
    lo, hi = _overlap(x, y, offset)
    hi = min(hi, lo + int(ALIGN_SECONDS * sample_rate))
    if hi - lo < 2 * n:
        return None
    parts = []
    for sig in (x[lo - offset : hi - offset], y[lo:hi]):
        f, _, spec = scipy.signal.stft(sig, sample_rate, nperseg=n, noverlap=3 * n // 4)
        power = np.abs(spec) ** 2
        level = 10.0 * np.log10(power + 1e-12 * float(power.max()) + 1e-30)
        smooth = scipy.ndimage.uniform_filter1d(level, max(3, round(200.0 * n / sample_rate) | 1), axis=0,
                                                mode="nearest")
        band = (f >= 80.0) & (f <= 5000.0)
        parts.append(((level - smooth)[band], level[band]))
    (fx, lx), (fy, ly) = parts
    keep = (lx > lx.max() - 60.0) & (ly > ly.max() - 60.0)
    a, b = fx[keep] - fx[keep].mean(), fy[keep] - fy[keep].mean()
    return float(np.sum(a * b) / (np.sqrt(np.sum(a * a) * np.sum(b * b)) + 1e-30)) if keep.sum() > 1 else None


def _candidate_lags(lags: np.ndarray, taps: np.ndarray) -> list[int]:
    """Peaks of |taps| reaching EARLY_PEAK_RATIO of the largest, earliest first, then the largest one."""
    mag = np.abs(taps)
    peaks, _ = scipy.signal.find_peaks(np.concatenate([[0.0], mag, [0.0]]), height=EARLY_PEAK_RATIO * mag.max())
    ordered = [int(lags[i]) for i in sorted(peaks - 1, key=lambda i: lags[i])]  # (was lags[i - 1]: a peak at the
    # window's first lag came out as its last)
    return [*ordered[:4], int(lags[np.argmax(mag)])]


def _align_window(x: np.ndarray, y: np.ndarray, sample_rate: int, max_lag: int, min_correlation: float,
                  measure: Callable[[np.ndarray, np.ndarray, int, int], float] | None = None,
                  earliest: bool = True) -> tuple[int | None, float]:
    """The windowed search: (offset, envelope correlation) of the earliest strong peak of the dry-to-wet impulse
    response within +-max_lag (the largest first unless `earliest`) whose envelopes correlate by `min_correlation`
    (`measure`, default `envelope_correlation`), sharpened to a sample; (None, the best correlation seen) when none
    does."""
    measure = measure or envelope_correlation
    lags, taps = impulse_response(x, y, max_lag)
    best = -np.inf
    candidates = _candidate_lags(lags, taps)
    for lag in candidates if earliest else [candidates[-1], *candidates[:-1]]:
        corr = measure(x, y, sample_rate, lag)
        if corr >= min_correlation:
            return _sharpen(x, y, lag, sample_rate), corr
        best = max(best, corr)
    return None, float(best)


def _whole_take_lags(x: np.ndarray, y: np.ndarray, sample_rate: int, count: int = 3) -> list[int]:
    """Up to `count` offsets (samples, 10 ms resolution, best first, at least 50 ms apart) where the onsets of `y`
    and of `x` delayed by the offset match best: the correlation over their overlap of the band levels' frame-to-frame
    changes (a note's decay, a straight line in log energy, would match itself at any shift), at every offset where
    they overlap for at least half the shorter recording (or MIN_SECONDS, or all of it)."""
    a, b = np.diff(band_levels(x, sample_rate), axis=1), np.diff(band_levels(y, sample_rate), axis=1)
    a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)  # smaller sums, less cancellation
    n_a, n_b = a.shape[1], b.shape[1]
    shortest = min(n_a, n_b)
    need = min(shortest, max(int(MIN_SECONDS * 100), shortest // 2))
    if need < 2:
        return []
    ks = np.arange(-(n_a - 1), n_b)  # wet frame j against dry frame j - k
    lo, hi = np.maximum(0, ks), np.minimum(n_b, n_a + ks)
    count_ = hi - lo
    valid = count_ >= need
    if not valid.any():
        return []
    ks, lo, hi, n = ks[valid], lo[valid], hi[valid], count_[valid].astype(np.float64)

    def sums(v: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
        c = np.concatenate([np.zeros((v.shape[0], 1)), np.cumsum(v, axis=1)], axis=1)
        return c[:, stop] - c[:, start]

    s_a, s_aa = sums(a, lo - ks, hi - ks), sums(a * a, lo - ks, hi - ks)
    s_b, s_bb = sums(b, lo, hi), sums(b * b, lo, hi)
    full = np.stack([scipy.signal.correlate(b[i], a[i], mode="full", method="fft") for i in range(a.shape[0])])
    s_ab = full[:, ks + n_a - 1]
    cov = np.sum(s_ab - s_a * s_b / n, axis=0)
    var_a, var_b = np.sum(s_aa - s_a**2 / n, axis=0), np.sum(s_bb - s_b**2 / n, axis=0)
    # a stretch without any change (digital silence) has no onsets to match: its rounding errors are no peak
    steady = (var_a < 1e-6 * a.shape[0] * n) | (var_b < 1e-6 * b.shape[0] * n)
    corr = np.where(steady, -1.0, cov / np.sqrt(np.maximum(var_a * var_b, 1e-30)))
    hop, out = _frame_size(sample_rate)[1], []
    for i in np.argsort(corr)[::-1]:
        if corr[i] <= 0 or len(out) == count:
            break
        if all(abs(int(ks[i]) - k) >= 5 for k in out):
            out.append(int(ks[i]))
    return [k * hop for k in out]


def align(dry: np.ndarray, wet: np.ndarray, sample_rate: int, max_offset_s: float = MAX_OFFSET_SECONDS,
          min_correlation: float = MIN_CORRELATION, whole_take: bool = True) -> Alignment:
    """Offset of `wet` against `dry` (float `[samples]` or `[channels, samples]`, one rate in Hz).

    The windowed search looks within +-max_offset_s: the candidates are the strong peaks of the dry-to-wet impulse
    response (Wiener deconvolution), earliest first (the direct sound, not a louder echo); the first whose band
    envelopes correlate by at least `min_correlation` wins. With `whole_take`, where that finds nothing, is pinned
    at its window's edge, or one recording is longer than the other by more than the window (an excerpt), the
    shorter one is also placed anywhere in the longer (`_whole_take_lags`, each refined by the windowed search
    +-30 ms around it): the lag whose envelopes correlate best over the overlap wins (at least
    WHOLE_TAKE_MIN_CORRELATION for a whole-take lag; a pinned windowed answer only when nothing else does).
    FxmatchInputError when no offset correlates (not the same performance) or either signal is silent.
    """
    x, y = _mono(dry, "dry"), _mono(wet, "wet")
    for sig, what in ((x, "dry"), (y, "wet")):
        if float(np.max(np.abs(sig))) < 1e-5:
            raise FxmatchInputError(f"capture: the {what} signal is silent")
    rate = int(sample_rate)
    keep, max_lag = int(ALIGN_SECONDS * rate), int(max_offset_s * rate)
    lag, corr = _align_window(x[:keep], y[:keep], rate, max_lag, min_correlation)
    at_edge = lag is not None and abs(lag) >= max_lag - max(EDGE_FRACTION * max_lag, 0.005 * rate)
    found_whole = False
    if whole_take and (lag is None or at_edge or abs(x.size - y.size) > max_lag):
        # each lag the whole-take search proposes, refined by the windowed search +-_FINE_SECONDS around it on the
        # span they share there, competes with the windowed answer (unless that failed or is pinned) on their
        # envelopes' correlation over the overlap
        best = -1.0 if lag is None or at_edge else overlap_correlation(x, y[:keep], rate, lag)
        for c in _whole_take_lags(x[: keep + max(0, x.size - y.size)], y[:keep], rate):
            lo, hi = _overlap(x, y, c)
            hi = min(hi, lo + keep)
            fine, _ = _align_window(x[lo - c : hi - c], y[lo:hi], rate, int(_FINE_SECONDS * rate), min_correlation,
                                    overlap_correlation, earliest=False)  # a short excerpt's response repeats with
            # the pitch period: its largest peak, not the earliest strong one
            if fine is None or (lag is not None and abs(c + fine - lag) <= _SHARPEN_SECONDS * rate):
                continue
            score = overlap_correlation(x, y[:keep], rate, c + fine)
            if score >= max(min_correlation, WHOLE_TAKE_MIN_CORRELATION) and score > best:
                best, lag, corr, at_edge, found_whole = score, c + fine, score, False, True
    if lag is None:
        raise FxmatchInputError(
            f"capture: the dry and wet recordings do not look like the same performance (band envelopes correlate "
            f"{corr:.2f} at best, below {min_correlation:.2f}, within +-{max_offset_s:g} s"
            + (", nor with the shorter placed anywhere along the longer" if whole_take else "") + "); check the files")
    return Alignment(lag, rate, corr, level_db(x, y, lag), float(max_offset_s), bool(at_edge), found_whole,
                     partials_correlation(x, y, rate, lag))


def moved(al: Alignment, lag: int, dry: np.ndarray, wet: np.ndarray) -> Alignment:
    """`al` moved by `lag` samples, its level re-measured on `dry` and `wet` (`[samples]`), the rest kept."""
    return replace(al, offset=al.offset + lag, level_db=level_db(dry, wet, al.offset + lag))


def _sharpen(x: np.ndarray, y: np.ndarray, lag: int, sample_rate: int) -> int:
    """The largest peak of a nearly whitened impulse response within _SHARPEN_SECONDS of `lag` (samples)."""
    w = max(1, int(_SHARPEN_SECONDS * sample_rate))
    lags, taps = impulse_response(_shift(x, lag, y.size), y, w, floor=_SHARPEN_FLOOR)
    return lag + int(lags[np.argmax(np.abs(taps))])


def level_db(x: np.ndarray, y: np.ndarray, offset: int) -> float:
    """RMS level of `y` against `x` delayed by `offset` samples, over their overlap (dB; 0 without an overlap)."""
    lo, hi = _overlap(x, y, offset)
    if hi <= lo:
        return 0.0
    xa = _shift(x, offset, y.size)
    num, den = float(np.mean(y[lo:hi] ** 2)), float(np.mean(xa[lo:hi] ** 2))
    return 10.0 * math.log10(max(num, 1e-20) / max(den, 1e-20))


def _shift(x: np.ndarray, offset: int, n: int) -> np.ndarray:
    """`x` delayed by `offset` samples (advanced when negative), zero-padded or cut to `n` samples."""
    out = np.zeros(n, dtype=x.dtype)
    if offset >= 0:
        part = x[: max(0, n - offset)]
        out[offset : offset + part.size] = part
    else:
        part = x[-offset : -offset + n]
        out[: part.size] = part
    return out


# ----------------------------------------------------------------------------------------------------------------
# candidates and results


@dataclass(frozen=True)
class Candidate:
    """A chain to try, optionally with initial params in units (e.g. the encoder's estimate) per effect."""

    chain: tuple[str, ...]
    params: tuple[tuple[str, dict[str, float]], ...] | None = None
    #: the encoder's probability of the chain (0-1), used by the choice when `SearchSettings.prior_weight` > 0
    prior: float | None = None


@dataclass(frozen=True)
class ChainFit:
    """One fitted chain: params in units, MR-STFT distance, distance over the no-effect one, output gain (dB)."""

    chain: tuple[str, ...]
    params: list[tuple[str, dict[str, float]]]
    distance: float
    relative: float
    gain_db: float
    #: how far the search took this chain (0: the screen only; the last stage: fitted longest, at the highest rate)
    stage: int
    #: the encoder's probability of the chain (None: not known)
    prior: float | None = None

    @property
    def label(self) -> str:
        return " -> ".join(self.chain) if self.chain else "no effect"


@dataclass(frozen=True)
class CaptureProgress:
    """Where a running search is: stage (0-based) of stages, Adam step of steps (0 of 0 while grids and zooms are
    evaluated), overall fraction (never decreasing; 1 at the end), and the closest chain so far in this stage.

    `best_relative` is measured on this stage's signals (`rate` Hz, the excerpt's first `window_seconds`), so it
    never rises within a stage but may between stages (a longer window at a higher rate is a harder target); the
    last report (`done`) carries the chosen chain and its figure as the result ranks it."""

    stage: int
    stages: int
    step: int
    steps: int
    fraction: float
    best_chain: tuple[str, ...]
    best_relative: float
    rate: int = 0
    window_seconds: float = 0.0
    elapsed: float = 0.0
    done: bool = False


#: progress(report) after each optimisation step; its return value is ignored
CaptureProgressFn = Callable[[CaptureProgress], None]


class CaptureCancelled(RefineCancelled):
    """Raised by `capture` when its `should_stop` callback returns True."""


@dataclass
class CaptureResult:
    """A finished search: the ranking (the chosen chain first), the alignment, the excerpt used and the costs."""

    ranking: list[ChainFit]
    alignment: Alignment
    sample_rate: int
    excerpt_start_s: float
    excerpt_seconds: float
    no_effect_distance: float
    seconds: float
    n_candidates: int
    #: False when the time budget ended the search before its last stage finished
    complete: bool
    #: what the user should know, one line each (`fit_warnings`)
    warnings: list[str] = field(default_factory=list)
    #: what was read off the pair before the search (`fxmatch.identify`; None: not asked for)
    identification: Identification | None = None

    @property
    def best(self) -> ChainFit:
        return self.ranking[0]

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON-ready summary (the first `top` chains of the ranking; all when None)."""
        return {
            "chain": list(self.best.chain),
            "offset_samples": self.alignment.offset,
            "offset_ms": round(self.alignment.offset_ms, 3),
            "alignment_correlation": round(self.alignment.correlation, 4),
            "partials_correlation": None if self.alignment.partials is None else round(self.alignment.partials, 4),
            "offset_at_edge": self.alignment.at_edge,
            "offset_window_s": self.alignment.window_s,
            "whole_take_search": self.alignment.whole_take,
            "level_db": round(self.alignment.level_db, 3),
            "gain_db": round(self.best.gain_db, 3),
            "distance": round(self.best.distance, 5),
            "relative_distance": round(self.best.relative, 5),
            "sample_rate": self.sample_rate,
            "excerpt_start_s": round(self.excerpt_start_s, 3),
            "excerpt_seconds": round(self.excerpt_seconds, 3),
            "seconds": round(self.seconds, 3),
            "candidates": self.n_candidates,
            "complete": self.complete,
            "warnings": list(self.warnings),
            "identification": None if self.identification is None else self.identification.to_dict(),
            "ranking": [{"chain": list(f.chain), "distance": round(f.distance, 5), "relative": round(f.relative, 5),
                         "gain_db": round(f.gain_db, 3), "stage": f.stage,
                         "params": [{"effect": n, "params": {k: round(v, 6) for k, v in p.items()}}
                                    for n, p in f.params]}
                        for f in self.ranking[:top]],
        }


#: above this distance (relative to no effect) the closest chain is called far, with a warning (as `estimate --dry`)
FAR_RELATIVE = 0.5
#: below this correlation of the aligned recordings' partials (`partials_correlation`) the pair is said not to look
#: like one performance. Measured (docs/capture.md): -0.20 to 0.23 for the 9 pairs of different performances that
#: the alignment accepts among the bundled examples crossed (other instruments, similar tempo); for those takes
#: through distortion (40 dB), delay, half-mix chorus, phaser or reverb 0.26-1.0 (a wet-only reverb on drums
#: 0.09), and the examples' own pairs 0.67-1.0; but 0.12-0.25 through a full-mix chorus and 0.07-0.46 through
#: distortion -> chorus -> reverb (a false alarm there: the warning says so). The spectra's coherence did no better (0.0-0.1 on both sides of that overlap).
MIN_PARTIALS = 0.2


def fit_warnings(result: CaptureResult) -> list[str]:
    """What the user should know about a search, one line each: the offset pinned at its window's edge, recordings
    whose partials do not match (not one performance?), the closest chain still far from the wet recording."""
    al, out = result.alignment, []
    if al.at_edge:
        out.append(f"the offset ({al.offset_ms:+.1f} ms) is at the edge of the +-{al.window_s:g} s window the "
                   "alignment searched: the recordings may start further apart; trim the start of the one that "
                   "starts earlier (or widen the window: capture --max-offset S)")
    if al.partials is not None and al.partials < MIN_PARTIALS:
        out.append(f"the dry and wet recordings may not be one performance: once aligned, their partials correlate "
                   f"{al.partials:.2f} (one take through effects: usually above {MIN_PARTIALS:g}; another instrument "
                   "or take: near 0; a heavy chorus lowers it too); check the files")
    if result.best.relative > FAR_RELATIVE:
        out.append(f"the closest chain is still far from the wet recording ({100 * result.best.relative:.0f} % of the "
                   "no-effect distance): the effect may be outside the vocabulary, or the dry recording may not be "
                   "this one's; listen before you use it")
    return out


def sub_chains(chain: Sequence[str]) -> list[tuple[str, ...]]:
    """Every chain made of some of `chain`'s effects in its order, the empty chain and `chain` included."""
    names = tuple(chain)
    return [c for n in range(len(names) + 1) for c in itertools.combinations(names, n)]


#: a drive's tone stage (issue 26): real drive pedals and amps filter after the clipping, which a Distortion alone
#: cannot express; capture tries the Distortion followed by this effect even where the vocabulary lacks it
TONE_STAGE = "LowpassFilter"


def tone_stage_chains(vocab: ChainVocabulary) -> list[tuple[str, ...]]:
    """The chains of `vocab`'s effects plus TONE_STAGE (canonical order, same maximum length) in which TONE_STAGE
    directly follows Distortion and which `vocab` does not already hold (7 for the default vocabulary)."""
    if TONE_STAGE in vocab.effect_names or "Distortion" not in vocab.effect_names:
        return []
    names = [n for n in KNOWN_EFFECTS if n in vocab.effect_names or n == TONE_STAGE]
    grown = ChainVocabulary(effects=tuple(get_spec(n) for n in names), max_length=vocab.max_length,
                            allow_permutations=vocab.allow_permutations)
    return [c for c in grown.chains
            if TONE_STAGE in c and c.index(TONE_STAGE) > 0 and c[c.index(TONE_STAGE) - 1] == "Distortion"]


def all_candidates(vocabulary: ChainVocabulary | None = None) -> list[Candidate]:
    """Every chain of the vocabulary (the default one: 64 chains) and its drive's tone-stage chains
    (`tone_stage_chains`), without initial params."""
    vocab = vocabulary or ChainVocabulary.default()
    return [Candidate(tuple(c)) for c in (*vocab.chains, *tone_stage_chains(vocab))]


def candidates_from_ranked(ranked: Sequence[Any], k: int) -> list[Candidate]:
    """The first `k` chains of an encoder's ranking (objects with `.chain` and `.params`, e.g.
    `inference.ChainEstimate`) and all their sub-chains, each with the encoder's params of its effects and its
    probability of the chain (from the whole ranking; None for a chain the ranking lacks)."""
    ranked = list(ranked)
    prior = {tuple(e.chain): float(getattr(e, "probability", math.nan)) for e in ranked}
    out: dict[tuple[str, ...], Candidate] = {}
    for estimate in ranked[: max(1, int(k))]:
        params = dict(estimate.params)
        for chain in sub_chains(estimate.chain):
            if chain not in out:
                p = prior.get(chain, math.nan)
                out[chain] = Candidate(chain, tuple((n, dict(params[n])) for n in chain),
                                       None if math.isnan(p) else p)
    return sorted(out.values(), key=lambda c: (len(c.chain), c.chain))


# ----------------------------------------------------------------------------------------------------------------
# the batched fit


@dataclass(frozen=True)
class Stage:
    """One round of the search: signals at most `rate` Hz (None: the recording's own), the best `keep` chains so
    far (None: all), Adam steps, learning rate, and the loss: MR-STFT at `fft_sizes` with hops of
    `n_fft / hop_divisor` (4: `mrstft_distance`)."""

    rate: int | None
    keep: int | None
    steps: int
    lr: float = 0.1
    fft_sizes: tuple[int, ...] = DEFAULT_FFT_SIZES
    hop_divisor: int = 4
    #: the stage uses the first `seconds` of the excerpt (None: all of it)
    seconds: float | None = None


#: the first stage screens every chain (by length, longer chains starting from the shorter ones' fits) with a cheap
#: loss at 16 kHz on the excerpt's first 0.5 s; the best 16 go on with the real MR-STFT distance at 24 kHz on its
#: first 1.0 s, then the best 3 at the input's rate (<= 48 kHz) on all of it. The short windows first widen the
#: narrow valleys of LFO rates and delays (a rate error shifts the LFO's phase in proportion to the time since the
#: recording's start) and halve the CPU time (12 sampled-instrument examples, k = 64: 35.8 -> 19.6 s median, as
#: many chains named; README). The low rates bias the first two stages: pedalboard's effects do not sound the same
#: at another rate (JUCE's Reverb damps per sample, its filters warp), so at 16 kHz the true chain and settings sit
#: 3-48 % (median by effect; Reverb worst) of the no-effect distance from the target instead of ~1 %. Running every
#: stage at the input's rate (`Stage(None, ...)`) was measured against this on the same 12 examples with v5's
#: ranking: 8 chains named instead of 9, MR-STFT 27.5 % instead of 29.6 % (median), 27 % more CPU: no gain shown.
DEFAULT_STAGES: tuple[Stage, ...] = (
    Stage(16000, None, 20, 0.15, (2048, 512), 2, 0.5),
    Stage(24000, 16, 30, 0.1, seconds=1.0),
    Stage(48000, 3, 20, 0.05),
)


def stage_rate(stage: Stage, native: int) -> int:
    """The rate (Hz) `stage` runs the twins at for a recording at `native` Hz."""
    return native if stage.rate is None else min(int(stage.rate), native)


@dataclass(frozen=True)
class SearchSettings:
    """How `capture` searches: excerpt and longest pre-roll (s), stages, starts fitted per chain in the first stage,
    chains of each length extended to the next (None: all), parsimony tolerance (relative distance), whether an
    output gain is fitted, early-stop patience (steps), weight of the encoder's log-probability in the choice
    (`choose`; 0: the distance alone), alignment window, noise gate."""

    excerpt_seconds: float = 1.5
    max_preroll_seconds: float = 1.0
    stages: tuple[Stage, ...] = DEFAULT_STAGES
    restarts: int = 2
    beam: int | None = 4
    tolerance: float = 0.05
    #: every chain fits the chain-wide output level (a trailing Gain in the preset; not a chain choice)
    fit_gain: bool = True
    patience: int = 6
    prior_weight: float = 0.01
    #: the alignment's window (+- s; `align`); an excerpt is also placed anywhere in the longer file
    max_offset_seconds: float = MAX_OFFSET_SECONDS
    #: the distance ignores log-magnitude differences below the target's noise floor (`metrics.gate_floors`): a
    #: dither or hiss floor no chain can reproduce then does not dominate the figure (False: the fixed 1e-7 floor)
    gate_noise: bool = True
    #: read each effect's params off the aligned pair first (`fxmatch.identify`) and start the twins from them
    identify: bool = True


#: the shortest overlap of the aligned recordings that a search accepts (s)
MIN_SECONDS = 0.5
_MIN_IMPROVEMENT = 0.005  # relative improvement that resets a row's early-stop counter
_DELAY_INITS = 3  # echo times read off the impulse response, tried as Delay initialisations
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
    (with `gate`: `mrstft_distance(..., gate=True)`, the log term floored at the target's noise floor)."""

    def __init__(self, target: torch.Tensor, fft_sizes: Sequence[int], hop_divisor: int = 4, gate: bool = False):
        self.fft_sizes, self.hop_divisor = tuple(fft_sizes), int(hop_divisor)
        self.mags = stft_magnitudes(target[None], self.fft_sizes, self.hop_divisor)
        self.floors = gate_floors(self.mags) if gate else None

    def distance(self, estimate: torch.Tensor) -> torch.Tensor:
        """MR-STFT distance `[batch]` of `estimate` `[batch, samples]` to the target."""
        return mrstft_from_magnitudes(estimate, self.mags, self.fft_sizes, reduce=False, hop_divisor=self.hop_divisor,
                                      floors=self.floors)


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


def _stage_signals(xa: np.ndarray, y: np.ndarray, native: int, start: int, length: int, preroll: int,
                   stage: Stage, gate: bool = False) -> _Signals:
    """The aligned dry `xa` and wet `y` (`[samples]` at `native` Hz) around the excerpt, at the stage's rate
    (`gate`: the distance ignores what lies below the target's noise floor)."""
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
        no_effect = float(spectra.distance(dry[:, n_pre:])[0])
    return _Signals(rate, dry, spectra, n_len, no_effect, native, _sample_cost(stage))


def echo_times(xa: np.ndarray, y: np.ndarray, sample_rate: int, count: int = _DELAY_INITS) -> list[float]:
    """The `count` strongest echo times (s, within the Delay's range) of the aligned dry-to-wet impulse response."""
    p = get_spec("Delay").param("delay_seconds")
    lags, taps = impulse_response(xa[: int(ALIGN_SECONDS * sample_rate)], y[: int(ALIGN_SECONDS * sample_rate)],
                                  int(p.maximum * sample_rate) + 2)
    mag = np.where(lags >= int(p.minimum * sample_rate), np.abs(taps), 0.0)
    peaks, _ = scipy.signal.find_peaks(mag, distance=max(1, sample_rate // 100))
    best = peaks[np.argsort(mag[peaks])[::-1][:count]]
    return [float(lags[i] / sample_rate) for i in best]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function (logits to [0, 1])."""
    return 1.0 / (1.0 + np.exp(-z))


def _rank(fits: list[ChainFit], tolerance: float, prior_weight: float = 0.0) -> list[ChainFit]:
    """The parsimonious choice among the chains fitted furthest first, then the rest (furthest, closest first)."""
    last = max(f.stage for f in fits)
    final = [f for f in fits if f.stage == last]
    chosen = final[choose(final, tolerance, prior_weight)]
    rest = sorted((f for f in fits if f is not chosen), key=lambda f: (-f.stage, f.relative))
    return [chosen, *rest]


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
        base[layout.gain] = float(np.clip(0.5 + ident.level_db / (2 * GAIN_RANGE_DB), 0.02, 0.98))
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
        still = _track(rows, active, stall, dist.detach().numpy(), z.detach().numpy(), settings.patience)
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


#: the smallest probability the choice's prior term uses (a chain the encoder rules out costs -log of this at most)
_MIN_PRIOR = 1e-4


def choice_score(fit: ChainFit, prior_weight: float = 0.0) -> float:
    """What the choice minimises: the relative distance minus `prior_weight` times the log of the encoder's
    probability of the chain (>= the relative distance; the distance alone when the weight is 0 or no prior)."""
    if prior_weight <= 0 or fit.prior is None:
        return fit.relative
    return fit.relative - prior_weight * math.log(max(fit.prior, _MIN_PRIOR))


def choose(fits: Sequence[ChainFit], tolerance: float, prior_weight: float = 0.0) -> int:
    """Index of the parsimonious choice: the shortest chain within `tolerance` (relative) of the best score
    (`choice_score`: the relative distance, less `prior_weight` times the log of the encoder's probability)."""
    scores = [choice_score(f, prior_weight) for f in fits]
    limit = min(scores) * (1.0 + tolerance)
    within = [i for i, v in enumerate(scores) if v <= limit]
    return min(within, key=lambda i: (len(fits[i].chain), scores[i]))


# ----------------------------------------------------------------------------------------------------------------
# the search


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
    x, y = _mono(dry, "dry"), _mono(wet, "wet")
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


def _overlap(x: np.ndarray, y: np.ndarray, offset: int) -> tuple[int, int]:
    """The span [lo, hi) of `y` where `x` delayed by `offset` samples is defined too."""
    return max(0, offset), min(y.size, x.size + offset)


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
    return search.result(len(cands))


class _Search:
    """The state of one search: the aligned signals, the excerpt, the fitted rows per chain and the clock."""

    def __init__(self, x: np.ndarray, y: np.ndarray, rate: int, alignment: Alignment, cands: list[Candidate],
                 settings: SearchSettings, clock: _Clock):
        self.x, self.y, self.rate, self.alignment = x, y, rate, alignment
        self.cands, self.settings, self.clock = cands, settings, clock
        self.xa = _shift(x, alignment.offset, y.size)
        lo, hi = _overlap(x, y, alignment.offset)
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

    def _signals(self, index: int, native: bool = False) -> _Signals:
        """Stage `index`'s signals (at the recording's own rate when `native`)."""
        stage = self.settings.stages[index]
        sig = _stage_signals(self.xa, self.y, self.rate, self.start, self.length, self.preroll,
                             replace(stage, rate=self.rate) if native else stage, self.settings.gate_noise)
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
        st = self.settings.stages[index]
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
            return unit * (_zoom_points(chain, levels) + fit) * self._samples(index, _needs_native(chain))

        if chains is not None:
            return sum(cost(c) for c in chains)
        if self.fitted:
            return sum(cost(r.chain) for r in sorted(self.fitted.values(), key=lambda r: r.relative)[:rows])
        return rows * float(np.mean([cost(c.chain) for c in self.cands]))

    def _begin(self, index: int, chains: Sequence[tuple[str, ...]] | None = None) -> None:
        """Tell the clock that stage `index` starts (its planned work for `chains`, the later stages' guessed)."""
        st = self.settings.stages[index]
        later = sum(self._planned(j) for j in range(index + 1, len(self.settings.stages)))
        window = self.length / self.rate if st.seconds is None else min(self.length / self.rate, st.seconds)
        self.clock.begin_stage(index, len(self.settings.stages), self._planned(index, chains), later,
                               stage_rate(st, self.rate), window)

    def screen(self, rng: np.random.Generator) -> None:
        """Stage 0, chain length by chain length: the candidates extending one of the best `beam` chains one effect
        shorter, each started from the best of a grid around that chain's fit, then fitted all together."""
        self._begin(0)
        sigs = self._stage_pair(0)
        echoes = echo_times(self.xa, self.y, self.rate)
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
        """Stage `index`: the best chains so far (and sub-chains of the best two), zoomed in on their fine params
        at this stage's rate (the last stage from the grid's step down, `_FINAL_ZOOM_LEVELS`), then fitted further."""
        # the chains fitted furthest first: a chain the last stage did not carry on kept its distance on that earlier
        # stage's shorter, lower-rate window, which is not comparable (it read closer than the carried ones did)
        rows = _survivors(sorted(self.fitted.values(), key=lambda r: (-r.stage, r.relative)),
                          self.settings.stages[index].keep)
        self._begin(index, [r.chain for r in rows])
        sigs = self._stage_pair(index)
        last = index == len(self.settings.stages) - 1
        scale, levels = (1.0, _FINAL_ZOOM_LEVELS) if last else (_ZOOM_FACTOR ** -_ZOOM_LEVELS, 1)
        for row in rows:
            u = _sigmoid(row.z)
            for name in row.chain:
                u, _ = _zoom(u, row.chain, name, self.renderer, sigs[_needs_native(row.chain)], self.settings.fit_gain,
                             self.clock, _grid_step(name) * scale, levels)
            row.z = _logit(u)
        self._fit(rows, sigs, index)

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
        result = CaptureResult(_rank(fits, self.settings.tolerance, self.settings.prior_weight), self.alignment,
                               stage_rate(self.settings.stages[last], self.rate), self.start / self.rate,
                               self.length / self.rate, self.no_effect[last], time.perf_counter() - self.clock.t0,
                               n_candidates, not self.clock.out_of_time)
        result.warnings = fit_warnings(result)
        result.identification = self.identification
        self.clock.finish(result.best)
        return result


#: the share of a time budget the identification may take before the twins start
IDENTIFY_SHARE = 0.3
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
