"""Effects of the vocabulary: each one's facts (torch-free) and its differentiable twin of pedalboard, one package each.

Layout: `fxmatch/effects/<effect>/__init__.py` holds `SPEC` (an `EffectSpec`: pedalboard name, parameters, units,
training ranges, pedalboard's limits, scales; pure data, importing it needs numpy only) and
`fxmatch/effects/<effect>/twin.py` holds `process(x[batch, channels, samples], params, sample_rate)`, a
differentiable PyTorch implementation that reproduces `pedalboard.<SPEC.name>(**params)` on the same input. The
maths every spec shares (normalisation, knob positions, limits) is in `fxmatch.effects.spec`; tensor helpers and the
shared biquad filter are `fxmatch.effects.batch` and `fxmatch.effects.biquad`.

`get_spec` and the name tuples below import no torch (presets, the inference runtime, the real-time audio process
and the knobs use them); `get_effect`, and any twin name read through an effect's package
(`fxmatch.effects.compressor.process`), import the twin, hence torch and numba. For tensors on a device other than
the CPU the twins run torch ops there instead of their numba kernels (`fxmatch.effects.batch.twin_path`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fxmatch.effects.spec import EffectSpec, Limit, ParamSpec

if TYPE_CHECKING:
    import torch

    ProcessFn = Callable[[torch.Tensor, Mapping[str, torch.Tensor | float], float], torch.Tensor]
else:
    ProcessFn = Callable[..., Any]


@dataclass(frozen=True)
class Effect:
    """An effect twin: its spec and its differentiable `process` function."""

    spec: EffectSpec
    process: ProcessFn

    @property
    def name(self) -> str:
        return self.spec.name


#: Every effect in canonical chain order (a tone stage right after the drive, the output level last) and its package.
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


def _module(name: str) -> str:
    """The package of effect `name`; ValueError listing the known names otherwise."""
    if name not in EFFECT_MODULES:
        raise ValueError(f"unknown effect {name!r}; known effects: {', '.join(KNOWN_EFFECTS)}")
    return EFFECT_MODULES[name]


def get_spec(name: str) -> EffectSpec:
    """The spec of effect `name` (pedalboard's class name), torch-free; ValueError listing the known names otherwise."""
    return importlib.import_module(_module(name)).SPEC


def spec_from_dict(data: Mapping[str, Any]) -> EffectSpec:
    """An effect spec as a model stores it (`EffectSpec.to_dict`), with pedalboard's limits when fxmatch knows it."""
    name = str(data["name"])
    known = ({p.name: p.limits for p in get_spec(name).params if p.limits is not None}
             if name in EFFECT_MODULES else {})
    return EffectSpec.from_dict(data, known)


def get_effect(name: str) -> Effect:
    """The twin named `name` (imports torch); ValueError listing the known names otherwise."""
    if name not in _CACHE:
        twin = importlib.import_module(_module(name) + ".twin")
        _CACHE[name] = Effect(spec=get_spec(name), process=twin.process)
    return _CACHE[name]


__all__ = [
    "DEFAULT_EFFECTS", "EFFECT_NAMES", "KNOWN_EFFECTS", "Effect", "EffectSpec", "Limit", "ParamSpec", "get_effect",
    "get_spec",
]
