"""The model a benchmark runs: a given ONNX file, else the shipped one, else an untrained stand-in of its size."""

from __future__ import annotations

from pathlib import Path

from fxmatch import shipped


def benchmark_model(folder: Path, model: str | None = None) -> tuple[Path, str]:
    """(ONNX path, description): `model` if given, the shipped model if present, else an untrained encoder of the
    default vocabulary and size exported into `folder` (timings representative, estimates meaningless)."""
    if model:
        return Path(model), Path(model).name
    if shipped.DEFAULT_MODEL.is_file():
        return shipped.DEFAULT_MODEL, f"shipped ({shipped.DEFAULT_MODEL.name})"
    import torch

    from export.onnx_export import build_metadata, export_encoder
    from fxmatch.vocabulary import ChainVocabulary
    from training.model import Encoder, EncoderConfig

    torch.manual_seed(0)
    encoder = Encoder(ChainVocabulary.default(), EncoderConfig()).eval()
    meta = build_metadata(encoder, {"data": {"description": "untrained (benchmark stand-in)"}},
                          name="untrained-default", version="0", window_seconds=2.0)
    out = folder / "untrained-default.onnx"
    export_encoder(encoder, out, meta)
    return out, ("untrained encoder of the default vocabulary and size (models/fxmatch-default.onnx absent); "
                 "timings are representative, estimates are not")
