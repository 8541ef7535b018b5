"""A single-producer ring buffer of mono float32 audio, preallocated, lock-free for one writer.

The audio callback is the only writer: `write(block)` copies into the preallocated array with at most two slice
assignments and then advances a monotonic write counter. Readers (analysis worker, GUI) call `read_last(n)`, which
copies the newest n samples out and checks that the writer did not overwrite them meanwhile (it retries, then
gives up on the overwritten head with zeros): readers never block the writer and the writer never waits for a
reader.

The samples and the counter can live on any buffer, e.g. a `multiprocessing.shared_memory` block written by an
engine in another process (`RingBuffer(capacity, data=..., counter=...)`): the counter is one aligned int64
(`counter[0]`, total samples written), stored with a single 8-byte store after the block's samples are copied.

Guarantee of `read_last` (same process or across processes), for a writer that only appends:

* it reads the counter `end`, copies the span `[end - n, end)`, then reads the counter again (`end2`);
* samples up to `end` were complete before `end` was stored, so the copy holds finished samples, except the
  oldest `end2 - end - (capacity - n)` ones when the writer lapped onto them during the copy: those are copied
  again (up to 4 tries) and, if the writer keeps lapping, returned as zeros, never as a mix of old and new audio;
* a counter value is never torn (aligned 8-byte loads and stores are single accesses on x86-64 and ARM64).
  Across processes the "samples before counter" order is that of the CPU's stores: guaranteed on x86-64 (TSO);
  on weakly ordered CPUs (ARM) numpy issues no fence, so a reader could in principle see the new counter before
  the last samples of the newest block (the window is the few instructions between the copy and the store).
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Mono float32 ring of `capacity` samples; one writer (the callback), any number of readers.

    `data` (float32 `[capacity]`) and `counter` (int64 `[>= 1]`) put the ring on an existing buffer (shared
    memory); `prefault` zeroes the samples and the counter now (the writer's side: pages are touched here, not
    in the callback). A reader attaching to a ring another process writes passes `prefault=False`.
    """

    def __init__(self, capacity: int, data: np.ndarray | None = None, counter: np.ndarray | None = None,
                 prefault: bool = True):
        if capacity <= 0:
            raise ValueError(f"ring buffer capacity must be > 0, got {capacity}")
        self.capacity = int(capacity)
        if data is None:
            data = np.empty(self.capacity, dtype=np.float32)
            prefault = True
        if data.dtype != np.float32 or data.shape != (self.capacity,):
            raise ValueError(f"ring data must be float32 [{self.capacity}], got {data.dtype} {data.shape}")
        if counter is None:
            counter = np.zeros(1, dtype=np.int64)
        if counter.dtype != np.int64 or counter.size < 1:
            raise ValueError("ring counter must be an int64 array of at least one element")
        self._data = data
        self._count = counter
        if prefault:
            self._data.fill(0.0)  # touch every page now, not in the callback (np.zeros maps pages lazily)
            self._count[0] = 0

    @property
    def written(self) -> int:
        """Total samples written since creation (monotonic)."""
        return int(self._count[0])

    def write(self, block: np.ndarray) -> None:
        """Append a mono block `[frames]` (frames <= capacity); no allocation beyond Python scalars."""
        n = block.shape[0]
        w = int(self._count[0])
        start = w % self.capacity
        first = min(n, self.capacity - start)
        self._data[start : start + first] = block[:first]
        if first < n:
            self._data[: n - first] = block[first:]
        self._count[0] = w + n  # publish after the copy (one aligned 8-byte store)

    def read_last(self, n: int, out: np.ndarray | None = None) -> np.ndarray:
        """Copy of the newest `n` samples (oldest first) as float32 `[n]`; zeros where nothing was written yet."""
        n = int(n)
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n > self.capacity:
            raise ValueError(f"asked for {n} samples, the ring holds {self.capacity}")
        dst = np.zeros(n, dtype=np.float32) if out is None else out[:n]
        count, data, cap = self._count, self._data, self.capacity
        overwritten = 0
        for _ in range(4):
            end = int(count[0])
            have = min(n, end)
            dst[: n - have] = 0.0
            if have:
                start = (end - have) % cap
                first = min(have, cap - start)
                dst[n - have : n - have + first] = data[start : start + first]
                if first < have:
                    dst[n - have + first :] = data[: have - first]
            # the writer may have wrapped onto the oldest samples we copied while we were copying
            overwritten = int(count[0]) - end - (cap - have)
            if overwritten <= 0:
                return dst
        dst[: min(n, max(0, overwritten))] = 0.0
        return dst

    def clear(self) -> None:
        """Forget the contents (call only while the writer is stopped)."""
        self._data[:] = 0.0
        self._count[0] = 0
