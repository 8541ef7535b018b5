"""Identification: read each effect's parameters off an aligned dry/wet pair before any twin is fitted.

With the dry take x and the wet take y aligned (`y[n] ~ chain(x)[n]`), most of pedalboard's parameters can be read
directly (system identification), each as if the effect were alone in the chain:

- **Delay**: the echo times are the peaks of the regularised dry-to-wet impulse response (`impulse_response`, which `capture.align` uses too);
  for each, the mix comes from a least-squares fit of `y` on `x` and the feedback comb's echo, the feedback from a
  grid of those fits refined by a bounded scalar search (`scipy.optimize.minimize_scalar`).
- **PeakFilter**: the transfer function `|H|` from Welch's cross-spectrum (`scipy.signal.csd / welch`), fitted with
  the RBJ bell pedalboard uses (`scipy.optimize.least_squares`, several centre frequencies as starts).
- **Chorus**: the short-time lag of `y` against `x` (a regularised impulse response per 46 ms frame, also with the
  direct path's own response removed, which repeats at the pitch period on held notes) fitted by the
  chorus's own delay trajectory `centre + 10 ms x depth x lfo(t)`, `lfo(t) = -sin(2 pi rate t)` (a grid over
  rate, depth and centre, scored on the frames' correlations: the pitch period's ambiguity of one frame is resolved
  by the trajectory across notes), then the centre, rate and depth refined by pedalboard renders.
- **Phaser**: the short-time transfer function's notches, scored per frame against a 6-stage all-pass phaser's
  response at each cutoff, then fitted by the phaser's cutoff trajectory (rate, depth, centre) as above; the centre
  and depth then by a grid of pedalboard renders (a deep or fast sweep's track gives the rate but blurs its range).
- **Distortion**: `y ~ a tanh(g x)` sample by sample (a grid over the drive, `a` by least squares); and, since real
  drives filter after (and before) the clipping, which moves the phase so that no sample-wise fit holds, a
  *spectral* read of Distortion > LowpassFilter: a grid over drive and cut-off through pedalboard, each scored by the
  search's multi-resolution STFT distance with the level matched (`read_drive_tone`).
- **LowpassFilter**: the cut-off alone (least squares on pedalboard renders of the dry take) and the cut-off of the
  spectral drive read above.
- **Compressor**: the gain `y / x` per 10 ms frame against the input's peak level: a hard-knee static curve
  (threshold and ratio by a grid, the output level by least squares); attack and release by pedalboard renders.
- **Reverb**: room size and damping by pedalboard renders of the pair's dry take (a small grid), the wet and dry
  levels by least squares.

A Compressor or Distortion read that explains a fifth of the residual or more is applied to the dry take, and the
PeakFilter, Chorus, Phaser, Delay and Reverb are read again on that (`CONTEXT_EFFECTS`): a drive's harmonics in
front of them hide them from reads that take `y` as a linear function of `x`; the read with more evidence leads.

Mixes and feedbacks everywhere come from linear least squares on pedalboard renders (`numpy.linalg.lstsq`), so
each read also says how much of `y` it explains: its *evidence* (1 - residual / residual of a plain gain; 0 for a
pair that is a plain gain of the dry take). The reads are start points for the twins' search (`fxmatch.capture`);
`Identification.chain` names a chain from the evidence alone (the "identification alone" figure of
docs/capture.md). Layers: numpy, scipy, pedalboard and `fxmatch.effects`' specs; torch only for the spectral drive
read's distance (`fxmatch.metrics`, the search's own), imported when that read runs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.fft
import scipy.optimize
import scipy.signal

from fxmatch.errors import FxmatchInputError
from fxmatch.refine import loudest_excerpt

#: the effects identified, in the default vocabulary's canonical order
EFFECTS: tuple[str, ...] = ("Compressor", "Distortion", "LowpassFilter", "PeakFilter", "Chorus", "Phaser", "Delay",
                            "Reverb")
#: how much of the aligned pair the reads look at (s, from the LFOs' origin)
ANALYSIS_SECONDS = 3.0
#: an effect whose single read explains at least this fraction of what a plain gain leaves is named by `chain`
EVIDENCE_THRESHOLD = 0.5
#: a plain read explaining this much of the pair names its effect alone (`Identification.chain`)
SUFFICIENT_EVIDENCE = 0.98
#: effects whose read, when it explains at least CONTEXT_EVIDENCE, is applied to the dry take before the effects of
#: AFTER_CONTEXT that follow it are read again: a drive's harmonics (or a compressor's gain) in front of a phaser,
#: an EQ or an echo hide them from reads that take `y` as a linear function of `x`; a bell of at least
#: CONTEXT_BELL_DB hides a phaser after it too, while the phaser leaves the bell's own read little evidence (a
#: +9.5 dB bell at 204 Hz before a 0.1 Hz phaser: the bell read right at evidence 0.06, the phaser read at 0.32 Hz
#: and 0.13 on the pair, at 0.104 Hz and 0.93 after the bell)
CONTEXT_EFFECTS: tuple[str, ...] = ("Compressor", "Distortion", "PeakFilter")
CONTEXT_EVIDENCE = 0.2
CONTEXT_BELL_DB = 6.0
AFTER_CONTEXT: tuple[str, ...] = ("PeakFilter", "Chorus", "Phaser", "Delay", "Reverb")
#: a pair whose plain-gain residual is below this fraction of the wet energy shows no effect (evidence 0 for all)
LINEAR_RESIDUAL = 1e-5
#: Wiener regularisation of the impulse-response estimate, relative to the dry signal's mean power per bin
_WIENER_FLOOR = 0.1
_FRAME = 2048  # short-time frames at 44.1 kHz (scaled with the rate): 46 ms
_HOP = 512


@dataclass(frozen=True)
class Read:
    """What one effect's identification found: start points in pedalboard's units (best first) and its evidence
    (the fraction, 0-1, of the plain-gain residual that the best start explains with the effect alone)."""

    effect: str
    starts: tuple[dict[str, float], ...]
    evidence: float
    seconds: float = 0.0
    #: the effect this read was made after (applied to the dry take first: `CONTEXT_EFFECTS`), None for a plain read;
    #: its evidence is then of what that effect leaves
    after: str | None = None

    @property
    def params(self) -> dict[str, float]:
        """The best start."""
        return dict(self.starts[0])


@dataclass
class Identification:
    """Every effect's read on one aligned pair, and the output level of a plain gain (dB, wet against dry)."""

    reads: dict[str, Read]
    level_db: float
    seconds: float
    #: the pair is a plain gain of the dry take (nothing to identify)
    linear: bool = False
    notes: list[str] = field(default_factory=list)

    def starts(self, effect: str) -> list[dict[str, float]]:
        """Start points (units) of `effect` (empty when it was not identified)."""
        read = self.reads.get(effect)
        return [dict(s) for s in read.starts] if read else []

    def evidence(self) -> dict[str, float]:
        """Each identified effect's evidence."""
        return {n: r.evidence for n, r in self.reads.items()}

    def chain(self, threshold: float = EVIDENCE_THRESHOLD, max_length: int = 3) -> tuple[str, ...]:
        """The chain named by the evidence alone: one plain read that explains SUFFICIENT_EVIDENCE of the pair alone
        (a bell, which a slow phaser or a short chorus also half explains), else the `max_length` effects with the
        most evidence at or above `threshold` (a read made after another effect brings that effect), in the
        canonical order."""
        if self.linear:
            return ()
        plain = [r for r in self.reads.values() if r.after is None]
        best = max(plain, key=lambda r: r.evidence, default=None)
        if best is not None and best.evidence >= SUFFICIENT_EVIDENCE:
            return (best.effect,)
        strong = sorted((r for r in self.reads.values() if r.evidence >= threshold), key=lambda r: -r.evidence)
        names = {n for r in strong[:max_length] for n in (r.effect, r.after) if n is not None}
        return tuple(n for n in EFFECTS if n in names)[:max_length]

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        return {"level_db": round(self.level_db, 3), "linear": self.linear, "seconds": round(self.seconds, 3),
                "reads": {n: {"evidence": round(r.evidence, 4), "seconds": round(r.seconds, 3),
                              "params": {k: round(v, 6) for k, v in r.params.items()}}
                          for n, r in self.reads.items()}}


