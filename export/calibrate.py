"""Temperature scaling of the chain probabilities (`fxmatch export --calibrate SET`).

An encoder trained to pick chains is usually over-confident: the shipped v2 model says p = 0.48 on average while
its top chain is right 2.7 % of the time. One temperature T, fitted on held-out examples, fixes the scale: the
runtime's probabilities become softmax(chain_logits / T) (`fxmatch.inference`), T minimising the mean negative
log-likelihood (NLL) of the true chain. The ranking of the chains, hence the estimate, does not change, only how
sure the model says it is, so that "p = 0.8" comes true about 8 times in 10.

The examples are windowed, silent windows skipped and window probabilities averaged exactly as `fxmatch estimate`
does, so T is fitted on the probabilities users see. SET is `heldout[:N][@SEED]` (N examples, default 200, of the
checkpoint's own training data description, dry clips from the held-out split; without @SEED the training seed + 1,
so that `fxmatch evaluate MODEL heldout`, which uses the training seed, measures on other examples) or a data set
folder (`python -m training.make_set`).
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fxmatch.errors import FxmatchInputError
from fxmatch.inference import (
    META_CALIBRATION,
    META_TEMPERATURE,
    SILENCE_DBFS,
    ModelInfo,
    iter_windows,
    rms_dbfs,
    softmax,
)
from training.evaluate import DEFAULT_HELDOUT_N, calibration_summary, heldout_config, parse_heldout

log = logging.getLogger("fxmatch.export")

#: without @SEED a held-out calibration set uses the training seed + this (evaluate's default uses the seed itself)
CALIBRATION_SEED_OFFSET = 1
#: the temperature is searched in this range (a fit at either end is reported as a warning)
TEMPERATURE_RANGE = (0.02, 100.0)
BATCH = 16


def check_spec(spec: str) -> None:
    """FxmatchInputError unless `spec` is an existing folder or `heldout[:N][@SEED]` with N > 0."""
    if Path(spec).is_dir():
        return
    parsed = parse_heldout(spec)
    if parsed is None:
        raise FxmatchInputError(f"export: --calibrate {spec!r} is neither a data set folder nor heldout[:N][@SEED]")
    if parsed[0] is not None and parsed[0] <= 0:
        raise FxmatchInputError(f"export: --calibrate heldout:N needs N > 0, got {parsed[0]}")


def calibration_examples(info: ModelInfo, spec: str, progress: bool = False) -> tuple[list[np.ndarray], list[int],
                                                                                         int, dict[str, Any]]:
    """(targets y as float32 `[samples]`, true chain indices in the model's vocabulary, their sample rate, a
    description of the set) for `spec`; examples whose chain is outside the vocabulary are left out (counted)."""
    from tqdm import tqdm

    check_spec(spec)
    heldout = None if Path(spec).is_dir() else parse_heldout(spec)
    index = {c: k for k, c in enumerate(info.chains)}
    ys, labels, skipped = [], [], 0
    if heldout is not None:
        from training.evaluate import heldout_dataset

        n = heldout[0] or DEFAULT_HELDOUT_N
        seed = heldout[1] if heldout[1] is not None else heldout_config(info).seed + CALIBRATION_SEED_OFFSET
        dataset = heldout_dataset(info, n, seed)
        rate = dataset.sample_rate
        desc: dict[str, Any] = {"kind": "heldout", "spec": spec, "n": n, "seed": seed, "data": dataset.describe()}
        examples = (dataset.example(i) for i in range(n))
    else:
        from training.evaluate import load_set

        eval_set = load_set(spec, info, progress=False)
        rate, n = eval_set.sample_rate, len(eval_set.examples)
        desc = {"kind": "folder", "spec": str(spec), "n": n}
        examples = ({"y": ex.y, "chain": ex.chain} for ex in eval_set.examples)
    for ex in tqdm(examples, total=n, desc="calibration set", disable=not progress, file=sys.stderr,
                   dynamic_ncols=True):
        k = index.get(tuple(ex["chain"]))
        if k is None:
            skipped += 1
            continue
        ys.append(np.asarray(ex["y"], dtype=np.float32).reshape(-1))
        labels.append(k)
    desc["skipped_outside_vocabulary"] = skipped
    if not labels:
        raise FxmatchInputError(f"export: --calibrate {spec}: no example's chain is in the model's vocabulary")
    return ys, labels, int(rate), desc


def window_logits(encoder: torch.nn.Module, info: ModelInfo, ys: Sequence[np.ndarray], rate: int,
                  progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Chain logits of every non-silent analysis window of every target, windowed like `fxmatch estimate`:
    (logits `[windows, n_chains]` float64, example index of each window `[windows]`)."""
    import soxr
    from tqdm import tqdm

    windows, owner = [], []
    for i, y in enumerate(ys):
        mono = y if rate == info.sample_rate else np.asarray(
            soxr.resample(y, rate, info.sample_rate, quality="HQ"), dtype=np.float32)
        kept = [w for w in iter_windows([mono], info.window_samples, info.hop_samples) if rms_dbfs(w) >= SILENCE_DBFS]
        windows += kept
        owner += [i] * len(kept)
    if not windows:
        raise FxmatchInputError("export: every window of the calibration set is silent")
    out = []
    with torch.no_grad():
        for s in tqdm(range(0, len(windows), BATCH), desc="calibration logits", disable=not progress,
                      file=sys.stderr, dynamic_ncols=True):
            logits, _ = encoder(torch.from_numpy(np.stack(windows[s : s + BATCH])))
            out.append(logits.double().numpy())
    return np.concatenate(out), np.asarray(owner, dtype=np.int64)


