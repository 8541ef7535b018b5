"""`fxmatch estimate TARGET [--dry DRY [--search-k K] [--time-budget S] | --no-search | --refine STEPS] [--model M]
[-o OUT.fxpreset.json] [--json]`.

Estimates the effect chain and parameters of a processed recording (any rate, mono or stereo, any length) with an
exported model: the estimate aggregates over analysis windows, says how sure it is in words ("fairly sure (p =
0.82)", "unsure: alternatives are close" with a warning on stderr) and how many windows agree on the chain; "no
effect detected" is an answer like any chain (an empty chain in the preset).

With `--dry` (the same performance before processing; any offset within +-1 s) the informed path runs: the
encoder's K most likely chains and their sub-chains, started from its params, are fitted together through the
differentiable twins (`fxmatch.capture.capture`), the ranking of the closest few is printed with their MR-STFT
distances, and the preset holds the chain the search names. `--no-search` (or an explicit `--refine STEPS`) takes
the older single-chain path instead: a few Adam steps on the encoder's chosen chain only, on time-aligned files.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fxmatch import shipped
from fxmatch.commands.checks import at_least, positive
from fxmatch.errors import FxmatchInputError
from fxmatch.refine import REFINE_LR, REFINE_MAX_RATE

REFINE_READ_SECONDS = 120.0


#: refinement steps of the single-chain path (--no-search) when --refine does not say
DRY_REFINE_STEPS = 40
#: the encoder's most likely chains the search tries by default (with their sub-chains): 64 = every chain
DEFAULT_SEARCH_K = 64
#: chains of the search's ranking printed and kept in the preset's metadata
SEARCH_TOP = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="the processed recording (WAV, FLAC, ...; any rate, mono or stereo)")
    parser.add_argument("--dry", help="the same performance before processing (e.g. the DI take; offset within +-1 s): "
                                      "search the encoder's most likely chains through the twins and name the "
                                      "closest (see --search-k, --time-budget, --no-search)")
    parser.add_argument("--search-k", type=int, metavar="K", default=None,
                        help=f"with --dry: the encoder's K most likely chains (and their sub-chains) are searched "
                             f"(default {DEFAULT_SEARCH_K}: every chain of the model, started from its params)")
    parser.add_argument("--time-budget", type=float, metavar="S",
                        help="with --dry: stop the search after S seconds and answer with what it has")
    parser.add_argument("--no-search", action="store_true",
                        help=f"with --dry: the single-chain path: refine only the encoder's chain "
                             f"({DRY_REFINE_STEPS} steps unless --refine says otherwise; time-aligned files)")
    parser.add_argument("--model", help=f"exported ONNX model (default: {shipped.describe(shipped.DEFAULT_MODEL)})")
    parser.add_argument("--refine", type=int, metavar="STEPS", default=None,
                        help=f"the single-chain path (implies --no-search; needs --dry): refine the encoder's chain "
                             f"with STEPS gradient steps through the twins (default {DRY_REFINE_STEPS} with "
                             "--no-search; 0: the encoder's params as they are)")
    parser.add_argument("--refine-seconds", type=float, default=4.0, metavar="S",
                        help="length of the (loudest) excerpt used by --refine (default: 4 s)")
    parser.add_argument("-o", "--output", help="write the preset here (.fxpreset.json, written atomically)")
    parser.add_argument("--json", action="store_true", help="print the preset as JSON on stdout")
    parser.add_argument("--top", type=int, default=3, help="number of alternative chains to report (default: 3)")
    parser.add_argument("--provider", default="auto", choices=("auto", "cpu", "cuda"),
                        help="onnxruntime execution provider (default: auto = CUDA when it works, else CPU)")
    parser.add_argument("--threads", type=int, help="CPU threads for inference, refine and the search (default: all "
                                                     "cores; idle threads sleep, so a busy machine stays fast)")


def _check_args(args: argparse.Namespace) -> None:
    at_least("estimate", "refine STEPS", args.refine, 0)
    if args.refine and not args.dry:
        raise FxmatchInputError("estimate: --refine needs --dry (the unprocessed recording)")
    if args.no_search and not args.dry:
        raise FxmatchInputError("estimate: --no-search needs --dry (without it there is no search)")
    # the search runs with a dry recording unless told otherwise; an explicit --refine asks for the older path
    args.search = bool(args.dry) and not args.no_search and args.refine is None
    for option, value in (("--search-k", args.search_k), ("--time-budget", args.time_budget)):
        if value is not None and not args.search:
            why = "--dry" if not args.dry else "the search (drop --no-search / --refine)"
            raise FxmatchInputError(f"estimate: {option} needs {why}")
    at_least("estimate", "search-k", args.search_k, 1)
    positive("estimate", "time-budget", args.time_budget, " seconds")
    if args.refine is None:  # the single-chain path refines unless told not to
        args.refine = DRY_REFINE_STEPS if args.dry and not args.search else 0
    positive("estimate", "refine-seconds", args.refine_seconds)
    at_least("estimate", "top", args.top, 0)
    at_least("estimate", "threads", args.threads, 1)
    if args.output:
        from fxmatch.audio_io import check_output

        check_output(args.output, [args.target, args.dry, args.model or shipped.DEFAULT_MODEL])


def model_path(arg: str | None) -> Path:
    """The `--model` argument, or the shipped default (clear error when it is absent)."""
    return shipped.model_path(arg)


def run(args: argparse.Namespace) -> int:
    from fxmatch.audio_io import audio_info
    from fxmatch.inference import EstimatorSession
    from fxmatch.preset import write_preset

    _check_args(args)
    audio_info(args.target)  # fail fast on a missing or unreadable target
    if args.dry:
        audio_info(args.dry)
    session = EstimatorSession(model_path(args.model), providers=args.provider, threads=args.threads)
    if args.dry:
        from fxmatch.threads import set_cpu_threads

        set_cpu_threads(args.threads)  # the twins' torch and numba kernels (refine or search)
    t0 = time.perf_counter()
    # at least CONFIDENCE_ALTERNATIVES runners-up: "how sure" compares the best chain with them whatever --top says;
    # the search needs the whole ranking
    result = session.estimate_file(args.target, top=None if args.search else max(args.top, CONFIDENCE_ALTERNATIVES) + 1)
    seconds = time.perf_counter() - t0
    chain = result.best.params
    refine_info: dict[str, Any] | None = None
    search = None
    if args.search:
        search = search_with_dry(result, args.dry, args.target, args.search_k or DEFAULT_SEARCH_K,
                                 args.time_budget)
        preset = preset_from_search(result, search, top=args.top)
    else:
        if args.refine:
            chain, refine_info = refine(result.best.chain, chain, args.dry, args.target, args.refine,
                                        args.refine_seconds)
        preset = preset_from_estimate(result, chain, refine_info, top=args.top)
    if args.output:
        write_preset(args.output, preset)
    if args.json:
        from fxmatch.cli import print_json

        print_json(preset.to_dict())
    elif search is not None:
        print(format_search(args.target, result, search, seconds))
    else:
        print(format_table(args.target, result, preset, refine_info, seconds))
    for line in preset.estimate["warnings"]:
        print(f"fxmatch: warning: {line}", file=sys.stderr)
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


#: runners-up always computed, so that "how sure" can name the close ones
CONFIDENCE_ALTERNATIVES = 3


def preset_from_estimate(result, chain=None, refine_info: dict[str, Any] | None = None, top: int | None = None):
    """The preset of an `inference.Estimate`: its best chain's params (or `chain`, e.g. refined ones), rounded to
    6 decimals, with the estimate metadata: model, confidence (the best chain's probability), confidence_level and
    unsure (`inference.describe_confidence`), no_effect, windows and windows_agreeing (consistency = their ratio),
    calibrated and chain_temperature, the first `top` alternatives (all when None), warnings, refine.

    "No effect" is a preset with an empty chain and this metadata.
    """
    from fxmatch.inference import describe_confidence
    from fxmatch.preset import Preset

    conf = describe_confidence(result)
    alternatives = result.alternatives if top is None else result.alternatives[:max(0, top)]
    warnings = [*result.warnings, *([conf.warning] if conf.warning else [])]
    estimate: dict[str, Any] = {
        "model": result.model,
        "confidence": round(result.best.probability, 4),
        "confidence_level": conf.level,
        "confidence_text": conf.text,
        "unsure": conf.unsure,
        "no_effect": result.best.no_effect,
        "consistency": round(result.consistency, 4),
        "windows": result.n_windows,
        "windows_agreeing": result.n_agree,
        "calibrated": result.calibrated,
        "chain_temperature": round(result.chain_temperature, 4),
        "alternatives": [{"chain": list(a.chain), "probability": round(a.probability, 4)} for a in alternatives],
        "warnings": warnings,
    }
    if result.presence:
        estimate["presence"] = {name: round(p, 4) for name, p in result.presence.items()}
    if result.presence_threshold is not None:
        estimate["presence_threshold"] = result.presence_threshold
    if refine_info is not None:
        estimate["refine"] = refine_info
    chain = result.best.params if chain is None else chain
    return Preset.from_chain([(name, {k: round(v, 6) for k, v in p.items()}) for name, p in chain], estimate)


# ----------------------------------------------------------------------------------------------------------------
# the informed path: search the encoder's most likely chains with the dry recording



@dataclass
class DrySearch:
    """A search run by `fxmatch estimate --dry`: the capture result, the chains tried, the rate and the costs."""

    result: Any  # fxmatch.capture.CaptureResult
    k: int
    sample_rate: int
    seconds: float
    time_budget: float | None


def search_with_dry(estimate, dry_path: str, target_path: str, k: int, time_budget: float | None = None,
                    seed: int = 0) -> DrySearch:
    """`fxmatch.capture.capture` on the files' heads (mono, the target's rate, <= 48 kHz) over the `k` chains the
    encoder's `estimate` ranks first and their sub-chains, each started from the encoder's params."""
    from fxmatch.capture import candidates_from_ranked
    from fxmatch.commands.capture import capture_files

    run = capture_files(dry_path, target_path, candidates_from_ranked(estimate.ranked, k), time_budget=time_budget,
                        seed=seed)
    return DrySearch(run.result, int(k), run.sample_rate, run.seconds, time_budget)


def search_warnings(search: DrySearch) -> list[str]:
    """What the user should know about a search: cut short by its budget, and capture's own (`fit_warnings`: offset
    at the window's edge, not one performance, closest chain still far)."""
    from fxmatch.capture import fit_warnings

    res = search.result
    out = []
    if not res.complete:
        out.append(f"the time budget ({search.time_budget:g} s) ended the search early; a longer budget may find a "
                   "closer chain")
    return out + (list(res.warnings) or fit_warnings(res))


