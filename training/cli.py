"""`fxmatch train CONFIG [--resume] [--out DIR]`: train an estimator from a YAML config.

Multi-process: `torchrun --nproc_per_node N -m fxmatch.cli train CONFIG` (DDP; gloo on CPU, nccl on CUDA).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config file (see configs/tiny.yaml, configs/default.yaml)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")


def run(args: argparse.Namespace) -> int:
    """Train; prints the summary as JSON on stdout (main process). Bad config: FxmatchInputError (exit 2)."""
    from training.config import load_config  # torch comes with it: imported only when training
    from training.trainer import train

    config = load_config(args.config)
    out = Path(args.out) if args.out else Path("runs") / config.name
    summary = train(config, out, resume=args.resume)
    if summary.get("world_size", 1) == 1 or _is_main():
        print(json.dumps(summary, indent=2, default=float))
    return 0


def _is_main() -> bool:
    import os

    return int(os.environ.get("RANK", "0")) == 0
