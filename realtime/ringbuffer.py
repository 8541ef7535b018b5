"""A single-producer ring buffer of mono float32 audio, preallocated, lock-free for one writer.

The audio callback is the only writer: `write(block)` copies into the preallocated array with at most two slice
assignments and then advances a monotonic write counter (a plain int attribute: its assignment is atomic under the
GIL). Readers (analysis worker, GUI) call `read_last(n)`, which copies the newest n samples out and checks that the
writer did not overwrite them meanwhile (it retries, then gives up on the overwritten head with zeros): readers
never block the writer and the writer never waits for a reader.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Mono float32 ring of `capacity` samples; one writer (the callback), any number of readers."""

    def __init__(self, capacity: int):
        if capacity <= 0:
            raise ValueError(f"ring buffer capacity must be > 0, got {capacity}")
        self.capacity = int(capacity)
        self._data = np.empty(self.capacity, dtype=np.float32)
        self._data.fill(0.0)  # touch every page now, not in the callback (np.zeros maps pages lazily)
        self.written = 0  # total samples written since creation (monotonic)

    def write(self, block: np.ndarray) -> None:
        """Append a mono block `[frames]` (frames <= capacity); no allocation."""
        n = block.shape[0]
        start = self.written % self.capacity
        first = min(n, self.capacity - start)
        self._data[start : start + first] = block[:first]
        if first < n:
            self._data[: n - first] = block[first:]
        self.written += n  # publish after the copy

    def read_last(self, n: int, out: np.ndarray | None = None) -> np.ndarray:
        """Copy of the newest `n` samples (oldest first) as float32 `[n]`; zeros where nothing was written yet."""
        n = int(n)
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n > self.capacity:
            raise ValueError(f"asked for {n} samples, the ring holds {self.capacity}")
        dst = np.zeros(n, dtype=np.float32) if out is None else out[:n]
        for _ in range(4):
            end = self.written
            have = min(n, end)
            dst[: n - have] = 0.0
            if have:
                start = (end - have) % self.capacity
                first = min(have, self.capacity - start)
                dst[n - have : n - have + first] = self._data[start : start + first]
                if first < have:
                    dst[n - have + first :] = self._data[: have - first]
            # the writer may have wrapped onto the oldest samples we copied while we were copying
            overwritten = self.written - end - (self.capacity - have)
            if overwritten <= 0:
                return dst
        dst[: min(n, max(0, overwritten))] = 0.0
        return dst

    def clear(self) -> None:
        """Forget the contents (call only while the writer is stopped)."""
        self._data[:] = 0.0
        self.written = 0
