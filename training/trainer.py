"""The trainer: seeded, resumable, CPU or CUDA, one process or many (torchrun + DDP, gloo on CPU, nccl on CUDA).

Reproducibility: example `i` of the data set is a pure function of (seed, i); step s of process r reads examples
`(s * world_size + r) * batch_size + j`, reseeds torch (dropout) and the exploration generator from (seed, s, r),
so a resumed run repeats exactly the steps an uninterrupted one would have taken.

Output folder: `checkpoint.pt` (written atomically: a temporary file then `os.replace`), `log.csv` (one row per
`log_every` steps), `wins.json` (how often each chain won), `summary.json` (at the end). A checkpoint holds only
tensors, dicts and plain values, so `torch.load(path, weights_only=True)` reads it; rebuild the model with
`Encoder.from_config(ckpt["model_config"])` and `load_state_dict(ckpt["model"])`.
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from fxmatch.audio_io import write_text_atomic
from fxmatch.effects import get_spec
from fxmatch.errors import FxmatchInputError
from fxmatch.render import ChainRenderer
from fxmatch.vocabulary import ChainVocabulary
from training.baselines import full_chain_vocabulary, supervised_step
from training.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from training.config import ENCODER_KEYS, TrainConfig
from training.data import TargetDataset, chain_key, length_uniform_weights
from training.model import SIDE_FEATURES, Encoder, EncoderConfig, chain_membership, count_parameters, trunk_input_widths
from training.source_factory import make_source
from training.wta import StepResult, make_audio_loss, temperature_at, wta_step

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
#: what `--resume` reads from a checkpoint
RESUME_KEYS = ("model", "optimizer", "train_config", "step", "elapsed_s", "win_counts")
#: knobs that may change between a run and its resumption
RESUMABLE_CHANGES = frozenset({"steps", "log_every", "checkpoint_every", "progress", "num_workers", "device",
                               "torch_threads", "pool_cache_dir", "channels_last"})
UNBOUNDED_EXAMPLES = 1 << 40
LOG_COLUMNS = ("step", "loss", "fit", "ce", "temperature", "lr", "examples_per_s", "elapsed_s",
               "candidates_per_example", "chains_won")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> DistInfo:
    """Join the process group when torchrun set WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", init_method="env://")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(name: str) -> torch.device:
    """'auto' -> cuda:LOCAL_RANK when CUDA is available, else cpu; otherwise the named device."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FxmatchInputError(f"config: device is {name!r} but CUDA is not available here")
    if name == "cuda":
        return torch.device(f"cuda:{local_rank}")
    return torch.device(name)


def build_vocabulary(config: TrainConfig) -> ChainVocabulary:
    """The candidate chains the data is drawn from (the effects in the order listed)."""
    return ChainVocabulary(effects=tuple(get_spec(n) for n in config.effects), max_length=config.max_length,
                           allow_permutations=config.allow_permutations, only_after=config.only_after or {})


def model_vocabulary(config: TrainConfig, vocab: ChainVocabulary) -> ChainVocabulary:
    """The chains the model chooses from: the vocabulary's, or only the full chain (baseline ii)."""
    return full_chain_vocabulary(vocab) if config.mode == "full_chain" else vocab


def encoder_config(config: TrainConfig) -> EncoderConfig:
    """The encoder's sizes: TrainConfig's value of every EncoderConfig field (lists copied)."""
    return EncoderConfig(**{k: copy.deepcopy(getattr(config, k)) for k in ENCODER_KEYS})


