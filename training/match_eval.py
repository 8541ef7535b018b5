"""Tone-match evaluation (issue 23): which distance separates chains across performances, and how well the fit does.

* `compare_distances`: for each pair, the reference chain(x1) against the player's x2 through the same chain
  ("same"), through other chains ("other chain"), and through the same chain with other params ("other params");
  per statistic group of `fxmatch.match` and for the sample-wise MR-STFT, the AUC (the share of (same, other)
  comparisons where "same" is closer).
* `evaluate_match`: the fit (`fxmatch.match.match`) and the blind estimate of the reference on each pair, scored
  as MR-STFT of pedalboard(estimate)(x2) against chain(x2), relative to x2 itself (no effect).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fxmatch.match import GROUP_SCALE, GROUPS, ToneFeatures, group_distances
from training.match_pairs import MatchPair, random_chain, render


def _mrstft(a: np.ndarray, b: np.ndarray) -> float:
    import torch

    from fxmatch.metrics import mrstft_distance

    n = min(a.size, b.size)
    with torch.no_grad():
        return float(mrstft_distance(torch.from_numpy(np.ascontiguousarray(a[:n]))[None, None],
                                     torch.from_numpy(np.ascontiguousarray(b[:n]))[None, None]))


def auc(same: Sequence[float], other: Sequence[float]) -> float:
    """P(a "same" distance < an "other" one) over all (same, other) comparisons of one pair set (ties count 1/2)."""
    s, o = np.asarray(same)[:, None], np.asarray(other)[None, :]
    return float(np.mean((s < o) + 0.5 * (s == o)))


def compare_distances(pairs: Sequence[MatchPair], others: int = 4, seed: int = 0,
                      weights: Mapping[str, float] | None = None, session: Any = None) -> dict[str, Any]:
    """Per pair: group distances (and MR-STFT) of chain(x1) to chain(x2), to `others` other chains on x2 (the empty
    one among them) and to the same chain with `others` other params; AUCs per group, for the weighted sum
    (`weights`, default `fxmatch.match.DEFAULT_WEIGHTS`) and for MR-STFT, paired per reference."""
    from fxmatch.match import DEFAULT_WEIGHTS

    w = dict(DEFAULT_WEIGHTS if weights is None else weights)
    rng = np.random.default_rng(seed)
    rows = []
    for pair in pairs:
        fx = ToneFeatures(pair.sample_rate, session)
        ref = pair.reference()
        f_ref = fx(ref)
        chains_other = [[]] + [random_chain(rng) for _ in range(others - 1)]
        params_other = [[(n, _redraw(n, rng)) for n, _ in pair.chain] for _ in range(others)]
        row: dict[str, Any] = {"name": pair.name, "chain": list(pair.names)}
        for kind, chains in (("same", [pair.chain]), ("chain", chains_other), ("params", params_other)):
            ys = [render(c, pair.x2, pair.sample_rate) for c in chains]
            dists = [group_distances(f_ref, fx(y)) for y in ys]
            row[kind] = {g: [d[g] for d in dists] for g in dists[0]}
            row[kind]["weighted"] = [sum(w[g] * d[g] for g in d) for d in dists]
            row[kind]["mrstft"] = [_mrstft(ref, y) for y in ys]
        rows.append(row)
    keys = [g for g in GROUPS if g in rows[0]["same"]] + ["weighted", "mrstft"]
    result: dict[str, Any] = {"pairs": len(rows), "weights": w, "auc": {}}
    result["typical_other_chain"] = {g: float(np.mean([v for r in rows for v in r["chain"][g]]) * GROUP_SCALE[g])
                                     for g in keys[:-2]}
    for other in ("chain", "params"):
        result["auc"][other] = {k: float(np.mean([auc(r["same"][k], r[other][k]) for r in rows])) for k in keys}
    result["rows"] = rows
    return result


def _redraw(name: str, rng: np.random.Generator) -> dict[str, float]:
    from fxmatch.vocabulary import ChainVocabulary

    return ChainVocabulary.default().effect(name).sample(rng)


def fit_weights(result: Mapping[str, Any], l2: float = 0.05) -> dict[str, float]:
    """Group weights (>= 0, summing to len(GROUPS)) maximising a logistic ranking score of "same" below "other"."""
    import scipy.optimize

    diffs = []
    groups = [g for g in GROUPS if g in result["rows"][0]["same"]]
    for r in result["rows"]:
        for other in ("chain", "params"):
            for j in range(len(r[other]["spectrum"])):
                diffs.append([r[other][g][j] - r["same"][g][0] for g in groups])
    d = np.asarray(diffs)
    scale = d.std(axis=0) + 1e-9

    def loss(theta: np.ndarray) -> float:
        w = np.exp(theta) / scale
        margin = d @ w
        return float(np.mean(np.logaddexp(0.0, -margin)) + l2 * np.sum(theta ** 2))

    theta = scipy.optimize.minimize(loss, np.zeros(len(groups)), method="Nelder-Mead",
                                    options={"maxiter": 4000, "xatol": 1e-4, "fatol": 1e-8}).x
    w = np.exp(theta) / scale
    w = w * len(groups) / w.sum()
    return {g: round(float(v), 3) for g, v in zip(groups, w)}


# ----------------------------------------------------------------------------------------------------------------
# the fit against the blind estimate


def audible_peak(chain: Sequence[tuple[str, Mapping[str, float]]], min_gain_db: float = 6.0) -> dict | None:
    """The chain's PeakFilter params when it has one with |gain| >= `min_gain_db` dB, else None."""
    for name, params in chain:
        if name == "PeakFilter" and abs(params["gain_db"]) >= min_gain_db:
            return dict(params)
    return None


