"""`fxmatch bench capture`: the chain search with the dry signal known (`fxmatch.capture`) on held-out examples.

Each example: a held-out synthesised instrument clip (training.sources.SynthSource, split "heldout", 44.1 kHz,
2 s), a chain drawn uniformly from the 63 non-empty chains of the default vocabulary with parameters drawn by
`EffectSpec.sample` (the training distribution), rendered by pedalboard; the dry file handed to the search starts
up to 30 ms before the wet one (a random offset the search must find; the wet file starts where pedalboard's render
did, so the twins' LFOs can start in phase with it). Reported per example and
overall: exact chain accuracy, "audible" accuracy (the chain found holds every audible effect of the true chain and
nothing else; an effect is inaudible when removing it changes the target by less than AUDIBLE_RELATIVE of the
no-effect MR-STFT distance), the offset error, MR-STFT of
the chosen preset rendered by pedalboard relative to no effect (whole clip, aligned with the true offset), the
normalised parameter error on exact hits, and the wall and CPU time per file (1 torch thread; set
NUMBA_NUM_THREADS=1 too for a one-core figure).

With `k` (a list, e.g. 4, 16, 64) the candidates are the shipped (or given) model's k likeliest chains for the
wet clip and their sub-chains, started from its params (what `fxmatch estimate --dry` does), one run per k on the
same examples: the time/accuracy curve. `set_path` takes the examples from a data set folder
(`python -m training.make_set`, e.g. sampled instruments) instead of synthesising them.
`python -m benchmarks.bench_capture --k 4,16,64 [--n N] [--set FOLDER] [-o FILE]` runs it from the shell.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from typing import Any

import numpy as np
import torch

from fxmatch.capture import CaptureResult, SearchSettings, capture
from fxmatch.effects import get_spec
from fxmatch.errors import FxmatchInputError
from fxmatch.metrics import mrstft_distance
from fxmatch.vocabulary import ChainVocabulary

log = logging.getLogger("fxmatch.bench.capture")

SAMPLE_RATE = 44100
CLIP_SECONDS = 2.0
MAX_OFFSET_MS = 30.0
#: an effect is inaudible when removing it moves the target by less than this fraction of the no-effect distance
AUDIBLE_RELATIVE = 0.05


def _render(chain: tuple[str, ...], params: list[dict[str, float]], x: np.ndarray) -> np.ndarray:
    """`x` `[samples]` through pedalboard's chain (float32 `[samples]`)."""
    import pedalboard

    board = pedalboard.Pedalboard([get_spec(n).pedalboard_plugin(p) for n, p in zip(chain, params)])
    return board(np.ascontiguousarray(x[None], dtype=np.float32), SAMPLE_RATE)[0]


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """MR-STFT distance of two `[samples]` arrays (the project's metric)."""
    return float(mrstft_distance(torch.as_tensor(a, dtype=torch.float32)[None],
                                 torch.as_tensor(b, dtype=torch.float32)[None]))


def audible_chain(chain: tuple[str, ...], params: list[dict[str, float]], x: np.ndarray, y: np.ndarray) -> tuple:
    """`chain` without the effects whose removal changes `y` by less than AUDIBLE_RELATIVE of the no-effect distance."""
    base = _distance(x, y)
    kept = []
    for i, name in enumerate(chain):
        rest = [j for j in range(len(chain)) if j != i]
        without = _render(tuple(chain[j] for j in rest), [params[j] for j in rest], x)
        if _distance(without, y) >= AUDIBLE_RELATIVE * base:
            kept.append(name)
    return tuple(kept)


