"""Export a trained encoder to a self-describing ONNX file and check it against PyTorch.

The graph holds the whole encoder, log-mel front-end included: input `audio` float32 `[batch, samples]` (mono, at
the model's rate, dynamic batch and length), outputs `chain_logits` `[batch, n_chains]` and `params`
`[batch, n_chains, n_params]` in [0, 1]. `metadata_props` carry, as JSON strings, everything the runtime
(`fxmatch.inference`) needs to decode the outputs: see `build_metadata`.

The file is written atomically: exported to a temporary file next to the target, checked with onnx's checker,
compared with PyTorch in onnxruntime, and only then renamed onto the target. A failed check leaves nothing behind.
With `calibrate=SET` the chain temperature is fitted on held-out examples first (`export.calibrate`) and stored in
the metadata (`chain_temperature`, `calibration`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import logging
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from fxmatch import __version__ as fxmatch_version
from fxmatch import testsignals
from fxmatch.audio_io import atomic_write
from fxmatch.errors import FxmatchInputError
from fxmatch.inference import (
    INPUT_NAME,
    META_DECISION,
    META_FORMAT,
    META_MODEL,
    META_SAMPLE_RATE,
    META_TRAINING_DATA,
    META_VOCABULARY,
    META_WINDOW,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    OUTPUT_NAMES,
)
from training.model import Encoder, LogMel

log = logging.getLogger("fxmatch.export")

DEFAULT_OPSET = 17
#: the ONNX opsets the exported graph is built and tested with
MIN_OPSET, MAX_OPSET = 13, 20
DEFAULT_WINDOW_SECONDS = 2.0
#: parity limit: max |onnx - torch| <= PARITY_RTOL * max(1, max |torch|) for each output
PARITY_RTOL = 1e-4

#: accepted names of the checkpoint's parts (the trainer's names first)
_CONFIG_KEYS = ("model_config", "encoder_config", "config")
_STATE_KEYS = ("model_state", "state_dict", "model")
_DATA_KEYS = ("training_data", "data", "data_description")


class ExportError(RuntimeError):
    """The exporter or a check failed on a valid checkpoint (exit code 1: a bug, not bad input)."""


class ParityError(ExportError):
    """The exported model disagrees with PyTorch beyond the tolerance (exit code 1: a bug, not bad input)."""


def check_options(opset: int = DEFAULT_OPSET, rtol: float = PARITY_RTOL, window_seconds: float | None = None,
                  hop_seconds: float | None = None) -> None:
    """FxmatchInputError (one line) for an opset outside MIN_OPSET..MAX_OPSET, a parity tolerance not in (0, 1],
    or a window / hop that is not a positive number of seconds."""
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise FxmatchInputError(f"export: --opset must be {MIN_OPSET} to {MAX_OPSET}, got {opset}")
    if not (isinstance(rtol, (int, float)) and math.isfinite(rtol) and 0 < rtol <= 1):
        raise FxmatchInputError(f"export: --tolerance must be a relative limit > 0 and <= 1, got {rtol}")
    for flag, value in (("--window-seconds", window_seconds), ("--hop-seconds", hop_seconds)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise FxmatchInputError(f"export: {flag} must be a positive number of seconds, got {value}")


@contextlib.contextmanager
def _captured_output() -> Iterator[io.StringIO]:
    """Send stdout and stderr, Python's and file descriptors 1 and 2 (torch's native messages and graph dumps), to a
    buffer for the duration."""
    said = io.StringIO()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:
        yield said
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
                yield said
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            said.write(sink.read().decode("utf-8", "replace"))


@dataclass
class ExportReport:
    """What `export_checkpoint` did: where, how big, and the parity figures."""

    path: Path
    size_bytes: int
    metadata: dict[str, Any]
    parity: dict[str, Any] = field(default_factory=dict)

    @property
    def calibration(self) -> dict[str, Any] | None:
        """The calibration figures (`export.calibrate`), None when the model was not calibrated."""
        return self.metadata.get("calibration")


# ----------------------------------------------------------------------------------------------------------------
# checkpoints


def load_checkpoint(path: str | os.PathLike) -> tuple[Encoder, dict[str, Any]]:
    """Load a training checkpoint (`torch.load(weights_only=True)`) -> (encoder in eval mode, checkpoint dict).

    Accepted layout: `training.trainer`'s checkpoint (`format` "fxmatch-checkpoint", `model_config` =
    `Encoder.config` {"encoder": ..., "vocabulary": ...}, `model` = the state dict, `train_config`, `data`, ...), or
    the same with `encoder_config` / `model_state`, optionally a top-level `vocabulary` used when the config lacks
    one. Anything else (missing file, not a torch file, a foreign pickle, wrong keys, weights that do
    not fit the config) is an FxmatchInputError naming the problem.
    """
    from training.checkpoint import load_checkpoint as read_checkpoint  # the one reader

    p = Path(path)
    ckpt = read_checkpoint(p)
    config = _first(ckpt, _CONFIG_KEYS)
    state = _first(ckpt, _STATE_KEYS)
    if config is None or state is None:
        raise FxmatchInputError(
            f"{p}: not an fxmatch checkpoint (needs '{_CONFIG_KEYS[0]}' and '{_STATE_KEYS[-1]}'; "
            f"has {', '.join(sorted(map(str, ckpt))) or 'nothing'})"
        )
    if not isinstance(config, Mapping) or "encoder" not in config:
        raise FxmatchInputError(f"{p}: the checkpoint's model config has no 'encoder' sizes")
    config = dict(config)
    if "vocabulary" not in config:
        if not isinstance(ckpt.get("vocabulary"), Mapping):
            raise FxmatchInputError(f"{p}: checkpoint has no vocabulary")
        config["vocabulary"] = ckpt["vocabulary"]
    try:
        encoder = Encoder.from_config(config)
    except Exception as exc:  # noqa: BLE001
        raise FxmatchInputError(f"{p}: checkpoint config does not build an encoder ({type(exc).__name__}: {exc})") \
            from None
    if not isinstance(state, Mapping):
        raise FxmatchInputError(f"{p}: the checkpoint's model weights are not a state dict")
    try:
        encoder.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        detail = (lines[1] if len(lines) > 1 else lines[0] if lines else type(exc).__name__).rstrip(".")
        raise FxmatchInputError(f"{p}: checkpoint weights do not fit its config ({detail[:160]})") from None
    encoder.eval()
    return encoder, ckpt


def _first(d: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if k in d:
            return d[k]
    return None


def _find_value(obj: Any, keys: tuple[str, ...], depth: int = 0) -> Any:
    """The first value under one of `keys` anywhere in nested dicts (breadth before depth), else None."""
    if depth > 6 or not isinstance(obj, Mapping):
        return None
    for k in keys:
        if k in obj and isinstance(obj[k], (int, float)) and not isinstance(obj[k], bool):
            return obj[k]
    for v in obj.values():
        found = _find_value(v, keys, depth + 1)
        if found is not None:
            return found
    return None


def _plain(obj: Any, depth: int = 0) -> Any:
    """A JSON-ready copy of `obj` (tensors and other non-JSON values dropped or stringified)."""
    if depth > 12:
        return None
    if isinstance(obj, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in obj.items() if not isinstance(v, torch.Tensor)}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, depth + 1) for v in obj if not isinstance(v, torch.Tensor)]
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (np.integer, np.floating)):
        return _plain(obj.item(), depth + 1)
    return str(obj)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# metadata


def build_metadata(
    encoder: Encoder,
    checkpoint: Mapping[str, Any] | None = None,
    name: str | None = None,
    version: str | None = None,
    window_seconds: float | None = None,
    hop_seconds: float | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    opset: int = DEFAULT_OPSET,
) -> dict[str, Any]:
    """The model's metadata (values JSON-ready; `export_encoder` stores each as a JSON string).

    Keys: `fxmatch_format`, `sample_rate`, `analysis_window` ({samples, seconds, hop_samples, hop_seconds}),
    `vocabulary` (`ChainVocabulary.to_dict()`), `model` ({name, version}), `training_data` (the checkpoint's data
    description, or a note that it was not recorded), `encoder_config`, `outputs`, `checkpoint`, `export`.
    """
    ckpt = dict(checkpoint or {})
    sr = int(encoder.cfg.sample_rate)
    if window_seconds is None:
        keys = ("analysis_window_seconds", "window_seconds", "clip_seconds")
        found = _find_value(ckpt.get("train_config"), keys) or _find_value(ckpt, keys)
        window_seconds = float(found) if found else DEFAULT_WINDOW_SECONDS
        if not found:
            log.warning("checkpoint does not record the clip length; using an analysis window of %.2f s",
                        window_seconds)
    if not window_seconds or window_seconds <= 0 or not math.isfinite(window_seconds):
        raise FxmatchInputError(f"analysis window must be a positive number of seconds, got {window_seconds}")
    window = round(window_seconds * sr)
    hop = round((hop_seconds if hop_seconds else window_seconds / 2) * sr)
    if hop <= 0:
        raise FxmatchInputError(f"hop must be a positive number of seconds, got {hop_seconds}")
    data = _first(ckpt, _DATA_KEYS)
    training_data = _plain(data) if data is not None else {"description": "not recorded in the checkpoint"}
    model_name = name or str(ckpt.get("model_name") or "fxmatch")
    model_version = str(version or ckpt.get("model_version") or ckpt.get("version") or "1")
    ckpt_info: dict[str, Any] = {}
    if checkpoint_path is not None:
        cp = Path(checkpoint_path)
        ckpt_info = {"file": cp.name, "sha256": _sha256(cp)}
    for key in ("format", "version", "step", "elapsed_s", "mode", "epoch", "metrics", "win_counts",
                "train_config", "created"):
        if key in ckpt:
            ckpt_info[key] = _plain(ckpt[key])
    return {
        META_FORMAT: {"format": MODEL_FORMAT, "version": MODEL_FORMAT_VERSION},
        META_SAMPLE_RATE: sr,
        META_WINDOW: {"samples": window, "seconds": window / sr, "hop_samples": hop, "hop_seconds": hop / sr},
        META_VOCABULARY: encoder.vocab.to_dict(),
        META_MODEL: {"name": model_name, "version": model_version},
        META_TRAINING_DATA: training_data,
        "encoder_config": _plain(encoder.config["encoder"]),
        "outputs": {
            "input": "audio: float32 [batch, samples], mono, at sample_rate",
            "chain_logits": "float32 [batch, n_chains]: softmax gives the probability of each vocabulary chain",
            "params": "float32 [batch, n_chains, n_params] in [0, 1]: chain k's values of effect e in "
                      "params[:, k, slice_e] (vocabulary param_layout); map to units with each param's "
                      "range and scale",
        },
        "checkpoint": ckpt_info,
        "export": {"fxmatch_version": fxmatch_version, "torch_version": torch.__version__,
                   "onnx_opset": int(opset), "exporter": "torch.onnx (TorchScript)",
                   "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
    }


# ----------------------------------------------------------------------------------------------------------------
# export and checks


def to_onnx_model(encoder: Encoder, metadata: Mapping[str, Any], opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Trace the encoder (legacy TorchScript exporter, dynamic batch and samples) and attach the metadata."""
    encoder = encoder.eval()
    window = int(metadata[META_WINDOW]["samples"])
    example = torch.zeros(2, window)
    example[:, ::97] = 0.1  # not all zeros; the trace does not depend on values
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad(), _captured_output() as said:
            warnings.simplefilter("ignore")
            torch.onnx.export(
                encoder, (example,), buf,
                input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                dynamic_axes={INPUT_NAME: {0: "batch", 1: "samples"}, OUTPUT_NAMES[0]: {0: "batch"},
                              OUTPUT_NAMES[1]: {0: "batch"}},
                opset_version=int(opset), do_constant_folding=True, dynamo=False,
            )
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types, with pages of graph text
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise ExportError(f"torch.onnx could not export the model at opset {opset} ({first[:200]})") from None
    if said.getvalue().strip():
        log.debug("torch.onnx said: %s", said.getvalue()[-4000:])
    model = onnx.load_from_string(buf.getvalue())
    compute_dft_basis_in_graph(model, encoder.frontend)
    model.producer_name = "fxmatch"
    model.producer_version = fxmatch_version
    model.doc_string = (
        "fxmatch effect-chain estimator: audio [batch, samples] -> chain_logits [batch, n_chains], "
        "params [batch, n_chains, n_params] in [0, 1]; see metadata_props"
    )
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key = key
        entry.value = json.dumps(value, allow_nan=False, separators=(",", ":"))
    return model


