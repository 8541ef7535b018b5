"""`fxmatch bench NAME`: run a benchmark in benchmarks/ and print its JSON on stdout."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import logging
import math
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fxmatch.errors import FxmatchInputError
from fxmatch.jsonout import print_json

BENCHMARKS = ("effects", "training", "encoder", "realtime", "gui", "capture", "threads", "match")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help=f"benchmark to run ({', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run, noisier figures)")
    parser.add_argument("-o", "--output", help="also write the JSON to this file")
    parser.add_argument("--seconds", type=positive_seconds,
                        help="length of each timed run, for benchmarks that take it (> 0)")
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


def positive_seconds(text: str) -> float:
    """A finite number of seconds > 0 (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _k_list(text: str) -> list[int]:
    """Comma-separated whole numbers >= 1, e.g. '4,16,64' (argparse type)."""
    try:
        return [_positive_int(v.strip()) for v in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers >= 1 like 4,16,64, got {text!r}") from None


def check_options(name: str, options: dict[str, Any], output: str | None = None, module: Any = None) -> None:
    """FxmatchInputError (exit 2) for a bad option before any work: `--model` not a loadable fxmatch model,
    `--checkpoint` not a file, `--set` not a folder, `-o` not writable (or one of the inputs), and the benchmark's own
    rules (its module's `check_options(**options)`)."""
    from fxmatch.audio_io import check_output
    from fxmatch.errors import require_file

    seconds = options.get("seconds")
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise FxmatchInputError(f"bench {name}: --seconds must be a number of seconds > 0, got {seconds:g}")
    if "set_path" in options and not Path(options["set_path"]).is_dir():
        raise FxmatchInputError(f"--set {options['set_path']}: not a folder (make one with python -m training.make_set)")
    if options.get("checkpoint") is not None:
        require_file(options["checkpoint"], "checkpoint file")
    if options.get("model") is not None:
        from fxmatch.inference import EstimatorSession

        EstimatorSession(options["model"], providers="cpu", threads=1)  # loads it: a bad file is refused now
    if output:
        check_output(output, [options.get("model"), options.get("checkpoint")])
    own = getattr(module, "check_options", None)
    if own is not None:
        own(**options)


def _clock(seconds: float) -> str:
    """Elapsed time for a progress line: '8 s', '4 min 01 s'."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


class Progress(logging.Handler):
    """Progress on stderr while a benchmark runs: each stage its module logs (logger `fxmatch.bench.*`, INFO) as a
    line, and a 'still running' line after every HEARTBEAT_S without one."""

    HEARTBEAT_S = 10.0

    def __init__(self, name: str):
        super().__init__(logging.INFO)
        self.name, self.start, self.last, self.stage = name, time.monotonic(), time.monotonic(), "starting"
        self.said, self.done = threading.Lock(), threading.Event()

    def say(self, text: str) -> None:
        """Print one progress line (`bench NAME [elapsed]: text`)."""
        with self.said:  # (not self.lock: that is logging.Handler's own, held around emit)
            self.last = time.monotonic()
            print(f"bench {self.name} [{_clock(self.last - self.start)}]: {text}", file=sys.stderr, flush=True)

    def emit(self, record: logging.LogRecord) -> None:
        """A stage logged by the benchmark."""
        try:
            self.stage = record.getMessage()
        except (TypeError, ValueError):
            return
        self.say(self.stage)

    def beat(self) -> None:
        """The heartbeat thread: 'still running' after HEARTBEAT_S of silence."""
        while not self.done.wait(min(1.0, self.HEARTBEAT_S / 4)):
            if time.monotonic() - self.last >= self.HEARTBEAT_S:
                self.say(f"still running ({self.stage})")


@contextlib.contextmanager
def progress(name: str) -> Iterator[None]:
    """Progress lines on stderr for the duration of benchmark `name` (see Progress)."""
    handler = Progress(name)
    logger = logging.getLogger("fxmatch.bench")
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # with -v the root handler would print each stage a second time
    thread = threading.Thread(target=handler.beat, name="bench-progress", daemon=True)
    handler.say("started (progress on stderr, the JSON on stdout at the end)")
    thread.start()
    try:
        yield
    finally:
        handler.done.set()
        thread.join()
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
    handler.say("done")


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
    check_options(args.name, options, args.output, module)
    with progress(args.name):
        result = module.run(quick=args.quick, **options)
    print_json(result)
    if args.output:
        import json

        from fxmatch.audio_io import write_text_atomic

        write_text_atomic(args.output, json.dumps(result, indent=2) + "\n")
    return 0