def make_examples(n: int, seed: int = 11) -> list[dict[str, Any]]:
    """`n` held-out examples: dry, wet, the true chain and params, the offset of the dry file against the wet."""
    from training.sources import SynthSource

    source = SynthSource(seed=seed, split="heldout", sample_rate=SAMPLE_RATE, clip_seconds=CLIP_SECONDS)
    vocab = ChainVocabulary.default()
    rng = np.random.default_rng(seed)
    chains = [c for c in vocab.chains if c]
    out = []
    for i in range(n):
        x = source.clip(i).astype(np.float32)
        chain = tuple(chains[int(rng.integers(len(chains)))])
        params = [get_spec(name).sample(rng) for name in chain]
        y = _render(chain, params, x)
        offset = -int(rng.uniform(0.0, MAX_OFFSET_MS) * SAMPLE_RATE / 1000)
        out.append({"index": i, "instrument": source.instrument(i), "x": x, "y": y, "chain": chain,
                    "params": params, "offset": offset, "audible": audible_chain(chain, params, x, y)})
    return out


def _dry_file(x: np.ndarray, offset: int) -> np.ndarray:
    """The dry recording as handed to the search: `x` moved so that `wet[n] = x_file[n - offset]`."""
    if offset >= 0:
        return x[offset:]
    return np.concatenate([np.zeros(-offset, dtype=x.dtype), x])


def identification_alone(example: dict[str, Any], ident: Any) -> dict[str, Any]:
    """The chain named by the identification's evidence alone (`Identification.chain`), each effect at its read,
    rendered by pedalboard from the dry take as given at the wet take's RMS level: its figures."""
    if ident is None:
        return {}
    x, y = example["x"] * example.get("scale", 1.0), example["y"]
    chain = ident.chain()
    params = [ident.reads[n].params for n in chain]
    out = _render(chain, params, x)
    gain = math.sqrt(float(y @ y) / max(float(out @ out), 1e-30))
    base = _distance(x, y)
    rel = None if base <= 1e-9 else _distance(gain * out, y) / base
    return {"ident_chain": list(chain), "ident_exact": chain == example["chain"],
            "ident_relative": None if rel is None else round(rel, 4), "ident_seconds": round(ident.seconds, 2),
            "ident_evidence": {n: round(v, 3) for n, v in ident.evidence().items()}}


def score(example: dict[str, Any], result: CaptureResult, seconds: float, cpu_seconds: float) -> dict[str, Any]:
    """The figures of one example (the preset rendered from the dry take as given, its output level applied)."""
    x, y = example["x"] * example.get("scale", 1.0), example["y"]
    chosen = result.best
    rendered = _render(chosen.chain, [p for _, p in chosen.params], x) * 10 ** (chosen.gain_db / 20)
    base = _distance(x, y)
    relative = None if base <= 1e-9 else _distance(rendered, y) / base  # None: the target is the dry take
    exact = chosen.chain == example["chain"]
    mae = None
    if exact:
        errs = [abs(get_spec(n).param(k).normalise(v) - get_spec(n).param(k).normalise(t[k]))
                for (n, p), t in zip(chosen.params, example["params"]) for k, v in p.items()]
        mae = float(np.mean(errs)) if errs else None  # None: the empty chain has no params
    return {
        "index": example["index"], "instrument": example["instrument"], "chain": list(example["chain"]),
        "audible_chain": list(example["audible"]), "found": list(chosen.chain), "exact": exact,
        "audible": set(example["audible"]) <= set(chosen.chain) <= set(example["chain"]),
        "offset_error_samples": int(result.alignment.offset - example["offset"]),
        "mrstft_relative": None if relative is None else round(relative, 4), "search_relative": round(chosen.relative, 4),
        "take_relative": None if result.take_relative is None else round(result.take_relative, 4),
        "param_mae": None if mae is None else round(mae, 4), "no_effect_distance": round(base, 6), "gain_db": round(chosen.gain_db, 2),
        "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
        **identification_alone(example, result.identification),
    }


