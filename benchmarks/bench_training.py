"""`fxmatch bench training`: the cost of one training step, winner-takes-all (top-k + exploration) vs naive.

One optimiser step (encoder forward, twin re-synthesis of the candidates, MR-STFT loss, backward, Adam) on the same
batch of 2 s clips at 44.1 kHz from the default vocabulary (64 chains), measured side by side in one run:
- `wta`: the classifier's top 4 plus 2 exploration chains per example (configs/default.yaml), annealed (softmin
  weights at temperature 0.1, every candidate in the graph); `wta_hard`: the hard min (candidates scored without
  autograd, each example's winner rendered again with it),
- `wta_torch_loss`, `wta_hard_torch_loss`: the same two steps with the MR-STFT loss in plain torch ops (the loss
  before the fused CPU kernels of `fxmatch.metrics.mrstft_to_targets`), the side-by-side reference of that speed-up,
- `wta_hard_score_proxy`: the hard step with the winner picked on a cheaper loss (`score_fft_sizes`, 1024 and 256)
  and fitted on the full one; `score_proxy_agreement` says how often the two losses pick the same winner (fresh
  examples, untrained encoder and the shipped v3 encoder); the proxy's scoring time counts as `forward_other_s`,
- `wta_hard_effect_params`: `wta_hard` with one param set per effect (`param_sharing: effect`, as the
  configs/cpu-sim*.yaml runs), where candidates that share a chain prefix share its render (the others: one param
  set per chain, so only identical prefixes with identical params, i.e. none, are shared),
- `naive`: every one of the 64 candidate chains per example (the cost WTA avoids),
- `supervised`: the label-regression baseline (no re-synthesis); `supervised_fused_adam`, `wta_hard_fused_adam`:
  the same steps with Adam's fused kernel (`TrainConfig.fused_optimizer`; the others use the per-tensor loop);
  `supervised_channels_last`: the supervised step with the encoder's 2-D convolutions in NHWC
  (`TrainConfig.channels_last`; the other rows keep the plain NCHW layout),
- `supervised_sim`: the supervised step of the shipped model's simulation stages (configs/cpu-sim-1c.yaml: its
  encoder, with a dilated 1-D stack, presence scoring and per-effect params, and its loss weights), plain layout and
  per-tensor Adam as stage 1d runs; `supervised_sim_fast`: the same with `channels_last` and the fused AdamW,
- `full_chain`: the fixed 7-effect chain of Peladeau & Peeters (one candidate),
plus the data cost (one dry clip rendered by pedalboard through a random chain). Median over repeats; the
ratio `naive_over_wta_step` is what the candidate selection saves. Timings are measured, never asserted.

`profile` (per mode): where a step's time goes, from wall-clock timers around its parts in separate, instrumented
steps (median over repeats; seconds per step). The forward is split into the front-end (`torch.stft` as trained;
its input needs no gradient, so it has no backward), the rest of the encoder, each effect's twin forward and the
MR-STFT loss; the backward into the part before the encoder's outputs get their gradient (loss and twins) and the
encoder's own. Each effect's twin backward is measured by replaying the step's twin calls (same shapes and
params) on their own. `frontend` compares `torch.stft` with the exported conv1d DFT on the same batch.
`--quick`: batch 4 x 1 s, one repeat.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import torch

from fxmatch.effects import EFFECT_NAMES, get_spec
from fxmatch.metrics import stft_magnitudes
from fxmatch.render import ChainRenderer
from fxmatch.vocabulary import ChainVocabulary
from training.baselines import full_chain_vocabulary, supervised_step
from training.config import load_config
from training.data import TargetDataset
from training.model import Encoder, EncoderConfig, chain_membership, count_parameters
from training.sources import SynthSource
from training.trainer import encoder_config as encoder_config_of
from training.wta import (
    LossFn,
    SpectralLoss,
    candidate_losses,
    flush_tiny,
    make_audio_loss,
    select_candidates,
    wta_step,
)

SAMPLE_RATE = 44100
FFT_SIZES = (2048, 1024, 512, 256)
SCORE_FFT_SIZES = (1024, 256)  # the proxy of mode wta_hard_score_proxy (TrainConfig.score_fft_sizes)
DEFAULT_CHECKPOINT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models",
                                  "fxmatch-default-v5.pt")
#: the simulation stage whose encoder and loss weights the supervised_sim rows train (the shipped model's; stage 1d
#: differs from it only in seeds, steps and learning rate)
SIM_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "cpu-sim-1c.yaml")

log = logging.getLogger("fxmatch.bench.training")

#: a mode's step: (model, renderer or None, loss function) -> loss tensor
StepFn = Callable[[torch.nn.Module, ChainRenderer | None, LossFn], torch.Tensor]


def _median_time(fn: Callable[[], None], repeats: int) -> float:
    """Median wall time of `fn` in seconds over `repeats` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclasses.dataclass
