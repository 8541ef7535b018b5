"""Tiny untrained encoders and their checkpoints / ONNX files for export, runtime and command tests."""

from __future__ import annotations

from pathlib import Path

import torch

from fxmatch.effects import get_spec
from fxmatch.vocabulary import ChainVocabulary
from training.model import Encoder, EncoderConfig

SAMPLE_RATE = 16000
WINDOW_SECONDS = 0.5


def tiny_vocab() -> ChainVocabulary:
    """Distortion only: chains () and ("Distortion",)."""
    return ChainVocabulary(effects=(get_spec("Distortion"),), max_length=1)


def tiny_encoder(vocab: ChainVocabulary | None = None, favour: int | None = None, seed: int = 0,
                 margin: float = 6.0) -> Encoder:
    """A small untrained encoder (16 kHz); `favour=k` biases the chain head so chain k wins by about `margin`
    logits (6: clearly, p ~ 0.998 of 2 chains; 0.2: barely, p ~ 0.55)."""
    torch.manual_seed(seed)
    cfg = EncoderConfig(sample_rate=SAMPLE_RATE, n_fft=512, hop_length=256, n_mels=16, f_max=8000.0,
                        channels=[4, 8], hidden=16, dropout=0.0)
    enc = Encoder(vocab or tiny_vocab(), cfg).eval()
    if favour is not None:
        with torch.no_grad():
            enc.chain_head.weight.mul_(0.01)
            enc.chain_head.bias.zero_()
            enc.chain_head.bias[favour] = margin
    return enc


def tiny_checkpoint(path: Path, encoder: Encoder | None = None, layout: str = "trainer", **extra) -> Path:
    """Save a checkpoint: `layout="trainer"` as training.trainer writes it, `"plain"` with
    encoder_config / vocabulary / model_state. Plain types and tensors only (weights_only loading)."""
    enc = encoder or tiny_encoder()
    data = {"source": {"kind": "SynthSource", "clip_seconds": WINDOW_SECONDS, "split": "train"}, "seed": 1}
    if layout == "trainer":
        ckpt = {"format": "fxmatch-checkpoint", "version": 1, "step": 3, "elapsed_s": 1.0, "mode": "wta",
                "model": enc.state_dict(), "model_config": enc.config,
                "train_config": {"name": "tiny-run", "clip_seconds": WINDOW_SECONDS, "sample_rate": SAMPLE_RATE},
                "data": data, "win_counts": [0, 3]}
    else:
        ckpt = {"encoder_config": enc.config, "vocabulary": enc.vocab.to_dict(), "model_state": enc.state_dict(),
                "data": data}
    ckpt.update(extra)
    torch.save(ckpt, path)
    return path


def tiny_onnx(folder: Path, favour: int | None = 1, name: str = "tiny.onnx", margin: float = 6.0,
              calibrate: str | None = None) -> Path:
    """Export a tiny model (Distortion favoured by default) named tiny v0 and return its path (`calibrate`: a
    `fxmatch export --calibrate` SET)."""
    from export.onnx_export import export_checkpoint

    ckpt = tiny_checkpoint(folder / (name + ".pt"), tiny_encoder(favour=favour, margin=margin))
    out = folder / name
    export_checkpoint(ckpt, out, name="tiny", version="0", calibrate=calibrate)
    return out
