"""Safety stage (callback side): non-finite or runaway detection and a peak limiter below 0 dBFS.

`check(block)` says whether a block is unsafe: any NaN/Inf (the sum of squares is then not finite) or a runaway
level (peak above `runaway_peak`, default +18 dBFS, e.g. feedback). The engine then mutes the block, swaps the
chain to its fresh spare, and fades the output back in. `Limiter` keeps every output sample at or below
`ceiling_db` (default -0.5 dBFS): gain drops at once to what the block's peak needs and recovers at `release_db_s`;
a final clip at the ceiling guarantees the bound. No allocation beyond numpy scalars.
"""

from __future__ import annotations

import math

import numpy as np


def unsafe(block: np.ndarray, runaway_peak: float = 8.0) -> bool:
    """Whether a float32 block holds NaN/Inf or a sample beyond +-runaway_peak."""
    s = float(np.dot(block, block))
    if not math.isfinite(s):
        return True
    return s > 0.0 and (float(block.max()) > runaway_peak or float(block.min()) < -runaway_peak)


class Limiter:
    """Peak limiter for mono blocks (instant attack, exponential release in dB)."""

    def __init__(self, sample_rate: int, ceiling_db: float = -0.5, release_db_s: float = 20.0,
                 max_frames: int = 8192):
        self.ceiling = 10.0 ** (ceiling_db / 20.0)
        self.sample_rate = int(sample_rate)
        self.release_db_s = float(release_db_s)
        self.gain = 1.0
        self.engaged = False  # latched when the limiter reduced gain (cleared by the reader)
        self._ramp = np.arange(1, max_frames + 1, dtype=np.float32)
        self._g = np.zeros(max_frames, dtype=np.float32)

    def process(self, block: np.ndarray) -> float:
        """Limit `block` in place; returns its peak before limiting."""
        frames = block.shape[0]
        peak = max(float(block.max()), -float(block.min())) if frames else 0.0
        needed = self.ceiling / peak if peak > self.ceiling else 1.0
        recovered = min(1.0, self.gain * 10.0 ** (self.release_db_s * frames / self.sample_rate / 20.0))
        start = min(self.gain, needed)
        end = min(recovered, needed)
        if start < 1.0 or end < 1.0:
            g = self._g[:frames]
            np.multiply(self._ramp[:frames], (end - start) / frames, out=g)
            g += start
            block *= g
            self.engaged = self.engaged or needed < 1.0
        self.gain = end
        np.clip(block, -self.ceiling, self.ceiling, out=block)
        return peak