def preset_from_search(estimate, search: DrySearch, top: int | None = None):
    """The search's chosen chain as a preset: the encoder's metadata (its own chain kept as `encoder_chain`, the
    confidence is the encoder's probability of the chosen chain) plus `search` (alignment, costs, k) and `ranking`
    (the closest `SEARCH_TOP` chains with their distances)."""
    from fxmatch.commands.capture import preset_from_capture

    res = search.result
    base = preset_from_estimate(estimate, res.best.params, None, top=top)
    captured = preset_from_capture(res, top=SEARCH_TOP).estimate
    probability = next((c.probability for c in estimate.ranked if tuple(c.chain) == tuple(res.best.chain)), 0.0)
    meta = dict(base.estimate)
    meta.update(
        chain_source="search",
        encoder_chain=list(estimate.best.chain),
        encoder_confidence=meta["confidence"],
        confidence=round(float(probability), 4),
        no_effect=not res.best.chain,
        search={**captured["capture"], "k": search.k, "time_budget": search.time_budget},
        ranking=captured["ranking"],
        # the encoder's "unsure" warning is about its own guess; the search decided with the dry recording
        warnings=[*estimate.warnings, *search_warnings(search)],
    )
    return type(base).from_chain([(e.effect, dict(e.params)) for e in base.chain], meta).with_output_level(
        res.best.gain_db)


