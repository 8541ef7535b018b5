"""Parameter and effect specifications shared by every effect twin.

The network speaks [0, 1]; the DSP speaks dB, ms and Hz. A `ParamSpec` maps between the two with one
generic rule (linear or log scale), and an `EffectSpec` groups the parameters of one pedalboard effect.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

Scale = Literal["linear", "log"]


@dataclass(frozen=True)
class ParamSpec:
    """One effect parameter: pedalboard name, unit, sampling range [minimum, maximum] and scale."""

    name: str
    unit: str
    minimum: float
    maximum: float
    scale: Scale = "linear"
    default: float | None = None
    description: str = ""
    #: pedalboard's own accepted range (presets may use it); None means the sampling range.
    limits: tuple[float, float] | None = None

    @property
    def valid_range(self) -> tuple[float, float]:
        """Values a preset may hold: pedalboard's limits when known, else the sampling range."""
        return self.limits if self.limits is not None else (self.minimum, self.maximum)

    def __post_init__(self) -> None:
        if not self.minimum < self.maximum:
            raise ValueError(f"{self.name}: minimum {self.minimum} must be below maximum {self.maximum}")
        if self.scale not in ("linear", "log"):
            raise ValueError(f"{self.name}: scale must be 'linear' or 'log', got {self.scale!r}")
        if self.scale == "log" and self.minimum <= 0:
            raise ValueError(f"{self.name}: a log-scaled range must be positive")

    @property
    def default_value(self) -> float:
        """The default (the range's midpoint in its own scale when none is given)."""
        if self.default is not None:
            return float(self.default)
        return float(self.denormalise(0.5))

    def normalise(self, value: Any) -> Any:
        """Map a value in units to [0, 1] (float, numpy array or tensor; not clipped)."""
        lib = torch if isinstance(value, torch.Tensor) else np
        if self.scale == "log":
            lo, hi = math.log(self.minimum), math.log(self.maximum)
            out = (lib.log(value) - lo) / (hi - lo)
        else:
            out = (value - self.minimum) / (self.maximum - self.minimum)
        return float(out) if isinstance(value, (int, float)) else out

    def denormalise(self, unit_value: Any) -> Any:
        """Map a value in [0, 1] to units (float, numpy array or tensor)."""
        lib = torch if isinstance(unit_value, torch.Tensor) else np
        if self.scale == "log":
            lo, hi = math.log(self.minimum), math.log(self.maximum)
            out = lib.exp(lo + unit_value * (hi - lo))
        else:
            out = self.minimum + unit_value * (self.maximum - self.minimum)
        return float(out) if isinstance(unit_value, (int, float)) else out

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
    def from_dict(cls, data: Mapping[str, Any]) -> ParamSpec:
        """Inverse of `to_dict`."""
        return cls(
            name=str(data["name"]),
            unit=str(data.get("unit", "")),
            minimum=float(data["minimum"]),
            maximum=float(data["maximum"]),
            scale=data.get("scale", "linear"),
            default=None if data.get("default") is None else float(data["default"]),
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

    def denormalise(self, unit_params: torch.Tensor | np.ndarray) -> dict[str, Any]:
        """Map `[..., n_params]` values in [0, 1] to a dict name -> `[...]` in units."""
        return {p.name: p.denormalise(unit_params[..., i]) for i, p in enumerate(self.params)}

    def normalise(self, params: Mapping[str, Any]) -> Any:
        """Map a dict name -> value (floats, arrays or tensors) to `[..., n_params]` in [0, 1]."""
        values = [self.param(p.name).normalise(params[p.name]) for p in self.params]
        if isinstance(values[0], torch.Tensor):
            return torch.stack(values, dim=-1)
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
    def from_dict(cls, data: Mapping[str, Any]) -> EffectSpec:
        return cls(name=str(data["name"]), params=tuple(ParamSpec.from_dict(p) for p in data["params"]))


def as_batch_param(value: Any, batch: int, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a float or `[batch]` tensor parameter to a `[batch]` tensor on `like`'s device and dtype."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        t = t.expand(batch)
    return t.reshape(batch)
