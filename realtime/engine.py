"""The real-time engine: live audio in, the matched chain out, estimates of the target's chain as it plays.

This module is the contract between `realtime/` and `gui/` (and `fxmatch live`):

    engine = LiveEngine(EngineConfig(model_path="models/fxmatch-default.onnx", mode="reference",
                                     target_file="song.wav"))
    engine.start()                  # opens a duplex sounddevice stream
    engine.latest_estimate()        # poll (e.g. from a QTimer); never pushed from the audio thread
    engine.set_ab("target")         # A/B with an equal-power crossfade
    engine.stop()                   # idempotent, never hangs

Modes: *capture* (two inputs: `dry_channel` is the instrument, `target_channel` the processed sound), *reference*
(live dry input, target looped from `target_file`), *analyse* (one input, `target_channel`; estimates only, no
re-synthesis, an input-only stream). Extras beyond the contract: `dry_file` (loop the dry signal from a file
instead of the input, for demos and benchmarks), `first_estimate_s` in telemetry.

`LiveEngine` is a facade over parts that each hold one concern, and the control thread that drives them:

* realtime.stream.AudioStream: devices, the sounddevice stream, the scheduling tuned while it runs;
* realtime.callback.BlockProcessor: the audio callback (rings, chain, A/B, safety, limiter, counters);
* realtime.analysis_link.AnalysisLink: the analysis process (or thread) and the estimates it publishes;
* realtime.switching.ChainSwitch: which chain plays (glides, crossfades, spares) and the A/B position;
* realtime.telemetry: xruns, callback durations, load, estimate rate, levels, the recent audio (EngineReadings);
* realtime.buffers.EngineBuffers and realtime.config.EngineConfig: the block they share and the settings.

Processes and threads (the default layout, `analysis="process"`): the process that owns the PortAudio stream does
only audio. Its threads are the PortAudio callback (no locks, no logging, no allocation beyond what pedalboard's
process returns, see realtime.streaming_chain), one control thread (every 20 ms: takes a new estimate from the
shared estimate slot and hands the chain to the callback; every 100 ms: watchdog, spare chains, restarts a dead
analysis process, asks for real-time priority for the callback thread) and the caller's (the GUI's or `fxmatch
live`'s), which only reads snapshots. Resampling and inference run in the analysis process
(realtime.analysis.AnalysisProcess), which reads the target ring from the same shared-memory block and writes
estimates into its estimate slot; a capture search runs in a process of its own as well (realtime.sched.background
for its priority). `analysis="thread"` runs an AnalysisWorker thread in the audio process instead (the old layout;
`fxmatch bench realtime` measures it as the worst case).

Scheduling while the stream runs (realtime.sched): the callback thread is put on SCHED_FIFO where the OS grants it
(`Telemetry.callback_priority` says what it got), Python's switch interval is short (`gil_switch_interval_s`,
0.25 ms: a thread that holds the GIL gives it up that soon when the callback asks), and garbage collection is
frozen and disabled (`gc_freeze`; the callback allocates nothing that could form a cycle, and the control thread
runs a young-generation collection every few seconds). `stop()` restores all of it. `EngineAPI` holds what both
engines (LiveEngine, realtime.remote.RemoteEngine) share.
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

from fxmatch.errors import FxmatchInputError
from fxmatch.inference import EstimatorSession
from realtime.ab import POSITIONS
from realtime.analysis import StableEstimate
from realtime.analysis_link import AnalysisLink, LiveEstimate
from realtime.buffers import EngineBuffers, new_shared_block
from realtime.callback import BlockProcessor
from realtime.config import MAX_FRAMES, EngineConfig, validate_config
from realtime.stream import AudioStream
from realtime.streaming_chain import validate_chain
from realtime.switching import ChainSwitch
from realtime.telemetry import EngineReadings, EstimateLog, Levels, Telemetry, telemetry_from

__all__ = [  # the engine's API; the config and the readings it hands out are defined in its parts
    "EngineAPI", "EngineConfig", "EngineReadings", "Levels", "LiveEngine", "LiveEstimate", "Telemetry",
]

log = logging.getLogger("fxmatch.realtime")

#: a stream with no callback for this long (s) is declared lost
WATCHDOG_S = 2.0
#: the control thread's period (s): how soon a new estimate reaches the callback
CONTROL_S = 0.02


class EngineAPI(EngineReadings):
    """The engine API (see the module docstring), defined once for LiveEngine and realtime.remote.RemoteEngine.

    This class holds what both do the same way: the context manager, listeners, checking A/B positions and chains,
    and the freeze / hand-set chain state a restart replays. Subclasses implement start, stop, running,
    telemetry, latest_estimate, current_chain and the `_apply_*` hooks (called after the checks, with the state
    already updated). Public methods: any non-audio thread.
    """

    def _init_api(self, config: EngineConfig) -> None:
        """The shared state (call from __init__ after validate_config)."""
        self.config = config
        self._listeners: list[Callable[[], None]] = []
        self._frozen = False
        self._ab_position = "matched" if config.mode != "analyse" else "target"
        self._manual: tuple | None = None  # a chain set by hand (played again by the next start)

    # -- implemented by each engine --------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the stream runs."""
        raise NotImplementedError

    def start(self) -> None:
        """Open and start the stream and the analysis (FxmatchInputError on device problems)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the stream and the analysis; idempotent, never hangs."""
        raise NotImplementedError

    def close(self) -> None:
        """stop() and end what a restart would reuse (LiveEngine: its analysis process); the engine is done."""
        self.stop()

    def telemetry(self) -> Telemetry:
        """A snapshot of xruns, callback durations, load, estimate rate and latency, stream latencies, errors."""
        raise NotImplementedError

    def latest_estimate(self) -> LiveEstimate | None:
        """The newest smoothed, hysteresis-stabilised estimate (None before the first)."""
        raise NotImplementedError

    def current_chain(self) -> tuple[tuple[str, dict[str, float]], ...]:
        """What is playing now: (effect, {param: value}) with the values the parameters glide to."""
        raise NotImplementedError

    def _apply_ab(self, position: str) -> None:
        raise NotImplementedError

    def _apply_frozen(self, frozen: bool) -> None:
        raise NotImplementedError

    def _apply_chain(self, spec: tuple) -> None:
        raise NotImplementedError

    def _apply_reset(self) -> None:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_ab(self, position: str) -> None:
        """Play "target" (A), "matched" (B) or "dry", with an equal-power crossfade of `crossfade_ms`."""
        if position not in POSITIONS:
            raise FxmatchInputError(f"A/B position must be one of {', '.join(POSITIONS)}, got {position!r}")
        self._ab_position = position
        self._apply_ab(position)

    def set_frozen(self, frozen: bool) -> None:
        """Freeze: estimates keep coming but stop changing the playing chain."""
        self._frozen = bool(frozen)
        self._apply_frozen(self._frozen)

    def set_chain(self, chain: Sequence[tuple[str, Mapping[str, float]]]) -> None:
        """Play this chain now (manual edit, an alternative, a preset); implies frozen. FxmatchInputError if bad."""
        spec = validate_chain(chain)
        self._frozen = True
        self._manual = spec
        self._apply_chain(spec)

    def reset_to_estimate(self) -> None:
        """Unfreeze and go back to following the estimate (plays the latest one now)."""
        self._frozen = False
        self._manual = None
        self._apply_reset()

    def add_listener(self, fn: Callable[[], None]) -> None:
        """Call `fn()` (never from the audio thread) after each estimate and on stop/error."""
        self._listeners.append(fn)

    def _notify(self) -> None:
        for fn in list(self._listeners):
            try:
                fn()
            except Exception:  # a listener's bug must not stop the engine
                log.exception("engine listener failed")


