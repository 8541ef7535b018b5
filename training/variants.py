"""Other implementations of each effect family, for training targets (`variant_share` in a training config).

The twins copy pedalboard (JUCE), so a model trained on pedalboard alone learns JUCE's exact sound of a family
(its tanh, its compressor's detector, its Freeverb) and names an effect only when it sounds like JUCE's. Real
pedals, plug-ins and SoX do not. Here each effect of a drawn chain is rendered, with probability `share`, by another
implementation of the same family, with the same parameters read in the same units and meaning (issue 21, point
3): the labels stay pedalboard's, the sound varies. Every variant's output is scaled to the RMS of pedalboard's
render of the same effect on the same input, so level-related labels (a compressor's gain reduction, a reverb's
wet level) keep their meaning.

Variants, per effect (one is drawn uniformly, with its own random shape parameters):

- Distortion: hard clipping; an asymmetric tanh (a bias that adds even harmonics); arctan; a cubic soft clipper;
  an exponential "tube-like" curve with different positive and negative knees.
- Compressor: a feed-forward compressor with a soft knee (0-12 dB), an RMS or a peak detector smoothed in dB,
  attack and release as one-pole time constants (JUCE's: a ballistics filter on the peak level).
- PeakFilter: a "proportional-Q" bell (the bandwidth narrows as the gain grows, as many analogue EQs do) or a
  bell whose Q is read between other points (Q times 0.7-1.4).
- Chorus: a feed-forward chorus with a triangle or sine LFO and one or two voices in quadrature.
- Phaser: 4, 6 or 10 first-order all-pass stages (JUCE's has 6), swept by a sine or triangle LFO.
- Delay: a feedback delay with a low-pass filter in its loop (tape or analogue-style darkening repeats).
- Reverb: exponentially decaying noise (a statistical room) whose decay time follows room_size (0.2-4 s) and whose
  high frequencies decay faster with damping, mixed by wet_level and dry_level.
- LowpassFilter, HighpassFilter, Gain: no variant (their definition leaves no room).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numba
import numpy as np
from scipy import signal

from fxmatch.effects import get_spec

Variant = Callable[[np.ndarray, Mapping[str, float], int, np.random.Generator], np.ndarray]


def _db(v: float) -> float:
    return float(10.0 ** (v / 20.0))


# ------------------------------------------------------------------------------------------------ distortion
def _distortion(x: np.ndarray, p: Mapping[str, float], sr: int, rng: np.random.Generator) -> np.ndarray:
    g = _db(p["drive_db"]) * x
    kind = rng.integers(5)
    if kind == 0:
        return np.clip(g, -1.0, 1.0)
    if kind == 1:
        bias = rng.uniform(0.1, 0.5)
        return np.tanh(g + bias) - np.tanh(bias)
    if kind == 2:
        return (2.0 / np.pi) * np.arctan(0.5 * np.pi * g)
    if kind == 3:
        c = np.clip(g, -1.0, 1.0)
        return 1.5 * (c - c ** 3 / 3.0)
    pos, neg = rng.uniform(0.6, 1.6, 2)
    return np.where(g >= 0, 1.0 - np.exp(-pos * g), -(1.0 - np.exp(neg * g)) * rng.uniform(0.6, 1.0))


# ------------------------------------------------------------------------------------------------ compressor
@numba.njit(cache=True)
def _smooth_db(level_db: np.ndarray, attack: float, release: float) -> np.ndarray:
    out = np.empty_like(level_db)
    state = level_db[0] if level_db.size else 0.0
    for i in range(level_db.size):
        coef = attack if level_db[i] > state else release
        state = coef * state + (1.0 - coef) * level_db[i]
        out[i] = state
    return out


def _compressor(x: np.ndarray, p: Mapping[str, float], sr: int, rng: np.random.Generator) -> np.ndarray:
    t, ratio = p["threshold_db"], max(p["ratio"], 1.0)
    attack = np.exp(-1.0 / max(1e-6, p["attack_ms"] * 1e-3 * sr))
    release = np.exp(-1.0 / max(1e-6, p["release_ms"] * 1e-3 * sr))
    if rng.random() < 0.5:  # RMS detector over ~5 ms
        n = max(1, int(0.005 * sr))
        power = signal.lfilter([1.0 / n], [1.0, -(1.0 - 1.0 / n)], x.astype(np.float64) ** 2)
        level = 10.0 * np.log10(np.maximum(power, 1e-12))
    else:
        level = 20.0 * np.log10(np.maximum(np.abs(x.astype(np.float64)), 1e-6))
    level = _smooth_db(level, attack, release)
    knee = rng.uniform(0.0, 12.0)
    over = level - t
    if knee > 0:
        gain_db = np.where(over <= -knee / 2, 0.0,
                           np.where(over >= knee / 2, over * (1 / ratio - 1),
                                    (1 / ratio - 1) * (over + knee / 2) ** 2 / (2 * knee)))
    else:
        gain_db = np.minimum(0.0, over * (1 / ratio - 1))
    return x * 10.0 ** (gain_db / 20.0)


# ------------------------------------------------------------------------------------------------ peak filter
def _peak_filter(x: np.ndarray, p: Mapping[str, float], sr: int, rng: np.random.Generator) -> np.ndarray:
    f0 = min(p["cutoff_frequency_hz"], 0.45 * sr)
    gain, q = p["gain_db"], p["q"]
    if rng.random() < 0.5:
        q = q * (1.0 + abs(gain) / 12.0) / 1.5  # proportional Q
    else:
        q = q * rng.uniform(0.7, 1.4)  # another maker's reading of "Q" (bandwidth between other points)
    a = 10.0 ** (gain / 40.0)
    w0 = 2 * np.pi * f0 / sr
    alpha = np.sin(w0) / (2 * q)
    b = [1 + alpha * a, -2 * np.cos(w0), 1 - alpha * a]
    den = [1 + alpha / a, -2 * np.cos(w0), 1 - alpha / a]
    return signal.lfilter(b, den, x)


# ------------------------------------------------------------------------------------------------ modulation
def _lfo(n: int, rate_hz: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * rate_hz * np.arange(n) / sr
    if rng.random() < 0.5:
        return np.sin(phase)
    return 2.0 / np.pi * np.arcsin(np.sin(phase))  # triangle


def _read_delayed(x: np.ndarray, delay_samples: np.ndarray) -> np.ndarray:
    pos = np.arange(x.size) - delay_samples
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0
    valid0, valid1 = (i0 >= 0) & (i0 < x.size), (i0 + 1 >= 0) & (i0 + 1 < x.size)
    a = np.where(valid0, x[np.clip(i0, 0, x.size - 1)], 0.0)
    b = np.where(valid1, x[np.clip(i0 + 1, 0, x.size - 1)], 0.0)
    return a * (1 - frac) + b * frac


def _chorus(x: np.ndarray, p: Mapping[str, float], sr: int, rng: np.random.Generator) -> np.ndarray:
    centre = p["centre_delay_ms"] * 1e-3 * sr
    swing = p["depth"] * 0.5 * centre
    wet = _read_delayed(x, centre + swing * _lfo(x.size, p["rate_hz"], sr, rng))
    if rng.random() < 0.5:
        wet = 0.5 * (wet + _read_delayed(x, centre + swing * _lfo(x.size, p["rate_hz"] * 1.1, sr, rng)))
    if p["feedback"] > 0:
        wet = wet + p["feedback"] * _read_delayed(wet, np.full(x.size, centre))
    return (1 - p["mix"]) * x + p["mix"] * wet


@numba.njit(cache=True)
def _allpass_sweep(x: np.ndarray, coef: np.ndarray, stages: int, feedback: float) -> np.ndarray:
    out = np.empty_like(x)
    state = np.zeros(stages)
    last = 0.0
    for i in range(x.size):
        v = x[i] + feedback * last
        a = coef[i]
        for s in range(stages):
            y = a * v + state[s]
            state[s] = v - a * y
            v = y
        last = v
        out[i] = v
    return out


def _phaser(x: np.ndarray, p: Mapping[str, float], sr: int, rng: np.random.Generator) -> np.ndarray:
    lfo = _lfo(x.size, p["rate_hz"], sr, rng)
    freq = np.clip(p["centre_frequency_hz"] * 10.0 ** (1.5 * p["depth"] * lfo * 0.5), 20.0, 0.45 * sr)
    t = np.tan(np.pi * freq / sr)
    coef = (t - 1) / (t + 1)
    stages = int(rng.choice([4, 6, 10]))
    wet = _allpass_sweep(x.astype(np.float64), coef, stages, -0.9 * p["feedback"])
    return (1 - p["mix"]) * x + p["mix"] * wet


# ------------------------------------------------------------------------------------------------ delay, reverb
@numba.njit(cache=True)
def _feedback_delay(x: np.ndarray, d: int, feedback: float, lp: float) -> np.ndarray:
    buf = np.zeros(x.size + d)
    out = np.empty_like(x)
    state = 0.0
    for i in range(x.size):
        echo = buf[i]
        state = (1 - lp) * echo + lp * state
        out[i] = echo
        buf[i + d] += x[i] + feedback * state
    return out


def _delay(x: np.ndarray, p: Mapping[str, float], sr: int, rng: np.random.Generator) -> np.ndarray:
    d = max(1, round(p["delay_seconds"] * sr))
    lp = rng.uniform(0.2, 0.8)
    wet = _feedback_delay(x.astype(np.float64), d, min(p["feedback"], 0.95), lp)
    return (1 - p["mix"]) * x + p["mix"] * wet


def _reverb(x: np.ndarray, p: Mapping[str, float], sr: int, rng: np.random.Generator) -> np.ndarray:
    rt60 = 0.2 + 3.8 * p["room_size"] ** 1.5
    n = int(min(rt60, 3.0) * sr)
    t = np.arange(n) / sr
    noise = rng.standard_normal(n)
    lo = signal.sosfilt(signal.butter(2, 2000.0 / (sr / 2), "low", output="sos"), noise)
    hi = noise - lo
    hf_rt = rt60 / (1.0 + 4.0 * p["damping"])
    ir = lo * 10 ** (-3 * t / rt60) + hi * 10 ** (-3 * t / hf_rt)
    ir[: int(0.005 * sr)] *= np.linspace(0, 1, int(0.005 * sr))
    ir /= np.sqrt(np.sum(ir ** 2)) + 1e-12
    wet = signal.fftconvolve(x, ir)[: x.size]
    return 2 * p["dry_level"] * x + 3 * p["wet_level"] * 0.35 * wet


VARIANTS: dict[str, Variant] = {
    "Distortion": _distortion, "Compressor": _compressor, "PeakFilter": _peak_filter, "Chorus": _chorus,
    "Phaser": _phaser, "Delay": _delay, "Reverb": _reverb,
}


def _pedalboard_effect(name: str, params: Mapping[str, float], x: np.ndarray, sr: int) -> np.ndarray:
    plugin = get_spec(name).pedalboard_plugin(params)
    return plugin(np.ascontiguousarray(x[None, :], dtype=np.float32), float(sr))[0]


def _rms(v: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(v, dtype=np.float64))))


def render_variants(names: Sequence[str], params: Sequence[Mapping[str, float]], x: np.ndarray, sample_rate: int,
                    rng: np.random.Generator, share: float) -> tuple[np.ndarray, list[str]]:
    """Render mono `x` `[samples]` through chain `names`, each effect by a variant with probability `share`.

    Returns (float32 `[samples]`, per effect "pedalboard" or "variant"). A variant's output is scaled to the RMS of
    pedalboard's render of the same effect on the same input."""
    y = np.asarray(x, dtype=np.float32)
    used = []
    for name, p in zip(names, params, strict=True):
        reference = _pedalboard_effect(name, p, y, sample_rate)
        variant = VARIANTS.get(name)
        if variant is not None and rng.random() < share:
            out = np.asarray(variant(y.astype(np.float64), p, sample_rate, rng), dtype=np.float64)
            out *= _rms(reference) / max(_rms(out), 1e-9)
            y = out.astype(np.float32)
            used.append("variant")
        else:
            y = reference.astype(np.float32)
            used.append("pedalboard")
    return y, used
