"""The inference runtime: an exported fxmatch ONNX model -> ranked (chain, params, probability) estimates.

Needs numpy, onnxruntime and soxr only (no torch, no `training`), so the real-time engine and the GUI can use it.
Everything needed to decode the outputs comes from the model's `metadata_props` (DESIGN.md "ONNX model
contract"): sample rate, analysis window, the chain vocabulary with parameter names, units, ranges and scales.

    session = EstimatorSession("models/fxmatch-default.onnx")      # CUDA when it really works, else CPU
    result = session.estimate_file("target.wav")                    # any rate, mono or stereo, any length
    result.best.chain, result.best.params, result.best.probability, result.n_agree, result.n_windows
    describe_confidence(result).text                                # "fairly sure (p = 0.82)", ...

A long file is cut into analysis windows (hop = half a window unless the model says otherwise), silent windows are
skipped, the chain probabilities are averaged over windows, the params of each chain are averaged over windows
weighted by that chain's probability, and `consistency` is the fraction of windows whose own top chain is the
aggregate's top chain ("windows agreeing: n_agree of n_windows"). Files are streamed in blocks (bounded memory
whatever their length).

Chain probabilities are softmax(chain_logits / T) with the model's `chain_temperature` T (metadata, fitted on
held-out examples by `fxmatch export --calibrate`; 1.0 when absent), so that "p = 0.8" is right about 8 times in
10. Inputs shorter than `MIN_INPUT_SECONDS` are refused; shorter than the analysis window, or a WAV whose data is
shorter than its header says, are estimated with a warning in `Estimate.warnings`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import struct
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from fxmatch.audio_io import rms_dbfs  # defined with the audio helpers; realtime, gui and refine import it from here
from fxmatch.chains import chain_label
from fxmatch.effects import spec_from_dict
from fxmatch.errors import FxmatchInputError, require_file
from fxmatch.layout import EffectSlot, ParamLayout
from fxmatch.threads import ORT_NO_SPIN_CONFIG

log = logging.getLogger("fxmatch.inference")

#: `metadata_props` keys written by `export` and read here (each value a JSON string).
META_FORMAT = "fxmatch_format"
META_SAMPLE_RATE = "sample_rate"
META_WINDOW = "analysis_window"
META_VOCABULARY = "vocabulary"
META_MODEL = "model"
META_TRAINING_DATA = "training_data"
#: optional: the temperature T of the chain logits (probabilities = softmax(logits / T)), and how it was fitted
META_TEMPERATURE = "chain_temperature"
META_CALIBRATION = "calibration"
#: how the chain to name is picked from the probabilities: {"rule": "presence", "threshold": T} names every effect
#: whose presence probability (the sum of the chains holding it) is at least T; absent: the likeliest chain
META_DECISION = "decision"
MODEL_FORMAT = "fxmatch-onnx-model"
MODEL_FORMAT_VERSION = 1
REQUIRED_METADATA = (META_FORMAT, META_SAMPLE_RATE, META_WINDOW, META_VOCABULARY, META_MODEL)

INPUT_NAME = "audio"
OUTPUT_NAMES = ("chain_logits", "params")

#: windows whose RMS is below this level (dBFS) are skipped as silent.
SILENCE_DBFS = -70.0
#: recordings shorter than this (s) are refused as too short to analyse
MIN_INPUT_SECONDS = 0.25
#: how sure an estimate is, from its top chain probability p: "sure" at p >= SURE_P, "fairly sure" at
#: p >= FAIRLY_SURE_P, "not very sure" at p >= UNSURE_P when the runner-up is at least CLOSE_MARGIN below, else
#: "unsure" (and a warning)
SURE_P, FAIRLY_SURE_P, UNSURE_P, CLOSE_MARGIN = 0.9, 0.7, 0.5, 0.2

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


# ----------------------------------------------------------------------------------------------------------------
# model description (a torch-free reading of the vocabulary dict that `ChainVocabulary.to_dict` writes)


@dataclass(frozen=True)
class ModelInfo:
    """Everything the runtime reads from an exported model's metadata."""

    name: str
    version: str
    sample_rate: int
    window_samples: int
    hop_samples: int
    #: where each effect's normalised values sit in the `params` output (the vocabulary's effects in order)
    layout: ParamLayout
    chains: tuple[tuple[str, ...], ...]
    training_data: Any = None
    metadata: Mapping[str, Any] = field(default_factory=dict, repr=False)
    #: chain logits are divided by this before the softmax (1.0: the model is not calibrated)
    chain_temperature: float = 1.0
    #: the decision rule's presence threshold (`decide`); None: name the likeliest chain
    presence_threshold: float | None = None

    @property
    def calibrated(self) -> bool:
        """True when the metadata holds a fitted chain temperature."""
        return META_TEMPERATURE in self.metadata

    @property
    def n_chains(self) -> int:
        return len(self.chains)

    @property
    def window_seconds(self) -> float:
        return self.window_samples / self.sample_rate

    @property
    def label(self) -> str:
        """`name-vVERSION` (the preset's `estimate.model`)."""
        suffix = f"-v{self.version}"
        return self.name if not self.version or self.name.endswith(suffix) else self.name + suffix

    @property
    def effects(self) -> tuple[EffectSlot, ...]:
        """The vocabulary's effects with their slices of the parameter vector, in layout order."""
        return self.layout.slots

    @property
    def n_params(self) -> int:
        return self.layout.n_params

    def effect(self, name: str) -> EffectSlot:
        return self.layout.slot(name)

    def decode(self, chain_index: int, unit_params: Sequence[float]) -> list[tuple[str, dict[str, float]]]:
        """Chain `chain_index` with its params in units, from a normalised vector in the shared layout."""
        return self.layout.decode(self.chains[chain_index], unit_params)

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str], source: str = "model") -> ModelInfo:
        """Parse and validate `metadata_props` (FxmatchInputError naming the problem)."""
        if META_FORMAT not in meta:
            raise FxmatchInputError(
                f"{source}: not an fxmatch model (no '{META_FORMAT}' metadata; export one with `fxmatch export`)"
            )
        missing = [k for k in REQUIRED_METADATA if k not in meta]
        if missing:
            raise FxmatchInputError(f"{source}: fxmatch model metadata lacks {', '.join(missing)}")
        parsed: dict[str, Any] = {}
        for key, text in meta.items():
            try:
                parsed[key] = json.loads(text)
            except (TypeError, json.JSONDecodeError):
                if key in REQUIRED_METADATA or key == META_TRAINING_DATA:
                    raise FxmatchInputError(f"{source}: metadata '{key}' is not valid JSON") from None
                parsed[key] = text
        fmt = parsed[META_FORMAT]
        if not isinstance(fmt, dict) or fmt.get("format") != MODEL_FORMAT:
            raise FxmatchInputError(f"{source}: metadata '{META_FORMAT}' is not {MODEL_FORMAT!r}")
        if fmt.get("version") != MODEL_FORMAT_VERSION:
            raise FxmatchInputError(
                f"{source}: model format version {fmt.get('version')!r} is not supported "
                f"(this fxmatch reads version {MODEL_FORMAT_VERSION})"
            )
        try:
            sample_rate = int(parsed[META_SAMPLE_RATE])
            window = parsed[META_WINDOW]
            window_samples = int(window["samples"])
            hop_samples = int(window.get("hop_samples") or max(1, window_samples // 2))
            model = parsed[META_MODEL]
            name, version = str(model.get("name", "fxmatch")), str(model.get("version", ""))
            layout, chains = _parse_vocabulary(parsed[META_VOCABULARY])
        except FxmatchInputError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FxmatchInputError(f"{source}: malformed fxmatch metadata ({type(exc).__name__}: {exc})") from None
        if sample_rate <= 0 or window_samples <= 0 or hop_samples <= 0:
            raise FxmatchInputError(f"{source}: metadata has a non-positive sample rate, window or hop")
        temperature = parsed.get(META_TEMPERATURE, 1.0)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
                math.isfinite(temperature) and temperature > 0):
            raise FxmatchInputError(f"{source}: metadata '{META_TEMPERATURE}' must be a positive number, "
                                    f"got {temperature!r}")
        return cls(name=name, version=version, sample_rate=sample_rate, window_samples=window_samples,
                   hop_samples=hop_samples, layout=layout, chains=chains,
                   training_data=parsed.get(META_TRAINING_DATA), metadata=parsed,
                   chain_temperature=float(temperature),
                   presence_threshold=_parse_decision(parsed.get(META_DECISION), source))


def _parse_decision(decision: Any, source: str) -> float | None:
    """The presence threshold of a `decision` metadata entry (None when absent)."""
    if decision is None:
        return None
    threshold = decision.get("threshold") if isinstance(decision, Mapping) else None
    if (not isinstance(decision, Mapping) or decision.get("rule") != "presence" or isinstance(threshold, bool)
            or not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0):
        raise FxmatchInputError(f"{source}: metadata '{META_DECISION}' must be {{\"rule\": \"presence\", "
                                f"\"threshold\": T}} with 0 < T < 1, got {decision!r}")
    return float(threshold)


@functools.lru_cache(maxsize=16)
def _membership(chains: tuple[tuple[str, ...], ...], effects: tuple[str, ...]) -> np.ndarray:
    """`[n_chains, n_effects]` 1.0 where the chain holds the effect."""
    return np.array([[name in c for name in effects] for c in chains], dtype=np.float64)


def presence_probabilities(info: ModelInfo, probs: np.ndarray) -> dict[str, float]:
    """Each effect's probability of being in the chain: the sum of the probabilities `[n_chains]` of the chains
    holding it."""
    names = tuple(e.name for e in info.effects)
    presence = np.asarray(probs, dtype=np.float64).reshape(-1) @ _membership(info.chains, names)
    return dict(zip(names, presence.tolist()))


def decide(info: ModelInfo, probs: np.ndarray) -> int:
    """The index of the chain to name for probabilities `[n_chains]`.

    With a presence threshold T (the model's `decision` metadata): the chain of every effect whose presence
    probability is at least T, in the vocabulary's order (an effect is named only when it is likely heard; with T >=
    0.5 this is the Bayes choice for each effect on its own). When that chain is not a candidate (too many effects),
    the likeliest candidate made only of effects of it. Without a threshold: the likeliest chain.
    """
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    best = int(np.argmax(probs))
    if info.presence_threshold is None:
        return best
    presence = presence_probabilities(info, probs)
    named = {name for name, p in presence.items() if p >= info.presence_threshold}
    subsets = [k for k, c in enumerate(info.chains) if set(c) <= named]
    exact = [k for k in subsets if set(info.chains[k]) == named]
    if exact:
        return max(exact, key=lambda k: probs[k])
    return max(subsets, key=lambda k: probs[k]) if subsets else best


def _parse_vocabulary(vocab: Mapping[str, Any]) -> tuple[ParamLayout, tuple[tuple[str, ...], ...]]:
    """The parameter layout and the candidate chains of a model's vocabulary dict (ValueError naming the problem)."""
    effects = []
    for e in vocab["effects"]:
        for p in e["params"]:
            scale = str(p.get("scale", "linear"))
            lo, hi = float(p["minimum"]), float(p["maximum"])
            if scale not in ("linear", "log") or not lo < hi or (scale == "log" and lo <= 0):
                raise ValueError(f"parameter {e['name']}.{p['name']} has an invalid range or scale")
        effects.append(spec_from_dict(e))
    layout = ParamLayout(tuple(effects))
    names = set(layout.names)
    chains = tuple(tuple(str(n) for n in c) for c in vocab["chains"])
    if not chains:
        raise ValueError("the vocabulary lists no chains")
    for c in chains:
        unknown = [n for n in c if n not in names]
        if unknown:
            raise ValueError(f"chain {list(c)} uses effects outside the vocabulary: {unknown}")
    return layout, chains


# ----------------------------------------------------------------------------------------------------------------
# results


@dataclass
class ChainEstimate:
    """One candidate chain: effect names, params in units per effect, probability, normalised vector."""

    chain: tuple[str, ...]
    params: list[tuple[str, dict[str, float]]]
    probability: float
    chain_index: int
    unit_params: np.ndarray = field(repr=False)

    @property
    def label(self) -> str:
        """'Compressor -> Reverb' or 'no effect' (fxmatch.chains.chain_label)."""
        return chain_label(self.chain)

    @property
    def no_effect(self) -> bool:
        """True for the empty chain (nothing audible was added)."""
        return not self.chain


@dataclass
class Estimate:
    """Aggregate estimate over the analysis windows of a recording."""

    ranked: list[ChainEstimate]
    consistency: float
    n_windows: int
    n_silent: int
    model: str
    provider: str
    duration_s: float = 0.0
    sample_rate: int = 0
    channels: int = 0
    #: windows whose own top chain is the aggregate's top chain (`consistency` = n_agree / n_windows)
    n_agree: int = 0
    #: the temperature the chain probabilities were scaled with (1.0: uncalibrated model)
    chain_temperature: float = 1.0
    calibrated: bool = False
    #: what the user should know about the input (too short, truncated file), one sentence each
    warnings: list[str] = field(default_factory=list)
    #: each effect's presence probability (`presence_probabilities`), what the decision rule reads
    presence: dict[str, float] = field(default_factory=dict)
    #: the model's presence threshold (None: the likeliest chain is named)
    presence_threshold: float | None = None

    @property
    def best(self) -> ChainEstimate:
        return self.ranked[0]

    @property
    def alternatives(self) -> list[ChainEstimate]:
        return self.ranked[1:]


@dataclass(frozen=True)
class Confidence:
    """How sure an estimate is, in words a musician reads: level, top probability, margin, text and warning."""

    level: str  # "sure" | "fairly sure" | "not very sure" | "unsure"
    probability: float  # the top chain's probability
    margin: float  # top probability minus the runner-up's
    text: str  # "sure (p = 0.95)", "fairly sure (p = 0.82)", "unsure: alternatives are close (p = 0.41, next 0.33)"
    close: tuple[tuple[str, float], ...] = ()  # (label, probability) of the alternatives within CLOSE_MARGIN
    warning: str | None = None  # a plain sentence when the estimate is unsure
    calibrated: bool = True  # False: the model has no fitted temperature; p tends to be over-confident

    @property
    def unsure(self) -> bool:
        """True when the estimate should not be trusted without listening."""
        return self.level == "unsure"


def describe_confidence(estimate: Estimate) -> Confidence:
    """Put an estimate's top probability and its margin to the alternatives into words (see `describe`)."""
    return describe(estimate.best.probability, [(a.label, a.probability) for a in estimate.alternatives],
                    estimate.calibrated)


def describe(probability: float, alternatives: Sequence[tuple[str, float]] = (),
             calibrated: bool = True) -> Confidence:
    """How sure: the top chain's `probability` and the (label, probability) of the others, best first.

    "sure" at p >= SURE_P, "fairly sure" at p >= FAIRLY_SURE_P, "not very sure" at p >= UNSURE_P with the runner-up
    at least CLOSE_MARGIN below, else "unsure" with a warning naming the alternatives within CLOSE_MARGIN (for the
    real-time engine and the app as much as for the command line: no torch needed).
    """
    p = float(probability)
    alts = [(str(label), float(q)) for label, q in alternatives]
    margin = p - (alts[0][1] if alts else 0.0)
    close = tuple((label, q) for label, q in alts if p - q < CLOSE_MARGIN)
    if p >= SURE_P:
        level = "sure"
    elif p >= FAIRLY_SURE_P:
        level = "fairly sure"
    elif p >= UNSURE_P and margin >= CLOSE_MARGIN:
        level = "not very sure"
    else:
        level = "unsure"
    warning = None
    if level != "unsure":
        text = f"{level} (p = {p:.2f})"
    elif close:
        text = f"unsure: alternatives are close (p = {p:.2f}, next {close[0][1]:.2f})"
        warning = (f"unsure estimate (p = {p:.2f}): {', '.join(label for label, _ in close[:3])} "
                   f"{'is' if len(close) == 1 else 'are'} nearly as likely; listen before you use it")
    else:
        text = f"unsure (p = {p:.2f}: more likely wrong than right)"
        warning = f"unsure estimate (p = {p:.2f}): more likely wrong than right; listen before you use it"
    return Confidence(level, p, margin, text, close, warning, bool(calibrated))


def format_value(v: float) -> str:
    """A parameter value for people, in its own unit: 3 significant digits below 100, whole numbers above."""
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax (float64)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def rank_chains(info: ModelInfo, probs: np.ndarray, params: np.ndarray, top: int | None = None) -> list[ChainEstimate]:
    """The chain to name (`decide`) first, then the others by decreasing probability (ties: vocabulary order), each
    with its params in units.

    probs `[n_chains]`, params `[n_chains, n_params]` normalised (clipped to [0, 1] before denormalising);
    `top` keeps the first `top` (at least one).
    """
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    if probs.size != info.n_chains:
        raise ValueError(f"expected {info.n_chains} chain probabilities, got {probs.size}")
    params = np.asarray(params, dtype=np.float64).reshape(probs.size, -1)
    named = decide(info, probs)
    order = np.array([named, *(k for k in np.argsort(-probs, kind="stable") if k != named)], dtype=np.int64)
    if top is not None:
        order = order[: max(1, int(top))]
    return [
        ChainEstimate(chain=info.chains[k], params=info.decode(int(k), params[k]), probability=float(probs[k]),
                      chain_index=int(k), unit_params=params[k].copy())
        for k in order
    ]


class WindowAggregator:
    """Running aggregate over windows: mean probabilities, probability-weighted params, votes for each window's own
    named chain (`choose(probs) -> index`, default the likeliest) (O(chains))."""

    def __init__(self, n_chains: int, n_params: int, choose: Callable[[np.ndarray], int] | None = None):
        self.choose = choose
        self.prob_sum = np.zeros(n_chains, dtype=np.float64)
        self.weighted_params = np.zeros((n_chains, n_params), dtype=np.float64)
        self.mean_params = np.zeros((n_chains, n_params), dtype=np.float64)
        self.votes = np.zeros(n_chains, dtype=np.int64)
        self.n = 0

    def add(self, probs: np.ndarray, params: np.ndarray) -> None:
        """Add windows: probs `[n, n_chains]`, params `[n, n_chains, n_params]` in [0, 1]."""
        probs = np.asarray(probs, dtype=np.float64)
        params = np.asarray(params, dtype=np.float64)
        self.prob_sum += probs.sum(axis=0)
        self.weighted_params += np.einsum("nk,nkp->kp", probs, params)
        self.mean_params += params.sum(axis=0)
        chosen = probs.argmax(axis=1) if self.choose is None else [self.choose(p) for p in probs]
        np.add.at(self.votes, chosen, 1)
        self.n += probs.shape[0]

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean probabilities `[n_chains]`, params `[n_chains, n_params]`, vote fractions `[n_chains]`)."""
        if self.n == 0:
            raise ValueError("no windows were added")
        probs = self.prob_sum / self.n
        with np.errstate(invalid="ignore", divide="ignore"):
            params = self.weighted_params / self.prob_sum[:, None]
        fallback = self.mean_params / self.n  # a chain with zero probability everywhere: plain mean
        params = np.where(self.prob_sum[:, None] > 1e-300, params, fallback)
        return probs, params, self.votes / self.n


# ----------------------------------------------------------------------------------------------------------------
# windowing and resampling (streamed)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """`[channels, samples]` or `[samples]` -> float32 `[samples]` (mean over channels)."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        return a
    if a.ndim != 2:
        raise FxmatchInputError(f"audio must be [channels, samples], got shape {a.shape}")
    return a.mean(axis=0, dtype=np.float32) if a.shape[0] > 1 else a[0]


