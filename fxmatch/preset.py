"""Presets (`.fxpreset.json`): read, validate, write atomically, convert to pedalboard and to a Python snippet."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from fxmatch.audio_io import write_text_atomic
from fxmatch.effects import EFFECT_NAMES, get_spec
from fxmatch.errors import FxmatchInputError

FORMAT = "fxmatch-preset"
VERSION = 1

#: JSON schema of the preset file (structure only; ranges are checked against the effect specs).
PRESET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format", "version", "chain"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FORMAT},
        "version": {"type": "integer"},
        "chain": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["effect", "params"],
                "additionalProperties": False,
                "properties": {
                    "effect": {"type": "string"},
                    "params": {"type": "object", "additionalProperties": {"type": "number"}},
                },
            },
        },
        "estimate": {
            "type": "object",
            "properties": {
                "model": {"type": "string"},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "alternatives": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["chain", "probability"],
                        "properties": {
                            "chain": {"type": "array", "items": {"type": "string"}},
                            "probability": {"type": "number", "minimum": 0, "maximum": 1},
                        },
                    },
                },
            },
        },
    },
}


@dataclass
class EffectSettings:
    """One effect of a preset chain: pedalboard class name and parameter values in pedalboard's units."""

    effect: str
    params: dict[str, float]


@dataclass
class Preset:
    """A chain of effects with parameters, plus optional estimation metadata."""

    chain: list[EffectSettings]
    estimate: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_chain(
        cls, chain: Sequence[tuple[str, Mapping[str, float]]], estimate: Mapping[str, Any] | None = None
    ) -> Preset:
        preset = cls([EffectSettings(n, {k: float(v) for k, v in p.items()}) for n, p in chain],
                     dict(estimate) if estimate else None)
        validate_preset_dict(preset.to_dict())
        return preset

    @property
    def effect_names(self) -> list[str]:
        return [e.effect for e in self.chain]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "chain": [{"effect": e.effect, "params": dict(e.params)} for e in self.chain],
        }
        if self.estimate is not None:
            out["estimate"] = self.estimate
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_pedalboard(self):
        """The `pedalboard.Pedalboard` that renders this preset."""
        import pedalboard

        return pedalboard.Pedalboard([get_spec(e.effect).pedalboard_plugin(e.params) for e in self.chain])

    def to_python(self) -> str:
        """A standalone Python snippet that builds the same pedalboard."""
        lines = ["from pedalboard import Pedalboard, " + ", ".join(sorted(set(self.effect_names)) or ["Gain"]), ""]
        lines.append("board = Pedalboard([")
        for e in self.chain:
            args = ", ".join(f"{k}={_fmt(v)}" for k, v in e.params.items())
            lines.append(f"    {e.effect}({args}),")
        lines.append("])")
        lines.append("# audio: float32 numpy array [channels, samples]; sample_rate in Hz")
        lines.append("# processed = board(audio, sample_rate)")
        return "\n".join(lines) + "\n"


def _fmt(v: float) -> str:
    return repr(round(float(v), 6))


def validate_preset_dict(data: Any, source: str = "preset") -> None:
    """Raise FxmatchInputError naming the offending field if `data` is not a valid preset."""
    if not isinstance(data, dict):
        raise FxmatchInputError(f"{source}: a preset is a JSON object")
    if data.get("format") != FORMAT:
        raise FxmatchInputError(f"{source}: field 'format' must be {FORMAT!r}, got {data.get('format')!r}")
    if data.get("version") != VERSION:
        raise FxmatchInputError(f"{source}: field 'version' must be {VERSION}, got {data.get('version')!r}")
    try:
        jsonschema.validate(data, PRESET_SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise FxmatchInputError(f"{source}: field '{where}': {exc.message}") from None
    seen: set[str] = set()
    for i, entry in enumerate(data["chain"]):
        name = entry["effect"]
        where = f"chain[{i}]"
        if name not in EFFECT_NAMES:
            raise FxmatchInputError(
                f"{source}: {where}.effect: unknown effect {name!r} (known: {', '.join(EFFECT_NAMES)})"
            )
        if name in seen:
            raise FxmatchInputError(f"{source}: {where}.effect: {name} appears twice in the chain")
        seen.add(name)
        spec = get_spec(name)
        params = entry["params"]
        for key in params:
            if key not in spec.param_names:
                raise FxmatchInputError(
                    f"{source}: {where}.params.{key}: unknown parameter of {name} "
                    f"(expected {', '.join(spec.param_names)})"
                )
        for p in spec.params:
            if p.name not in params:
                raise FxmatchInputError(f"{source}: {where}.params.{p.name}: missing")
            v = params[p.name]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise FxmatchInputError(f"{source}: {where}.params.{p.name}: must be a finite number, got {v!r}")
            lo, hi = p.valid_range
            if not lo <= v <= hi:
                raise FxmatchInputError(
                    f"{source}: {where}.params.{p.name}: {v} is outside the allowed range [{lo}, {hi}] {p.unit}"
                )


def preset_from_dict(data: Any, source: str = "preset") -> Preset:
    """Validate and build a Preset from parsed JSON."""
    validate_preset_dict(data, source)
    chain = [EffectSettings(e["effect"], {k: float(v) for k, v in e["params"].items()}) for e in data["chain"]]
    return Preset(chain=chain, estimate=data.get("estimate"))


def read_preset(path: str | os.PathLike) -> Preset:
    """Read and validate a `.fxpreset.json` file (FxmatchInputError with the field on any problem)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise FxmatchInputError(f"{path}: no such preset file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FxmatchInputError(f"{path}: cannot read preset ({exc.__class__.__name__})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FxmatchInputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return preset_from_dict(data, str(path))


def write_preset(path: str | os.PathLike, preset: Preset) -> None:
    """Validate and write a preset atomically."""
    validate_preset_dict(preset.to_dict(), str(path))
    write_text_atomic(path, preset.to_json())
