"""Differentiable twins of pedalboard's effects, one module per effect.

Each module defines `SPEC` (an `EffectSpec`: pedalboard name, parameters, units, ranges, scales) and
`process(x[batch, channels, samples], params, sample_rate)`, a differentiable PyTorch implementation that
reproduces `pedalboard.<SPEC.name>(**params)` on the same input.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from fxmatch.effects.spec import EffectSpec, ParamSpec

ProcessFn = Callable[[torch.Tensor, Mapping[str, torch.Tensor | float], float], torch.Tensor]


@dataclass(frozen=True)
class Effect:
    """An effect twin: its spec and its differentiable `process` function."""

    spec: EffectSpec
    process: ProcessFn

    @property
    def name(self) -> str:
        return self.spec.name


#: Canonical order of the default vocabulary (DESIGN.md) and the module holding each twin.
EFFECT_MODULES: dict[str, str] = {
    "Compressor": "fxmatch.effects.compressor",
    "Distortion": "fxmatch.effects.distortion",
    "PeakFilter": "fxmatch.effects.peak_filter",
    "Chorus": "fxmatch.effects.chorus",
    "Phaser": "fxmatch.effects.phaser",
    "Delay": "fxmatch.effects.delay",
    "Reverb": "fxmatch.effects.reverb",
}

EFFECT_NAMES: tuple[str, ...] = tuple(EFFECT_MODULES)

_CACHE: dict[str, Effect] = {}


def get_effect(name: str) -> Effect:
    """The twin named `name` (pedalboard's class name); ValueError listing the known names otherwise."""
    if name not in EFFECT_MODULES:
        raise ValueError(f"unknown effect {name!r}; known effects: {', '.join(EFFECT_NAMES)}")
    if name not in _CACHE:
        module = importlib.import_module(EFFECT_MODULES[name])
        _CACHE[name] = Effect(spec=module.SPEC, process=module.process)
    return _CACHE[name]


def get_spec(name: str) -> EffectSpec:
    """The parameter spec of effect `name`."""
    return get_effect(name).spec


__all__ = ["EFFECT_NAMES", "Effect", "EffectSpec", "ParamSpec", "get_effect", "get_spec"]
