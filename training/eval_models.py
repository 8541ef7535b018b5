"""The estimators `fxmatch evaluate` runs (see training.evaluate): exported ONNX models through
`fxmatch.inference`, or trainer checkpoints run by torch through the same windowing and decoding."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fxmatch.errors import FxmatchInputError
from fxmatch.inference import (
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    EstimatorSession,
    ModelInfo,
)

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


class CheckpointEstimator(EstimatorSession):
    """A trainer checkpoint run by torch with `EstimatorSession`'s windowing, aggregation and decoding."""

    def __init__(self, path: str | Path, batch_size: int = 8):
        from training.checkpoint import load_checkpoint
        from training.model import Encoder

        self.path = Path(path)
        self.batch_size = max(1, int(batch_size))
        ckpt = _read_checkpoint(self.path, load_checkpoint)
        try:
            self.model = Encoder.from_config(ckpt["model_config"])
            self.model.load_state_dict(ckpt["model"])
        except Exception as exc:  # noqa: BLE001 - any mismatch is a bad checkpoint
            raise FxmatchInputError(f"{self.path}: checkpoint does not build its model ({type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
        self.model.eval()
        train_config = dict(ckpt.get("train_config") or {})
        sr = int(self.model.cfg.sample_rate)
        window = round(float(train_config.get("clip_seconds", 2.0)) * sr)
        meta = {
            "fxmatch_format": {"format": MODEL_FORMAT, "version": MODEL_FORMAT_VERSION},
            "sample_rate": sr,
            "analysis_window": {"samples": window, "hop_samples": max(1, window // 2)},
            "vocabulary": self.model.vocab.to_dict(),
            "model": {"name": f"{train_config.get('name', self.path.stem)}-step{ckpt.get('step', 0)}", "version": ""},
            "training_data": ckpt.get("data"),
            "checkpoint": {"mode": ckpt.get("mode"), "step": ckpt.get("step"), "train_config": train_config},
        }
        self.info = ModelInfo.from_metadata({k: json.dumps(v) for k, v in meta.items()}, str(self.path))
        self.provider = "torch-cpu"
        self.session = None
        self.why_not_cuda = ""

    def run(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw outputs for `[n, samples]` mono audio: logits `[n, C]`, params `[n, C, P]` (torch, no gradient)."""
        a = np.ascontiguousarray(audio, dtype=np.float32)
        if a.ndim == 1:
            a = a[None]
        with torch.no_grad():
            logits, params = self.model(torch.from_numpy(a))
        return logits.numpy(), params.numpy()


def _read_checkpoint(path: Path, load: Any) -> dict[str, Any]:
    """`load(path)` with torch's warnings silenced and its multi-line `weights_only` text cut to one line."""
    import warnings

    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols before failing
            warnings.simplefilter("ignore")
            return load(path)
    except FxmatchInputError as exc:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
        if "Unsupported global" in text:
            reason = "it holds Python objects, not only tensors and plain values"
        elif "weights_only" in text or "Weights only" in text or "\n" in text.strip():
            reason = "not a PyTorch checkpoint of tensors and plain values"
        else:
            raise
        raise FxmatchInputError(f"{path}: not a readable checkpoint ({reason})") from None


def load_estimator(path: str | Path, threads: int | None = None) -> EstimatorSession:
    """An exported ONNX model (onnxruntime, CPU or CUDA) or a trainer checkpoint (.pt, torch on CPU)."""
    p = Path(path)
    if p.suffix.lower() in CHECKPOINT_SUFFIXES:
        return CheckpointEstimator(p)
    return EstimatorSession(p, providers="auto", threads=threads)


def model_description(est: EstimatorSession) -> dict[str, Any]:
    """Name, version, kind, provider and training mode of a model (JSON-ready)."""
    meta = est.info.metadata if isinstance(est.info.metadata, Mapping) else {}
    ckpt = meta.get("checkpoint") if isinstance(meta.get("checkpoint"), Mapping) else {}
    return {"path": str(est.path), "name": est.info.name, "version": est.info.version, "label": est.info.label,
            "kind": "checkpoint" if isinstance(est, CheckpointEstimator) else "onnx", "provider": est.provider,
            "mode": ckpt.get("mode"), "step": ckpt.get("step"), "sample_rate": est.info.sample_rate,
            "window_seconds": est.info.window_seconds, "n_chains": est.info.n_chains,
            "chain_temperature": est.info.chain_temperature, "calibrated": est.info.calibrated}