def format_search(target: str, estimate, search: DrySearch, seconds: float) -> str:
    """The readable report of `estimate --dry`: the file, the encoder's guess, then the search (alignment, chosen
    chain with params, ranking with distances, costs)."""
    from fxmatch.commands.capture import format_report

    ch = {1: "mono", 2: "stereo"}.get(estimate.channels, f"{estimate.channels} ch")
    n = estimate.n_windows
    res = search.result
    lines = [
        f"{target}: {estimate.duration_s:.2f} s, {estimate.sample_rate} Hz, {ch}",
        (f"model {estimate.model} on {estimate.provider}: {n} window{'s' if n != 1 else ''} analysed in "
        f"{seconds:.2f} s; its guess: {chain_text(estimate.best.chain)} (p = {estimate.best.probability:.2f})"),
        (f"search       the model's {min(search.k, len(estimate.ranked))} most likely chains and their "
        f"sub-chains ({res.n_candidates} chains) fitted through the twins with the dry recording"),
        "",
    ]
    report = format_report("", "", search.sample_rate, res, top=SEARCH_TOP, seconds=search.seconds)
    lines += report.splitlines()[1:]  # its first line names the files: ours names the target above
    return "\n".join(lines)


def chain_text(names) -> str:
    """Effect names as a chain for people: "A -> B", or "no effect detected" for the empty chain."""
    return " -> ".join(names) if names else "no effect detected"


def presence_line(result, floor: float = 0.2) -> str:
    """Each effect's presence probability at or above `floor`, likeliest first, and the rule's threshold:
    "Distortion 1.00, Reverb 0.39 (an effect is named at >= 0.70)"; "" when the estimate has none."""
    if not result.presence:
        return ""
    shown = sorted(((p, name) for name, p in result.presence.items() if p >= floor), reverse=True)
    text = ", ".join(f"{name} {p:.2f}" for p, name in shown) or f"no effect above {floor:.2f}"
    if result.presence_threshold is not None:
        text += f" (an effect is named at >= {result.presence_threshold:.2f})"
    return text


