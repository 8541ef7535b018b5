"""Dry material like users' recordings: real drum kits, and what a recording brings with it (issue 21).

Every dry clip of the earlier models was synthesised or came from one General MIDI soundfont, with no room, no
microphone and no performance noise, so the model read all of those as effects on real recordings. Two levers here:

* `DrumKitSource`: grooves played on the recorded acoustic kits of Debian's `hydrogen-drumkits` (multi-sampled real
  drums, several velocity layers), at 70-170 bpm, humanised in time and level. Kits are split between train and
  held-out by name (`KIT_SPLIT`).
* `RecordingLike`: wraps any source and gives each clip, each with its own probability, what a recording adds:
  a room (a simulated shoebox impulse response, pyroomacoustics' image sources + ray tracing, 0.15-0.8 s RT60, the
  microphone 0.3-2 m from the source), microphone and body coloration (one to three gentle bells and a tilt),
  a noise floor (35-65 dB below the signal), slightly detuned doubling (unison strings), and slow natural dynamics.
  All of it is "dry": the labels do not change.

The real recordings of the held-out set (`training.real_set`, Sonic Pi's samples) are never read here.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import pedalboard
import soxr

from fxmatch.errors import FxmatchInputError
from training.sources import DrySource, _split_id, normalise_loudness, read_mono

#: where Debian's hydrogen-drumkits puts its kits
HYDROGEN_KITS = Path("/usr/share/hydrogen/data/drumkits")
#: recorded acoustic kits (the electronic ones are left out); the last one is the held-out split's
TRAIN_KITS = ("ColomboAcousticDrumkit", "BJA_Pacific", "ForzeeStereo", "Millo-Drums_v.1", "Millo_MultiLayered2",
              "Millo_MultiLayered3", "rumpf_kit_z01_h2", "circAfrique v4", "VariBreaks")
HELDOUT_KITS = ("The Black Pearl 1.0",)
#: drum roles recognised from Hydrogen instrument names (first match wins)
ROLES = (("kick", r"kick|bass ?drum|bassdrum|\bbd\b|\bkik"), ("snare", r"snare|\bsn\b|rim|stick"),
         ("hat", r"hat|\bhh\b"), ("tom", r"tom"), ("cymbal", r"crash|ride|cymbal|splash|china"),
         ("perc", r"."))
#: probability of each of `RecordingLike`'s parts per clip (the default training recipe)
DEFAULT_AUGMENT = {"room": 0.5, "mic": 0.5, "noise": 0.6, "double": 0.1, "dynamics": 0.25}


def _role(name: str) -> str:
    low = name.lower()
    return next(role for role, pattern in ROLES if re.search(pattern, low))


def read_kit(folder: Path) -> dict[str, list[Path]]:
    """A Hydrogen kit's sample files by drum role (kick, snare, hat, tom, cymbal, perc), from its drumkit.xml."""
    try:
        root = ET.parse(folder / "drumkit.xml").getroot()
    except (OSError, ET.ParseError) as exc:
        raise FxmatchInputError(f"{folder}: unreadable drumkit.xml ({exc})") from None
    strip = lambda tag: tag.rsplit("}", 1)[-1]
    roles: dict[str, list[Path]] = {}
    for inst in (e for e in root.iter() if strip(e.tag) == "instrument"):
        name = next((c.text or "" for c in inst if strip(c.tag) == "name"), "")
        files = [folder / (e.text or "").strip() for e in inst.iter() if strip(e.tag) == "filename"]
        files = [f for f in files if f.is_file()]
        if files:
            roles.setdefault(_role(name), []).extend(files)
    return roles


@lru_cache(maxsize=512)
def _sample(path: Path, sample_rate: int) -> np.ndarray:
    """One drum sample as mono float32 at `sample_rate`, at most 2 s."""
    return read_mono(path, sample_rate, max_frames=int(2.5 * 96000))[: 2 * sample_rate]


