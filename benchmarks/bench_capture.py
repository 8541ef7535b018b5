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
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import torch

from fxmatch.capture import CaptureResult, SearchSettings, capture
from fxmatch.effects import get_spec
from fxmatch.metrics import mrstft_distance
from fxmatch.vocabulary import ChainVocabulary

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


def score(example: dict[str, Any], result: CaptureResult, seconds: float, cpu_seconds: float) -> dict[str, Any]:
    """The figures of one example."""
    x, y = example["x"], example["y"]
    chosen = result.best
    rendered = _render(chosen.chain, [p for _, p in chosen.params], x)
    relative = _distance(rendered, y) / _distance(x, y)
    exact = chosen.chain == example["chain"]
    mae = None
    if exact:
        errs = [abs(get_spec(n).param(k).normalise(v) - get_spec(n).param(k).normalise(t[k]))
                for (n, p), t in zip(chosen.params, example["params"]) for k, v in p.items()]
        mae = float(np.mean(errs))
    return {
        "index": example["index"], "instrument": example["instrument"], "chain": list(example["chain"]),
        "audible_chain": list(example["audible"]), "found": list(chosen.chain), "exact": exact,
        "audible": set(example["audible"]) <= set(chosen.chain) <= set(example["chain"]),
        "offset_error_samples": int(result.alignment.offset - example["offset"]),
        "mrstft_relative": round(relative, 4), "search_relative": round(chosen.relative, 4),
        "param_mae": None if mae is None else round(mae, 4), "gain_db": round(chosen.gain_db, 2),
        "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
    }


def run(quick: bool = False, seconds: float | None = None, progress: Any = None) -> dict[str, Any]:
    """Run the search on 12 held-out examples (4 with `quick`); `seconds`: time budget per file; `progress(row)`
    is called after each example."""
    torch.set_num_threads(1)
    examples = make_examples(4 if quick else 12)
    rows = []
    for ex in examples:
        t0, c0 = time.perf_counter(), time.process_time()
        result = capture(_dry_file(ex["x"], ex["offset"]), ex["y"], SAMPLE_RATE, time_budget=seconds, seed=0)
        rows.append(score(ex, result, time.perf_counter() - t0, time.process_time() - c0))
        if progress is not None:
            progress(rows[-1])
    maes = [r["param_mae"] for r in rows if r["param_mae"] is not None]
    settings = SearchSettings()
    return {
        "examples": len(rows),
        "clip_seconds": CLIP_SECONDS,
        "excerpt_seconds": settings.excerpt_seconds,
        "stages": [{"rate": s.rate, "keep": s.keep, "steps": s.steps} for s in settings.stages],
        "exact_accuracy": round(sum(r["exact"] for r in rows) / len(rows), 3),
        "audible_accuracy": round(sum(r["audible"] for r in rows) / len(rows), 3),
        "mrstft_relative_median": round(statistics.median(r["mrstft_relative"] for r in rows), 4),
        "mrstft_relative_mean": round(statistics.fmean(r["mrstft_relative"] for r in rows), 4),
        "param_mae_exact": None if not maes else round(statistics.fmean(maes), 4),
        "offset_exact": sum(r["offset_error_samples"] == 0 for r in rows),
        "seconds_per_file_median": round(statistics.median(r["seconds"] for r in rows), 2),
        "seconds_per_file_max": round(max(r["seconds"] for r in rows), 2),
        "cpu_seconds_per_file_median": round(statistics.median(r["cpu_seconds"] for r in rows), 2),
        "torch_threads": torch.get_num_threads(),
        "per_example": rows,
    }