class _Resampler:
    """Streaming mono resampler (soxr, high quality); a pass-through when the rates match."""

    def __init__(self, in_rate: int, out_rate: int):
        self.identity = int(in_rate) == int(out_rate)
        if not self.identity:
            import soxr

            self.stream = soxr.ResampleStream(float(in_rate), float(out_rate), 1, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32)
        if self.identity:
            return block
        return np.asarray(self.stream.resample_chunk(block, last=last), dtype=np.float32).reshape(-1)


def iter_windows(blocks: Iterable[np.ndarray], window: int, hop: int) -> Iterator[np.ndarray]:
    """Cut a stream of mono blocks into windows of `window` samples every `hop` samples.

    A stream shorter than one window gives one zero-padded window. When the last regular window leaves a tail of at
    least half a hop, one more window aligned to the end of the stream covers it. Memory: about a window plus a block.
    """
    buf = np.zeros(0, dtype=np.float32)
    buf_start = 0  # stream position of buf[0]
    next_start = 0  # stream position of the next regular window
    total = 0
    last_end = 0
    emitted = False
    for block in blocks:
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        if block.size == 0:
            continue
        buf = np.concatenate([buf, block]) if buf.size else block.copy()
        total += block.size
        while next_start + window <= total:
            a = next_start - buf_start
            yield buf[a : a + window].copy()
            emitted = True
            last_end = next_start + window
            next_start += hop
        keep_from = max(buf_start, min(next_start, total - window))
        if keep_from > buf_start:
            buf = buf[keep_from - buf_start :]
            buf_start = keep_from
    if total == 0:
        return
    if not emitted:
        out = np.zeros(window, dtype=np.float32)
        out[: buf.size] = buf[-window:]
        yield out
    elif total - last_end >= max(1, hop // 2):
        a = total - window - buf_start
        yield buf[a : a + window].copy()


# ----------------------------------------------------------------------------------------------------------------
# execution providers


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (native libraries' messages) for the duration; what was said goes to debug log."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        try:
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            said = sink.read().decode("utf-8", "replace").strip()
            if said:
                log.debug("onnxruntime said while trying CUDA: %s", said[-2000:])


def _session_options(threads: int | None) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.log_severity_level = 3  # errors only; we report problems ourselves
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    for key, value in ORT_NO_SPIN_CONFIG.items():  # idle pool threads sleep: a busy machine stays fast
        so.add_session_config_entry(key, value)
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    return so


def _wants_cuda(providers: str | Sequence[str]) -> tuple[bool, bool]:
    """(try CUDA, CUDA explicitly requested) for a `providers` argument."""
    if isinstance(providers, str):
        p = providers.lower()
        if p in ("auto", ""):
            return True, False
        if p in ("cuda", CUDA.lower(), "gpu"):
            return True, True
        if p in ("cpu", CPU.lower()):
            return False, False
        raise FxmatchInputError(f"unknown execution provider {providers!r} (use auto, cuda or cpu)")
    names = [str(n) for n in providers]
    return CUDA in names, CUDA in names


# ----------------------------------------------------------------------------------------------------------------
# the session


class EstimatorSession:
    """An exported fxmatch model in onnxruntime, with its metadata and the decoding of its outputs.

    `providers`: "auto" (CUDA when it really works, else CPU), "cuda" (the same, but says why CUDA was not used),
    "cpu", or a list of onnxruntime provider names. Falls back to CPU quietly; logs once which provider runs.
    `threads`: intra-op threads on CPU (None: onnxruntime's default, all cores).
    """

    def __init__(self, model_path: str | os.PathLike, providers: str | Sequence[str] = "auto",
                 threads: int | None = None, batch_size: int = 8):
        path = require_file(model_path, "model file", "an ONNX model")
        self.path = path
        self.batch_size = max(1, int(batch_size))
        ort.set_default_logger_severity(3)
        try_cuda, explicit = _wants_cuda(providers)
        self.session: ort.InferenceSession | None = None
        why_not_cuda = ""
        if try_cuda:
            self.session, why_not_cuda = self._try_cuda(path, threads)
        if self.session is None:
            self.session = self._create(path, [CPU], threads)
        self.provider = self.session.get_providers()[0]
        self.info = ModelInfo.from_metadata(self.session.get_modelmeta().custom_metadata_map, str(path))
        self._check_signature()
        self.why_not_cuda = why_not_cuda if explicit else ""
        log.info("%s: running on %s%s", path.name, self.provider,
                 f" (CUDA not used: {why_not_cuda})" if why_not_cuda else "")

    # -- loading ---------------------------------------------------------------------------------------------------

    @staticmethod
    def _create(path: Path, providers: list, threads: int | None) -> ort.InferenceSession:
        try:
            return ort.InferenceSession(str(path), _session_options(threads), providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types for bad files
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if len(msg) > 160:
                msg = msg[:157] + "..."
            raise FxmatchInputError(f"{path}: not a loadable ONNX model ({msg})") from None

    def _try_cuda(self, path: Path, threads: int | None) -> tuple[ort.InferenceSession | None, str]:
        if CUDA not in ort.get_available_providers():
            return None, "this onnxruntime build has no CUDA provider"
        ort.set_default_logger_severity(4)
        try:
            with _quiet_stderr(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    sess = ort.InferenceSession(str(path), _session_options(threads), providers=[CUDA, CPU])
                except Exception as exc:  # noqa: BLE001 - any failure here means: use the CPU
                    return None, f"CUDA session failed: {str(exc).strip().splitlines()[0][:120] if str(exc) else exc}"
                if sess.get_providers()[0] != CUDA:
                    return None, "CUDA libraries or device unavailable"
                try:  # a provider can load and still fail at run time (cuDNN, arch): run once to be sure
                    meta = sess.get_modelmeta().custom_metadata_map
                    window = json.loads(meta.get(META_WINDOW, "{}")).get("samples", 4096)
                    sess.run(None, {sess.get_inputs()[0].name: np.zeros((1, int(window)), dtype=np.float32)})
                except Exception as exc:  # noqa: BLE001
                    return None, f"CUDA run failed: {str(exc).strip().splitlines()[0][:120] if str(exc) else exc}"
                return sess, ""
        finally:
            ort.set_default_logger_severity(3)

    def _check_signature(self) -> None:
        inputs = self.session.get_inputs()
        outputs = [o.name for o in self.session.get_outputs()]
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
            raise FxmatchInputError(
                f"{self.path}: expected one input named {INPUT_NAME!r}, the model has {[i.name for i in inputs]}"
            )
        missing = [n for n in OUTPUT_NAMES if n not in outputs]
        if missing:
            raise FxmatchInputError(f"{self.path}: the model has no output {', '.join(missing)} (has {outputs})")
        declared = {o.name: o.shape for o in self.session.get_outputs()}
        for name, want in zip(OUTPUT_NAMES, self._expected_shapes()):
            shape = declared.get(name)
            if shape is None:  # rank unknown: checked on the first run
                continue
            fixed = [d if isinstance(d, int) and d > 0 else None for d in shape]
            if len(fixed) != len(want) or any(f is not None and w is not None and f != w
                                              for f, w in zip(fixed, want)):
                self._shape_error(name, [d if d is not None else "batch" if i == 0 else "?"
                                         for i, d in enumerate(fixed)])

    def _expected_shapes(self) -> tuple[tuple[int | None, ...], tuple[int | None, ...]]:
        """The outputs' shapes the metadata implies: ([batch, n_chains], [batch, n_chains, n_params])."""
        return (None, self.info.n_chains), (None, self.info.n_chains, self.info.n_params)

    def _shape_error(self, name: str, shape: Sequence[Any]) -> None:
        want = {"chain_logits": "[batch, n_chains]", "params": "[batch, n_chains, n_params]"}[name]
        raise FxmatchInputError(
            f"{self.path}: output {name} has shape [{', '.join(map(str, shape))}] but its metadata needs {want} = "
            f"[batch, {self.info.n_chains}{f', {self.info.n_params}' if name == 'params' else ''}] "
            "(model and metadata do not match; export it again with `fxmatch export`)"
        )

    def _check_outputs(self, n: int, logits: np.ndarray, params: np.ndarray) -> None:
        """FxmatchInputError when a run's outputs do not have the shapes the metadata implies."""
        for name, got, want in zip(OUTPUT_NAMES, (logits, params), self._expected_shapes()):
            if got.shape != (n, *want[1:]):
                self._shape_error(name, ["batch" if i == 0 and d == n else d for i, d in enumerate(got.shape)])

    # -- inference -------------------------------------------------------------------------------------------------

    def run(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw outputs for `[n, samples]` mono audio at the model's rate: logits `[n, C]`, params `[n, C, P]`."""
        a = np.ascontiguousarray(audio, dtype=np.float32)
        if a.ndim == 1:
            a = a[None]
        if a.ndim != 2 or a.shape[1] == 0:
            raise FxmatchInputError(f"audio must be [windows, samples] with samples > 0, got shape {a.shape}")
        logits, params = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: a})
        return logits, params

    def estimate_windows(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities `[n, n_chains]` and normalised params `[n, n_chains, n_params]` of `[n, samples]` windows
        (mono, at `info.sample_rate`), run in batches of `batch_size`."""
        a = np.asarray(audio, dtype=np.float32)
        if a.ndim == 1:
            a = a[None]
        probs, params = [], []
        for i in range(0, a.shape[0], self.batch_size):
            batch = a[i : i + self.batch_size]
            logits, p = self.run(batch)
            self._check_outputs(batch.shape[0], np.asarray(logits), np.asarray(p))
            probs.append(self.probabilities(logits))
            params.append(p)
        return np.concatenate(probs), np.concatenate(params)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated chain probabilities: softmax(logits / chain_temperature) over the last axis (float64)."""
        return softmax(np.asarray(logits, dtype=np.float64) / self.info.chain_temperature, axis=-1)

    def decode(self, probs: np.ndarray, params: np.ndarray, top: int | None = None) -> list[ChainEstimate]:
        """Rank one window's (or an aggregate's) chains: probs `[n_chains]`, params `[n_chains, n_params]`."""
        return rank_chains(self.info, probs, params, top)

    def estimate_array(self, audio: np.ndarray, sample_rate: int, top: int | None = 5,
                       hop_samples: int | None = None, source: str = "audio") -> Estimate:
        """Aggregate estimate of in-memory audio `[channels, samples]` or `[samples]` at any rate."""
        a = np.asarray(audio, dtype=np.float32)
        if a.size == 0:
            raise FxmatchInputError(f"{source}: holds no audio samples")
        if not np.all(np.isfinite(a)):
            raise FxmatchInputError(f"{source}: contains NaN or infinite samples")
        channels = 1 if a.ndim == 1 else a.shape[0]
        mono = to_mono(a)
        warns = self._length_warnings(source, mono.size / sample_rate)
        resample = _Resampler(sample_rate, self.info.sample_rate)
        blocks = [resample(mono, last=True)]
        return self._estimate_stream(blocks, top, hop_samples, source, mono.size / sample_rate, sample_rate, channels,
                                     warns)

    def estimate_file(self, path: str | os.PathLike, top: int | None = 5, hop_samples: int | None = None,
                      block_seconds: float = 4.0) -> Estimate:
        """Aggregate estimate of an audio file (any rate, mono or stereo, any length), streamed in blocks."""
        from fxmatch.audio_io import audio_info, iter_audio_blocks

        rate, channels, frames = audio_info(path)
        warns = self._length_warnings(str(path), frames / rate)
        cut = truncated_wav(path)
        if cut is not None:
            have = frames / rate
            warns.append(f"{path}: the WAV header announces {have * cut[0] / max(1, cut[1]):.2f} s of audio but the "
                         f"file holds only {have:.2f} s (cut short, e.g. by an interrupted copy or recording); "
                         "analysing what is there")
        block = max(1024, int(block_seconds * rate))
        resample = _Resampler(rate, self.info.sample_rate)
        read = 0

        def blocks() -> Iterator[np.ndarray]:
            nonlocal read
            for b in iter_audio_blocks(path, block):
                read += b.shape[-1]
                yield resample(to_mono(b))
            yield resample(np.zeros(0, dtype=np.float32), last=True)

        result = self._estimate_stream(blocks(), top, hop_samples, str(path), frames / rate, rate, channels, warns)
        if read < frames and cut is None:
            result.warnings.append(f"{path}: the file ends after {read / rate:.2f} s, before the "
                                   f"{frames / rate:.2f} s its header announces; analysed what is there")
        return result

    def _length_warnings(self, source: str, seconds: float) -> list[str]:
        """FxmatchInputError below MIN_INPUT_SECONDS; a warning when shorter than the analysis window."""
        if seconds <= 0:
            raise FxmatchInputError(f"{source}: holds no audio samples")
        if seconds < MIN_INPUT_SECONDS:
            raise FxmatchInputError(
                f"{source}: too short to analyse ({_seconds(seconds)}; the minimum is {MIN_INPUT_SECONDS:g} s, and "
                f"estimates are reliable from {self.info.window_seconds:g} s, the model's analysis window)"
            )
        if seconds < self.info.window_seconds:
            return [(f"{source}: only {_seconds(seconds)} of audio, shorter than the model's "
                     f"{self.info.window_seconds:g} s analysis window (padded with silence); the estimate is less "
                     "reliable")]
        return []

    def _estimate_stream(self, blocks: Iterable[np.ndarray], top: int | None, hop_samples: int | None, source: str,
                         duration_s: float, rate: int, channels: int, warns: list[str] | None = None) -> Estimate:
        window = self.info.window_samples
        hop = int(hop_samples or self.info.hop_samples)
        agg = WindowAggregator(self.info.n_chains, self.info.n_params, lambda p: decide(self.info, p))
        pending: list[np.ndarray] = []
        n_silent = 0

        def flush() -> None:
            if pending:
                probs, params = self.estimate_windows(np.stack(pending))
                agg.add(probs, params)
                pending.clear()

        for w in iter_windows(blocks, window, hop):
            if rms_dbfs(w) < SILENCE_DBFS:
                n_silent += 1
                continue
            pending.append(w)
            if len(pending) >= self.batch_size:
                flush()
        flush()
        if agg.n == 0:
            if n_silent == 0:
                raise FxmatchInputError(f"{source}: holds no audio samples")
            raise FxmatchInputError(
                f"{source}: is silent (every analysis window is below {SILENCE_DBFS:.0f} dBFS); nothing to estimate"
            )
        probs, params, votes = agg.result()
        ranked = self.decode(probs, params, top)
        best = ranked[0].chain_index  # the chain named (`decide`); the window votes count each window's own choice
        return Estimate(ranked=ranked, consistency=float(votes[best]), n_windows=agg.n,
                        n_silent=n_silent, model=self.info.label, provider=self.provider,
                        duration_s=float(duration_s), sample_rate=int(rate), channels=int(channels),
                        n_agree=int(agg.votes[best]), chain_temperature=self.info.chain_temperature,
                        calibrated=self.info.calibrated, warnings=list(warns or []),
                        presence=presence_probabilities(self.info, probs),
                        presence_threshold=self.info.presence_threshold)


def _seconds(s: float) -> str:
    """A duration for messages: under 0.1 s in ms (3 significant digits), else in s."""
    return f"{1000 * s:.3g} ms" if s < 0.1 else f"{s:.2f} s"


def truncated_wav(path: str | os.PathLike) -> tuple[int, int] | None:
    """(data bytes a RIFF/WAVE header announces, data bytes the file holds) when the file is cut short, else None.

    None for other formats, unreadable headers and sizes left open by streaming writers (0 or 0xFFFFFFFF, RF64).
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
                return None
            order = "<" if head[:4] == b"RIFF" else ">"
            pos = 12
            while pos + 8 <= size:
                fh.seek(pos)
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                (n,) = struct.unpack(order + "I", chunk[4:])
                if chunk[:4] == b"data":
                    have = size - pos - 8
                    return (n, have) if 0 < n != 0xFFFFFFFF and have < n else None
                pos += 8 + n + (n & 1)
    except OSError:
        return None
    return None
