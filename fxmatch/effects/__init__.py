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


#: Every twin in canonical chain order (a tone stage right after the drive, the output level last) and its module.
EFFECT_MODULES: dict[str, str] = {
    "Compressor": "fxmatch.effects.compressor",
    "Distortion": "fxmatch.effects.distortion",
    "LowpassFilter": "fxmatch.effects.lowpass_filter",
    "HighpassFilter": "fxmatch.effects.highpass_filter",
    "PeakFilter": "fxmatch.effects.peak_filter",
    "Chorus": "fxmatch.effects.chorus",
    "Phaser": "fxmatch.effects.phaser",
    "Delay": "fxmatch.effects.delay",
    "Reverb": "fxmatch.effects.reverb",
    "Gain": "fxmatch.effects.gain",
}

#: Every effect with a twin, in canonical order: what presets, chains and `get_effect` accept.
KNOWN_EFFECTS: tuple[str, ...] = tuple(EFFECT_MODULES)

#: The default vocabulary (DESIGN.md, the shipped model's 7 effects), in canonical order.
DEFAULT_EFFECTS: tuple[str, ...] = ("Compressor", "Distortion", "PeakFilter", "Chorus", "Phaser", "Delay", "Reverb")

#: The default vocabulary under its original name (its callers build the default vocabulary and training config).
EFFECT_NAMES: tuple[str, ...] = DEFAULT_EFFECTS

_CACHE: dict[str, Effect] = {}


def get_effect(name: str) -> Effect:
    """The twin named `name` (pedalboard's class name); ValueError listing the known names otherwise."""
    if name not in EFFECT_MODULES:
        raise ValueError(f"unknown effect {name!r}; known effects: {', '.join(KNOWN_EFFECTS)}")
    if name not in _CACHE:
        module = importlib.import_module(EFFECT_MODULES[name])
        _CACHE[name] = Effect(spec=module.SPEC, process=module.process)
    return _CACHE[name]


def get_spec(name: str) -> EffectSpec:
    """The parameter spec of effect `name`."""
    return get_effect(name).spec


__all__ = [
    "DEFAULT_EFFECTS", "EFFECT_NAMES", "KNOWN_EFFECTS", "Effect", "EffectSpec", "ParamSpec", "get_effect", "get_spec",
]
