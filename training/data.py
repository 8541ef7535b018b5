"""Training targets: dry clip x, a random chain with random parameters, and the rendered target y.

Example `index` of a data set is a pure function of (seed, index): the dry clip is the source's clip `index`, the
chain is drawn from the vocabulary's candidates (uniformly, or with configured weights) and its parameters from
each effect's ranges (`EffectSpec.sample`). The target is rendered by pedalboard (the "hidden" generator, default),
by the differentiable twins, or by SoX (`training.foreign`: another implementation of the same labels). Labels
(chain index, normalised parameters in the vocabulary's shared layout, presence masks) serve evaluation and the
supervised baseline only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch

from fxmatch.errors import FxmatchInputError
from fxmatch.vocabulary import ChainVocabulary
from training.sources import DrySource

log = logging.getLogger(__name__)

RENDERERS: tuple[str, ...] = ("pedalboard", "twins", "sox")
DATASET_FORMAT = "fxmatch-dataset"
EMPTY_CHAIN_KEY = "dry"

Params = list[dict[str, float]]


def chain_key(names: Sequence[str]) -> str:
    """Config/JSON name of a chain: effect names joined by '>' ('dry' for the empty chain)."""
    return ">".join(names) if names else EMPTY_CHAIN_KEY


def chain_probabilities(vocab: ChainVocabulary, weights: Mapping[str, float] | None = None) -> np.ndarray:
    """Probabilities `[n_chains]` of drawing each candidate chain: uniform, times `weights[chain_key]` where given."""
    p = np.ones(vocab.n_chains, dtype=np.float64)
    if weights:
        keys = {chain_key(c): i for i, c in enumerate(vocab.chains)}
        for key, w in weights.items():
            if key not in keys:
                raise FxmatchInputError(
                    f"chain_weights: {key!r} is not a candidate chain (write chains as 'Compressor>Reverb', "
                    f"'{EMPTY_CHAIN_KEY}' for none; first candidates: {', '.join(list(keys)[:6])}, ...)")
            if not (w >= 0 and np.isfinite(w)):
                raise FxmatchInputError(f"chain_weights: weight of {key!r} must be a finite number >= 0, got {w}")
            p[keys[key]] = float(w)
    if p.sum() <= 0:
        raise FxmatchInputError("chain_weights: at least one chain needs a positive weight")
    return p / p.sum()


def length_uniform_weights(vocab: ChainVocabulary, lengths: Sequence[int]) -> dict[str, float]:
    """Chain weights (by `chain_key`) making each of `lengths` equally likely, chains of one length alike; other
    lengths get 0."""
    count = {n: sum(len(c) == n for c in vocab.chains) for n in lengths}
    return {chain_key(c): (1.0 / count[len(c)] if count.get(len(c)) else 0.0) for c in vocab.chains}


def label_vectors(vocab: ChainVocabulary, chain_index: int, params: Params) -> dict[str, np.ndarray]:
    """Normalised params `[n_params]` (0 outside the chain), param mask `[n_params]`, presence `[n_effects]`."""
    values = np.zeros(vocab.n_params, dtype=np.float32)
    mask = np.zeros(vocab.n_params, dtype=np.float32)
    present = np.zeros(len(vocab.effects), dtype=np.float32)
    for name, p in zip(vocab.chains[chain_index], params):
        sl = vocab.param_slice(name)
        values[sl] = np.asarray(vocab.effect(name).normalise(p), dtype=np.float32)
        mask[sl] = 1.0
        present[vocab.effect_names.index(name)] = 1.0
    return {"params": values, "param_mask": mask, "present": present}


def render_pedalboard(
    vocab: ChainVocabulary, names: Sequence[str], params: Params, x: np.ndarray, sample_rate: int
) -> np.ndarray:
    """Render mono `x` `[samples]` through pedalboard's plugins for chain `names` (float32 `[samples]`)."""
    import pedalboard

    if not names:
        return np.array(x, dtype=np.float32, copy=True)
    board = pedalboard.Pedalboard([vocab.effect(n).pedalboard_plugin(p) for n, p in zip(names, params)])
    return board(np.ascontiguousarray(x[None, :], dtype=np.float32), float(sample_rate))[0].astype(np.float32)


