"""`fxmatch capture DRY WET [-o OUT.fxpreset.json] [--json] [--search-k K] [--time-budget S] [--seed N] [--model M]`.

With both recordings of one performance, the dry one (e.g. a guitar's DI) and the wet one (the pedal's or plugin's
output), searches the chains through the differentiable twins (`fxmatch.capture.capture`): aligns the two, fits
every candidate chain's params, and names the chain that sounds closest (the shortest within a tolerance of the
best). Each effect's params are first read off the pair (`fxmatch.identify`) and the twins start from those reads.
Every chain fits the chain-wide output level, which the preset stores as a trailing pedalboard `Gain`
(`fxmatch.chains`; the chain choice ignores it). Prints the offset, the level, the chosen chain with its params and
the ranking of the best few chains with their distances; writes the chosen chain as a preset. `capture_files` is
the core that `fxmatch estimate --dry` runs too. Files at different rates are brought to one rate (the wet
file's, at most 48 kHz); channels are mixed to mono; the first READ_SECONDS of each file are used.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from fxmatch.commands.checks import at_least, positive
from fxmatch.commands.progress import progress_printer
from fxmatch.errors import FxmatchInputError

#: how much of each file is read (s): the alignment looks at the first 30 s, the search at a short excerpt
READ_SECONDS = 60.0
#: the highest rate the search works at (Hz); higher-rate files are brought down to it
MAX_RATE = 48000
#: said when the time budget ended the search early
BUDGET_WARNING = "the time budget ended the search early; a longer budget may find a closer chain"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dry", help="the recording before the effect (e.g. a DI track; WAV, FLAC, ...; any rate)")
    parser.add_argument("wet", help="the same performance after the effect (the pedal's or plugin's output)")
    parser.add_argument("-o", "--output", help="write the chosen chain here (.fxpreset.json, written atomically)")
    parser.add_argument("--json", action="store_true", help="print the preset (with the search's figures) as JSON")
    parser.add_argument("--search-k", type=int, metavar="K",
                        help="try only the encoder's K most likely chains and their sub-chains, starting from the "
                             "encoder's params (default: every chain of the vocabulary, no model needed)")
    parser.add_argument("--model", help="the exported ONNX model used by --search-k (default: the shipped model)")
    parser.add_argument("--time-budget", type=float, metavar="S",
                        help="stop the search after S seconds and answer with what it has (default: no limit)")
    parser.add_argument("--match-level", action="store_true",
                        help="deprecated, kept for old scripts: the output level is now always fitted and written to "
                             "the preset (a trailing Gain)")
    parser.add_argument("--max-offset", type=float, default=None, metavar="S",
                        help="how far apart (s) the two recordings may start (default: 1; a shorter file is also "
                             "placed anywhere along the longer one)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random starts (default: 0)")
    parser.add_argument("--top", type=int, default=5, help="chains listed in the ranking (default: 5)")
    parser.add_argument("--threads", type=int,
                        help="CPU threads for the search (default: all cores; idle threads sleep, so a busy machine "
                             "stays fast)")


def _check_args(args: argparse.Namespace) -> None:
    at_least("capture", "search-k", args.search_k, 1)
    positive("capture", "time-budget", args.time_budget, " seconds")
    at_least("capture", "top", args.top, 1)
    at_least("capture", "threads", args.threads, 1)
    positive("capture", "max-offset", args.max_offset, " seconds")
    if args.model and args.search_k is None:
        raise FxmatchInputError("capture: --model is used with --search-k K (the encoder picks the K chains)")
    if args.output:
        from fxmatch.audio_io import check_output

        check_output(args.output, [args.dry, args.wet, args.model])


def read_mono_head(path: str, max_seconds: float = READ_SECONDS) -> tuple[np.ndarray, int]:
    """The first `max_seconds` of an audio file, channels mixed: float32 `[samples]` and the rate (Hz)."""
    from fxmatch.audio_io import audio_info, iter_audio_blocks

    rate = audio_info(path)[0]
    limit = int(max_seconds * rate)
    parts, n = [], 0
    for block in iter_audio_blocks(path, 65536):
        parts.append(block.mean(axis=0, dtype=np.float32))
        n += block.shape[1]
        if n >= limit:
            break
    if not parts:
        raise FxmatchInputError(f"{path}: holds no audio samples")
    return np.concatenate(parts)[:limit], rate


def load_pair(dry_path: str, wet_path: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Both files as mono float32 `[samples]` at one rate (the wet file's, at most MAX_RATE Hz)."""
    from fxmatch.audio_io import audio_info
    from fxmatch.refine import resample

    audio_info(dry_path)  # fail fast (exit 2) on a missing or unreadable file, before reading the other one
    audio_info(wet_path)
    dry, dry_rate = read_mono_head(dry_path)
    wet, wet_rate = read_mono_head(wet_path)
    rate = min(wet_rate, MAX_RATE)
    return resample(dry[None], dry_rate, rate)[0], resample(wet[None], wet_rate, rate)[0], rate