def examples_from_set(path: str, n: int, seed: int = 11, dry_offset_ms: float | None = None,
                      dry_scale: float = 1.0) -> list[dict[str, Any]]:
    """The first `n` examples of a data set folder (mono, SAMPLE_RATE Hz), with random offsets as `make_examples`
    (`dry_offset_ms`: the dry take that much late instead; `dry_scale`: at that level; issue 22's "23 ms late at
    0.7x")."""
    from training.data import DiskDataset

    disk = DiskDataset(path)
    if disk.sample_rate != SAMPLE_RATE:
        raise ValueError(f"{path}: {disk.sample_rate} Hz; the benchmark runs at {SAMPLE_RATE} Hz")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(min(n, len(disk))):
        ex = disk.example(i)
        x, y = np.asarray(ex["x"], np.float32), np.asarray(ex["y"], np.float32)
        chain, params = tuple(ex["chain"]), [dict(u) for u in ex["units"]]
        offset = -int(rng.uniform(0.0, MAX_OFFSET_MS) * SAMPLE_RATE / 1000)
        if dry_offset_ms is not None:
            offset = -round(dry_offset_ms * SAMPLE_RATE / 1000)
        out.append({"index": i, "instrument": "set", "x": x, "y": y, "chain": chain, "params": params,
                    "offset": offset, "audible": audible_chain(chain, params, x, y), "scale": float(dry_scale)})
    return out


def _candidates(session: Any, y: np.ndarray, k: int | None) -> list | None:
    """The model's `k` likeliest chains for `y` and their sub-chains (None when `k` is None: every chain)."""
    from fxmatch.capture import candidates_from_ranked

    if k is None:
        return None
    estimate = session.estimate_array(y, SAMPLE_RATE, top=None, source="wet clip")
    return candidates_from_ranked(estimate.ranked, k)


def check_options(k: Any = None, model: str | None = None, **_: Any) -> None:
    """FxmatchInputError (exit 2) for options that would be ignored: `model` is read only with `k`."""
    if model is not None and k is None:
        raise FxmatchInputError("bench capture: --model is used only with --k (the model's k likeliest chains); "
                                "add --k, e.g. --k 4,16,64")


def run(quick: bool = False, seconds: float | None = None, progress: Any = None, k: Any = None,
        model: str | None = None, n: int | None = None, set_path: str | None = None,
        dry_offset_ms: float | None = None, dry_scale: float = 1.0, identify: bool = True,
        identify_only: bool = False, search_seed: int = 0) -> dict[str, Any]:
    """Run the search on 12 held-out examples (4 with `quick`, `n` when given); `seconds`: time budget per file;
    `k`: one k or a list of them (the model's k likeliest chains, see the module docstring; None: every chain
    without the model); `search_seed`: the search's own seed (its random starts; the examples stay the same);
    `progress(row)` is called after each example."""
    check_options(k=k, model=model)
    torch.set_num_threads(1)
    count = n if n is not None else 4 if quick else 12
    ks = [k] if k is None or isinstance(k, int) else list(k)
    session = None
    if any(v is not None for v in ks):
        from fxmatch import shipped
        from fxmatch.inference import EstimatorSession

        session = EstimatorSession(shipped.model_path(model), providers="cpu", threads=1)
    log.info("making %d example%s (%s)", count, "" if count == 1 else "s", set_path or "synthesised, held-out")
    examples = (examples_from_set(set_path, count, dry_offset_ms=dry_offset_ms, dry_scale=dry_scale) if set_path
                else make_examples(count))
    if identify_only:
        return {**run_identification(examples, progress), "source": set_path or "synth"}
    settings = SearchSettings(identify=identify)
    runs = [_run_one(examples, seconds, progress, v, session, settings, search_seed) for v in ks]
    out = runs[0] if len(runs) == 1 else {"curve": [{key: r[key] for key in _CURVE_KEYS} for r in runs],
                                          "runs": runs}
    out["source"] = set_path or "synth (training.sources.SynthSource, heldout)"
    if session is not None:
        out["model"] = session.info.label
    return out


_CURVE_KEYS = ("k", "examples", "exact_accuracy", "audible_accuracy", "mrstft_relative_median", "mrstft_relative_mean",
               "param_mae_exact", "seconds_per_file_median", "seconds_per_file_max", "cpu_seconds_per_file_median")


