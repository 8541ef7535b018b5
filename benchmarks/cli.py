"""`fxmatch bench NAME`: run a benchmark in benchmarks/ and print its JSON on stdout."""

from __future__ import annotations

import argparse
import importlib
import inspect
from pathlib import Path

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
    parser.add_argument("--k", type=_k_list, help="capture: comma-separated k values, e.g. 4,16,64 (the model's k "
                                                  "likeliest chains, one run per k); default every chain")
    parser.add_argument("--n", type=_positive_int, help="capture: number of examples (default 12, 4 with --quick)")
    parser.add_argument("--set", dest="set_path", metavar="FOLDER",
                        help="capture: a data set folder (python -m training.make_set) instead of synthesised examples")


# CLI flag -> keyword of the benchmark's run(); a benchmark whose run() lacks the keyword refuses the flag
_OPTIONS = {"--model": "model", "--checkpoint": "checkpoint", "--seconds": "seconds", "--k": "k", "--n": "n",
            "--set": "set_path"}


def _positive_int(text: str) -> int:
    """A whole number >= 1 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _k_list(text: str) -> list[int]:
    """Comma-separated whole numbers >= 1, e.g. '4,16,64' (argparse type)."""
    try:
        return [_positive_int(v.strip()) for v in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers >= 1 like 4,16,64, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    if args.name not in BENCHMARKS:
        raise FxmatchInputError(f"unknown benchmark {args.name!r}; known: {', '.join(BENCHMARKS)}")
    try:
        module = importlib.import_module(f"benchmarks.bench_{args.name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"benchmarks.bench_{args.name}":
            raise FxmatchInputError(f"benchmark {args.name!r} is not available in this version") from None
        raise
    options = {key: getattr(args, key) for key in _OPTIONS.values() if getattr(args, key, None) is not None}
    accepted = inspect.signature(module.run).parameters
    unsupported = [flag for flag, key in _OPTIONS.items() if key in options and key not in accepted]
    if unsupported:
        raise FxmatchInputError(f"benchmark {args.name!r} takes no {unsupported[0]}")
    if "set_path" in options and not Path(options["set_path"]).is_dir():
        raise FxmatchInputError(f"--set {options['set_path']}: not a folder (make one with python -m training.make_set)")
    result = module.run(quick=args.quick, **options)
    print_json(result)
    if args.output:
        import json

        from fxmatch.audio_io import write_text_atomic

        write_text_atomic(args.output, json.dumps(result, indent=2) + "\n")
    return 0
