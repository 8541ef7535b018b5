"""Evaluation of estimators on a held-out set (`fxmatch evaluate MODEL SET`).

An estimator hears only the target y and names a chain with params in units (a preset). On every example of a set
(dry x, target y, true chain and params) we score, for each estimator:

- exact chain accuracy (the estimated chain, as an ordered tuple of effect names, equals the true one), strict and
  *audible*: a true effect is inaudible when removing it from the chain changes y by less than
  `INAUDIBLE_SNR_DB` (the difference is that far below y, e.g. a compressor whose threshold sits above the
  signal, or a PeakFilter at 0.3 dB); an estimate is audibly right when it holds every audible true effect and no
  effect outside the true chain (an inaudible one may be named or not). Audible presence F1 counts the same way;
- per-effect presence precision / recall / F1 (macro: mean over effects; micro: pooled counts);
- parameter MAE on effects correctly present (true and estimated), normalised to [0, 1] by the set's ranges
  and scales, per effect and per parameter;
- audio: MR-STFT distance (`fxmatch.metrics.mrstft_distance`) and a log-mel distance (mean absolute difference of
  natural-log mel power, 2048-point FFT, hop 512, 64 bands) of pedalboard(estimated preset)(x) vs y, and both
  relative to the "no effect" and "oracle" references (ratio of the mean distances).

References evaluated with the same code: "no effect" (the preset with no effect: y vs x), "mean preset" (one
fixed preset for every example: the set's most frequent non-empty chain, every parameter mid-range, i.e. 0.5 in
normalised units) and "oracle (twins)" (the true chain and params rendered by the differentiable twins vs y: it
measures twin mismatch; through pedalboard it would be exactly zero). On a set rendered by SoX (`renderer: sox`,
training.foreign) the oracle measures the mapping gap between SoX and pedalboard for the same labels instead, and
audibility is judged with SoX renders.

With `dry_aware` each model is also scored on the *informed* path, the one `fxmatch estimate --dry` and `fxmatch
capture` take when the dry signal is known: the model's K most likely chains for y and their sub-chains, started
from its params, fitted through the twins on (x, y) by `fxmatch.capture.capture`, the parsimonious closest chain
named; it is scored like any estimator, with its seconds per example (encoder and search).

Models are exported ONNX files run by `fxmatch.inference` (exactly what users get), or trainer checkpoints (.pt)
run by torch through the same windowing and decoding. A set is a folder written by `training.data.write_dataset`
or `heldout[:N][@SEED]`: N examples generated from the model's own training data description, dry clips from the
source's held-out split (never seen in training), fresh params, rendered by pedalboard.

The code lives in four modules beside this one, which keeps the entry point `evaluate(...)` and the runs of the
estimators, and re-exports the names of the others: `training.eval_sets` (loading a set), `training.eval_models`
(loading a model), `training.eval_metrics` (the scores, audibility and calibration) and `training.eval_report`
(Markdown, plots, eval.json).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from fxmatch.errors import FxmatchInputError
from fxmatch.inference import EstimatorSession
from fxmatch.metrics import DEFAULT_FFT_SIZES
from training.data import chain_key, render_twins
from training.eval_metrics import (
    CALIBRATION_BINS,
    INAUDIBLE_SNR_DB,
    LOGMEL,
    MEAN_PRESET,
    NO_EFFECT,
    ORACLE,
    Preset,
    _ratio,
    _stats,
    audible_effects,
    audible_scores,
    audio_distances,
    calibration_summary,
    confusion,
    expected_calibration_error,
    log_mel_distance,
    normalised,
    recall_by_removal,
    reliability_bins,
    render_preset,
    score_presets,
)
from training.eval_models import CHECKPOINT_SUFFIXES, CheckpointEstimator, load_estimator, model_description
from training.eval_report import (
    plot_confusion,
    plot_param_error,
    plot_reliability,
    render_calibration,
    render_informed,
    render_markdown,
    write_outputs,
    write_reliability,
)
from training.eval_sets import (
    DATA_KEYS,
    DEFAULT_HELDOUT_N,
    HELDOUT_PATTERN,
    EvalExample,
    EvalSet,
    _check_n,
    heldout_config,
    heldout_dataset,
    load_set,
    mean_preset,
    parse_heldout,
    with_audibility,
)

__all__ = [
    "CALIBRATION_BINS", "CHECKPOINT_SUFFIXES", "DATA_KEYS", "DEFAULT_HELDOUT_N", "EVAL_FORMAT", "HELDOUT_PATTERN",
    "INAUDIBLE_SNR_DB", "INFORMED", "LOGMEL", "MEAN_PRESET", "NO_EFFECT", "ORACLE", "CheckpointEstimator",
    "EstimatorRun", "EvalExample", "EvalSet", "Preset", "add_harm", "add_relative", "audible_effects", "audible_scores",
    "audio_distances", "calibration_summary", "confusion", "evaluate", "expected_calibration_error",
    "heldout_config", "heldout_dataset", "load_estimator", "load_set", "log_mel_distance", "mean_preset",
    "model_description", "normalised", "parse_heldout", "plot_confusion", "plot_param_error", "plot_reliability",
    "reliability_bins", "render_calibration", "render_informed", "render_markdown", "render_preset", "run_informed",
    "run_model", "run_reference", "score_presets", "summarise", "with_audibility", "write_outputs",
    "write_reliability",
]

log = logging.getLogger(__name__)

EVAL_FORMAT = "fxmatch-evaluation"


@dataclass
class EstimatorRun:
    """Estimates (presets) and audio distances of one estimator on every example of a set."""

    label: str
    role: str  # model | reference
    presets: list[Preset]
    mrstft: list[float]
    logmel: list[float]
    seconds: float
    probabilities: list[float] | None = None
    model: dict[str, Any] | None = None
    #: the informed path's per-example search figures (relative distance, complete, chains tried, refused)
    search: list[dict[str, Any]] | None = None


def run_reference(eval_set: EvalSet, label: str, progress: bool = True) -> EstimatorRun | None:
    """One of the references (no effect, mean preset, oracle through the twins); None if the twins cannot run."""
    start = time.perf_counter()
    fixed = mean_preset(eval_set) if label == MEAN_PRESET else []
    presets, mr, lm = [], [], []
    for ex in tqdm(eval_set.examples, desc=label, disable=not progress, file=sys.stderr, dynamic_ncols=True):
        if label == ORACLE:
            preset = ex.preset
            try:
                est = render_twins([n for n, _ in preset], [p for _, p in preset], ex.x, eval_set.sample_rate)
            except KeyError as exc:
                log.warning("oracle skipped: no twin for %s", exc)
                return None
            est = np.nan_to_num(est, nan=0.0, posinf=0.0, neginf=0.0)
        else:
            preset = fixed
            est = render_preset(preset, ex.x, eval_set.sample_rate)
        d = audio_distances(est, ex.y, eval_set.sample_rate)
        presets.append(preset)
        mr.append(d[0])
        lm.append(d[1])
    return EstimatorRun(label, "reference", presets, mr, lm, time.perf_counter() - start)


def run_model(est: EstimatorSession, eval_set: EvalSet, label: str, progress: bool = True) -> EstimatorRun:
    """Estimate every example's preset from y alone, render x through it with pedalboard, measure vs y."""
    presets, probs, mr, lm = [], [], [], []
    infer_s, start = 0.0, time.perf_counter()
    for ex in tqdm(eval_set.examples, desc=label, disable=not progress, file=sys.stderr, dynamic_ncols=True):
        t0 = time.perf_counter()
        estimate = est.estimate_array(ex.y, eval_set.sample_rate, top=1, source=f"example {ex.index}")
        infer_s += time.perf_counter() - t0
        preset = [(name, dict(p)) for name, p in estimate.best.params]
        d = audio_distances(render_preset(preset, ex.x, eval_set.sample_rate), ex.y, eval_set.sample_rate)
        presets.append(preset)
        probs.append(estimate.best.probability)
        mr.append(d[0])
        lm.append(d[1])
    desc = model_description(est)
    desc["inference_ms_per_example"] = 1000.0 * infer_s / max(1, len(eval_set.examples))
    return EstimatorRun(label, "model", presets, mr, lm, time.perf_counter() - start, probs, desc)


