"""Params meant at one sample rate, rendered at another (torch-free: floats, or tensors where torch is in use).

A fit may render below the rate its params are meant at (the recording's own: the `native` rate): the tone match
with pedalboard (`fxmatch.match`), capture and training through the twins (`fxmatch.render`). Most effects sound
near enough the same; the Phaser does not, and `phaser_at_rate` maps its params so that it sweeps the same cutoffs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def phaser_at_rate(params: Mapping[str, Any], rate: float, native: float) -> dict[str, Any]:
    """Phaser params in units (floats, or tensors) that sweep the same cutoffs at `rate` Hz as `params` do at
    `native` Hz.

    pedalboard's Phaser maps its LFO position to a cutoff between 20 Hz and min(20 kHz, 0.49 * rate) (its centre
    normalised on a fixed 20 Hz - 20 kHz scale), so one setting sweeps lower at a lower rate; dividing the depth and
    the centre's normalised position by log(top(rate) / 20) / log(top(native) / 20) undoes that (cutoffs the lower
    rate cannot hold are clipped to its top, as pedalboard does). The depth is not clipped: below the native rate it
    may exceed pedalboard's limit of 1.
    """
    top = min(20000.0, 0.49 * rate)
    top_native = min(20000.0, 0.49 * native)
    k = math.log(top / 20.0) / math.log(top_native / 20.0)
    ratio = params["centre_frequency_hz"] / 20.0
    position = (math.log(ratio) if isinstance(ratio, (int, float)) else ratio.log()) / math.log(1000.0)
    return {**params, "depth": params["depth"] / k, "centre_frequency_hz": 20.0 * 1000.0 ** (position / k)}
