"""Fidelity of a twin against pedalboard: the same input and params through both, compared."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from fxmatch.effects.chain import Chain
from fxmatch.metrics import mrstft_distance, snr_db


def render_twin(
    names: Sequence[str], params: Sequence[Mapping[str, float]], x: np.ndarray, sample_rate: float
) -> np.ndarray:
    """Render `x` `[channels, samples]` through the twins of `names` (float64 internally, batch 1)."""
    chain = Chain(names)
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64))[None]
    p = [{k: torch.tensor([float(v)], dtype=torch.float64) for k, v in pe.items()} for pe in params]
    with torch.no_grad():
        y = chain.process(xt, p, sample_rate)
    return y[0].numpy()


def compare(
    names: Sequence[str], params: Sequence[Mapping[str, float]], x: np.ndarray, sample_rate: float
) -> dict[str, float]:
    """SNR (dB) and MR-STFT distance of the twin chain against pedalboard on `x` `[channels, samples]`."""
    chain = Chain(names)
    reference = chain.render_pedalboard(x, params, sample_rate).astype(np.float64)
    twin = render_twin(names, params, x, sample_rate)
    dist = float(mrstft_distance(torch.as_tensor(twin)[None], torch.as_tensor(reference)[None]))
    return {"snr_db": snr_db(reference, twin), "mrstft": dist}