def peak_found(truth: Mapping[str, float], estimate: Sequence[tuple[str, Mapping[str, float]]],
               octaves: float = 1.0 / 3.0) -> bool:
    """Whether `estimate` holds a PeakFilter whose centre is within `octaves` of the true one, same gain sign."""
    for name, params in estimate:
        if name == "PeakFilter":
            off = abs(math.log2(params["cutoff_frequency_hz"] / truth["cutoff_frequency_hz"]))
            if off <= octaves and np.sign(params["gain_db"]) == np.sign(truth["gain_db"]):
                return True
    return False


def evaluate_match(pairs: Sequence[MatchPair], session, time_budget: float | None = None, seed: int = 0,
                   log: Callable[[str], None] | None = None, **match_kwargs: Any) -> dict[str, Any]:
    """The match and the blind estimate on each pair: MR-STFT to the truth relative to no effect, chains, params,
    PeakFilters found, wall time; a summary (medians, shares) over the pairs."""
    from fxmatch.match import match

    rows = []
    for i, pair in enumerate(pairs):
        ref, truth = pair.reference(), pair.truth()
        none = max(_mrstft(pair.x2, truth), 1e-9)
        t0, c0 = time.perf_counter(), time.process_time()
        result = match(ref, pair.x2, pair.sample_rate, session=session, time_budget=time_budget, seed=seed,
                       **match_kwargs)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        blind = result.blind_chain
        est_y = render(result.chain, pair.x2, pair.sample_rate)
        blind_y = render(blind, pair.x2, pair.sample_rate)
        row = {
            "name": pair.name, "truth": [list(x) for x in pair.chain], "true_chain": list(pair.names),
            "match_chain": list(result.chain_names), "blind_chain": [n for n, _ in blind],
            "match": _mrstft(est_y, truth) / none, "blind": _mrstft(blind_y, truth) / none,
            "no_effect_distance": none, "seconds": seconds, "cpu_seconds": cpu, "evaluations": result.evaluations,
            "output_level_db": result.output_level_db,
            "distances": {"match": result.distance, "blind": result.blind_distance,
                          "none": result.no_effect_distance, "truth": _tone_distance(pair, session)},
            "match_params": [[n, p] for n, p in result.chain],
        }
        peak = audible_peak(pair.chain)
        if peak is not None:
            row["peak"] = {"truth": peak, "match": peak_found(peak, result.chain), "blind": peak_found(peak, blind)}
        rows.append(row)
        if log:
            log(f"{i + 1}/{len(pairs)} {pair.name}: {'+'.join(pair.names)} -> match {'+'.join(row['match_chain'])} "
                f"{100 * row['match']:.0f} %, blind {'+'.join(row['blind_chain'])} {100 * row['blind']:.0f} %, "
                f"{seconds:.1f} s ({cpu:.1f} s CPU); tone distance " + ", ".join(f"{k} {v:.2f}" for k, v in row["distances"].items()))
    return {"summary": summarise(rows), "rows": rows}