def aggregate_probabilities(logits: np.ndarray, owner: np.ndarray, n: int, temperature: float) -> np.ndarray:
    """Per example, the mean over its windows of softmax(logits / temperature): `[n, n_chains]` (as inference)."""
    p = softmax(logits / temperature, axis=1)
    total = np.zeros((n, logits.shape[1]))
    np.add.at(total, owner, p)
    counts = np.bincount(owner, minlength=n).astype(np.float64)
    return total / np.maximum(counts, 1.0)[:, None]


def nll(logits: np.ndarray, owner: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood (nats) of the true chains under the aggregated probabilities at `temperature`."""
    probs = aggregate_probabilities(logits, owner, labels.size, temperature)
    return float(-np.mean(np.log(np.maximum(probs[np.arange(labels.size), labels], 1e-300))))


def fit_temperature(logits: np.ndarray, owner: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising `nll` in TEMPERATURE_RANGE: a log-spaced grid, then golden-section refinement."""
    lo, hi = math.log(TEMPERATURE_RANGE[0]), math.log(TEMPERATURE_RANGE[1])
    grid = np.linspace(lo, hi, 121)
    values = [nll(logits, owner, labels, math.exp(g)) for g in grid]
    best = int(np.argmin(values))
    a, b = grid[max(0, best - 1)], grid[min(len(grid) - 1, best + 1)]
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(logits, owner, labels, math.exp(c)), nll(logits, owner, labels, math.exp(d))
    for _ in range(40):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(logits, owner, labels, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(logits, owner, labels, math.exp(d))
    t = math.exp((a + b) / 2)
    return t if nll(logits, owner, labels, t) <= values[best] else math.exp(grid[best])


def calibrate(encoder: torch.nn.Module, metadata: Mapping[str, Any], spec: str,
              progress: bool = False) -> dict[str, Any]:
    """Fit the chain temperature of `encoder` on `spec`; the metadata entries to add: {`chain_temperature`: T,
    `calibration`: {method, set, n_examples, n_windows, temperature, nll/ece/mean_confidence before and after,
    accuracy, n_bins}}."""
    info = ModelInfo.from_metadata({k: json.dumps(v) for k, v in metadata.items()}, "export")
    ys, labels_list, rate, desc = calibration_examples(info, spec, progress)
    logits, owner = window_logits(encoder.eval(), info, ys, rate, progress)
    labels = np.asarray(labels_list, dtype=np.int64)
    t = fit_temperature(logits, owner, labels)
    if not TEMPERATURE_RANGE[0] * 1.01 < t < TEMPERATURE_RANGE[1] / 1.01:
        log.warning("calibration: the temperature %.3g sits at the end of the searched range %s", t,
                    TEMPERATURE_RANGE)
    figures: dict[str, Any] = {}
    for when, temp in (("before", 1.0), ("after", t)):
        probs = aggregate_probabilities(logits, owner, labels.size, temp)
        top = probs.argmax(axis=1)
        summary = calibration_summary(probs.max(axis=1).tolist(), (top == labels).tolist())
        figures[f"nll_{when}"] = nll(logits, owner, labels, temp)
        figures[f"ece_{when}"] = summary["ece"]
        figures[f"mean_confidence_{when}"] = summary["mean_confidence"]
        figures["accuracy"] = summary["accuracy"]
        figures["n_bins"] = summary["n_bins"]
    calibration = {
        "method": "temperature scaling: probabilities = softmax(chain_logits / chain_temperature), the temperature "
                  "minimising the mean negative log-likelihood of the true chain (probabilities averaged over "
                  "windows as fxmatch estimate does); ECE over equal-width confidence bins, exact chain",
        "set": desc, "n_examples": int(labels.size), "n_windows": int(owner.size), "temperature": t,
        **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in figures.items()},
    }
    return {META_TEMPERATURE: round(t, 6), META_CALIBRATION: calibration}