def compute_dft_basis_in_graph(model: onnx.ModelProto, frontend: LogMel) -> bool:
    """Replace the front-end's stored DFT basis (float32 `[2 * n_bins, 1, n_fft]`, 15 MB at n_fft 2048) by nodes
    that compute it: cos / -sin of 2 pi (k n mod n_fft) / n_fft times the scaled window, from an integer grid.

    onnxruntime folds these nodes into a constant once, when a session loads, so inference costs the same; the
    file keeps only the window (`n_fft` floats). The values match the stored basis to float32 rounding of the
    angle (< 1e-6). Returns False (model unchanged) when the graph holds no such constant.
    """
    from onnx import helper, numpy_helper

    basis = frontend.basis.detach().cpu().numpy()
    graph = model.graph

    def holds_basis(node: onnx.NodeProto) -> bool:
        if node.op_type != "Constant" or len(node.attribute) != 1 or node.attribute[0].name != "value":
            return False
        tensor = node.attribute[0].t
        return tuple(tensor.dims) == basis.shape and np.array_equal(numpy_helper.to_array(tensor), basis)

    index = next((i for i, node in enumerate(graph.node) if holds_basis(node)), None)
    if index is None:
        return False
    node = graph.node[index]
    n_bins, n_fft = int(frontend.n_bins), int(frontend.n_fft)
    prefix = "/frontend/dft_basis/"

    def name(s: str) -> str:
        return prefix + s

    consts = {
        "zero": np.array(0, np.int64), "one": np.array(1, np.int64), "n_bins": np.array(n_bins, np.int64),
        "n_fft": np.array(n_fft, np.int64), "axis0": np.array([0], np.int64), "axis1": np.array([1], np.int64),
        "step": np.array(2.0 * math.pi / n_fft, np.float32),
        "window": frontend.window.detach().cpu().numpy().astype(np.float32),
    }
    for key, value in consts.items():
        graph.initializer.append(numpy_helper.from_array(value, name(key)))
    nodes = [
        helper.make_node("Range", [name("zero"), name("n_bins"), name("one")], [name("k")]),
        helper.make_node("Range", [name("zero"), name("n_fft"), name("one")], [name("n")]),
        helper.make_node("Unsqueeze", [name("k"), name("axis1")], [name("k_col")]),
        helper.make_node("Unsqueeze", [name("n"), name("axis0")], [name("n_row")]),
        helper.make_node("Mul", [name("k_col"), name("n_row")], [name("kn")]),
        helper.make_node("Mod", [name("kn"), name("n_fft")], [name("kn_mod")]),  # exact: the angle stays < 2 pi
        helper.make_node("Cast", [name("kn_mod")], [name("kn_float")], to=onnx.TensorProto.FLOAT),
        helper.make_node("Mul", [name("kn_float"), name("step")], [name("angle")]),
        helper.make_node("Cos", [name("angle")], [name("cos")]),
        helper.make_node("Sin", [name("angle")], [name("sin")]),
        helper.make_node("Mul", [name("cos"), name("window")], [name("re_rows")]),
        helper.make_node("Mul", [name("sin"), name("window")], [name("sin_rows")]),
        helper.make_node("Neg", [name("sin_rows")], [name("im_rows")]),
        helper.make_node("Concat", [name("re_rows"), name("im_rows")], [name("rows")], axis=0),
        helper.make_node("Unsqueeze", [name("rows"), name("axis1")], [node.output[0]]),
    ]
    for j, new_node in enumerate(nodes):
        new_node.name = name(f"{new_node.op_type}_{j}")
    del graph.node[index]
    for j, new_node in enumerate(nodes):
        graph.node.insert(index + j, new_node)
    return True


