"""Tone-match evaluation pairs: two different performances of one instrument through one chain (issue 23).

A pair is (x1, x2, chain): x1 and x2 are two different phrases played on the same instrument, the chain is drawn
from the default vocabulary (1 to 3 effects, each length equally likely; params uniform in each parameter's own
scale, as training draws them). The reference is chain(x1), the player's input is x2, the truth is chain(x2).

Two held-out sources, neither read by any training run:

* `musescore_pairs`: General MIDI phrases (guitars, basses, keys) rendered by FluidSynth through MuseScore General
  (`configs/heldout-musescore.yaml`'s soundfont); the second phrase of a pair is another seeded phrase of the same
  instrument family, played with the first one's program.
* `real_phrases`: Sonic Pi's recordings of real instruments and loops (`training.real_set.RECORDINGS`): the first
  two non-overlapping 3 s clips of each recording long enough (9 of 12: guitars, a drum roll, drum and tabla loops).

Pairs are cached under `runs/cache/` (`.npz`, keyed by their settings) since FluidSynth takes seconds to start.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fxmatch.vocabulary import ChainVocabulary

SAMPLE_RATE = 44100
#: the MuseScore General soundfont (held out: no training config names it)
MUSESCORE_SF = "/usr/share/sounds/sf3/MuseScore_General.sf3"
CACHE_DIR = Path("runs/cache")
#: the real recordings' clips (s): the first two of this length of each recording long enough
REAL_SECONDS = 3.0
#: chains drawn for a pair until every effect is audible on both takes (`fxmatch.audibility`, 30 dB)
MAX_DRAWS = 20


@dataclass
class MatchPair:
    """Two performances (float32 `[samples]` at `sample_rate` Hz, -20 dBFS RMS) and the chain that processed both."""

    x1: np.ndarray
    x2: np.ndarray
    chain: list[tuple[str, dict[str, float]]]
    sample_rate: int
    name: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.chain)

    def reference(self) -> np.ndarray:
        """chain(x1), float32 `[samples]`."""
        return render(self.chain, self.x1, self.sample_rate)

    def truth(self) -> np.ndarray:
        """chain(x2), float32 `[samples]`."""
        return render(self.chain, self.x2, self.sample_rate)


def render(chain: Sequence[tuple[str, dict[str, float]]], x: np.ndarray, sample_rate: int) -> np.ndarray:
    """`x` `[samples]` through pedalboard with `chain` ((effect, params) in units): float32 `[samples]`."""
    from fxmatch.preset import Preset

    board = Preset.from_chain(list(chain)).to_pedalboard()
    return board(np.ascontiguousarray(x, dtype=np.float32)[None], float(sample_rate))[0]


def random_chain(rng: np.random.Generator, vocab: ChainVocabulary | None = None,
                 lengths: Sequence[int] = (1, 2, 3)) -> list[tuple[str, dict[str, float]]]:
    """A chain of the vocabulary, its length uniform among `lengths`, params drawn as training draws them."""
    vocab = vocab or ChainVocabulary.default()
    n = int(rng.choice(list(lengths)))
    options = [c for c in vocab.chains if len(c) == n]
    names = options[int(rng.integers(len(options)))]
    return [(name, vocab.effect(name).sample(rng)) for name in names]


def peak_chain(rng: np.random.Generator, min_gain_db: float = 6.0) -> list[tuple[str, dict[str, float]]]:
    """One audible PeakFilter (|gain| >= `min_gain_db` dB, the rest drawn from the training ranges)."""
    spec = ChainVocabulary.default().effect("PeakFilter")
    params = spec.sample(rng)
    params["gain_db"] = float(np.sign(rng.uniform(-1, 1)) * rng.uniform(min_gain_db, 12.0))
    return [("PeakFilter", params)]


def _cached(key: dict, build) -> dict[str, np.ndarray]:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    path = CACHE_DIR / f"match-pairs-{key['kind']}-{digest}.npz"
    if path.is_file():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    arrays = build()
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return arrays


def musescore_phrases(n: int, seed: int = 2323, seconds: float = 4.0, soundfont: str = MUSESCORE_SF
                      ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`n` pairs of different phrases on one General MIDI instrument: x1, x2 `[n, samples]` and instrument names."""
    from training.sources import GM_PROGRAMS, MidiSource, normalise_loudness

    def build() -> dict[str, np.ndarray]:
        src = MidiSource(seed=seed, split="heldout", sample_rate=SAMPLE_RATE, clip_seconds=seconds,
                         soundfont=soundfont)
        family_of = {p: f for f, progs in GM_PROGRAMS.items() for p in progs}
        phrases, programs, j = [], [], 10_000
        for i in range(n):
            program, notes1 = src.phrase(i)
            while True:  # the next phrase of the same family (same register), played on this program
                j += 1
                other, notes2 = src.phrase(j)
                if family_of[other] == family_of[program] and notes2 != notes1:
                    break
            phrases += [(program, notes1), (program, notes2)]
            programs.append(program)
        slot = seconds + 1.0
        mono = src._render(phrases, slot)
        clips = []
        for k in range(len(phrases)):
            start = round(k * slot * SAMPLE_RATE)
            piece = mono[start : start + src.clip_samples]
            piece = np.pad(piece, (0, max(0, src.clip_samples - piece.size)))
            clips.append(normalise_loudness(piece, -20.0))
        clips_a = np.stack(clips).astype(np.float32)
        return {"x1": clips_a[0::2], "x2": clips_a[1::2], "program": np.asarray(programs)}

    data = _cached({"kind": "musescore", "n": n, "seed": seed, "seconds": seconds, "sf": soundfont, "v": 1}, build)
    return data["x1"], data["x2"], [f"GM program {int(p)}" for p in data["program"]]


