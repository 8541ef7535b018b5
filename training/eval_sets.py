"""The sets `fxmatch evaluate` scores on (see training.evaluate): a data set folder written by
`training.data.write_dataset`, or `heldout[:N][@SEED]` generated from the model's training data description."""

from __future__ import annotations

import dataclasses
import re
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from fxmatch.audibility import audible
from fxmatch.errors import FxmatchInputError
from fxmatch.inference import ModelInfo
from fxmatch.vocabulary import ChainVocabulary
from training.data import DiskDataset, TargetDataset
from training.eval_metrics import Preset, _spec, removal_db

DEFAULT_HELDOUT_N = 200

HELDOUT_PATTERN = re.compile(r"^heldout(?::(\d+))?(?:@(\d+))?$")

#: TrainConfig keys that describe the data (the rest of a training config does not change the held-out set)
DATA_KEYS = ("seed", "effects", "max_length", "allow_permutations", "only_after", "source", "source_path",
             "instruments", "sample_rate", "clip_seconds", "rms_dbfs", "heldout_fraction", "chain_weights", "source_mix",
             "soundfont", "midi_pool", "pool_cache_dir", "level_jitter_db", "soundfont2", "augment", "chain_prior",
             "variant_share")


@dataclass
class EvalExample:
    """One example: dry `x` and target `y` (float32 `[samples]`) and the true preset (params in units)."""

    index: int
    x: np.ndarray
    y: np.ndarray
    preset: Preset
    #: the true effects whose removal is audible (None: not computed, every true effect counts)
    audible: tuple[str, ...] | None = None
    #: per true effect, how much its removal changes y (dB below y; `removal_db`); None: not computed
    removal: dict[str, float] | None = None

    @property
    def chain(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.preset)


def with_audibility(examples: list[EvalExample], sample_rate: int, renderer: str = "pedalboard") -> list[EvalExample]:
    """`examples` with their audible true effects computed (renders of each chain minus one effect by the set's
    `renderer`: pedalboard, or SoX for a set whose targets SoX made, so the mapping gap never counts as audible)."""
    render = None
    if renderer == "sox":
        from training.foreign import render_sox_preset as render
    out = []
    for ex in examples:
        removal = removal_db(ex.preset, ex.x, ex.y, sample_rate, render=render)
        out.append(dataclasses.replace(ex, audible=audible(removal), removal=removal))
    return out


def set_renderer(data: Any) -> str:
    """The renderer of a set's data description (`TargetDataset.describe()`): 'sox' or 'pedalboard' (otherwise)."""
    return "sox" if isinstance(data, Mapping) and data.get("renderer") == "sox" else "pedalboard"


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
    # the hidden generator whatever the model trained on (twins included), but SoX targets stay SoX's
    values["renderer"] = "sox" if train_config.get("renderer") == "sox" else "pedalboard"
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
        examples = with_audibility(examples, dataset.sample_rate, dataset.renderer)
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
    examples = with_audibility(examples, disk.sample_rate, set_renderer(disk.labels.get("data")))
    desc = {"kind": "folder", "spec": str(path), "n": count, "of": len(disk), "data": disk.labels.get("data"),
            "sample_rate": disk.sample_rate, "clip_seconds": examples[0].x.size / disk.sample_rate}
    return EvalSet(examples, disk.sample_rate, disk.vocab, desc)


def mean_preset(eval_set: EvalSet) -> Preset:
    """The set's most frequent non-empty chain (ties: vocabulary order) with every parameter mid-range."""
    counts = Counter(ex.chain for ex in eval_set.examples if ex.chain)
    if not counts:
        return []
    order = {c: i for i, c in enumerate(eval_set.vocab.chains)}
    chain = min(counts, key=lambda c: (-counts[c], order.get(c, len(order))))
    return [(name, {p.name: float(p.denormalise(0.5)) for p in _spec(name, eval_set.vocab).params})
            for name in chain]
