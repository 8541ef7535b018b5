"""Scores of `fxmatch evaluate` (see training.evaluate): chain accuracy, presence F1, param MAE, audibility,
MR-STFT and log-mel distances of pedalboard renders, the confusion matrix and the calibration of the top chain
probability."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from fxmatch import audibility
from fxmatch.audibility import render_chain
from fxmatch.effects import get_spec
from fxmatch.effects.spec import EffectSpec
from fxmatch.metrics import DEFAULT_FFT_SIZES, mrstft_distance
from fxmatch.vocabulary import ChainVocabulary
from training.data import chain_key
from training.model import mel_filterbank

Preset = list[tuple[str, dict[str, float]]]

#: an effect whose removal changes the target by less than this (difference below y, dB) counts as inaudible
INAUDIBLE_SNR_DB = audibility.INAUDIBLE_DB

LOGMEL = {"n_fft": 2048, "hop_length": 512, "n_mels": 64, "f_min": 20.0, "eps": 1e-8}

NO_EFFECT, MEAN_PRESET, ORACLE = "no effect", "mean preset", "oracle (twins)"

#: equal-width confidence bins of the reliability diagram and the expected calibration error
CALIBRATION_BINS = 15


def _spec(name: str, vocab: ChainVocabulary | None) -> EffectSpec:
    if vocab is not None and name in vocab.effect_names:
        return vocab.effect(name)
    return get_spec(name)


def normalised(spec: EffectSpec, params: Mapping[str, float]) -> np.ndarray:
    """Params in units -> `[n_params]` in [0, 1] (clipped) by the spec's ranges and scales."""
    return np.clip(np.asarray(spec.normalise(params), dtype=np.float64), 0.0, 1.0)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def removal_db(preset: Preset, x: np.ndarray, y: np.ndarray, sample_rate: int,
               render: Callable[[Preset, np.ndarray, int], np.ndarray] | None = None) -> dict[str, float]:
    """How much each effect of `preset` changes `y` (fxmatch.audibility.removal_db; `render` defaults to pedalboard,
    the set's own renderer, e.g. SoX's, where another made y)."""
    return audibility.removal_db(preset, x, y, sample_rate, render or render_preset)


def audible_effects(preset: Preset, x: np.ndarray, y: np.ndarray, sample_rate: int,
                    threshold_db: float = INAUDIBLE_SNR_DB,
                    render: Callable[[Preset, np.ndarray, int], np.ndarray] | None = None) -> tuple[str, ...]:
    """The effects of `preset` whose removal changes `y` by more than `threshold_db` below y (`removal_db`)."""
    return audibility.audible(removal_db(preset, x, y, sample_rate, render), threshold_db)


#: bins of `removal_db` (dB below y) for the recall-by-audibility table: (label, low, high)
REMOVAL_BINS: tuple[tuple[str, float, float], ...] = (
    ("< 10 dB", -math.inf, 10.0), ("10-20 dB", 10.0, 20.0), ("20-30 dB", 20.0, 30.0), (">= 30 dB", 30.0, math.inf))


def recall_by_removal(truth: Sequence[Preset], estimates: Sequence[Preset],
                      removal: Sequence[Mapping[str, float]], effects: Sequence[str]) -> dict[str, Any]:
    """Per effect and `REMOVAL_BINS` bin: how many true effects changed y by that much, and the share named."""
    out: dict[str, Any] = {"bins": [label for label, _, _ in REMOVAL_BINS], "per_effect": {}}
    for e in effects:
        rows = []
        for label, lo, hi in REMOVAL_BINS:
            hits = [e in {n for n, _ in p} for t, p, r in zip(truth, estimates, removal)
                    if e in r and lo <= r[e] and (r[e] < hi or hi == math.inf)]  # inf: removal changes nothing
            rows.append({"bin": label, "n": len(hits), "recall": float(np.mean(hits)) if hits else None})
        out["per_effect"][e] = rows
    return out


