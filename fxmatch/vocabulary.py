"""The chain vocabulary: which effects, their ranges and order, and the candidate chains a model chooses from.

The parameter layout shared by the model, the exporter and the runtime is the vocabulary's `layout`
(`fxmatch.layout.ParamLayout` of its effects in order): every effect owns a fixed slice of one normalised vector of
width `n_params`, so a model's `params` output `[batch, n_chains, n_params]` holds, for candidate chain k, the values
of each effect of k in that effect's slice.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fxmatch.effects import EFFECT_NAMES, get_spec, spec_from_dict
from fxmatch.effects.spec import EffectSpec
from fxmatch.layout import ParamLayout

ChainNames = tuple[str, ...]


@dataclass(frozen=True)
class ChainVocabulary:
    """Effects in canonical order, the maximum chain length, whether other orders are candidates too, and which
    effects may only stand right after another (`only_after`: a drive's tone stage, LowpassFilter -> Distortion)."""

    effects: tuple[EffectSpec, ...]
    max_length: int = 3
    allow_permutations: bool = False
    chains: tuple[ChainNames, ...] = field(default=(), compare=False)
    #: effect -> the effect it must directly follow in every candidate chain (absent: free-standing)
    only_after: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        names = [e.name for e in self.effects]
        if len(set(names)) != len(names):
            raise ValueError(f"vocabulary lists an effect twice: {names}")
        if isinstance(self.only_after, Mapping):
            object.__setattr__(self, "only_after", tuple(sorted(self.only_after.items())))
        for effect, before in self.only_after:
            if effect not in names or before not in names:
                raise ValueError(f"only_after: {effect} after {before} names an effect outside {names}")
        if not self.chains:
            object.__setattr__(self, "chains", tuple(self._enumerate()))

    def allows(self, chain: Sequence[str]) -> bool:
        """Whether `chain` keeps the `only_after` rules (each such effect directly after its partner)."""
        rules = dict(self.only_after)
        return all(name not in rules or (i > 0 and chain[i - 1] == rules[name]) for i, name in enumerate(chain))

    def _enumerate(self) -> list[ChainNames]:
        names = [e.name for e in self.effects]
        out: list[ChainNames] = []
        for length in range(self.max_length + 1):
            for combo in itertools.combinations(names, length):
                orders = itertools.permutations(combo) if self.allow_permutations else [combo]
                out.extend(c for c in orders if self.allows(c))
        return out

    @classmethod
    def default(cls) -> ChainVocabulary:
        """DESIGN.md's default: 7 effects, chains of 0 to 3 effects in canonical order (64 chains)."""
        return cls(effects=tuple(get_spec(n) for n in EFFECT_NAMES), max_length=3)

    @property
    def effect_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.effects)

    @property
    def n_chains(self) -> int:
        return len(self.chains)

    @functools.cached_property
    def layout(self) -> ParamLayout:
        """Where each effect's normalised values sit in the shared parameter vector (the effects in order)."""
        return ParamLayout(self.effects)

    @property
    def n_params(self) -> int:
        return self.layout.n_params

    def effect(self, name: str) -> EffectSpec:
        return self.layout.slot(name).spec

    def param_slice(self, name: str) -> slice:
        """The slice of the shared parameter vector owned by effect `name`."""
        return self.layout.param_slice(name)

    def chain_index(self, chain: Sequence[str]) -> int:
        """Index of a chain among the candidates (ValueError if it is not a candidate)."""
        key = tuple(chain)
        try:
            return self.chains.index(key)
        except ValueError:
            raise ValueError(f"chain {list(key)} is not a candidate of this vocabulary") from None

    def decode(self, chain_index: int, unit_params: Sequence[float]) -> list[tuple[str, dict[str, float]]]:
        """Chain k with its params in units from a normalised vector of width `n_params`."""
        return self.layout.decode(self.chains[chain_index], unit_params)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (travels inside exported models)."""
        return {
            "effects": [e.to_dict() for e in self.effects],
            "max_length": self.max_length,
            "allow_permutations": self.allow_permutations,
            "chains": [list(c) for c in self.chains],
            "only_after": dict(self.only_after),
            "param_layout": "per-effect slices of one vector, effects in the order listed",
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChainVocabulary:
        effects = tuple(spec_from_dict(e) for e in data["effects"])
        chains = tuple(tuple(c) for c in data.get("chains", ()))
        return cls(
            effects=effects,
            max_length=int(data.get("max_length", 3)),
            allow_permutations=bool(data.get("allow_permutations", False)),
            chains=chains,
            only_after=data.get("only_after") or {},
        )
