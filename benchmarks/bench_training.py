"""`fxmatch bench training`: the cost of one training step, winner-takes-all (top-k + exploration) vs naive.

One optimiser step (encoder forward, twin re-synthesis of the candidates, MR-STFT loss, backward, Adam) on the same
batch of 2 s clips at 44.1 kHz from the default vocabulary (64 chains), measured side by side in one run:
- `wta`: the classifier's top 4 plus 2 exploration chains per example (configs/default.yaml),
- `naive`: every one of the 64 candidate chains per example (the cost WTA avoids),
- `supervised`: the label-regression baseline (no re-synthesis),
- `full_chain`: the fixed 7-effect chain of Peladeau & Peeters (one candidate),
plus the data cost (one dry clip rendered by pedalboard through a random chain). Median over repeats; the
ratio `naive_over_wta_step` is what the candidate selection saves. Timings are measured, never asserted.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import torch

from fxmatch.effects import EFFECT_NAMES, get_spec
from fxmatch.vocabulary import ChainVocabulary
from training.baselines import full_chain_vocabulary, supervised_step
from training.data import TargetDataset
from training.model import Encoder, EncoderConfig, count_parameters
from training.sources import SynthSource
from training.wta import ChainRenderer, make_audio_loss, wta_step

SAMPLE_RATE = 44100


def _median_time(fn: Callable[[], None], repeats: int) -> float:
    """Median wall time of `fn` in seconds over `repeats` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(quick: bool = False) -> dict:
    """Measure step costs; returns the JSON-ready result."""
    batch, seconds, repeats = (4, 1.0, 1) if quick else (8, 2.0, 3)
    vocab = ChainVocabulary(effects=tuple(get_spec(n) for n in EFFECT_NAMES), max_length=3)
    data = TargetDataset(SynthSource(seed=0, sample_rate=SAMPLE_RATE, clip_seconds=seconds), vocab, seed=0)
    t0 = time.perf_counter()
    examples = [data[i] for i in range(batch)]
    data_s = (time.perf_counter() - t0) / batch
    x = torch.stack([e["x"] for e in examples])
    y = torch.stack([e["y"] for e in examples])
    chain = torch.stack([e["chain"] for e in examples])
    params = torch.stack([e["params"] for e in examples])
    mask = torch.stack([e["param_mask"] for e in examples])

    loss_fn = make_audio_loss((2048, 1024, 512, 256))
    results: dict[str, dict] = {}

    def measure(name: str, model_vocab: ChainVocabulary, step: Callable[[torch.nn.Module], torch.Tensor]) -> None:
        torch.manual_seed(0)
        model = Encoder(model_vocab, EncoderConfig(sample_rate=SAMPLE_RATE))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def one() -> None:
            optimizer.zero_grad(set_to_none=True)
            step(model).backward()
            optimizer.step()

        seconds_per_step = _median_time(one, repeats)
        results[name] = {"step_s": seconds_per_step, "examples_per_s": batch / seconds_per_step}

    renderer = ChainRenderer(vocab, SAMPLE_RATE)
    generator = torch.Generator().manual_seed(0)

    def wta(top_k: int, n_explore: int) -> Callable[[torch.nn.Module], torch.Tensor]:
        return lambda m: wta_step(m, renderer, x, y, loss_fn, top_k, n_explore, 0.1, 1.0, generator).loss

    measure("wta", vocab, wta(4, 2))
    measure("naive", vocab, wta(vocab.n_chains, 0))
    measure("supervised", vocab, lambda m: supervised_step(m, y, chain, params, mask).loss)
    full = full_chain_vocabulary(vocab)
    full_renderer = ChainRenderer(full, SAMPLE_RATE)
    measure("full_chain", full,
            lambda m: wta_step(m, full_renderer, x, y, loss_fn, 1, 0, 0.0, 1.0, generator).loss)

    return {
        "benchmark": "training",
        "batch": batch,
        "clip_seconds": seconds,
        "sample_rate": SAMPLE_RATE,
        "n_chains": vocab.n_chains,
        "wta_candidates_per_example": 6,
        "encoder_parameters": count_parameters(Encoder(vocab, EncoderConfig(sample_rate=SAMPLE_RATE))),
        "steps": results,
        "naive_over_wta_step": results["naive"]["step_s"] / results["wta"]["step_s"],
        "data_render_s_per_example": data_s,
        "repeats": repeats,
        "device": f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
    }
