"""Pick the decision rule's presence threshold on a validation set: `python scripts/choose_threshold.py MODEL SET
[--thresholds 0.4,0.5,...] [-o OUT.json]`.

For each threshold T (and "none": the likeliest chain), the chain `fxmatch.inference.decide` names on every example
of SET (a `training.make_set` folder, which must not be a set the model is then reported on), rendered through
pedalboard on the example's dry clip: exact chain accuracy, effects named on the examples without effect, the share
of examples whose render is farther from y than x itself (MR-STFT) and the median of that ratio. The model runs
once per example; only the decision changes. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from fxmatch.inference import EstimatorSession, decide
from training.eval_metrics import audio_distances, render_preset
from training.eval_sets import load_set


def sweep(model: str, set_path: str, thresholds: list[float | None]) -> dict:
    """The figures of each threshold on the set (see the module docstring)."""
    session = EstimatorSession(model, providers="cpu", threads=1)
    eval_set = load_set(set_path, session.info, progress=False)
    rate = eval_set.sample_rate
    outputs = []
    for ex in eval_set.examples:
        est = session.estimate_array(ex.y, rate, top=None, source=f"example {ex.index}")
        probs = np.zeros(session.info.n_chains)
        unit = {}
        for c in est.ranked:
            probs[c.chain_index] = c.probability
            unit[c.chain_index] = c.unit_params
        none = audio_distances(ex.x, ex.y, rate)[0]
        outputs.append((ex, probs, unit, none))
    rows = []
    for t in thresholds:
        info = dataclasses.replace(session.info, presence_threshold=t)
        exact, named_clean, worse, ratios = [], [], [], []
        for ex, probs, unit, none in outputs:
            k = decide(info, probs)
            preset = info.decode(k, unit[k])
            d = audio_distances(render_preset(preset, ex.x, rate), ex.y, rate)[0]
            exact.append(tuple(info.chains[k]) == ex.chain)
            if not ex.chain:
                named_clean.append(len(info.chains[k]))
            worse.append(d > none * (1 + 1e-6) + 1e-9)
            if none > 1e-9:
                ratios.append(d / none)
        rows.append({"threshold": t, "exact": float(np.mean(exact)),
                     "named_on_unprocessed": float(np.mean(named_clean)) if named_clean else None,
                     "worse_than_no_estimate": float(np.mean(worse)),
                     "mrstft_vs_no_effect_median": float(np.median(ratios)) if ratios else None})
    return {"model": model, "set": set_path, "n": len(outputs), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("set")
    parser.add_argument("--thresholds", default="none,0.4,0.5,0.6,0.7,0.8")
    parser.add_argument("-o", "--out")
    args = parser.parse_args(argv)
    thresholds = [None if v.strip() == "none" else float(v) for v in args.thresholds.split(",")]
    result = sweep(args.model, args.set, thresholds)
    print("| threshold | exact | named on unprocessed | worse than no estimate | median vs no effect |")
    print("|---|---:|---:|---:|---:|")
    for r in result["rows"]:
        named = "—" if r["named_on_unprocessed"] is None else f"{r['named_on_unprocessed']:.2f}"
        median = "—" if r["mrstft_vs_no_effect_median"] is None else f"{100 * r['mrstft_vs_no_effect_median']:.1f} %"
        print(f"| {r['threshold'] if r['threshold'] is not None else 'likeliest'} | {100 * r['exact']:.1f} % "
              f"| {named} | {100 * r['worse_than_no_estimate']:.1f} % | {median} |")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
