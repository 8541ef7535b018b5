"""Presets (`.fxpreset.json`): read, validate, write atomically, convert to pedalboard and to a Python snippet."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from fxmatch.audio_io import write_text_atomic
from fxmatch.chains import chain_label, split_output_level, with_output_level
from fxmatch.effects import KNOWN_EFFECTS, Limit, get_spec
from fxmatch.errors import FxmatchInputError

FORMAT = "fxmatch-preset"
VERSION = 1

#: a preset file larger than this is refused (real presets are a few hundred bytes)
MAX_PRESET_BYTES = 1_000_000

log = logging.getLogger("fxmatch")

#: What each parameter may hold in a preset: effect -> parameter -> `Limit` (both ends included, and who sets each),
#: read from the effect specs (`ParamSpec.limits`; the reasons are in `fxmatch.effects.spec.Limit`).
PEDALBOARD_LIMITS: dict[str, dict[str, Limit]] = {
    name: {p.name: p.limits for p in get_spec(name).params if p.limits is not None} for name in KNOWN_EFFECTS
}

#: Parameters that must stay below the Nyquist frequency of the audio a preset renders (pedalboard passes them to
#: JUCE unclamped, and the first-order filters are unstable above it): effect -> parameter in Hz (from the specs).
NYQUIST_BOUND: dict[str, str] = {
    name: p.name for name in KNOWN_EFFECTS for p in get_spec(name).params if p.below_nyquist
}


def preset_range(effect: str, param: str) -> tuple[float, float]:
    """The values a preset may give `effect`.`param` (its spec's `valid_range`: pedalboard's limits)."""
    return get_spec(effect).param(param).valid_range


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
        """Every entry's effect name, the output level's Gain included."""
        return [e.effect for e in self.chain]

    @property
    def output_level_db(self) -> float:
        """The chain-wide output level in dB (a trailing Gain; 0.0 without one)."""
        return split_output_level([(e.effect, e.params) for e in self.chain])[1]

    @property
    def chain_names(self) -> list[str]:
        """The chain's effects without the output level (what a model or capture chooses)."""
        return [name for name, _ in split_output_level([(e.effect, e.params) for e in self.chain])[0]]

    @property
    def label(self) -> str:
        """'Distortion -> LowpassFilter, output -3.0 dB' or 'no effect' (fxmatch.chains.chain_label)."""
        return chain_label(self.chain_names, output_db=self.output_level_db)

    def with_output_level(self, gain_db: float) -> Preset:
        """A copy whose output level is `gain_db` dB (a trailing Gain; none when inaudible)."""
        chain = with_output_level([(e.effect, e.params) for e in self.chain], gain_db)
        return Preset([EffectSettings(n, p) for n, p in chain], self.estimate, dict(self.extra))

    def training_range_notes(self) -> list[str]:
        """One line per value outside the range the estimator was trained on (pedalboard plays it all the same)."""
        notes = []
        for i, e in enumerate(self.chain):
            for p in get_spec(e.effect).params:
                v = e.params.get(p.name)
                if v is not None and not p.minimum <= v <= p.maximum:
                    unit = f" {p.unit}" if p.unit else ""
                    notes.append(f"chain[{i}].params.{p.name} = {v:g}{unit} is outside the model's training range "
                                 f"[{p.minimum:g}, {p.maximum:g}]{unit}: pedalboard plays it, but estimates "
                                 f"never return it")
        return notes

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

    def check_sample_rate(self, sample_rate: float, source: str = "preset") -> None:
        """FxmatchInputError naming the field if a value cannot be rendered at `sample_rate` Hz (NYQUIST_BOUND)."""
        nyquist = float(sample_rate) / 2.0
        for i, e in enumerate(self.chain):
            param = NYQUIST_BOUND.get(e.effect)
            if param is not None and e.params[param] >= nyquist:
                raise FxmatchInputError(
                    f"{source}: chain[{i}].params.{param}: {e.params[param]:g} Hz is not below the Nyquist frequency "
                    f"of {sample_rate:g} Hz audio ({nyquist:g} Hz): pedalboard's {e.effect} would be unstable "
                    f"(lower the cutoff or use audio at a higher sample rate)"
                )

    def to_pedalboard(self, sample_rate: float | None = None):
        """The `pedalboard.Pedalboard` that renders this preset (checked against `sample_rate` in Hz when given)."""
        import pedalboard

        if sample_rate is not None:
            self.check_sample_rate(sample_rate)
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
        if name not in KNOWN_EFFECTS:
            raise FxmatchInputError(
                f"{source}: {where}.effect: unknown effect {name!r} (known: {', '.join(KNOWN_EFFECTS)})"
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
            lo, hi = preset_range(name, p.name)
            if not lo <= v <= hi:
                unit = f" {p.unit}" if p.unit else ""
                raise FxmatchInputError(
                    f"{source}: {where}.params.{p.name}: {v:g} is outside what pedalboard's {name} accepts "
                    f"[{lo:g}, {hi:g}]{unit}"
                )


def preset_from_dict(data: Any, source: str = "preset") -> Preset:
    """Validate and build a Preset from parsed JSON."""
    validate_preset_dict(data, source)
    chain = [EffectSettings(e["effect"], {k: float(v) for k, v in e["params"].items()}) for e in data["chain"]]
    return Preset(chain=chain, estimate=data.get("estimate"))


def _too_big(path: str | os.PathLike, size: str) -> FxmatchInputError:
    return FxmatchInputError(f"{path}: {size}; a preset file is at most {MAX_PRESET_BYTES // 1_000_000} MB "
                             f"({MAX_PRESET_BYTES} bytes): is this the right file?")


def read_preset(path: str | os.PathLike) -> Preset:
    """Read and validate a `.fxpreset.json` file (FxmatchInputError with the field on any problem).

    Files over MAX_PRESET_BYTES are refused before they are read; each value outside the model's training range
    is logged as a note (logger "fxmatch", warning level) and listed by `Preset.training_range_notes()`.
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_PRESET_BYTES:
                raise _too_big(path, f"{size} bytes")
            raw = fh.read(MAX_PRESET_BYTES + 1)  # a FIFO or a device has no size: read one byte past the cap
        if len(raw) > MAX_PRESET_BYTES:
            raise _too_big(path, f"more than {MAX_PRESET_BYTES} bytes")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise FxmatchInputError(f"{path}: no such preset file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FxmatchInputError(f"{path}: cannot read preset ({exc.__class__.__name__})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FxmatchInputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    preset = preset_from_dict(data, str(path))
    for note in preset.training_range_notes():
        log.warning("note: %s: %s", path, note)
    return preset


def write_preset(path: str | os.PathLike, preset: Preset) -> None:
    """Validate and write a preset atomically."""
    validate_preset_dict(preset.to_dict(), str(path))
    write_text_atomic(path, preset.to_json())