def audible_scores(truth: Sequence[Preset], estimates: Sequence[Preset], audible: Sequence[Sequence[str]],
                   effects: Sequence[str]) -> dict[str, Any]:
    """Audible chain accuracy and presence F1: inaudible true effects may be named or not (module docstring)."""
    correct = 0
    counts = {e: {"tp": 0, "fp": 0, "fn": 0} for e in effects}
    for t, p, heard in zip(truth, estimates, audible):
        true_set, est_set, heard_set = {e for e, _ in t}, {e for e, _ in p}, set(heard)
        correct += audibility.audibly_right(true_set, heard_set, est_set)
        for e in effects:
            if e in heard_set:
                counts[e]["tp" if e in est_set else "fn"] += 1
            elif e in est_set and e not in true_set:
                counts[e]["fp"] += 1
    f1 = {e: (2 * c["tp"] / (2 * c["tp"] + c["fp"] + c["fn"]) if c["tp"] + c["fp"] + c["fn"] else None)
          for e, c in counts.items()}
    defined = [v for v in f1.values() if v is not None]
    n = len(truth)
    return {"chain_accuracy": correct / n if n else None, "macro_f1": float(np.mean(defined)) if defined else None,
            "per_effect_f1": f1, "inaudible_true_effects": int(sum(len(t) - len(h) for t, h in zip(truth, audible))),
            "threshold_db": INAUDIBLE_SNR_DB}


