"""Which tone stage after a drive matches real pedals best for its cost: `scripts/measure_tone_stage.py PAIRS`.

For every pair of `python -m training.guitarix` (a clean real guitar and a Guitarix pedal model's output), each
candidate pedalboard chain (a Distortion, or pedalboard's hard Clipping after the same drive gain, with tone stages
before or after, then an output Gain) is fitted to the pedal's output by
Nelder-Mead (scipy) over its parameters from a few starts (and, for a set with a tone stage, from the Distortion
fit with the tone stage transparent, so a larger set never ends above the smaller one), rendering with pedalboard itself, so the result measures
the *vocabulary* (what the chain can express), not a twin or a search. The distance is fxmatch's MR-STFT on the
loudest 1.5 s, reported relative to no effect two ways: the dry clip as it is against the pedal's output
(`relative`, what the first table of the model card used: a pedal that changes the level then flatters every set,
since each fits an output gain) and the dry clip at the output's RMS level (`level_matched`, the fair one). Writes JSON
(`-o`, default benchmarks/results/tone_stage.json) with each set's median and worst relative distance, the pairs it
gets under 60 %, its parameter count and fit time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pedalboard
import soundfile as sf
import torch
from scipy.optimize import minimize

from fxmatch.metrics import mrstft_distance
from fxmatch.refine import loudest_excerpt
from fxmatch.threads import set_cpu_threads
from training.guitarix import read_pairs

RATE = 44100
EXCERPT_SECONDS = 1.5

# each parameter: (name, low, high, log-scaled)
Param = tuple[str, float, float, bool]
DRIVE: list[Param] = [("drive_db", 0.0, 60.0, False)]
LOWPASS: list[Param] = [("lowpass_hz", 100.0, 16000.0, True)]
HIGHPASS: list[Param] = [("highpass_hz", 20.0, 2000.0, True)]
PEAK: list[Param] = [("peak_hz", 150.0, 6000.0, True), ("peak_db", -15.0, 15.0, False), ("peak_q", 0.4, 4.0, True)]
LADDER: list[Param] = [("ladder_hz", 300.0, 16000.0, True), ("ladder_resonance", 0.0, 0.9, False)]
GAIN: list[Param] = [("gain_db", -40.0, 40.0, False)]


def _board(names: Sequence[str], v: dict[str, float]) -> pedalboard.Pedalboard:
    out = []
    for name in names:
        if name == "Distortion":
            out.append(pedalboard.Distortion(drive_db=v["drive_db"]))
        elif name == "Clipping":  # a hard clipper at full scale after the same drive gain (tanh's hard cousin)
            out += [pedalboard.Gain(gain_db=v["drive_db"]), pedalboard.Clipping(threshold_db=0.0)]
        elif name == "LowpassFilter":
            out.append(pedalboard.LowpassFilter(cutoff_frequency_hz=v["lowpass_hz"]))
        elif name == "HighpassFilter":
            out.append(pedalboard.HighpassFilter(cutoff_frequency_hz=v["highpass_hz"]))
        elif name == "PeakFilter":
            out.append(pedalboard.PeakFilter(cutoff_frequency_hz=v["peak_hz"], gain_db=v["peak_db"], q=v["peak_q"]))
        elif name.startswith("LadderFilter"):
            mode = pedalboard.LadderFilter.Mode.LPF24 if name.endswith("24") else pedalboard.LadderFilter.Mode.LPF12
            out.append(pedalboard.LadderFilter(mode=mode, cutoff_hz=v["ladder_hz"], resonance=v["ladder_resonance"],
                                               drive=1.0))
    out.append(pedalboard.Gain(gain_db=v["gain_db"]))
    return pedalboard.Pedalboard(out)


#: candidate sets: label -> (effects in chain order, their parameters)
SETS: dict[str, tuple[tuple[str, ...], list[Param]]] = {
    "Distortion": (("Distortion",), DRIVE),
    "Distortion > LowpassFilter": (("Distortion", "LowpassFilter"), DRIVE + LOWPASS),
    "Distortion > HighpassFilter > LowpassFilter": (("Distortion", "HighpassFilter", "LowpassFilter"),
                                                    DRIVE + HIGHPASS + LOWPASS),
    "Distortion > PeakFilter": (("Distortion", "PeakFilter"), DRIVE + PEAK),
    "Distortion > LowpassFilter > PeakFilter": (("Distortion", "LowpassFilter", "PeakFilter"), DRIVE + LOWPASS + PEAK),
    "HighpassFilter > Distortion > LowpassFilter": (("HighpassFilter", "Distortion", "LowpassFilter"),
                                                    HIGHPASS + DRIVE + LOWPASS),
    "PeakFilter > Distortion > LowpassFilter": (("PeakFilter", "Distortion", "LowpassFilter"), PEAK + DRIVE + LOWPASS),
    "Clipping": (("Clipping",), DRIVE),
    "Clipping > LowpassFilter": (("Clipping", "LowpassFilter"), DRIVE + LOWPASS),
    "HighpassFilter > Clipping > LowpassFilter": (("HighpassFilter", "Clipping", "LowpassFilter"),
                                                  HIGHPASS + DRIVE + LOWPASS),
    "Distortion > LadderFilter (LPF12)": (("Distortion", "LadderFilter12"), DRIVE + LADDER),
    "Distortion > LadderFilter (LPF24)": (("Distortion", "LadderFilter24"), DRIVE + LADDER),
}


def _values(params: list[Param], u: np.ndarray) -> dict[str, float]:
    u = np.clip(u, 0.0, 1.0)
    out = {}
    for (name, lo, hi, log), ui in zip(params + GAIN, u, strict=True):
        out[name] = float(np.exp(np.log(lo) + ui * (np.log(hi) - np.log(lo))) if log else lo + ui * (hi - lo))
    return out


#: values that make each tone stage transparent (a nested start: a larger set starts where the smaller one ended)
NEUTRAL = {"lowpass_hz": 16000.0, "highpass_hz": 20.0, "peak_hz": 1000.0, "peak_db": 0.0, "peak_q": 1.0,
           "ladder_hz": 16000.0, "ladder_resonance": 0.0}


def _units(params: list[Param], values: dict[str, float]) -> np.ndarray:
    out = []
    for name, lo, hi, log in params + GAIN:
        v = float(np.clip(values[name], lo, hi))
        out.append((np.log(v) - np.log(lo)) / (np.log(hi) - np.log(lo)) if log else (v - lo) / (hi - lo))
    return np.array(out)


def fit_set(dry: np.ndarray, wet: np.ndarray, effects: Sequence[str], params: list[Param],
            starts: int = 2, evals: int = 60, warm: dict[str, float] | None = None) -> tuple[float, dict[str, float]]:
    """(the lowest distance reached, its values) for one set on one aligned pair (float32 `[samples]`); `warm`:
    the Distortion-only fit's values, an extra start with every tone stage transparent."""
    target = torch.from_numpy(wet[None])
    cost: Callable[[np.ndarray], float]

    def cost(u: np.ndarray) -> float:
        v = _values(params, u)
        y = _board(effects, v)(dry[None], RATE)
        return float(mrstft_distance(torch.from_numpy(y.astype(np.float32)), target))

    rng = np.random.default_rng(0)
    best = (np.inf, np.zeros(len(params) + 1))
    if warm is not None and len(params) > 1:
        u = _units(params, {**NEUTRAL, **warm})
        res = minimize(cost, u, method="Nelder-Mead", options={"maxfev": evals * (len(params) + 1), "xatol": 1e-3,
                                                              "fatol": 1e-5})
        best = (float(res.fun), res.x)
    for s in range(starts):
        u0 = np.full(len(params) + 1, 0.5) if s == 0 else rng.uniform(0.1, 0.9, len(params) + 1)
        # output gain start: match RMS of the render at gain 0 dB (the middle of GAIN's range)
        probe = _board(effects, _values(params, u0))(dry[None], RATE)
        ratio_db = 20 * np.log10(np.sqrt(np.mean(wet ** 2)) / max(np.sqrt(np.mean(probe ** 2)), 1e-9))
        u0[-1] = np.clip(0.5 + ratio_db / 80.0, 0, 1)
        res = minimize(cost, u0, method="Nelder-Mead",
                       options={"maxfev": evals * (len(params) + 1), "xatol": 1e-3, "fatol": 1e-5,
                            })
        if res.fun < best[0]:
            best = (float(res.fun), res.x)
    return best[0], _values(params, best[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", type=Path, help="a folder written by python -m training.guitarix")
    parser.add_argument("-o", "--output", type=Path, default=Path("benchmarks/results/tone_stage.json"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    parser.add_argument("--every", type=int, default=1, help="every Nth pair (a spread over recordings and pedals)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sets", help="comma-separated labels of SETS to fit (default: all; Distortion is always "
                                       "fitted first, as the others' warm start)")
    args = parser.parse_args(argv)
    chosen = SETS if args.sets is None else {k: v for k, v in SETS.items()
                                             if k == "Distortion" or k in args.sets.split(",")}
    if args.sets is not None and len(chosen) != len(set(args.sets.split(",")) | {"Distortion"}):
        parser.error(f"--sets: unknown label among {args.sets!r}; known: {', '.join(SETS)}")
    set_cpu_threads(args.threads)
    pairs = read_pairs(args.pairs)[:: args.every][: args.limit]
    length = round(EXCERPT_SECONDS * RATE)
    rows = []
    for pair in pairs:
        dry, _ = sf.read(pair["dry"], dtype="float32")
        wet, _ = sf.read(pair["wet"], dtype="float32")
        lag = int(pair["latency_samples"])
        dry = np.concatenate([np.zeros(lag, np.float32), dry[: dry.size - lag]]) if lag > 0 else dry
        start = loudest_excerpt(wet, length, length // 8)
        dry, wet = dry[start : start + length].copy(), wet[start : start + length].copy()
        none = float(mrstft_distance(torch.from_numpy(dry[None]), torch.from_numpy(wet[None])))
        # no effect at the wet take's level: the output level is fitted by every set, so this is the fair reference
        leveled = dry * np.float32(np.sqrt(np.mean(wet**2)) / max(np.sqrt(np.mean(dry**2)), 1e-12))
        none_level = float(mrstft_distance(torch.from_numpy(leveled[None]), torch.from_numpy(wet[None])))
        row = {"pair": pair["name"], "pedal": pair["pedal"], "strength": pair["strength"], "no_effect": none,
               "no_effect_level_matched": none_level, "sets": {}}
        warm = None
        for label, (effects, params) in chosen.items():
            t0 = time.perf_counter()
            d, values = fit_set(dry, wet, effects, params, warm=warm)
            if label == "Distortion":
                warm = values
            row["sets"][label] = {"relative": d / none, "level_matched": d / none_level, "values": values,
                                  "seconds": time.perf_counter() - t0}
        rows.append(row)
        print(pair["name"], " ".join(f"{r['relative']:.2f}/{r['level_matched']:.2f}" for r in row["sets"].values()),
              flush=True)
    summary = {}
    for label, (effects, params) in chosen.items():
        rel = np.array([r["sets"][label]["relative"] for r in rows])
        lm = np.array([r["sets"][label]["level_matched"] for r in rows])
        summary[label] = {"n_params": len(params) + 1, "median_relative": float(np.median(rel)),
                          "worst_relative": float(rel.max()), "under_60_percent": int((rel <= 0.6).sum()),
                          "median_level_matched": float(np.median(lm)), "worst_level_matched": float(lm.max()),
                          "under_60_percent_level_matched": int((lm <= 0.6).sum()),
                          "pairs": len(rel), "median_fit_seconds": float(np.median(
                              [r["sets"][label]["seconds"] for r in rows]))}
    out = {"benchmark": "tone_stage", "pairs_folder": str(args.pairs), "excerpt_seconds": EXCERPT_SECONDS,
           "summary": summary, "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
