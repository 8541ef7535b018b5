"""`fxmatch bench effects`: fidelity of each twin against pedalboard, and speed of the full twin chain.

Fidelity: SNR (dB) and MR-STFT distance of twin vs pedalboard, median over random parameter draws (the training
ranges) on 2 s guitar-like signals, mono and stereo, 44.1 kHz, for every twin (the default vocabulary's 7 and the
tone stage and output level: LowpassFilter, HighpassFilter, Gain).
Speed: forward+backward of the default vocabulary's 7-effect chain on batch 16 x 2 s at 44.1 kHz (mono, float32),
measured side by side with (a) a naive per-sample autograd loop of the same recursions (a slice timed and
extrapolated) and (b) pedalboard's own forward render of the same 16 signals; and of every twin on its own.
"""

from __future__ import annotations

import logging
import platform
import statistics
import time

import numpy as np
import torch

from benchmarks import naive_effects
from fxmatch import testsignals
from fxmatch.effects import EFFECT_NAMES, KNOWN_EFFECTS, get_spec
from fxmatch.effects.chain import Chain
from fxmatch.effects.fidelity import compare

SAMPLE_RATE = 44100

log = logging.getLogger("fxmatch.bench.effects")


def fidelity(n_draws: int, seconds: float, seed: int = 1234) -> dict[str, dict[str, float]]:
    """Median/p10 SNR and median MR-STFT per effect over `n_draws` random params and signals."""
    rng = np.random.default_rng(seed)
    kinds = ("pluck", "chord", "noise")
    out: dict[str, dict[str, float]] = {}
    # the default vocabulary first, so its draws stay those of earlier results; reported in canonical order
    for name in sorted(KNOWN_EFFECTS, key=lambda n: n not in EFFECT_NAMES):
        log.info("fidelity: %s, %d parameter draws against pedalboard", name, n_draws)
        spec = get_spec(name)
        snrs, dists = [], []
        for i in range(n_draws):
            params = spec.sample(rng)
            x = testsignals.make(kinds[i % len(kinds)], SAMPLE_RATE, seconds, seed=int(rng.integers(1 << 30)),
                                 channels=1 + i % 2)
            r = compare([name], [params], x, SAMPLE_RATE)
            snrs.append(min(r["snr_db"], 200.0))
            dists.append(r["mrstft"])
        out[name] = {
            "snr_db_median": float(statistics.median(snrs)),
            "snr_db_p10": float(np.percentile(snrs, 10)),
            "mrstft_median": float(statistics.median(dists)),
        }
    return {name: out[name] for name in KNOWN_EFFECTS}


def _chain_inputs(batch: int, seconds: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.stack([testsignals.make("pluck", SAMPLE_RATE, seconds, seed=int(rng.integers(1 << 30)))[0]
                  for _ in range(batch)])
    chain = Chain(EFFECT_NAMES)
    unit = torch.as_tensor(rng.uniform(0.1, 0.9, size=(batch, chain.n_params)), dtype=torch.float32)
    return torch.as_tensor(x), unit, x


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(statistics.median(times))


def speed(batch: int, seconds: float, naive_slice: int, repeats: int) -> dict[str, float]:
    """Seconds for the chain fwd+bwd (twins), the naive loop (extrapolated) and the pedalboard forward."""
    chain = Chain(EFFECT_NAMES)
    x, unit, x_np = _chain_inputs(batch, seconds)
    n = x.shape[-1]

    def twins_fwd_bwd() -> None:
        u = unit.clone().requires_grad_(True)
        y = chain.process_normalised(x[:, None, :], u, SAMPLE_RATE)
        y.square().mean().backward()

    twins_fwd_bwd()  # warm-up: numba compilation and caches
    chain_s = _time(twins_fwd_bwd, repeats)

    def twins_fwd() -> None:
        with torch.no_grad():
            chain.process_normalised(x[:, None, :], unit, SAMPLE_RATE)

    chain_fwd_s = _time(twins_fwd, repeats)

    per_effect = {}
    extra = np.random.default_rng(1)  # params of the twins outside the chain
    for name in KNOWN_EFFECTS:
        single = Chain([name])
        own = torch.as_tensor(extra.uniform(0.1, 0.9, size=(batch, single.n_params)), dtype=torch.float32)
        off = 0
        for e in chain.effects:
            if e.name == name:
                own = unit[:, off : off + e.spec.n_params]
            off += e.spec.n_params

        def one(own: torch.Tensor = own, single: Chain = single) -> None:
            u = own.clone().requires_grad_(True)
            single.process_normalised(x[:, None, :], u, SAMPLE_RATE).square().mean().backward()

        one()
        per_effect[name] = _time(one, repeats)

    params = chain.split_normalised(unit)
    naive_params = {f"{e.name}.{k}": v.clone().requires_grad_(True) for e, p in zip(chain.effects, params)
                    for k, v in p.items()}
    xs = x[:, :naive_slice]

    def naive() -> None:
        y = naive_effects.full_chain(xs, naive_params, SAMPLE_RATE)
        y.square().mean().backward()

    naive_slice_s = _time(naive, 1)
    naive_s = naive_slice_s * n / naive_slice

    boards = [chain.pedalboard([{k: float(v[i]) for k, v in p.items()} for p in params]) for i in range(batch)]

    def pedalboard_fwd() -> None:
        for i, board in enumerate(boards):
            board(x_np[i : i + 1], SAMPLE_RATE)

    pedalboard_fwd()
    pedalboard_s = _time(pedalboard_fwd, repeats)
    return {
        "chain_fwd_bwd_s": chain_s,
        "chain_fwd_s": chain_fwd_s,
        "per_effect_fwd_bwd_s": per_effect,
        "naive_fwd_bwd_s_extrapolated": naive_s,
        "naive_slice_samples": naive_slice,
        "pedalboard_fwd_s": pedalboard_s,
        "naive_ratio": naive_s / chain_s,
        "pedalboard_ratio": chain_s / pedalboard_s,
    }


def run(quick: bool = False) -> dict:
    """The benchmark's JSON result."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    n_draws = 10 if quick else 50
    fid = fidelity(n_draws=n_draws, seconds=1.0 if quick else 2.0)
    log.info("speed: the %d-effect twin chain forward and backward, batch 16, against a naive loop and pedalboard",
             len(EFFECT_NAMES))
    sp = speed(batch=16, seconds=2.0, naive_slice=500 if quick else 2000, repeats=2 if quick else 3)
    return {
        "benchmark": "effects",
        "device": f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "sample_rate": SAMPLE_RATE,
        "fidelity_draws": n_draws,
        "fidelity_snr_db": {k: v["snr_db_median"] for k, v in fid.items()},
        "fidelity_snr_db_p10": {k: v["snr_db_p10"] for k, v in fid.items()},
        "mrstft": {k: v["mrstft_median"] for k, v in fid.items()},
        "chain": list(EFFECT_NAMES),
        "batch": 16,
        "seconds": 2.0,
        **sp,
        "notes": "naive_ratio = naive per-sample autograd loop (extrapolated from a slice) / twins, both fwd+bwd; "
        "pedalboard_ratio = twins fwd+bwd / pedalboard forward render (same 16 signals)",
    }