def build_dataset(config: TrainConfig, vocab: ChainVocabulary, split: str = "train", length: int | None = None,
                  seed_offset: int = 0) -> TargetDataset:
    """The data set of `split` (held-out: disjoint dry clips, fresh params from a different seed)."""
    seed = config.seed + seed_offset
    source_seed = (config.seed if config.source_seed is None else config.source_seed) + seed_offset
    source = make_source(config.source, split, source_seed, config.sample_rate, config.clip_seconds, config.rms_dbfs,
                         config.source_path, config.heldout_fraction, config.instruments, config.source_mix,
                         config.midi_pool, config.soundfont, config.pool_cache_dir, config.soundfont2)
    if config.augment:
        from training.recorded import RecordingLike

        source = RecordingLike(source, config.augment, source_seed)
    if length is None:
        length = config.train_examples or UNBOUNDED_EXAMPLES
    return TargetDataset(source, vocab, seed=seed if split == "train" else seed + 1_000_003, length=length,
                         renderer=config.renderer, chain_weights=data_chain_weights(config, vocab),
                         level_jitter_db=config.level_jitter_db, variant_share=config.variant_share)


def vocabulary_growth(stored: Mapping[str, Any] | None, vocab: ChainVocabulary) -> list[str] | None:
    """The effects `vocab` adds to a checkpoint's vocabulary (`stored`, its JSON form): [] when they are the same,
    None when `vocab` is not the stored one grown (other effects, ranges, order, length or permutations)."""
    if not stored:
        return None
    old = ChainVocabulary.from_dict(stored)
    names = list(vocab.effect_names)
    if (old.max_length, old.allow_permutations) != (vocab.max_length, vocab.allow_permutations):
        return None
    if not set(old.effect_names) <= set(names) or [n for n in names if n in old.effect_names] != list(old.effect_names):
        return None
    for effect in old.effects:
        mine = vocab.effect(effect.name)
        if [(p.name, p.minimum, p.maximum, p.scale) for p in effect.params] != \
                [(p.name, p.minimum, p.maximum, p.scale) for p in mine.params]:
            return None
    return [n for n in names if n not in old.effect_names]


#: the presence logit a grown vocabulary's new effects start at (sigmoid(-3) = 0.05: "absent" until trained)
NEW_EFFECT_BIAS = -3.0


def grown_state(state: Mapping[str, torch.Tensor], model: Encoder, added: Sequence[str]) -> dict[str, torch.Tensor]:
    """`state` (a checkpoint of the vocabulary without `added`) laid out for `model`: the presence and param heads'
    rows of the old effects copied to their new places; the new effects' rows keep their initialisation, with the
    presence bias at NEW_EFFECT_BIAS."""
    vocab = model.vocab
    old_names = [n for n in vocab.effect_names if n not in added]
    merged = dict(model.state_dict())
    rows = [vocab.effect_names.index(n) for n in old_names]
    param_rows = [i for n in old_names for i in range(vocab.param_slice(n).start, vocab.param_slice(n).stop)]
    for key, value in state.items():
        if key not in merged:
            raise FxmatchInputError(f"init_from: the checkpoint's {key} has no place in this model")
        if key.startswith("chain_head."):
            grown = merged[key].clone()
            if key.endswith("bias"):
                grown[[vocab.effect_names.index(n) for n in added]] = NEW_EFFECT_BIAS
            grown[rows] = value
            merged[key] = grown
        elif key.startswith("param_head."):
            grown = merged[key].clone()
            grown[param_rows] = value
            merged[key] = grown
        elif merged[key].shape == value.shape:
            merged[key] = value
        else:
            raise FxmatchInputError(f"init_from: the checkpoint's {key} has shape {tuple(value.shape)}, this "
                                    f"model's {tuple(merged[key].shape)}")
    return merged


def data_chain_weights(config: TrainConfig, vocab: ChainVocabulary) -> dict[str, float] | None:
    """The data's chain weights: the config's `chain_prior` times its `chain_weights` (None: uniform)."""
    if config.chain_prior == "uniform":
        return config.chain_weights
    weights = length_uniform_weights(vocab, range(vocab.max_length + 1))
    for key, w in (config.chain_weights or {}).items():
        weights[key] = weights.get(key, 1.0) * w
    return weights


