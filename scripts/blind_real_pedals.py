"""Does a model name Distortion, blind, on real pedals' outputs? `python scripts/blind_real_pedals.py MODEL [PAIRS]`.

PAIRS is a folder of `python -m training.guitarix` (default runs/real-distorted: Sonic Pi's clean guitars and bass
through Guitarix's circuit models of real drive pedals). Each pair's wet take is estimated as `fxmatch estimate`
does (the model's decision rule); prints one line per pair (name | chain named | Distortion's presence probability)
and how many name Distortion. Only the wet takes are read: the blind view of the card's real-pedal row.
"""

from __future__ import annotations

import argparse
import sys

from fxmatch.errors import FxmatchInputError
from fxmatch.inference import EstimatorSession
from training.guitarix import read_pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="exported model (.onnx)")
    parser.add_argument("pairs", nargs="?", default="runs/real-distorted", help="python -m training.guitarix folder")
    args = parser.parse_args(argv)
    try:
        session = EstimatorSession(args.model, threads=1)
        pairs = read_pairs(args.pairs)
    except FxmatchInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    named = 0
    for pair in pairs:
        est = session.estimate_file(pair["wet"])
        presence = (est.presence or {}).get("Distortion")
        named += "Distortion" in est.best.chain
        shown = "—" if presence is None else f"{presence:.2f}"
        print(f"{pair['name']} | {est.best.label} | {shown}", flush=True)
    print(f"Distortion named {named} of {len(pairs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