def render_twins(names: Sequence[str], params: Params, x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Render mono `x` `[samples]` through the differentiable twins (float32 `[samples]`, no gradient)."""
    from fxmatch.effects.chain import Chain

    chain = Chain(names)
    with torch.no_grad():
        batched = [{k: torch.tensor([v], dtype=torch.float32) for k, v in p.items()} for p in params]
        y = chain.process(torch.from_numpy(np.asarray(x, dtype=np.float32))[None, None, :], batched, sample_rate)
    return y[0, 0].numpy().astype(np.float32)


class TargetDataset(torch.utils.data.Dataset):
    """`length` examples reproducible from `seed`: dry clip, random chain + params, rendered target.

    Items are dicts of tensors: `x`, `y` float32 `[samples]`; `chain` int64 (candidate index); `params` float32
    `[n_params]` in [0, 1] (0 outside the chain), `param_mask` `[n_params]`, `present` `[n_effects]`; `index`.
    """

    def __init__(
        self,
        source: DrySource,
        vocab: ChainVocabulary,
        seed: int = 0,
        length: int = 1_000_000,
        renderer: str = "pedalboard",
        chain_weights: Mapping[str, float] | None = None,
        level_jitter_db: float = 0.0,
        variant_share: float = 0.0,
    ):
        if renderer not in RENDERERS:
            raise FxmatchInputError(f"unknown renderer {renderer!r}; known: {', '.join(RENDERERS)}")
        if renderer == "sox":
            from training.foreign import require_sox

            require_sox()
        self.source, self.vocab, self.seed, self.length, self.renderer = source, vocab, int(seed), int(length), renderer
        self.chain_weights = dict(chain_weights or {})
        self.level_jitter_db = float(level_jitter_db)
        if variant_share and renderer != "pedalboard":
            raise FxmatchInputError("variant_share needs the pedalboard renderer")
        self.variant_share = float(variant_share)
        self.probabilities = chain_probabilities(vocab, chain_weights)

    @property
    def sample_rate(self) -> int:
        return self.source.sample_rate

    def __len__(self) -> int:
        return self.length

    def draw(self, index: int) -> tuple[int, Params]:
        """Chain index and params (in units, one dict per effect of the chain) of example `index`."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0xDA7A, int(index)]))
        k = int(rng.choice(self.vocab.n_chains, p=self.probabilities))
        return k, [self.vocab.effect(name).sample(rng) for name in self.vocab.chains[k]]

    def level_gain(self, index: int) -> np.float32:
        """Linear gain of example `index`'s dry clip: uniform in ±`level_jitter_db` dB (1 when no jitter).

        A compressor's or a distortion's sound depends on the input level, so the data varies it around the
        sources' reference loudness; the peak stays below 0 dBFS.
        """
        if self.level_jitter_db <= 0:
            return np.float32(1.0)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x1E7E1, int(index)]))
        return np.float32(10.0 ** (rng.uniform(-self.level_jitter_db, self.level_jitter_db) / 20.0))

    def example(self, index: int) -> dict[str, Any]:
        """Example `index` as numpy arrays plus its chain names and params in units."""
        if not 0 <= index < self.length:
            raise IndexError(f"example {index} outside [0, {self.length})")
        x = self.source.clip(index) * self.level_gain(index)
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        if peak > 0.99:
            x = x * np.float32(0.99 / peak)
        k, params = self.draw(index)
        names = self.vocab.chains[k]
        if self.renderer == "pedalboard" and self.variant_share > 0:
            from training.variants import render_variants

            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x7A81, int(index)]))
            y, _ = render_variants(names, params, x, self.sample_rate, rng, self.variant_share)
        elif self.renderer == "pedalboard":
            y = render_pedalboard(self.vocab, names, params, x, self.sample_rate)
        elif self.renderer == "sox":
            from training.foreign import render_sox

            y = render_sox(self.vocab, names, params, x, self.sample_rate)
        else:
            y = render_twins(names, params, x, self.sample_rate)
        if not np.all(np.isfinite(y)):
            raise RuntimeError(f"example {index}: chain {chain_key(names)} with {params} rendered non-finite audio")
        return {"index": int(index), "x": x, "y": y, "chain_index": k, "chain": list(names), "units": params,
                **label_vectors(self.vocab, k, params)}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return to_tensors(self.example(index))

    def describe(self) -> dict[str, Any]:
        """JSON-ready description of the data (goes into checkpoints and model cards)."""
        return {"source": self.source.describe(), "seed": self.seed, "renderer": self.renderer,
                "chain_weights": self.chain_weights, "length": self.length, "level_jitter_db": self.level_jitter_db,
                **({"variant_share": self.variant_share} if self.variant_share else {})}