class DrumKitSource(DrySource):
    """Grooves on Hydrogen's recorded kits: kick, snare, hats (and toms, cymbals) on a humanised 16th grid."""

    def __init__(self, seed: int = 0, split: str = "train", sample_rate: int = 44100, clip_seconds: float = 2.0,
                 rms_dbfs: float = -20.0, folder: Path = HYDROGEN_KITS):
        self.seed, self.split, self.sample_rate, self.clip_seconds = int(seed), split, int(sample_rate), clip_seconds
        self.rms_dbfs = float(rms_dbfs)
        self._split_id = _split_id(split)
        names = TRAIN_KITS if split == "train" else HELDOUT_KITS
        self.kits = [read_kit(folder / n) for n in names if (folder / n / "drumkit.xml").is_file()]
        self.kits = [k for k in self.kits if k]
        if not self.kits:
            raise FxmatchInputError(f"no Hydrogen drum kits under {folder} (install Debian's hydrogen-drumkits: "
                                    "scripts/install.sh does)")

    def hits(self, index: int) -> tuple[int, list[tuple[float, Path, float]]]:
        """Kit number and the hits (onset s, sample file, linear gain) of clip `index`."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self._split_id, int(index), 17]))
        k = int(rng.integers(len(self.kits)))
        kit = self.kits[k]
        step = 60.0 / float(rng.uniform(70, 170)) / 4.0  # a 16th note (s)
        pick = lambda role: kit[role][int(rng.integers(len(kit[role])))] if role in kit else None
        hat_every = int(rng.choice([1, 2, 2, 4]))
        kick_steps = {0, 8} | {s for s in range(16) if rng.random() < 0.12}
        pattern: list[tuple[int, str, float]] = []
        for s in range(16):
            if s in kick_steps:
                pattern.append((s, "kick", rng.uniform(0.7, 1.0)))
            if s in (4, 12) or (rng.random() < 0.05):
                pattern.append((s, "snare", rng.uniform(0.6, 1.0) if s in (4, 12) else rng.uniform(0.2, 0.5)))
            if s % hat_every == 0:
                pattern.append((s, "hat", rng.uniform(0.3, 0.8) * (1.0 if s % 4 == 0 else 0.7)))
            if rng.random() < 0.03:
                pattern.append((s, str(rng.choice(["tom", "cymbal", "perc"])), rng.uniform(0.4, 0.9)))
        offset = float(rng.uniform(0, 16 * step))  # the clip starts anywhere in the bar
        hits = []
        for bar in range(int(np.ceil((self.clip_seconds + offset) / (16 * step))) + 1):
            for s, role, velocity in pattern:
                onset = bar * 16 * step + s * step - offset + rng.normal(0, 0.006)
                path = pick(role) or pick("perc")
                if path is not None and -0.5 < onset < self.clip_seconds:
                    hits.append((onset, path, float(velocity * rng.uniform(0.85, 1.15))))
        return k, hits

    def clip(self, index: int) -> np.ndarray:
        """Clip `index`: the groove rendered by summing the recorded samples, float32 `[clip_samples]`."""
        n = self.clip_samples
        out = np.zeros(n + 2 * self.sample_rate, dtype=np.float32)
        pad = self.sample_rate // 2  # hits up to 0.5 s before the clip ring into it
        for onset, path, gain in self.hits(index)[1]:
            s = _sample(path, self.sample_rate)
            at = pad + round(onset * self.sample_rate)
            end = min(out.size, at + s.size)
            if at < end:
                out[at:end] += gain * s[: end - at]
        return normalise_loudness(out[pad : pad + n], self.rms_dbfs)

    def describe(self) -> dict:
        return {**super().describe(), "seed": self.seed, "kits": len(self.kits), "rms_dbfs": self.rms_dbfs}


# ----------------------------------------------------------------------------------------------------------------
# what a recording brings with it


def room_impulse_response(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A simulated room's impulse response (shoebox, RT60 0.15-0.8 s, mic 0.3-2 m away), direct path at 1."""
    import pyroomacoustics as pra

    dims = np.array([rng.uniform(3, 12), rng.uniform(2.5, 9), rng.uniform(2.4, 4.5)])
    rt60 = float(rng.uniform(0.15, 0.8))
    try:
        absorption, _ = pra.inverse_sabine(rt60, dims)
    except ValueError:  # the room is too small for that RT60: the most reverberant it can be
        absorption = 0.05
    room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption), max_order=3, ray_tracing=True,
                       air_absorption=True)
    room.set_ray_tracing(receiver_radius=0.5, n_rays=2000, energy_thres=1e-5)
    source = dims * rng.uniform(0.2, 0.8, size=3)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    mic = np.clip(source + direction * rng.uniform(0.3, 2.0), 0.1, dims - 0.1)
    room.add_source(source.tolist())
    room.add_microphone(mic.tolist())
    room.compute_rir()
    ir = np.asarray(room.rir[0][0], dtype=np.float64)
    return (ir / (np.max(np.abs(ir)) + 1e-12)).astype(np.float32)


