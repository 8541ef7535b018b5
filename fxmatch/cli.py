"""The `fxmatch` command line: one console script, subcommands as in DESIGN.md.

Exit codes: 0 success, 2 bad input or usage (one line on stderr), 1 unexpected failure.
Subcommands living in higher layers (training, export, realtime, gui) are imported only when called.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Sequence

from fxmatch.errors import FxmatchInputError
from fxmatch.jsonout import print_json  # noqa: F401 - re-exported for fxmatch.commands

log = logging.getLogger("fxmatch")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        where = self.prog.removeprefix("fxmatch").strip()
        raise FxmatchInputError(f"{where}: {message}" if where else message)


# name -> (module, function) for commands implemented in other packages; each module exposes
# `add_arguments(parser)` under the name `add_<cmd>_arguments` and a `run_<cmd>(args) -> int`.
_LAZY: dict[str, tuple[str, str]] = {}


def register(name: str, module: str) -> None:
    """Declare that `fxmatch NAME` is implemented by `module` (add_arguments(parser), run(args) -> int)."""
    _LAZY[name] = (module, name)


register("apply", "fxmatch.commands.apply")
register("bench", "benchmarks.cli")
register("estimate", "fxmatch.commands.estimate")
register("capture", "fxmatch.commands.capture")
register("match", "fxmatch.commands.match")
register("demo", "fxmatch.commands.demo")
register("export", "export.cli")
register("train", "training.cli")
register("evaluate", "training.evaluate_cli")
register("live", "realtime.cli")
register("app", "gui.cli")

_HELP = {
    "apply": "render an audio file through a preset's chain",
    "bench": "run a benchmark and print JSON",
    "estimate": "estimate the effect chain and parameters of a processed recording",
    "demo": "estimate the bundled example targets with the shipped model",
    "export": "export a trained checkpoint to ONNX",
    "train": "train an estimator from a config file",
    "evaluate": "evaluate a model on a held-out set",
    "live": "the real-time engine without a window",
    "app": "the desktop app",
    "capture": "with the dry and the processed signal: search the chains through the twins, write the preset",
    "match": "tone match: fit the chain so that your own take (another performance) sounds like a reference",
}


# top-level module -> (package to pip-install, extra of pyproject.toml that brings it)
_EXTRA_OF_MODULE: dict[str, tuple[str, str]] = {
    "yaml": ("pyyaml", "train"),
    "tqdm": ("tqdm", "train"),
    "onnx": ("onnx", "train"),
    "pyroomacoustics": ("pyroomacoustics", "train"),
    "sounddevice": ("sounddevice", "live"),
    "PyQt6": ("PyQt6", "app"),
    "pyqtgraph": ("pyqtgraph", "app"),
}


def missing_extra_message(exc: ModuleNotFoundError, command: str | None) -> str | None:
    """One line naming the extra to install when `exc` is a module of an optional extra, else None."""
    top = (exc.name or "").partition(".")[0]
    if top not in _EXTRA_OF_MODULE:
        return None
    package, extra = _EXTRA_OF_MODULE[top]
    what = f"fxmatch {command}" if command else "this command"
    return (f"{what} needs {package}, which is not installed: "
            f'pip install "fxmatch[{extra}]" (in a source checkout: pip install -e ".[{extra}]")')


def _available(name: str) -> bool:
    module = _LAZY[name][0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Callable]]:
    parser = _Parser(prog="fxmatch", description="Estimate audio effect chains and play through them.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    runners: dict[str, Callable] = {}
    for name, (module_name, _) in _LAZY.items():
        if not _available(name):
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=_HELP.get(name, ""), description=_HELP.get(name, ""))
        module.add_arguments(p)
        runners[name] = module.run
    return parser, runners


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command: str | None = None
    try:
        parser, runners = build_parser()
        args = parser.parse_args(argv)
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s"
        )
        if not args.command:
            parser.print_help(sys.stderr)
            return 2
        command = args.command
        if command == "bench" and getattr(args, "name", None):
            command = f"bench {args.name}"
        return int(runners[args.command](args) or 0)
    except FxmatchInputError as exc:
        print(f"fxmatch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fxmatch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        message = missing_extra_message(exc, command) if isinstance(exc, ModuleNotFoundError) else None
        if message is not None:
            print(f"fxmatch: error: {message}", file=sys.stderr)
            return 2
        if os.environ.get("FXMATCH_DEBUG"):
            raise
        print(f"fxmatch: unexpected failure: {type(exc).__name__}: {exc} (set FXMATCH_DEBUG=1 for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