def confidence_lines(result) -> list[str]:
    """The "confidence" and "windows" lines of the report (labels padded to 13 characters)."""
    from fxmatch.inference import describe_confidence

    conf = describe_confidence(result)
    lines = [f"{'confidence':<13}{conf.text}" + (" (of the exact chain)" if result.presence_threshold else "")]
    heard = presence_line(result)
    if heard:
        lines.append(f"{'heard':<13}{heard}")
    if not conf.calibrated:
        lines.append(f"{'':<13}(uncalibrated model: its probabilities tend to run high)")
    lines.append(f"{'windows':<13}{result.n_agree} of {result.n_windows} agree on this chain "
                 "(each analysis window's own best guess)")
    return lines


# ----------------------------------------------------------------------------------------------------------------
# human output


def format_table(target: str, result, preset, refine_info: dict[str, Any] | None, seconds: float) -> str:
    """The readable report of an estimate: chain (or "no effect detected"), how sure, windows agreeing, params with
    units, alternatives (those of the preset's metadata)."""
    from fxmatch.effects import get_spec
    from fxmatch.inference import format_value

    ch = {1: "mono", 2: "stereo"}.get(result.channels, f"{result.channels} ch")
    n = result.n_windows
    lines = [
        f"{target}: {result.duration_s:.2f} s, {result.sample_rate} Hz, {ch}",
        f"model {result.model} on {result.provider}: {n} window{'s' if n != 1 else ''} analysed"
        + (f", {result.n_silent} silent skipped" if result.n_silent else "") + f" in {seconds:.2f} s",
        "",
        f"{'chain':<13}{chain_text(preset.effect_names)}",
        *confidence_lines(result),
    ]
    if preset.chain:
        lines.append("params")
        width = max(len(p) for e in preset.chain for p in e.params) if any(e.params for e in preset.chain) else 0
        for e in preset.chain:
            spec = get_spec(e.effect)
            for i, (name, value) in enumerate(e.params.items()):
                unit = spec.param(name).unit if name in spec.param_names else ""
                head = f"  {e.effect:<12}" if i == 0 else " " * 14
                lines.append(f"{head} {name:<{width}}  {format_value(value):>8} {unit}".rstrip())
    alternatives = (preset.estimate or {}).get("alternatives", [])
    if alternatives:
        lines.append("alternatives")
        for a in alternatives:
            lines.append(f"  p = {a['probability']:.2f}  {' -> '.join(a['chain']) or 'no effect'}")
    if refine_info is not None:
        lines.append(
            f"refine       {refine_info['steps']} steps on {refine_info['seconds']:.2f} s: MRSTFT distance "
            f"{refine_info['distance_before']:.4f} -> {refine_info['distance_after']:.4f} "
            f"(kept the {refine_info['kept']} params)"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# inference-time refinement through the twins


def _read_head(path: str, max_seconds: float, mono: bool) -> tuple[np.ndarray, int]:
    """The first `max_seconds` of a file as float32 `[channels, samples]` (validated, streamed; bounded memory)."""
    from fxmatch.audio_io import audio_info, iter_audio_blocks

    rate = audio_info(path)[0]
    limit = int(max_seconds * rate)
    parts, n = [], 0
    for block in iter_audio_blocks(path, 65536):
        parts.append(block.mean(axis=0, keepdims=True, dtype=np.float32) if mono else block)
        n += block.shape[1]
        if n >= limit:
            break
    return np.concatenate(parts, axis=1)[:, :limit], rate


def refine(chain_names, chain_params, dry_path: str, target_path: str, steps: int, seconds: float = 4.0,
           lr: float = REFINE_LR) -> tuple[list[tuple[str, dict[str, float]]], dict[str, Any]]:
    """Refine the params on files: `fxmatch.refine.refine_arrays` on the heads of `dry_path` and `target_path`.

    Both files keep their channels when they have the same number (the twins are not linear: distorting a mono
    mix-down is not the mix-down of a distorted stereo file), else both are mixed to mono; they are brought to one
    rate (the target's, at most 48 kHz), trimmed to their common length, and the loudest `seconds` of the target
    with the matching dry excerpt are used. Returns the better of the encoder's and the refined params, and a
    report {steps, seconds, distance_before, distance_after, kept}.
    """
    from fxmatch.audio_io import audio_info
    from fxmatch.refine import refine_arrays, resample

    mono = audio_info(dry_path)[1] != audio_info(target_path)[1]
    dry, dry_rate = _read_head(dry_path, REFINE_READ_SECONDS, mono)
    tgt, tgt_rate = _read_head(target_path, REFINE_READ_SECONDS, mono)
    rate = min(tgt_rate, REFINE_MAX_RATE)
    dry, tgt = resample(dry, dry_rate, rate), resample(tgt, tgt_rate, rate)
    return refine_arrays(chain_names, chain_params, dry, tgt, rate, steps, seconds, lr, dry_name=str(dry_path))
