"""Which tone distance ranks chains best across two performances (issue 23): `python scripts/measure_tone_distance.py
[-o OUT.json] [--train-pairs 200] [--dev-pairs 48] [--match today,learned,embedding] [--no-ranking]`.

Around each pair's true chain (the reference is chain(x1), the player's take x2, the truth chain(x2); two phrases of
one instrument) the script renders candidates on x2: the truth, no effect, the truth's params blended 10-75 % towards
a random draw, the truth without each of its effects, three random chains and a random bell. Each candidate gets its
true score (MR-STFT to chain(x2) relative to x2's) and, per statistic of `fxmatch.match.ToneFeatures` and per value
of the encoder's pooled features (`Encoder.features`, the 512 values before its heads, from the v7 checkpoint,
normalised: the issue's embedding option), its absolute difference to the reference's. Distances compared:

* `today`: `fxmatch.match.feature_distance` with its default group weights;
* `embedding`, `today+embedding`: the pooled features' L1 distance alone, and added with weight 1;
* `learned (l2)`: one weight per value of today's groups, fitted (a logistic ranking loss over candidate pairs
  whose true scores differ by more than 15 %, pulled towards today's weights by `l2`) on pairs of phrases from
  the training soundfont (FluidR3), never from MuseScore General, which the development and held-out pairs play.

Scored on the development pairs (`musescore:N@5`, random chains and one audible PeakFilter): the share of candidate
pairs ranked as their true scores are (weighted by how far apart those are), how often the truth is closer than no
effect, and the true score of the candidate each distance puts first. With `--match`, `fxmatch.match.match` runs
on the development pairs with today's distance, the learned weights (`weights=`) and/or the pooled features added
to the encoder's groups with weight 1 (`embedding`: for this run only, `ToneFeatures.encoder_groups` is wrapped
to add them, as an extra ONNX output would). Writes JSON (`-o`, default benchmarks/results/tone_distance.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

import fxmatch.match as match_module
from fxmatch.inference import EstimatorSession
from fxmatch.match import DEFAULT_WEIGHTS, GROUP_SCALE, GROUPS, ToneFeatures
from fxmatch.shipped import default_model
from fxmatch.threads import set_cpu_threads
from fxmatch.vocabulary import ChainVocabulary
from training.checkpoint import load_checkpoint
from training.match_eval import _mrstft, evaluate_match
from training.match_pairs import (
    SAMPLE_RATE,
    MatchPair,
    audible_chain,
    make_pairs,
    musescore_phrases,
    peak_chain,
    random_chain,
    render,
)
from training.model import Encoder

TRAIN_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
TRAIN_SEED = 777
DEV_SEED = 5
BLENDS = (0.1, 0.2, 0.35, 0.5, 0.75)
#: candidate pairs whose true scores differ by less than this ratio are not ranked
CLEAR_RATIO = 0.85
EMBEDDING_SCALE = 0.0086  # the pooled features' typical L1 distance (per value) to another chain, dev pairs
#: each group's typical distance, the pooled features' among them
SCALES = {**GROUP_SCALE, "embedding": EMBEDDING_SCALE}


def training_pairs(n: int) -> list[MatchPair]:
    """`n` pairs of FluidR3 phrases (a training soundfont), chains alternately random and one audible bell."""
    x1, x2, names = musescore_phrases(n, seed=TRAIN_SEED, soundfont=TRAIN_SOUNDFONT)
    rng = np.random.default_rng(TRAIN_SEED)
    return [MatchPair(x1[i], x2[i], audible_chain(rng, random_chain if i % 2 == 0 else peak_chain, (x1[i], x2[i])),
                      SAMPLE_RATE, names[i]) for i in range(n)]


class PooledFeatures:
    """The v7 encoder's pooled features (`[512]`, unit L2 norm) of a recording, averaged over its windows."""

    def __init__(self, session: EstimatorSession):
        ckpt = load_checkpoint(Path(default_model()).with_name("fxmatch-default-v7.pt"))
        self.encoder = Encoder.from_config(ckpt["model_config"])
        self.encoder.load_state_dict(ckpt["model"])
        self.encoder.eval()
        self.window = session.info.window_samples

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = np.asarray(x, dtype=np.float32)
        z = np.pad(z, (0, max(0, self.window - z.size)))
        starts = np.linspace(0, z.size - self.window, math.ceil(z.size / self.window)).round().astype(int)
        with torch.no_grad():
            h = self.encoder.features(torch.from_numpy(np.stack([z[s : s + self.window] for s in starts])))
        h = h.numpy().mean(axis=0)
        return h / (np.linalg.norm(h) + 1e-9)


