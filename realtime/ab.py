"""A/B: target / matched / dry with equal-power crossfades, loudness-matched to the target (callback side).

Each source's loudness is tracked as a mean square smoothed over `loudness_s` (one-pole per block); the matched
and dry signals get the gain that brings them to the target's loudness (limited to +-`max_gain_db`, held while
either side is below `floor_db`), ramped linearly across each block. A change of position crossfades with
weights cos/sin of a quarter turn over `crossfade_ms` (equal power), per sample. All buffers are preallocated.
"""

from __future__ import annotations

import math

import numpy as np

POSITIONS = ("target", "matched", "dry")


class ABMixer:
    """Mixes the three sources into one mono output block; `set_position` may be called from any thread."""

    def __init__(self, sample_rate: int, crossfade_ms: float = 30.0, loudness_s: float = 0.4,
                 max_gain_db: float = 18.0, floor_db: float = -60.0, loudness_match: bool = True,
                 max_frames: int = 8192, position: str = "matched"):
        self.sample_rate = int(sample_rate)
        self.fade_len = max(1, round(crossfade_ms * 1e-3 * sample_rate))
        self.loudness_s = float(loudness_s)
        self.max_gain = 10.0 ** (max_gain_db / 20.0)
        self.floor_ms = 10.0 ** (floor_db / 10.0)
        self.loudness_match = bool(loudness_match)
        self._requested = POSITIONS.index(position)
        self._pos = self._requested
        self._weights = np.zeros(3, dtype=np.float64)
        self._weights[self._pos] = 1.0
        self._from = self._weights.copy()
        self._fade = self.fade_len  # samples into the current fade (>= fade_len: none)
        self._ms = np.zeros(3, dtype=np.float64)  # smoothed mean squares: target, matched, dry
        self._gain = np.ones(3, dtype=np.float64)  # loudness gains applied (target's is always 1)
        self._ramp = np.arange(1, max_frames + 1, dtype=np.float64)
        self._theta = np.zeros(max_frames, dtype=np.float64)
        self._w = np.zeros(max_frames, dtype=np.float32)
        self._tmp = np.zeros(max_frames, dtype=np.float32)

    @property
    def position(self) -> str:
        """The position asked for last (the fade towards it may still be running)."""
        return POSITIONS[self._requested]

    def set_position(self, position: str) -> None:
        """Fade to "target", "matched" or "dry" (ValueError for anything else)."""
        if position not in POSITIONS:
            raise ValueError(f"A/B position must be one of {', '.join(POSITIONS)}, got {position!r}")
        self._requested = POSITIONS.index(position)

    @property
    def gains_db(self) -> tuple[float, float, float]:
        """Loudness gains applied to target, matched and dry (dB)."""
        return tuple(20.0 * math.log10(g) for g in self._gain)  # type: ignore[return-value]

    def _track(self, k: int, x: np.ndarray, frames: int) -> None:
        ms = float(np.dot(x, x)) / frames
        if math.isfinite(ms):
            a = 1.0 - math.exp(-frames / (self.loudness_s * self.sample_rate))
            self._ms[k] += a * (ms - self._ms[k])

    def mix(self, target: np.ndarray, matched: np.ndarray, dry: np.ndarray, out: np.ndarray) -> None:
        """Callback: out[:frames] = weighted, loudness-matched sum of the three mono blocks `[frames]`."""
        frames = out.shape[0]
        self._track(0, target, frames)
        self._track(1, matched, frames)
        self._track(2, dry, frames)
        if self._requested != self._pos:  # start a fade from wherever the weights are now
            self._from[:] = self._weights
            self._pos = self._requested
            self._fade = 0
        out[:] = 0.0
        fading = self._fade < self.fade_len
        if fading:
            theta = self._theta[:frames]
            np.add(self._ramp[:frames], self._fade, out=theta)
            np.minimum(theta, self.fade_len, out=theta)
            theta *= (math.pi / 2) / self.fade_len
            self._fade += frames
        w, tmp = self._w[:frames], self._tmp[:frames]
        for k, x in enumerate((target, matched, dry)):
            g0 = self._gain[k]
            if k and self.loudness_match and self._ms[0] > self.floor_ms and self._ms[k] > self.floor_ms:
                g1 = min(self.max_gain, max(1.0 / self.max_gain, math.sqrt(self._ms[0] / self._ms[k])))
            else:
                g1 = g0
            self._gain[k] = g1
            on = k == self._pos
            if not on and (not fading or self._from[k] == 0.0):
                continue
            if fading:
                # equal power: the fading-in source follows sin, everything else fades from its weight with cos
                np.sin(theta, out=w, casting="same_kind") if on else np.cos(theta, out=w, casting="same_kind")
                if not on:
                    w *= self._from[k]
                elif self._from[k] > 0:  # the source was partly on: fade in from there
                    np.cos(theta, out=tmp, casting="same_kind")
                    tmp *= self._from[k]
                    w += tmp
                    np.minimum(w, 1.0, out=w)
            else:
                w[:] = 1.0
            if g1 != g0:
                np.multiply(self._ramp[:frames], (g1 - g0) / frames, out=tmp, casting="same_kind")
                tmp += g0
                w *= tmp
            elif g1 != 1.0:
                w *= g1
            np.multiply(x, w, out=tmp)
            out += tmp
        if fading:
            self._weights[:] = self._from * math.cos(min(1.0, self._fade / self.fade_len) * math.pi / 2)
            self._weights[self._pos] = max(self._weights[self._pos],
                                           math.sin(min(1.0, self._fade / self.fade_len) * math.pi / 2))
        else:
            self._weights[:] = 0.0
            self._weights[self._pos] = 1.0
