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
measures twin mismatch; through pedalboard it would be exactly zero).

With `dry_aware` each model is also scored on the *informed* path, the one `fxmatch estimate --dry` and `fxmatch
capture` take when the dry signal is known: the model's K most likely chains for y and their sub-chains, started
from its params, fitted through the twins on (x, y) by `fxmatch.capture.capture`, the parsimonious closest chain
named; it is scored like any estimator, with its seconds per example (encoder and search).

Models are exported ONNX files run by `fxmatch.inference` (exactly what users get), or trainer checkpoints (.pt)
run by torch through the same windowing and decoding. A set is a folder written by `training.data.write_dataset`
or `heldout[:N][@SEED]`: N examples generated from the model's own training data description, dry clips from the
source's held-out split (never seen in training), fresh params, rendered by pedalboard.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from fxmatch.audio_io import atomic_write, write_text_atomic
from fxmatch.effects import get_spec
from fxmatch.effects.spec import EffectSpec
from fxmatch.errors import FxmatchInputError
from fxmatch.inference import (
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    EstimatorSession,
    ModelInfo,
)
from fxmatch.metrics import DEFAULT_FFT_SIZES, mrstft_distance
from fxmatch.vocabulary import ChainVocabulary
from training.data import DiskDataset, TargetDataset, chain_key, render_twins
from training.model import mel_filterbank

log = logging.getLogger(__name__)

EVAL_FORMAT = "fxmatch-evaluation"
DEFAULT_HELDOUT_N = 200
HELDOUT_PATTERN = re.compile(r"^heldout(?::(\d+))?(?:@(\d+))?$")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
LOGMEL = {"n_fft": 2048, "hop_length": 512, "n_mels": 64, "f_min": 20.0, "eps": 1e-8}
NO_EFFECT, MEAN_PRESET, ORACLE = "no effect", "mean preset", "oracle (twins)"
#: TrainConfig keys that describe the data (the rest of a training config does not change the held-out set)
DATA_KEYS = ("seed", "effects", "max_length", "allow_permutations", "source", "source_path", "instruments",
             "sample_rate", "clip_seconds", "rms_dbfs", "heldout_fraction", "chain_weights", "source_mix", "soundfont",
             "midi_pool", "pool_cache_dir", "level_jitter_db")

Preset = list[tuple[str, dict[str, float]]]
#: an effect whose removal changes the target by less than this (difference below y, dB) counts as inaudible
INAUDIBLE_SNR_DB = 30.0


# ----------------------------------------------------------------------------------------------------------------
# the set


@dataclass
class EvalExample:
    """One example: dry `x` and target `y` (float32 `[samples]`) and the true preset (params in units)."""

    index: int
    x: np.ndarray
    y: np.ndarray
    preset: Preset
    #: the true effects whose removal is audible (None: not computed, every true effect counts)
    audible: tuple[str, ...] | None = None

    @property
    def chain(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.preset)


def audible_effects(preset: Preset, x: np.ndarray, y: np.ndarray, sample_rate: int,
                    threshold_db: float = INAUDIBLE_SNR_DB) -> tuple[str, ...]:
    """The effects of `preset` whose removal changes `y` (pedalboard render of x) by more than `threshold_db` below y."""
    energy = float(np.sum(np.asarray(y, dtype=np.float64) ** 2))
    out = []
    for i, (name, _) in enumerate(preset):
        without = render_preset(preset[:i] + preset[i + 1:], x, sample_rate)
        diff = float(np.sum((without.astype(np.float64) - y) ** 2))
        if diff > 0 and (energy <= 0 or 10.0 * math.log10(energy / diff) < threshold_db):
            out.append(name)
    return tuple(out)


def with_audibility(examples: list[EvalExample], sample_rate: int) -> list[EvalExample]:
    """`examples` with their audible true effects computed (pedalboard renders of each chain minus one effect)."""
    return [dataclasses.replace(ex, audible=audible_effects(ex.preset, ex.x, ex.y, sample_rate)) for ex in examples]