def run_identification(examples: list[dict[str, Any]], progress: Any = None) -> dict[str, Any]:
    """The identification alone (no twin, no search): each example aligned (`capture.align`), read
    (`identify.identify` from the wet take's start), the evidence's chain rendered at its reads: the summary."""
    from fxmatch.capture.alignment import _shift, align
    from fxmatch.identify import identify

    rows = []
    for ex in examples:
        t0 = time.perf_counter()
        dry = _dry_file(ex["x"] * ex.get("scale", 1.0), ex["offset"])
        al = align(dry, ex["y"], SAMPLE_RATE)
        ident = identify(_shift(dry.astype(np.float64), al.offset, ex["y"].size), ex["y"], SAMPLE_RATE)
        row = {"index": ex["index"], "chain": list(ex["chain"]), "found": [], "exact": False,
               "mrstft_relative": None, "seconds": round(time.perf_counter() - t0, 2),
               "offset_error_samples": int(al.offset - ex["offset"]), **identification_alone(ex, ident)}
        row["found"], row["exact"], row["mrstft_relative"] = row["ident_chain"], row["ident_exact"], row[
            "ident_relative"]
        rows.append(row)
        if progress is not None:
            progress({**row, "k": None, "audible": None})
    rels = [r["mrstft_relative"] for r in rows if r["mrstft_relative"] is not None]
    return {"mode": "identification alone", "examples": len(rows),
            "exact_accuracy": round(sum(r["exact"] for r in rows) / len(rows), 3),
            "mrstft_relative_median": round(statistics.median(rels), 4) if rels else None,
            "worse_than_no_effect": sum(1 for v in rels if v > 1.0),
            "dry_targets": sum(1 for r in rows if r["mrstft_relative"] is None and not r["chain"]),
            "dry_targets_no_effect": sum(1 for r in rows if not r["chain"] and not r["found"]),
            "seconds_per_file_median": round(statistics.median(r["seconds"] for r in rows), 2),
            "per_example": rows}


