"""Audio as the searches take it (torch-free): one channel, checked, with errors that name the signal."""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from fxmatch.errors import FxmatchInputError


def checked_mono(x: np.ndarray, what: str, dtype: DTypeLike = np.float64) -> np.ndarray:
    """`[samples]` or `[channels, samples]` float audio as `dtype` `[samples]` (converted first, then channels
    averaged); FxmatchInputError for another shape, no samples, NaN or infinite samples, its message starting with
    `what` ("capture: the dry signal", "match: the reference")."""
    a = np.asarray(x, dtype=dtype)
    if a.ndim == 2:
        a = a.mean(axis=0)
    if a.ndim != 1 or a.size == 0:
        raise FxmatchInputError(f"{what} must be audio shaped [samples] or [channels, samples]")
    if not np.all(np.isfinite(a)):
        raise FxmatchInputError(f"{what} contains NaN or infinite samples")
    return a
