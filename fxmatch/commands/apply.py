"""`fxmatch apply PRESET IN.wav OUT.wav`: render a file through a preset's chain with pedalboard."""

from __future__ import annotations

import argparse
import sys

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("preset", help="a .fxpreset.json file")
    parser.add_argument("input", help="audio file to process (WAV, FLAC, ...; any rate, mono or stereo)")
    parser.add_argument("output", help="where to write the processed audio (.wav or .flac)")


def run(args: argparse.Namespace) -> int:
    from fxmatch.audio_io import read_audio, write_audio
    from fxmatch.preset import read_preset

    preset = read_preset(args.preset)
    audio, rate = read_audio(args.input)
    board = preset.to_pedalboard()
    out = board(np.ascontiguousarray(audio), rate)
    write_audio(args.output, out, rate)
    print(f"wrote {args.output}: {out.shape[1] / rate:.2f} s, {out.shape[0]} ch, {rate} Hz through "
          f"{' -> '.join(preset.effect_names) or '(no effect)'}", file=sys.stderr)
    return 0