class TwinCall:
    """One twin call of a step: its inputs (detached) and which of them needed a gradient."""

    name: str
    process: Callable
    x: torch.Tensor
    x_grad: bool
    params: dict[str, Any]
    params_grad: dict[str, bool]
    sample_rate: float


class StepTimers:
    """Wall-clock seconds accumulated per label, and the twin calls of a step (for the backward replay)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: list[TwinCall] = []
        self.grad_marks: list[float] = []

    def add(self, label: str, seconds: float) -> None:
        self.seconds[label] += seconds


def _timed_effect(effect: Any, timers: StepTimers) -> Any:
    """A copy of twin `effect` whose `process` adds its forward time to `timers` and records the call."""
    process = effect.process

    def run(x: torch.Tensor, params: dict[str, Any], sample_rate: float) -> torch.Tensor:
        start = time.perf_counter()
        y = process(x, params, sample_rate)
        timers.add(f"twin:{effect.name}", time.perf_counter() - start)
        timers.calls.append(TwinCall(
            effect.name, process, x.detach(), x.requires_grad,
            {k: v.detach() if torch.is_tensor(v) else v for k, v in params.items()},
            {k: torch.is_tensor(v) and v.requires_grad for k, v in params.items()}, sample_rate))
        return y

    return dataclasses.replace(effect, process=run)


def timed_renderer(vocab: ChainVocabulary, sample_rate: int, timers: StepTimers) -> ChainRenderer:
    """A renderer of `vocab` whose twins report their forward time to `timers`."""
    renderer = ChainRenderer.of_vocabulary(vocab, sample_rate)
    renderer.effects = {name: _timed_effect(e, timers) for name, e in renderer.effects.items()}
    return renderer


class TimedSpectralLoss(SpectralLoss):
    """A `SpectralLoss` adding the time of its target spectra and its scoring to `timers` under 'loss'."""

    def __init__(self, inner: SpectralLoss, timers: StepTimers):
        super().__init__(inner.fft_sizes)
        self.inner, self.timers = inner, timers

    def target_spectra(self, target: torch.Tensor) -> Any:
        start = time.perf_counter()
        out = self.inner.target_spectra(target)
        self.timers.add("loss", time.perf_counter() - start)
        return out

    def from_spectra(self, estimate: torch.Tensor, spectra: Any, rows: torch.Tensor | None = None) -> torch.Tensor:
        start = time.perf_counter()
        out = self.inner.from_spectra(estimate, spectra, rows)
        self.timers.add("loss", time.perf_counter() - start)
        return out


class TorchOpsSpectralLoss(SpectralLoss):
    """The same `SpectralLoss` computed with plain torch ops (`stft_magnitudes`, `mrstft_from_magnitudes`): the
    implementation before the fused CPU loss, kept as the side-by-side reference."""

    def target_spectra(self, target: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            return stft_magnitudes(flush_tiny(target), self.fft_sizes)


def timed_loss(loss_fn: LossFn, timers: StepTimers) -> LossFn:
    """`loss_fn` adding its forward time to `timers` under 'loss'."""
    if isinstance(loss_fn, SpectralLoss):
        return TimedSpectralLoss(loss_fn, timers)

    def run(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = loss_fn(estimate, target)
        timers.add("loss", time.perf_counter() - start)
        return out

    return run


def _hook_model(model: Encoder, timers: StepTimers) -> list[Any]:
    """Timers on the encoder's forward and its front-end; marks the time its outputs receive their gradient."""
    starts: dict[str, float] = {}

    def pre(label: str) -> Callable:
        return lambda module, args: starts.__setitem__(label, time.perf_counter())

    def post(label: str) -> Callable:
        return lambda module, args, out: timers.add(label, time.perf_counter() - starts[label])

    def mark(module: torch.nn.Module, args: Any, outputs: tuple[torch.Tensor, ...]) -> None:
        timers.add("encoder", time.perf_counter() - starts["encoder"])
        for out in outputs:
            if out.requires_grad:
                out.register_hook(lambda grad: timers.grad_marks.append(time.perf_counter()))

    return [model.frontend.register_forward_pre_hook(pre("frontend")),
            model.frontend.register_forward_hook(post("frontend")),
            model.register_forward_pre_hook(pre("encoder")), model.register_forward_hook(mark)]