def _colour(x: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Microphone and body coloration: one to three gentle bells (±4 dB, Q 0.5-2) and a shelf tilt (±3 dB)."""
    stages = [pedalboard.PeakFilter(cutoff_frequency_hz=float(np.exp(rng.uniform(np.log(80), np.log(8000)))),
                                    gain_db=float(rng.uniform(-4, 4)), q=float(rng.uniform(0.5, 2.0)))
              for _ in range(int(rng.integers(1, 4)))]
    stages.append(pedalboard.HighShelfFilter(cutoff_frequency_hz=float(rng.uniform(2000, 8000)),
                                             gain_db=float(rng.uniform(-3, 3))))
    stages.append(pedalboard.LowShelfFilter(cutoff_frequency_hz=float(rng.uniform(80, 300)),
                                            gain_db=float(rng.uniform(-3, 3))))
    return pedalboard.Pedalboard(stages)(x[None], sample_rate)[0]


def _double(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A second, slightly detuned (2-8 cents) and delayed (0.5-3 ms at 44.1 kHz) take of the same notes, as unison
    strings give."""
    cents = float(rng.uniform(2, 8) * rng.choice([-1, 1]))
    other = soxr.resample(x, 1.0, 2.0 ** (cents / 1200.0))
    other = np.pad(other, (int(rng.integers(20, 130)), 0))[: x.size]
    other = np.pad(other, (0, x.size - other.size))
    return x + float(rng.uniform(0.5, 1.0)) * other


def _dynamics(x: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Slow natural swells: a smooth random gain curve within ±2 dB (corner below 1 Hz)."""
    points = max(2, int(x.size / sample_rate * rng.uniform(0.5, 2.0)) + 2)
    curve_db = np.interp(np.arange(x.size), np.linspace(0, x.size, points), rng.uniform(-2, 2, points))
    return x * (10.0 ** (curve_db / 20.0)).astype(np.float32)


def _noise_floor(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hiss 35-65 dB below the clip's RMS (white or pink)."""
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) or 1e-4
    noise = rng.standard_normal(x.size)
    if rng.random() < 0.5:  # pink: -3 dB per octave
        spec = np.fft.rfft(noise)
        spec /= np.sqrt(np.maximum(np.arange(spec.size), 1.0))
        noise = np.fft.irfft(spec, n=x.size)
    noise *= rms * 10.0 ** (-rng.uniform(35, 65) / 20.0) / (np.std(noise) + 1e-12)
    return x + noise.astype(np.float32)


class RecordingLike(DrySource):
    """`inner`'s clips as if recorded: each part of `probabilities` (room, mic, noise, double, dynamics) applied with
    its probability, from the seed stream (seed, split, index); loudness re-normalised; labels unchanged."""

    def __init__(self, inner: DrySource, probabilities: Mapping[str, float] | None = None, seed: int = 0,
                 n_rooms: int = 64):
        probabilities = dict(DEFAULT_AUGMENT if probabilities is None else probabilities)
        unknown = sorted(set(probabilities) - set(DEFAULT_AUGMENT))
        if unknown or any(not 0.0 <= p <= 1.0 for p in probabilities.values()):
            raise FxmatchInputError(f"augment: parts are {', '.join(DEFAULT_AUGMENT)} with probabilities in [0, 1], "
                                    f"got {probabilities}")
        self.inner, self.probabilities, self.seed, self.n_rooms = inner, probabilities, int(seed), int(n_rooms)
        self.sample_rate, self.clip_seconds, self.split = inner.sample_rate, inner.clip_seconds, inner.split
        self.n_clips = inner.n_clips
        self.rms_dbfs = getattr(inner, "rms_dbfs", -20.0)
        self._rooms: dict[int, np.ndarray] = {}

    def room(self, number: int) -> np.ndarray:
        """Room `number` of the bank (simulated on first use, then kept)."""
        if number not in self._rooms:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, _split_id(self.split), number, 29]))
            self._rooms[number] = room_impulse_response(rng, self.sample_rate)
        return self._rooms[number]

    def clip(self, index: int) -> np.ndarray:
        x = self.inner.clip(index)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, _split_id(self.split), int(index), 31]))
        use = {part: rng.random() < p for part, p in self.probabilities.items()}
        if not any(use.values()):
            return x
        if use.get("dynamics"):
            x = _dynamics(x, rng, self.sample_rate)
        if use.get("double"):
            x = _double(x, rng)
        if use.get("mic"):
            x = _colour(x, rng, self.sample_rate)
        if use.get("room"):
            ir = self.room(int(rng.integers(self.n_rooms)))
            x = _fft_convolve(x, ir)
        if use.get("noise"):
            x = _noise_floor(x, rng)
        return normalise_loudness(x, self.rms_dbfs)

    def describe(self) -> dict:
        return {**super().describe(), "augment": dict(self.probabilities), "n_rooms": self.n_rooms,
                "seed": self.seed, "inner": self.inner.describe()}


def _fft_convolve(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """`x` convolved with `ir`, cut to `x`'s length."""
    from scipy.signal import fftconvolve

    return fftconvolve(x, ir)[: x.size].astype(np.float32)

