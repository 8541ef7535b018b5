"""`fxmatch evaluate MODEL SET [-o OUT_DIR] [--n N] [--json] [--compare OTHER ...]`.

MODEL: an exported ONNX model (run by onnxruntime, as users get it) or a trainer checkpoint (.pt). SET: a data set
folder written by `training.data.write_dataset` (or `python -m training.make_set`), or `heldout[:N][@SEED]`
(N examples, default 200, of MODEL's training data description from the held-out split, rendered by pedalboard).
Writes eval.json, eval.md, confusion.png and param_error.png into OUT_DIR (default `<model without suffix>.eval/`)
and prints the Markdown table (or the JSON with --json). `--compare` evaluates more models (e.g. the supervised
and full-chain baselines) on the same set into one table. `--dry-aware` scores each model's informed path too (its
`--search-k` likeliest chains searched with the dry signal through the twins) next to its blind one.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def _positive_int(text: str) -> int:
    """argparse type: a whole number > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="exported model (.onnx) or trainer checkpoint (.pt)")
    parser.add_argument("set", metavar="SET",
                        help="data set folder (write_dataset / training.make_set) or heldout[:N][@SEED] (N examples, "
                             "default 200, of the model's held-out split; a folder of that name wins)")
    parser.add_argument("-o", "--out", metavar="OUT_DIR",
                        help="output folder, made if missing; the folder it goes into must exist (default: "
                             "<model>.eval next to the model)")
    parser.add_argument("--n", type=_positive_int, metavar="N", help="evaluate at most N examples")
    parser.add_argument("--compare", nargs="+", action="extend", default=[], metavar="OTHER",
                        help="more models (.onnx or .pt) evaluated on the same set, in the same table")
    parser.add_argument("--no-oracle", action="store_true", help="skip the oracle-through-the-twins reference")
    parser.add_argument("--threads", type=_positive_int, default=1, metavar="N",
                        help="onnxruntime CPU threads (default 1: examples run one at a time)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    parser.add_argument("--json", action="store_true", help="print the evaluation JSON instead of the table")
    parser.add_argument("--dry-aware", action="store_true",
                        help="also score each model's informed path: its likeliest chains searched with the dry "
                             "signal through the twins (what `fxmatch estimate --dry` does), next to the blind one")
    parser.add_argument("--search-k", type=_positive_int, default=64, metavar="K",
                        help="with --dry-aware: the model's K likeliest chains (and sub-chains) are searched "
                             "(default 64)")
    parser.add_argument("--search-budget", type=float, metavar="S",
                        help="with --dry-aware: stop each example's search after S seconds (default: no limit)")
    parser.add_argument("--match", action="store_true",
                        help="the tone-match view (issue 23): SET names pairs of two performances of one instrument, "
                             "musescore[:N][@SEED], musescore-peak[:N][@SEED] (one audible PeakFilter) or real[:N]; "
                             "scores `fxmatch match` and the blind estimate on each (training.match_eval)")


def default_out_dir(model: str | Path) -> Path:
    """`models/x.onnx` -> `models/x.eval`."""
    p = Path(model)
    return p.with_name(p.stem + ".eval")


def check_out_dir(out: Path) -> None:
    """FxmatchInputError (exit 2, before any work) unless `out` is a folder to write into, or can be made as one: its
    parent folder must exist (`-o nodir/sub` is refused, as the README's exit-code table says), and be writable."""
    from fxmatch.audio_io import check_output
    from fxmatch.errors import FxmatchInputError

    if out.exists() and not out.is_dir():
        raise FxmatchInputError(f"{out}: exists and is not a folder")
    # a file in the folder when it exists, else the folder itself as a new entry of its parent: either way the
    # place it goes must exist and take new files
    check_output(out / "eval.json" if out.is_dir() else out)


def run(args: argparse.Namespace) -> int:
    """Evaluate, write the outputs, print the table (or JSON). Bad input: FxmatchInputError (exit 2)."""
    from training.evaluate import evaluate, render_markdown, write_outputs

    out = Path(args.out) if args.out else default_out_dir(args.model)
    if args.out or Path(args.model).parent.is_dir():  # else the missing model is what to report
        check_out_dir(out)
    if args.match:
        from training.match_eval import run_match_view

        return run_match_view(args, out)
    if not args.dry_aware and (args.search_budget is not None or args.search_k != 64):
        from fxmatch.errors import FxmatchInputError

        raise FxmatchInputError("--search-k and --search-budget need --dry-aware")
    report = evaluate([args.model, *args.compare], args.set, n=args.n, oracle=not args.no_oracle,
                      threads=args.threads, progress=not args.no_progress, dry_aware=args.dry_aware,
                      search_k=args.search_k, search_budget=args.search_budget)
    files = write_outputs(report, out)
    log.info("wrote %s", ", ".join(files.values()))
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False, default=str))
    else:
        sys.stdout.write(render_markdown(report))
        print(f"\n(written to {out}/)", file=sys.stderr)
    return 0
