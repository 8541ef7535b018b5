"""Does the tone match gain from hearing more of each take? `python scripts/measure_match_seconds.py [--pairs 24]
[--take-seconds 8] [--fit-seconds 4,8] [--chains random,peak] [-o OUT.json]`.

Development pairs of MuseScore phrases (`training.match_pairs.make_pairs`, seed 5) whose two performances last
`--take-seconds` each; on the same pairs, `fxmatch.match.match` hears the loudest S seconds of each take for every S
of `--fit-seconds` (the blind estimate of the reference too: it reads the same excerpt), and the result is scored on
the whole take as `fxmatch evaluate --match` scores it (MR-STFT of the player's take through the estimate against the
truth, relative to no effect). Writes the summaries as JSON (default benchmarks/results/match_seconds.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fxmatch.inference import EstimatorSession
from fxmatch.shipped import default_model
from fxmatch.threads import set_cpu_threads
from training.match_eval import evaluate_match
from training.match_pairs import make_pairs

DEV_SEED = 5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--take-seconds", type=float, default=8.0)
    parser.add_argument("--fit-seconds", default="4,8")
    parser.add_argument("--chains", default="random,peak")
    parser.add_argument("-o", "--out", default="benchmarks/results/match_seconds.json")
    args = parser.parse_args(argv)
    set_cpu_threads(1)
    session = EstimatorSession(default_model(), providers="cpu", threads=1)
    result: dict = {"pairs": args.pairs, "take_seconds": args.take_seconds, "seed": DEV_SEED, "runs": {}}
    for chains in args.chains.split(","):
        pairs = make_pairs("musescore", args.pairs, seed=DEV_SEED, seconds=args.take_seconds, chains=chains)
        for fit in (float(v) for v in args.fit_seconds.split(",")):
            summary = evaluate_match(pairs, session, seed=0, seconds=fit)["summary"]
            result["runs"].setdefault(chains, {})[f"{fit:g} s"] = {k: v for k, v in summary.items()
                                                                  if k != "per_effect"}
            print(chains, f"{fit:g} s", json.dumps(result["runs"][chains][f"{fit:g} s"]), flush=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
