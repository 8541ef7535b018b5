"""Short deterministic test signals: guitar-like plucks, noise bursts, impulses and silence.

All return float32 `[channels, samples]` arrays, seeded, peak around -6 dBFS unless silent.
"""

from __future__ import annotations

import numpy as np

SIGNAL_KINDS: tuple[str, ...] = ("pluck", "noise", "impulse", "silence", "chord")


def pluck(
    sample_rate: float, seconds: float, rng: np.random.Generator, channels: int = 1, n_notes: int = 3
) -> np.ndarray:
    """Plucked-string notes: inharmonic partials with frequency-dependent decay and a soft attack."""
    n = round(sample_rate * seconds)
    t = np.arange(n) / sample_rate
    out = np.zeros(n, dtype=np.float64)
    onsets = np.sort(rng.uniform(0, seconds * 0.7, size=n_notes))
    onsets[0] = 0.0
    for onset in onsets:
        f0 = 82.41 * 2 ** (rng.integers(0, 30) / 12)
        start = int(onset * sample_rate)
        tt = t[: n - start]
        note = np.zeros_like(tt)
        for k in range(1, 25):
            fk = k * f0 * np.sqrt(1 + 1e-4 * k * k)
            if fk > 0.45 * sample_rate:
                break
            decay = 1.5 + 0.8 * k
            note += rng.uniform(0.3, 1.0) / k * np.sin(2 * np.pi * fk * tt + rng.uniform(0, 2 * np.pi)) * np.exp(
                -decay * tt
            )
        note *= 1 - np.exp(-tt * 2000.0)
        out[start:] += note * rng.uniform(0.5, 1.0)
    out = out / (np.max(np.abs(out)) + 1e-12) * 0.5
    return _channels(out, channels, rng)


def chord(sample_rate: float, seconds: float, rng: np.random.Generator, channels: int = 1) -> np.ndarray:
    """Several simultaneous plucks (a strummed chord)."""
    return pluck(sample_rate, seconds, rng, channels=channels, n_notes=6)


def noise(sample_rate: float, seconds: float, rng: np.random.Generator, channels: int = 1) -> np.ndarray:
    """White-noise bursts with silent gaps (exercises attack and release)."""
    n = round(sample_rate * seconds)
    env = np.zeros(n)
    pos = 0
    while pos < n:
        length = int(rng.uniform(0.05, 0.4) * sample_rate)
        gap = int(rng.uniform(0.02, 0.3) * sample_rate)
        env[pos : pos + length] = rng.uniform(0.1, 1.0)
        pos += length + gap
    sig = rng.standard_normal(n) * env * 0.25
    return _channels(sig, channels, rng)


def impulse(sample_rate: float, seconds: float, rng: np.random.Generator, channels: int = 1) -> np.ndarray:
    """A few unit-ish impulses at random positions."""
    n = round(sample_rate * seconds)
    sig = np.zeros(n)
    for pos in rng.integers(0, max(1, n // 2), size=3):
        sig[pos] = rng.uniform(0.3, 0.9)
    return _channels(sig, channels, rng)


def silence(sample_rate: float, seconds: float, rng: np.random.Generator, channels: int = 1) -> np.ndarray:
    """Digital silence."""
    n = round(sample_rate * seconds)
    return np.zeros((channels, n), dtype=np.float32)


def make(kind: str, sample_rate: float, seconds: float, seed: int = 0, channels: int = 1) -> np.ndarray:
    """Test signal of `kind` (one of SIGNAL_KINDS) as float32 `[channels, samples]`."""
    rng = np.random.default_rng(seed)
    makers = {"pluck": pluck, "noise": noise, "impulse": impulse, "silence": silence, "chord": chord}
    if kind not in makers:
        raise ValueError(f"unknown signal kind {kind!r}; known: {', '.join(SIGNAL_KINDS)}")
    return makers[kind](sample_rate, seconds, rng, channels=channels)


def _channels(mono: np.ndarray, channels: int, rng: np.random.Generator) -> np.ndarray:
    """Stack `channels` slightly different copies (second channel delayed and scaled)."""
    rows = [mono]
    for c in range(1, channels):
        shift = int(rng.integers(1, 50))
        rows.append(np.concatenate([np.zeros(shift), mono[:-shift]]) * rng.uniform(0.6, 1.0))
    return np.stack(rows).astype(np.float32)
