"""Baselines trained by the same trainer: supervised regression and the fixed full chain.

(i) supervised: MSE on the true chain's normalised params (labels) plus chain cross-entropy to the true chain.
(ii) full chain (Peladeau & Peeters 2024): one fixed chain of every effect in canonical order, trained as an
auto-encoder through the twins (audio loss only, no chain choice). It is the WTA step on a vocabulary whose only
candidate is the full chain, so candidates, rendering and loss code are shared.
The "no effect" and "mean preset" references and the oracle are evaluation-time estimators (no training).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from fxmatch.vocabulary import ChainVocabulary
from training.wta import StepResult, anchor


def full_chain_vocabulary(vocab: ChainVocabulary) -> ChainVocabulary:
    """The vocabulary's effects with a single candidate: all of them, in canonical order."""
    return ChainVocabulary(effects=vocab.effects, max_length=len(vocab.effects), chains=(vocab.effect_names,))


def supervised_step(
    model: torch.nn.Module,
    y: torch.Tensor,
    chain: torch.Tensor,
    params: torch.Tensor,
    param_mask: torch.Tensor,
    ce_weight: float = 1.0,
    presence_weight: float = 0.0,
    membership: torch.Tensor | None = None,
    param_weight: float = 1.0,
) -> StepResult:
    """Supervised loss: `param_weight` x masked MSE of the true chain's params `[batch, n_params]` + `ce_weight` x CE
    to the true chain `[batch]`.

    With `presence_weight` > 0 and `membership` `[n_chains, n_effects]`, plus the binary cross-entropy of each
    effect's presence probability (the chain probabilities summed over the chains that hold it) against the truth.
    """
    logits, predicted = model(y)
    mine = predicted[torch.arange(predicted.shape[0], device=predicted.device), chain]  # [batch, n_params]
    mse = ((mine - params) ** 2 * param_mask).sum() / param_mask.sum().clamp_min(1.0)
    ce = F.cross_entropy(logits, chain)
    loss = param_weight * mse + ce_weight * ce
    if presence_weight > 0 and membership is not None:
        marginals = torch.softmax(logits, dim=1) @ membership  # [batch, n_effects]
        present = membership[chain]
        bce = F.binary_cross_entropy(marginals.clamp(1e-6, 1 - 1e-6), present)
        loss = loss + presence_weight * bce
    return StepResult(loss + anchor(logits, predicted), mse, ce, chain, 0)