#: the informed path's label suffix
INFORMED = "+ dry (capture search, k={k})"


def run_informed(est: EstimatorSession, eval_set: EvalSet, label: str, k: int = 64,
                 time_budget: float | None = None, progress: bool = True, seed: int = 0) -> EstimatorRun:
    """The informed path on every example: the model's `k` likeliest chains for y and their sub-chains fitted on
    (x, y) through the twins (`fxmatch.capture.capture`, `time_budget` s each); the chosen preset rendered by
    pedalboard and measured vs y. An example whose pair the search refuses keeps the model's blind estimate."""
    from fxmatch.capture import candidates_from_ranked, capture
    from fxmatch.chains import with_output_level

    presets, mr, lm, searches = [], [], [], []
    start = time.perf_counter()
    for ex in tqdm(eval_set.examples, desc=label, disable=not progress, file=sys.stderr, dynamic_ncols=True):
        t0, c0 = time.perf_counter(), time.process_time()
        estimate = est.estimate_array(ex.y, eval_set.sample_rate, top=None, source=f"example {ex.index}")
        cands = candidates_from_ranked(estimate.ranked, k)
        try:
            result = capture(ex.x, ex.y, eval_set.sample_rate, cands, time_budget=time_budget, seed=seed)
        except FxmatchInputError as exc:
            preset = [(name, dict(p)) for name, p in estimate.best.params]
            info: dict[str, Any] = {"refused": str(exc)}
        else:
            preset = [(name, dict(p)) for name, p in result.best.params]
            info = {"relative": result.best.relative, "complete": result.complete, "chains": result.n_candidates,
                    "offset": result.alignment.offset}
        info.update(seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0)
        level = with_output_level(preset, result.best.gain_db) if "relative" in info else preset  # + output level
        d = audio_distances(render_preset(level, ex.x, eval_set.sample_rate), ex.y, eval_set.sample_rate)
        presets.append(preset)
        searches.append(info)
        mr.append(d[0])
        lm.append(d[1])
    desc = {**model_description(est), "informed": {"k": int(k), "time_budget": time_budget, "seed": seed}}
    return EstimatorRun(label, "informed", presets, mr, lm, time.perf_counter() - start, None, desc, searches)