def real_phrases(seconds: float = 4.0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Two non-overlapping clips of each instrument recording of Sonic Pi's samples (audible ones, -20 dBFS)."""
    from fxmatch.audio_io import rms_dbfs
    from training.real_set import recordings
    from training.sources import normalise_loudness, read_mono

    def build() -> dict[str, np.ndarray]:
        x1, x2, names = [], [], []
        n = int(seconds * SAMPLE_RATE)
        for path in recordings():
            audio = read_mono(path, SAMPLE_RATE)
            if audio.size < 2 * n:
                continue
            a, b = audio[:n], audio[n : 2 * n]
            if min(rms_dbfs(a), rms_dbfs(b)) < -45.0:
                continue
            x1.append(normalise_loudness(a, -20.0))
            x2.append(normalise_loudness(b, -20.0))
            names.append(path.stem)
        return {"x1": np.stack(x1).astype(np.float32), "x2": np.stack(x2).astype(np.float32),
                "names": np.asarray(names)}

    data = _cached({"kind": "real", "seconds": seconds, "v": 1}, build)
    return data["x1"], data["x2"], [str(s) for s in data["names"]]


def make_pairs(source: str = "musescore", n: int = 16, seed: int = 23, seconds: float = 4.0,
               chains: str = "random") -> list[MatchPair]:
    """`n` pairs from `source` ("musescore" or "real"; the real set has as many as its recordings allow), each with
    a chain drawn with `seed` (`chains`: "random" as above, or "peak": one audible PeakFilter)."""
    if source == "musescore":
        x1, x2, names = musescore_phrases(n, seconds=seconds)
    elif source == "real":  # 3 s clips: two fit in 9 of the 12 recordings
        x1, x2, names = real_phrases(min(seconds, REAL_SECONDS))
    else:
        raise ValueError(f"unknown pair source {source!r} (musescore, real)")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 23, 0 if chains == "random" else 1]))
    draw = random_chain if chains == "random" else peak_chain
    return [MatchPair(x1[i], x2[i], audible_chain(rng, draw, (x1[i], x2[i])), SAMPLE_RATE,
                      f"{source}-{i:03d} ({names[i]})") for i in range(min(n, len(x1)))]


def audible_chain(rng: np.random.Generator, draw: Callable[[np.random.Generator], list],
                  takes: Sequence[np.ndarray]) -> list[tuple[str, dict[str, float]]]:
    """A chain from `draw(rng)`, drawn again (at most MAX_DRAWS times) until every effect is audible on every take
    (`[samples]` at SAMPLE_RATE; else "relative to no effect" means little); the last draw when none is."""
    from fxmatch.audibility import audible, removal_db

    for _ in range(MAX_DRAWS):
        chain = draw(rng)
        if all(len(audible(removal_db(chain, x, render(chain, x, SAMPLE_RATE), SAMPLE_RATE))) == len(chain)
               for x in takes):
            break
    return chain