@dataclass
class EvalSet:
    """The examples of a set, their sample rate (Hz), the vocabulary they were drawn from and a description."""

    examples: list[EvalExample]
    sample_rate: int
    vocab: ChainVocabulary
    description: dict[str, Any] = field(default_factory=dict)


def parse_heldout(spec: str) -> tuple[int | None, int | None] | None:
    """`heldout[:N][@SEED]` -> (N or None, SEED or None); None when `spec` is not of that form."""
    m = HELDOUT_PATTERN.match(spec.strip())
    if not m:
        return None
    return (int(m.group(1)) if m.group(1) else None, int(m.group(2)) if m.group(2) else None)


def heldout_config(info: ModelInfo, seed: int | None = None):
    """The data part of the model's training config (a TrainConfig) for generating its held-out split.

    Read from the model's metadata (`checkpoint.train_config`, then `training_data`); what is not recorded comes
    from the model itself (its effects, sample rate and analysis window) or the defaults. `seed` replaces the
    training seed (default: the model's own, so the set is exactly the trainer's held-out split).
    """
    from training.config import config_from_dict

    meta = info.metadata if isinstance(info.metadata, Mapping) else {}
    ckpt = meta.get("checkpoint") if isinstance(meta.get("checkpoint"), Mapping) else {}
    train_config = ckpt.get("train_config") if isinstance(ckpt.get("train_config"), Mapping) else {}
    data = info.training_data if isinstance(info.training_data, Mapping) else {}
    source = data.get("source") if isinstance(data.get("source"), Mapping) else {}
    values: dict[str, Any] = {k: train_config[k] for k in DATA_KEYS if k in train_config}
    values.setdefault("sample_rate", int(source.get("sample_rate") or info.sample_rate))
    values.setdefault("clip_seconds", float(source.get("clip_seconds") or info.window_seconds))
    if "seed" not in values:
        values["seed"] = int(data.get("seed") if isinstance(data.get("seed"), int) else source.get("seed") or 0)
    if "effects" not in values:
        values["effects"] = [e.name for e in info.effects]
        values["max_length"] = max((len(c) for c in info.chains), default=0)
    if "source" not in values:
        kind = str(source.get("kind", "SynthSource"))
        values["source"] = {"SynthSource": "synth", "FolderSource": "folder", "MidiSource": "midi",
                            "PooledSource": "midi", "MixedSource": "mix"}.get(kind, "synth")
    if seed is not None:
        values["seed"] = int(seed)
    values["renderer"] = "pedalboard"  # the hidden generator, whatever the model trained on
    samples = round(values["sample_rate"] * values["clip_seconds"])
    values["n_fft"] = min(2048, max(16, samples))  # encoder knobs are irrelevant here; keep validation happy
    values["hop_length"] = max(1, values["n_fft"] // 4)
    values["f_max"] = min(20000.0, values["sample_rate"] / 2)
    values["f_min"] = min(20.0, values["f_max"] / 2)
    values["fft_sizes"] = [values["n_fft"]]
    return config_from_dict(values, where=f"{info.label} training data description")


def heldout_dataset(info: ModelInfo, n: int, seed: int | None = None) -> TargetDataset:
    """`n` held-out examples in the model's training data description (see `heldout_config`)."""
    from training.trainer import build_dataset, build_vocabulary

    config = heldout_config(info, seed)
    return build_dataset(config, build_vocabulary(config), split="heldout", length=int(n))


def _check_n(n: int | None, what: str = "--n") -> None:
    if n is not None and n <= 0:
        raise FxmatchInputError(f"{what} must be a positive number of examples, got {n}")


def load_set(spec: str, info: ModelInfo | None = None, n: int | None = None, progress: bool = True) -> EvalSet:
    """A data set folder (`write_dataset`) or `heldout[:N][@SEED]` (needs the model's `info`); at most `n` examples."""
    _check_n(n)
    path = Path(spec)
    heldout = None if path.is_dir() else parse_heldout(spec)
    if heldout is not None:
        count, seed = heldout
        _check_n(count, "heldout:N")
        if info is None:
            raise FxmatchInputError("heldout sets need a model to describe their data")
        count = n if n is not None else (count or DEFAULT_HELDOUT_N)
        dataset = heldout_dataset(info, count, seed)
        examples = []
        for i in tqdm(range(count), desc="held-out set", disable=not progress, file=sys.stderr, dynamic_ncols=True):
            ex = dataset.example(i)
            examples.append(EvalExample(i, ex["x"], ex["y"], list(zip(ex["chain"], ex["units"]))))
        examples = with_audibility(examples, dataset.sample_rate)
        desc = {"kind": "heldout", "spec": spec, "n": count, "data": dataset.describe(),
                "sample_rate": dataset.sample_rate, "clip_seconds": dataset.source.clip_seconds,
                "from_model": info.label}
        return EvalSet(examples, dataset.sample_rate, dataset.vocab, desc)
    if not path.exists():
        raise FxmatchInputError(f"{spec}: no such data set folder (or write heldout[:N][@SEED])")
    if not path.is_dir():
        raise FxmatchInputError(f"{spec}: is not a folder (a data set is a folder written by write_dataset)")
    try:
        disk = DiskDataset(path)
    except FxmatchInputError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise FxmatchInputError(f"{spec}: labels.json is malformed ({type(exc).__name__}: {exc})") from None
    if len(disk) == 0:
        raise FxmatchInputError(f"{spec}: the data set holds no examples")
    count = len(disk) if n is None else min(n, len(disk))
    examples = []
    for i in tqdm(range(count), desc="data set", disable=not progress, file=sys.stderr, dynamic_ncols=True):
        try:
            ex = disk.example(i)
        except FxmatchInputError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError, OSError) as exc:
            raise FxmatchInputError(f"{spec}: example {i} is unreadable ({type(exc).__name__}: {exc})") from None
        if ex["x"].ndim != 1 or ex["y"].ndim != 1 or ex["x"].size == 0 or ex["x"].shape != ex["y"].shape:
            raise FxmatchInputError(f"{spec}: example {i}: x and y must be mono and of equal, non-zero length")
        examples.append(EvalExample(i, ex["x"], ex["y"], list(zip(ex["chain"], ex["units"]))))
    examples = with_audibility(examples, disk.sample_rate)
    desc = {"kind": "folder", "spec": str(path), "n": count, "of": len(disk), "data": disk.labels.get("data"),
            "sample_rate": disk.sample_rate, "clip_seconds": examples[0].x.size / disk.sample_rate}
    return EvalSet(examples, disk.sample_rate, disk.vocab, desc)


