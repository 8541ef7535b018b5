"""Capture on real pedals (issue 26): `python -m benchmarks.bench_pedals [PAIRS] [--every N] [-o FILE]`.

PAIRS is a folder of `python -m training.guitarix` (default runs/real-distorted: Sonic Pi's clean real guitars and
bass through Guitarix's circuit models of a Boss DS-1, an MXR Distortion+ and a Big Muff, run by lv2apply; held out
like every Sonic Pi recording). Each pair is captured as `fxmatch capture DRY WET` does (every chain of the default
vocabulary and the drive's tone stages, no model; one torch thread) and scored two ways: the search's own figure
(its gated MR-STFT on the excerpt, relative to the dry take at the wet take's level: what the user is shown) and the
**whole file**: the chosen preset rendered by pedalboard on the whole aligned dry take, its output level applied,
against the wet take, by the ungated MR-STFT, relative to the dry take at the wet take's RMS level. Also: whether
a Distortion is named, the time per pair. JSON on stdout (and `-o`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch

from benchmarks.bench_capture import _distance
from fxmatch.audibility import render_chain
from fxmatch.audio_io import read_audio, write_text_atomic
from fxmatch.capture import CaptureResult, SearchSettings, capture
from fxmatch.capture.alignment import _shift
from fxmatch.errors import FxmatchInputError
from fxmatch.mono import checked_mono
from training.guitarix import read_pairs

DEFAULT_PAIRS = "runs/real-distorted"


def whole_file_relative(result: CaptureResult, dry: np.ndarray, wet: np.ndarray, rate: int) -> float | None:
    """The chosen preset on the whole aligned `dry` (pedalboard, output level applied) against `wet`, relative to
    `dry` at `wet`'s RMS level (ungated MR-STFT; `[samples]` each); None when `wet` is a plain gain of `dry`."""
    best = result.best
    xa = _shift(dry.astype(np.float64), result.alignment.offset, wet.size).astype(np.float32)
    rendered = render_chain(best.params, xa, rate) * np.float32(10 ** (best.gain_db / 20))
    level = float(np.sqrt(np.mean(wet**2)) / max(np.sqrt(np.mean(xa**2)), 1e-12))
    reference = _distance(xa * np.float32(level), wet)
    return None if reference <= 1e-9 else _distance(rendered, wet) / reference  # None: a plain gain of the dry


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def run(pairs_folder: str = DEFAULT_PAIRS, every: int = 3, limit: int | None = None, seed: int = 0,
        settings: SearchSettings | None = None, progress: Any = None) -> dict[str, Any]:
    """Capture every `every`-th pair of `pairs_folder` (at most `limit`); the summary and one row per pair."""
    torch.set_num_threads(1)
    pairs = read_pairs(pairs_folder)[::every][:limit]
    if not pairs:
        raise FxmatchInputError(f"{pairs_folder}: no pairs")
    rows = []
    for pair in pairs:
        dry, rate = read_audio(pair["dry"])
        wet, wet_rate = read_audio(pair["wet"])
        if wet_rate != rate:
            raise FxmatchInputError(f"{pair['name']}: the takes are at {rate} and {wet_rate} Hz")
        x, y = checked_mono(dry, "dry"), checked_mono(wet, "wet")
        t0, c0 = time.perf_counter(), time.process_time()
        result = capture(x, y, rate, settings=settings, seed=seed)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        best = result.best
        rows.append({"pair": pair["name"], "pedal": pair["pedal"], "strength": pair["strength"],
                     "found": list(best.chain), "distortion_named": "Distortion" in best.chain,
                     "search_relative": round(best.relative, 4),
                     "whole_file_relative": _rounded(whole_file_relative(result, x, y, rate)),
                     "params": {n: {k: round(v, 3) for k, v in p.items()} for n, p in best.params},
                     "gain_db": round(best.gain_db, 2), "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2)})
        if progress is not None:
            progress(rows[-1])
    whole = [r["whole_file_relative"] for r in rows if r["whole_file_relative"] is not None]
    search = [r["search_relative"] for r in rows]
    return {"benchmark": "pedals", "pairs_folder": str(pairs_folder), "every": every, "seed": seed,
            "pairs": len(rows), "distortion_named": sum(r["distortion_named"] for r in rows),
            "whole_file_median": _rounded(statistics.median(whole) if whole else None),
            "whole_file_worst": _rounded(max(whole, default=None)),
            "whole_file_under_60_percent": sum(v <= 0.6 for v in whole),
            "search_median": round(statistics.median(search), 4), "search_worst": round(max(search), 4),
            "search_under_60_percent": sum(v <= 0.6 for v in search),
            "seconds_per_pair_median": round(statistics.median(r["seconds"] for r in rows), 2),
            "cpu_seconds_per_pair_median": round(statistics.median(r["cpu_seconds"] for r in rows), 2),
            "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_pedals", description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="?", default=DEFAULT_PAIRS, help="a python -m training.guitarix folder")
    parser.add_argument("--every", type=int, default=3, help="every Nth pair (default 3: 12 of 35, each pedal and "
                                                             "strength, four guitars and the bass)")
    parser.add_argument("--limit", type=int, help="at most this many pairs")
    parser.add_argument("--seed", type=int, default=0, help="the search's seed (default 0)")
    parser.add_argument("-o", "--output", help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.every < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--every and --limit must be at least 1")

    def show(row: dict[str, Any]) -> None:
        whole = row["whole_file_relative"]
        print(f"{row['pair']}: {' > '.join(row['found']) or 'no effect'}, search {row['search_relative']:.1%}, "
              f"whole file {'-' if whole is None else f'{whole:.1%}'}, {row['seconds']} s", file=sys.stderr,
              flush=True)

    try:
        result = run(args.pairs, args.every, args.limit, args.seed, progress=show)
        text = json.dumps(result, indent=2) + "\n"
        if args.output:
            write_text_atomic(args.output, text)
    except FxmatchInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
