"""Winner-takes-all over candidate chains (stochastic multiple choice learning, annealed).

For each example b the encoder proposes, for every candidate chain k, parameters v̂_bk; a *subset* of candidates is
re-synthesised through the twins, ŷ_bk = g_k(x_b, v̂_bk), and scored with the audio loss m(ŷ_bk, y_b). The subset
is the classifier's top-k plus random exploration chains (the naive step takes all chains). The candidates are
rendered by the core's batched renderer (`fxmatch.render.ChainRenderer.render_candidates`: each effect runs once per
chain depth on every example that has it there, shared prefixes once).

The fit loss is the softmin-weighted mean of the candidate losses with a temperature annealed to 0 (annealed MCL,
Perera et al. 2024), which is the hard winner-takes-all min at temperature 0; the chain classifier learns to predict
the argmin winner by cross-entropy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from fxmatch.metrics import (
    DEFAULT_FFT_SIZES,
    TargetSpectra,
    mrstft_from_magnitudes,
    mrstft_to_targets,
    stft_magnitudes,
    target_spectra,
)
from fxmatch.render import ChainRenderer

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


TINY = 1.0e-20  # samples below this are flushed to 0 before the loss


def flush_tiny(x: torch.Tensor) -> torch.Tensor:
    """`x` with samples below 1e-20 in magnitude set to exactly 0.

    IIR twins decay into float32 denormals (~1e-45); an STFT bin of denormal magnitude makes the backward of
    complex `abs` divide by a denormal (inf) and return NaN gradients, while exact zeros are handled.
    """
    return torch.where(x.abs() < TINY, torch.zeros_like(x), x)


class SpectralLoss:
    """Per-example audio loss `[batch]` of estimate vs target `[batch, samples]`: the MR-STFT distance.

    `target_spectra(y)` computes a batch's target magnitudes once (no gradient); `from_spectra(estimate, spectra,
    rows)` scores estimates against rows of them, so a step with C candidates per example does the target's STFTs
    once instead of C times. Calling it as `loss(estimate, target)` does both. On CPU float32 (training) it runs the
    fused `fxmatch.metrics.mrstft_to_targets`; elsewhere `mrstft_from_magnitudes` (the same distance).
    """

    def __init__(self, fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES):
        self.fft_sizes = tuple(int(s) for s in fft_sizes)

    def target_spectra(self, target: torch.Tensor) -> TargetSpectra | list[torch.Tensor]:
        """Magnitudes of `target` `[batch, samples]` per FFT size (`TargetSpectra` on CPU float32)."""
        with torch.no_grad():
            if _fused(target):
                return target_spectra(flush_tiny(target), self.fft_sizes)
            return stft_magnitudes(flush_tiny(target), self.fft_sizes)

    def from_spectra(self, estimate: torch.Tensor, spectra: TargetSpectra | Sequence[torch.Tensor],
                     rows: torch.Tensor | None = None) -> torch.Tensor:
        """Losses `[n]` of `estimate` `[n, samples]` against rows `rows` `[n]` of `target_spectra` (default: row i)."""
        if isinstance(spectra, TargetSpectra) and _fused(estimate):
            return mrstft_to_targets(flush_tiny(estimate), spectra, None if rows is None else rows.cpu())
        if isinstance(spectra, TargetSpectra):
            spectra = [m.transpose(1, 2).to(estimate.device) for m in spectra.magnitudes]
        if rows is not None:
            spectra = [s[rows.to(s.device)] for s in spectra]
        return mrstft_from_magnitudes(flush_tiny(estimate), spectra, self.fft_sizes, reduce=False)

    def __call__(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.from_spectra(estimate, self.target_spectra(target))


def _fused(x: torch.Tensor) -> bool:
    """Whether `x` can take the fused CPU loss (`fxmatch.metrics.mrstft_to_targets`)."""
    return x.device.type == "cpu" and x.dtype == torch.float32


def make_audio_loss(fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES) -> SpectralLoss:
    """The training audio loss (see `SpectralLoss`)."""
    return SpectralLoss(fft_sizes)


def select_candidates(
    logits: torch.Tensor, top_k: int, n_explore: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Candidate chain indices `[batch, C]`: the top-k of `logits` `[batch, n_chains]` plus `n_explore` random others.

    All chains (the naive step) when `top_k + n_explore >= n_chains`; each row holds distinct chains.
    """
    batch, n_chains = logits.shape
    if top_k + n_explore >= n_chains:
        return torch.arange(n_chains, device=logits.device).expand(batch, n_chains)
    top = logits.detach().topk(top_k, dim=1).indices
    if n_explore <= 0:
        return top
    noise = torch.rand(batch, n_chains, generator=generator).to(logits.device)
    noise = noise.scatter(1, top, -1.0)  # never re-pick a top-k chain
    explore = noise.topk(n_explore, dim=1).indices
    return torch.cat([top, explore], dim=1)


def candidate_losses(
    renderer: ChainRenderer,
    x: torch.Tensor,
    y: torch.Tensor,
    params: torch.Tensor,
    candidates: torch.Tensor,
    loss_fn: LossFn,
    spectra: TargetSpectra | list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Audio losses `[batch, C]` of each example's candidates, rendered by `ChainRenderer.render_candidates`.

    x, y `[batch, samples]`; params `[batch, n_chains, n_params]`; candidates `[batch, C]` chain indices; `spectra`:
    y's `SpectralLoss.target_spectra` when the caller has them already (else computed here, once for all chains).
    All distinct renders are scored in one loss call.
    """
    audio, examples, index = renderer.render_candidates(x, params, candidates)
    if isinstance(loss_fn, SpectralLoss):
        if spectra is None:
            spectra = loss_fn.target_spectra(y)
        values = loss_fn.from_spectra(audio, spectra, examples)
    else:
        values = loss_fn(audio, y[examples.to(y.device)])
    return values[index.to(values.device)]


@dataclass
class StepResult:
    """Losses of one step (scalars) and the winning chain of each example `[batch]`."""

    loss: torch.Tensor
    fit: torch.Tensor
    ce: torch.Tensor
    winners: torch.Tensor
    n_rendered: int


def softmin_weights(losses: torch.Tensor, temperature: float) -> torch.Tensor:
    """Weights `[batch, C]` (rows sum to 1, no gradient): softmin of losses at `temperature`, one-hot argmin at 0."""
    losses = losses.detach()
    if temperature <= 0:
        return F.one_hot(losses.argmin(dim=1), losses.shape[1]).to(losses.dtype)
    return torch.softmax(-losses / temperature, dim=1)


def parsimonious_winners(losses: torch.Tensor, sizes: torch.Tensor | None, tolerance: float) -> torch.Tensor:
    """Column of each row's winner `[batch]`: the fewest effects among candidates within `tolerance` of the best.

    losses `[batch, C]`; sizes `[batch, C]` (effects per candidate). A chain that explains y no better than one of
    its sub-chains (within a relative `tolerance`: loss <= (1 + tolerance) * best) does not win; ties in size go to
    the lower loss. `tolerance` 0 or no sizes: the plain argmin.
    """
    losses = losses.detach()
    if tolerance <= 0 or sizes is None:
        return losses.argmin(dim=1)
    best = losses.min(dim=1, keepdim=True).values
    eligible = losses <= best * (1.0 + tolerance) + 1e-12
    span = (losses.max() - losses.min()).abs() + 1.0
    score = sizes.to(losses.dtype) * span * 4.0 + losses  # size first, then loss
    return torch.where(eligible, score, torch.full_like(score, float("inf"))).argmin(dim=1)


def wta_loss(
    losses: torch.Tensor, candidates: torch.Tensor, logits: torch.Tensor, temperature: float, ce_weight: float,
    sizes: torch.Tensor | None = None, parsimony: float = 0.0,
) -> StepResult:
    """Annealed winner-takes-all loss from candidate losses `[batch, C]` and the classifier's logits.

    With `parsimony` > 0 and `sizes` `[batch, C]`, the winner (the classifier's target, and the hard-min fit at
    temperature 0) is the smallest chain within that relative tolerance of the best (`parsimonious_winners`).
    """
    column = parsimonious_winners(losses, sizes, parsimony)
    if temperature <= 0:
        weights = F.one_hot(column, losses.shape[1]).to(losses.dtype)
    else:
        weights = softmin_weights(losses, temperature)
    fit = (weights * losses).sum(dim=1).mean()
    winners = candidates.gather(1, column.unsqueeze(1)).squeeze(1)
    ce = F.cross_entropy(logits, winners)
    return StepResult(fit + ce_weight * ce, fit, ce, winners, int(candidates.numel()))


def wta_step(
    model: torch.nn.Module,
    renderer: ChainRenderer,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    top_k: int,
    n_explore: int,
    temperature: float,
    ce_weight: float = 1.0,
    generator: torch.Generator | None = None,
    parsimony: float = 0.0,
    score_loss_fn: LossFn | None = None,
) -> StepResult:
    """One WTA forward: encode y, pick candidates, render them from x, annealed-MCL loss (naive: all chains).

    At temperature 0 (the hard min) only the winner receives a gradient, so the candidates are scored without
    autograd and only each example's winner is rendered again with it (`hard_wta_step`): the same loss and
    gradient, without building and walking back through the losers' graphs. `score_loss_fn` (hard min only; default
    `loss_fn`): a cheaper proxy that picks the winner, e.g. fewer FFT sizes; the winner is still fitted on `loss_fn`.
    """
    logits, params = model(y)
    candidates = select_candidates(logits, top_k, n_explore, generator)
    sizes = renderer.chain_sizes.to(candidates.device)[candidates] if parsimony > 0 else None
    if temperature <= 0 and candidates.shape[1] > 1:  # one candidate (full chain): nothing to score
        result = hard_wta_step(renderer, x, y, loss_fn, logits, params, candidates, ce_weight, sizes, parsimony,
                               score_loss_fn)
    else:
        losses = candidate_losses(renderer, x, y, params, candidates, loss_fn)
        result = wta_loss(losses, candidates, logits, temperature, ce_weight, sizes, parsimony)
    result.loss = result.loss + anchor(logits, params)
    return result


def hard_wta_step(
    renderer: ChainRenderer,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    logits: torch.Tensor,
    params: torch.Tensor,
    candidates: torch.Tensor,
    ce_weight: float,
    sizes: torch.Tensor | None = None,
    parsimony: float = 0.0,
    score_loss_fn: LossFn | None = None,
) -> StepResult:
    """Hard winner-takes-all: score `candidates` `[batch, C]` without gradient (on `score_loss_fn`, default
    `loss_fn`), then fit each example's winner on `loss_fn`."""
    spectra = loss_fn.target_spectra(y) if isinstance(loss_fn, SpectralLoss) else None  # for scoring and refit
    with torch.no_grad():
        if score_loss_fn is None or score_loss_fn is loss_fn:
            losses = candidate_losses(renderer, x, y, params.detach(), candidates, loss_fn, spectra)
        else:
            losses = candidate_losses(renderer, x, y, params.detach(), candidates, score_loss_fn)
    column = parsimonious_winners(losses, sizes, parsimony)
    winners = candidates.gather(1, column.unsqueeze(1))  # [batch, 1]
    fit = candidate_losses(renderer, x, y, params, winners, loss_fn, spectra).mean()
    winners = winners.squeeze(1)
    ce = F.cross_entropy(logits, winners)
    return StepResult(fit + ce_weight * ce, fit, ce, winners, int(candidates.numel()))


def anchor(*outputs: torch.Tensor) -> torch.Tensor:
    """Zero that depends on every model output, so every parameter gets a (zero) gradient: DDP needs one each step."""
    return sum(0.0 * o.sum() for o in outputs)


def temperature_at(step: int, start: float, end: float, anneal_steps: int) -> float:
    """Geometric annealing from `start` to `end` over `anneal_steps`, then 0 (the hard min)."""
    if start <= 0 or step >= anneal_steps:
        return 0.0
    end = max(end, 1e-12)
    return float(start * (end / start) ** (step / max(1, anneal_steps)))
