"""Effect facts as pure data: names, units, training ranges, pedalboard's limits, scales and their maths (torch-free).

The network speaks [0, 1]; the DSP speaks dB, ms and Hz. A `ParamSpec` maps between the two with one generic rule
(linear or log scale over the training range), holds the values a preset may give the parameter (`limits`: what
pedalboard accepts, and who sets each end) and the knob maths over those limits; an `EffectSpec` groups the
parameters of one pedalboard effect. Importing this module needs numpy only (no torch, no numba): the inference
runtime, the presets, the real-time audio process and the knobs read the same specs the twins use. The maths takes
floats, numpy arrays or torch tensors (a tensor's own ops are used; torch is never imported here).
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

Scale = Literal["linear", "log"]

#: the share of a knob's arc, at each end, that reaches from the training range out to pedalboard's limit
KNOB_BEYOND_TRAINING = 0.1


class Limit(NamedTuple):
    """The values a preset may give one parameter, both ends included, and who sets each end.

    Who sets an end: "pedalboard" raises ValueError beyond it; "JUCE" is the range the JUCE processor behind the
    pedalboard class documents (asserted in JUCE debug builds, passed through by pedalboard); "fxmatch" where neither
    sets one: beyond any musical setting, with pedalboard's output still finite (JUCE takes -100 dB and below as
    silence, and a PeakFilter gain there gives NaN; pedalboard refuses a cutoff or Q <= 0 and clamps the cutoff to
    >= 0.01 Hz; times below 0 act as 0). The first-order filters' cutoff is not clamped by pedalboard: JUCE requires
    0 < cutoff <= sample_rate / 2, so a preset holds 0.01 Hz..20 kHz and rendering refuses a cutoff at or above the
    audio's Nyquist frequency (`ParamSpec.below_nyquist`). Values outside the training ranges (minimum..maximum)
    are accepted with a note: the model never estimates them.
    """

    low: float
    high: float
    low_by: str = "pedalboard"
    high_by: str = "pedalboard"


def _lib(value: Any) -> Any:
    """The array library of `value`: torch for a tensor (only when torch is already imported), else numpy."""
    torch = sys.modules.get("torch")
    return torch if torch is not None and isinstance(value, torch.Tensor) else np


@dataclass(frozen=True)
class ParamSpec:
    """One effect parameter: pedalboard name, unit, training range [minimum, maximum], scale and preset limits."""

    name: str
    unit: str
    minimum: float
    maximum: float
    scale: Scale = "linear"
    default: float | None = None
    description: str = ""
    #: pedalboard's own accepted range (what presets, knobs, refine and capture may hold); None: the training range
    limits: Limit | None = None
    #: True when a value must stay below the Nyquist frequency of the audio it renders (Hz; pedalboard does not clamp)
    below_nyquist: bool = False

    @property
    def valid_range(self) -> tuple[float, float]:
        """Values a preset may hold: pedalboard's limits when known, else the training range."""
        if self.limits is None:
            return (self.minimum, self.maximum)
        return (float(self.limits.low), float(self.limits.high))

    def __post_init__(self) -> None:
        if not self.minimum < self.maximum:
            raise ValueError(f"{self.name}: minimum {self.minimum} must be below maximum {self.maximum}")
        if self.scale not in ("linear", "log"):
            raise ValueError(f"{self.name}: scale must be 'linear' or 'log', got {self.scale!r}")
        if self.scale == "log" and self.minimum <= 0:
            raise ValueError(f"{self.name}: a log-scaled range must be positive")
        if self.limits is not None and not self.limits.low <= self.minimum < self.maximum <= self.limits.high:
            raise ValueError(f"{self.name}: limits {tuple(self.limits[:2])} must hold the training range "
                             f"[{self.minimum}, {self.maximum}]")

    @property
    def default_value(self) -> float:
        """The default (the range's midpoint in its own scale when none is given)."""
        if self.default is not None:
            return float(self.default)
        return float(self.denormalise(0.5))

    def normalise(self, value: Any) -> Any:
        """Map a value in units to [0, 1] over the training range (float, numpy array or tensor; not clipped)."""
        if self.scale == "log":
            lo, hi = math.log(self.minimum), math.log(self.maximum)
            out = (_lib(value).log(value) - lo) / (hi - lo)
        else:
            out = (value - self.minimum) / (self.maximum - self.minimum)
        return float(out) if isinstance(value, (int, float)) else out

    def denormalise(self, unit_value: Any) -> Any:
        """Map a value in [0, 1] to units over the training range (float, numpy array or tensor; not clipped)."""
        if self.scale == "log":
            lo, hi = math.log(self.minimum), math.log(self.maximum)
            out = _lib(unit_value).exp(lo + unit_value * (hi - lo))
        else:
            out = self.minimum + unit_value * (self.maximum - self.minimum)
        return float(out) if isinstance(unit_value, (int, float)) else out

    def clip(self, value: float) -> float:
        """`value` in units clipped to `valid_range` (pedalboard's limits)."""
        lo, hi = self.valid_range
        return float(min(max(float(value), lo), hi))

    def _knob_segments(self) -> tuple[float, float, float, float]:
        """(low limit, high limit, knob position of `minimum`, knob position of `maximum`)."""
        lo, hi = self.valid_range
        start = KNOB_BEYOND_TRAINING if lo < self.minimum else 0.0
        stop = 1.0 - KNOB_BEYOND_TRAINING if hi > self.maximum else 1.0
        return lo, hi, start, stop

    def _warp(self, value: float, lo: float, hi: float) -> float:
        """Where `value` sits in [lo, hi], from 0 to 1, in the parameter's scale (linear where lo <= 0)."""
        if self.scale == "log" and lo > 0:
            return math.log(value / lo) / math.log(hi / lo)
        return (value - lo) / (hi - lo)

    def _unwarp(self, fraction: float, lo: float, hi: float) -> float:
        """Inverse of `_warp`."""
        if self.scale == "log" and lo > 0:
            return lo * (hi / lo) ** fraction
        return lo + fraction * (hi - lo)

    def position(self, value: float) -> float:
        """A knob position in [0, 1] for `value` in units (clipped to `valid_range`), in the parameter's scale.

        The training range spans the middle of the knob (all of it where the limits are the training range); the
        last `KNOB_BEYOND_TRAINING` at each end reaches out to pedalboard's limit (linearly below a log
        parameter's training range when its limit is 0).
        """
        lo, hi, start, stop = self._knob_segments()
        v = self.clip(value)
        if v < self.minimum:
            return start * self._warp(v, lo, self.minimum)
        if v > self.maximum:
            return stop + (1.0 - stop) * self._warp(v, self.maximum, hi)
        return start + (stop - start) * self._warp(v, self.minimum, self.maximum)

    def value_at(self, position: float) -> float:
        """The value in units at knob position `position` in [0, 1] (clipped): the inverse of `position`."""
        lo, hi, start, stop = self._knob_segments()
        n = min(max(float(position), 0.0), 1.0)
        if n < start:
            return self.clip(self._unwarp(n / start, lo, self.minimum))
        if n > stop:
            return self.clip(self._unwarp((n - stop) / (1.0 - stop), self.maximum, hi))
        return self.clip(self._unwarp((n - start) / (stop - start), self.minimum, self.maximum))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (travels inside exported models)."""
        return {
            "name": self.name,
            "unit": self.unit,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "scale": self.scale,
            "default": self.default_value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], limits: Limit | None = None) -> ParamSpec:
        """Inverse of `to_dict` (the limits, which models do not carry, given apart)."""
        return cls(
            name=str(data["name"]),
            unit=str(data.get("unit", "")),
            minimum=float(data["minimum"]),
            maximum=float(data["maximum"]),
            scale=data.get("scale", "linear"),
            default=None if data.get("default") is None else float(data["default"]),
            limits=limits,
        )


@dataclass(frozen=True)
class EffectSpec:
    """An effect of the vocabulary: the pedalboard class name and its parameters in a fixed order."""

    name: str
    params: tuple[ParamSpec, ...]
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def n_params(self) -> int:
        return len(self.params)

    def param(self, name: str) -> ParamSpec:
        """The spec of parameter `name` (KeyError naming the effect otherwise)."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"{self.name} has no parameter {name!r} (has {', '.join(self.param_names)})")

    def defaults(self) -> dict[str, float]:
        """Default parameter values in units."""
        return {p.name: p.default_value for p in self.params}

    def denormalise(self, unit_params: Any) -> dict[str, Any]:
        """Map `[..., n_params]` values in [0, 1] (array or tensor) to a dict name -> `[...]` in units."""
        return {p.name: p.denormalise(unit_params[..., i]) for i, p in enumerate(self.params)}

    def normalise(self, params: Mapping[str, Any]) -> Any:
        """Map a dict name -> value (floats, arrays or tensors) to `[..., n_params]` in [0, 1]."""
        values = [p.normalise(params[p.name]) for p in self.params]
        lib = _lib(values[0])
        if lib is not np:
            return lib.stack(values, dim=-1)
        return np.stack([np.asarray(v, dtype=np.float64) for v in values], axis=-1)

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        """Draw parameters uniformly in each parameter's own scale (the training distribution)."""
        return {p.name: float(p.denormalise(float(rng.uniform()))) for p in self.params}

    def pedalboard_plugin(self, params: Mapping[str, float]):
        """The pedalboard plugin with these parameters (the reference implementation)."""
        import pedalboard

        cls = getattr(pedalboard, self.name)
        return cls(**{k: float(params[k]) for k in self.param_names})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": [p.to_dict() for p in self.params]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], known: Mapping[str, Limit] | None = None) -> EffectSpec:
        """Inverse of `to_dict` (a model's vocabulary); parameters named in `known` get those limits (pedalboard's,
        from the registry: `fxmatch.effects.spec_from_dict`) where the stored range lies within them."""
        name = str(data["name"])
        known = known or {}
        params = []
        for p in data["params"]:
            limits = known.get(str(p["name"]))
            lo, hi = float(p["minimum"]), float(p["maximum"])
            params.append(ParamSpec.from_dict(p, limits if limits and limits.low <= lo < hi <= limits.high else None))
        return cls(name=name, params=tuple(params))


def twin_attributes(package: str) -> Callable[[str], Any]:
    """A module `__getattr__` for an effect package: names it lacks come from its `twin` module, imported then.

    `fxmatch.effects.compressor.process` (or any other twin name) imports torch on first use, while
    `fxmatch.effects.compressor.SPEC` does not. Reading only: set a twin's flags on the twin module itself
    (`fxmatch.effects.reverb.twin.FLOAT32_EMULATION`), as a module has no hook that would forward an assignment.
    """

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.twin"), name)

    return __getattr__
