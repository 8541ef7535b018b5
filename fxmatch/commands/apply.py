"""`fxmatch apply PRESET IN.wav OUT.wav [--overwrite-input] [--normalize | --limit]`: render a file through a preset's
chain with pedalboard.

A render that goes over full scale is reported in one warning line (its peak, the share of samples over 1.0). A float
WAV keeps such samples as they are; a PCM output (FLAC, 24-bit) is clipped to full scale first, never wrapped.
`--normalize` scales the render to peak at CEILING_DBFS, `--limit` runs it through a look-ahead peak limiter that keeps
it below CEILING_DBFS (one gain for all channels, ramped: no clipping) and leaves quieter passages untouched.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

#: where --normalize puts the peak and below which --limit keeps it (dBFS)
CEILING_DBFS = -1.0
#: --limit: the gain ramps down over this before a peak and back up over it after the hold (s)
LIMIT_RAMP_SECONDS = 0.005
#: --limit: how long the gain holds after a peak before it ramps back up (s; longer than a bass period)
LIMIT_HOLD_SECONDS = 0.05


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("preset", help="a .fxpreset.json file")
    parser.add_argument("input", help="audio file to process (WAV, FLAC, ...; any rate, mono or stereo)")
    parser.add_argument("output", help="where to write the processed audio (.wav or .flac)")
    parser.add_argument("--overwrite-input", action="store_true",
                        help="allow OUTPUT to be INPUT: read it fully, then replace it atomically")
    level = parser.add_mutually_exclusive_group()
    level.add_argument("--normalize", action="store_true",
                       help=f"scale the render so that it peaks at {CEILING_DBFS:g} dBFS (up or down)")
    level.add_argument("--limit", action="store_true",
                       help=f"keep the render below {CEILING_DBFS:g} dBFS with a clean look-ahead peak limiter "
                            "(only the passages over it are turned down)")


def check_paths(args: argparse.Namespace) -> None:
    """Refuse (exit 2) an output of unknown format, unwritable, the preset, or the input without --overwrite-input."""
    from fxmatch.audio_io import audio_format, check_output

    audio_format(args.output)
    check_output(args.output, [args.preset])
    if not args.overwrite_input:
        check_output(args.output, [args.input], hint="pass --overwrite-input to replace it")


def peak_dbfs(audio: np.ndarray) -> float:
    """The sample peak of `audio` in dBFS (full scale 1.0); -inf for digital silence."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else float("-inf")


