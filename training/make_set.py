"""Write a held-out evaluation set to disk: `python -m training.make_set OUT (--model M | --config C) [--n N] [--seed S]`.

The set is the held-out split of a model's training data description (`--model`, an exported .onnx or a trainer
checkpoint) or of a training config (`--config`, YAML): dry clips never seen in training, fresh params, rendered by
pedalboard, or by SoX where the config or the model's training data says `renderer: sox` (training.foreign). It is
written by `training.data.write_dataset` into a temporary folder next to OUT, then renamed onto OUT (which must not
exist or be empty), so a half-written set never looks like a set.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from fxmatch.audio_io import atomic_folder
from fxmatch.errors import FxmatchInputError
from training.data import TargetDataset, write_dataset
from training.evaluate import DEFAULT_HELDOUT_N, heldout_dataset, load_estimator

log = logging.getLogger(__name__)


def config_heldout_dataset(config_path: str | Path, n: int, seed: int | None = None) -> TargetDataset:
    """`n` held-out examples of a training config (seed replaced by `seed` when given), rendered by pedalboard, or by
    SoX when the config asks for `renderer: sox` (a config's `twins` still gets pedalboard)."""
    from training.config import load_config
    from training.trainer import build_dataset, build_vocabulary

    config = load_config(config_path, {"seed": int(seed)} if seed is not None else None)
    if config.renderer != "sox":
        config = dataclasses.replace(config, renderer="pedalboard")
    return build_dataset(config, build_vocabulary(config), split="heldout", length=n)


def make_set(out: str | Path, n: int = DEFAULT_HELDOUT_N, seed: int | None = None, model: str | None = None,
             config: str | None = None) -> Path:
    """Write `n` held-out examples (of `model`'s or `config`'s data) to the folder `out`; returns it."""
    if n <= 0:
        raise FxmatchInputError(f"--n must be a positive number of examples, got {n}")
    if (model is None) == (config is None):
        raise FxmatchInputError("give exactly one of --model or --config")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FxmatchInputError(f"{out}: exists and is not an empty folder")
    if model is not None:
        dataset = heldout_dataset(load_estimator(model).info, n, seed)
    else:
        dataset = config_heldout_dataset(config, n, seed)
    with atomic_folder(out) as tmp:  # checks the folder it goes into
        write_dataset(dataset, tmp, n)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; exit 2 with one line on bad input."""
    parser = argparse.ArgumentParser(prog="python -m training.make_set", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to write (x/, y/, labels.json)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="exported model (.onnx) or checkpoint (.pt) whose training data to follow")
    source.add_argument("--config", help="training config (YAML) whose data to follow")
    parser.add_argument("--n", type=int, default=DEFAULT_HELDOUT_N, help="number of examples (default 200)")
    parser.add_argument("--seed", type=int, help="seed of the set (default: the training seed)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        path = make_set(args.out, args.n, args.seed, args.model, args.config)
    except FxmatchInputError as exc:
        print(f"make_set: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