def replay_twin_backward(calls: Sequence[TwinCall]) -> dict[str, float]:
    """Seconds of each effect's twin backward: the recorded calls re-run on their own, timing `backward` only."""
    seconds: dict[str, float] = defaultdict(float)
    for call in calls:
        x = call.x.clone().requires_grad_(call.x_grad)
        params = {k: v.clone().requires_grad_(call.params_grad[k]) if torch.is_tensor(v) else v
                  for k, v in call.params.items()}
        y = call.process(x, params, call.sample_rate)
        if not y.requires_grad:
            continue
        grad = torch.randn_like(y)
        start = time.perf_counter()
        torch.autograd.backward(y, grad)
        seconds[call.name] += time.perf_counter() - start
    return dict(seconds)


def profile_step(model: Encoder, optimizer: torch.optim.Optimizer, step: StepFn, renderer_vocab: ChainVocabulary | None,
                 loss_fn: LossFn, sample_rate: int) -> dict[str, Any]:
    """One instrumented optimiser step: seconds per part (see the module docstring)."""
    timers = StepTimers()
    renderer = timed_renderer(renderer_vocab, sample_rate, timers) if renderer_vocab is not None else None
    hooks = _hook_model(model, timers)
    try:
        t0 = time.perf_counter()
        loss = step(model, renderer, timed_loss(loss_fn, timers))
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
    finally:
        for hook in hooks:
            hook.remove()
    s = timers.seconds
    effects = sorted({c.name for c in timers.calls})
    twins_forward = sum(s[f"twin:{n}"] for n in effects)
    forward, backward = t1 - t0, t2 - t1
    # the loss of the supervised step (MSE, CE, BCE) is all the forward that is not the encoder
    loss_s = s["loss"] if renderer is not None else forward - s["encoder"]
    outputs_grad = max(timers.grad_marks) if timers.grad_marks else t1
    replayed = replay_twin_backward(timers.calls)
    examples: dict[str, int] = defaultdict(int)
    for call in timers.calls:
        examples[call.name] += call.x.shape[0]
    return {
        "step_s": t3 - t0,
        "forward_s": forward,
        "frontend_s": s["frontend"],
        "encoder_rest_s": s["encoder"] - s["frontend"],
        "twins_forward_s": twins_forward,
        "loss_s": loss_s,
        "forward_other_s": forward - s["encoder"] - twins_forward - loss_s,
        "backward_s": backward,
        "backward_loss_and_twins_s": outputs_grad - t1,
        "backward_encoder_s": t2 - outputs_grad,
        "twins_backward_replayed_s": sum(replayed.values()),
        "optimizer_s": t3 - t2,
        "twins": {n: {"calls": sum(1 for c in timers.calls if c.name == n), "examples": examples[n],
                      "forward_s": s[f"twin:{n}"], "backward_s": replayed.get(n, 0.0)} for n in effects},
    }