def step_seed(seed: int, step: int, rank: int) -> int:
    """A 63-bit seed for (seed, step, rank)."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def candidate_counts(config: TrainConfig, step: int, n_chains: int) -> tuple[int, int]:
    """(top-k, random exploration) candidates per example at `step`.

    WTA warm-up (`explore_steps`): random candidates only, so the params of every chain's effects and the classifier
    see fair contests before the classifier's own top-k takes over (it otherwise locks onto its early favourites).
    Naive: every chain; full chain: its single candidate.
    """
    if config.mode != "wta":
        return n_chains, 0
    if step < config.explore_steps:
        return 0, config.top_k + config.n_explore
    return config.top_k, config.n_explore


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up to `lr`, then cosine decay to `lr * lr_min_ratio` at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.lr * (config.lr_min_ratio + (1 - config.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


class StepBatches(torch.utils.data.Sampler):
    """Batches of data-set indices for steps `start..steps-1` of one process (cyclic over `length`)."""

    def __init__(self, start: int, steps: int, batch_size: int, info: DistInfo, length: int):
        self.start, self.steps, self.batch_size, self.info, self.length = start, steps, batch_size, info, length

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.steps):
            first = (step * self.info.world_size + self.info.rank) * self.batch_size
            yield [(first + j) % self.length for j in range(self.batch_size)]


def plain_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` with every tensor contiguous (a channels-last run's weights stored as a plain run's)."""
    return {k: v.contiguous() for k, v in state.items()}


