"""Dry audio sources behind one interface: seeded synthesised instruments, a folder of files, MIDI via FluidSynth.

Every source returns mono float32 clips `[samples]` at `sample_rate`, `clip_seconds` long, loudness-normalised
(RMS to `rms_dbfs`, peak kept below 0 dBFS). `clip(index)` is a pure function of the source's seed, split and
index, so a data set is reproducible and the train and held-out splits never share a clip: synthesised clips come
from disjoint seed streams, file clips from disjoint files.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import mido
import numpy as np
import scipy.signal
import soundfile
import soxr

from fxmatch import audio_io
from fxmatch.audio_io import atomic_write
from fxmatch.errors import FxmatchInputError

log = logging.getLogger(__name__)

SPLITS: dict[str, int] = {"train": 0, "heldout": 1}
AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac")
SOUNDFONT_PATHS: tuple[str, ...] = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)


def _split_id(split: str) -> int:
    if split not in SPLITS:
        raise FxmatchInputError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    return SPLITS[split]


def normalise_loudness(x: np.ndarray, rms_dbfs: float = -20.0, peak: float = 0.99) -> np.ndarray:
    """Scale `x` `[samples]` so its RMS is `rms_dbfs` dBFS, then down so |x| <= `peak`; silence stays silent."""
    x = np.asarray(x, dtype=np.float64)
    rms = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
    if rms < 1e-9:
        return np.zeros(x.shape, dtype=np.float32)
    x = x * (10.0 ** (rms_dbfs / 20.0) / rms)
    top = float(np.max(np.abs(x)))
    if top > peak:
        x = x * (peak / top)
    return x.astype(np.float32)


class DrySource:
    """A deterministic supply of dry mono clips: `clip(index)` -> float32 `[round(sample_rate * clip_seconds)]`."""

    sample_rate: int
    clip_seconds: float
    split: str
    #: number of distinct clips (None: unbounded; finite sources wrap around)
    n_clips: int | None = None

    @property
    def clip_samples(self) -> int:
        return round(self.sample_rate * self.clip_seconds)

    def clip(self, index: int) -> np.ndarray:
        """The dry clip number `index` (>= 0), float32 `[clip_samples]`, loudness-normalised."""
        raise NotImplementedError

    def describe(self) -> dict:
        """JSON-ready description (goes into checkpoints and model cards)."""
        return {"kind": type(self).__name__, "sample_rate": self.sample_rate, "clip_seconds": self.clip_seconds,
                "split": self.split}


# --------------------------------------------------------------------------------------------------------------
# synthesised instruments (vectorised numpy, seeded)

def midi_to_hz(note: np.ndarray | float) -> np.ndarray | float:
    """Equal-tempered frequency in Hz of MIDI note numbers (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((np.asarray(note, dtype=np.float64) - 69.0) / 12.0)


def damped_partials(
    freqs: np.ndarray, rates: np.ndarray, amps: np.ndarray, phases: np.ndarray, n: int, sr: int, block: int = 1024
) -> np.ndarray:
    """`sum_k amps_k exp(-rates_k t) sin(2 pi freqs_k t + phases_k)` for `t = arange(n) / sr` (Hz, 1/s), `[n]`.

    Computed block by block as one complex matrix product: block j is `Im(W[j] @ base)` with
    `base[k, m] = z_k ** m` and `W[j, k] = amps_k e^(i phases_k) z_k ** (j block)`, `z_k = exp((-rates_k + 2 pi i
    freqs_k) / sr)`.
    """
    s = (-np.asarray(rates, dtype=np.float64) + 2j * np.pi * np.asarray(freqs, dtype=np.float64)) / sr
    n_blocks = -(-n // block)
    base = np.exp(s[:, None] * np.arange(block)[None, :])
    exponent = s[None, :] * (block * np.arange(n_blocks))[:, None]
    # partials decayed below e^-40 (-350 dB) are exact zeros, which keeps denormals out of the product
    exponent = np.where(exponent.real < -40.0, -np.inf, exponent)
    weights = (amps * np.exp(1j * np.asarray(phases)))[None, :] * np.exp(exponent)
    return (weights @ base).imag.reshape(-1)[:n]


def _partials_note(
    f0: float, n: int, sr: int, rng: np.random.Generator, *, n_partials: int, decay_s: float, brightness: float,
    inharmonicity: float, pluck_position: float, decay_slope: float,
) -> np.ndarray:
    """Additive string note `[n]`: partials `k f0 sqrt(1 + B k^2)`, amplitude comb of the pluck position, decay per k."""
    k = np.arange(1, n_partials + 1, dtype=np.float64)
    fk = k * f0 * np.sqrt(1.0 + inharmonicity * k * k)
    keep = fk < 0.45 * sr
    k, fk = k[keep], fk[keep]
    amps = np.abs(np.sin(np.pi * k * pluck_position)) / k**brightness * rng.uniform(0.6, 1.0, size=k.shape)
    rates = (1.0 + decay_slope * (k - 1.0)) / decay_s
    phases = rng.uniform(0, 2 * np.pi, size=k.shape)
    note = damped_partials(fk, rates, amps, phases, n, sr)
    m = min(n, int(0.01 * sr))  # the soft attack is over within 10 ms
    note[:m] *= 1.0 - np.exp(-np.arange(m) / sr * rng.uniform(800.0, 3000.0))
    return note


def _place(out: np.ndarray, note: np.ndarray, start: int, gain: float) -> None:
    """Add `note * gain` into `out` from sample `start` (truncated at the end)."""
    if start >= out.size:
        return
    m = min(note.size, out.size - start)
    out[start : start + m] += gain * note[:m]


def _body_resonance(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A guitar body: the string signal plus three resonant band-pass modes (around 100, 200 and 400 Hz)."""
    out = x.copy()
    for centre in (100.0, 200.0, 400.0):
        f = centre * rng.uniform(0.8, 1.25)
        b, a = scipy.signal.iirpeak(f, Q=rng.uniform(5.0, 20.0), fs=sr)
        out += rng.uniform(0.2, 0.8) * scipy.signal.lfilter(b, a, x)
    return out


def _onsets(seconds: float, rng: np.random.Generator, n_min: int, n_max: int) -> np.ndarray:
    """Note onsets in seconds on an eighth-note grid at a random tempo, the first within 50 ms."""
    bpm = rng.uniform(80.0, 160.0)
    step = 60.0 / bpm / 2.0
    n = int(rng.integers(n_min, n_max + 1))
    grid = np.arange(0.0, seconds * 0.9, step)
    picks = np.sort(rng.choice(grid.size, size=min(n, grid.size), replace=False))
    onsets = grid[picks] - grid[picks[0]] + rng.uniform(0.0, 0.05)
    return onsets


def _string(f0: float, n: int, sr: int, rng: np.random.Generator, muted: bool = False) -> np.ndarray:
    decay = rng.uniform(0.08, 0.2) if muted else rng.uniform(0.6, 2.5)
    return _partials_note(f0, n, sr, rng, n_partials=40, decay_s=decay, brightness=rng.uniform(0.8, 1.5),
                          inharmonicity=rng.uniform(0.0, 2e-4), pluck_position=rng.uniform(0.08, 0.3),
                          decay_slope=rng.uniform(0.1, 0.6))


def guitar_note(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One plucked string note (E2 to E6) through a guitar body."""
    out = np.zeros(n)
    f0 = float(midi_to_hz(rng.integers(40, 89)))
    _place(out, _string(f0, n, sr, rng), int(rng.uniform(0, 0.05) * sr), 1.0)
    return _body_resonance(out, sr, rng)


_CHORDS = ((0, 7, 12, 16, 19, 24), (0, 7, 12, 15, 19, 24), (0, 7, 12), (0, 5, 10, 15, 19, 24), (0, 7, 10, 16, 19))


def guitar_chord(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One to four strums of an open-voiced chord (strings 5 to 40 ms apart, down or up)."""
    out = np.zeros(n)
    root = int(rng.integers(40, 56))
    shape = np.array(_CHORDS[int(rng.integers(len(_CHORDS)))])
    for onset in _onsets(n / sr, rng, 1, 4):
        order = shape if rng.uniform() < 0.6 else shape[::-1]
        spread = rng.uniform(0.005, 0.04)
        muted = rng.uniform() < 0.2
        for j, interval in enumerate(order):
            start = int((onset + j * spread) * sr)
            _place(out, _string(float(midi_to_hz(root + interval)), n, sr, rng, muted), start,
                   rng.uniform(0.5, 1.0))
    return _body_resonance(out, sr, rng)


_SCALES = ((0, 3, 5, 7, 10, 12, 15, 17), (0, 2, 4, 7, 9, 12, 14, 16), (0, 2, 3, 5, 7, 8, 10, 12))


def guitar_riff(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A single-note riff (3 to 12 notes of a pentatonic or minor scale), some notes palm-muted."""
    out = np.zeros(n)
    root = int(rng.integers(40, 64))
    scale = _SCALES[int(rng.integers(len(_SCALES)))]
    for onset in _onsets(n / sr, rng, 3, 12):
        note = root + scale[int(rng.integers(len(scale)))]
        muted = rng.uniform() < 0.3
        _place(out, _string(float(midi_to_hz(note)), n, sr, rng, muted), int(onset * sr), rng.uniform(0.5, 1.0))
    return _body_resonance(out, sr, rng)


def bass(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """An electric-bass line (E1 to E3): few dark partials, long decay, notes cut at the next onset."""
    out = np.zeros(n)
    root = int(rng.integers(28, 41))
    scale = _SCALES[int(rng.integers(len(_SCALES)))]
    onsets = _onsets(n / sr, rng, 2, 8)
    ends = np.append(onsets[1:], n / sr)
    for onset, end in zip(onsets, ends):
        f0 = float(midi_to_hz(root + scale[int(rng.integers(len(scale)))]))
        length = max(1, int((end - onset) * sr))
        note = _partials_note(f0, length, sr, rng, n_partials=20, decay_s=rng.uniform(1.0, 3.0),
                              brightness=rng.uniform(1.5, 2.5), inharmonicity=rng.uniform(0.0, 1e-4),
                              pluck_position=rng.uniform(0.1, 0.25), decay_slope=rng.uniform(0.2, 0.8))
        release = np.minimum(1.0, (note.size - np.arange(note.size)) / (0.01 * sr))
        _place(out, note * release, int(onset * sr), rng.uniform(0.6, 1.0))
    return out


_VOICINGS = ((0, 4, 7), (0, 3, 7), (0, 4, 7, 11), (0, 3, 7, 10), (0, 7, 12))


def keys(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Electric-piano-like FM notes or chords (C3 to C6) with a decaying modulation index and note-offs."""
    out = np.zeros(n)
    onsets = _onsets(n / sr, rng, 1, 6)
    ratio = float(rng.choice([1.0, 2.0, 3.0, 14.0]))
    for onset in onsets:
        voicing = _VOICINGS[int(rng.integers(len(_VOICINGS)))]
        notes = int(rng.integers(48, 72)) + np.array(voicing[: int(rng.integers(1, len(voicing) + 1))])
        n_voices = notes.size
        duration = rng.uniform(0.2, 1.5)
        m = min(n, int((duration + 0.3) * sr))
        t = np.arange(m) / sr
        env = np.exp(-t * rng.uniform(1.0, 4.0)) * np.clip((duration + 0.05 - t) / 0.05, 0.0, 1.0)
        env *= 1.0 - np.exp(-t * 2000.0)
        index = rng.uniform(0.5, 3.0) * np.exp(-t * rng.uniform(3.0, 10.0))
        f = midi_to_hz(notes)[:, None]
        voices = np.sin(2 * np.pi * f * t + index * np.sin(2 * np.pi * ratio * f * t))
        _place(out, env * voices.sum(axis=0) / n_voices, int(onset * sr), rng.uniform(0.5, 1.0))
    return out


def _kick(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.4 * sr)) / sr
    f = rng.uniform(45, 65) + rng.uniform(80, 200) * np.exp(-t * rng.uniform(20, 50))
    phase = 2 * np.pi * np.cumsum(f) / sr
    return np.sin(phase) * np.exp(-t * rng.uniform(6, 12))


def _snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.3 * sr)) / sr
    tone = np.sin(2 * np.pi * rng.uniform(160, 240) * t) * np.exp(-t * 25)
    b, a = scipy.signal.butter(2, [1000, min(8000.0, 0.45 * sr)], btype="band", fs=sr)
    noise = scipy.signal.lfilter(b, a, rng.standard_normal(t.size)) * np.exp(-t * rng.uniform(12, 25))
    return 0.5 * tone + 1.5 * noise


def _hat(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.15 * sr)) / sr
    b, a = scipy.signal.butter(2, min(7000.0, 0.4 * sr), btype="high", fs=sr)
    return scipy.signal.lfilter(b, a, rng.standard_normal(t.size)) * np.exp(-t * rng.uniform(30, 80))


def drums(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A drum pattern: kick, snare and hi-hat hits on a sixteenth grid at a random tempo."""
    out = np.zeros(n)
    step = 60.0 / rng.uniform(80.0, 160.0) / 4.0
    hits = {"kick": (_kick, 0.3), "snare": (_snare, 0.2), "hat": (_hat, 0.5)}
    positions = np.arange(0.0, n / sr, step)
    for (make, probability) in hits.values():
        mask = rng.uniform(size=positions.size) < probability
        for pos in positions[mask]:
            _place(out, make(sr, rng), int(pos * sr), rng.uniform(0.4, 1.0))
    _place(out, _kick(sr, rng), 0, 1.0)  # never an empty clip
    return out


INSTRUMENTS: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    "guitar_note": guitar_note,
    "guitar_chord": guitar_chord,
    "guitar_riff": guitar_riff,
    "bass": bass,
    "keys": keys,
    "drums": drums,
}


class SynthSource(DrySource):
    """Seeded instruments made on the fly; clip `index` uses the seed stream (seed, split, index)."""

    def __init__(
        self,
        seed: int = 0,
        split: str = "train",
        sample_rate: int = 44100,
        clip_seconds: float = 2.0,
        rms_dbfs: float = -20.0,
        instruments: Sequence[str] | dict[str, float] | None = None,
    ):
        self.seed, self.split, self.sample_rate, self.clip_seconds = int(seed), split, int(sample_rate), clip_seconds
        self.rms_dbfs = float(rms_dbfs)
        self._split_id = _split_id(split)
        weights = instruments if isinstance(instruments, dict) else {k: 1.0 for k in (instruments or INSTRUMENTS)}
        for name in weights:
            if name not in INSTRUMENTS:
                raise FxmatchInputError(f"unknown instrument {name!r}; known: {', '.join(INSTRUMENTS)}")
        total = float(sum(weights.values()))
        if total <= 0:
            raise FxmatchInputError("instrument weights must sum to a positive number")
        self.instruments = list(weights)
        self.weights = np.array([weights[k] / total for k in self.instruments])

    def rng(self, index: int) -> np.random.Generator:
        """The generator of clip `index` (disjoint streams per split)."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, self._split_id, int(index)]))

    def instrument(self, index: int) -> str:
        """The instrument clip `index` plays."""
        return self.instruments[int(self.rng(index).choice(len(self.instruments), p=self.weights))]

    def clip(self, index: int) -> np.ndarray:
        """Clip `index`: one instrument (picked by weight), float32 `[clip_samples]`, RMS at `rms_dbfs`."""
        if index < 0:
            raise IndexError(f"clip index must be >= 0, got {index}")
        rng = self.rng(index)
        name = self.instruments[int(rng.choice(len(self.instruments), p=self.weights))]
        audio = INSTRUMENTS[name](self.clip_samples, self.sample_rate, rng)
        return normalise_loudness(audio, self.rms_dbfs)

    def describe(self) -> dict:
        return {**super().describe(), "seed": self.seed, "rms_dbfs": self.rms_dbfs,
                "instruments": dict(zip(self.instruments, self.weights.tolist()))}


# --------------------------------------------------------------------------------------------------------------
# a folder of the user's recordings

def file_split(relative_path: str, heldout_fraction: float) -> str:
    """'heldout' for a stable hash-chosen fraction of file paths, else 'train' (so the splits share no file)."""
    bucket = zlib.crc32(relative_path.replace("\\", "/").encode()) % 10_000
    return "heldout" if bucket < heldout_fraction * 10_000 else "train"


#: decoded files a FolderSource keeps in memory (oldest dropped first)
LOADED_FILES = 8


def read_mono(path: str | Path, sample_rate: int, max_frames: int = -1) -> np.ndarray:
    """An audio file (at most `max_frames` of it; -1: all) mixed to mono and resampled (soxr HQ) to `sample_rate`:
    float32 `[samples]`; an unreadable file is an FxmatchInputError naming it."""
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True, frames=max_frames)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise FxmatchInputError(f"cannot read {str(path)!r}: {exc}") from None
    mono = data.mean(axis=1)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


class FolderSource(DrySource):
    """WAV/FLAC files under a folder (recursively), mixed to mono, resampled with soxr, cut into clips.

    Clips quieter than `silence_dbfs` are skipped. Files are split between train and held-out by a stable hash of
    their relative path (`heldout_fraction` of them held out). Indices beyond the clip count wrap around.
    """

    def __init__(
        self,
        folder: str | Path,
        split: str = "train",
        sample_rate: int = 44100,
        clip_seconds: float = 2.0,
        rms_dbfs: float = -20.0,
        heldout_fraction: float = 0.1,
        silence_dbfs: float = -50.0,
        hop_seconds: float | None = None,
    ):
        self.folder = Path(folder)
        self._loaded: dict[int, np.ndarray] = {}
        self.split, self.sample_rate, self.clip_seconds = split, int(sample_rate), float(clip_seconds)
        self.rms_dbfs, self.silence_dbfs = float(rms_dbfs), float(silence_dbfs)
        self.heldout_fraction = float(heldout_fraction)
        self.hop_samples = round((hop_seconds or clip_seconds) * self.sample_rate)
        _split_id(split)
        if not self.folder.is_dir():
            raise FxmatchInputError(f"dry audio folder {str(self.folder)!r} does not exist")
        every = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        if not every:
            raise FxmatchInputError(f"no WAV or FLAC files under {str(self.folder)!r}")
        self.files = [p for p in every if file_split(str(p.relative_to(self.folder)), heldout_fraction) == split]
        if not self.files:
            raise FxmatchInputError(
                f"no {split} files under {str(self.folder)!r} ({len(every)} files, heldout_fraction "
                f"{heldout_fraction}): add files or change heldout_fraction")
        self._index: list[tuple[int, int]] = []
        for i in range(len(self.files)):
            audio = self._load(i)
            for start in range(0, max(0, audio.size - self.clip_samples) + 1, self.hop_samples):
                if audio_io.rms_dbfs(audio[start : start + self.clip_samples]) > self.silence_dbfs:
                    self._index.append((i, start))
        if not self._index:
            raise FxmatchInputError(
                f"every {self.clip_seconds} s clip of the {split} files under {str(self.folder)!r} is silent "
                f"(below {self.silence_dbfs} dBFS) or the files are shorter than a clip")
        self.n_clips = len(self._index)

    def _load(self, file_index: int) -> np.ndarray:
        """File `file_index` as mono float32 at `sample_rate` (the last LOADED_FILES kept per source)."""
        cache = self._loaded
        if file_index in cache:
            return cache[file_index]
        if len(cache) >= LOADED_FILES:
            cache.pop(next(iter(cache)))
        cache[file_index] = audio = self._read(file_index)
        return audio

    def _read(self, file_index: int) -> np.ndarray:
        """File `file_index` as mono float32 at `sample_rate`."""
        return read_mono(self.files[file_index], self.sample_rate)

    def clip(self, index: int) -> np.ndarray:
        """Clip `index` (modulo the clip count), float32 `[clip_samples]` (zero-padded at a file's end)."""
        if index < 0:
            raise IndexError(f"clip index must be >= 0, got {index}")
        file_index, start = self._index[index % self.n_clips]
        audio = self._load(file_index)[start : start + self.clip_samples]
        if audio.size < self.clip_samples:
            audio = np.pad(audio, (0, self.clip_samples - audio.size))
        return normalise_loudness(audio, self.rms_dbfs)

    def describe(self) -> dict:
        return {**super().describe(), "folder": str(self.folder), "files": len(self.files), "clips": self.n_clips,
                "heldout_fraction": self.heldout_fraction, "rms_dbfs": self.rms_dbfs}


# --------------------------------------------------------------------------------------------------------------
# MIDI through FluidSynth and a General MIDI soundfont

GM_PROGRAMS: dict[str, tuple[int, ...]] = {
    "guitar": (24, 25, 26, 27, 28),  # nylon, steel, jazz, clean, muted
    "bass": (32, 33, 34),
    "keys": (0, 2, 4, 5),
}


def find_soundfont(path: str | None = None) -> Path | None:
    """The given soundfont, else the first of SOUNDFONT_PATHS that exists, else None."""
    candidates = [path] if path else list(SOUNDFONT_PATHS)
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


def midi_file_bytes(program: int, notes: Sequence[tuple[float, float, int, int]], bpm: float = 120.0,
                    programs: Sequence[tuple[float, int]] = ()) -> bytes:
    """A one-track Standard MIDI File (mido): `notes` are (onset_s, duration_s, pitch, velocity) on channel 0.

    `programs` are (time_s, program) changes after the first `program` (phrases of several instruments in one file).
    """
    ticks_per_beat = 480
    to_ticks = lambda s: round(s * bpm / 60.0 * ticks_per_beat)
    # (tick, order, message): at one tick, note-offs and program changes before note-ons
    events = [(0, 0, mido.Message("program_change", program=program))]
    events += [(to_ticks(t), 0, mido.Message("program_change", program=p)) for t, p in programs if t > 0]
    for onset, duration, pitch, velocity in notes:
        events.append((to_ticks(onset), 1, mido.Message("note_on", note=pitch, velocity=velocity)))
        events.append((to_ticks(onset + duration), 0, mido.Message("note_off", note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=round(60_000_000 / bpm), time=0)])
    now = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    out = io.BytesIO()
    mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat, tracks=[track]).save(file=out)
    return out.getvalue()


class MidiSource(DrySource):
    """Seeded random phrases (guitar, bass, keys General MIDI programs) rendered by the `fluidsynth` binary."""

    def __init__(
        self,
        seed: int = 0,
        split: str = "train",
        sample_rate: int = 44100,
        clip_seconds: float = 2.0,
        rms_dbfs: float = -20.0,
        soundfont: str | None = None,
    ):
        self.seed, self.split, self.sample_rate, self.clip_seconds = int(seed), split, int(sample_rate), clip_seconds
        self.rms_dbfs = float(rms_dbfs)
        self._split_id = _split_id(split)
        self.binary = shutil.which("fluidsynth")
        self.soundfont = find_soundfont(soundfont)
        if self.binary is None or self.soundfont is None:
            missing = "the fluidsynth binary" if self.binary is None else f"a General MIDI soundfont ({soundfont or ', '.join(SOUNDFONT_PATHS)})"
            raise FxmatchInputError(
                f"the MIDI source needs {missing}; install them (Debian: apt install fluidsynth fluid-soundfont-gm) "
                f"or use the 'synth' or 'folder' source")

    def phrase(self, index: int) -> tuple[int, list[tuple[float, float, int, int]]]:
        """Program and notes (onset_s, duration_s, pitch, velocity) of clip `index`."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self._split_id, int(index), 7]))
        family = ("guitar", "bass", "keys")[int(rng.integers(3))]
        program = int(rng.choice(GM_PROGRAMS[family]))
        low = {"guitar": 40, "bass": 28, "keys": 48}[family]
        root = int(rng.integers(low, low + 16))
        scale = _SCALES[int(rng.integers(len(_SCALES)))]
        onsets = _onsets(self.clip_seconds, rng, 2, 8)
        ends = np.append(onsets[1:], self.clip_seconds)
        notes = [(float(o), float(max(0.05, (e - o) * rng.uniform(0.5, 1.0))),
                  root + int(scale[int(rng.integers(len(scale)))]), int(rng.integers(60, 120)))
                 for o, e in zip(onsets, ends)]
        return program, notes

    def _render(self, phrases: Sequence[tuple[int, list[tuple[float, float, int, int]]]], slot_s: float) -> np.ndarray:
        """Phrases placed `slot_s` apart in one MIDI file, rendered by one FluidSynth call: mono `[samples]`.

        FluidSynth's own reverb and chorus are off: the clips must be dry, or the data would hold effects that no
        label names.
        """
        events: list[tuple[float, float, int, int]] = []
        programs: list[tuple[float, int]] = []
        for i, (program, notes) in enumerate(phrases):
            programs.append((i * slot_s, program))
            events += [(i * slot_s + o, d, p, v) for o, d, p, v in notes]
        with tempfile.TemporaryDirectory(prefix="fxmatch-midi-") as tmp:
            mid, wav = Path(tmp) / "clip.mid", Path(tmp) / "clip.wav"
            mid.write_bytes(midi_file_bytes(programs[0][1], events, programs=programs))
            cmd = [self.binary, "-ni", "-R", "0", "-C", "0", "-g", "1.0", "-r", str(self.sample_rate), "-F",
                   str(wav), str(self.soundfont), str(mid)]
            subprocess.run(cmd, check=True, capture_output=True, timeout=60 + 2 * slot_s * len(phrases))
            data, rate = soundfile.read(str(wav), dtype="float32", always_2d=True)
        mono = data.mean(axis=1)
        if rate != self.sample_rate:
            mono = soxr.resample(mono, rate, self.sample_rate)
        return mono

    def clips(self, indices: Sequence[int]) -> list[np.ndarray]:
        """Clips `indices` rendered together by one FluidSynth call (loading the soundfont once), as `clip` gives."""
        slot_s = self.clip_seconds + 1.0
        mono = self._render([self.phrase(i) for i in indices], slot_s)
        out = []
        for j in range(len(indices)):
            start = round(j * slot_s * self.sample_rate)
            piece = mono[start: start + self.clip_samples]
            out.append(normalise_loudness(np.pad(piece, (0, max(0, self.clip_samples - piece.size))), self.rms_dbfs))
        return out

    def clip(self, index: int) -> np.ndarray:
        """Clip `index` rendered by FluidSynth, float32 `[clip_samples]`."""
        return self.clips([index])[0]

    def describe(self) -> dict:
        return {**super().describe(), "seed": self.seed, "soundfont": str(self.soundfont), "rms_dbfs": self.rms_dbfs}


class PooledSource(DrySource):
    """A fixed pool of `pool_size` clips of an expensive source, rendered once (and cached on disk), reused forever.

    Clip `index` is a random `clip_seconds` window of pool clip `index % pool_size` (the inner source's clips are
    longer), re-normalised; with fresh chains and parameters per example, a few thousand dry clips serve hundreds of
    thousands of examples. The cache is `cache_dir/pool-<digest>.npy` (int16), keyed by the inner source's
    description and the pool size; it is written atomically.
    """

    def __init__(self, inner: DrySource, pool_size: int, clip_seconds: float, rms_dbfs: float = -20.0,
                 cache_dir: str | Path | None = None, batch: int = 64):
        if pool_size < 1:
            raise FxmatchInputError(f"pool size must be at least 1, got {pool_size}")
        if inner.clip_seconds < clip_seconds:
            raise FxmatchInputError("a pooled source's inner clips must be at least as long as its clips")
        self.inner, self.pool_size, self.batch = inner, int(pool_size), int(batch)
        self.sample_rate, self.clip_seconds, self.split = inner.sample_rate, float(clip_seconds), inner.split
        self.rms_dbfs = float(rms_dbfs)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.n_clips = None
        self._pool: np.ndarray | None = None

    def cache_path(self) -> Path | None:
        """Where the pool is cached (None: not cached)."""
        if self.cache_dir is None:
            return None
        import hashlib
        import json

        key = json.dumps({"inner": self.inner.describe(), "pool_size": self.pool_size}, sort_keys=True)
        return self.cache_dir / f"pool-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npy"

    def _render_pool(self) -> np.ndarray:
        pool = np.zeros((self.pool_size, self.inner.clip_samples), dtype=np.int16)
        many = getattr(self.inner, "clips", None)
        for start in range(0, self.pool_size, self.batch):
            indices = list(range(start, min(self.pool_size, start + self.batch)))
            clips = many(indices) if many else [self.inner.clip(i) for i in indices]
            for i, c in zip(indices, clips):
                pool[i] = np.round(np.clip(c, -1.0, 1.0) * 32767.0).astype(np.int16)
            log.info("dry pool: %d / %d clips", indices[-1] + 1, self.pool_size)
        return pool

    @property
    def pool(self) -> np.ndarray:
        """The pool `[pool_size, inner clip samples]` int16 (rendered or read from the cache on first use)."""
        if self._pool is None:
            path = self.cache_path()
            if path is not None and path.is_file():
                self._pool = np.load(path, mmap_mode="r")
            else:
                self._pool = self._render_pool()
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write(path, self._save_pool)
        return self._pool

    def _save_pool(self, tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, self._pool)

    def clip(self, index: int) -> np.ndarray:
        """A `clip_seconds` window of pool clip `index % pool_size`, float32 `[clip_samples]`, RMS at `rms_dbfs`."""
        if index < 0:
            raise IndexError(f"clip index must be >= 0, got {index}")
        source = self.pool[index % self.pool_size]
        rng = np.random.default_rng(np.random.SeedSequence([self.pool_size, _split_id(self.split), int(index), 11]))
        start = int(rng.integers(0, source.size - self.clip_samples + 1))
        window = source[start: start + self.clip_samples].astype(np.float32) / 32767.0
        if float(np.sqrt(np.mean(window.astype(np.float64) ** 2))) < 1e-4:  # a silent stretch: take the start
            window = source[: self.clip_samples].astype(np.float32) / 32767.0
        return normalise_loudness(window, self.rms_dbfs)

    def describe(self) -> dict:
        return {**super().describe(), "pool_size": self.pool_size, "inner": self.inner.describe()}


class MixedSource(DrySource):
    """Clip `index` comes from one of several sources, picked by weight from the seed stream (seed, split, index)."""

    def __init__(self, sources: Mapping[str, DrySource], weights: Mapping[str, float], seed: int = 0):
        if not sources or set(sources) != set(weights):
            raise FxmatchInputError("a mixed source needs one weight per source")
        total = float(sum(weights.values()))
        if total <= 0 or any(w < 0 for w in weights.values()):
            raise FxmatchInputError("source weights must be >= 0 and sum to a positive number")
        first = next(iter(sources.values()))
        self.sources, self.names = dict(sources), list(sources)
        self.weights = np.array([weights[n] / total for n in self.names])
        self.seed, self.split = int(seed), first.split
        self.sample_rate, self.clip_seconds = first.sample_rate, first.clip_seconds

    def source_of(self, index: int) -> str:
        """The name of the source clip `index` comes from."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, _split_id(self.split), int(index), 13]))
        return self.names[int(rng.choice(len(self.names), p=self.weights))]

    def clip(self, index: int) -> np.ndarray:
        return self.sources[self.source_of(index)].clip(index)

    def describe(self) -> dict:
        return {**super().describe(), "seed": self.seed,
                "sources": {n: {"weight": float(w), **self.sources[n].describe()}
                            for n, w in zip(self.names, self.weights)}}


SOURCE_KINDS: tuple[str, ...] = ("synth", "folder", "midi", "midi2", "kit", "mix")
#: the second soundfont's default (the midi2 source): another sample set than the first, found in this order
#: (MuseScore General is kept out of training: configs/heldout-musescore.yaml's held-out set uses it)
SECOND_SOUNDFONTS: tuple[str, ...] = ("/usr/share/sounds/sf2/TimGM6mb.sf2",)

