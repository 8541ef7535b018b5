"""A chain of effect twins run in order, and its pedalboard reference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from fxmatch.effects import Effect, get_effect


class Chain:
    """An ordered list of distinct effect twins, e.g. `Chain(["Compressor", "Reverb"])`."""

    def __init__(self, names: Sequence[str]):
        names = list(names)
        if len(set(names)) != len(names):
            raise ValueError(f"a chain holds each effect at most once: {names}")
        self.effects: list[Effect] = [get_effect(n) for n in names]

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.effects]

    @property
    def n_params(self) -> int:
        """Total number of parameters of the chain (the width of its normalised parameter vector)."""
        return sum(e.spec.n_params for e in self.effects)

    def __len__(self) -> int:
        return len(self.effects)

    def __repr__(self) -> str:
        return f"Chain({self.names})"

    def process(
        self, x: torch.Tensor, params: Sequence[Mapping[str, torch.Tensor | float]], sample_rate: float
    ) -> torch.Tensor:
        """Run `x` `[batch, channels, samples]` through the twins; `params[i]` holds effect i's values in units."""
        if len(params) != len(self.effects):
            raise ValueError(f"{self}: expected {len(self.effects)} parameter sets, got {len(params)}")
        for effect, p in zip(self.effects, params):
            x = effect.process(x, p, sample_rate)
        return x

    def split_normalised(self, unit_params: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Split `[batch, n_params]` values in [0, 1] into per-effect dicts in units (`[batch]` each)."""
        if unit_params.shape[-1] != self.n_params:
            raise ValueError(f"{self}: expected {self.n_params} normalised params, got {unit_params.shape[-1]}")
        out, start = [], 0
        for effect in self.effects:
            n = effect.spec.n_params
            out.append(effect.spec.denormalise(unit_params[..., start : start + n]))
            start += n
        return out

    def process_normalised(self, x: torch.Tensor, unit_params: torch.Tensor, sample_rate: float) -> torch.Tensor:
        """Run `x` `[batch, channels, samples]` with params `[batch, n_params]` in [0, 1]."""
        return self.process(x, self.split_normalised(unit_params), sample_rate)

    def pedalboard(self, params: Sequence[Mapping[str, float]]):
        """The equivalent `pedalboard.Pedalboard` (the reference implementation)."""
        import pedalboard

        return pedalboard.Pedalboard(
            [e.spec.pedalboard_plugin(p) for e, p in zip(self.effects, params)]
        )

    def render_pedalboard(
        self, x: np.ndarray, params: Sequence[Mapping[str, float]], sample_rate: float
    ) -> np.ndarray:
        """Render `x` `[channels, samples]` (float32) through pedalboard with these params."""
        board = self.pedalboard(params)
        return board(np.ascontiguousarray(x, dtype=np.float32), sample_rate)