class LiveEngine(EngineAPI):
    """The live engine (see the module docstring). All public methods are called from non-audio threads."""

    #: the audio callback's class (tests put a subclass with fault hooks here)
    processor_class: type[BlockProcessor] = BlockProcessor
    #: the control operations an engine process (realtime.remote) runs on this engine for its parent
    remote_ops: tuple[str, ...] = ("set_ab", "set_frozen", "set_chain", "reset_to_estimate")

    def __init__(self, config: EngineConfig) -> None:
        """Validate the config and load the model (FxmatchInputError on a bad config or model); with
        analysis="process" the analysis process starts now (it loads the model meanwhile)."""
        validate_config(config)
        self._init_api(config)
        c = config
        self.session = EstimatorSession(c.model_path, providers=c.providers, threads=c.analysis_threads,
                                        batch_size=1)
        self.info = self.session.info
        self._lock = threading.RLock()  # control side (public methods, control thread); never taken by the callback
        self._control: threading.Thread | None = None
        self._control_stop = threading.Event()
        self._running = False
        self._stopping = False
        self._error: str | None = None
        self._sample_rate = 0
        self._n_out = 0
        self._priority = ""
        self._next_buffers: EngineBuffers | None = None
        self._buffers: EngineBuffers | None = None
        self._clip_seen = None
        # the parts
        self.stream = AudioStream(c)
        self.audio: BlockProcessor | None = None  # made for each start (and prepare_offline)
        self.chains = ChainSwitch(c, {(e.name, p.name): p.scale for e in self.info.effects for p in e.params})
        self.analysis = AnalysisLink(c, self.session, self._on_estimate)
        self.estimates = EstimateLog()

    def __del__(self) -> None:
        analysis = getattr(self, "analysis", None)
        if analysis is not None:
            analysis.close()

    # -- properties ------------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the stream runs (False after stop() or after a stream error)."""
        return self._running

    @property
    def analysis_pid(self) -> int | None:
        """The analysis process's id (None with analysis="thread" or when none runs)."""
        return self.analysis.pid

    @property
    def error(self) -> str | None:
        """Why the stream stopped (a device error, a failed callback, a lost stream); None while all is well."""
        audio = self.audio
        return self._error or (audio.error if audio is not None else None)

    # -- start / stop ----------------------------------------------------------------------------------------------

    def ring_capacity(self, rate: int) -> int:
        """Samples each ring holds at `rate` Hz (15 s, and at least 3 model windows and a block)."""
        window_dev = math.ceil(self.info.window_samples * rate / self.info.sample_rate)
        return max(int(15 * rate), 3 * window_dev + MAX_FRAMES)

    def _allocate(self, rate: int, n_out: int) -> None:
        """Buffers, chain player, mixer and callback for `rate` Hz and `n_out` output channels (a start)."""
        c = self.config
        self._sample_rate = rate
        self._n_out = n_out
        cap = self.ring_capacity(rate)
        buffers, self._next_buffers = self._next_buffers, None
        if buffers is not None and buffers.rings["dry"].capacity != cap:
            raise ValueError(f"engine buffers hold {buffers.rings['dry'].capacity} samples per ring, need {cap}")
        if buffers is None:
            if c.analysis == "process":  # the analysis process maps the same block
                block = new_shared_block(EngineBuffers.nbytes(cap))
                buffers = EngineBuffers(cap, block.buf)
                buffers.owner = block
            else:
                buffers = EngineBuffers(cap)
        self._buffers = buffers
        self._clip_seen = None
        self.estimates.clear()
        self.chains.reset(rate, self._ab_position)
        self.audio = self.processor_class(c, rate, buffers, self.chains.player, self.chains.mixer)
        self.analysis.reset()

    def use_buffers(self, buffers: EngineBuffers) -> None:
        """Put the next start()'s (or prepare_offline()'s) rings, counters and durations on `buffers` (e.g. shared
        memory that realtime.remote's parent reads; `buffers.owner` a SharedMemory whose file descriptor the
        analysis process maps); their capacity must be ring_capacity(rate)."""
        self._next_buffers = buffers

    def resolve_devices(self) -> tuple[int, int]:
        """(sample rate in Hz, output channels) that start() would open; FxmatchInputError on device problems."""
        _, _, _, n_out, rate = self.stream.resolve()
        return rate, n_out

    def prepare_offline(self, sample_rate: int, output_channels: int = 1) -> None:
        """Allocate everything start() would, without a stream or analysis (deterministic block tests)."""
        with self._lock:
            self._allocate(int(sample_rate), int(output_channels) if self.config.mode != "analyse" else 0)
            if self.config.mode != "analyse":
                self.chains.play(self._manual or (), force=True)

    def start(self) -> None:
        """Open and start the stream and the analysis (FxmatchInputError on device problems)."""
        with self._lock:
            if self._running:
                return
            c = self.config
            devices = self.stream.resolve()
            rate, n_out = devices[4], devices[3]
            self._allocate(rate, n_out)
            self._error = None
            self._stopping = False
            self._priority = "" if c.realtime_priority else "normal (not asked)"
            if c.mode != "analyse":
                self.chains.play(self._manual or (), force=True)
            self.stream.open(self.audio, devices, self._finished)
            self.analysis.prepare(self._buffers, rate)
            self.stream.tune()
            self._running = True
            try:
                self.stream.start()
            except FxmatchInputError:
                self._running = False
                self.stream.untune()
                raise
            self.audio.last_callback = time.monotonic()
            self.analysis.start(self._buffers, rate)
            self._control_stop.clear()
            self._control = threading.Thread(target=self._control_loop, name="fxmatch-control", daemon=True)
            self._control.start()
            log.info("live engine running: %s mode, %d Hz, %d frames, model %s on %s, analysis in a %s", c.mode,
                     rate, c.block_frames, self.info.label, self.session.provider, c.analysis)

    def _stop_helpers(self) -> None:
        """Stop the control thread and the analysis (bounded waits)."""
        self._control_stop.set()
        control, self._control = self._control, None
        if control is not None and control is not threading.current_thread():
            control.join(2.0)
        self.analysis.stop()

    def stop(self) -> None:
        """Stop the stream, the control thread and the analysis; idempotent, never hangs (bounded waits). The
        analysis process stays (model loaded) for the next start; `close()` ends it."""
        with self._lock:
            self._stopping = True
            was_running = self._running
            self._running = False
        self._stop_helpers()
        self.stream.close()
        self.stream.untune()
        if was_running:
            self._notify()

    def close(self) -> None:
        """stop() and end the analysis process."""
        self.stop()
        self.analysis.close()

    def _fail(self, message: str) -> None:
        """A stream error: record it, stop everything (from the control thread)."""
        if self._error is None:
            self._error = message
        log.error("live engine stopped: %s", message)
        self._running = False
        self._stop_helpers()
        self.stream.close()
        self.stream.untune()
        self._notify()

    def _finished(self) -> None:
        # PortAudio's thread, after the stream ended: never blocks; the control thread's watchdog does the rest
        if not self._stopping and self._error is None:
            self._error = self.audio.error or "the audio stream stopped (device lost or server gone)"
        if not self._stopping:
            self._running = False

    # -- the control thread ----------------------------------------------------------------------------------------

    def _control_loop(self) -> None:
        """Every CONTROL_S: a new estimate from the slot; every 5th: housekeeping; with analysis="thread" (the GUI's
        process, whose Qt objects form cycles) every 5 s a young-generation garbage collection (automatic
        collection is off while streaming; the audio process proper allocates almost nothing that forms cycles)."""
        if self.config.realtime_priority:
            from realtime.sched import HELPER_PRIORITY, realtime_thread

            realtime_thread(0, HELPER_PRIORITY)
        in_process = self.analysis.process is not None
        n = 0
        while not self._control_stop.wait(CONTROL_S):
            try:
                if in_process:
                    self.analysis.poll(self._buffers)
                n += 1
                if n % 5 == 0:
                    self._housekeeping()
                if not in_process and n % 250 == 0 and self.stream.gc_was_enabled is not None:
                    gc.collect(1)
            except Exception:  # the control thread must keep going
                log.exception("engine control step failed")

    def _housekeeping(self) -> None:
        """Control thread, every 100 ms: watchdog, callback priority, analysis process, spare chains, release."""
        if self._stopping:
            return
        error = self.error
        if error is not None and self.stream.stream is not None:
            self._fail(error)
            return
        audio = self.audio
        if self.stream.stream is not None and self._running:
            silent_for = time.monotonic() - audio.last_callback
            if silent_for > max(WATCHDOG_S, 8 * self.config.block_frames / max(1, self._sample_rate)):
                self._fail(f"no audio callbacks for {silent_for:.1f} s (device lost or server stopped)")
                return
        if not self._priority:
            tid = int(self._buffers.header[EngineBuffers.CB_TID])
            if tid:
                from realtime.sched import realtime_thread

                self._priority = realtime_thread(tid)
                log.info("callback thread %d: %s", tid, self._priority)
        if self._running:
            self.analysis.supervise()
        if self.config.mode != "analyse":
            self.chains.housekeeping()

    # -- estimates and chains (control side) ------------------------------------------------------------------------

    def _on_estimate(self, est: StableEstimate, latency_s: float) -> None:
        """Control thread (or the analysis thread): publish the estimate and, unless frozen, play it."""
        with self._lock:
            frames = self.audio.frames_done if self.audio is not None else 0
            self.analysis.publish(est, latency_s, frames / max(1, self._sample_rate))
            self.estimates.add(latency_s, frames)
            if not self._frozen and self.config.mode != "analyse":
                self.chains.play(est.params)
        self._notify()

    def latest_estimate(self) -> LiveEstimate | None:
        """The newest smoothed, hysteresis-stabilised estimate (None before the first)."""
        return self.analysis.estimate

    def _apply_ab(self, position: str) -> None:
        self.chains.set_position(position)

    def _apply_frozen(self, frozen: bool) -> None:
        pass  # the next estimate reads self._frozen

    def _apply_chain(self, spec: tuple) -> None:
        with self._lock:
            if self.config.mode != "analyse":
                self.chains.play(spec)

    def _apply_reset(self) -> None:
        with self._lock:
            est = self.analysis.estimate
            if est is not None and self.config.mode != "analyse":
                self.chains.play(est.params)

    def current_chain(self) -> tuple[tuple[str, dict[str, float]], ...]:
        """What is playing now: (effect, {param: value}) with the values the parameters glide to."""
        return self.chains.current(self._manual)

    # -- readings (any non-audio thread; recent_audio and levels from EngineReadings) --------------------------------

    def estimate_rate(self, span_s: float = 5.0) -> float:
        """Estimates published per second over the last `span_s` seconds."""
        return self.estimates.rate(span_s)

    def status_fields(self) -> dict[str, Any]:
        """Telemetry's fields that do not come from EngineBuffers (cheap: no statistics over the durations)."""
        onset = self.audio.onset_frame if self.audio is not None else None
        return {"running": self._running, "cpu_load": self.stream.cpu_load,
                **self.estimates.fields(onset, self._sample_rate),
                "input_latency_s": self.stream.latency[0], "output_latency_s": self.stream.latency[1],
                "block_frames": self.config.block_frames, "sample_rate": self._sample_rate,
                "provider": self.session.provider, "model_name": self.info.label, "error": self.error,
                **self.analysis.status(self._buffers), "callback_priority": self._priority}

    def telemetry(self) -> Telemetry:
        """A snapshot of xruns, callback durations, load, estimate rate and latency, stream latencies, errors."""
        return telemetry_from(self._buffers, self.status_fields())