def candidates_from_model(model: str | None, wet: np.ndarray, rate: int, k: int) -> list:
    """The encoder's `k` most likely chains for `wet` and their sub-chains (`capture.candidates_from_ranked`)."""
    from fxmatch import shipped
    from fxmatch.capture import candidates_from_ranked
    from fxmatch.inference import EstimatorSession

    session = EstimatorSession(shipped.model_path(model), providers="cpu")
    estimate = session.estimate_array(wet, rate, top=None, source="wet")
    return candidates_from_ranked(estimate.ranked, k)


@dataclass
class CaptureRun:
    """One search on two files (`capture_files`): the result, the rate it ran at (Hz) and its wall time (s)."""

    result: Any  # fxmatch.capture.CaptureResult
    sample_rate: int
    seconds: float


def capture_files(dry_path: str, wet_path: str, candidates: Callable[[np.ndarray, int], list] | list | None = None,
                  *, time_budget: float | None = None, seed: int = 0, max_offset: float | None = None,
                  progress: bool = True) -> CaptureRun:
    """`fxmatch.capture.capture` on the heads of two files (`load_pair`: mono, the wet file's rate, <= MAX_RATE):
    the core of `fxmatch capture` and `fxmatch estimate --dry`. `candidates`: the chains to try (None: every chain;
    a callable gets the wet signal and the rate, e.g. to ask the encoder); `progress`: a line on stderr."""
    from fxmatch.capture import SearchSettings, capture

    dry, wet, rate = load_pair(dry_path, wet_path)
    if callable(candidates):
        candidates = candidates(wet, rate)
    settings = SearchSettings()
    if max_offset is not None:
        settings = replace(settings, max_offset_seconds=max_offset)
    t0 = time.perf_counter()
    result = capture(dry, wet, rate, candidates, settings=settings, time_budget=time_budget, seed=seed,
                     progress=progress_printer(progress_line) if progress else None)
    if progress and sys.stderr.isatty():
        print(file=sys.stderr)
    return CaptureRun(result, rate, time.perf_counter() - t0)


def run(args: argparse.Namespace) -> int:
    from fxmatch.preset import write_preset

    _check_args(args)
    if args.threads is not None:
        from fxmatch.threads import set_cpu_threads

        set_cpu_threads(args.threads)
    if args.match_level:
        print("fxmatch: note: --match-level is no longer needed: the output level is always fitted and written to "
              "the preset", file=sys.stderr)
    candidates = None
    if args.search_k is not None:
        def candidates(wet: np.ndarray, rate: int) -> list:
            return candidates_from_model(args.model, wet, rate, args.search_k)
    t0 = time.perf_counter()
    run_ = capture_files(args.dry, args.wet, candidates, time_budget=args.time_budget, seed=args.seed,
                         max_offset=args.max_offset)
    result, rate = run_.result, run_.sample_rate
    preset = preset_from_capture(result, top=args.top)
    if args.output:
        write_preset(args.output, preset)
    if args.json:
        from fxmatch.cli import print_json

        print_json(preset.to_dict())
    else:
        print(format_report(args.dry, args.wet, rate, result, top=args.top, seconds=time.perf_counter() - t0))
    for line in preset.estimate["warnings"]:
        print(f"fxmatch: warning: {line}", file=sys.stderr)
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def progress_line(p) -> str:
    """One progress report in words: fraction, stage (its rate and window), the closest chain so far, time."""
    from fxmatch.chains import chain_label

    best = chain_label(p.best_chain)
    if p.done:
        return f"searched 100 %  chosen: {best} ({100 * p.best_relative:.1f} % of no effect), {p.elapsed:.0f} s"
    return (f"searching {100 * p.fraction:3.0f} %  stage {p.stage + 1} of {p.stages} ({p.rate / 1000:g} kHz, "
            f"{p.window_seconds:.1f} s)  closest so far: {best} ({100 * p.best_relative:.0f} % of no effect on "
            f"this stage's window), {p.elapsed:.0f} s")