def candidate_rows(pairs: list[MatchPair], tone: ToneFeatures, pooled: PooledFeatures, seed: int) -> list[dict]:
    """Per pair: the candidates' kinds, true scores `[cands]` and absolute differences `[cands, values]`."""
    vocab = ChainVocabulary.default()
    rng = np.random.default_rng(seed)

    def blend(chain, s):
        out = []
        for name, p in chain:
            q = vocab.effect(name).sample(rng)
            out.append((name, {k: (1 - s) * p[k] + s * q[k] for k in p}))
        return out

    rows = []
    for pair in pairs:
        ref, truth = pair.reference(), pair.truth()
        f_ref, e_ref = tone(ref), pooled(ref)
        none = max(_mrstft(pair.x2, truth), 1e-9)
        c = pair.chain
        cands = [("truth", c), ("none", [])] + [(f"blend {s}", blend(c, s)) for s in BLENDS]
        cands += [("drop one", [e for e in c if e is not d]) for d in c] if len(c) > 1 else []
        cands += [("other chain", random_chain(rng)) for _ in range(3)]
        cands += [("random bell", [("PeakFilter", vocab.effect("PeakFilter").sample(rng))])]
        diffs, scores = [], []
        for _, chain in cands:
            y = render(chain, pair.x2, pair.sample_rate)
            f = tone(y)
            diffs.append(np.concatenate([np.abs(f_ref.groups[g] - f.groups[g]) for g in GROUPS]
                                        + [np.abs(e_ref - pooled(y))]))
            scores.append(_mrstft(y, truth) / none)
        rows.append({"kinds": [k for k, _ in cands], "scores": np.asarray(scores), "diffs": np.asarray(diffs)})
    return rows


def group_slices(sizes: dict[str, int]) -> dict[str, slice]:
    """Where each group's values sit in a row's difference vector."""
    out, start = {}, 0
    for g, n in sizes.items():
        out[g] = slice(start, start + n)
        start += n
    return out


def value_weights(sizes: dict[str, int], weights: dict[str, float]) -> np.ndarray:
    """One weight per value reproducing `feature_distance` with group `weights` (the embedding's scale its own)."""
    return np.concatenate([np.full(n, weights.get(g, 0.0) / (SCALES[g] * n)) for g, n in sizes.items()])