def _median_profile(profiles: list[dict[str, Any]]) -> dict[str, Any]:
    """Key-wise median of profiles (nested dicts too)."""
    first = profiles[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        if isinstance(value, dict):
            out[key] = _median_profile([p[key] for p in profiles])
        elif isinstance(value, int) and not isinstance(value, bool):
            out[key] = value
        else:
            out[key] = statistics.median(p[key] for p in profiles)
    return out


def frontend_costs(encoder_config: EncoderConfig, vocab: ChainVocabulary, y: torch.Tensor, repeats: int
                   ) -> dict[str, float]:
    """Forward seconds of the log-mel front-end on batch `y`: `torch.stft` (trained) vs the conv1d DFT (exported)."""
    frontend = Encoder(vocab, encoder_config).frontend
    out: dict[str, float] = {}
    with torch.no_grad():
        for key, use_fft in (("stft_s", True), ("conv_dft_s", False)):
            frontend.use_fft = use_fft
            out[key] = _median_time(lambda: frontend(y), max(repeats, 5))
    out["conv_dft_over_stft"] = out["conv_dft_s"] / out["stft_s"]
    return out


def proxy_agreement(vocab: ChainVocabulary, encoder_config: EncoderConfig, fft_sizes: Sequence[int],
                    score_fft_sizes: Sequence[int], sample_rate: int, seconds: float, n_examples: int,
                    checkpoint: str | os.PathLike | None = DEFAULT_CHECKPOINT, batch: int = 8) -> dict[str, Any]:
    """How often the winner on `score_fft_sizes` is the winner on `fft_sizes`, on fresh synthesised examples.

    Candidates as in a WTA step (top-4 + 2 random) with the params of an untrained encoder and, when `checkpoint`
    exists and holds this vocabulary, of that trained encoder (models/fxmatch-default-v5.pt). Returns per encoder
    the fraction of examples whose winners agree, and the examples counted.
    """
    data = TargetDataset(SynthSource(seed=1, sample_rate=sample_rate, clip_seconds=seconds), vocab, seed=1)
    torch.manual_seed(0)
    encoders = {"untrained": Encoder(vocab, encoder_config)}
    if checkpoint is not None and os.path.isfile(checkpoint):
        from training.checkpoint import load_checkpoint

        ckpt = load_checkpoint(checkpoint, require=("model", "model_config"))
        trained = Encoder.from_config(ckpt["model_config"])
        if trained.vocab.chains == vocab.chains and trained.cfg.sample_rate == sample_rate:
            trained.load_state_dict(ckpt["model"])
            encoders[os.path.basename(str(checkpoint))] = trained
    renderer = ChainRenderer.of_vocabulary(vocab, sample_rate)
    full, proxy = make_audio_loss(fft_sizes), make_audio_loss(score_fft_sizes)
    generator = torch.Generator().manual_seed(0)
    agree = dict.fromkeys(encoders, 0)
    for start in range(0, n_examples, batch):
        examples = [data[i] for i in range(start, min(n_examples, start + batch))]
        x = torch.stack([e["x"] for e in examples])
        y = torch.stack([e["y"] for e in examples])
        for name, encoder in encoders.items():
            encoder.eval()
            with torch.no_grad():
                logits, params = encoder(y)
                candidates = select_candidates(logits, 4, 2, generator)
                on_full = candidate_losses(renderer, x, y, params, candidates, full).argmin(dim=1)
                on_proxy = candidate_losses(renderer, x, y, params, candidates, proxy).argmin(dim=1)
            agree[name] += int((on_full == on_proxy).sum())
    return {"examples": n_examples, "agreement": {name: n / n_examples for name, n in agree.items()}}


def run(quick: bool = False, *, batch: int | None = None, clip_seconds: float | None = None,
        effects: Sequence[str] = EFFECT_NAMES, max_length: int = 3, sample_rate: int = SAMPLE_RATE,
        fft_sizes: Sequence[int] = FFT_SIZES, repeats: int | None = None,
        score_fft_sizes: Sequence[int] = SCORE_FFT_SIZES, agreement_examples: int | None = None) -> dict:
    """Measure step costs and their profile; returns the JSON-ready result (keywords: smaller runs for tests).

    Float32 denormals are flushed to zero while it runs, as the trainer does.
    """
    load_before = os.getloadavg()[0]
    torch.set_flush_denormal(True)
    try:
        result = _run(quick, batch, clip_seconds, effects, max_length, sample_rate, fft_sizes, repeats,
                      score_fft_sizes, agreement_examples)
    finally:
        torch.set_flush_denormal(False)
    # other jobs on the machine slow every figure: the 1-minute load average before and after, for the reader
    result["load_average"] = [load_before, os.getloadavg()[0]]
    return result


def _run(quick: bool, batch: int | None, clip_seconds: float | None, effects: Sequence[str], max_length: int,
         sample_rate: int, fft_sizes: Sequence[int], repeats: int | None, score_fft_sizes: Sequence[int],
         agreement_examples: int | None) -> dict:
    """`run` with denormals flushed."""
    batch_q, seconds_q, repeats_q = (4, 1.0, 1) if quick else (8, 2.0, 3)
    agreement_examples = agreement_examples or (8 if quick else 64)
    batch = batch or batch_q
    seconds = clip_seconds or seconds_q
    repeats = repeats or repeats_q
    vocab = ChainVocabulary(effects=tuple(get_spec(n) for n in effects), max_length=max_length)
    encoder_config = EncoderConfig(sample_rate=sample_rate)
    data = TargetDataset(SynthSource(seed=0, sample_rate=sample_rate, clip_seconds=seconds), vocab, seed=0)
    log.info("rendering a batch of %d examples", batch)
    t0 = time.perf_counter()
    examples = [data[i] for i in range(batch)]
    data_s = (time.perf_counter() - t0) / batch
    x = torch.stack([e["x"] for e in examples])
    y = torch.stack([e["y"] for e in examples])
    chain = torch.stack([e["chain"] for e in examples])
    params = torch.stack([e["params"] for e in examples])
    mask = torch.stack([e["param_mask"] for e in examples])

    loss_fn = make_audio_loss(fft_sizes)
    frontend = frontend_costs(encoder_config, vocab, y, repeats)
    results: dict[str, dict] = {}
    profiles: dict[str, dict] = {}

    def measure(name: str, model_vocab: ChainVocabulary, step: StepFn, renders: bool = True,
                loss: LossFn = loss_fn, fused: bool = False, config: EncoderConfig = encoder_config,
                channels_last: bool = False) -> None:
        log.info("step %s: %d timed, then profiled", name, repeats)
        torch.manual_seed(0)
        model = Encoder(model_vocab, config)
        if channels_last:  # as the trainer does with TrainConfig.channels_last
            model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True if fused else None)
        renderer = ChainRenderer.of_vocabulary(model_vocab, sample_rate) if renders else None

        def one() -> None:
            optimizer.zero_grad(set_to_none=True)
            step(model, renderer, loss).backward()
            optimizer.step()

        seconds_per_step = _median_time(one, repeats)
        results[name] = {"step_s": seconds_per_step, "examples_per_s": batch / seconds_per_step}
        runs = [profile_step(model, optimizer, step, model_vocab if renders else None, loss, sample_rate)
                for _ in range(repeats)]
        profiles[name] = {"data_s": data_s * batch, **_median_profile(runs),
                          "frontend_conv_dft_s": frontend["conv_dft_s"]}

    generator = torch.Generator().manual_seed(0)

    def wta(top_k: int, n_explore: int, temperature: float = 0.1, score: LossFn | None = None) -> StepFn:
        return lambda m, r, lf: wta_step(m, r, x, y, lf, top_k, n_explore, temperature, 1.0, generator,
                                         score_loss_fn=score).loss

    torch_ops = TorchOpsSpectralLoss(fft_sizes)
    measure("wta", vocab, wta(4, 2))
    measure("wta_torch_loss", vocab, wta(4, 2), loss=torch_ops)  # the same step, the loss in plain torch ops
    measure("wta_hard", vocab, wta(4, 2, 0.0))  # temperature 0: candidates scored without autograd, winner refit
    measure("wta_hard_torch_loss", vocab, wta(4, 2, 0.0), loss=torch_ops)
    # the winner picked on a cheaper loss (`score_fft_sizes`), fitted on the full one
    measure("wta_hard_score_proxy", vocab, wta(4, 2, 0.0, make_audio_loss(score_fft_sizes)))
    # one param set per effect (configs/cpu-sim*.yaml): candidates sharing a chain prefix share its render
    measure("wta_hard_effect_params", vocab, wta(4, 2, 0.0),
            config=dataclasses.replace(encoder_config, param_sharing="effect"))
    measure("naive", vocab, wta(vocab.n_chains, 0))
    measure("supervised", vocab, lambda m, r, lf: supervised_step(m, y, chain, params, mask).loss, renders=False)
    # the same step with Adam's fused kernel (TrainConfig.fused_optimizer)
    measure("supervised_fused_adam", vocab, lambda m, r, lf: supervised_step(m, y, chain, params, mask).loss,
            renders=False, fused=True)
    measure("wta_hard_fused_adam", vocab, wta(4, 2, 0.0), fused=True)
    measure("full_chain", full_chain_vocabulary(vocab), wta(1, 0, 0.0))
    # the encoder's 2-D convolutions in NHWC (TrainConfig.channels_last)
    measure("supervised_channels_last", vocab, lambda m, r, lf: supervised_step(m, y, chain, params, mask).loss,
            renders=False, channels_last=True)
    # the shipped model's supervised step (configs/cpu-sim-1c.yaml), plain and with both speed knobs
    sim = load_config(SIM_CONFIG)
    sim_encoder = dataclasses.replace(encoder_config_of(sim), sample_rate=sample_rate)
    membership = torch.from_numpy(chain_membership(vocab))

    def sim_step(m: torch.nn.Module, r: ChainRenderer | None, lf: LossFn) -> torch.Tensor:
        return supervised_step(m, y, chain, params, mask, sim.ce_weight, sim.presence_weight, membership,
                               sim.param_weight).loss

    measure("supervised_sim", vocab, sim_step, renders=False, config=sim_encoder)
    measure("supervised_sim_fast", vocab, sim_step, renders=False, config=sim_encoder, fused=True, channels_last=True)
    log.info("score proxy agreement on %d examples", agreement_examples)
    agreement = proxy_agreement(vocab, encoder_config, fft_sizes, score_fft_sizes, sample_rate, seconds,
                                agreement_examples)

    return {
        "benchmark": "training",
        "batch": batch,
        "clip_seconds": seconds,
        "sample_rate": sample_rate,
        "n_chains": vocab.n_chains,
        "wta_candidates_per_example": min(6, vocab.n_chains),
        "encoder_parameters": count_parameters(Encoder(vocab, encoder_config)),
        "steps": results,
        "naive_over_wta_step": results["naive"]["step_s"] / results["wta"]["step_s"],
        "wta_soft_over_hard_step": results["wta"]["step_s"] / results["wta_hard"]["step_s"],
        # side by side in this run: the fused CPU loss against the same loss in plain torch ops
        "torch_loss_over_fused_wta_step": results["wta_torch_loss"]["step_s"] / results["wta"]["step_s"],
        "torch_loss_over_fused_wta_hard_step": results["wta_hard_torch_loss"]["step_s"]
        / results["wta_hard"]["step_s"],
        "supervised_over_fused_adam_step": results["supervised"]["step_s"]
        / results["supervised_fused_adam"]["step_s"],
        "supervised_over_channels_last_step": results["supervised"]["step_s"]
        / results["supervised_channels_last"]["step_s"],
        "supervised_sim_over_fast_step": results["supervised_sim"]["step_s"] / results["supervised_sim_fast"]["step_s"],
        "sim_config": os.path.relpath(SIM_CONFIG, os.path.dirname(os.path.dirname(SIM_CONFIG))),
        "sim_encoder_parameters": count_parameters(Encoder(vocab, sim_encoder)),
        "score_fft_sizes": list(score_fft_sizes),
        "wta_hard_over_score_proxy_step": results["wta_hard"]["step_s"] / results["wta_hard_score_proxy"]["step_s"],
        "score_proxy_agreement": agreement,
        "data_render_s_per_example": data_s,
        "frontend": frontend,
        "profile": profiles,
        "repeats": repeats,
        "quick": quick,
        "flush_denormal": True,
        "device": f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
    }