def to_tensors(example: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensor part of an example (what a DataLoader collates)."""
    return {
        "index": torch.tensor(example["index"], dtype=torch.int64),
        "x": torch.from_numpy(np.asarray(example["x"], dtype=np.float32)),
        "y": torch.from_numpy(np.asarray(example["y"], dtype=np.float32)),
        "chain": torch.tensor(example["chain_index"], dtype=torch.int64),
        "params": torch.from_numpy(example["params"]),
        "param_mask": torch.from_numpy(example["param_mask"]),
        "present": torch.from_numpy(example["present"]),
    }


def write_dataset(dataset: TargetDataset, folder: str | Path, n: int | None = None) -> Path:
    """Write the first `n` examples as `x/NNNNNN.wav`, `y/NNNNNN.wav` (float32 WAV) and `labels.json`."""
    folder = Path(folder)
    (folder / "x").mkdir(parents=True, exist_ok=True)
    (folder / "y").mkdir(parents=True, exist_ok=True)
    n = len(dataset) if n is None else min(int(n), len(dataset))
    examples = []
    for i in range(n):
        ex = dataset.example(i)
        name = f"{i:06d}.wav"
        soundfile.write(str(folder / "x" / name), ex["x"], dataset.sample_rate, subtype="FLOAT")
        soundfile.write(str(folder / "y" / name), ex["y"], dataset.sample_rate, subtype="FLOAT")
        examples.append({
            "x": f"x/{name}", "y": f"y/{name}", "index": ex["index"], "chain_index": ex["chain_index"],
            "chain": [{"effect": e, "params": p} for e, p in zip(ex["chain"], ex["units"])],
            "params": [float(v) for v in ex["params"]],
        })
    labels = {"format": DATASET_FORMAT, "version": 1, "sample_rate": dataset.sample_rate,
              "vocabulary": dataset.vocab.to_dict(), "data": dataset.describe(), "examples": examples}
    tmp = folder / "labels.json.tmp"
    tmp.write_text(json.dumps(labels, indent=1))
    tmp.replace(folder / "labels.json")
    return folder


class DiskDataset(torch.utils.data.Dataset):
    """A data set written by `write_dataset`; items as `TargetDataset`'s."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        path = self.folder / "labels.json"
        if not path.is_file():
            raise FxmatchInputError(f"{str(self.folder)!r} is not a data set (no labels.json)")
        try:
            labels = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise FxmatchInputError(f"{path}: not valid JSON ({exc})") from None
        if labels.get("format") != DATASET_FORMAT or labels.get("version") != 1:
            raise FxmatchInputError(f"{path}: not an {DATASET_FORMAT} version 1 file")
        self.labels = labels
        self.sample_rate = int(labels["sample_rate"])
        self.vocab = ChainVocabulary.from_dict(labels["vocabulary"])
        self.examples = labels["examples"]

    def __len__(self) -> int:
        return len(self.examples)

    def example(self, index: int) -> dict[str, Any]:
        """Example `index` as numpy arrays plus its chain names and params in units."""
        entry = self.examples[index]
        x, rate_x = soundfile.read(str(self.folder / entry["x"]), dtype="float32")
        y, rate_y = soundfile.read(str(self.folder / entry["y"]), dtype="float32")
        if rate_x != self.sample_rate or rate_y != self.sample_rate:
            raise FxmatchInputError(f"{self.folder}: example {index} is not at {self.sample_rate} Hz")
        names = [e["effect"] for e in entry["chain"]]
        units = [dict(e["params"]) for e in entry["chain"]]
        k = self.vocab.chain_index(names)
        return {"index": int(entry["index"]), "x": x, "y": y, "chain_index": k, "chain": names, "units": units,
                **label_vectors(self.vocab, k, units)}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return to_tensors(self.example(index))
