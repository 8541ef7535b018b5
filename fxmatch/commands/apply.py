"""`fxmatch apply PRESET IN.wav OUT.wav [--overwrite-input]`: render a file through a preset's chain with pedalboard."""

from __future__ import annotations

import argparse
import sys

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("preset", help="a .fxpreset.json file")
    parser.add_argument("input", help="audio file to process (WAV, FLAC, ...; any rate, mono or stereo)")
    parser.add_argument("output", help="where to write the processed audio (.wav or .flac)")
    parser.add_argument("--overwrite-input", action="store_true",
                        help="allow OUTPUT to be INPUT: read it fully, then replace it atomically")


def check_paths(args: argparse.Namespace) -> None:
    """Refuse (exit 2) an output of unknown format, unwritable, the preset, or the input without --overwrite-input."""
    from fxmatch.audio_io import audio_format, check_output

    audio_format(args.output)
    check_output(args.output, [args.preset])
    if not args.overwrite_input:
        check_output(args.output, [args.input], hint="pass --overwrite-input to replace it")


def run(args: argparse.Namespace) -> int:
    from fxmatch.audio_io import read_audio, write_audio
    from fxmatch.preset import read_preset

    check_paths(args)
    preset = read_preset(args.preset)
    audio, rate = read_audio(args.input)  # the whole file, closed again before the output is written
    board = preset.to_pedalboard()
    out = board(np.ascontiguousarray(audio), rate)
    write_audio(args.output, out, rate)
    print(f"wrote {args.output}: {out.shape[1] / rate:.2f} s, {out.shape[0]} ch, {rate} Hz through "
          f"{' -> '.join(preset.effect_names) or '(no effect)'}", file=sys.stderr)
    return 0