def ranked_pairs(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Difference vectors (worse minus better candidate) of clearly ordered candidate pairs, and their weights."""
    x, w = [], []
    for r in rows:
        s, d = r["scores"], r["diffs"]
        for a in range(s.size):
            for b in range(s.size):
                if s[a] < s[b] * CLEAR_RATIO:
                    x.append(d[b] - d[a])
                    w.append(min(math.log(s[b] / max(s[a], 1e-3)), 2.0))
    return np.asarray(x), np.asarray(w)


def fit_value_weights(rows: list[dict], sizes: dict[str, int], l2: float, floor: float = 0.02) -> np.ndarray:
    """Per-value weights of today's groups (not the embedding) maximising the weighted ranking likelihood."""
    x, w = ranked_pairs(rows)
    today = {g: n for g, n in sizes.items() if g != "embedding"}
    keep = np.concatenate([np.full(n, g != "embedding") for g, n in sizes.items()])
    x = torch.from_numpy(x[:, keep])
    w = torch.from_numpy(w)
    w0 = torch.from_numpy(value_weights(today, DEFAULT_WEIGHTS) + value_weights(today, dict.fromkeys(today, floor)))
    theta = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    log_scale = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([theta, log_scale], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        margin = (x @ (w0 * torch.exp(theta))) * torch.exp(log_scale) * 10.0
        loss = (w * torch.nn.functional.softplus(-margin)).sum() / w.sum() + l2 * theta.square().mean()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        fitted = (w0 * torch.exp(theta)).numpy()
    out = np.zeros(keep.size)
    out[keep] = fitted
    return out


def ranking_scores(rows: list[dict], weights: np.ndarray) -> dict[str, float]:
    """How `weights` (per value) rank each pair's candidates against their true scores."""
    x, w = ranked_pairs(rows)
    first = [r["scores"][int(np.argmin(r["diffs"] @ weights))] for r in rows]
    truth_closer = [(r["diffs"] @ weights)[r["kinds"].index("truth")] < (r["diffs"] @ weights)[r["kinds"].index("none")]
                    for r in rows]
    return {"ranked_right": float(((x @ weights > 0) * w).sum() / w.sum()),
            "truth_closer_than_none": float(np.mean(truth_closer)),
            "first_candidate_median": float(np.median(first)), "first_candidate_mean": float(np.mean(first))}


def as_match_weights(weights: np.ndarray, sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """Per-value weights -> `fxmatch.match.feature_distance`'s `weights` (an array per group)."""
    sl = group_slices(sizes)
    return {g: weights[sl[g]] * GROUP_SCALE[g] * sizes[g] for g in GROUPS}


@contextlib.contextmanager
def pooled_in_encoder_groups(pooled: PooledFeatures, on: bool) -> Iterator[None]:
    """While on: `ToneFeatures.encoder_groups` also returns the pooled features (group "embedding", weight 1 in
    `DEFAULT_WEIGHTS`, typical distance EMBEDDING_SCALE), at the encoder's rate as the other groups are."""
    if not on:
        yield
        return
    original = ToneFeatures.encoder_groups

    def with_pooled(self: ToneFeatures, x: np.ndarray) -> dict[str, np.ndarray]:
        from fxmatch.refine import resample

        groups = original(self, x)
        z = resample(np.asarray(x, dtype=np.float32)[None], self.rate, self.session.info.sample_rate)[0]
        groups["embedding"] = pooled(z).astype(np.float64)
        return groups

    saved = (match_module.GROUPS, dict(GROUP_SCALE), dict(DEFAULT_WEIGHTS))
    ToneFeatures.encoder_groups = with_pooled
    match_module.GROUPS = (*match_module.GROUPS, "embedding")
    GROUP_SCALE["embedding"], DEFAULT_WEIGHTS["embedding"] = EMBEDDING_SCALE, 1.0
    try:
        yield
    finally:
        ToneFeatures.encoder_groups = original
        match_module.GROUPS = saved[0]
        GROUP_SCALE.clear(), GROUP_SCALE.update(saved[1])
        DEFAULT_WEIGHTS.clear(), DEFAULT_WEIGHTS.update(saved[2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", default="benchmarks/results/tone_distance.json")
    parser.add_argument("--train-pairs", type=int, default=200)
    parser.add_argument("--dev-pairs", type=int, default=48)
    parser.add_argument("--l2", default="0.3,0.1,0.03")
    parser.add_argument("--match", default="", help="comma list of today, learned (--match-l2), embedding")
    parser.add_argument("--no-ranking", action="store_true", help="only the match runs")
    parser.add_argument("--match-l2", type=float, default=0.1)
    args = parser.parse_args(argv)
    set_cpu_threads(1)
    t0 = time.perf_counter()
    session = EstimatorSession(default_model(), providers="cpu", threads=1)
    tone, pooled = ToneFeatures(SAMPLE_RATE, session), PooledFeatures(session)
    probe = tone(np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1)
    sizes = {g: int(probe.groups[g].size) for g in GROUPS} | {"embedding": 512}
    result: dict = {"train_pairs": args.train_pairs, "dev_pairs": args.dev_pairs, "sizes": sizes}
    runs = [m.strip() for m in args.match.split(",") if m.strip()]
    train = None
    if not args.no_ranking or "learned" in runs:
        train = candidate_rows(training_pairs(args.train_pairs), tone, pooled, TRAIN_SEED + 1)
    if not args.no_ranking:
        dev = {kind: candidate_rows(make_pairs("musescore", args.dev_pairs, seed=DEV_SEED, chains=kind), tone,
                                    pooled, DEV_SEED + 1000) for kind in ("random", "peak")}
        distances = {"today": value_weights(sizes, DEFAULT_WEIGHTS),
                     "embedding": value_weights(sizes, {"embedding": 1.0}),
                     "today+embedding": value_weights(sizes, {**DEFAULT_WEIGHTS, "embedding": 1.0})}
        for l2 in (float(v) for v in args.l2.split(",")):
            distances[f"learned ({l2})"] = fit_value_weights(train, sizes, l2)
        result["distances"] = {}
        sl = group_slices(sizes)
        for name, weights in distances.items():
            result["distances"][name] = {
                "group_weights": {g: round(float(weights[sl[g]].sum() * SCALES[g]), 3) for g in sizes},
                "train": ranking_scores(train, weights), **{k: ranking_scores(v, weights) for k, v in dev.items()}}
            print(name, json.dumps({k: v for k, v in result["distances"][name].items() if k != "group_weights"}))
    if runs:
        result["match"] = {}
        learned = as_match_weights(fit_value_weights(train, sizes, args.match_l2), sizes) if "learned" in runs else None
        for kind in ("random", "peak"):
            pairs = make_pairs("musescore", args.dev_pairs, seed=DEV_SEED, chains=kind)
            for run in runs:
                if run == "learned":
                    name, weights = f"learned ({args.match_l2})", learned
                else:
                    name, weights = run, None
                with pooled_in_encoder_groups(pooled, run == "embedding"):
                    summary = evaluate_match(pairs, session, seed=0, weights=weights)["summary"]
                result["match"].setdefault(kind, {})[name] = {k: v for k, v in summary.items() if k != "per_effect"}
                print(kind, name, json.dumps(result["match"][kind][name]))
    result["wall_seconds"] = time.perf_counter() - t0
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
