"""How much each effect of a chain changes what comes out, and which ones are too subtle to count.

One rule for `fxmatch demo` and `fxmatch evaluate`: an effect of a chain is *inaudible* when removing it changes
the output y by less than `INAUDIBLE_DB` below y (the energy of y over the energy of the difference, in dB; a
compressor whose threshold sits above the signal, a PeakFilter at 0.3 dB). An estimate is then *audibly right*
when it names every audible true effect and nothing outside the true chain: an inaudible one may be named or not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

#: an effect whose removal changes y by less than this (dB below y) counts as inaudible
INAUDIBLE_DB = 30.0

Chain = Sequence[tuple[str, Mapping[str, Any]]]


def render_chain(chain: Chain, x: np.ndarray, sample_rate: float) -> np.ndarray:
    """`x` (`[samples]` or `[channels, samples]`) through pedalboard with `chain` (names, params in units); float32,
    same shape (non-finite samples -> 0)."""
    import pedalboard

    from fxmatch.effects import get_spec

    x = np.asarray(x, dtype=np.float32)
    if not chain:
        return x.copy()
    board = pedalboard.Pedalboard([get_spec(name).pedalboard_plugin(dict(p)) for name, p in chain])
    y = np.asarray(board(np.ascontiguousarray(x if x.ndim == 2 else x[None]), float(sample_rate)), dtype=np.float32)
    y = np.nan_to_num(y if x.ndim == 2 else y[0], nan=0.0, posinf=0.0, neginf=0.0)
    if y.shape[-1] != x.shape[-1]:  # keep the input's length
        out = np.zeros_like(x)
        n = min(x.shape[-1], y.shape[-1])
        out[..., :n] = y[..., :n]
        y = out
    return y


def removal_db(chain: Chain, x: np.ndarray, y: np.ndarray, sample_rate: float,
               render: Callable[[Chain, np.ndarray, float], np.ndarray] = render_chain) -> dict[str, float]:
    """Per effect of `chain`: the energy of `y` (the chain's render of `x`) over that of y minus the chain without
    that effect, dB (higher = subtler; inf when removing it changes nothing). `render(chain, x, rate)` makes the
    chain without the effect (pedalboard by default; a set's own renderer where another made y)."""
    y64 = np.asarray(y, dtype=np.float64)
    energy = float(np.sum(y64**2))
    out = {}
    for i, (name, _) in enumerate(chain):
        without = np.asarray(render(list(chain[:i]) + list(chain[i + 1:]), x, sample_rate), dtype=np.float64)
        diff = float(np.sum((without - y64) ** 2))
        out[name] = math.inf if diff <= 0 else (-math.inf if energy <= 0 else 10.0 * math.log10(energy / diff))
    return out


def audible(removal: Mapping[str, float], threshold_db: float = INAUDIBLE_DB) -> tuple[str, ...]:
    """The effects of a `removal_db` result whose removal changes y by more than `threshold_db` below y."""
    return tuple(name for name, db in removal.items() if db < threshold_db)


def audibly_right(true_chain: Sequence[str], audible_effects: Sequence[str], estimated: Sequence[str]) -> bool:
    """Whether `estimated` names every audible true effect and nothing outside `true_chain` (as sets)."""
    return set(audible_effects) <= set(estimated) <= set(true_chain)
