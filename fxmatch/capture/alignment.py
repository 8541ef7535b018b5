"""Capture's alignment: where the wet recording lies against the dry one, and whether they are one performance.

The earliest strong peak of a regularised dry-to-wet impulse response within +-1 s (the direct sound, not a louder
echo), sharpened to a sample, whose band envelopes correlate (else the pair is refused: not the same performance);
where that fails or is pinned at the window's edge, the shorter recording is placed anywhere along the longer one
(onsets matched at every lag). Also the measures a search reports (level, partials' correlation) and the echo times
it starts a Delay from. numpy and scipy only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.ndimage
import scipy.signal

from fxmatch.effects import get_spec
from fxmatch.errors import FxmatchInputError
from fxmatch.identify import impulse_response, sample_centre_seconds
from fxmatch.mono import checked_mono

#: how far apart the dry and wet recordings may start (s)
MAX_OFFSET_SECONDS = 1.0
#: below this correlation of the band envelopes (log energy in 16 bands, 10 ms frames) the two recordings are not
#: the same performance
MIN_CORRELATION = 0.3
#: a peak of the dry-to-wet impulse response earlier than the strongest one wins when it reaches this fraction of
#: it (the direct sound before a louder echo or chorus voice)
EARLY_PEAK_RATIO = 0.5
#: ... and whose envelopes correlate within this much of the best candidate's (a deep chorus mixed at 0.72 smears
#: the direct sound below the peaks of the music's own repetition 0.64 s earlier, which correlate 0.48 there
#: against 0.66 at the strongest peak)
CORRELATION_SLACK = 0.1
#: the alignment looks at most at this much audio (s)
ALIGN_SECONDS = 30.0
#: the shortest overlap of the aligned recordings that a search accepts (s)
MIN_SECONDS = 0.5
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
    candidates = _candidate_lags(lags, taps)
    ordered = list(dict.fromkeys(candidates if earliest else [candidates[-1], *candidates[:-1]]))
    corrs = [measure(x, y, sample_rate, lag) for lag in ordered]
    need = max(min_correlation, max(corrs) - CORRELATION_SLACK)
    for lag, corr in zip(ordered, corrs):
        if corr >= need:
            return _sharpen(x, y, lag, sample_rate), corr
    return None, float(max(corrs))


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
    x, y = checked_mono(dry, "capture: the dry signal"), checked_mono(wet, "capture: the wet signal")
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


def _overlap(x: np.ndarray, y: np.ndarray, offset: int) -> tuple[int, int]:
    """The span [lo, hi) of `y` where `x` delayed by `offset` samples is defined too."""
    return max(0, offset), min(y.size, x.size + offset)


_DELAY_INITS = 3  # echo times read off the impulse response, tried as Delay initialisations


def echo_times(xa: np.ndarray, y: np.ndarray, sample_rate: int, count: int = _DELAY_INITS) -> list[float]:
    """The `count` strongest echo times (s, within the Delay's range) of the aligned dry-to-wet impulse response."""
    p = get_spec("Delay").param("delay_seconds")
    lags, taps = impulse_response(xa[: int(ALIGN_SECONDS * sample_rate)], y[: int(ALIGN_SECONDS * sample_rate)],
                                  int(p.maximum * sample_rate) + 2)
    mag = np.where(lags >= int(p.minimum * sample_rate), np.abs(taps), 0.0)
    peaks, _ = scipy.signal.find_peaks(mag, distance=max(1, sample_rate // 100))
    best = peaks[np.argsort(mag[peaks])[::-1][:count]]
    return [sample_centre_seconds(int(lags[i]), sample_rate) for i in best]