def match_parameter_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give each per-parameter state tensor (Adam's moments) its parameter's memory format, in place.

    A state loaded from a checkpoint keeps the layout it was saved with, and AdamW's fused CPU kernel gives a
    channels-last parameter with a plain-layout moment wrong updates, silently (0.16 off after one step of lr 0.1;
    tests/training/test_channels_last.py).
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    optimizer.state[param][key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


class Trainer:
    """One training run of `config` writing into `out_dir` (see the module docstring)."""

    def __init__(self, config: TrainConfig, out_dir: str | Path, resume: bool = False):
        self.config, self.out_dir, self.resume = config, Path(out_dir), resume
        self.device = pick_device(config.device)
        self.info = setup_distributed(self.device)
        # IIR twins and reverb tails decay into float32 denormals, which x86 CPUs process ~100x slower: flush them
        # to zero (sets FTZ/DAZ for this thread, which also covers the numba kernels of the twins it calls).
        torch.set_flush_denormal(True)
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.vocab = build_vocabulary(config)
        self.model_vocab = model_vocabulary(config, self.vocab)
        torch.manual_seed(config.seed)  # identical initial weights on every process
        self.model = Encoder(self.model_vocab, encoder_config(config)).to(self.device)
        if config.channels_last:  # the 4-D weights (2-D convolutions) in NHWC; their activations follow
            self.model.to(memory_format=torch.channels_last)
        if config.init_from and not resume:
            self._initialise_from(Path(config.init_from))
        self.net: torch.nn.Module = self.model
        if self.info.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                           fused=True if config.fused_optimizer else None)
        self.dataset = build_dataset(config, self.vocab)
        self.renderer = None if config.mode == "supervised" else ChainRenderer.of_vocabulary(self.model_vocab, config.sample_rate)
        self.membership = torch.from_numpy(chain_membership(self.model_vocab)).to(self.device)
        self.loss_fn = make_audio_loss(config.fft_sizes)
        self.score_loss_fn = make_audio_loss(config.score_fft_sizes) if config.score_fft_sizes else None
        self.win_counts = torch.zeros(self.model_vocab.n_chains, dtype=torch.long)
        self.step, self.elapsed_s = 0, 0.0
        self.history: list[dict[str, float]] = []
        self.checkpoint_path = self.out_dir / CHECKPOINT_NAME
        if resume:
            self._restore()
        elif self.checkpoint_path.exists():
            raise FxmatchInputError(
                f"{self.out_dir} already holds a checkpoint; pass --resume to continue it or choose another --out")

    # ------------------------------------------------------------------------------------------------ checkpoints
    def _initialise_from(self, path: Path) -> None:
        """Start from another run's encoder weights (same architecture and vocabulary), e.g. a pre-trained one.

        The checkpoint may lack side features this config adds (training.model.SIDE_FEATURES): their layers
        keep their fresh initialisation and the trunk's first layer gets zero weights for their inputs, so the
        model starts computing exactly what the checkpoint did."""
        ckpt = load_checkpoint(path, require=("model", "model_config"))
        mine, theirs = self.model.config, ckpt.get("model_config") or {}
        defaults = asdict(EncoderConfig())
        stored = {**defaults, **(theirs.get("encoder") or {})}
        differ = {k for k, v in mine["encoder"].items() if stored.get(k) != v}
        added = {switch for switch, keys in SIDE_FEATURES.items() if differ & set(keys) and not stored[switch]}
        widen = bool(added) and differ <= {k for switch in added for k in SIDE_FEATURES[switch]}
        growth = vocabulary_growth(theirs.get("vocabulary"), self.model.vocab)
        if growth is None or (differ and not widen):
            raise FxmatchInputError(f"init_from {path}: its encoder or vocabulary differs from this config's")
        if growth:
            if differ or self.model.cfg.chain_scoring != "presence" or self.model.cfg.param_sharing != "effect":
                raise FxmatchInputError(f"init_from {path}: a vocabulary can grow only with the same encoder, "
                                        "chain_scoring: presence and param_sharing: effect")
            self.model.load_state_dict(grown_state(ckpt["model"], self.model, growth))
            log.info("initialised from %s (step %s of %s), adding %s to its vocabulary (absent at first)", path,
                     ckpt.get("step"), ckpt.get("mode"), ", ".join(growth))
            return
        if differ:
            self._load_widened(ckpt["model"], trunk_input_widths(EncoderConfig(**stored)))
            log.info("initialised from %s (step %s of %s), adding %s with zero weight into the trunk", path,
                     ckpt.get("step"), ckpt.get("mode"), ", ".join(sorted(differ)))
            return
        self.model.load_state_dict(ckpt["model"])
        log.info("initialised from %s (step %s of %s)", path, ckpt.get("step"), ckpt.get("mode"))

    def _load_widened(self, state: Mapping[str, torch.Tensor], stored_inputs: list[tuple[str, int]]) -> None:
        """Load `state` into a model with extra trunk inputs: tensors of equal shape are copied; the trunk's first
        weight `[hidden, inputs]` gets the stored columns at their parts' new places (`stored_inputs`: the
        checkpoint's trunk_input_widths) and zeros for the new parts' inputs; new layers keep their initialisation."""
        own = self.model.state_dict()
        merged = dict(own)
        starts, at = {}, 0
        for part, width in trunk_input_widths(self.model.cfg):
            starts[part], at = at, at + width
        for key, value in state.items():
            if key not in own:
                raise FxmatchInputError(f"init_from: the checkpoint's {key} has no place in this model")
            if own[key].shape == value.shape:
                merged[key] = value
            elif key == "trunk.0.weight" and own[key].shape[0] == value.shape[0] and own[key].shape[1] > value.shape[1]:
                widened, src = torch.zeros_like(own[key]), 0
                for part, width in stored_inputs:
                    widened[:, starts[part] : starts[part] + width] = value[:, src : src + width]
                    src += width
                merged[key] = widened
            else:
                raise FxmatchInputError(f"init_from: the checkpoint's {key} has shape {tuple(value.shape)}, this "
                                        f"model's {tuple(own[key].shape)}")
        self.model.load_state_dict(merged)

    def _restore(self) -> None:
        ckpt = load_checkpoint(self.checkpoint_path, require=RESUME_KEYS)
        stored = ckpt["train_config"]
        defaults = TrainConfig().to_dict()  # a knob newer than the checkpoint ran with its default
        changed = sorted(k for k, v in self.config.to_dict().items()
                         if k not in RESUMABLE_CHANGES and stored.get(k, defaults[k]) != v)
        if changed:
            raise FxmatchInputError(f"cannot resume {self.checkpoint_path}: the config changed {', '.join(changed)} "
                                    f"(only {', '.join(sorted(RESUMABLE_CHANGES))} may change)")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        match_parameter_layout(self.optimizer)  # e.g. a run resumed with another channels_last
        self.step, self.elapsed_s = int(ckpt["step"]), float(ckpt["elapsed_s"])
        self.win_counts = torch.tensor(ckpt["win_counts"], dtype=torch.long)
        self._trim_log()
        log.info("resumed %s at step %d", self.checkpoint_path, self.step)

    def _trim_log(self) -> None:
        """Drop log.csv rows past the checkpoint (logged before a stop; the resumed run logs them again)."""
        path = self.out_dir / "log.csv"
        if not self.info.is_main or not path.is_file():
            return
        lines = path.read_text().splitlines(keepends=True)
        keep = lines[:1] + [line for line in lines[1:]
                            if line.endswith("\n") and line.split(",", 1)[0].isdigit()
                            and int(line.split(",", 1)[0]) <= self.step]
        if len(keep) < len(lines):
            write_text_atomic(path, "".join(keep))

    def checkpoint_payload(self) -> dict[str, Any]:
        """What `checkpoint.pt` holds (tensors, dicts and plain values only)."""
        return {
            "format": CHECKPOINT_FORMAT, "version": 1, "step": self.step, "elapsed_s": self.elapsed_s,
            "mode": self.config.mode, "model": plain_layout(self.model.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "model_config": self.model.config, "train_config": self.config.to_dict(),
            "data": self.dataset.describe(), "win_counts": self.win_counts.tolist(),
            "world_size": self.info.world_size,
        }

    def save(self) -> None:
        """Write the checkpoint (main process only)."""
        if self.info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_checkpoint(self.checkpoint_path, self.checkpoint_payload())

    # ------------------------------------------------------------------------------------------------ one step
    def compute(self, batch: dict[str, torch.Tensor], step: int) -> StepResult:
        """The loss of one batch for the configured mode."""
        c = self.config
        x, y = batch["x"].to(self.device), batch["y"].to(self.device)
        if c.mode == "supervised":
            return supervised_step(self.net, y, batch["chain"].to(self.device), batch["params"].to(self.device),
                                   batch["param_mask"].to(self.device), c.ce_weight, c.presence_weight,
                                   self.membership, c.param_weight)
        generator = torch.Generator().manual_seed(step_seed(c.seed, step, self.info.rank) + 1)
        top_k, n_explore = candidate_counts(c, step, self.model_vocab.n_chains)
        temperature = temperature_at(step, c.temperature_start, c.temperature_end, c.anneal_steps)
        return wta_step(self.net, self.renderer, x, y, self.loss_fn, top_k, n_explore, temperature, c.ce_weight,
                        generator, c.parsimony, self.score_loss_fn)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> StepResult:
        """Forward, backward and optimiser update for step `step`."""
        torch.manual_seed(step_seed(self.config.seed, step, self.info.rank))
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.config, step)
        self.net.train()
        result = self.compute(batch, step)
        self.optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return result

    # ------------------------------------------------------------------------------------------------ the loop
    def _reduce(self, values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64)
        if self.info.world_size > 1:
            dist.all_reduce(t)
            t /= self.info.world_size
        return t.tolist()

    def _counts(self) -> torch.Tensor:
        counts = self.win_counts.clone()
        if self.info.world_size > 1:
            dist.all_reduce(counts)
        return counts

    def _log(self, row: dict[str, float], counts: torch.Tensor) -> None:
        self.history.append(row)
        if not self.info.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / "log.csv"
        new = not path.exists()
        with path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=LOG_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow({k: row[k] for k in LOG_COLUMNS})
        wins = {chain_key(c): int(n) for c, n in zip(self.model_vocab.chains, counts.tolist())}
        # replaced atomically: a kill never leaves half a file
        write_text_atomic(self.out_dir / "wins.json", json.dumps({"step": int(row["step"]), "wins": wins}, indent=1))

    def loader(self) -> torch.utils.data.DataLoader:
        sampler = StepBatches(self.step, self.config.steps, self.config.batch_size, self.info, len(self.dataset))
        return torch.utils.data.DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.config.num_workers,
                                           worker_init_fn=_worker_init if self.config.num_workers else None)

    def train(self) -> dict[str, Any]:
        """Run until `config.steps`; returns (and writes) the summary."""
        c = self.config
        examples_per_step = c.batch_size * self.info.world_size
        bar = tqdm(total=c.steps, initial=self.step, desc=c.name, dynamic_ncols=True,
                   disable=not (c.progress and self.info.is_main))
        sums, n_in_interval, wins_in_interval = np.zeros(3), 0, set()
        interval_start = time.perf_counter()
        for batch in self.loader():
            step = self.step
            result = self.train_step(batch, step)
            self.step = step + 1
            sums += [result.loss.item(), result.fit.item(), result.ce.item()]
            n_in_interval += 1
            self.win_counts += torch.bincount(result.winners.cpu(), minlength=self.model_vocab.n_chains)
            wins_in_interval.update(result.winners.tolist())
            bar.update(1)
            if self.step % c.log_every == 0 or self.step == c.steps:
                now = time.perf_counter()
                self.elapsed_s += now - interval_start
                speed = n_in_interval * examples_per_step / max(now - interval_start, 1e-9)
                loss, fit, ce = self._reduce((sums / n_in_interval).tolist())
                row = {"step": self.step, "loss": loss, "fit": fit, "ce": ce,
                       "temperature": temperature_at(step, c.temperature_start, c.temperature_end, c.anneal_steps),
                       "lr": learning_rate(c, step), "examples_per_s": speed, "elapsed_s": self.elapsed_s,
                       "candidates_per_example": result.n_rendered / c.batch_size,
                       "chains_won": len(wins_in_interval)}
                self._log(row, self._counts())
                bar.set_postfix(loss=f"{loss:.4f}", ex_s=f"{speed:.1f}")
                sums, n_in_interval, wins_in_interval = np.zeros(3), 0, set()
                interval_start = time.perf_counter()
            if self.step % c.checkpoint_every == 0 or self.step == c.steps:
                self.save()
        bar.close()
        return self.finish()

    def finish(self) -> dict[str, Any]:
        """Write `summary.json` (main process) and return it."""
        counts = self._counts()
        summary = {
            "name": self.config.name, "mode": self.config.mode, "steps": self.step, "elapsed_s": self.elapsed_s,
            "world_size": self.info.world_size, "device": str(self.device),
            "model_parameters": count_parameters(self.model), "n_chains": self.model_vocab.n_chains,
            "final": self.history[-1] if self.history else None,
            "wins": {chain_key(ch): int(n) for ch, n in zip(self.model_vocab.chains, counts.tolist())},
            "checkpoint": str(self.checkpoint_path),
        }
        if self.info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        return summary


def train(config: TrainConfig, out_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    """Train `config` into `out_dir` (the `fxmatch train` command); returns the summary."""
    trainer = Trainer(config, out_dir, resume)
    distributed = trainer.info.world_size > 1 and dist.is_initialized()
    try:
        summary = trainer.train()
        if distributed:  # every rank done before any tears gloo down (a rank leaving early can abort the other)
            dist.barrier()
        return summary
    finally:
        if distributed:
            dist.destroy_process_group()