def _tone_distance(pair: MatchPair, session: Any) -> float:
    """The tone distance the true chain reaches on the take (at the fit's rate): the floor the fit aims at."""
    from fxmatch.match import FIT_RATE, ToneFeatures, feature_distance, prepare
    from fxmatch.refine import resample

    ref, native = prepare(pair.reference(), pair.sample_rate, "reference")
    tru, _ = prepare(pair.truth(), pair.sample_rate, "truth")
    rate = min(native, FIT_RATE)
    fx = ToneFeatures(rate, session)
    return feature_distance(fx(resample(tru[None], native, rate)[0]), fx(resample(ref[None], native, rate)[0]))


def summarise(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Medians and shares over evaluated pairs, overall and per true effect."""
    def part(rs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if not rs:
            return {"pairs": 0}
        m, b = np.array([r["match"] for r in rs]), np.array([r["blind"] for r in rs])
        peaks = [r["peak"] for r in rs if "peak" in r]
        out = {"pairs": len(rs), "match_median": float(np.median(m)), "blind_median": float(np.median(b)),
               "match_beats_blind": float(np.mean(m < b)), "match_worse_than_none": float(np.mean(m > 1.0)),
               "blind_worse_than_none": float(np.mean(b > 1.0)),
               "seconds_median": float(np.median([r["seconds"] for r in rs])),
               "cpu_seconds_median": float(np.median([r.get("cpu_seconds", math.nan) for r in rs])),
               "seconds_max": float(np.max([r["seconds"] for r in rs]))}
        if peaks:
            out["audible_peaks"] = len(peaks)
            out["peaks_found_match"] = float(np.mean([p["match"] for p in peaks]))
            out["peaks_found_blind"] = float(np.mean([p["blind"] for p in peaks]))
        return out

    effects = sorted({n for r in rows for n in r["true_chain"]})
    return {**part(rows), "per_effect": {e: part([r for r in rows if e in r["true_chain"]]) for e in effects}}


# ----------------------------------------------------------------------------------------------------------------
# fxmatch evaluate MODEL SET --match


def parse_pair_set(text: str) -> tuple[str, str, int, int]:
    """'musescore[:N][@SEED]', 'musescore-peak[:N][@SEED]' or 'real[:N]' -> (source, chains, n, seed)."""
    from fxmatch.errors import FxmatchInputError

    head, _, seed_text = text.partition("@")
    name, _, n_text = head.partition(":")
    kinds = {"musescore": ("musescore", "random"), "musescore-peak": ("musescore", "peak"),
             "real": ("real", "random")}
    if name not in kinds:
        raise FxmatchInputError(f"--match: SET must be musescore[:N][@SEED], musescore-peak[:N][@SEED] or real[:N], "
                                f"got {text!r}")
    try:
        n = int(n_text) if n_text else 16
        seed = int(seed_text) if seed_text else 23
    except ValueError:
        raise FxmatchInputError(f"--match: N and SEED must be whole numbers, got {text!r}") from None
    if n < 1:
        raise FxmatchInputError(f"--match: N must be >= 1, got {n}")
    return (*kinds[name], n, seed)


def render_match_markdown(report: Mapping[str, Any]) -> str:
    """The match view as Markdown: the summary, per effect, and one line per pair."""
    s = report["summary"]
    pct = lambda v: "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.0f} %"
    lines = [f"## Tone match: {report['set']} ({s['pairs']} pairs, model {report['model']})", "",
             ("MR-STFT of pedalboard(estimate)(x2) against chain(x2), relative to x2 itself (no effect); the blind "
             "estimate is the model on the reference alone."), "",
             "| | match | blind |", "|---|---|---|",
             f"| median vs no effect | {pct(s['match_median'])} | {pct(s['blind_median'])} |",
             f"| worse than no effect | {pct(s['match_worse_than_none'])} | {pct(s['blind_worse_than_none'])} |",
             f"| pairs where the match beats the blind estimate | {pct(s['match_beats_blind'])} | |"]
    if "audible_peaks" in s:
        lines.append(f"| audible PeakFilters found (centre within 1/3 octave; {s['audible_peaks']}) | "
                     f"{pct(s['peaks_found_match'])} | {pct(s['peaks_found_blind'])} |")
    lines += [f"| wall time per pair (median, max) | {s['seconds_median']:.1f} s, {s['seconds_max']:.1f} s | |",
              f"| CPU time per pair (median) | {s['cpu_seconds_median']:.1f} s | |", "",
              "| true effect | pairs | match | blind | match beats blind | PeakFilters found (match / blind) |",
              "|---|---|---|---|---|---|"]
    for effect, e in s["per_effect"].items():
        peaks = (f"{pct(e['peaks_found_match'])} / {pct(e['peaks_found_blind'])} of {e['audible_peaks']}"
                 if "audible_peaks" in e else "")
        lines.append(f"| {effect} | {e['pairs']} | {pct(e['match_median'])} | {pct(e['blind_median'])} | "
                     f"{pct(e['match_beats_blind'])} | {peaks} |")
    lines += ["", "| pair | true chain | match | blind |", "|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['name']} | {' -> '.join(r['true_chain'])} | {' -> '.join(r['match_chain']) or '-'} "
                     f"{pct(r['match'])} | {' -> '.join(r['blind_chain']) or '-'} {pct(r['blind'])} |")
    return "\n".join(lines) + "\n"


def run_match_view(args: Any, out: Any) -> int:
    """`fxmatch evaluate MODEL SET --match`: evaluate, write match.json and match.md into `out`, print the table."""
    import json
    import sys
    from pathlib import Path

    from fxmatch.audio_io import write_text_atomic
    from fxmatch.errors import FxmatchInputError
    from fxmatch.inference import EstimatorSession
    from fxmatch.threads import set_cpu_threads

    if not str(args.model).endswith(".onnx"):
        raise FxmatchInputError("--match: MODEL must be an exported .onnx model (the match runs the encoder as "
                                "users get it)")
    source, chains, n, seed = parse_pair_set(args.set)
    set_cpu_threads(args.threads)
    session = EstimatorSession(args.model, providers="cpu", threads=args.threads)
    from training.match_pairs import make_pairs

    pairs = make_pairs(source, n if args.n is None else min(n, args.n), seed=seed, chains=chains)
    log = None if args.no_progress else (lambda line: print(line, file=sys.stderr, flush=True))
    report = evaluate_match(pairs, session, log=log)
    report.update({"set": args.set, "model": session.info.label, "source": source, "chains": chains,
                   "seed": seed})
    out = Path(out)
    out.mkdir(exist_ok=True)
    text = json.dumps(report, indent=1, allow_nan=False, default=float)
    write_text_atomic(out / "match.json", text + "\n")
    write_text_atomic(out / "match.md", render_match_markdown(report))
    if args.json:
        print(text)
    else:
        sys.stdout.write(render_match_markdown(report))
        print(f"\n(written to {out}/)", file=sys.stderr)
    return 0
