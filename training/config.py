"""Training configuration: one dataclass, every knob named with its default, loaded from YAML.

Unknown keys, wrong types and out-of-range values are `FxmatchInputError`s naming the key (the CLI turns them into
one line and exit code 2).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from fxmatch.effects import EFFECT_NAMES, KNOWN_EFFECTS
from fxmatch.errors import FxmatchInputError
from training.model import CHAIN_SCORING, PARAM_SHARING, EncoderConfig

MODES: tuple[str, ...] = ("wta", "naive", "supervised", "full_chain")
CHAIN_PRIORS: tuple[str, ...] = ("uniform", "length_uniform")
#: the encoder's knobs are EncoderConfig's (training/model.py): TrainConfig inherits them (same names, defaults and
#: meaning, written once), and the trainer builds the encoder from exactly these keys
ENCODER_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(EncoderConfig))


@dataclass
class TrainConfig(EncoderConfig):
    """Every knob of a training run (units in the names; see configs/*.yaml): the encoder's (EncoderConfig's,
    sample_rate among them), then the run's, the data's, winner-takes-all's and the optimiser's."""

    # run
    name: str = "fxmatch"
    seed: int = 0
    source_seed: int | None = None  # seed of the dry sources (None: seed); lets a new stage reuse a cached midi pool
    mode: str = "wta"  # wta | naive (all chains every step) | supervised (baseline i) | full_chain (baseline ii)
    device: str = "auto"  # auto | cpu | cuda | cuda:N (under torchrun, auto picks cuda:LOCAL_RANK)
    torch_threads: int = 0  # intra-op threads of the training process (0: PyTorch's default)
    init_from: str | None = None  # a checkpoint whose encoder weights start this run (e.g. simulation -> WTA)
    # vocabulary
    effects: list[str] = field(default_factory=lambda: list(EFFECT_NAMES))
    max_length: int = 3
    allow_permutations: bool = False
    #: effect -> the effect it may only directly follow (e.g. {LowpassFilter: Distortion}: a drive's tone stage)
    only_after: dict[str, str] | None = None
    # data
    source: str = "synth"  # synth | folder | midi | mix
    source_path: str | None = None  # folder of WAV/FLAC (folder), or a soundfont (midi, when soundfont is unset)
    source_mix: dict[str, float] | None = None  # mix: source kind -> weight, e.g. {synth: 0.4, midi: 0.6}
    soundfont: str | None = None  # General MIDI soundfont of the midi source (None: the system's)
    soundfont2: str | None = None  # the midi2 source's soundfont (None: TimGM6mb)
    #: what a recording brings, added to every dry clip (training.recorded.RecordingLike): part -> probability, parts
    #: room, mic, noise, double, dynamics; None: clips as the sources give them
    augment: dict[str, float] | None = None
    midi_pool: int = 0  # midi: phrases rendered once and reused with fresh chains (0: render every clip)
    pool_cache_dir: str | None = None  # where the midi pool is cached (None: not cached)
    level_jitter_db: float = 0.0  # dry level varied uniformly within ± this many dB per example
    instruments: list[str] | None = None  # synth instruments (None: all)
    clip_seconds: float = 2.0
    rms_dbfs: float = -20.0
    heldout_fraction: float = 0.1
    renderer: str = "pedalboard"  # pedalboard (the hidden generator) | twins | sox (training/foreign.py)
    #: pedalboard renderer: the share of effects rendered by another implementation of their family
    #: (training.variants: other clippers, compressor detectors and knees, phaser stage counts, reverbs, ...)
    variant_share: float = 0.0
    chain_weights: dict[str, float] | None = None  # 'Compressor>Reverb' -> weight, 'dry' for no effect
    #: the chain prior of the data: uniform (every candidate chain alike) | length_uniform (every chain length alike,
    #: chains of one length alike); chain_weights multiply it
    chain_prior: str = "uniform"
    train_examples: int = 0  # distinct training examples, reused cyclically (0: a fresh example every time)
    num_workers: int = 0  # DataLoader worker processes per training process
    # winner-takes-all
    top_k: int = 4  # candidates from the classifier's top scores
    n_explore: int = 2  # extra random candidate chains per example
    explore_steps: int = 0  # for the first steps, all top_k + n_explore candidates are random (classifier warm-up)
    temperature_start: float = 1.0  # softmin temperature of annealed MCL (loss units)
    temperature_end: float = 0.01  # reached after anneal_steps, then the hard min (0)
    anneal_steps: int = 2000
    ce_weight: float = 1.0  # weight of the chain classifier's cross-entropy
    parsimony: float = 0.0  # wta: the winner is the smallest chain within this relative tolerance of the best loss
    presence_weight: float = 0.0  # supervised: weight of the BCE of per-effect presence (chain marginals)
    param_weight: float = 1.0  # supervised: weight of the parameter MSE
    fft_sizes: list[int] = field(default_factory=lambda: [2048, 1024, 512, 256])
    #: wta, hard min: FFT sizes of a cheaper loss that only picks each example's winner (fitted on fft_sizes); None:
    #: fft_sizes (the winner of the full loss)
    score_fft_sizes: list[int] | None = None
    # optimisation
    steps: int = 10000
    batch_size: int = 8  # per process
    lr: float = 3.0e-4
    weight_decay: float = 0.0
    warmup_steps: int = 100
    lr_min_ratio: float = 0.1  # cosine decay to lr * lr_min_ratio at the last step
    grad_clip: float = 5.0  # max gradient norm (0: no clipping)
    #: AdamW's fused kernel (one pass over all parameters; on a 2-core CPU 20x cheaper than the per-tensor loop, equal
    #: to it up to float32 rounding, ~1e-8); False: the per-tensor loop (the steps of runs made before this knob)
    fused_optimizer: bool = False
    #: the encoder's 2-D convolutions in channels-last (NHWC) memory format: the same losses and weights to float32
    #: rounding, a supervised step 11-20 % cheaper on a CPU (max-pooling 5x, the convolutions' backward 1.2x; `fxmatch
    #: bench training`, supervised_channels_last); may change on --resume. False: the plain NCHW layout
    channels_last: bool = True
    # logging
    log_every: int = 10
    checkpoint_every: int = 500
    progress: bool = True

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _type_schema(hint: Any) -> dict[str, Any]:
    """The JSON schema of a type hint (int, float, str, bool, lists, str-keyed dicts, unions with None)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return {}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_type_schema(a) for a in args]}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1])}
    return {"type": {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string"}[hint]}


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _at_least(n: float) -> tuple[dict[str, Any], str]:
    return {"minimum": n}, {0: "at least 0", 1: "at least 1"}.get(n, f"at least {n}")


def _rules() -> dict[str, tuple[dict[str, Any], str]]:
    """Per key: the JSON schema its value must also meet, and how the error words it."""
    from training.data import RENDERERS
    from training.sources import SOURCE_KINDS

    positive = ({"exclusiveMinimum": 0}, "positive")
    non_negative = ({"minimum": 0}, "a number >= 0")
    rules: dict[str, tuple[dict[str, Any], str]] = {
        "mode": ({"enum": list(MODES)}, f"one of {', '.join(MODES)}"),
        "param_sharing": ({"enum": list(PARAM_SHARING)}, " or ".join(PARAM_SHARING)),
        "chain_scoring": ({"enum": list(CHAIN_SCORING)}, " or ".join(CHAIN_SCORING)),
        "source": ({"enum": list(SOURCE_KINDS)}, f"one of {', '.join(SOURCE_KINDS)}"),
        "renderer": ({"enum": list(RENDERERS)}, f"one of {', '.join(RENDERERS)}"),
        "chain_prior": ({"enum": list(CHAIN_PRIORS)}, " or ".join(CHAIN_PRIORS)),
        "device": ({"pattern": "^(auto|cpu|cuda(:[0-9]+)?)$"}, "auto, cpu, cuda or cuda:N"),
        "effects": ({"minItems": 1, "uniqueItems": True, "items": {"enum": list(KNOWN_EFFECTS)}},
                    f"distinct effect names among {', '.join(KNOWN_EFFECTS)}"),
        "tcn_dilations": ({"items": {"minimum": 1}}, "a list of ints >= 1"),
        "channels": ({"minItems": 1, "items": {"minimum": 1}}, "a list of positive ints"),
        "fft_sizes": ({"minItems": 1, "items": {"minimum": 16}}, "a list of ints >= 16"),
        "score_fft_sizes": ({"anyOf": [{"type": "null"}, {"minItems": 1, "items": {"minimum": 16}}]},
                            "null or a list of ints >= 16"),
        "envelope_lags": ({"minimum": 0}, "at least 0 (0: none)"),
        "spectrum_bins": ({"anyOf": [{"const": 0}, {"minimum": 16}]}, "0 (none) or at least 16"),
        "level_jitter_db": ({"minimum": 0, "maximum": 40}, "between 0 and 40"),
        "variant_share": ({"minimum": 0, "maximum": 1}, "between 0 and 1 (and 0 unless renderer is pedalboard)"),
        "clip_seconds": positive,
        "lr": positive,
        "lr_min_ratio": ({"minimum": 0, "maximum": 1}, "between 0 and 1"),
        "heldout_fraction": ({"minimum": 0, "exclusiveMaximum": 1}, "in [0, 1)"),
        "dropout": ({"minimum": 0, "exclusiveMaximum": 1}, "in [0, 1)"),
    }
    for key in ("sample_rate", "n_fft", "hop_length", "n_mels", "hidden", "steps", "batch_size", "top_k", "log_every",
                "checkpoint_every", "tcn_channels", "envelope_features", "spectrum_features"):
        rules[key] = _at_least(1)
    for key in ("torch_threads", "n_explore", "explore_steps", "anneal_steps", "warmup_steps", "train_examples",
                "num_workers", "midi_pool"):
        rules[key] = _at_least(0)
    for key in ("temperature_start", "temperature_end", "ce_weight", "presence_weight", "param_weight", "parsimony",
                "weight_decay", "grad_clip"):
        rules[key] = non_negative
    return rules


def validate(config: TrainConfig) -> None:
    """Check types and ranges (a JSON schema per key) and the keys' relations; FxmatchInputError naming the key."""
    hints = typing.get_type_hints(TrainConfig)
    rules = _rules()
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        try:
            jsonschema.validate(value, _type_schema(hints[f.name]))
        except jsonschema.ValidationError:
            raise FxmatchInputError(f"config: {f.name} must be {_type_name(hints[f.name])}, got {value!r}") from None
        if hints[f.name] is float:  # ints given for floats
            setattr(config, f.name, float(value))
        if f.name in rules:
            schema, what = rules[f.name]
            try:
                jsonschema.validate(value, schema)
            except jsonschema.ValidationError:
                raise FxmatchInputError(f"config: {f.name} must be {what}, got {value!r}") from None

    def need(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise FxmatchInputError(f"config: {key} must be {what}, got {getattr(config, key)!r}")

    # relations between keys
    need(config.time_pools is None or (len(config.time_pools) == len(config.channels)
                                       and all(p >= 1 for p in config.time_pools)),
         "time_pools", "one factor >= 1 per entry of channels")
    need(config.envelope_lags == 0 or (config.envelope_bands >= 1 and config.n_mels % config.envelope_bands == 0),
         "envelope_bands", "a divisor of n_mels")
    need(config.source != "mix" or bool(config.source_mix), "source_mix", "a mapping of source kind to weight")
    need(config.variant_share == 0 or config.renderer == "pedalboard", "variant_share", rules["variant_share"][1])
    need(config.max_length <= len(config.effects) and config.max_length >= 0, "max_length",
         f"between 0 and {len(config.effects)}")
    need(all(a in config.effects and b in config.effects and a != b for a, b in (config.only_after or {}).items()),
         "only_after", "a mapping between two different effects of the config's effects")
    need(config.f_min < config.f_max and config.f_min > 0, "f_min", "positive and below f_max")
    need(config.n_fft <= config.sample_rate * config.clip_seconds, "n_fft", "at most the clip length in samples")


def config_from_dict(data: Mapping[str, Any], where: str = "config") -> TrainConfig:
    """A TrainConfig from a mapping; unknown keys are an error that suggests the closest known key."""
    if not isinstance(data, Mapping):
        raise FxmatchInputError(f"{where}: expected a mapping of knob: value, got {type(data).__name__}")
    known = [f.name for f in dataclasses.fields(TrainConfig)]
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise FxmatchInputError(f"{where}: unknown key {key!r}{hint}")
    data = dict(data)
    hints = typing.get_type_hints(TrainConfig)
    for key, value in data.items():
        if hints[key] is float and isinstance(value, str):  # PyYAML reads 3e-4 (no dot) as a string
            try:
                data[key] = float(value)
            except ValueError:
                pass
    try:
        return TrainConfig(**data)
    except FxmatchInputError as exc:
        raise FxmatchInputError(f"{where}: {str(exc).removeprefix('config: ')}") from None


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a YAML config file (missing keys take their defaults), then apply `overrides`."""
    path = Path(path)
    if not path.is_file():
        raise FxmatchInputError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise FxmatchInputError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise FxmatchInputError(f"{path}: expected a mapping of knob: value at the top level")
    return config_from_dict({**data, **(overrides or {})}, where=str(path))
