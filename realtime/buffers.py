"""EngineBuffers: what the audio callback writes and readers poll, on one flat block (shared memory or not).

The engine (realtime.engine), its analysis process (realtime.analysis) and the app's side of an engine process
(realtime.remote) all map this layout; it imports none of them.
"""

from __future__ import annotations

from multiprocessing import shared_memory

import numpy as np

from fxmatch.errors import FxmatchInputError
from realtime.ringbuffer import RingBuffer

#: float64 values in the estimate slot (realtime.analysis writes it: chain index, probability, latency (s),
#: alternatives (count, indices, probabilities), params (count, normalised row))
SLOT_FLOATS = 1024
DURATIONS = 65536  # callback durations kept for the statistics (about 6 min at 256 frames / 48 kHz)
RING_NAMES = ("dry", "target", "matched", "output")


class EngineBuffers:
    """What the callback writes and readers poll, on one flat buffer (this process's memory or shared memory).

    Layout (native byte order, every field aligned to 8 bytes):
    int64 header[32] | float64 durations[65536] | float64 estimate slot[1024] | float32 rings[4][capacity] (dry,
    target, matched, output). Header slots: 0 magic, 1 ring capacity, 2 callbacks, 3 frames, 4 xruns, 5 safety
    trips, 6-8 clip counts (dry, target, output: blocks with a peak >= 0.999), 9-16 the rings' counters (written,
    reserved) in ring order, 17 the estimate slot's sequence lock, 18 analysis hops, 19 analysis errors, 20 late
    callbacks, 21 callbacks over budget, 22 the callback thread's native id, 23 the analysis process's pid.
    `durations[i % 65536]` is the i-th callback's duration in seconds. The callback is the only writer of its
    fields and the analysis process (realtime.analysis) of the slot and 17-19, 23; each stores a counter (one
    aligned 8-byte store) after the data it counts, so a reader that reads a counter first sees finished data (see
    realtime.ringbuffer for the guarantee across processes). `writer=False` attaches to a block another process
    writes (checks the magic and capacity, touches nothing).
    """

    MAGIC = 0x66786D6174636802
    HEADER = 32
    owner: object = None  # what keeps `buffer` mapped (a shared memory block)
    CALLBACKS, FRAMES, XRUNS, TRIPS, CLIPS, RINGS = 2, 3, 4, 5, 6, 9
    EST_SEQ, A_HOPS, A_ERRORS, LATE, OVER, CB_TID, A_PID = 17, 18, 19, 20, 21, 22, 23

    @classmethod
    def nbytes(cls, capacity: int) -> int:
        """Bytes needed for rings of `capacity` samples."""
        return cls.HEADER * 8 + DURATIONS * 8 + SLOT_FLOATS * 8 + len(RING_NAMES) * int(capacity) * 4

    def __init__(self, capacity: int, buffer=None, writer: bool = True) -> None:
        capacity = int(capacity)
        size = self.nbytes(capacity)
        raw = np.empty(size, dtype=np.uint8) if buffer is None else np.frombuffer(buffer, dtype=np.uint8, count=size)
        h = self.HEADER * 8
        self.header = raw[:h].view(np.int64)
        self.durations = raw[h : h + DURATIONS * 8].view(np.float64)
        self.estimate_slot = raw[h + DURATIONS * 8 : h + (DURATIONS + SLOT_FLOATS) * 8].view(np.float64)
        if writer:
            self.header.fill(0)
            self.durations.fill(0.0)
            self.estimate_slot.fill(0.0)
            self.header[1] = capacity
        elif self.header[0] != self.MAGIC or self.header[1] != capacity:
            raise ValueError(f"not an engine buffer of capacity {capacity} (magic {int(self.header[0]):#x}, "
                             f"capacity {int(self.header[1])})")
        off = h + (DURATIONS + SLOT_FLOATS) * 8
        self.rings: dict[str, RingBuffer] = {}
        for i, name in enumerate(RING_NAMES):
            data = raw[off + i * capacity * 4 : off + (i + 1) * capacity * 4].view(np.float32)
            counter = self.header[self.RINGS + 2 * i : self.RINGS + 2 * i + 2]
            self.rings[name] = RingBuffer(capacity, data=data, counter=counter, prefault=writer)
        self.clips = self.header[self.CLIPS : self.CLIPS + 3]
        if writer:
            self.header[0] = self.MAGIC  # last: a reader that sees the magic sees a zeroed block

    def callback_stats(self) -> tuple[int, float, float, float, float]:
        """(callbacks, mean, p50, p99, max duration in ms) over the last 65536 callbacks."""
        n = int(self.header[self.CALLBACKS])
        if not n:
            return 0, 0.0, 0.0, 0.0, 0.0
        d = self.durations[: min(n, DURATIONS)] * 1e3
        p50, p99 = np.percentile(d, (50, 99))
        return n, float(d.mean()), float(p50), float(p99), float(d.max())


class SharedBlock(shared_memory.SharedMemory):
    """SharedMemory whose finaliser keeps quiet when numpy views still use the mapping (it is unmapped later)."""

    def __del__(self) -> None:
        try:
            self.close()
        except BufferError:  # numpy views are alive; the mmap is released with the last of them
            pass


def new_shared_block(nbytes: int, unlink: bool = True) -> SharedBlock:
    """A shared-memory block of `nbytes` (FxmatchInputError when /dev/shm refuses). `unlink`: its name is removed at
    once, so nothing can leak in /dev/shm (the analysis process gets its file descriptor); otherwise the caller
    unlinks it once another process has attached it by name."""
    try:
        block = SharedBlock(create=True, size=int(nbytes))
    except OSError as exc:
        raise FxmatchInputError(f"could not allocate {nbytes / 2**20:.0f} MiB of shared memory for the engine's "
                                f"buffers ({exc.strerror or exc}; is /dev/shm full?)") from None
    if unlink:
        block.unlink()
    return block