# ----------------------------------------------------------------------------------------------------------------
# helpers


def impulse_response(x: np.ndarray, y: np.ndarray, max_lag: int,
                     floor: float = _WIENER_FLOOR) -> tuple[np.ndarray, np.ndarray]:
    """Regularised (Wiener) estimate of the filter taking `x` to `y` (`[samples]` each): (lags, taps), +-max_lag.

    `floor` is the regularisation relative to the mean power of `x` per bin (small: sharper, noisier)."""
    n = scipy.fft.next_fast_len(max(x.size + y.size, 2 * max_lag + 1))  # every lag asked for, unwrapped
    fx, fy = scipy.fft.rfft(x, n), scipy.fft.rfft(y, n)
    power = np.abs(fx) ** 2
    h = scipy.fft.irfft(fy * np.conj(fx) / (power + floor * power.mean() + 1e-30), n)
    lags = np.arange(-max_lag, max_lag + 1)
    return lags, h[lags]


def _pedalboard(name: str, params: dict[str, float], x: np.ndarray, rate: int) -> np.ndarray:
    """`x` `[samples]` through pedalboard's `name` with `params` (float64 `[samples]`)."""
    from fxmatch.effects import get_spec

    plugin = get_spec(name).pedalboard_plugin(params)
    return plugin(np.ascontiguousarray(x[None], dtype=np.float32), rate)[0].astype(np.float64)


def _clip_params(name: str, params: dict[str, float]) -> dict[str, float]:
    """`params` clipped to the effect's training ranges (float values)."""
    from fxmatch.effects import get_spec

    spec = get_spec(name)
    return {p.name: float(np.clip(params.get(p.name, p.default), p.minimum, p.maximum)) for p in spec.params}


def _lstsq(y: np.ndarray, columns: Sequence[np.ndarray]) -> tuple[np.ndarray, float]:
    """Least-squares weights of `columns` (each `[samples]`) for `y`, and the residual energy."""
    a = np.stack(columns, axis=1)
    w, *_ = np.linalg.lstsq(a, y, rcond=None)
    r = y - a @ w
    return w, float(r @ r)


class _Pair:
    """The aligned analysis segment: dry x, wet y (`[samples]` float64), rate, and the plain-gain residual."""

    def __init__(self, x: np.ndarray, y: np.ndarray, rate: int):
        self.x, self.y, self.rate = x, y, rate
        (self.gain,), self.base = _lstsq(y, [x])
        self.energy = float(y @ y)
        self._drive_tone: list[tuple[float, float, float]] | None = None

    def evidence(self, residual: float) -> float:
        """1 - residual / the plain gain's residual, within [0, 1]."""
        return float(np.clip(1.0 - residual / max(self.base, 1e-30), 0.0, 1.0))

    def drive_tone(self) -> list[tuple[float, float, float]]:
        """`read_drive_tone`'s fits, computed once per pair (the Distortion and LowpassFilter reads share them)."""
        if self._drive_tone is None:
            self._drive_tone = _drive_tone_fits(self)
        return self._drive_tone


