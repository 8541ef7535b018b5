"""Tone match: fit a chain so that the player's own take through it sounds like a reference (issue 23).

The reference and the player's take are two *different* performances, so no sample-wise distance applies. Both
are summarised by content-invariant statistics (`features`): the long-term spectrum in third-octave bands, the
level distribution per octave band (dynamics, crest), the short-term crest factor, the modulation spectrum of the
band envelopes, the decay of the band levels and the echo pattern of the onsets. Each is level-invariant (the
chain-wide output level is fitted apart, as a trailing pedalboard `Gain`). `feature_distance` compares two
summaries; docs/match.md measures which of these statistics separate "the same chain on two performances" from
"another chain" and how the groups are weighted.

`match` starts from the blind estimate of the reference (the encoder's ranking), renders each candidate chain
with pedalboard itself on the player's take, and fits its params with CMA-ES (`cma`) under that distance; the
chain is chosen among the encoder's top candidates and their sub-chains with parsimony; the output level is set
last so that the take through the chain is as loud as the reference. Layers: fxmatch core only (numpy, scipy,
pedalboard, cma; the encoder through `fxmatch.inference`).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fxmatch.chains import parsimonious_choice
from fxmatch.effects import get_spec
from fxmatch.errors import FxmatchInputError
from fxmatch.identify import peak_response_db
from fxmatch.layout import ParamLayout
from fxmatch.mono import checked_mono
from fxmatch.native_rate import phaser_at_rate

# ----------------------------------------------------------------------------------------------------------------
# content-invariant statistics

#: STFT of the statistics: window (s) and hop (s)
FRAME_SECONDS = 2048 / 44100
HOP_SECONDS = 512 / 44100
#: frames more than this below the loudest frame are left out of the spectrum and level statistics (dB)
ACTIVE_RANGE_DB = 50.0
#: "mean_power": the long-term spectrum is the frames' mean power per band; "mean_db": their mean level (dB)
SPECTRUM_MODE = "mean_power"
#: the long-term spectrum's bands are floored this far below its loudest band (dB)
SPECTRUM_RANGE_DB = 40.0
#: third-octave band centres of the long-term spectrum (Hz)
THIRD_OCTAVES = tuple(float(1000.0 * 2.0 ** (k / 3.0)) for k in range(-13, 13))  # 50 Hz - 16 kHz
#: centres (Hz) and width (octaves) of the long-term envelope the match-EQ bell is fitted to (`Features.envelope`):
#: wider bands than the spectrum group's average over more of two different phrases' harmonics (docs/match.md)
ENVELOPE_CENTRES = tuple(float(f) for f in np.geomspace(100.0, 10000.0, 80))
ENVELOPE_OCTAVES = 2.0 / 3.0
#: octave band centres of the level, decay and modulation statistics (Hz)
OCTAVES = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)
LEVEL_PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0, 99.0)
DECAY_PERCENTILES = (2.0, 10.0, 25.0, 75.0, 90.0, 98.0)
#: modulation frequency band edges (Hz) of the band envelopes' modulation spectrum
MODULATION_EDGES = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
#: lag band edges (s) of the onset envelope's autocorrelation (the echo pattern)
ECHO_EDGES = tuple(float(x) for x in np.geomspace(0.03, 1.0, 17))

#: the hand-made statistic groups, in `Features.groups` order
STAT_GROUPS = ("spectrum", "levels", "crest", "modulation", "decay", "echo")
#: the encoder's groups (`ToneFeatures` with a session): effect presence probabilities, the expected normalised
#: params (each chain's params weighted by its probability) and the chains' log-probabilities, averaged over windows
ENCODER_GROUPS = ("presence", "params", "chains")
GROUPS = STAT_GROUPS + ENCODER_GROUPS
#: each group's typical distance between a reference and a take through another chain (measured on MuseScore pairs,
#: docs/match.md): `feature_distance` divides by it, so that the weights below compare like with like
GROUP_SCALE: dict[str, float] = {"spectrum": 5.0, "levels": 5.9, "crest": 1.3, "modulation": 1.5, "decay": 1.3,
                                 "echo": 0.7, "presence": 0.25, "params": 0.087, "chains": 2.0}
#: weight of each group in `feature_distance` (docs/match.md: the encoder's groups separate chains across
#: performances best; the long-term spectrum places an EQ bell, which the encoder places poorly)
DEFAULT_WEIGHTS: dict[str, float] = {"spectrum": 0.5, "levels": 0.25, "crest": 0.25, "modulation": 0.0,
                                     "decay": 0.25, "echo": 0.0, "presence": 1.0, "params": 1.0, "chains": 0.5}


@dataclass(frozen=True)
class Features:
    """Content-invariant statistics of one recording, one array per group (see `GROUPS`)."""

    groups: dict[str, np.ndarray]
    #: RMS level of the whole recording (dBFS), for the output level
    rms_db: float
    #: the long-term envelope (dB, mean power per ENVELOPE_OCTAVES band at ENVELOPE_CENTRES below Nyquist), for the
    #: match-EQ bell (`fit_bell`); not a distance group
    envelope: np.ndarray | None = None


class _Bands:
    """Sums of contiguous FFT bins per fractional-octave band (`fraction` 1/3: third octaves), without BLAS."""

    def __init__(self, freqs: np.ndarray, centres: Sequence[float], fraction: float):
        half = 2.0 ** (fraction / 2.0)
        lo = [int(np.searchsorted(freqs, c / half)) for c in centres]
        hi = [max(a + 1, int(np.searchsorted(freqs, c * half))) for a, c in zip(lo, centres)]
        self.lo, self.hi = np.asarray(lo), np.asarray(hi)

    def __call__(self, power: np.ndarray) -> np.ndarray:
        """`[..., bins]` -> `[..., bands]` (power summed over each band's bins)."""
        cs = np.cumsum(power, axis=-1)
        cs = np.concatenate([np.zeros_like(cs[..., :1]), cs], axis=-1)
        return cs[..., self.hi] - cs[..., self.lo]


def _db(p: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(p, 1e-12))


class FeatureExtractor:
    """`features` at one sample rate, with its band matrices built once."""

    def __init__(self, sample_rate: int):
        self.rate = int(sample_rate)
        self.n_fft = 1 << round(math.log2(FRAME_SECONDS * self.rate))
        self.hop = max(1, round(HOP_SECONDS * self.rate))
        self.window = np.hanning(self.n_fft).astype(np.float32)
        freqs = np.fft.rfftfreq(self.n_fft, 1.0 / self.rate)
        nyq = 0.5 * self.rate
        self.thirds = _Bands(freqs, [c for c in THIRD_OCTAVES if c * 2 ** (1 / 6) < nyq], 1.0 / 3.0)
        self.octaves = _Bands(freqs, [c for c in OCTAVES if c * 2 ** 0.5 < nyq], 1.0)
        self.envelope_centres = np.asarray([c for c in ENVELOPE_CENTRES if c * 2 ** (ENVELOPE_OCTAVES / 2) < nyq])
        self.envelope_bands = _Bands(freqs, self.envelope_centres, ENVELOPE_OCTAVES)
        self.frame_rate = self.rate / self.hop

    def frames(self, x: np.ndarray) -> np.ndarray:
        """Power spectrogram `[frames, bins]` of mono `x` `[samples]`."""
        x = np.asarray(x, dtype=np.float32)
        if x.size < self.n_fft:
            x = np.pad(x, (0, self.n_fft - x.size))
        idx = np.arange(0, x.size - self.n_fft + 1, self.hop)
        frames = np.lib.stride_tricks.sliding_window_view(x, self.n_fft)[idx] * self.window
        spec = np.fft.rfft(frames, axis=-1)
        return (spec.real ** 2 + spec.imag ** 2).astype(np.float64)

    def __call__(self, x: np.ndarray) -> Features:
        """The statistics of mono `x` (float `[samples]` at this rate)."""
        x = np.asarray(x, dtype=np.float64)
        rms = float(np.sqrt(np.mean(x ** 2)) + 1e-12)
        power = self.frames(x / rms)  # level-invariant from here on
        total = power.sum(axis=1)
        active = _db(total) > _db(total).max() - ACTIVE_RANGE_DB
        if active.sum() < 4:
            active = np.ones_like(active)
        groups: dict[str, np.ndarray] = {}
        # long-term spectrum in third octaves, relative to its mean level
        env_bands = self.envelope_bands
        envelope = _db(env_bands(power[active].mean(axis=0)) / (env_bands.hi - env_bands.lo))
        if SPECTRUM_MODE == "mean_db":  # each frame's third-octave levels averaged in dB: no single note dominates
            ltas = _db(self.thirds(power[active])).mean(axis=0)
        else:
            ltas = _db(self.thirds(power[active].mean(axis=0)))
        ltas = np.maximum(ltas, ltas.max() - SPECTRUM_RANGE_DB)  # bands far below the loudest: noise, not tone
        groups["spectrum"] = ltas - ltas.mean()
        # per octave band: the level distribution around the band's mean level (dynamics, crest)
        bands = self.octaves(power)  # [frames, bands]
        band_db = _db(bands)
        mean_db = _db(bands[active].mean(axis=0))
        pct = np.percentile(band_db[active], LEVEL_PERCENTILES, axis=0)  # [percentiles, bands]
        groups["levels"] = (pct - mean_db[None]).ravel()
        # short-term crest factor of the waveform (peak over RMS in 10 ms blocks, dB), its distribution
        blk = max(16, self.rate // 100)
        n = x.size // blk
        blocks = (x[: n * blk] / rms).reshape(n, blk)
        b_rms = np.sqrt(np.mean(blocks ** 2, axis=1))
        loud = b_rms > b_rms.max() * 10 ** (-40 / 20)
        crest = 20 * np.log10(np.max(np.abs(blocks[loud]), axis=1) / np.maximum(b_rms[loud], 1e-9))
        groups["crest"] = np.percentile(crest, (10.0, 50.0, 90.0))
        # decay: frame-to-frame changes of each band's level (dB per frame), their distribution
        diff = np.diff(np.maximum(band_db, mean_db[None] - ACTIVE_RANGE_DB), axis=0)
        groups["decay"] = np.percentile(diff, DECAY_PERCENTILES, axis=0).ravel()
        # modulation spectrum of the band envelopes (dB, relative to each band's total modulation power)
        env = np.maximum(band_db, mean_db[None] - 40.0)
        env = env - env.mean(axis=0, keepdims=True)
        spec = np.abs(np.fft.rfft(env * np.hanning(env.shape[0])[:, None], axis=0)) ** 2
        mf = np.fft.rfftfreq(env.shape[0], 1.0 / self.frame_rate)
        mod = np.stack([spec[(mf >= lo) & (mf < hi)].sum(axis=0)
                        for lo, hi in itertools.pairwise(MODULATION_EDGES)])
        mod_db = _db(mod / np.maximum(spec[mf >= MODULATION_EDGES[0]].sum(axis=0, keepdims=True), 1e-12))
        groups["modulation"] = mod_db.ravel() / 3.0
        # echo pattern: autocorrelation of the onset envelope (half-wave rectified level rise) over lag bands
        flux = np.maximum(np.diff(_db(total + 1e-9 * total.max())), 0.0)
        flux = flux - flux.mean()
        ac = np.correlate(flux, flux, mode="full")[flux.size - 1:]
        ac = ac / max(ac[0], 1e-12)
        lags = np.arange(ac.size) / self.frame_rate
        groups["echo"] = np.array([ac[(lags >= lo) & (lags < hi)].max(initial=0.0) if np.any((lags >= lo) & (lags < hi))
                                   else 0.0 for lo, hi in itertools.pairwise(ECHO_EDGES)]) * 10.0
        return Features(groups, 20 * math.log10(rms), envelope)


class ToneFeatures:
    """The statistics of `FeatureExtractor` and, with an `EstimatorSession`, the encoder's view of the recording:
    its effect presence, expected params and chain log-probabilities, averaged over windows that cover it (the
    encoder was trained to name effects whatever is played: an effect embedding, as ST-ITO uses one)."""

    def __init__(self, sample_rate: int, session: Any = None):
        self.rate = int(sample_rate)
        self.stats = FeatureExtractor(sample_rate)
        self.session = session

    def encoder_groups(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The encoder's groups of mono `x` (float `[samples]` at this rate)."""
        from fxmatch.inference import presence_probabilities
        from fxmatch.refine import resample

        info = self.session.info
        z = resample(np.asarray(x, dtype=np.float32)[None], self.rate, info.sample_rate)[0]
        w = info.window_samples
        if z.size < w:
            z = np.pad(z, (0, w - z.size))
        count = math.ceil(z.size / w)
        starts = np.linspace(0, z.size - w, count).round().astype(int)
        probs, params = self.session.estimate_windows(np.stack([z[s : s + w] for s in starts]))
        p, pr = probs.mean(axis=0), params.mean(axis=0)  # [chains], [chains, params]
        presence = presence_probabilities(info, p)
        return {"presence": np.asarray([presence[e.name] for e in info.effects], dtype=np.float64),
                "params": (p[:, None] * pr).sum(axis=0).astype(np.float64),
                "chains": np.log(p + 1e-4)}

    def __call__(self, x: np.ndarray) -> Features:
        """The statistics of mono `x` (float `[samples]` at this rate)."""
        f = self.stats(x)
        if self.session is not None:
            f.groups.update(self.encoder_groups(x))
        return f


def features(x: np.ndarray, sample_rate: int, session: Any = None) -> Features:
    """Content-invariant statistics of mono `x` (float `[samples]`, `sample_rate` Hz); the encoder's groups too
    with `session` (an `EstimatorSession`)."""
    return ToneFeatures(sample_rate, session)(x)


def group_distances(a: Features, b: Features, weights: Mapping[str, float | np.ndarray] | None = None
                    ) -> dict[str, float]:
    """Mean absolute difference of each group both hold, over its typical value `GROUP_SCALE` (0: identical); with
    `weights`, of the groups it names, each difference weighted by the group's number or per-value array."""
    return {g: float(np.mean(np.abs(a.groups[g] - b.groups[g]) * (1.0 if weights is None else np.asarray(weights[g]))))
            / GROUP_SCALE[g] for g in GROUPS
            if g in a.groups and g in b.groups and (weights is None or g in weights)}


def feature_distance(a: Features, b: Features, weights: Mapping[str, float | np.ndarray] | None = None) -> float:
    """The tone distance: the sum of `group_distances` weighted by `weights` (default DEFAULT_WEIGHTS; symmetric, 0
    for identical statistics). A group's weight is a number, or an array with one weight per value of the group (a
    learned metric, as scripts/measure_tone_distance.py fits one; a constant array equals that number)."""
    return float(sum(group_distances(a, b, DEFAULT_WEIGHTS if weights is None else weights).values()))


# ----------------------------------------------------------------------------------------------------------------
# the fit

#: the highest rate the fit works at (Hz); higher-rate audio is brought down to it
MAX_RATE = 48000
#: the rate the fit renders and compares at (Hz; lower-rate audio stays at its own): pedalboard's renders and the
#: statistics cost half as much as at 48 kHz; the Phaser's params are mapped so that it sweeps the same cutoffs
FIT_RATE = 48000
#: how much of each recording the fit reads (s): its loudest excerpt of this length
FIT_SECONDS = 4.0
#: the encoder's most likely chains whose sub-chains are candidates (`capture.candidates_from_ranked`)
TOP_K = 3
#: candidates fitted by CMA-ES after the screen (the closest at the encoder's params; the encoder's top chain always)
FIT_CHAINS = 2
#: evaluations (pedalboard render + statistics) of the whole fit, screen included
MAX_EVALUATIONS = 200
#: CMA-ES step size in normalised params ([0, 1] per param)
SIGMA0 = 0.2
#: parsimony: the shortest chain within this fraction of the closest distance wins
TOLERANCE = 0.05
#: the fit's pull towards its start (the encoder's params, the match-EQ bell's): the distance plus this times the
#: mean squared move of the normalised params from the start (where two performances leave the statistics
#: ambiguous, the blind estimate's reading of the reference and the bell read off the spectra stand; docs/match.md:
#: 1, 3 and 10 measured on development pairs)
PRIOR_WEIGHT = 10.0
#: the output level is clipped to +-this (dB)
MAX_OUTPUT_DB = 24.0


@dataclass(frozen=True)
class MatchProgress:
    """Where a running fit is: fraction done (0-1, never decreasing), evaluations so far, the closest chain so far
    and its distance relative to the no-effect chain's, seconds elapsed; `done` on the last report."""

    fraction: float
    evaluations: int
    best_chain: tuple[str, ...]
    best_relative: float
    elapsed: float
    done: bool = False


#: progress(report) after each batch of evaluations; its return value is ignored
MatchProgressFn = Callable[[MatchProgress], None]


class MatchCancelled(Exception):
    """Raised by `match` when its `should_stop` callback returns True."""


@dataclass(frozen=True)
class ChainTry:
    """One fitted candidate: chain, params in units, tone distance, evaluations spent, the encoder's probability."""

    chain: tuple[str, ...]
    params: list[tuple[str, dict[str, float]]]
    distance: float
    evaluations: int
    prior: float | None = None


@dataclass
class MatchResult:
    """A finished tone match: the chosen chain (output level last), its ranking, the blind estimate, the costs."""

    #: the chosen chain with its output level (a trailing Gain when audible), params in pedalboard's units
    chain: list[tuple[str, dict[str, float]]]
    output_level_db: float
    #: tone distance of the chosen chain, of the blind estimate and of no effect (take as it is)
    distance: float
    blind_distance: float
    no_effect_distance: float
    ranking: list[ChainTry]
    #: the encoder's estimate of the reference: its chosen chain with its params (no output level)
    blind_chain: list[tuple[str, dict[str, float]]]
    sample_rate: int
    seconds: float
    evaluations: int
    #: False when the time budget ended the fit early
    complete: bool
    model: str = ""
    warnings: list[str] = field(default_factory=list)
    #: how much of each recording the fit heard (s): the loudest `seconds` of each, or the shorter one whole
    heard_seconds: float = 0.0

    @property
    def chain_names(self) -> tuple[str, ...]:
        from fxmatch.chains import split_output_level

        return tuple(n for n, _ in split_output_level(self.chain)[0])

    @property
    def relative(self) -> float:
        """The chosen chain's tone distance over no effect's (0: the reference's statistics exactly)."""
        return self.distance / max(self.no_effect_distance, 1e-12)

    @property
    def label(self) -> str:
        from fxmatch.chains import chain_label

        return chain_label(self.chain_names, output_db=self.output_level_db)

    def to_dict(self, top: int | None = 5) -> dict[str, Any]:
        """JSON-ready summary (the first `top` chains of the ranking)."""
        return {
            "chain": list(self.chain_names), "output_level_db": round(self.output_level_db, 3),
            "distance": round(self.distance, 5), "relative_distance": round(self.relative, 5),
            "blind_chain": [n for n, _ in self.blind_chain], "blind_distance": round(self.blind_distance, 5),
            "no_effect_distance": round(self.no_effect_distance, 5), "sample_rate": self.sample_rate,
            "seconds": round(self.seconds, 3), "heard_seconds": round(self.heard_seconds, 3),
            "evaluations": self.evaluations, "complete": self.complete,
            "model": self.model, "warnings": list(self.warnings),
            "ranking": [{"chain": list(t.chain), "distance": round(t.distance, 5), "evaluations": t.evaluations,
                         "prior": None if t.prior is None else round(t.prior, 5)} for t in self.ranking[:top]],
        }

    def preset(self):
        """The chosen chain as a `Preset`, the fit's figures as its `estimate` metadata."""
        from fxmatch.preset import Preset

        meta = {"model": f"tone match ({self.model})" if self.model else "tone match",
                "no_effect": not self.chain_names, "match": {k: v for k, v in self.to_dict().items()
                                                              if k not in ("ranking", "warnings")},
                "warnings": list(self.warnings),
                "ranking": [{"chain": list(t.chain), "distance": round(t.distance, 5)} for t in self.ranking[:5]]}
        return Preset.from_chain([(n, {k: round(v, 6) for k, v in p.items()}) for n, p in self.chain], meta)


#: below this RMS level (dBFS) a recording is called silent
SILENCE_DBFS = -70.0
#: the shortest recording the statistics mean something on (s)
MIN_SECONDS = 1.0


def prepare(x: np.ndarray, sample_rate: int, what: str, seconds: float = FIT_SECONDS) -> tuple[np.ndarray, int]:
    """Mono float32 at min(rate, MAX_RATE) Hz, its loudest `seconds`; FxmatchInputError when silent or too short."""
    from fxmatch.refine import loudest_excerpt, resample

    mono = checked_mono(x, f"match: the {what}", np.float32)
    rate = min(int(sample_rate), MAX_RATE)
    if mono.size < MIN_SECONDS * sample_rate:
        raise FxmatchInputError(f"match: the {what} is too short ({mono.size / sample_rate:.2f} s; the tone match "
                                f"needs at least {MIN_SECONDS:g} s, {seconds:g} s or more is better)")
    mono = resample(mono[None], int(sample_rate), rate)[0]
    length = min(mono.size, int(seconds * rate))
    start = loudest_excerpt(mono, length, max(1, rate // 10))
    out = np.ascontiguousarray(mono[start : start + length])
    if 20 * math.log10(float(np.sqrt(np.mean(np.square(out, dtype=np.float64)))) + 1e-12) < SILENCE_DBFS:
        raise FxmatchInputError(f"match: the {what} is silent (below {SILENCE_DBFS:.0f} dBFS)")
    return out, rate


class _Objective:
    """Tone distance of candidate chains on the take, rendered by pedalboard, counted and timed."""

    def __init__(self, take: np.ndarray, rate: int, target: Features, weights: Mapping[str, float | np.ndarray] | None,
                 budget: float | None, should_stop: Callable[[], bool] | None, native_rate: int | None = None,
                 session: Any = None):
        self.take, self.rate, self.target, self.weights = take[None], rate, target, weights
        self.native_rate = int(native_rate or rate)
        self.extract = ToneFeatures(rate, session)
        self.layouts: dict[tuple[str, ...], ParamLayout] = {}
        self.evaluations = 0
        self.t0 = time.perf_counter()
        self.budget, self.should_stop = budget, should_stop

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def out_of_time(self) -> bool:
        return self.budget is not None and self.elapsed() >= self.budget

    def check(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise MatchCancelled("match: cancelled")

    def layout(self, chain: Sequence[str]) -> ParamLayout:
        """`chain`'s own normalised vector (`ParamLayout.of_chain`: its effects' params in chain order)."""
        key = tuple(chain)
        if key not in self.layouts:
            self.layouts[key] = ParamLayout.of_chain(key)
        return self.layouts[key]

    def decode(self, chain: Sequence[str], u: np.ndarray) -> list[tuple[str, dict[str, float]]]:
        """Normalised params `[n_params]` in [0, 1] -> (effect, params in units) per effect, within pedalboard's
        limits."""
        return self.layout(chain).decode(chain, u, within_limits=True)

    def encode(self, chain: Sequence[str], params: Mapping[str, Mapping[str, float]] | None) -> np.ndarray:
        """(effect -> params in units) -> normalised `[n_params]` (an effect without params: its defaults)."""
        layout, given = self.layout(chain), params or {}
        return layout.encode(chain, {n: given.get(n) or get_spec(n).defaults() for n in chain}, np.zeros(layout.width))

    def render(self, chain: Sequence[tuple[str, Mapping[str, float]]]) -> np.ndarray:
        """The take through pedalboard with `chain`: float32 `[samples]`."""
        import pedalboard

        if not chain:
            return self.take[0]
        plugins = []
        for n, p in chain:
            if n == "Phaser" and self.native_rate != self.rate:
                p = phaser_at_rate(p, self.rate, self.native_rate)
                p["depth"] = min(1.0, p["depth"])  # pedalboard's limit
            plugins.append(get_spec(n).pedalboard_plugin(p))
        return pedalboard.Pedalboard(plugins)(self.take, float(self.rate))[0]

    def __call__(self, chain: Sequence[tuple[str, Mapping[str, float]]]) -> float:
        self.evaluations += 1
        y = self.render(chain)
        if not np.all(np.isfinite(y)) or float(np.max(np.abs(y))) < 1e-7:
            return math.inf
        return feature_distance(self.extract(y), self.target, self.weights)


#: the canonical order an added PeakFilter takes its place in (DESIGN.md's default vocabulary)
EQ_ORDER = ("Compressor", "Distortion", "PeakFilter", "Chorus", "Phaser", "Delay", "Reverb")

#: the band the bell is fitted over (Hz): the bell's range and an octave-wide margin for its skirts
BELL_FIT_HZ = (150.0, 8000.0)
#: the fit's robust loss: residuals beyond this (dB) count linearly (two phrases' envelopes differ by ~3 dB RMS)
BELL_LOSS_SCALE_DB = 1.0
#: the fit's starts: centres (Hz), each with a boost and a cut
BELL_STARTS_HZ = tuple(float(f) for f in np.geomspace(250.0, 5000.0, 8))


def fit_bell(reference: Features, take: Features, rate: float) -> dict[str, float]:
    """PeakFilter params (units) whose response best explains the difference of the two long-term envelopes
    (`Features.envelope`, 2/3-octave bands) within BELL_FIT_HZ: least squares (soft L1) of pedalboard's PeakFilter
    response plus a level and a tilt (dB per octave: two phrases in different registers differ by one) from
    several starts; the centre, gain and q within the PeakFilter's training ranges."""
    import scipy.optimize

    freqs = np.asarray(ENVELOPE_CENTRES[: reference.envelope.size])
    diff = reference.envelope - take.envelope
    inside = (freqs >= BELL_FIT_HZ[0]) & (freqs <= min(BELL_FIT_HZ[1], 0.45 * rate))
    f, d = freqs[inside], diff[inside]
    octs = np.log2(f / 1000.0)
    spec = get_spec("PeakFilter")
    lims = {p.name: (p.minimum, p.maximum) for p in spec.params}
    lo = [math.log(lims["cutoff_frequency_hz"][0]), lims["gain_db"][0], math.log(lims["q"][0]), -40.0, -6.0]
    hi = [math.log(lims["cutoff_frequency_hz"][1]), lims["gain_db"][1], math.log(lims["q"][1]), 40.0, 6.0]

    def residual(t: np.ndarray) -> np.ndarray:
        return peak_response_db(f, rate, math.exp(t[0]), t[1], math.exp(t[2])) + t[3] + t[4] * octs - d

    best = None
    for centre in BELL_STARTS_HZ:
        for gain in (-8.0, 8.0):
            t0 = np.clip([math.log(centre), gain, 0.0, float(np.median(d)), 0.0], lo, hi)
            res = scipy.optimize.least_squares(residual, t0, bounds=(lo, hi), loss="soft_l1",
                                               f_scale=BELL_LOSS_SCALE_DB)
            if best is None or res.cost < best.cost:
                best = res
    fc, gain, lq = best.x[:3]
    return {"cutoff_frequency_hz": float(math.exp(fc)), "gain_db": float(gain), "q": float(math.exp(lq))}


#: the harmonic analysis of `note_harmonics`: STFT window (s), hop (s), candidate pitches (MIDI notes), the highest
#: harmonic frequency (Hz) and count read, and the level range (dB below a note's strongest harmonic) kept
HARMONIC_FRAME_SECONDS = 8192 / 44100
HARMONIC_HOP_SECONDS = 1024 / 44100
HARMONIC_NOTES = tuple(range(28, 96))
HARMONIC_MAX_HZ = 9000.0
HARMONIC_COUNT = 40
HARMONIC_RANGE_DB = 45.0


def _harmonic_top_hz(rate: float) -> float:
    """The highest harmonic frequency read at `rate` Hz: HARMONIC_MAX_HZ, below Nyquist."""
    return min(HARMONIC_MAX_HZ, 0.45 * rate)


def note_harmonics(x: np.ndarray, rate: int) -> dict[int, tuple[float, np.ndarray, int]]:
    """The harmonic levels of each note heard in mono `x` (float `[samples]` at `rate` Hz): {MIDI note: (f0,
    mean power of harmonics 1..HARMONIC_COUNT (0 above HARMONIC_MAX_HZ), frames)}. Each frame within 30 dB of the
    loudest is given the equal-tempered pitch whose harmonics (1-10) stand out most over the points halfway
    between them (compressed magnitudes); notes heard in fewer than two frames are left out."""
    x = np.asarray(x, dtype=np.float64)
    n_fft = 1 << round(math.log2(HARMONIC_FRAME_SECONDS * rate))
    hop = max(1, round(HARMONIC_HOP_SECONDS * rate))
    x = x / (float(np.sqrt(np.mean(x ** 2))) + 1e-12)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    idx = np.arange(0, x.size - n_fft + 1, hop)
    spec = np.fft.rfft(np.lib.stride_tricks.sliding_window_view(x, n_fft)[idx] * np.hanning(n_fft), axis=-1)
    power = spec.real ** 2 + spec.imag ** 2
    total = power.sum(axis=1)
    active = np.flatnonzero(_db(total) > _db(total).max() - 30.0)
    power = power[active]
    df = rate / n_fft

    def peaks(values: np.ndarray, freqs: np.ndarray, tol: float) -> np.ndarray:
        lo = np.clip(np.floor(freqs * (1 - tol) / df).astype(int), 0, values.shape[1] - 1)
        hi = np.clip(np.ceil(freqs * (1 + tol) / df).astype(int) + 1, 1, values.shape[1])
        return np.stack([values[:, a:b].max(axis=1) for a, b in zip(lo, hi)], axis=1)

    comp = power ** 0.25  # magnitude ** 0.5
    f0s = 440.0 * 2.0 ** ((np.asarray(HARMONIC_NOTES) - 69) / 12.0)
    salience = []
    for f0 in f0s:
        k = np.arange(1, 11)
        k = k[k * f0 < _harmonic_top_hz(rate)]
        salience.append((peaks(comp, k * f0, 0.015).sum(axis=1) - peaks(comp, (k + 0.5) * f0, 0.015).sum(axis=1))
                        / math.sqrt(max(1, k.size)))
    best = np.argmax(np.stack(salience, axis=1), axis=1)
    sums: dict[int, list] = {}
    for t, j in enumerate(best):
        f0 = float(f0s[j])
        count = min(HARMONIC_COUNT, int(_harmonic_top_hz(rate) // f0))
        levels = np.zeros(HARMONIC_COUNT)
        levels[:count] = peaks(power[t : t + 1], np.arange(1, count + 1) * f0, 0.02)[0]
        entry = sums.setdefault(int(HARMONIC_NOTES[j]), [f0, np.zeros(HARMONIC_COUNT), 0])
        entry[1] += levels
        entry[2] += 1
    return {m: (f0, acc / n, n) for m, (f0, acc, n) in sums.items() if n >= 2}


#: the bell grid of `bell_from_harmonics`: centres (Hz), q and gains (dB)
HARMONIC_BELL_CENTRES = tuple(float(f) for f in np.geomspace(200.0, 6000.0, 60))
HARMONIC_BELL_QS = (0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0)
HARMONIC_BELL_GAINS = tuple(float(g) for g in range(-12, 13) if g)


def bell_from_harmonics(reference: Mapping[int, tuple[float, np.ndarray, int]],
                        take: Mapping[int, tuple[float, np.ndarray, int]], rate: float) -> dict[str, float] | None:
    """PeakFilter params (units) that explain how the reference's notes' harmonic levels (`note_harmonics`) differ
    from the take's: every harmonic level in dB is modelled as a profile over the harmonic number shared by both
    performances (the instrument), a level per note, and on the reference the bell's response at the harmonic's
    frequency; the bell on a grid (HARMONIC_BELL_*) that leaves the least squared error, the notes weighted by the
    square root of their frames. None when either side has no note."""
    if not reference or not take:
        return None
    rows = []
    for side, notes in ((0, reference), (1, take)):
        for j, (_, (f0, levels, frames)) in enumerate(sorted(notes.items())):
            count = min(HARMONIC_COUNT, int(_harmonic_top_hz(rate) // f0))
            db = _db(levels[:count])
            for k in np.flatnonzero(db > db.max() - HARMONIC_RANGE_DB):
                rows.append((side, j, k, (k + 1) * f0, db[k], math.sqrt(frames)))
    if not rows:
        return None
    table = np.asarray(rows)
    side, note, k = table[:, 0].astype(int), table[:, 1].astype(int), table[:, 2].astype(int)
    freqs, y, w = table[:, 3], table[:, 4], table[:, 5] / table[:, 5].max()
    notes_of = {key: i for i, key in enumerate(sorted(set(zip(side.tolist(), note.tolist()))))}
    design = np.zeros((len(table), k.max() + 1 + len(notes_of)))
    design[np.arange(len(table)), k] = 1.0
    design[np.arange(len(table)), k.max() + 1 + np.asarray([notes_of[s, n] for s, n in zip(side, note)])] = 1.0
    basis, _ = np.linalg.qr(design * w[:, None])

    def residual(v: np.ndarray) -> np.ndarray:
        return v - basis @ (basis.T @ v)

    base = residual(y * w)
    ref = side == 0
    best, best_cost = None, math.inf
    for fc in HARMONIC_BELL_CENTRES:
        for q in HARMONIC_BELL_QS:
            for gain in HARMONIC_BELL_GAINS:
                v = np.zeros_like(y)
                v[ref] = peak_response_db(freqs[ref], rate, fc, gain, q)
                r = base - residual(v * w)
                cost = float(r @ r)
                if cost < best_cost:
                    best, best_cost = (fc, gain, q), cost
    fc, gain, q = best
    return {"cutoff_frequency_hz": float(fc), "gain_db": float(gain), "q": float(q)}


#: two bells agree when their centres are within this many octaves and their gains have one sign
AGREE_OCTAVES = 1.0 / 3.0


def agreed_bell(bells: Sequence[Mapping[str, float]]) -> dict[str, float] | None:
    """The bell that the first two of `bells` (PeakFilter params in units) agree on: their centres within
    AGREE_OCTAVES and their gains of one sign give the geometric mean centre and q and the mean gain; else None."""
    a, b = bells[0], bells[1]
    fa, fb = a["cutoff_frequency_hz"], b["cutoff_frequency_hz"]
    if abs(math.log2(fa / fb)) > AGREE_OCTAVES or (a["gain_db"] > 0) != (b["gain_db"] > 0):
        return None
    return {"cutoff_frequency_hz": math.sqrt(fa * fb), "gain_db": 0.5 * (a["gain_db"] + b["gain_db"]),
            "q": math.sqrt(a["q"] * b["q"])}


def _choose(tries: Sequence[ChainTry], tolerance: float) -> list[ChainTry]:
    """The ranking: the shortest chain within `tolerance` of the closest first, then by distance."""
    ranked = sorted(tries, key=lambda t: t.distance)
    chosen = ranked[parsimonious_choice([len(t.chain) for t in ranked], [t.distance for t in ranked], tolerance,
                                        slack=1e-9)]
    return [chosen] + [t for t in ranked if t is not chosen]


def _cmaes(obj: _Objective, chain: tuple[str, ...], u0: np.ndarray, evaluations: int, seed: int,
           on_generation: Callable[[float], None] | None = None, prior_weight: float = PRIOR_WEIGHT
           ) -> tuple[np.ndarray, float, int, bool]:
    """CMA-ES on `chain`'s normalised params from `u0` for at most `evaluations` renders, minimising the distance
    plus `prior_weight` x the mean squared move from `u0`: (best params, that sum, renders used, whether it ended
    on its own rather than on the time budget); `on_generation(best sum)` after each generation."""
    import cma

    x0 = np.clip(u0, 0.02, 0.98)
    dim = x0.size
    if dim == 1:  # CMA-ES needs two dimensions: a second one that nothing reads
        x0 = np.append(x0, 0.5)
    es = cma.CMAEvolutionStrategy(x0, SIGMA0, {"bounds": [0.0, 1.0], "seed": int(seed) + 1, "verbose": -9,
                                               "maxfevals": max(8, int(evaluations))})
    best_u, best_d, used = x0[:dim], math.inf, 0
    anchor = np.asarray(u0, dtype=np.float64)[:dim]
    while not es.stop():
        if obj.out_of_time():
            return best_u, best_d, used, False
        points = es.ask()
        values = []
        for u in points:
            obj.check()
            v = np.asarray(u)[:dim]
            values.append(obj(obj.decode(chain, v)) + prior_weight * float(np.mean((v - anchor) ** 2)))
        used += len(points)
        es.tell(points, [v if math.isfinite(v) else 1e9 for v in values])
        i = int(np.argmin(values))
        if values[i] < best_d:
            best_u, best_d = np.asarray(points[i])[:dim], float(values[i])
        if on_generation is not None:
            on_generation(best_d)
    return best_u, best_d, used, True


def match(
    reference: np.ndarray,
    take: np.ndarray,
    sample_rate: int,
    *,
    session: Any = None,
    estimate: Any = None,
    top_k: int = TOP_K,
    fit_chains: int = FIT_CHAINS,
    max_evaluations: int = MAX_EVALUATIONS,
    seconds: float = FIT_SECONDS,
    time_budget: float | None = None,
    progress: MatchProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    seed: int = 0,
    weights: Mapping[str, float | np.ndarray] | None = None,
    take_rate: int | None = None,
    use_encoder: bool = True,
    prior_weight: float = PRIOR_WEIGHT,
) -> MatchResult:
    """Fit a chain so that `take` through it sounds like `reference` (two performances; float `[samples]` or
    `[channels, samples]`, channels averaged; `sample_rate` Hz, `take_rate` Hz for the take when it differs).

    The blind estimate of the reference (`estimate`, else `session.estimate_array`; `session` an
    `EstimatorSession`) names the candidates: its `top_k` chains and their sub-chains, each from its params, and
    the match-EQ bells read off the two recordings (`fit_bell`, `bell_from_harmonics`). Every
    candidate is screened at those params; the `fit_chains` closest (the encoder's chosen chain always among them)
    are fitted by CMA-ES on the normalised params with pedalboard rendering the take (at most `max_evaluations`
    renders in all, `time_budget` s); the shortest chain within TOLERANCE of the closest wins; its output level
    makes the take through it as loud as the reference (RMS). `should_stop()` is polled between renders
    (MatchCancelled); `progress(MatchProgress)` is called after each CMA-ES generation.
    """
    from fxmatch.capture import candidates_from_ranked
    from fxmatch.chains import with_output_level
    from fxmatch.refine import resample

    ref, native = prepare(reference, sample_rate, "reference", seconds)
    tk, t_rate = prepare(take, take_rate or sample_rate, "take", seconds)
    if estimate is None:
        if session is None:
            raise ValueError("match: give an EstimatorSession (session=) or the reference's estimate (estimate=)")
        estimate = session.estimate_array(ref, native, top=None, source="reference")
    rate = min(native, FIT_RATE)
    ref, tk = resample(ref[None], native, rate)[0], resample(tk[None], t_rate, rate)[0]
    tone = ToneFeatures(rate, session if use_encoder else None)
    target = tone(ref)
    obj = _Objective(tk, rate, target, weights, time_budget, should_stop, native, tone.session)
    blind = [(n, dict(p)) for n, p in estimate.best.params]
    cands = candidates_from_ranked(estimate.ranked, top_k)
    if not any(c.chain == tuple(estimate.best.chain) for c in cands):
        cands = list(cands) + candidates_from_ranked([estimate.best], 1)
    import cma  # noqa: F401 - fail early when the optional optimiser is missing

    # a match EQ's bell, read off the two recordings two ways, each tried alone, added to the encoder's chain, and in
    # place of the encoder's own PeakFilter params (the encoder places a bell poorly)
    bells = [fit_bell(target, obj.extract.stats(tk), rate)]
    harmonic_bell = bell_from_harmonics(note_harmonics(ref, rate), note_harmonics(tk, rate), rate)
    if harmonic_bell is not None:
        bells.append(harmonic_bell)
    agreed = agreed_bell(bells) if len(bells) >= 2 else None
    chains = set(getattr(getattr(session, "info", None), "chains", ()) or ())
    extra: list[tuple[tuple[str, ...], dict[str, dict[str, float]]]] = []
    for bell in bells:
        extra.append((("PeakFilter",), {"PeakFilter": bell}))
        if "PeakFilter" not in estimate.best.chain:
            order = [n for n in EQ_ORDER if n in estimate.best.chain or n == "PeakFilter"]
            extra.append((tuple(order), {**dict(estimate.best.params), "PeakFilter": bell}))
        for cand in list(cands):
            if "PeakFilter" in cand.chain:
                extra.append((cand.chain, {**dict(cand.params or ()), "PeakFilter": bell}))
    progress_state = {"best": ((), math.inf)}
    no_effect = obj([])
    total = max(1, int(max_evaluations))

    def report(done: bool = False) -> None:
        if progress is not None:
            chain, d = progress_state["best"]
            frac = 1.0 if done else min(0.99, obj.evaluations / total)
            progress(MatchProgress(frac, obj.evaluations, tuple(chain), d / max(no_effect, 1e-12), obj.elapsed(),
                                   done))

    tries: dict[tuple[str, ...], ChainTry] = {}

    def note(chain: tuple[str, ...], params: list, d: float, used: int, prior: float | None) -> None:
        old = tries.get(chain)
        if old is None or d < old.distance:
            tries[chain] = ChainTry(chain, params, d, used + (old.evaluations if old else 0), prior)
        elif old is not None:
            tries[chain] = ChainTry(old.chain, old.params, old.distance, old.evaluations + used, old.prior)
        if d < progress_state["best"][1]:
            progress_state["best"] = (chain, d)

    # 1. the screen: every candidate at the encoder's params
    priors = {c.chain: c.prior for c in cands}
    note((), [], no_effect, 1, priors.get(()))
    top = tuple(estimate.best.chain)
    blind_try = ChainTry((), [], no_effect, 1, priors.get(()))
    for cand in cands:
        if cand.chain:
            obj.check()
            params = obj.decode(cand.chain, obj.encode(cand.chain, dict(cand.params or ())))
            d = obj(params)
            note(cand.chain, params, d, 1, cand.prior)
            if cand.chain == top:
                blind_try = ChainTry(top, params, d, 1, cand.prior)
    for chain, start in extra:
        if chains and chain not in chains:
            continue
        obj.check()
        params = obj.decode(chain, obj.encode(chain, start))
        note(chain, params, obj(params), 1, priors.get(chain))
    report()
    blind_distance = blind_try.distance
    # 2. CMA-ES on the closest few (the encoder's chosen chain always among them)
    screened = sorted((t for t in tries.values() if t.chain), key=lambda t: t.distance)
    to_fit = [t.chain for t in screened[: max(0, fit_chains)]]
    if top and top not in to_fit:
        to_fit = (to_fit[:-1] if len(to_fit) >= max(1, fit_chains) else to_fit) + [top]
    dims = [obj.layout(c).width for c in to_fit]
    reserve = 3 * len(to_fit[0]) if to_fit else 0  # the drop-one tests of step 3
    left = max(0, total - obj.evaluations - reserve)
    complete = True
    for chain, dim in zip(to_fit, dims):
        if obj.out_of_time():
            complete = False
            break
        share = left * dim / max(1, sum(dims))
        def generation(d: float, chain: tuple[str, ...] = chain) -> None:
            if d < progress_state["best"][1]:
                progress_state["best"] = (chain, d)
            report()

        u, d, used, finished = _cmaes(obj, chain, obj.encode(chain, dict(tries[chain].params)), int(share), seed,
                                      generation, prior_weight)
        complete = complete and finished
        note(chain, obj.decode(chain, u), d, used, priors.get(chain))
        report()
    # 3. parsimony: each fitted chain without one of its effects, the others' fitted params kept
    for chain in list(to_fit):
        if obj.out_of_time() or len(chain) < 2:
            continue
        fitted = dict(tries[chain].params)
        for drop in chain:
            sub = tuple(n for n in chain if n != drop)
            obj.check()
            params = [(n, dict(fitted[n])) for n in sub]
            note(sub, params, obj(params), 1, priors.get(sub))
    ranking = _choose(list(tries.values()), TOLERANCE)
    chosen = ranking[0]
    # 4. where the choice is no effect, two readers that agree on a bell outrank the distance, which barely sees a
    # bell across performances (added to other chains, the agreed bell put bells that are not there into random
    # chains: docs/match.md, 2 of 4 fresh random-chain pairs where the readers agreed)
    bell_alone = ("PeakFilter",)
    if agreed is not None and not chosen.chain and not obj.out_of_time() and (not chains or bell_alone in chains):
        params = obj.decode(bell_alone, obj.encode(bell_alone, {"PeakFilter": agreed}))
        obj.check()
        with_bell = ChainTry(bell_alone, params, obj(params), 1, priors.get(bell_alone))
        chosen, ranking = with_bell, [with_bell] + [t for t in ranking if t.chain != bell_alone]
    out = obj.render(chosen.params).astype(np.float64)
    level = float(np.clip(target.rms_db - 10 * math.log10(float(np.mean(out ** 2)) + 1e-24), -MAX_OUTPUT_DB,
                          MAX_OUTPUT_DB))
    progress_state["best"] = (chosen.chain, chosen.distance)
    report(done=True)
    warnings = []
    if not complete:
        warnings.append("the time budget ended the fit early; a longer budget may find a closer chain")
    return MatchResult(with_output_level(chosen.params, level), level, chosen.distance, blind_distance, no_effect,
                       ranking, blind, native, obj.elapsed(), obj.evaluations, complete,
                       getattr(estimate, "model", ""), warnings, min(ref.size, tk.size) / rate)


#: aligned partials correlating at least this much mean one performance (`fxmatch.capture.partials_correlation`:
#: 0.67-1.0 for the bundled examples' own dry/wet pairs, -0.20 to 0.23 for different performances, docs/capture.md)
SAME_PERFORMANCE_PARTIALS = 0.5


def same_performance(reference: np.ndarray, take: np.ndarray, rate: int) -> Any:
    """The `fxmatch.capture.Alignment` of `take` (dry) against `reference` (wet), mono float `[samples]` at one
    `rate` Hz, when they look like one performance (they align and their partials correlate at least
    SAME_PERFORMANCE_PARTIALS): then capture, which is exact, applies; else None."""
    from fxmatch.capture import align

    try:
        al = align(take, reference, rate)
    except FxmatchInputError:
        return None
    if al.partials is None or al.partials < SAME_PERFORMANCE_PARTIALS:
        return None
    return al