# ----------------------------------------------------------------------------------------------------------------
# models


class CheckpointEstimator(EstimatorSession):
    """A trainer checkpoint run by torch with `EstimatorSession`'s windowing, aggregation and decoding."""

    def __init__(self, path: str | Path, batch_size: int = 8):
        from training.model import Encoder
        from training.trainer import load_checkpoint

        self.path = Path(path)
        self.batch_size = max(1, int(batch_size))
        ckpt = _read_checkpoint(self.path, load_checkpoint)
        try:
            self.model = Encoder.from_config(ckpt["model_config"])
            self.model.load_state_dict(ckpt["model"])
        except Exception as exc:  # noqa: BLE001 - any mismatch is a bad checkpoint
            raise FxmatchInputError(f"{self.path}: checkpoint does not build its model ({type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
        self.model.eval()
        train_config = dict(ckpt.get("train_config") or {})
        sr = int(self.model.cfg.sample_rate)
        window = round(float(train_config.get("clip_seconds", 2.0)) * sr)
        meta = {
            "fxmatch_format": {"format": MODEL_FORMAT, "version": MODEL_FORMAT_VERSION},
            "sample_rate": sr,
            "analysis_window": {"samples": window, "hop_samples": max(1, window // 2)},
            "vocabulary": self.model.vocab.to_dict(),
            "model": {"name": f"{train_config.get('name', self.path.stem)}-step{ckpt.get('step', 0)}", "version": ""},
            "training_data": ckpt.get("data"),
            "checkpoint": {"mode": ckpt.get("mode"), "step": ckpt.get("step"), "train_config": train_config},
        }
        self.info = ModelInfo.from_metadata({k: json.dumps(v) for k, v in meta.items()}, str(self.path))
        self.provider = "torch-cpu"
        self.session = None
        self.why_not_cuda = ""

    def run(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw outputs for `[n, samples]` mono audio: logits `[n, C]`, params `[n, C, P]` (torch, no gradient)."""
        a = np.ascontiguousarray(audio, dtype=np.float32)
        if a.ndim == 1:
            a = a[None]
        with torch.no_grad():
            logits, params = self.model(torch.from_numpy(a))
        return logits.numpy(), params.numpy()


def _read_checkpoint(path: Path, load: Any) -> dict[str, Any]:
    """`load(path)` with torch's warnings silenced and its multi-line `weights_only` text cut to one line."""
    import warnings

    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols before failing
            warnings.simplefilter("ignore")
            return load(path)
    except FxmatchInputError as exc:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
        if "Unsupported global" in text:
            reason = "it holds Python objects, not only tensors and plain values"
        elif "weights_only" in text or "Weights only" in text or "\n" in text.strip():
            reason = "not a PyTorch checkpoint of tensors and plain values"
        else:
            raise
        raise FxmatchInputError(f"{path}: not a readable checkpoint ({reason})") from None


def load_estimator(path: str | Path, threads: int | None = None) -> EstimatorSession:
    """An exported ONNX model (onnxruntime, CPU or CUDA) or a trainer checkpoint (.pt, torch on CPU)."""
    p = Path(path)
    if p.suffix.lower() in CHECKPOINT_SUFFIXES:
        return CheckpointEstimator(p)
    return EstimatorSession(p, providers="auto", threads=threads)


def model_description(est: EstimatorSession) -> dict[str, Any]:
    """Name, version, kind, provider and training mode of a model (JSON-ready)."""
    meta = est.info.metadata if isinstance(est.info.metadata, Mapping) else {}
    ckpt = meta.get("checkpoint") if isinstance(meta.get("checkpoint"), Mapping) else {}
    return {"path": str(est.path), "name": est.info.name, "version": est.info.version, "label": est.info.label,
            "kind": "checkpoint" if isinstance(est, CheckpointEstimator) else "onnx", "provider": est.provider,
            "mode": ckpt.get("mode"), "step": ckpt.get("step"), "sample_rate": est.info.sample_rate,
            "window_seconds": est.info.window_seconds, "n_chains": est.info.n_chains,
            "chain_temperature": est.info.chain_temperature, "calibrated": est.info.calibrated}


# ----------------------------------------------------------------------------------------------------------------
# metrics


def _spec(name: str, vocab: ChainVocabulary | None) -> EffectSpec:
    if vocab is not None and name in vocab.effect_names:
        return vocab.effect(name)
    return get_spec(name)


def normalised(spec: EffectSpec, params: Mapping[str, float]) -> np.ndarray:
    """Params in units -> `[n_params]` in [0, 1] (clipped) by the spec's ranges and scales."""
    return np.clip(np.asarray(spec.normalise(params), dtype=np.float64), 0.0, 1.0)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def audible_scores(truth: Sequence[Preset], estimates: Sequence[Preset], audible: Sequence[Sequence[str]],
                   effects: Sequence[str]) -> dict[str, Any]:
    """Audible chain accuracy and presence F1: inaudible true effects may be named or not (module docstring)."""
    correct = 0
    counts = {e: {"tp": 0, "fp": 0, "fn": 0} for e in effects}
    for t, p, heard in zip(truth, estimates, audible):
        true_set, est_set, heard_set = {e for e, _ in t}, {e for e, _ in p}, set(heard)
        correct += heard_set <= est_set <= true_set
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
    mean). MAE pools |estimated - true| normalised values over the params of effects in both presets.
    """
    if len(truth) != len(estimates):
        raise ValueError(f"{len(truth)} true presets but {len(estimates)} estimates")
    n = len(truth)
    correct = sum(tuple(e for e, _ in t) == tuple(e for e, _ in p) for t, p in zip(truth, estimates))
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
    import pedalboard

    if not preset:
        return np.array(x, dtype=np.float32, copy=True)
    board = pedalboard.Pedalboard([get_spec(name).pedalboard_plugin(p) for name, p in preset])
    y = board(np.ascontiguousarray(x[None], dtype=np.float32), float(sample_rate))[0]
    y = np.nan_to_num(np.asarray(y, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if y.size != x.size:  # keep the target's length
        y = np.pad(y, (0, max(0, x.size - y.size)))[: x.size]
    return y


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


def mean_preset(eval_set: EvalSet) -> Preset:
    """The set's most frequent non-empty chain (ties: vocabulary order) with every parameter mid-range."""
    counts = Counter(ex.chain for ex in eval_set.examples if ex.chain)
    if not counts:
        return []
    order = {c: i for i, c in enumerate(eval_set.vocab.chains)}
    chain = min(counts, key=lambda c: (-counts[c], order.get(c, len(order))))
    return [(name, {p.name: float(p.denormalise(0.5)) for p in _spec(name, eval_set.vocab).params})
            for name in chain]


# ----------------------------------------------------------------------------------------------------------------
# evaluation


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
        d = audio_distances(render_preset(preset, ex.x, eval_set.sample_rate), ex.y, eval_set.sample_rate)
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


# ----------------------------------------------------------------------------------------------------------------
# outputs


def _fmt(v: Any, digits: int = 3, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{100 * v:.1f} %" if pct else f"{v:.{digits}f}"


def _times(v: float | None) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.2f}×"


def render_markdown(report: Mapping[str, Any]) -> str:
    """The evaluation as Markdown: a summary table of every estimator, then per-effect tables of the models."""
    s = report["set"]
    lines = [(f"Evaluation on {s.get('spec')} ({s.get('kind')}, {s.get('n')} examples, {s.get('sample_rate')} Hz, "
             f"{_fmt(s.get('clip_seconds'), 2)} s clips, {s.get('n_chains_present')} distinct chains)."), "",
             ("| estimator | chain acc. | audible acc. | presence F1 (macro) | audible F1 | param MAE | MR-STFT "
              "| vs no effect | vs oracle | log-mel | log-mel vs no effect |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label in report["order"]:
        r = report["estimators"][label]
        rel = r.get("relative", {})
        lines.append(
            f"| {label} | {_fmt(r['chain_accuracy'], pct=True)} "
            f"| {_fmt(r.get('audible', {}).get('chain_accuracy'), pct=True)} | {_fmt(r['presence']['macro_f1'])} "
            f"| {_fmt(r.get('audible', {}).get('macro_f1'))} "
            f"| {_fmt(r['param_mae']['mean'])} | {_fmt(r['mrstft']['mean'])} "
            f"| {_fmt(rel.get('mrstft_vs_no_effect'), pct=True)} | {_times(rel.get('mrstft_vs_oracle'))} "
            f"| {_fmt(r['logmel']['mean'])} | {_fmt(rel.get('logmel_vs_no_effect'), pct=True)} |")
    lines += ["", ("Distances are means over examples of pedalboard(estimated preset)(x) vs y; \"vs no effect\" is "
              "the ratio to the no-effect reference's mean (lower is better), \"vs oracle\" the ratio to the true "
              "preset through the twins. Param MAE is normalised to [0, 1], on effects correctly present. "
              f"\"Audible\": a true effect whose removal changes y by less than {INAUDIBLE_SNR_DB:.0f} dB below y may be "
              "named or not.")]
    lines += render_informed(report)
    lines += render_calibration(report)
    for label in report["order"]:
        r = report["estimators"][label]
        if r["role"] != "model":
            continue
        lines += ["", f"Per effect, {label}:", "",
                  "| effect | support | precision | recall | F1 | param MAE (n) |", "|---|---:|---:|---:|---:|---:|"]
        for e, p in r["presence"]["per_effect"].items():
            m = r["param_mae"]["per_effect"].get(e)
            mae = f"{_fmt(m['mean'])} ({m['n_examples']})" if m else "—"
            lines.append(f"| {e} | {p['support']} | {_fmt(p['precision'])} | {_fmt(p['recall'])} | {_fmt(p['f1'])} "
                         f"| {mae} |")
    return "\n".join(lines) + "\n"


def render_informed(report: Mapping[str, Any]) -> list[str]:
    """Markdown lines: each model blind (y alone) next to its informed path (the dry signal known), with the
    seconds per example; nothing when the evaluation ran without `dry_aware`."""
    rows = []
    for label in report["order"]:
        r = report["estimators"][label]
        if r["role"] not in ("model", "informed"):
            continue
        rel = r.get("relative", {})
        path = "informed (dry known)" if r["role"] == "informed" else "blind (target only)"
        rows.append(f"| {label} | {path} | {_fmt(r['chain_accuracy'], pct=True)} "
                    f"| {_fmt(r.get('audible', {}).get('chain_accuracy'), pct=True)} | {_fmt(r['param_mae']['mean'])} "
                    f"| {_fmt(rel.get('mrstft_vs_no_effect'), pct=True)} | {_fmt(r.get('seconds_per_example'), 2)} |")
    if not any(report["estimators"][label]["role"] == "informed" for label in report["order"]):
        return []
    return ["", ("Blind (the model hears the target alone) vs informed (the dry signal known: the model's likeliest "
                 "chains searched through the twins, `fxmatch estimate --dry`); seconds per example include the "
                 "encoder, the search and the pedalboard render of the result."), "",
            "| estimator | path | chain acc. | audible acc. | param MAE | MR-STFT vs no effect | s / example |",
            "|---|---|---:|---:|---:|---:|---:|", *rows]


def _save_figure(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    finally:
        plt.close(fig)


def _short_chain(key: str) -> str:
    return key if key == "dry" else ">".join(part[:3] for part in key.split(">"))


def plot_confusion(conf: Mapping[str, Any], title: str, path: Path) -> None:
    """Row-normalised chain confusion matrix (rows true, columns estimated) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(conf["matrix"], dtype=np.float64)
    keep = np.flatnonzero((m.sum(axis=0) + m.sum(axis=1)) > 0)  # chains that occur (true or estimated)
    m = m[np.ix_(keep, keep)]
    labels = [_short_chain(conf["labels"][i]) for i in keep]
    rows = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    size = min(16.0, 3.0 + 0.22 * len(labels))
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    font = max(4, min(9, int(200 / max(1, len(labels)))))
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=font)
    ax.set_yticks(range(len(labels)), labels, fontsize=font)
    ax.set_xlabel("estimated chain")
    ax.set_ylabel("true chain")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true chain's examples")
    _save_figure(fig, path)


def plot_param_error(report: Mapping[str, Any], path: Path) -> None:
    """Per-effect normalised parameter MAE of the models and the mean preset, grouped bars, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(label, report["estimators"][label]) for label in report["order"]
            if report["estimators"][label]["role"] == "model" or label == MEAN_PRESET]
    effects = list(report["set"]["effects"])
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(effects) * max(1, len(rows)) ** 0.5 + 2), 4))
    width = 0.8 / max(1, len(rows))
    for i, (label, r) in enumerate(rows):
        values = [(r["param_mae"]["per_effect"].get(e) or {}).get("mean") for e in effects]
        xs = np.arange(len(effects)) + (i - (len(rows) - 1) / 2) * width
        ax.bar(xs, [np.nan if v is None else v for v in values], width, label=label)
    ax.set_xticks(range(len(effects)), effects, rotation=20)
    ax.set_ylabel("parameter MAE (normalised)")
    ax.set_title("Parameter error on correctly present effects")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    _save_figure(fig, path)


# ----------------------------------------------------------------------------------------------------------------
# calibration: how far the top chain probability is from how often that chain is right

#: equal-width confidence bins of the reliability diagram and the expected calibration error
CALIBRATION_BINS = 15


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


def render_calibration(report: Mapping[str, Any]) -> list[str]:
    """Markdown lines: each model's ECE, mean top probability vs accuracy, and its chain temperature."""
    rows = []
    for label in report["order"]:
        r = report["estimators"][label]
        cal = r.get("calibration")
        if r["role"] != "model" or not cal:
            continue
        model = r.get("model") or {}
        temp = (f"T = {model['chain_temperature']:.3g}" if model.get("calibrated")
                else "not calibrated (no chain temperature)")
        rows.append(f"| {label} | {_fmt(cal['ece'])} | {_fmt(cal['mean_confidence'])} | {_fmt(cal['accuracy'])} "
                    f"| {temp} |")
    if not rows:
        return []
    return ["", (f"Calibration: does a top chain probability p come true about p of the time? ECE is the mean gap "
                 f"between confidence and exact-chain accuracy over {CALIBRATION_BINS} confidence bins (0 is "
                 "perfect); the reliability diagrams are reliability*.png."), "",
            "| model | ECE | mean top probability | chain accuracy | temperature |", "|---|---:|---:|---:|---|", *rows]


def plot_reliability(cal: Mapping[str, Any], title: str, path: Path) -> None:
    """Reliability diagram as a PNG: accuracy per confidence bin against the diagonal, with the bin counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = cal["bins"]
    width = 1.0 / max(1, len(bins))
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(5.2, 6.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    filled = [b for b in bins if b["count"]]
    ax.bar([b["lower"] for b in filled], [b["accuracy"] for b in filled], width=width, align="edge",
           color="tab:blue", edgecolor="white", label="accuracy in the bin")
    ax.bar([b["lower"] for b in filled], [b["confidence"] - b["accuracy"] for b in filled], width=width,
           bottom=[b["accuracy"] for b in filled], align="edge", color="tab:red", alpha=0.25, edgecolor="tab:red",
           label="gap to mean confidence")
    ax.plot([0, 1], [0, 1], color="0.3", linestyle="--", linewidth=1, label="perfectly calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("exact chain accuracy")
    ece = cal.get("ece")
    ax.set_title(f"{title}\nECE {ece:.3f}" if ece is not None else title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    ax_n.bar([b["lower"] for b in bins], [b["count"] for b in bins], width=width, align="edge", color="0.5")
    ax_n.set_xlabel("top chain probability (confidence)")
    ax_n.set_ylabel("examples")
    _save_figure(fig, path)


def write_reliability(report: Mapping[str, Any], out: Path, models: Sequence[str]) -> dict[str, str]:
    """reliability.png for the first model, reliability-<label>.png for the others; {key: path}."""
    files = {}
    for i, label in enumerate(models):
        cal = report["estimators"][label].get("calibration")
        if not cal:
            continue
        name = "reliability.png" if i == 0 else f"reliability-{_slug(label)}.png"
        plot_reliability(cal, f"Reliability: {label}", out / name)
        files[f"reliability:{label}"] = str(out / name)
    return files


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "model"


def write_outputs(report: dict[str, Any], out_dir: str | Path) -> dict[str, str]:
    """eval.json, eval.md, confusion.png (first model; confusion-<label>.png for the others), param_error.png."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FxmatchInputError(f"{out}: cannot create the output folder ({exc.strerror})") from None
    files = {"json": str(out / "eval.json"), "markdown": str(out / "eval.md")}
    models = [label for label in report["order"] if report["estimators"][label]["role"] == "model"]
    for i, label in enumerate(models):
        name = "confusion.png" if i == 0 else f"confusion-{_slug(label)}.png"
        plot_confusion(report["estimators"][label]["confusion"], f"Chain confusion: {label}", out / name)
        files[f"confusion:{label}"] = str(out / name)
    files.update(write_reliability(report, out, models))
    plot_param_error(report, out / "param_error.png")
    files["param_error"] = str(out / "param_error.png")
    report["files"] = files
    write_text_atomic(out / "eval.md", render_markdown(report))
    write_text_atomic(out / "eval.json", json.dumps(report, indent=1, allow_nan=False, default=_json_default))
    return files


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    return str(obj)