def _frames(sig: np.ndarray, size: int, hop: int) -> np.ndarray:
    """Hann-windowed frames `[frames, size]` of `sig` every `hop` samples."""
    n = 1 + max(0, (sig.size - size) // hop)
    idx = np.arange(size)[None] + hop * np.arange(n)[:, None]
    return sig[idx] * scipy.signal.get_window("hann", size)[None]


def _trajectory_fit(table: np.ndarray, times: np.ndarray, weights: np.ndarray, rates: np.ndarray,
                    depths: np.ndarray, centres: np.ndarray,
                    position: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
                    top: int = 3) -> list[tuple[float, float, float, float]]:
    """The `top` (rate, depth, centre, score) whose trajectory `position(lfo, depth, centre)` (an index into the
    table's columns, per frame) scores best on `table` `[frames, columns]` (weighted mean over frames); the LFO is
    `-sin(2 pi rate t)` at the frames' `times` (s)."""
    w = weights / max(float(weights.sum()), 1e-30)
    frames = np.arange(table.shape[0])
    best: list[tuple[float, float, float, float]] = []
    d, c = np.meshgrid(depths, centres, indexing="ij")
    d, c = d.ravel()[:, None], c.ravel()[:, None]
    for r in rates:
        lfo = -np.sin(2 * np.pi * r * times)[None]
        col = np.clip(np.rint(position(lfo, d, c)).astype(np.int64), 0, table.shape[1] - 1)
        score = table[frames[None], col] @ w
        for i in np.argsort(score)[::-1][:top]:
            best.append((float(r), float(d[i, 0]), float(c[i, 0]), float(score[i])))
        best = sorted(best, key=lambda b: -b[3])[: top * 4]
    # keep distinct rates (a valley each)
    out: list[tuple[float, float, float, float]] = []
    for b in best:
        if all(abs(math.log(b[0] / o[0])) > 0.05 for o in out):
            out.append(b)
        if len(out) == top:
            break
    return out


# ----------------------------------------------------------------------------------------------------------------
# the reads, one per effect


def sample_centre_seconds(samples: int, rate: int) -> float:
    """A delay of `samples` as seconds at the middle of that sample (`(samples + 0.5) / rate`): pedalboard's Delay and
    its twin truncate `float32(seconds) * rate`, and `samples / rate` itself often lands a hair below the integer,
    one sample short (a 0.2 s echo one sample early leaves 27 % of the no-effect distance)."""
    return (samples + 0.5) / rate


def read_delay(pair: _Pair, count: int = 3) -> Read:
    """Delay: echo times from the impulse response's peaks, feedback (a grid, then a bounded search around its best)
    and mix (least squares) per time."""
    from fxmatch.effects import get_spec

    t0 = time.perf_counter()
    x, y, rate = pair.x, pair.y, pair.rate
    p = get_spec("Delay").param("delay_seconds")
    lags, taps = impulse_response(x, y, int(p.maximum * rate) + 2)
    mag = np.where(lags >= int(p.minimum * rate) - 1, np.abs(taps), 0.0)
    peaks, _ = scipy.signal.find_peaks(mag, distance=max(1, rate // 100))
    times = [int(lags[i]) for i in peaks[np.argsort(mag[peaks])[::-1][: 2 * count]]]
    top = get_spec("Delay").param("feedback").maximum
    fits = []
    for lag in times:
        if lag < 1:
            continue
        taps = [np.concatenate([np.zeros(k * lag), x[: x.size - k * lag]]) for k in range(1, x.size // lag + 1)]

        def fit(fb: float, taps: list[np.ndarray] = taps, lag: int = lag) -> tuple[float, dict[str, float]]:
            echo = sum(fb**k * t for k, t in enumerate(taps) if fb**k > 1e-4 or k == 0)  # sum fb^(k-1) x[n - kD]
            (dry, wet), res = _lstsq(y, [x, echo])
            mix = wet / max(dry + wet, 1e-9)
            return res, {"delay_seconds": sample_centre_seconds(lag, rate), "feedback": float(fb), "mix": float(mix)}

        grid = [fit(fb) for fb in np.linspace(0.0, top, 8)]
        fits += grid
        # the grid's step (0.1) leaves a long echo train visibly off: refine its best feedback
        best = float(min(grid, key=lambda f: f[0])[1]["feedback"])
        sol = scipy.optimize.minimize_scalar(lambda fb: fit(fb)[0], bounds=(max(0.0, best - 0.1), min(top, best + 0.1)),
                                             method="bounded", options={"xatol": 0.002})
        fits.append(fit(float(sol.x)))
    if not fits:
        return Read("Delay", (get_spec("Delay").defaults(),), 0.0, time.perf_counter() - t0)
    fits.sort(key=lambda f: f[0])
    starts, seen = [], set()
    for res, params in fits:
        if params["delay_seconds"] not in seen:
            seen.add(params["delay_seconds"])
            starts.append(_clip_params("Delay", params))
        if len(starts) == count:
            break
    return Read("Delay", tuple(starts), pair.evidence(fits[0][0]), time.perf_counter() - t0)


def peak_response_db(f: np.ndarray, rate: float, centre: float, gain_db: float, q: float) -> np.ndarray:
    """|H| in dB at `f` (Hz) of the RBJ peaking bell (JUCE's `makePeakFilter`, what pedalboard's PeakFilter uses)."""
    amp = 10.0 ** (gain_db / 40.0)
    w0 = 2 * np.pi * centre / rate
    alpha = np.sin(w0) / (2 * q)
    z1 = np.exp(-2j * np.pi * np.asarray(f, dtype=np.float64) / rate)  # e^{-jw}: freqz's evaluation, without its
    z2 = z1 * z1  # per-call overhead (the least-squares fits call this thousands of times per identification)
    c = -2 * np.cos(w0)
    h = ((1 + alpha * amp) + c * z1 + (1 - alpha * amp) * z2) / ((1 + alpha / amp) + c * z1 + (1 - alpha / amp) * z2)
    return 20 * np.log10(np.abs(h) + 1e-12)


def transfer_db(pair: _Pair, nperseg: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(f in Hz, |H| in dB, weight) of the dry-to-wet transfer function (Welch's H1 = Pxy / Pxx) where the dry
    take has energy (weight: the dry power within 50 dB of its peak, else 0)."""
    f, pxx = scipy.signal.welch(pair.x, pair.rate, nperseg=nperseg)
    _, pxy = scipy.signal.csd(pair.x, pair.y, pair.rate, nperseg=nperseg)
    h = np.abs(pxy) / np.maximum(pxx, 1e-30)
    level = 10 * np.log10(pxx + 1e-30)
    weight = np.where((level > level.max() - 50) & (f > 30) & (f < 0.45 * pair.rate), 1.0, 0.0)
    return f, 20 * np.log10(h + 1e-12), weight


def read_peak_filter(pair: _Pair, count: int = 2) -> Read:
    """PeakFilter: the RBJ bell fitted to the dry-to-wet |H| (dB, least squares, an output level free), from
    centre frequencies across the range as starts; the starts' evidence from pedalboard renders."""
    from fxmatch.effects import get_spec

    t0 = time.perf_counter()
    spec = get_spec("PeakFilter")
    f, hdb, weight = transfer_db(pair)
    keep = weight > 0
    if keep.sum() < 8:
        return Read("PeakFilter", (spec.defaults(),), 0.0, time.perf_counter() - t0)
    f, hdb = f[keep], hdb[keep]
    sw = np.sqrt(np.log(f[1:] / f[:-1]).clip(1e-4))  # equal weight per octave
    sw = np.concatenate([sw[:1], sw])
    lo, hi = spec.param("cutoff_frequency_hz").minimum, spec.param("cutoff_frequency_hz").maximum

    def residual(v: np.ndarray) -> np.ndarray:
        return sw * (peak_response_db(f, pair.rate, math.exp(v[0]), v[1], math.exp(v[2])) + v[3] - hdb)

    fits = []
    for centre in np.geomspace(lo, hi, 8):
        for g in (-8.0, 8.0):
            v0 = np.array([math.log(centre), g, math.log(1.0), float(np.median(hdb))])
            sol = scipy.optimize.least_squares(residual, v0, bounds=(
                [math.log(lo * 0.8), -18.0, math.log(0.3), -60.0], [math.log(hi * 1.2), 18.0, math.log(6.0), 60.0]))
            fits.append((float(sol.cost), {"cutoff_frequency_hz": math.exp(sol.x[0]), "gain_db": float(sol.x[1]),
                                           "q": math.exp(sol.x[2])}))
    fits.sort(key=lambda t: t[0])
    starts: list[dict[str, float]] = []
    for _, params in fits:
        if all(abs(math.log(params["cutoff_frequency_hz"] / s["cutoff_frequency_hz"])) > 0.2 for s in starts):
            starts.append(_clip_params("PeakFilter", params))
        if len(starts) == count:
            break
    _, res = _lstsq(pair.y, [_pedalboard("PeakFilter", starts[0], pair.x, pair.rate)])
    return Read("PeakFilter", tuple(starts), pair.evidence(res), time.perf_counter() - t0)


def read_distortion(pair: _Pair) -> Read:
    """Distortion: `y ~ a tanh(g x)` sample by sample, the drive `g` (dB) on a 1 dB grid, then 0.1 dB around the best,
    `a` by least squares; and the drive of the spectral read with a tone stage (`read_drive_tone`), first when its
    evidence (1 - relative spectral distance) is the larger. The evidence is the larger of the two."""
    t0 = time.perf_counter()
    x, y = pair.x, pair.y
    def residual(drive: float) -> float:
        s = np.tanh(x * 10 ** (drive / 20))
        a = float(s @ y) / max(float(s @ s), 1e-30)
        r = y - a * s
        return float(r @ r)

    coarse = min((residual(d), float(d)) for d in np.arange(5.0, 40.01, 1.0))
    res, drive = min((residual(d), float(d)) for d in np.arange(coarse[1] - 1.0, coarse[1] + 1.01, 0.1))
    evidence = pair.evidence(res)
    spectral, tone_drive, _ = read_drive_tone(pair)
    starts = [{"drive_db": drive}, tone_drive]
    if spectral > evidence:  # a real drive's filters move the phase: the spectral read is the one that holds
        starts.reverse()
    starts += [{"drive_db": float(np.clip(starts[0]["drive_db"] + d, 5.0, 40.0))} for d in (-6.0, 6.0)]
    return Read("Distortion", tuple(starts), max(evidence, spectral), time.perf_counter() - t0)


#: the spectral reads look at this much of the pair (s, its loudest part): enough notes, and a grid stays fast
_SPECTRAL_SECONDS = 1.0
#: the spectral drive read's coarse grid: drive (dB, the training range) and cut-off (Hz; None: no low-pass); then a
#: finer grid around the best point (half the steps)
_DRIVE_GRID_DB = np.arange(5.0, 40.01, 5.0)
_TONE_GRID_HZ = (*np.geomspace(300.0, 12000.0, 7), None)
#: filters are read only below this share of the sample rate
_NYQUIST_SHARE = 0.45


def _drive_tone_fits(pair: _Pair) -> list[tuple[float, float, float]]:
    """(relative distance, drive dB, cut-off Hz or nan for none) of the grid points tried for Distortion >
    LowpassFilter rendered by pedalboard on the dry take, best first: a coarse grid, then a finer one around its best
    point. The distance is the capture search's (`fxmatch.metrics.mrstft_distance`, gated at the wet take's noise
    floor), each render at the wet take's RMS, relative to the dry take's, on the pair's loudest `_SPECTRAL_SECONDS`."""
    import pedalboard
    import torch

    from fxmatch.metrics import gate_floors, mrstft_from_magnitudes, stft_magnitudes

    n = min(pair.x.size, int(_SPECTRAL_SECONDS * pair.rate))
    i = loudest_excerpt(pair.y, n, 1)
    x, y = pair.x[i : i + n], pair.y[i : i + n]
    target = stft_magnitudes(torch.tensor(y[None], dtype=torch.float32))
    floors = gate_floors(target)
    rms = math.sqrt(float(y @ y) / n)

    def distances(renders: list[np.ndarray]) -> np.ndarray:
        est = np.stack([r * rms / max(math.sqrt(float(r @ r) / n), 1e-12) for r in renders])
        with torch.no_grad():
            d = mrstft_from_magnitudes(torch.tensor(est, dtype=torch.float32), target, reduce=False, floors=floors)
        return d.numpy().astype(np.float64)

    none = max(float(distances([x])[0]), 1e-12)
    x32 = np.ascontiguousarray(x[None], dtype=np.float32)
    tried: dict[tuple[float, float], float] = {}

    top = _NYQUIST_SHARE * pair.rate  # a cut-off above Nyquist is no filter (and pedalboard's goes unstable)

    def run(drives: Sequence[float], cutoffs: Sequence[float | None]) -> None:
        keys, renders = [], []
        for drive in drives:
            clipped = pedalboard.Distortion(drive_db=float(drive))(x32, pair.rate)
            for cutoff in cutoffs:
                if cutoff is not None and cutoff >= top:
                    continue
                key = (round(float(drive), 3), math.nan if cutoff is None else round(float(cutoff), 1))
                if key in tried or key in keys:
                    continue
                est = clipped if cutoff is None else pedalboard.LowpassFilter(cutoff_frequency_hz=float(cutoff))(
                    clipped, pair.rate)
                keys.append(key)
                renders.append(est[0].astype(np.float64))
        if keys:
            tried.update(zip(keys, distances(renders) / none))

    run(_DRIVE_GRID_DB, _TONE_GRID_HZ)
    _, drive, cutoff = min((d, *k) for k, d in tried.items())
    step = float(_DRIVE_GRID_DB[1] - _DRIVE_GRID_DB[0]) / 2
    drives = np.clip(drive + step * np.arange(-1, 2), _DRIVE_GRID_DB[0], _DRIVE_GRID_DB[-1])
    if math.isnan(cutoff):
        cutoffs: list[float | None] = [None, float(_TONE_GRID_HZ[-2])]
    else:
        ratio = math.sqrt(float(_TONE_GRID_HZ[1] / _TONE_GRID_HZ[0]))
        cutoffs = [float(np.clip(cutoff * ratio**k, _TONE_GRID_HZ[0], _TONE_GRID_HZ[-2])) for k in (-1, 0, 1)]
    run(drives, cutoffs)
    return sorted((d, *k) for k, d in tried.items())


def read_drive_tone(pair: _Pair) -> tuple[float, dict[str, float], dict[str, float] | None]:
    """The spectral read of a drive with its tone stage: (evidence, Distortion params, LowpassFilter params or None
    when the best fit has no low-pass). Evidence: 1 - the best grid point's distance relative to a plain gain's."""
    d, drive, cutoff = pair.drive_tone()[0]
    tone = None if math.isnan(cutoff) else _clip_params("LowpassFilter", {"cutoff_frequency_hz": cutoff})
    return float(np.clip(1.0 - d, 0.0, 1.0)), _clip_params("Distortion", {"drive_db": drive}), tone


def read_lowpass_filter(pair: _Pair) -> Read:
    """LowpassFilter: the cut-off alone (pedalboard renders of the dry take, the level by least squares, a grid
    then a bounded scalar search in log frequency), then the cut-off of the spectral drive read (`read_drive_tone`)."""
    from fxmatch.effects import get_spec

    t0 = time.perf_counter()
    p = get_spec("LowpassFilter").param("cutoff_frequency_hz")

    def residual(log_hz: float) -> float:
        return _lstsq(pair.y, [_pedalboard("LowpassFilter", {p.name: math.exp(log_hz)}, pair.x, pair.rate)])[1]

    grid = np.linspace(math.log(p.minimum), math.log(min(p.maximum, _NYQUIST_SHARE * pair.rate)), 12)
    k = int(np.argmin([residual(v) for v in grid]))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    sol = scipy.optimize.minimize_scalar(residual, bounds=(lo, hi), method="bounded", options={"xatol": 0.01})
    starts = [_clip_params("LowpassFilter", {p.name: math.exp(float(sol.x))})]
    _, _, tone = read_drive_tone(pair)
    if tone is not None:
        starts.append(tone)
    return Read("LowpassFilter", tuple(starts), pair.evidence(float(sol.fun)), time.perf_counter() - t0)


def read_compressor(pair: _Pair) -> Read:
    """Compressor: the static curve (threshold, ratio) from the gain per 10 ms frame against the input's peak level,
    then attack and release by a grid of pedalboard renders (least-squares output level each)."""
    t0 = time.perf_counter()
    x, y, rate = pair.x, pair.y, pair.rate
    hop = max(1, rate // 100)
    n = x.size // hop
    xf, yf = x[: n * hop].reshape(n, hop), y[: n * hop].reshape(n, hop)
    peak = 20 * np.log10(np.abs(xf).max(axis=1) + 1e-12)
    rx, ry = np.sqrt((xf**2).mean(axis=1)), np.sqrt((yf**2).mean(axis=1))
    loud = peak > peak.max() - 50
    gain = 20 * np.log10((ry + 1e-12) / (rx + 1e-12))
    best = (math.inf, -20.0, 4.0)
    if loud.sum() >= 4:
        lv, gv = peak[loud], gain[loud]
        for thr in np.arange(-45.0, -2.0, 1.0):
            over = np.maximum(lv - thr, 0.0)
            for ratio in np.geomspace(1.5, 20.0, 16):
                model = (1 / ratio - 1) * over
                g0 = float(np.mean(gv - model))
                err = float(np.sum((gv - model - g0) ** 2))
                best = min(best, (err, float(thr), float(ratio)))
    _, thr, ratio = best
    fits = []
    for attack in (1.0, 5.0, 20.0):
        for release in (50.0, 150.0, 400.0):
            params = {"threshold_db": thr, "ratio": ratio, "attack_ms": attack, "release_ms": release}
            _, res = _lstsq(y, [_pedalboard("Compressor", params, x, rate)])
            fits.append((res, params))
    fits.sort(key=lambda t: t[0])
    starts = [_clip_params("Compressor", p) for _, p in fits[:2]]
    starts.append(_clip_params("Compressor", {**fits[0][1], "threshold_db": thr - 6.0, "ratio": ratio / 2.0}))
    return Read("Compressor", tuple(starts), pair.evidence(fits[0][0]), time.perf_counter() - t0)


def _lag_tables(pair: _Pair, max_lag_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Regularised impulse response (Wiener) of each frame of `y` against `x` at lags 0..max_lag_s, twice: (`[frames,
    lags]` |response| relative to the direct path's peak; the same with the direct path's own response removed
    (below), relative to the direct gain; frame centre times (s); frame weights: the dry frame's energy within 40 dB
    of the loudest).

    A frame's estimate is `a g(lag) + b g(lag - d)` for a direct gain `a` and a copy delayed by `d`, with `g` the
    frame's resolution kernel (the inverse transform of `|X|^2 / (|X|^2 + floor)`): on a held note `g` repeats at every
    pitch period, so the direct path alone puts peaks at the period's multiples that hide a quiet delayed copy
    (mix 0.27 at 13 ms under a 4.3 ms period). The second table subtracts `a g` (`a` read at lag 0)."""
    size = round(_FRAME * pair.rate / 44100)
    hop = round(_HOP * pair.rate / 44100)
    fx, fy = _frames(pair.x, size, hop), _frames(pair.y, size, hop)
    n = scipy.fft.next_fast_len(2 * size)
    sx, sy = scipy.fft.rfft(fx, n, axis=1), scipy.fft.rfft(fy, n, axis=1)
    power = np.abs(sx) ** 2  # a Wiener deconvolution per frame: (1 - mix) at lag 0, mix at the chorus's delay
    floor = power + 0.1 * power.mean(axis=1, keepdims=True) + 1e-30
    lags = int(max_lag_s * pair.rate) + 1
    corr = scipy.fft.irfft(sy * np.conj(sx) / floor, n, axis=1)[:, :lags]
    kernel = scipy.fft.irfft(power / floor, n, axis=1)[:, :lags]
    table = np.abs(corr)
    table = table / (table[:, : int(0.0005 * pair.rate)].max(axis=1, keepdims=True) + 1e-12)
    direct = corr[:, :1] / (kernel[:, :1] + 1e-30)
    echoes = np.abs(corr - direct * kernel) / (np.abs(direct) * kernel[:, :1] + 1e-12)
    energy = (fx**2).sum(axis=1)
    level = 10 * np.log10(energy + 1e-30)
    weights = np.where(level > level.max() - 40, 1.0, 0.0)
    times = (np.arange(fx.shape[0]) * hop + size / 2) / pair.rate
    return table, echoes, times, weights


def read_chorus(pair: _Pair, count: int = 3) -> Read:
    """Chorus: its delay trajectory fitted to both short-time lag tables (`_lag_tables`), the rate, feedback and mix
    by pedalboard renders (`_lfo_fits`), then the best two refined by renders (`_refine_lfo`)."""
    t0 = time.perf_counter()
    rate = pair.rate
    table, echoes, times, weights = _lag_tables(pair, 0.03)

    def position(lfo: np.ndarray, depth: np.ndarray, centre: np.ndarray) -> np.ndarray:
        return np.maximum(1.0, 10.0 * depth * lfo + centre) * rate / 1000.0

    tops = [top for t in (table, echoes)
            for top in _trajectory_fit(t, times, weights, np.geomspace(0.2, 4.0, 72), np.arange(0.1, 0.91, 0.05),
                                       np.arange(3.0, 20.01, 0.25), position, top=count)]
    fits = _lfo_fits("Chorus", pair, tops, "centre_delay_ms", (0.2, 0.4))
    fits = sorted(fits + [_refine_lfo("Chorus", pair, params) for _, params in fits[:2]], key=lambda t: t[0])
    starts: list[dict[str, float]] = []
    for _, params in fits:
        if all(abs(params["rate_hz"] - s["rate_hz"]) > 1e-9 or abs(params["centre_delay_ms"] - s["centre_delay_ms"])
               > 0.2 for s in starts):
            starts.append(_clip_params("Chorus", params))
    return Read("Chorus", tuple(starts[:count]), pair.evidence(fits[0][0]), time.perf_counter() - t0)


#: `_refine_lfo`'s steps per effect: each maps the best params so far to the grid of values tried (a dict each)
_LFO_STEPS: dict[str, tuple[Callable[[dict[str, float]], list[dict[str, float]]], ...]] = {
    # the centre over the whole range first: the trajectory fit may stand a pitch period off
    "Chorus": (lambda p: [{"centre_delay_ms": c} for c in np.arange(3.0, 20.01, 0.5)],
               lambda p: [{"centre_delay_ms": p["centre_delay_ms"] + d} for d in np.arange(-0.4, 0.41, 0.1)],
               lambda p: [{"rate_hz": p["rate_hz"] * (1 + 0.003 * k)} for k in range(-4, 5)],
               lambda p: [{"depth": p["depth"] + d} for d in np.arange(-0.15, 0.16, 0.05)]),
    # the centre and depth together: the notch track fixes the sweep's rate, its range trades one for the other
    "Phaser": (lambda p: [{"centre_frequency_hz": c, "depth": d} for c in np.geomspace(300.0, 3000.0, 17)
                          for d in np.arange(0.2, 1.01, 0.1)],
               lambda p: [{"feedback": f} for f in np.arange(0.0, 0.71, 0.1)],
               lambda p: [{"rate_hz": p["rate_hz"] * (1 + 0.003 * k)} for k in range(-4, 5)],
               lambda p: [{"centre_frequency_hz": p["centre_frequency_hz"] * 1.02**k} for k in range(-4, 5)],
               lambda p: [{"depth": p["depth"] + d} for d in np.arange(-0.06, 0.061, 0.02)]),
}


def _refine_lfo(name: str, pair: _Pair, params: dict[str, float]) -> tuple[float, dict[str, float]]:
    """(residual, params) of a Chorus or Phaser read refined by pedalboard renders, one step of `_LFO_STEPS` after
    another (values clipped to the training ranges; the mix by least squares each time, `_lfo_fit`)."""
    best = _lfo_fit(name, pair, params)
    for step in _LFO_STEPS[name]:
        for values in step(best[1]):
            best = min(best, _lfo_fit(name, pair, _clip_params(name, {**best[1], **values})), key=lambda t: t[0])
    return best


def _lfo_fit(name: str, pair: _Pair, params: dict[str, float]) -> tuple[float, dict[str, float]]:
    """(residual, params) of one pedalboard render of `name` (Chorus or Phaser) at `params`, the mix by least squares
    (`y ~ a x + b wet`, mix = b / (a + b))."""
    wet = _pedalboard(name, {**params, "mix": 1.0}, pair.x, pair.rate)
    (a, b), res = _lstsq(pair.y, [pair.x, wet])
    return res, {**params, "mix": float(b / max(a + b, 1e-9))}


def _lfo_fits(name: str, pair: _Pair, tops: Sequence[tuple[float, float, float, float]], centre_key: str,
              feedbacks: Sequence[float]) -> list[tuple[float, dict[str, float]]]:
    """(residual, params) of pedalboard renders of `name` (Chorus or Phaser) at each trajectory of `tops`: the rate
    refined on a 0.6 % grid (+-2.4 %; the trajectory fit's rate grid is 4 % apart), then each feedback of
    `feedbacks`, the mix by least squares (`y ~ a x + b wet`, mix = b / (a + b))."""
    fits = []
    for r, d, c, _ in tops:
        base = {"rate_hz": r, "depth": d, centre_key: c, "feedback": 0.0}
        res, best = min((_lfo_fit(name, pair, {**base, "rate_hz": r * (1 + 0.006 * k)}) for k in range(-4, 5)),
                        key=lambda t: t[0])
        fits.append((res, best))
        fits += [_lfo_fit(name, pair, {**best, "feedback": fb}) for fb in feedbacks if fb > 0]
    return sorted(fits, key=lambda t: t[0])


#: the phaser's cutoff positions (normalised log scale, 20 Hz - 20 kHz) the per-frame notch score is taken at
_PHASER_POSITIONS = np.linspace(0.0, 1.0, 81)


def _phaser_response_db(f: np.ndarray, cutoff: np.ndarray, rate: int, feedback: float, mix: float) -> np.ndarray:
    """|H| in dB `[cutoffs, f]` of pedalboard's phaser frozen at each cutoff: 6 first-order all-passes, negative
    feedback, linear mix."""
    z = np.exp(-2j * np.pi * f[None] / rate)
    g = np.tan(np.pi * np.minimum(cutoff, 0.49 * rate)[:, None] / rate)
    a1 = (g - 1) / (g + 1)  # bilinear first-order all-pass: (a1 + z^-1) / (1 + a1 z^-1)
    ap = ((a1 + z) / (1 + a1 * z)) ** 6
    w = ap / (1 + feedback * ap)
    return 20 * np.log10(np.abs((1 - mix) + mix * w) + 1e-6)


def read_phaser(pair: _Pair, count: int = 3) -> Read:
    """Phaser: each frame's transfer function scored against the phaser's response at every cutoff (correlation over
    frequency), the cutoff trajectory (rate, depth, centre) fitted to that table, then the rate, feedback and mix by
    pedalboard renders (`_lfo_fits`), the best refined by renders (`_refine_lfo`: a deep or fast sweep's track gives
    the rate but blurs its range)."""
    t0 = time.perf_counter()
    rate = pair.rate
    size = round(_FRAME / 2 * rate / 44100)  # 23 ms: the notches move fast at high rates and depths
    hop = round(_HOP / 2 * rate / 44100)
    fx, fy = _frames(pair.x, size, hop), _frames(pair.y, size, hop)
    sx, sy = np.fft.rfft(fx, axis=1), np.fft.rfft(fy, axis=1)
    f = np.fft.rfftfreq(size, 1 / rate)
    band = np.unique(np.clip(np.searchsorted(f, np.geomspace(60.0, min(12000.0, 0.45 * rate), 96)), 1, f.size - 1))
    px = np.abs(sx[:, band]) ** 2
    hdb = 10 * np.log10((np.abs(sy[:, band]) ** 2 + 1e-12) / (px + 1e-12))
    level = 10 * np.log10(px + 1e-30)
    wbin = (level > level.max(axis=1, keepdims=True) - 35).astype(np.float64)
    top = min(20000.0, 0.49 * rate)
    cutoffs = 20.0 * (top / 20.0) ** _PHASER_POSITIONS
    model = _phaser_response_db(f[band], cutoffs, rate, 0.3, 0.5)  # [positions, bins]

    def wcorr(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
        sw = w.sum(axis=-1, keepdims=True) + 1e-12
        am = a - (a * w).sum(axis=-1, keepdims=True) / sw
        bm = b - (b * w).sum(axis=-1, keepdims=True) / sw
        return (am * bm * w).sum(-1) / np.sqrt((am * am * w).sum(-1) * (bm * bm * w).sum(-1) + 1e-12)

    table = wcorr(hdb[:, None, :], model[None], wbin[:, None, :])  # [frames, positions]
    energy = px.sum(axis=1)
    weights = np.where(10 * np.log10(energy + 1e-30) > 10 * np.log10(energy.max() + 1e-30) - 40, 1.0, 0.0)
    times = (np.arange(fx.shape[0]) * hop + size / 2) / rate
    k = math.log(top / 20.0) / math.log(1000.0)  # pedalboard's normalised centre is on a fixed 20 Hz - 20 kHz scale

    def position(lfo: np.ndarray, depth: np.ndarray, centre: np.ndarray) -> np.ndarray:
        v = np.clip(lfo * depth / 2 + np.log(centre / 20.0) / math.log(1000.0), 0.0, 1.0) / k
        return v * (_PHASER_POSITIONS.size - 1)

    tops = _trajectory_fit(table, times, weights, np.geomspace(0.1, 3.0, 64), np.arange(0.2, 1.01, 0.05),
                           np.geomspace(300.0, 3000.0, 33), position, top=count + 1)
    fits = _lfo_fits("Phaser", pair, tops, "centre_frequency_hz", (0.35, 0.7))
    fits = sorted(fits + [_refine_lfo("Phaser", pair, fits[0][1])], key=lambda t: t[0])
    starts: list[dict[str, float]] = []
    for _, params in fits:
        if all(abs(params["rate_hz"] - s["rate_hz"]) > 1e-9 for s in starts):
            starts.append(_clip_params("Phaser", params))
    return Read("Phaser", tuple(starts[:count]), pair.evidence(fits[0][0]), time.perf_counter() - t0)


def read_reverb(pair: _Pair, count: int = 2) -> Read:
    """Reverb: room size and damping on a grid of pedalboard renders of the dry take, the wet and dry levels by
    least squares (`2 dry_level x + 3 wet_level wet`)."""
    t0 = time.perf_counter()
    fits = []
    for room in (0.1, 0.3, 0.5, 0.65, 0.8, 0.9, 0.95):
        for damping in (0.0, 0.33, 0.67, 1.0):
            params = {"room_size": room, "damping": damping, "wet_level": 1.0 / 3.0, "dry_level": 0.0}
            wet = _pedalboard("Reverb", params, pair.x, pair.rate)  # 3 * (1/3) * the reverb's wet signal
            (a, b), res = _lstsq(pair.y, [pair.x, wet])
            fits.append((res, {"room_size": room, "damping": damping, "wet_level": float(b / 3.0),
                               "dry_level": float(a / 2.0)}))
    fits.sort(key=lambda t: t[0])
    starts = [_clip_params("Reverb", p) for _, p in fits[:count]]
    return Read("Reverb", tuple(starts), pair.evidence(fits[0][0]), time.perf_counter() - t0)


#: the reads, in the order `identify` runs them: the parameters the twins' grids find worst first
READERS: dict[str, Callable[[_Pair], Read]] = {
    "Delay": read_delay, "Chorus": read_chorus, "Phaser": read_phaser, "PeakFilter": read_peak_filter,
    "Distortion": read_distortion, "LowpassFilter": read_lowpass_filter, "Compressor": read_compressor,
    "Reverb": read_reverb,
}


def identify(xa: np.ndarray, y: np.ndarray, sample_rate: int, origin: int = 0,
             effects: Sequence[str] | set[str] | None = None, seconds: float = ANALYSIS_SECONDS,
             stop: Callable[[], bool] | None = None) -> Identification:
    """Read every effect of `effects` (default: all of READERS) off the aligned dry `xa` and wet `y` (`[samples]`,
    `y[n] ~ chain(xa)[n]`, `sample_rate` Hz), on `seconds` of audio from sample `origin` (where the effects' LFOs
    start: the twins' start in the search, the file's start for a pedalboard render of the whole file). The reads
    run in READERS' order (the hypersensitive delays and LFO rates first); `stop()` is asked before each and ends
    the identification when True (the effects left are not read)."""
    t0 = time.perf_counter()
    x = np.asarray(xa, dtype=np.float64)
    w = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or w.ndim != 1 or x.size != w.size:
        raise FxmatchInputError("identify: the aligned dry and wet signals must be [samples] of one length")
    end = min(w.size, origin + int(seconds * sample_rate))
    pair = _Pair(x[origin:end], w[origin:end], int(sample_rate))
    level = 20 * math.log10(max(abs(pair.gain), 1e-12))
    wanted = set(READERS if effects is None else effects)
    names = [n for n in READERS if n in wanted]
    if pair.base <= LINEAR_RESIDUAL * max(pair.energy, 1e-30):
        return Identification({}, level, time.perf_counter() - t0, linear=True)
    reads, notes = {}, []
    for name in names:
        if stop is not None and stop():
            notes.append(f"not read (time budget): {', '.join(n for n in names if n not in reads)}")
            break
        reads[name] = READERS[name](pair)
    for before in CONTEXT_EFFECTS:
        read = reads.get(before)
        if read is None or not _gives_context(read):
            continue
        context = _Pair(_pedalboard(before, read.params, pair.x, pair.rate), pair.y, pair.rate)
        if context.base <= LINEAR_RESIDUAL * max(context.energy, 1e-30):
            continue  # `before` alone explains the pair: nothing left to read after it
        for name in [n for n in AFTER_CONTEXT if n in reads and EFFECTS.index(n) > EFFECTS.index(before)]:
            if stop is not None and stop():
                notes.append(f"not read after {before} (time budget): {name}")
                break
            reads[name] = _merged(reads[name], replace(READERS[name](context), after=before))
    return Identification(reads, level, time.perf_counter() - t0, notes=notes)



def _gives_context(read: Read) -> bool:
    """Whether the effects after `read`'s are read again on the dry take through it (`CONTEXT_EFFECTS`): it explains
    CONTEXT_EVIDENCE of the pair, or it is a bell of at least CONTEXT_BELL_DB."""
    if read.evidence >= CONTEXT_EVIDENCE:
        return True
    return read.effect == "PeakFilter" and abs(read.params.get("gain_db", 0.0)) >= CONTEXT_BELL_DB


def _merged(plain: Read, context: Read) -> Read:
    """One effect's read on the pair and its read after a CONTEXT_EFFECTS effect: the starts of the one with more
    evidence first (the other's best start after them), that evidence, both reads' seconds."""
    first, second = (context, plain) if context.evidence > plain.evidence else (plain, context)
    starts = first.starts + tuple(s for s in second.starts[:1] if s not in first.starts)
    return Read(plain.effect, starts, first.evidence, plain.seconds + context.seconds, first.after)
