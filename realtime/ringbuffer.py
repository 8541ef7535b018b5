"""A single-producer ring buffer of mono float32 audio, preallocated, lock-free for one writer.

The audio callback is the only writer: `write(block)` copies into the preallocated array with at most two slice
assignments and then advances a monotonic write counter. Readers (analysis worker, GUI) call `read_last(n)`, which
copies the newest n samples out and checks that the writer did not overwrite them meanwhile (it retries, then
gives up on the overwritten head with zeros): readers never block the writer and the writer never waits for a
reader.

The samples and the counters can live on any buffer, e.g. a `multiprocessing.shared_memory` block written by an
engine in another process (`RingBuffer(capacity, data=..., counter=...)`). Two aligned int64 counters, like a
sequence lock for an append-only writer: `counter[1]` ("reserved") is stored before a block's samples are copied
in, `counter[0]` ("written", total samples committed) after. Each is one 8-byte store.

Guarantee of `read_last(n)` (same process or across processes):

* it reads `written` (= end), copies the span `[end - n, end)`, then reads `reserved` (= high);
* samples below `end` were complete before `end` was stored, so every sample copied is a finished one, except
  that the writer may have lapped onto the oldest ones during the copy, including a block it is still copying
  (that is why `reserved`, not `written`, is read afterwards): the oldest `high - end - (capacity - n)` samples
  are suspect; the copy is retried (4 tries) and what is still suspect is returned as zeros. A read therefore
  never mixes audio of two laps; at worst its oldest part is zeros when the writer laps it continuously.
* counters are never torn (aligned 8-byte loads and stores are single accesses on x86-64 and ARM64). Across
  processes the order "reserved, samples, written" (writer) and "written, samples, reserved" (reader) is the
  CPU's: guaranteed on x86-64 (TSO: stores and loads are each kept in program order). On weakly ordered CPUs
  (ARM64) numpy issues no fences, so that order is not formally guaranteed there (in practice the window is the
  few hundred instructions of Python between a copy and its counter store).

In one process under the GIL a copy is never interleaved with a write (numpy copies these arrays without
releasing the GIL), so only the lapping case applies.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Mono float32 ring of `capacity` samples; one writer (the callback), any number of readers.

    `data` (float32 `[capacity]`) and `counter` (int64 `[2]`: written, reserved) put the ring on an existing
    buffer (shared memory); `prefault` zeroes the samples and the counters now (the writer's side: pages are touched here, not
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
            counter = np.zeros(2, dtype=np.int64)
        if counter.dtype != np.int64 or counter.shape != (2,):
            raise ValueError(f"ring counter must be int64 [2] (written, reserved), got {counter.dtype} "
                             f"{counter.shape}")
        self._data = data
        self._count = counter
        if prefault:
            self._data.fill(0.0)  # touch every page now, not in the callback (np.zeros maps pages lazily)
            self._count[:] = 0

    @property
    def written(self) -> int:
        """Total samples written since creation (monotonic)."""
        return int(self._count[0])

    def write(self, block: np.ndarray) -> None:
        """Append a mono block `[frames]` (frames <= capacity); no allocation beyond Python scalars."""
        n = block.shape[0]
        count = self._count
        w = int(count[0])
        count[1] = w + n  # reserved: readers treat what this block overwrites as suspect from now on
        start = w % self.capacity
        first = min(n, self.capacity - start)
        self._data[start : start + first] = block[:first]
        if first < n:
            self._data[: n - first] = block[first:]
        count[0] = w + n  # written: publish after the copy (one aligned 8-byte store)

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
            # the writer may have lapped onto the oldest samples we copied (a block in progress included)
            overwritten = int(count[1]) - end - (cap - have)
            if overwritten <= 0:
                return dst
        dst[: min(n, max(0, overwritten))] = 0.0
        return dst

    def clear(self) -> None:
        """Forget the contents (call only while the writer is stopped)."""
        self._data[:] = 0.0
        self._count[:] = 0
