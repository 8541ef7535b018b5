"""`fxmatch train CONFIG [--resume] [--out DIR]`: train an estimator from a YAML config.

`fxmatch train --status DIR [--json]`: step, examples/s, losses, win entropy, ETA and liveness of a run's folder.

Multi-process: `torchrun --nproc_per_node N -m fxmatch.cli train CONFIG` (DDP; gloo on CPU, nccl on CUDA).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?",
                        help="YAML config file (see configs/tiny.yaml, configs/default.yaml); not with --status")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config knob (YAML value), e.g. --set steps=40; repeatable")
    parser.add_argument("--status", metavar="DIR",
                        help="print where the run in DIR stands (step, examples/s, loss, win entropy, ETA) and exit")
    parser.add_argument("--json", action="store_true", help="with --status: print JSON for scripts")


def parse_overrides(items: list[str]) -> dict:
    """`["steps=40", "lr=1e-3"]` -> {"steps": 40, "lr": 0.001}; FxmatchInputError for an item without '='."""
    import yaml

    from fxmatch.errors import FxmatchInputError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise FxmatchInputError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise FxmatchInputError(f"--set {key.strip()}: {value!r} is not a YAML value") from None
    return out


def run(args: argparse.Namespace) -> int:
    """Train; prints the summary as JSON on stdout (main process). Bad config: FxmatchInputError (exit 2)."""
    from fxmatch.errors import FxmatchInputError

    if args.status is not None:
        return status(args)
    if args.config is None:
        raise FxmatchInputError("train needs a CONFIG file (or --status DIR to follow a run)")
    if args.json:
        raise FxmatchInputError("--json goes with --status DIR")
    from training.config import load_config  # torch comes with it: imported only when training
    from training.trainer import train

    config = load_config(args.config, parse_overrides(args.set))
    out = Path(args.out) if args.out else Path("runs") / config.name
    summary = train(config, out, resume=args.resume)
    if summary.get("world_size", 1) == 1 or _is_main():
        print(json.dumps(summary, indent=2, default=float))
    return 0


def status(args: argparse.Namespace) -> int:
    """`--status DIR`: print the run's status (lines, or JSON with --json); not a run: FxmatchInputError (exit 2)."""
    from fxmatch.errors import FxmatchInputError
    from training.status import format_status, run_status

    extra = [flag for flag, given in (("CONFIG", args.config), ("--out", args.out), ("--resume", args.resume),
                                      ("--set", args.set)) if given]
    if extra:
        raise FxmatchInputError(f"--status DIR takes no {extra[0]}")
    result = run_status(args.status)
    if args.json:
        from fxmatch.jsonout import print_json

        print_json(result)
    else:
        print(format_status(result))
    return 0


def _is_main() -> bool:
    import os

    return int(os.environ.get("RANK", "0")) == 0