def _run_one(examples: list[dict[str, Any]], seconds: float | None, progress: Any, k: int | None,
             session: Any, settings: SearchSettings | None = None, search_seed: int = 0) -> dict[str, Any]:
    """One search per example with the candidates of `k` (the encoder's time included); the summary."""
    settings = settings or SearchSettings()
    rows = []
    for i, ex in enumerate(examples):
        log.info("%sexample %d of %d: searching", "" if k is None else f"k={k}, ", i + 1, len(examples))
        t0, c0 = time.perf_counter(), time.process_time()
        cands = _candidates(session, ex["y"], k)
        result = capture(_dry_file(ex["x"] * ex.get("scale", 1.0), ex["offset"]), ex["y"], SAMPLE_RATE, cands,
                         settings=settings, time_budget=seconds, seed=search_seed)
        rows.append({**score(ex, result, time.perf_counter() - t0, time.process_time() - c0), "k": k,
                     "chains": result.n_candidates})
        if progress is not None:
            progress(rows[-1])
    maes = [r["param_mae"] for r in rows if r["param_mae"] is not None]
    rels = [r["mrstft_relative"] for r in rows if r["mrstft_relative"] is not None]
    irels = [r["ident_relative"] for r in rows if r.get("ident_relative") is not None]
    return {
        "k": k,
        "examples": len(rows),
        "clip_seconds": round(examples[0]["y"].size / SAMPLE_RATE, 3),
        "excerpt_seconds": settings.excerpt_seconds,
        "stages": [{"rate": s.rate, "keep": s.keep, "steps": s.steps, "seconds": s.seconds} for s in settings.stages],
        "tolerance": settings.tolerance,
        "prior_weight": settings.prior_weight,
        "search_seed": search_seed,
        "exact_accuracy": round(sum(r["exact"] for r in rows) / len(rows), 3),
        "audible_accuracy": round(sum(r["audible"] for r in rows) / len(rows), 3),
        "mrstft_relative_median": round(statistics.median(rels), 4) if rels else None,
        "mrstft_relative_mean": round(statistics.fmean(rels), 4) if rels else None,
        "mrstft_relative_sum_ratio": round(sum(r["mrstft_relative"] * r["no_effect_distance"] for r in rows
                                               if r["mrstft_relative"] is not None)
                                           / max(sum(r["no_effect_distance"] for r in rows), 1e-12), 4),
        "worse_than_no_effect": sum(1 for v in rels if v > 1.0),
        "dry_targets": sum(1 for r in rows if r["mrstft_relative"] is None),
        "dry_targets_no_effect": sum(1 for r in rows if r["mrstft_relative"] is None and not r["found"]),
        "param_mae_exact": None if not maes else round(statistics.fmean(maes), 4),
        "offset_exact": sum(r["offset_error_samples"] == 0 for r in rows),
        "seconds_per_file_median": round(statistics.median(r["seconds"] for r in rows), 2),
        "seconds_per_file_max": round(max(r["seconds"] for r in rows), 2),
        "cpu_seconds_per_file_median": round(statistics.median(r["cpu_seconds"] for r in rows), 2),
        "identify": settings.identify,
        "ident_exact_accuracy": round(sum(bool(r.get("ident_exact")) for r in rows) / len(rows), 3),
        "ident_relative_median": round(statistics.median(irels), 4) if irels else None,
        "ident_seconds_median": round(statistics.median(r.get("ident_seconds", 0.0) for r in rows), 2),
        "torch_threads": torch.get_num_threads(),
        "per_example": rows,
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.bench_capture [--k 4,16,64] [--n N] [--set FOLDER] [--seconds S] [-o FILE]`."""
    import argparse
    import json
    import sys

    from benchmarks.cli import _k_list, _positive_int, positive_seconds
    from benchmarks.cli import check_options as check_all

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_capture", description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=_k_list, help="comma-separated k values (the model's k likeliest chains); "
                                                  "default: every chain without the model")
    parser.add_argument("--n", type=_positive_int, help="examples (default 12)")
    parser.add_argument("--set", dest="set_path", help="a data set folder instead of synthesised examples")
    parser.add_argument("--seconds", type=positive_seconds, help="time budget per file (s, > 0)")
    parser.add_argument("--model", help="the ONNX model for --k (default: the shipped one)")
    parser.add_argument("--dry-late-ms", type=float, help="with --set: the dry take this late (ms) instead of a random "
                                                          "offset")
    parser.add_argument("--dry-scale", type=float, default=1.0, help="with --set: the dry take at this level (x)")
    parser.add_argument("--no-identify", action="store_true", help="the search without the identification stage")
    parser.add_argument("--identify-only", action="store_true", help="the identification alone: no twins, no search")
    parser.add_argument("--search-seed", type=int, default=0, help="the search's seed (its random starts; default 0)")
    parser.add_argument("-o", "--output", help="also write the JSON here")
    args = parser.parse_args(argv)
    ks = args.k
    options = {"k": ks, "model": args.model, "seconds": args.seconds, "set_path": args.set_path}
    try:  # every option checked before the work (minutes), as `fxmatch bench capture` does
        check_all("capture", {key: v for key, v in options.items() if v is not None}, args.output,
                  sys.modules[__name__])
    except FxmatchInputError as exc:
        parser.error(str(exc))

    def show(row: dict[str, Any]) -> None:
        print(f"k={row['k']} #{row['index']} {'>'.join(row['chain'])} -> {'>'.join(row['found'])} "
              f"exact={row['exact']} audible={row['audible']} rel={row['mrstft_relative']} {row['seconds']} s "
              f"ident={'>'.join(row.get('ident_chain', []))} irel={row.get('ident_relative')}",
              file=sys.stderr, flush=True)

    result = run(seconds=args.seconds, progress=show, k=ks, model=args.model, n=args.n, set_path=args.set_path,
                 dry_offset_ms=args.dry_late_ms, dry_scale=args.dry_scale, identify=not args.no_identify,
                 identify_only=args.identify_only, search_seed=args.search_seed)
    text = json.dumps(result, indent=2) + "\n"
    if args.output:
        from fxmatch.audio_io import write_text_atomic

        write_text_atomic(args.output, text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
