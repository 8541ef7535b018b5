"""The normalised parameter layout of chains (torch-free): where each effect's values sit in one vector.

Every effect of a layout owns a fixed slice of one vector of values in [0, 1] (the effects in the order given, each
effect's parameters in its spec's order), so a model's `params` output `[batch, n_chains, n_params]` holds, for
candidate chain k, the values of each effect of k in that effect's slice (slices of effects absent from k are
ignored). One layout serves the vocabulary (training, export: `ChainVocabulary.layout`), the runtime reading an
exported model (`fxmatch.inference.ModelInfo.layout`) and capture's search, whose layout adds one slot after the
effects: the chain-wide output level (`output_level`; +-GAIN_RANGE_DB, linear). The twins render a layout's vectors
in `fxmatch.render`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fxmatch.effects import EFFECT_NAMES, get_spec
from fxmatch.effects.spec import EffectSpec, ParamSpec

#: the output level a layout's output-level slot spans, +- dB (0 dB at 0.5; capture's chain-wide gain)
GAIN_RANGE_DB = 24.0


@dataclass(frozen=True)
class EffectSlot:
    """An effect of a layout and where its values sit in the vector: `[offset, offset + n_params)`."""

    spec: EffectSpec
    offset: int

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def params(self) -> tuple[ParamSpec, ...]:
        return self.spec.params

    @property
    def n_params(self) -> int:
        return self.spec.n_params

    @property
    def slice(self) -> slice:
        return slice(self.offset, self.offset + self.spec.n_params)


@dataclass(frozen=True)
class ParamLayout:
    """Effects in order, each owning a slice of one normalised vector `[width]`, and optionally one last slot for
    the chain-wide output level (`gain`)."""

    effects: tuple[EffectSpec, ...]
    output_level: bool = False
    slots: tuple[EffectSlot, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "effects", tuple(self.effects))
        names = [e.name for e in self.effects]
        if len(set(names)) != len(names):
            raise ValueError(f"a parameter layout lists an effect twice: {names}")
        slots, offset = [], 0
        for spec in self.effects:
            slots.append(EffectSlot(spec, offset))
            offset += spec.n_params
        object.__setattr__(self, "slots", tuple(slots))

    @classmethod
    def of_chains(cls, chains: Sequence[Sequence[str]], output_level: bool = False) -> ParamLayout:
        """The layout of every effect in `chains` (the default vocabulary's first, in its order, then the others by
        name), each with its registered spec (`fxmatch.effects.get_spec`)."""
        names = [n for n in EFFECT_NAMES if any(n in c for c in chains)]
        names += sorted({n for c in chains for n in c} - set(names))
        return cls(tuple(get_spec(n) for n in names), output_level)

    @classmethod
    def of_chain(cls, chain: Sequence[str]) -> ParamLayout:
        """One chain's own vector: its effects in the chain's order (not the vocabulary's, as `of_chains` puts
        them), each with its registered spec; no output-level slot (the tone match's CMA-ES vector)."""
        return cls(tuple(get_spec(n) for n in chain))

    @property
    def names(self) -> tuple[str, ...]:
        """The effects' names, in layout order."""
        return tuple(e.name for e in self.effects)

    @property
    def n_params(self) -> int:
        """Values of all the effects (the output-level slot not counted)."""
        return sum(e.n_params for e in self.effects)

    @property
    def gain(self) -> int | None:
        """Index of the output-level slot (None: the layout has none)."""
        return self.n_params if self.output_level else None

    @property
    def width(self) -> int:
        """Length of the whole vector: the effects' values and the output-level slot."""
        return self.n_params + int(self.output_level)

    def slot(self, name: str) -> EffectSlot:
        """Effect `name`'s slot (KeyError naming the layout's effects otherwise)."""
        for s in self.slots:
            if s.name == name:
                return s
        raise KeyError(f"effect {name!r} is not in the vocabulary ({', '.join(self.names)})")

    def param_slice(self, name: str) -> slice:
        """The slice of the vector owned by effect `name`."""
        return self.slot(name).slice

    def decode(self, chain: Sequence[str], unit_params: Sequence[float] | np.ndarray, within_limits: bool = False
               ) -> list[tuple[str, dict[str, float]]]:
        """`chain`'s effects with their params in units from a vector `[width]` (values clipped to [0, 1]; with
        `within_limits`, each value in units also clipped to its parameter's `valid_range`)."""
        out = []
        for name in chain:
            s = self.slot(name)
            values = {}
            for p, v in zip(s.params, unit_params[s.slice]):
                value = float(p.denormalise(min(max(float(v), 0.0), 1.0)))
                values[p.name] = p.clip(value) if within_limits else value
            out.append((name, values))
        return out

    def encode(self, chain: Sequence[str], params: Mapping[str, Mapping[str, float]] | None, base: np.ndarray,
               bounds: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
        """A copy of `base` `[width]` with each effect of `chain` that `params` (units per effect) holds set to its
        normalised values, clipped to `bounds`."""
        u = base.copy()
        for name in chain:
            if params is not None and name in params:
                s = self.slot(name)
                u[s.slice] = np.clip(np.atleast_1d(s.spec.normalise(dict(params[name]))), *bounds)
        return u

    def gain_db(self, unit: Any) -> Any:
        """Output level in dB from output-level slot value(s) in [0, 1] (float, array or tensor)."""
        return GAIN_RANGE_DB * (2.0 * unit - 1.0)

    def gain_unit(self, gain_db: Any) -> Any:
        """Output-level slot value(s) for an output level in dB (float, array or tensor; the inverse of `gain_db`,
        not clipped: beyond +-GAIN_RANGE_DB it leaves [0, 1])."""
        return 0.5 + gain_db / (2 * GAIN_RANGE_DB)
