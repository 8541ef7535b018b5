"""`fxmatch bench NAME`: run a benchmark in benchmarks/ and print its JSON on stdout."""

from __future__ import annotations

import argparse
import importlib
import inspect

from fxmatch.cli import print_json
from fxmatch.errors import FxmatchInputError

BENCHMARKS = ("effects", "training", "encoder", "realtime", "gui", "capture")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help=f"benchmark to run ({', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run, noisier figures)")
    parser.add_argument("-o", "--output", help="also write the JSON to this file")
    parser.add_argument("--seconds", type=float, help="length of each timed run, for benchmarks that take it")
    parser.add_argument("--model", help="ONNX model, for benchmarks that run one (encoder: default the shipped model)")
    parser.add_argument("--checkpoint", help="training checkpoint, for benchmarks that need the PyTorch model "
                                             "(encoder: the reference for latency and parity)")


def run(args: argparse.Namespace) -> int:
    if args.name not in BENCHMARKS:
        raise FxmatchInputError(f"unknown benchmark {args.name!r}; known: {', '.join(BENCHMARKS)}")
    try:
        module = importlib.import_module(f"benchmarks.bench_{args.name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"benchmarks.bench_{args.name}":
            raise FxmatchInputError(f"benchmark {args.name!r} is not available in this version") from None
        raise
    options = {k: getattr(args, k) for k in ("model", "checkpoint", "seconds") if getattr(args, k, None) is not None}
    unsupported = [k for k in options if k not in inspect.signature(module.run).parameters]
    if unsupported:
        raise FxmatchInputError(f"benchmark {args.name!r} takes no --{unsupported[0]}")
    result = module.run(quick=args.quick, **options)
    print_json(result)
    if args.output:
        import json

        from fxmatch.audio_io import write_text_atomic

        write_text_atomic(args.output, json.dumps(result, indent=2) + "\n")
    return 0