def parity_inputs(sample_rate: int, window: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Named test batches `[n, samples]`: random noise and real-ish audio (plucks, chord, noise bursts, impulses),
    at the window length and at two other lengths (the graph has dynamic length)."""
    rng = np.random.default_rng(seed)
    seconds = window / sample_rate

    def sig(kind: str, s: float, i: int) -> np.ndarray:
        x = testsignals.make(kind, sample_rate, s, seed=seed + i)[0]
        return x[: round(s * sample_rate)]

    return {
        "random": (rng.standard_normal((2, window)) * 0.1).astype(np.float32),
        "audio": np.stack([sig(k, seconds, i) for i, k in enumerate(("pluck", "chord", "noise", "impulse"))]),
        "audio_short": sig("pluck", 0.6 * seconds, 7)[None],
        "audio_long": sig("chord", 1.7 * seconds, 8)[None],
        "loud_random": np.clip(rng.standard_normal((1, window)), -1, 1).astype(np.float32),
    }


def parity_check(encoder: Encoder, onnx_path: str | os.PathLike, sample_rate: int, window: int,
                 rtol: float = PARITY_RTOL) -> dict[str, Any]:
    """Compare onnxruntime (CPU) with PyTorch on `parity_inputs`; raise ParityError above the limit.

    The limit, per output and input: max |onnx - torch| <= rtol * max(1, max |torch|) (logits are compared
    relative to their scale, params in [0, 1] absolutely). PyTorch runs the exported form of the front-end (the
    conv1d DFT, as the graph does); that its training form (torch.stft) equals it is tests/training/test_model.py's.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    cases: dict[str, Any] = {}
    worst_abs, worst_rel = 0.0, 0.0
    use_fft = encoder.frontend.use_fft
    for case, audio in parity_inputs(sample_rate, window).items():
        got = sess.run(list(OUTPUT_NAMES), {INPUT_NAME: audio})
        encoder.frontend.use_fft = False
        try:
            with torch.no_grad():
                ref = [t.numpy() for t in encoder(torch.from_numpy(audio))]
        finally:
            encoder.frontend.use_fft = use_fft
        row = {"shape": list(audio.shape)}
        for name, g, r in zip(OUTPUT_NAMES, got, ref):
            if g.shape != r.shape:
                raise ParityError(f"{case}: output {name} has shape {g.shape} in ONNX, {r.shape} in PyTorch")
            diff = float(np.max(np.abs(g.astype(np.float64) - r))) if r.size else 0.0
            if not math.isfinite(diff):
                raise ParityError(f"{case}: output {name} is not finite in ONNX or PyTorch")
            rel = diff / max(1.0, float(np.max(np.abs(r))) if r.size else 1.0)
            row[name] = {"max_abs": diff, "relative": rel}
            worst_abs, worst_rel = max(worst_abs, diff), max(worst_rel, rel)
        cases[case] = row
    result = {"max_abs": worst_abs, "relative": worst_rel, "limit_relative": rtol, "cases": cases}
    if worst_rel > rtol:
        raise ParityError(
            f"ONNX and PyTorch disagree: max abs difference {worst_abs:.3g} (relative {worst_rel:.3g} > {rtol:g})"
        )
    return result


def export_encoder(encoder: Encoder, out_path: str | os.PathLike, metadata: Mapping[str, Any],
                   opset: int = DEFAULT_OPSET, rtol: float = PARITY_RTOL) -> ExportReport:
    """Write `encoder` to `out_path` atomically after onnx's checker and the parity check pass."""
    out = Path(out_path)
    if out.is_dir():
        raise FxmatchInputError(f"{out}: is a folder; give the ONNX file's path")
    model = to_onnx_model(encoder, metadata, opset)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ParityError(f"onnx checker rejected the exported graph: {str(exc).splitlines()[0]}") from None
    report = ExportReport(path=out, size_bytes=0, metadata=dict(metadata))

    def _write(tmp: str) -> None:
        onnx.save_model(model, tmp)
        report.parity = parity_check(encoder, tmp, int(metadata[META_SAMPLE_RATE]),
                                     int(metadata[META_WINDOW]["samples"]), rtol)
        report.size_bytes = os.path.getsize(tmp)

    atomic_write(out, _write, suffix=".onnx")
    return report


def export_checkpoint(ckpt_path: str | os.PathLike, out_path: str | os.PathLike, name: str | None = None,
                      version: str | None = None, window_seconds: float | None = None,
                      hop_seconds: float | None = None, opset: int = DEFAULT_OPSET,
                      rtol: float = PARITY_RTOL, calibrate: str | None = None,
                      progress: bool = False, presence_threshold: float | None = None) -> ExportReport:
    """`fxmatch export`: checkpoint -> checked ONNX file with metadata; `calibrate` (heldout[:N][@SEED] or a data set
    folder) fits and stores the chain temperature (`export.calibrate`); `presence_threshold` stores the decision
    rule that names every effect at least that likely (`fxmatch.inference.decide`; None: the likeliest chain)."""
    check_options(opset, rtol, window_seconds, hop_seconds)
    if presence_threshold is not None and not 0.0 < presence_threshold < 1.0:
        raise FxmatchInputError(f"export: --presence-threshold must be between 0 and 1, got {presence_threshold}")
    if calibrate is not None:
        from export.calibrate import check_spec

        check_spec(calibrate)
    out = Path(out_path)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise FxmatchInputError(f"{out}: folder {folder} does not exist")
    if out.is_dir():
        raise FxmatchInputError(f"{out}: is a folder; give the ONNX file's path")
    encoder, ckpt = load_checkpoint(ckpt_path)
    default_name = out.name.removesuffix(".onnx") or "fxmatch"
    metadata = build_metadata(encoder, ckpt, name=name or ckpt.get("model_name") or default_name, version=version,
                              window_seconds=window_seconds, hop_seconds=hop_seconds, checkpoint_path=ckpt_path,
                              opset=opset)
    if calibrate is not None:
        from export.calibrate import calibrate as fit

        metadata.update(fit(encoder, metadata, calibrate, progress))
    if presence_threshold is not None:
        metadata[META_DECISION] = {"rule": "presence", "threshold": float(presence_threshold)}
    return export_encoder(encoder, out, metadata, opset=opset, rtol=rtol)