def score_presets(truth: Sequence[Preset], estimates: Sequence[Preset], effects: Sequence[str],
                  vocab: ChainVocabulary | None = None) -> dict[str, Any]:
    """Chain accuracy, per-effect presence precision / recall / F1 and normalised param MAE.

    `truth` and `estimates`: one preset per example (list of (effect, params in units)); `effects`: the effects to
    score presence for. Presence scores of an effect never present nor estimated are None (left out of the macro
    mean). `chain_accuracy_without` per effect: the exact chain accuracy when that effect is struck from both the true
    and the estimated chains (how much naming that effect costs). MAE pools |estimated - true| normalised values over
    the params of effects in both presets.
    """
    if len(truth) != len(estimates):
        raise ValueError(f"{len(truth)} true presets but {len(estimates)} estimates")
    n = len(truth)
    chains = [([e for e, _ in t], [e for e, _ in p]) for t, p in zip(truth, estimates)]  # (true, estimated) names
    correct = sum(a == b for a, b in chains)
    without = {e: sum([f for f in a if f != e] == [f for f in b if f != e] for a, b in chains) for e in effects}
    counts = {e: {"tp": 0, "fp": 0, "fn": 0} for e in effects}
    errors: dict[str, dict[str, list[float]]] = {}
    for t, p in zip(truth, estimates):
        true_d, est_d = dict(t), dict(p)
        for e in effects:
            if e in true_d or e in est_d:
                counts[e]["tp" if e in true_d and e in est_d else "fn" if e in true_d else "fp"] += 1
        for e in true_d.keys() & est_d.keys():
            spec = _spec(e, vocab)
            diff = np.abs(normalised(spec, est_d[e]) - normalised(spec, true_d[e]))
            per = errors.setdefault(e, {})
            for name, d in zip(spec.param_names, diff):
                per.setdefault(name, []).append(float(d))
    per_effect: dict[str, dict[str, Any]] = {}
    for e in effects:
        tp, fp, fn = counts[e]["tp"], counts[e]["fp"], counts[e]["fn"]
        defined = tp + fp + fn > 0
        per_effect[e] = {
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
            "f1": 2 * tp / (2 * tp + fp + fn) if defined else None,
            "support": tp + fn, "estimated": tp + fp, "tp": tp, "fp": fp, "fn": fn,
            "chain_accuracy_without": without[e] / n if n else None,
        }
    f1s = [v["f1"] for v in per_effect.values() if v["f1"] is not None]
    tp, fp, fn = (sum(counts[e][k] for e in effects) for k in ("tp", "fp", "fn"))
    mae_effects: dict[str, dict[str, Any]] = {}
    pooled: list[float] = []
    for e in effects:
        if e not in errors:
            continue
        values = [v for vs in errors[e].values() for v in vs]
        pooled.extend(values)
        mae_effects[e] = {"mean": float(np.mean(values)), "n_examples": len(next(iter(errors[e].values()))),
                          "per_param": {k: float(np.mean(v)) for k, v in errors[e].items()}}
    return {
        "n": n,
        "chain_accuracy": correct / n if n else None,
        "presence": {
            "macro_f1": float(np.mean(f1s)) if f1s else None,
            "micro": {"precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None,
                      "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None},
            "per_effect": per_effect,
        },
        "param_mae": {"mean": float(np.mean(pooled)) if pooled else None, "n_values": len(pooled),
                      "per_effect": mae_effects},
    }


def log_mel_distance(estimate: np.ndarray, target: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean |log mel power(estimate) - log mel power(target)| per example; inputs `[batch, samples]` -> `[batch]`.

    2048-point Hann STFT (shorter inputs: the next power of two below their length), hop a quarter of it, 64 mel
    bands from 20 Hz to Nyquist, natural log of power + 1e-8. Zero for identical inputs, symmetric.
    """
    est = torch.as_tensor(np.atleast_2d(estimate), dtype=torch.float32)
    tgt = torch.as_tensor(np.atleast_2d(target), dtype=torch.float32)
    n_fft = min(LOGMEL["n_fft"], 1 << max(4, int(math.log2(max(16, est.shape[-1])))))
    hop = max(1, n_fft // 4)
    fb = torch.from_numpy(mel_filterbank(n_fft, sample_rate, LOGMEL["n_mels"], LOGMEL["f_min"], sample_rate / 2))
    window = torch.hann_window(n_fft)

    def logmel(a: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(a, n_fft, hop_length=hop, window=window, return_complex=True, center=True)
        return torch.log(torch.matmul(fb, spec.abs() ** 2) + LOGMEL["eps"])

    return (logmel(est) - logmel(tgt)).abs().mean(dim=(-2, -1)).numpy().astype(np.float64)


def audio_distances(estimate: np.ndarray, target: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """(MR-STFT distance, log-mel distance) of mono `estimate` vs `target` (`[samples]`, equal lengths)."""
    e = torch.from_numpy(np.ascontiguousarray(estimate, dtype=np.float32))[None]
    t = torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32))[None]
    fft_sizes = [s for s in DEFAULT_FFT_SIZES if s <= t.shape[-1]] or [max(16, t.shape[-1] // 2)]
    mr = float(mrstft_distance(e, t, fft_sizes=fft_sizes))
    return mr, float(log_mel_distance(estimate[None], target[None], sample_rate)[0])


def render_preset(preset: Preset, x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Render mono `x` `[samples]` through pedalboard with `preset`; float32 `[samples]` (non-finite -> 0)."""
    return render_chain(preset, x, sample_rate)


def confusion(truth: Sequence[tuple[str, ...]], estimated: Sequence[tuple[str, ...]],
              labels: Sequence[tuple[str, ...]]) -> dict[str, Any]:
    """Counts `matrix[i][j]` of examples with true chain `labels[i]` estimated as `labels[j]` (extra labels added)."""
    labels = list(labels)
    for c in list(truth) + list(estimated):
        if c not in labels:
            labels.append(c)
    pos = {c: i for i, c in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, e in zip(truth, estimated):
        matrix[pos[t], pos[e]] += 1
    return {"labels": [chain_key(c) for c in labels], "rows": "true chain", "columns": "estimated chain",
            "matrix": matrix.tolist()}


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {"mean": None, "median": None, "std": None}
    return {"mean": float(a.mean()), "median": float(np.median(a)), "std": float(a.std())}


def reliability_bins(confidence: Sequence[float], correct: Sequence[bool],
                     n_bins: int = CALIBRATION_BINS) -> list[dict[str, Any]]:
    """Equal-width bins of top-1 confidence in [0, 1]: {lower, upper, count, confidence, accuracy} (means; None
    in an empty bin). A confidence of exactly 1 falls in the last bin."""
    p = np.clip(np.asarray(confidence, dtype=np.float64).reshape(-1), 0.0, 1.0)
    ok = np.asarray(correct, dtype=np.float64).reshape(-1)
    if p.shape != ok.shape:
        raise ValueError(f"{p.size} confidences but {ok.size} correctness flags")
    index = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    bins = []
    for b in range(n_bins):
        mask = index == b
        count = int(mask.sum())
        bins.append({"lower": b / n_bins, "upper": (b + 1) / n_bins, "count": count,
                     "confidence": float(p[mask].mean()) if count else None,
                     "accuracy": float(ok[mask].mean()) if count else None})
    return bins


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool],
                               n_bins: int = CALIBRATION_BINS) -> float | None:
    """ECE: sum over confidence bins of (bin share of examples) * |accuracy - mean confidence| (0 = calibrated)."""
    bins = reliability_bins(confidence, correct, n_bins)
    n = sum(b["count"] for b in bins)
    if n == 0:
        return None
    return float(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]))


def calibration_summary(confidence: Sequence[float], correct: Sequence[bool],
                        n_bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """ECE, mean confidence, accuracy and the reliability bins of a model's top chain probabilities (JSON-ready)."""
    n = len(confidence)
    return {"ece": expected_calibration_error(confidence, correct, n_bins), "n_bins": n_bins, "n": n,
            "mean_confidence": float(np.mean(confidence)) if n else None,
            "accuracy": float(np.mean(np.asarray(correct, dtype=np.float64))) if n else None,
            "correct": "exact chain", "bins": reliability_bins(confidence, correct, n_bins)}
