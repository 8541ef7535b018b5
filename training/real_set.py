"""The real-recording held-out sets: `python -m training.real_set OUT [--folder DIR] [--seed S]`.

Recordings of real instruments that no training run reads: Debian's `sonic-pi-samples` (Sonic Pi's sample library,
CC0 recordings from freesound: electric guitars, an upright bass, a drum roll, breakbeats, tabla and percussion
loops). No training config may name this folder (`tests/training/test_real_set.py` checks every config). The
recordings are "as they come": a room, a microphone, a record's mastering are part of them, which is the point.

Three views, each a data set folder (`training.data.write_dataset`) that `fxmatch evaluate MODEL OUT/VIEW` scores:

* `unprocessed/`: every clip with no effect (the true chain is empty): how many effects does a model name on them?
* `pedalboard/`: every clip through a pedalboard chain of 1-3 effects (each length equally likely), params drawn
  from the training ranges.
* `sox/`: the same clips and chains rendered by SoX (`training.foreign`), another implementation of each effect.

Clips are `CLIP_SECONDS` long, cut every `HOP_SECONDS` from each file in `RECORDINGS`, loudness-normalised to
-20 dBFS RMS like the training clips; quiet clips are skipped.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fxmatch.audio_io import atomic_folder, rms_dbfs
from fxmatch.errors import FxmatchInputError
from fxmatch.vocabulary import ChainVocabulary
from training.data import TargetDataset, length_uniform_weights, write_dataset
from training.sources import DrySource, normalise_loudness, read_mono

#: where Debian's sonic-pi-samples puts its recordings (installed by scripts/install.sh --test)
SONIC_PI_SAMPLES = Path("/usr/share/sonic-pi/samples")
#: the recordings of real instruments and performances used (electronic, synthesised and ambient files left out)
RECORDINGS = (
    "guit_em9", "guit_e_fifths", "guit_e_slide", "guit_harmonics", "bass_woodsy_c", "drum_roll", "loop_amen_full",
    "loop_compus", "loop_garzul", "loop_safari", "loop_tabla", "loop_mika",
)
SAMPLE_RATE = 44100
CLIP_SECONDS = 3.0
HOP_SECONDS = 1.5
SILENCE_DBFS = -45.0
VIEWS = ("unprocessed", "pedalboard", "sox")


class RecordingClips(DrySource):
    """Clips cut from a list of recordings (mono, `sample_rate`, `clip_seconds`, loudness-normalised)."""

    def __init__(self, paths: Sequence[Path], sample_rate: int = SAMPLE_RATE, clip_seconds: float = CLIP_SECONDS,
                 hop_seconds: float = HOP_SECONDS, rms_dbfs_target: float = -20.0):
        self.sample_rate, self.clip_seconds, self.split = int(sample_rate), float(clip_seconds), "heldout"
        self.rms_dbfs = float(rms_dbfs_target)
        self.paths = [Path(p) for p in paths]
        self.names: list[str] = []
        self._clips: list[np.ndarray] = []
        hop = round(hop_seconds * self.sample_rate)
        for path in self.paths:
            audio = read_mono(path, self.sample_rate)
            last = max(0, audio.size - self.clip_samples)
            for start in range(0, last + 1, hop):
                clip = audio[start : start + self.clip_samples]
                clip = np.pad(clip, (0, self.clip_samples - clip.size))
                if rms_dbfs(clip) > SILENCE_DBFS:
                    self._clips.append(normalise_loudness(clip, self.rms_dbfs))
                    self.names.append(f"{path.stem}@{start / self.sample_rate:.1f}s")
        if not self._clips:
            raise FxmatchInputError("no audible clip in the recordings")
        self.n_clips = len(self._clips)

    def clip(self, index: int) -> np.ndarray:
        """Clip `index` (modulo the clip count), float32 `[clip_samples]`."""
        return self._clips[index % self.n_clips]

    def describe(self) -> dict:
        return {**super().describe(), "recordings": [p.name for p in self.paths], "clips": self.n_clips,
                "hop_seconds": HOP_SECONDS, "rms_dbfs": self.rms_dbfs, "clip_names": self.names}


def recordings(folder: Path = SONIC_PI_SAMPLES) -> list[Path]:
    """The files of `RECORDINGS` under `folder` (a clear error naming the package when it is missing)."""
    paths = [folder / f"{name}.flac" for name in RECORDINGS]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FxmatchInputError(f"{folder}: missing {', '.join(missing)} (install Debian's sonic-pi-samples: "
                                "scripts/install.sh --test does)")
    return paths


def make_real_sets(out: str | Path, folder: Path = SONIC_PI_SAMPLES, seed: int = 4242) -> dict[str, Path]:
    """Write the three views under `out` (which must not exist or be empty); each is renamed into place whole."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FxmatchInputError(f"{out}: exists and is not an empty folder")
    source = RecordingClips(recordings(folder))
    vocab = ChainVocabulary.default()
    with_effects = length_uniform_weights(vocab, (1, 2, 3))
    no_effect = length_uniform_weights(vocab, (0,))
    views = {
        "unprocessed": TargetDataset(source, vocab, seed, source.n_clips, "pedalboard", no_effect),
        "pedalboard": TargetDataset(source, vocab, seed, source.n_clips, "pedalboard", with_effects),
        "sox": TargetDataset(source, vocab, seed, source.n_clips, "sox", with_effects),
    }
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, dataset in views.items():
        with atomic_folder(out / name) as tmp:
            write_dataset(dataset, tmp)
        written[name] = out / name
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.real_set", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to write the three views into (must not exist or be empty)")
    parser.add_argument("--folder", type=Path, default=SONIC_PI_SAMPLES, help="the sonic-pi-samples folder")
    parser.add_argument("--seed", type=int, default=4242, help="seed of the chains and params (default 4242)")
    args = parser.parse_args(argv)
    try:
        written = make_real_sets(args.out, args.folder, args.seed)
    except FxmatchInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