def normalize(audio: np.ndarray, ceiling_dbfs: float = CEILING_DBFS) -> np.ndarray:
    """`audio` scaled so that its peak is `ceiling_dbfs` (digital silence is returned as it is)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak == 0:
        return audio
    return (audio * (10.0 ** (ceiling_dbfs / 20.0) / peak)).astype(np.float32)


def limit_gain(audio: np.ndarray, rate: int, ceiling_dbfs: float = CEILING_DBFS) -> np.ndarray:
    """The look-ahead limiter's gain `[samples]` for `audio` `[channels, samples]`: at most the gain that brings each
    sample to `ceiling_dbfs`, ramped linearly over LIMIT_RAMP_SECONDS and held for LIMIT_HOLD_SECONDS after a peak;
    1 where the audio stays below the ceiling."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    ceiling = np.float32(10.0 ** (ceiling_dbfs / 20.0))
    peak = np.max(np.abs(np.atleast_2d(audio)), axis=0).astype(np.float32)
    need = np.minimum(np.float32(1.0), ceiling / np.maximum(peak, np.float32(1e-30)))  # each sample's gain (1: none)
    del peak
    n, ramp, hold = need.size, max(1, round(LIMIT_RAMP_SECONDS * rate)), max(0, round(LIMIT_HOLD_SECONDS * rate))
    # held[j] = min(need[m - hold : m + ramp]) for m = j - (ramp - 1), j = 0 .. n + ramp - 2 (outside: 1); forward
    # windows (origin -(size // 2)) over the padded gains
    padded = np.concatenate([np.ones(hold + ramp - 1, np.float32), need, np.ones(ramp - 1, np.float32)])
    size = hold + ramp
    held = minimum_filter1d(padded, size, origin=-(size // 2), mode="nearest")[: n + ramp - 1]
    del padded
    # gain[n] = mean(held[n : n + ramp]): each of those windows covers n, so gain[n] <= need[n] (never over the ceiling)
    gain = uniform_filter1d(held, ramp, origin=-(ramp // 2), mode="nearest")[:n]
    return np.minimum(gain, need)  # the mean's rounding, never above what the sample needs


def limit(audio: np.ndarray, rate: int, ceiling_dbfs: float = CEILING_DBFS) -> tuple[np.ndarray, np.ndarray]:
    """(`audio` `[channels, samples]` through the look-ahead peak limiter, below `ceiling_dbfs`; its gain `[samples]`)."""
    ceiling = np.float32(10.0 ** (ceiling_dbfs / 20.0))
    gain = limit_gain(audio, rate, ceiling_dbfs)
    out = (np.atleast_2d(audio) * gain[None]).astype(np.float32)
    return np.clip(out, -ceiling, ceiling), gain


def _percent(fraction: float) -> str:
    """A share as a short percentage: '22 %', '0.4 %', '0.0021 %'."""
    pct = 100.0 * fraction
    return f"{pct:.0f} %" if pct >= 10 else f"{pct:.1f} %" if pct >= 0.1 else f"{pct:.2g} %"


#: how the warning names a non-float output format (write_audio's default subtypes)
_FORMAT_WORDS = {"FLAC": "24-bit FLAC", "OGG": "Ogg Vorbis"}


def over_full_scale(audio: np.ndarray) -> tuple[float, float] | None:
    """(peak dBFS, share of samples over full scale) when `audio` goes over 1.0, else None."""
    over = np.abs(audio) > 1.0
    if not over.any():
        return None
    return peak_dbfs(audio), float(np.count_nonzero(over)) / over.size


def run(args: argparse.Namespace) -> int:
    from fxmatch.audio_io import audio_format, read_audio, write_audio
    from fxmatch.preset import read_preset

    check_paths(args)
    preset = read_preset(args.preset)
    audio, rate = read_audio(args.input)  # the whole file, closed again before the output is written
    board = preset.to_pedalboard(rate)  # refuses a filter cutoff at or above this file's Nyquist frequency
    out = board(np.ascontiguousarray(audio), rate)
    before = peak_dbfs(out)
    note = ""
    if args.normalize:
        out = normalize(out)
        if math.isfinite(before):
            note = f"; normalized from {before:+.1f} to {CEILING_DBFS:+.1f} dBFS peak"
    elif args.limit:
        out, gain = limit(out, rate)
        if gain.min() < 1.0:
            note = (f"; limited from {before:+.1f} to {CEILING_DBFS:+.1f} dBFS peak ({_percent(np.mean(gain < 1.0))} "
                    f"of the time turned down, by up to {-20 * math.log10(max(float(gain.min()), 1e-6)):.1f} dB)")
    hot = over_full_scale(out)
    fmt = audio_format(args.output)
    if hot is not None:
        peak, share = hot
        said = f"the render peaks at {peak:+.1f} dBFS ({_percent(share)} of samples over full scale)"
        if fmt == "WAV":  # float: the samples are kept as they are
            print(f"fxmatch: warning: {said}; the float WAV keeps them, but a player or a conversion to 16/24-bit "
                  "will clip: pass --normalize or --limit to stay below 0 dBFS", file=sys.stderr)
        else:
            out = np.clip(out, -1.0, 1.0)  # an integer (PCM) or lossy output clips, it never wraps
            print(f"fxmatch: warning: {said}; clipped to full scale for the {_FORMAT_WORDS.get(fmt, fmt)} output: "
                  "pass --normalize or --limit to avoid the distortion", file=sys.stderr)
    write_audio(args.output, out, rate)
    print(f"wrote {args.output}: {out.shape[1] / rate:.2f} s, {out.shape[0]} ch, {rate} Hz through "
          f"{preset.label}{note}", file=sys.stderr)
    return 0