def summarise(run: EstimatorRun, eval_set: EvalSet, effects: Sequence[str]) -> dict[str, Any]:
    """All figures of one estimator (JSON-ready), relative figures added later by `add_relative`."""
    truth = [ex.preset for ex in eval_set.examples]
    out: dict[str, Any] = {"role": run.role, **score_presets(truth, run.presets, effects, eval_set.vocab)}
    if all(ex.audible is not None for ex in eval_set.examples):
        out["audible"] = audible_scores(truth, run.presets, [ex.audible or () for ex in eval_set.examples], effects)
    if run.role != "reference" and all(ex.removal is not None for ex in eval_set.examples):
        out["recall_by_removal"] = recall_by_removal(truth, run.presets, [ex.removal or {} for ex in eval_set.examples],
                                                     effects)
    out["mrstft"] = _stats(run.mrstft)
    out["logmel"] = _stats(run.logmel)
    out["seconds"] = run.seconds
    out["seconds_per_example"] = run.seconds / max(1, len(eval_set.examples))
    if run.search is not None:
        out["model"] = run.model
        out["search"] = {
            "refused": sum("refused" in s for s in run.search),
            "incomplete": sum(s.get("complete") is False for s in run.search),
            "cpu_seconds_per_example": float(np.mean([s["cpu_seconds"] for s in run.search])),
            "seconds_per_example_median": float(np.median([s["seconds"] for s in run.search])),
            "seconds_per_example_max": float(np.max([s["seconds"] for s in run.search])),
        }
        out["examples"] = [
            {"index": ex.index, "true": chain_key(ex.chain), "estimated": chain_key(tuple(n for n, _ in p)),
             "mrstft": m, "logmel": lmv, **s}
            for ex, p, m, lmv, s in zip(eval_set.examples, run.presets, run.mrstft, run.logmel, run.search)]
        out["confusion"] = confusion([ex.chain for ex in eval_set.examples], [tuple(n for n, _ in p)
                                     for p in run.presets], eval_set.vocab.chains)
    elif run.model is not None:
        out["model"] = run.model
        out["mean_probability"] = float(np.mean(run.probabilities)) if run.probabilities else None
        out["examples"] = [
            {"index": ex.index, "true": chain_key(ex.chain), "estimated": chain_key(tuple(n for n, _ in p)),
             "probability": prob, "mrstft": m, "logmel": lm}
            for ex, p, prob, m, lm in zip(eval_set.examples, run.presets, run.probabilities or [], run.mrstft,
                                          run.logmel)]
        out["confusion"] = confusion([ex.chain for ex in eval_set.examples], [tuple(n for n, _ in p)
                                     for p in run.presets], eval_set.vocab.chains)
        out["calibration"] = calibration_summary(run.probabilities or [], [
            ex.chain == tuple(n for n, _ in p) for ex, p in zip(eval_set.examples, run.presets)])
    if run.label == MEAN_PRESET:
        out["preset"] = [{"effect": n, "params": p} for n, p in (run.presets[0] if run.presets else [])]
    return out


def add_relative(estimators: dict[str, dict[str, Any]]) -> None:
    """Each estimator's mean distances divided by the no-effect and oracle references' (None when unavailable)."""
    for row in estimators.values():
        rel = {}
        for metric in ("mrstft", "logmel"):
            for ref, key in ((NO_EFFECT, "no_effect"), (ORACLE, "oracle")):
                mine = row[metric]["mean"]
                theirs = estimators.get(ref, {}).get(metric, {}).get("mean")
                rel[f"{metric}_vs_{key}"] = _ratio(mine, theirs) if mine is not None and theirs is not None else None
        row["relative"] = rel


