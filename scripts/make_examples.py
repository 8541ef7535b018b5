#!/usr/bin/env python
"""Regenerate the bundled example targets in examples/ (what `fxmatch demo` estimates).

Each example is a dry clip made by the project's own generator (training.sources synthesised instruments, the
held-out seed stream, so no example is a training clip) and its target rendered by pedalboard through a known
chain (training.data.render_pedalboard, the "hidden" generator of the training data), with parameters drawn from
the training ranges by a seeded generator (redrawn when the target would clip in 16 bits). Files: `<name>_dry.flac` and `<name>_target.flac` (mono, 44.1 kHz,
16-bit FLAC) and `examples.json` listing, for each example, its files and its true chain in the preset format.
The output is a pure function of --seed (same seed, same files).

    .venv/bin/python scripts/make_examples.py [--seed 2024] [--seconds 3] [-o examples]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from fxmatch.audio_io import write_audio, write_text_atomic
from fxmatch.preset import Preset
from fxmatch.vocabulary import ChainVocabulary
from training.data import render_pedalboard
from training.sources import SynthSource

log = logging.getLogger("make_examples")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 44100
EXAMPLES_FORMAT = "fxmatch-examples"
MAX_16BIT = 1.0 - 2**-15
MAX_DRAWS = 100

#: (name, instrument, chain): a variety of chains from none to three effects, on different instruments
EXAMPLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("keys_clean", "keys", ()),
    ("guitar_distortion", "guitar_chord", ("Distortion",)),
    ("riff_distortion_delay", "guitar_riff", ("Distortion", "Delay")),
    ("bass_compressor_chorus_reverb", "bass", ("Compressor", "Chorus", "Reverb")),
    ("chord_peakfilter_phaser", "guitar_chord", ("PeakFilter", "Phaser")),
    ("drums_compressor_peakfilter_delay", "drums", ("Compressor", "PeakFilter", "Delay")),
)


def _round_params(params: dict[str, float]) -> dict[str, float]:
    """Params rounded to 4 significant digits (what examples.json stores is exactly what rendered the target)."""
    return {k: float(f"{v:.4g}") for k, v in params.items()}


def make_examples(folder: Path, seed: int = 2024, seconds: float = 3.0) -> dict:
    """Write the example files and examples.json into `folder`; return the examples.json content."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ChainVocabulary.default()
    entries = []
    for i, (name, instrument, chain) in enumerate(EXAMPLES):
        source = SynthSource(seed=seed, split="heldout", sample_rate=SAMPLE_RATE, clip_seconds=seconds,
                             instruments=[instrument])
        dry = source.clip(i)
        # quantise the dry clip first so that the target is exactly the stored dry file through the chain
        dry = np.round(np.clip(dry, -1.0, MAX_16BIT) * 32768.0).astype(np.float32) / 32768.0
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7, i]))
        for _ in range(MAX_DRAWS):  # redraw params whose target would clip in 16 bits (deterministic)
            params = [_round_params(vocab.effect(e).sample(rng)) for e in chain]
            target = render_pedalboard(vocab, chain, params, dry, SAMPLE_RATE)
            peak = float(np.max(np.abs(target)))
            if peak <= MAX_16BIT:
                break
        else:
            raise SystemExit(f"{name}: every draw of params clips in 16-bit; pick another seed")
        dry_file, target_file = f"{name}_dry.flac", f"{name}_target.flac"
        write_audio(folder / dry_file, dry[None], SAMPLE_RATE, subtype="PCM_16")
        write_audio(folder / target_file, target[None], SAMPLE_RATE, subtype="PCM_16")
        preset = Preset.from_chain(list(zip(chain, params)))  # validates names, params and ranges
        entries.append({
            "name": name,
            "instrument": instrument,
            "dry": dry_file,
            "target": target_file,
            "chain": preset.to_dict()["chain"],
        })
        log.info("%s: %s through %s (peak %.2f)", name, instrument, " > ".join(chain) or "no effect", peak)
    data = {
        "format": EXAMPLES_FORMAT,
        "version": 1,
        "generator": "scripts/make_examples.py: training.sources.SynthSource (held-out split) rendered by "
                     "pedalboard (training.data.render_pedalboard), params drawn from the training ranges "
                     "(redrawn when the target would clip in 16 bits)",
        "seed": seed,
        "sample_rate": SAMPLE_RATE,
        "seconds": seconds,
        "examples": entries,
    }
    write_text_atomic(folder / "examples.json", json.dumps(data, indent=2) + "\n")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2024, help="generator seed (default: 2024)")
    parser.add_argument("--seconds", type=float, default=3.0, help="clip length in seconds (default: 3)")
    parser.add_argument("-o", "--output", default=str(ROOT / "examples"), help="folder (default: examples/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folder = Path(args.output)
    make_examples(folder, args.seed, args.seconds)
    total = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    log.info("wrote %s (%.2f MB)", folder, total / 1e6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
