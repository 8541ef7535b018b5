"""Capture's candidate chains: the vocabulary's (and a drive's tone stage), or an encoder's likeliest and their
sub-chains with its params and probabilities."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fxmatch.effects import KNOWN_EFFECTS, get_spec
from fxmatch.vocabulary import ChainVocabulary


@dataclass(frozen=True)
class Candidate:
    """A chain to try, optionally with initial params in units (e.g. the encoder's estimate) per effect."""

    chain: tuple[str, ...]
    params: tuple[tuple[str, dict[str, float]], ...] | None = None
    #: the encoder's probability of the chain (0-1), used by the choice when `SearchSettings.prior_weight` > 0
    prior: float | None = None


def sub_chains(chain: Sequence[str]) -> list[tuple[str, ...]]:
    """Every chain made of some of `chain`'s effects in its order, the empty chain and `chain` included."""
    names = tuple(chain)
    return [c for n in range(len(names) + 1) for c in itertools.combinations(names, n)]


#: a drive's tone stage (issue 26): real drive pedals and amps filter after the clipping, which a Distortion alone
#: cannot express; capture tries the Distortion followed by this effect even where the vocabulary lacks it
TONE_STAGE = "LowpassFilter"


def tone_stage_chains(vocab: ChainVocabulary) -> list[tuple[str, ...]]:
    """The chains of `vocab`'s effects plus TONE_STAGE (canonical order, same maximum length) in which TONE_STAGE
    directly follows Distortion and which `vocab` does not already hold (7 for the default vocabulary)."""
    if TONE_STAGE in vocab.effect_names or "Distortion" not in vocab.effect_names:
        return []
    names = [n for n in KNOWN_EFFECTS if n in vocab.effect_names or n == TONE_STAGE]
    grown = ChainVocabulary(effects=tuple(get_spec(n) for n in names), max_length=vocab.max_length,
                            allow_permutations=vocab.allow_permutations, only_after={TONE_STAGE: "Distortion"})
    return [c for c in grown.chains if TONE_STAGE in c]


def all_candidates(vocabulary: ChainVocabulary | None = None) -> list[Candidate]:
    """Every chain of the vocabulary (the default one: 64 chains) and its drive's tone-stage chains
    (`tone_stage_chains`), without initial params."""
    vocab = vocabulary or ChainVocabulary.default()
    return [Candidate(tuple(c)) for c in (*vocab.chains, *tone_stage_chains(vocab))]


def candidates_from_ranked(ranked: Sequence[Any], k: int) -> list[Candidate]:
    """The first `k` chains of an encoder's ranking (objects with `.chain` and `.params`, e.g.
    `inference.ChainEstimate`) and all their sub-chains, each with the encoder's params of its effects and its
    probability of the chain (from the whole ranking; None for a chain the ranking lacks)."""
    ranked = list(ranked)
    prior = {tuple(e.chain): float(getattr(e, "probability", math.nan)) for e in ranked}
    out: dict[tuple[str, ...], Candidate] = {}
    for estimate in ranked[: max(1, int(k))]:
        params = dict(estimate.params)
        for chain in sub_chains(estimate.chain):
            if chain not in out:
                p = prior.get(chain, math.nan)
                out[chain] = Candidate(chain, tuple((n, dict(params[n])) for n in chain),
                                       None if math.isnan(p) else p)
    return sorted(out.values(), key=lambda c: (len(c.chain), c.chain))
