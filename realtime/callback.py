"""The audio callback's work: one block in, the matched chain, A/B, safety and the limiter, one block out.

`BlockProcessor` is made for each start (realtime.engine allocates it with the stream's rate): every buffer it
touches is preallocated, it takes no lock, logs nothing and allocates nothing beyond what pedalboard's process
returns (see realtime.streaming_chain). It writes the rings, the callback durations and the counters of an
`EngineBuffers` block (one aligned store each, after the data it counts) and a few plain attributes the control
thread reads (`last_callback`, `frames_done`, `onset_frame`, `error`).
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np

from fxmatch.errors import FxmatchInputError
from fxmatch.inference import to_mono
from realtime.ab import ABMixer
from realtime.buffers import DURATIONS, EngineBuffers
from realtime.config import MAX_FRAMES, EngineConfig
from realtime.safety import Limiter, unsafe
from realtime.streaming_chain import ChainPlayer

#: a callback that starts this many block periods after the previous one missed a cycle (a timing xrun)
LATE_BLOCKS = 1.5
_XRUN_FLAGS = 0x0F  # paInputUnderflow | paInputOverflow | paOutputUnderflow | paOutputOverflow
_H_CALLBACKS, _H_FRAMES, _H_XRUNS, _H_TRIPS = (EngineBuffers.CALLBACKS, EngineBuffers.FRAMES, EngineBuffers.XRUNS,
                                               EngineBuffers.TRIPS)
_H_LATE, _H_OVER, _H_TID = EngineBuffers.LATE, EngineBuffers.OVER, EngineBuffers.CB_TID


def load_loop(path: str | Path, rate: int, what: str) -> np.ndarray:
    """A file as mono float32 at `rate` (soxr), for looping in the callback."""
    from fxmatch.audio_io import read_audio

    p = Path(path)
    if not p.exists():
        raise FxmatchInputError(f"{what} {p}: no such file")
    audio, file_rate = read_audio(p)
    mono = to_mono(audio)
    if file_rate != rate:
        import soxr

        mono = soxr.resample(mono, file_rate, rate, quality="HQ").astype(np.float32)
    if mono.size < 16:
        raise FxmatchInputError(f"{what} {p}: too short to loop ({mono.size} samples)")
    return np.ascontiguousarray(mono, dtype=np.float32)


class Loop:
    """A looping player over a preallocated array (callback side: slice copies only)."""

    def __init__(self, audio: np.ndarray):
        self.audio = audio
        self.pos = 0

    def read(self, out: np.ndarray) -> None:
        """Fill `out` with the next samples, wrapping at the end."""
        n, size, pos = out.shape[0], self.audio.shape[0], self.pos
        done = 0
        while done < n:
            k = min(n - done, size - pos)
            out[done : done + k] = self.audio[pos : pos + k]
            done += k
            pos = (pos + k) % size
        self.pos = pos


class BlockProcessor:
    """The audio callback (see the module docstring): `duplex`, `output` and `input` are sounddevice callbacks."""

    def __init__(self, config: EngineConfig, rate: int, buffers: EngineBuffers, player: ChainPlayer,
                 mixer: ABMixer) -> None:
        """Preallocate everything for `rate` Hz; the loops of reference mode and `dry_file` are read here."""
        c = self.config = config
        self.rings = buffers.rings
        self.stats = buffers.header
        self.durations = buffers.durations
        self.clip = buffers.clips  # blocks with a peak >= 0.999 (dry, target, output), counted
        self.player = player
        self.mixer = mixer
        self.limiter = Limiter(rate, max_frames=MAX_FRAMES)
        self._dry_buf = np.zeros((1, MAX_FRAMES), dtype=np.float32)
        self._target_buf = np.zeros(MAX_FRAMES, dtype=np.float32)
        self._matched_buf = np.zeros(MAX_FRAMES, dtype=np.float32)
        self._out_buf = np.zeros(MAX_FRAMES, dtype=np.float32)
        self._scratch = np.zeros(MAX_FRAMES, dtype=np.float32)
        self._fade_in = np.linspace(0.0, 1.0, MAX_FRAMES, dtype=np.float32)
        self.n_callbacks = self.frames_done = 0
        self.xruns = self.late = self.over = self.trips = 0
        self._muted = False
        self.last_callback = time.monotonic()
        self._last_t0 = 0.0
        self._tid_known = False
        self._late_s = LATE_BLOCKS * c.block_frames / rate
        self._budget_s = c.block_frames / rate
        self.onset_frame: int | None = None  # the first block of the target above -60 dBFS peak
        self.error: str | None = None  # why the callback failed (it aborted the stream)
        self.target_loop = Loop(load_loop(c.target_file, rate, "target file")) if c.mode == "reference" else None
        self.dry_loop = Loop(load_loop(c.dry_file, rate, "dry file")) if c.dry_file is not None else None

    # -- sounddevice's callbacks -----------------------------------------------------------------------------------

    def duplex(self, indata: np.ndarray, outdata: np.ndarray, frames: int, time_info, status) -> None:
        """A duplex stream's callback."""
        self.process(indata, outdata, frames, status)

    def output(self, outdata: np.ndarray, frames: int, time_info, status) -> None:
        """An output-only stream's callback (the dry and the target come from files)."""
        self.process(None, outdata, frames, status)

    def input(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        """An input-only stream's callback (analyse mode)."""
        self.process(indata, None, frames, status)

    # -- one block -------------------------------------------------------------------------------------------------

    def process(self, indata: np.ndarray | None, outdata: np.ndarray | None, frames: int, status) -> None:
        """One callback: count xruns and timing, process the block, store the duration and the counters (status
        None: not from a stream). A failure records `error` and aborts the stream (sounddevice.CallbackAbort)."""
        t0 = time.perf_counter()
        st = self.stats
        try:
            if status and status._flags & _XRUN_FLAGS:  # under/overflows; not "priming output"
                self.xruns += 1
                st[_H_XRUNS] = self.xruns
            if t0 - self._last_t0 > self._late_s and self.n_callbacks:  # a missed cycle (timing xrun)
                self.late += 1
                st[_H_LATE] = self.late
            elif not self._tid_known and status is not None:
                self._tid_known = True  # once: the control thread asks for real-time priority for this thread
                st[_H_TID] = threading.get_native_id()
            self._last_t0 = t0
            if frames > MAX_FRAMES:
                if outdata is not None:
                    outdata.fill(0.0)
                return
            self._block(indata, outdata, frames)
        except Exception as exc:  # noqa: BLE001 - a bug must not leave the stream running silently
            import sounddevice as sd

            self.error = f"audio callback failed: {type(exc).__name__}: {exc}"
            raise sd.CallbackAbort from None
        finally:
            d = time.perf_counter() - t0
            if d > self._budget_s:
                self.over += 1
                st[_H_OVER] = self.over
            n = self.n_callbacks
            self.durations[n % DURATIONS] = d
            self.n_callbacks = n + 1
            self.frames_done += frames
            # published for readers (maybe in another process) after what they count
            st[_H_TRIPS] = self.trips
            st[_H_FRAMES] = self.frames_done
            st[_H_CALLBACKS] = n + 1
            self.last_callback = time.monotonic()

    def read_dry(self, indata: np.ndarray | None, frames: int) -> np.ndarray:
        """The dry block (from its loop or its input channel) in the preallocated buffer, its clips counted."""
        dry = self._dry_buf[0, :frames]
        if self.dry_loop is not None:
            self.dry_loop.read(dry)
        else:
            dry[:] = indata[:, self.config.dry_channel]
        if max(float(dry.max()), -float(dry.min())) >= 0.999:
            self.clip[0] += 1
        return dry

    def _block(self, indata: np.ndarray | None, outdata: np.ndarray | None, frames: int) -> None:
        rings = self.rings
        target = self._target_buf[:frames]
        # sources
        if self.target_loop is not None:
            self.target_loop.read(target)
        elif indata is not None:
            target[:] = indata[:, self.config.target_channel]
        peak_t = max(float(target.max()), -float(target.min()))
        if peak_t >= 0.999:
            self.clip[1] += 1
        if self.onset_frame is None and peak_t > 1e-3:
            self.onset_frame = self.frames_done
        rings["target"].write(target)
        if outdata is None:  # analyse: no re-synthesis
            return
        dry = self.read_dry(indata, frames)
        rings["dry"].write(dry)
        # the chain
        matched = self._matched_buf[:frames]
        self.player.process(self._dry_buf[:, :frames], matched)
        tripped = unsafe(matched)
        if tripped:
            self.trips += 1
            self.player.trip()
            matched[:] = 0.0
        rings["matched"].write(matched)
        if not math.isfinite(float(np.dot(dry, dry))):
            np.nan_to_num(dry, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        # A/B, safety, limiter
        out = self._out_buf[:frames]
        self.mixer.mix(target, matched, dry, out)
        if tripped or unsafe(out):
            if not tripped:
                self.trips += 1
            out[:] = 0.0
            self._muted = True
        elif self._muted:  # fade back in over one block after a trip
            out *= self._fade_in[-frames:] if frames == MAX_FRAMES else self._ramp_in(frames)
            self._muted = False
        peak = self.limiter.process(out)
        if peak > 1.0:
            self.clip[2] += 1
        rings["output"].write(out)
        outdata[:] = out[:, None]

    def _ramp_in(self, frames: int) -> np.ndarray:
        r = self._scratch[:frames]
        np.multiply(self._fade_in[:frames], (MAX_FRAMES - 1) / max(1, frames - 1), out=r)
        np.minimum(r, 1.0, out=r)
        return r