def preset_from_capture(result, top: int = 5):
    """The chosen chain as a Preset (params rounded to 6 decimals), its fitted output level as a trailing Gain
    (none when inaudible), with the search's figures as its metadata."""
    from fxmatch.preset import Preset

    best = result.best
    summary = result.to_dict(top=top)
    estimate: dict[str, Any] = {
        "model": "capture (dry/wet search through the twins)",
        "no_effect": not best.chain,
        "capture": {k: v for k, v in summary.items() if k not in ("ranking", "warnings")},
        "warnings": summary["warnings"] + ([] if result.complete else [BUDGET_WARNING]),
        "ranking": [{"chain": r["chain"], "distance": r["distance"], "relative": r["relative"],
                     "gain_db": r["gain_db"]} for r in summary["ranking"]],
    }
    estimate["capture"]["output_level_db"] = round(best.gain_db, 3)
    preset = Preset.from_chain([(name, {k: round(v, 6) for k, v in p.items()}) for name, p in best.params], estimate)
    return preset.with_output_level(best.gain_db)


def choice_text(result) -> str:
    """How the search's chain was chosen, in words (the default settings' tolerance, slack and prior weight)."""
    from fxmatch.capture import SearchSettings

    settings = SearchSettings()
    text = f"the shortest chain within {100 * settings.tolerance:g} % of the closest"
    if settings.slack > 0:
        text += f" plus {100 * settings.slack:g} % of no effect"
    if settings.prior_weight > 0 and any(f.prior is not None for f in result.ranking):
        text += f", distance x model's probability ^ -{settings.prior_weight:g}"
    return text


def format_report(dry: str, wet: str, rate: int, result, top: int, seconds: float) -> str:
    """The readable report: alignment, level, chosen chain with params (the output level with them), what the
    identification read, ranking, costs."""
    from fxmatch.chains import chain_label
    from fxmatch.effects import get_spec
    from fxmatch.inference import format_value

    al, best = result.alignment, result.best
    later = "the wet file starts later" if al.offset > 0 else "the wet file starts earlier" if al.offset < 0 else \
        "sample-aligned"
    lines = [
        f"dry {dry}, wet {wet} ({rate} Hz)",
        (f"{'offset':<13}{al.offset_ms:+.2f} ms ({al.offset:+d} samples; {later}; envelopes correlate "
         f"{al.correlation:.2f}" + ("" if al.partials is None else f", partials {al.partials:.2f}")
         + ("; found along the whole of the longer file" if al.whole_take else "")
         + (f"; at the edge of the +-{al.window_s:g} s searched" if al.at_edge else "") + ")"),
        (f"{'level':<13}{al.level_db:+.1f} dB (wet against dry, RMS); the chain's output level {best.gain_db:+.1f} dB"
         " (in the preset as a trailing Gain)"),
        "",
        f"{'chain':<13}{chain_label(best.chain, output_db=best.gain_db)}",
        f"{'distance':<13}{best.distance:.4f} MR-STFT = {100 * best.relative:.1f} % of no effect",
    ]
    if result.take_relative is not None:
        lines.append(f"{'whole take':<13}{100 * result.take_relative:.1f} % of no effect over "
                     f"{result.take_seconds:.1f} s (pedalboard from the take's start; the search's figure is on a "
                     f"{result.excerpt_seconds:.1f} s excerpt)")
    if best.params:
        lines.append("params")
        width = max(len(k) for _, p in best.params for k in p)
        for name, params in best.params:
            spec = get_spec(name)
            for i, (k, v) in enumerate(params.items()):
                head = f"  {name:<12}" if i == 0 else " " * 14
                lines.append(f"{head} {k:<{width}}  {format_value(v):>8} {spec.param(k).unit}".rstrip())
    lines.append(f"ranking      (relative to no effect: the dry take at the wet take's level; * = chosen: "
                 f"{choice_text(result)})")
    last = result.ranking[0].stage
    for i, fit in enumerate(result.ranking[:top]):
        mark = "*" if i == 0 else " "
        note = "" if fit.stage == last else "  (screened only)"
        lines.append(f" {mark}{100 * fit.relative:6.1f} %  {chain_label(fit.chain)}{note}")
    ident = getattr(result, "identification", None)
    if ident is not None and not ident.linear:
        named = chain_label(ident.chain())
        strong = ", ".join(f"{n} {v:.2f}" for n, v in sorted(ident.evidence().items(), key=lambda t: -t[1])[:3])
        lines.append(f"identified   {named} from the pair alone (evidence: {strong}) in {ident.seconds:.1f} s")
    elif ident is not None:
        lines.append("identified   no effect from the pair alone (the wet take is a plain gain of the dry one)")
    lines.append(f"searched {result.n_candidates} chains in {seconds:.1f} s on a {result.excerpt_seconds:.2f} s "
                 f"excerpt from {result.excerpt_start_s:.2f} s")
    return "\n".join(lines)