def add_harm(estimators: dict[str, dict[str, Any]], runs: Sequence[EstimatorRun], eval_set: EvalSet) -> None:
    """Per estimator, what it does where it should do nothing or little: `named_on_unprocessed` (mean number of
    effects named on the examples whose true chain is empty; None when the set has none), `worse_than_no_estimate`
    (fraction of examples whose render is farther from y than x itself, by MR-STFT) and
    `mrstft_vs_no_effect_median` (median over examples of that ratio; examples with y == x left out)."""
    none = next((r for r in runs if r.label == NO_EFFECT), None)
    empty = [i for i, ex in enumerate(eval_set.examples) if not ex.chain]
    for run in runs:
        row = estimators[run.label]
        row["named_on_unprocessed"] = (float(np.mean([len(run.presets[i]) for i in empty])) if empty else None)
        if none is None:
            continue
        worse = [mine > ref * (1.0 + 1e-6) + 1e-9 for mine, ref in zip(run.mrstft, none.mrstft, strict=True)]
        ratios = [mine / ref for mine, ref in zip(run.mrstft, none.mrstft, strict=True) if ref > 1e-9]
        row["worse_than_no_estimate"] = float(np.mean(worse)) if worse else None
        row["mrstft_vs_no_effect_median"] = float(np.median(ratios)) if ratios else None


def evaluate(models: Sequence[str | Path], set_spec: str, n: int | None = None, oracle: bool = True,
             threads: int | None = None, progress: bool = True, dry_aware: bool = False, search_k: int = 64,
             search_budget: float | None = None) -> dict[str, Any]:
    """Evaluate `models` (the first one describes a held-out set) and the references on one set; the report.

    `dry_aware`: each model's informed path too (`run_informed`: its `search_k` likeliest chains searched with the
    dry signal, `search_budget` s per example), next to its blind row."""
    if search_k < 1:
        raise FxmatchInputError(f"--search-k must be >= 1, got {search_k}")
    if search_budget is not None and not (math.isfinite(search_budget) and search_budget > 0):
        raise FxmatchInputError(f"--search-budget must be > 0 seconds, got {search_budget}")
    _check_n(n)
    if not models:
        raise FxmatchInputError("no model to evaluate")
    t_start = time.perf_counter()
    estimators_ = [load_estimator(m, threads) for m in models]
    eval_set = load_set(set_spec, estimators_[0].info, n, progress)
    load_s = time.perf_counter() - t_start
    effects = list(eval_set.vocab.effect_names)
    for est in estimators_:
        effects += [e.name for e in est.info.effects if e.name not in effects]
    runs: list[EstimatorRun] = []
    labels: set[str] = {NO_EFFECT, MEAN_PRESET, ORACLE}
    for est in estimators_:
        label = est.info.label
        if label in labels:
            label = f"{label} ({est.path.name})"
        i = 2
        while label in labels:
            label, i = f"{est.info.label} ({est.path.name} #{i})", i + 1
        labels.add(label)
        runs.append(run_model(est, eval_set, label, progress))
        if dry_aware:
            informed = f"{label} {INFORMED.format(k=search_k)}"
            labels.add(informed)
            runs.append(run_informed(est, eval_set, informed, search_k, search_budget, progress))
    for ref in (NO_EFFECT, MEAN_PRESET, ORACLE) if oracle else (NO_EFFECT, MEAN_PRESET):
        r = run_reference(eval_set, ref, progress)
        if r is not None:
            runs.append(r)
    estimators = {r.label: summarise(r, eval_set, effects) for r in runs}
    add_relative(estimators)
    add_harm(estimators, runs, eval_set)
    chains = Counter(chain_key(ex.chain) for ex in eval_set.examples)
    return {
        "format": EVAL_FORMAT, "version": 1,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "models": [r.model for r in runs if r.model is not None],
        "set": {**eval_set.description, "n_chains_present": len(chains), "chain_counts": dict(chains.most_common()),
                "effects": list(eval_set.vocab.effect_names), "vocabulary_chains": eval_set.vocab.n_chains},
        "config": {"set": set_spec, "n": n, "oracle": oracle, "threads": threads, "effects_scored": effects,
                   "dry_aware": dry_aware, "search_k": search_k if dry_aware else None,
                   "search_budget": search_budget if dry_aware else None,
                   "mrstft_fft_sizes": list(DEFAULT_FFT_SIZES), "logmel": dict(LOGMEL),
                   "render": "pedalboard(estimated preset)(x) vs y, at the set's sample rate",
                   "mean_preset": "the set's most frequent non-empty chain, every param at 0.5 normalised",
                   "relative": "ratio of mean distances"},
        "order": [r.label for r in runs],
        "estimators": estimators,
        "timing": {"total_s": time.perf_counter() - t_start, "set_load_s": load_s,
                   **{f"{r.label}_s": r.seconds for r in runs}},
    }
