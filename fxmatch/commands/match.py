"""`fxmatch match REFERENCE MY_TAKE [-o OUT.fxpreset.json] [--json] [--seconds S] [--time-budget S] [--model M]
[--seed N]`.

Tone match: REFERENCE is a processed recording (a record, a stem), MY_TAKE is the player's own dry instrument, a
*different* performance. Starts from the blind estimate of REFERENCE and fits the chain (among the encoder's top
candidates, with parsimony) and its params so that MY_TAKE through it sounds like REFERENCE under a
content-invariant distance (`fxmatch.match`); the chain's output level makes it as loud. When MY_TAKE turns out to
be the same performance as REFERENCE (they align and their partials agree), says so and points to `fxmatch
capture`, which is exact there. Files may differ in rate and channels (mixed to mono); the first READ_SECONDS of
each are read, the fit uses their loudest `--seconds` (default `fxmatch.match.FIT_SECONDS`).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from fxmatch.commands.checks import at_least, positive
from fxmatch.commands.progress import progress_printer

#: how much of each file is read (s)
READ_SECONDS = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", help="the sound to match (a processed recording; WAV, FLAC, ...; any rate)")
    parser.add_argument("take", metavar="my_take",
                        help="your own instrument, dry (another performance: what you will play through the chain)")
    parser.add_argument("-o", "--output", help="write the matched chain here (.fxpreset.json, written atomically)")
    parser.add_argument("--json", action="store_true", help="print the preset (with the fit's figures) as JSON")
    parser.add_argument("--model", help="the exported ONNX model (default: the shipped model)")
    parser.add_argument("--seconds", type=float, metavar="S",
                        help="how much of each file the fit hears: its loudest S seconds, 1 to 60 (default: 4, "
                             "fxmatch.match.FIT_SECONDS; longer takes cost time in proportion, docs/match.md)")
    parser.add_argument("--time-budget", type=float, metavar="S",
                        help="stop the fit after S seconds and answer with what it has (default: no limit)")
    parser.add_argument("--evaluations", type=int, metavar="N",
                        help="renders (pedalboard + statistics) the fit may spend in all (default: 200, "
                             "fxmatch.match.MAX_EVALUATIONS)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the optimiser (default: 0)")
    parser.add_argument("--top", type=int, default=5, help="chains listed in the ranking (default: 5)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores)")


def _check_args(args: argparse.Namespace) -> None:
    positive("match", "time-budget", args.time_budget, " seconds")
    positive("match", "seconds", args.seconds)
    at_least("match", "seconds", args.seconds, 1)
    if args.seconds is not None and args.seconds > READ_SECONDS:
        from fxmatch.errors import FxmatchInputError

        raise FxmatchInputError(f"match: --seconds must be at most {READ_SECONDS:g} (what is read of each file), "
                                f"got {args.seconds:g}")
    at_least("match", "evaluations", args.evaluations, 1)
    at_least("match", "top", args.top, 1)
    at_least("match", "threads", args.threads, 1)
    if args.output:
        from fxmatch.audio_io import check_output

        check_output(args.output, [args.reference, args.take, args.model])


def same_performance_line(reference: str, take: str, al: Any) -> str:
    """What the user should know when the take is the reference's own performance."""
    return (f"{take} looks like the same performance as {reference} (they align at {al.offset_ms:+.1f} ms; "
            f"envelopes correlate {al.correlation:.2f}, partials {al.partials:.2f}): capture fits that exactly: "
            f"fxmatch capture {take} {reference}")


def progress_line(p: Any) -> str:
    """One progress report of the fit in words: fraction, the closest chain so far, time."""
    from fxmatch.chains import chain_label

    return (f"matching {100 * p.fraction:3.0f} %  closest so far: {chain_label(p.best_chain)} "
            f"({100 * p.best_relative:.0f} % of the take's own distance), {p.elapsed:.0f} s")


def run(args: argparse.Namespace) -> int:
    from fxmatch.inference import EstimatorSession
    from fxmatch.match import FIT_SECONDS, MAX_EVALUATIONS, match, same_performance
    from fxmatch.preset import write_preset
    from fxmatch.refine import resample
    from fxmatch.shipped import model_path

    _check_args(args)
    if args.threads is not None:
        from fxmatch.threads import set_cpu_threads

        set_cpu_threads(args.threads)
    from fxmatch.audio_io import audio_info
    from fxmatch.commands.capture import read_mono_head

    audio_info(args.reference)  # fail fast (exit 2) on a missing or unreadable file, before reading the other
    audio_info(args.take)
    ref, ref_rate = read_mono_head(args.reference, READ_SECONDS)
    take, take_rate = read_mono_head(args.take, READ_SECONDS)
    session = EstimatorSession(model_path(args.model), providers="cpu", threads=args.threads)
    notes: list[str] = []
    rate = min(ref_rate, 48000)
    al = same_performance(resample(ref[None], ref_rate, rate)[0], resample(take[None], take_rate, rate)[0], rate)
    if al is not None:
        notes.append(same_performance_line(args.reference, args.take, al))
    t0 = time.perf_counter()
    result = match(ref, take, ref_rate, take_rate=take_rate, session=session, time_budget=args.time_budget,
                   max_evaluations=args.evaluations or MAX_EVALUATIONS, seed=args.seed,
                   seconds=args.seconds or FIT_SECONDS,
                   progress=progress_printer(progress_line))
    if sys.stderr.isatty():
        print(file=sys.stderr)
    result.warnings[:0] = notes
    preset = result.preset()
    if args.output:
        write_preset(args.output, preset)
    if args.json:
        from fxmatch.jsonout import print_json

        print_json(preset.to_dict())
    else:
        print(format_report(args.reference, args.take, result, args.top, time.perf_counter() - t0))
    for line in result.warnings:
        print(f"fxmatch: warning: {line}", file=sys.stderr)
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def format_report(reference: str, take: str, result, top: int, seconds: float) -> str:
    """The readable report: the blind estimate, the matched chain with its params, the ranking, the costs."""
    from fxmatch.chains import chain_label
    from fxmatch.effects import get_spec
    from fxmatch.inference import format_value

    rel = lambda d: 100 * d / max(result.no_effect_distance, 1e-12)
    lines = [
        f"reference {reference}, your take {take}",
        (f"{'blind':<13}{chain_label([n for n, _ in result.blind_chain])} (the model on the reference alone; "
        f"{rel(result.blind_distance):.0f} % of the take's own tone distance)"),
        f"{'matched':<13}{result.label} ({rel(result.distance):.0f} %)",
    ]
    effects = [(n, p) for n, p in result.chain if n in result.chain_names]
    if effects:
        lines.append("params")
        width = max(len(k) for _, p in effects for k in p)
        for name, params in effects:
            spec = get_spec(name)
            for i, (k, v) in enumerate(params.items()):
                head = f"  {name:<12}" if i == 0 else " " * 14
                lines.append(f"{head} {k:<{width}}  {format_value(v):>8} {spec.param(k).unit}".rstrip())
    lines.append(f"{'output level':<13}{result.output_level_db:+.1f} dB (as loud as the reference)")
    lines.append("ranking      (tone distance relative to your take as it is; * = chosen: the shortest chain "
                 "within 5 % of the closest)")
    for i, t in enumerate(result.ranking[:top]):
        lines.append(f" {'*' if i == 0 else ' '}{rel(t.distance):6.1f} %  {chain_label(t.chain)}")
    lines.append(f"fitted in {seconds:.1f} s ({result.evaluations} renders) on {result.heard_seconds:.1f} s of each "
                 f"recording (the loudest; --seconds)")
    return "\n".join(lines)
