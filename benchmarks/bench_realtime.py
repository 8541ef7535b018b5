"""`fxmatch bench realtime`: the live engine on a JACK dummy server, 48 kHz, under the load users put on it; JSON.

Issue 12's "Measure". For each block size (256, 128 and 64 frames; a JACK dummy server per size, started the way
realtime.jack starts them: real-time scheduled where this process may ask for it) two configurations, each for
`seconds` (default 60) after a 2 s warm-up, the full 7-effect chain playing (frozen, so it stays the full one),
analysis every 250 ms (4 Hz), and a capture search busy meanwhile:

* `default` (the headline): what `fxmatch app` runs. The engine in a process of its own
  (realtime.remote.RemoteEngine) that does only audio (callback on SCHED_FIFO where granted, GC frozen, short
  switch interval), the analysis (resampling + ONNX) in a third process; a GUI-like reader at 60 frames/s in this
  process (the app's: telemetry, levels, the estimate, 4096 samples of output, an FFT and ~6 ms of pure Python
  per frame), reading the engine's shared memory;
* `in_process` (the worst case beside it): realtime.engine.LiveEngine with `analysis="thread"` in this process, the
  same GUI-like thread in the same process (sharing the callback's GIL), the old layout.
* `floor` (the machine's own floor): a minimal PortAudio duplex client on the same server that only copies input
  to output (its callback on SCHED_FIFO where granted, as the engine's), with the same capture search busy and
  nothing else of fxmatch running. Misses here come from the platform (the scheduler, a virtual machine's vCPUs),
  so no layout of fxmatch can go below them; keys `xruns`, `late_callbacks`, `max_gap_ms` (the longest time
  between two callback starts), `server_missed_cycles`.

The capture search is one process for the whole benchmark running `fxmatch.capture.capture` (twin fitting of the
64 default chains, 1 torch thread) on a 2 s pedalboard render, again and again, on the cores
realtime.sched.background() gives it (every core but the first) at nice 0 (as busy as an unprivileged process can
be: the worst case for the analysis process, which runs at nice 4); `searches` counts the searches it finished.

Keys per run: `xruns` (PortAudio's under/overflow status flags), `late_callbacks` (the callback's own timing: a
callback that started more than 1.5 block periods after the previous one, i.e. a missed cycle), `over_budget`
(callbacks longer than a block), `callback_p50_ms` / `callback_p99_ms` / `callback_max_ms` (inside the callback),
`estimates_per_s` (estimates published in the timed window / its length), `first_estimate_s` (target onset to the
first estimate, stream time), `first_estimate_after_start_s` (stream start to the first estimate; the target file
starts with 1 s of silence), `startup_xruns` (during the warm-up), `callback_priority`, `analysis`,
`added_latency_blocks`, GUI frames/s, `server_missed_cycles` (cycles the JACK server logged as
missed by its client: "JackEngine::XRun"), `search_cpu_share` (CPU seconds the search process used per second). Model: models/fxmatch-default.onnx when it exists, else an untrained stand-in.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Self

import numpy as np

from benchmarks.models import benchmark_model

log = logging.getLogger("fxmatch.bench.realtime")

RATE = 48000
BLOCKS = (256, 128, 64)
WARMUP_S = 2.0
FULL_CHAIN = (
    ("Compressor", {"threshold_db": -20.0, "ratio": 4.0, "attack_ms": 5.0, "release_ms": 100.0}),
    ("Distortion", {"drive_db": 20.0}),
    ("PeakFilter", {"cutoff_frequency_hz": 1000.0, "gain_db": 6.0, "q": 1.0}),
    ("Chorus", {"rate_hz": 1.0, "depth": 0.5, "centre_delay_ms": 7.0, "feedback": 0.2, "mix": 0.5}),
    ("Phaser", {"rate_hz": 0.5, "depth": 0.5, "centre_frequency_hz": 1000.0, "feedback": 0.3, "mix": 0.5}),
    ("Delay", {"delay_seconds": 0.25, "feedback": 0.3, "mix": 0.3}),
    ("Reverb", {"room_size": 0.5, "damping": 0.5, "wet_level": 0.3, "dry_level": 0.8}),
)
TARGET_CHAIN = (("Compressor", {"threshold_db": -24.0, "ratio": 6.0, "attack_ms": 3.0, "release_ms": 80.0}),
                ("Chorus", {"rate_hz": 0.8, "depth": 0.4, "centre_delay_ms": 8.0, "feedback": 0.1, "mix": 0.5}),
                ("Reverb", {"room_size": 0.6, "damping": 0.4, "wet_level": 0.3, "dry_level": 0.8}))
#: the search's nice value: 0, as busy as a process can be without privileges (the app's search may use
#: realtime.sched.background()'s 10: on a quiet machine it gets the remaining core all the same)
SEARCH_NICE = 0
SEARCH_CHAIN = (("Distortion", {"drive_db": 18.0}),
                ("Delay", {"delay_seconds": 0.12, "feedback": 0.3, "mix": 0.3}))


def _signals(folder: Path) -> tuple[Path, Path]:
    """dry.wav (8 s of plucked chords, 1 s of silence first) and target.wav (it through TARGET_CHAIN)."""
    import pedalboard

    from fxmatch import testsignals
    from fxmatch.audio_io import write_audio

    dry = np.concatenate([testsignals.make("chord", RATE, 4.0, seed=s)[0] for s in (1, 2)]) * 0.6
    dry = np.concatenate([np.zeros(RATE, dtype=np.float32), dry.astype(np.float32)])
    target = pedalboard.Pedalboard([getattr(pedalboard, n)(**p) for n, p in TARGET_CHAIN])(dry[None], RATE)
    paths = folder / "dry.wav", folder / "target.wav"
    write_audio(paths[0], dry[None], RATE)
    write_audio(paths[1], target, RATE)
    return paths


# -------------------------------------------------------------------------------------------- the capture search


def search_load(stop, busy, searches, said) -> None:
    """Child process: fxmatch.capture's search on a 2 s render, again and again until `stop` is set (at
    realtime.sched.background()'s priority). `busy` is set once the first search runs; `searches` counts them."""
    from realtime.sched import background

    said.value = background(SEARCH_NICE).encode()[:200]
    import pedalboard
    import torch

    from fxmatch import testsignals
    from fxmatch.capture import CaptureCancelled, capture

    torch.set_num_threads(1)
    rate = 44100
    dry = testsignals.make("chord", rate, 2.0, seed=3)[0].astype(np.float32)
    wet = pedalboard.Pedalboard([getattr(pedalboard, n)(**p) for n, p in SEARCH_CHAIN])(dry[None], rate)[0]
    seed = 0
    while not stop.is_set():
        busy.set()
        try:
            capture(dry, wet, rate, time_budget=20.0, should_stop=stop.is_set, seed=seed)
        except CaptureCancelled:
            break
        searches.value += 1
        seed += 1


class SearchLoad:
    """The capture-search process (context manager): started, waited for until it searches, stopped."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.busy = ctx.Event()
        self.searches = ctx.Value("i", 0)
        self.said = ctx.Array("c", 256)
        self.proc = ctx.Process(target=search_load, args=(self.stop, self.busy, self.searches, self.said),
                                name="fxmatch-bench-search", daemon=True)

    def __enter__(self) -> Self:
        self.proc.start()
        if not self.busy.wait(120):
            raise RuntimeError("the capture-search process did not start within 120 s")
        return self

    def cpu_seconds(self) -> float:
        """CPU time (user + system, s) the search process has used so far (0 where /proc is missing)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


# ---------------------------------------------------------------------------------------------- the GUI reader


class _BusyGui(threading.Thread):
    """A GUI-like thread: every 16 ms, poll the engine, an FFT for a spectrum, and ~6 ms of pure Python."""

    def __init__(self, engine):
        super().__init__(name="busy-gui", daemon=True)
        self.engine = engine
        self.stop_event = threading.Event()
        self.frames = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            t0 = time.perf_counter()
            self.engine.telemetry()
            self.engine.levels()
            self.engine.latest_estimate()
            x = self.engine.recent_audio("output", 4096)
            np.abs(np.fft.rfft(x * np.hanning(x.size)))
            acc = 0
            while time.perf_counter() - t0 < 0.006:  # holds the GIL like a busy Qt paint
                for i in range(200):
                    acc += i * i
            self.frames += 1
            self.stop_event.wait(max(0.0, 0.016 - (time.perf_counter() - t0)))


def _lag_blocks(engine, block: int, max_blocks: int = 4) -> float:
    """Lag (blocks) of the output behind the dry input while A/B plays "dry": the lag within +-max_blocks with
    the highest normalised correlation over the last 2 s (NaN when the dry signal was silent)."""
    n = 2 * RATE
    rings = engine._buffers.rings
    for _ in range(50):  # both read at the same write count (the engine may run in another process)
        w = rings["dry"].written
        dry, out = rings["dry"].read_last(n).astype(np.float64), rings["output"].read_last(n).astype(np.float64)
        if rings["dry"].written == w == rings["output"].written:
            break
        time.sleep(0.0005)
    m = max_blocks * block
    best, best_lag = -2.0, 0
    for lag in range(-m, m + 1):
        a = dry[m : n - m]
        b = out[m + lag : n - m + lag]
        den = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
        if den == 0.0:
            continue
        c = float(np.dot(a, b)) / den
        if c > best:
            best, best_lag = c, lag
    return float("nan") if best == -2.0 else best_lag / block


def _window(engine, t0, t1, seq0: int, seq1: int, seconds: float) -> dict[str, Any]:
    """The figures of the timed window between two telemetry snapshots (callback durations from EngineBuffers)."""
    n0, n1 = t0.callbacks, t1.callbacks
    d = engine._buffers.durations  # circular, index = callback number % size
    ms = d[np.arange(max(n0, n1 - d.size), n1) % d.size] * 1e3
    return {"xruns": t1.xruns - t0.xruns, "late_callbacks": t1.late_callbacks - t0.late_callbacks,
            "over_budget": t1.over_budget - t0.over_budget, "callbacks": n1 - n0,
            "callback_mean_ms": round(float(ms.mean()), 4) if ms.size else None,
            "callback_p50_ms": round(float(np.percentile(ms, 50)), 4) if ms.size else None,
            "callback_p99_ms": round(float(np.percentile(ms, 99)), 4) if ms.size else None,
            "callback_max_ms": round(float(ms.max()), 4) if ms.size else None,
            "estimates_per_s": round((seq1 - seq0) / seconds, 3)}


def _server_xruns(server) -> int:
    """Cycles the JACK server logged as missed by its client ("JackEngine::XRun") so far."""
    return server._read_log().count("JackEngine::XRun")


def _one(kind: str, model: Path, dry: Path, target: Path, server, block: int, seconds: float,
         search: SearchLoad) -> dict[str, Any]:
    from realtime.engine import EngineConfig, LiveEngine
    from realtime.remote import RemoteEngine

    device = server.device
    config = EngineConfig(model_path=model, mode="reference", input_device=device, output_device=device,
                          sample_rate=RATE, block_frames=block, target_file=target, dry_file=dry, hop_seconds=0.25,
                          analysis="process" if kind == "default" else "thread")
    engine = RemoteEngine(config) if kind == "default" else LiveEngine(config)
    engine.set_chain(FULL_CHAIN)
    gui = _BusyGui(engine)
    searches0 = search.searches.value
    try:
        engine.start()
        gui.start()
        time.sleep(WARMUP_S)
        t0 = engine.telemetry()
        seq0 = engine.latest_estimate().seq if engine.latest_estimate() else 0
        frames0, server0, cpu0 = gui.frames, _server_xruns(server), search.cpu_seconds()
        start = time.monotonic()
        time.sleep(seconds)
        t1 = engine.telemetry()
        elapsed = time.monotonic() - start
        server_xruns, search_cpu = _server_xruns(server) - server0, search.cpu_seconds() - cpu0
        gui_fps = (gui.frames - frames0) / elapsed
        seq1 = engine.latest_estimate().seq if engine.latest_estimate() else 0
        out = _window(engine, t0, t1, seq0, seq1, elapsed)
        engine.set_ab("dry")
        time.sleep(0.6)
        lag = _lag_blocks(engine, block)
    finally:
        gui.stop_event.set()
        gui.join(2.0)
        engine.stop()
        if hasattr(engine, "close"):
            engine.close()
    out.update({
        "startup_xruns": t0.xruns, "startup_late_callbacks": t0.late_callbacks,
        "first_estimate_s": None if t1.first_estimate_s is None else round(t1.first_estimate_s, 3),
        "first_estimate_after_start_s": None if t1.first_estimate_after_start_s is None
        else round(t1.first_estimate_after_start_s, 3),
        "added_latency_blocks": None if math.isnan(lag) else round(lag, 3),
        "block_frames": block, "sample_rate": t1.sample_rate, "budget_ms": round(1e3 * block / RATE, 3),
        "cpu_load": round(t1.cpu_load, 4), "estimate_latency_ms": round(t1.estimate_latency_ms, 3),
        "output_latency_s": t1.output_latency_s, "safety_trips": t1.safety_trips,
        "analysis_errors": t1.analysis_errors, "analysis": t1.analysis.split(" ")[0],
        "callback_priority": t1.callback_priority,
        "gui_frames_per_s": round(gui_fps, 1),
        "searches_finished": search.searches.value - searches0,
        "search_cpu_share": round(search_cpu / elapsed, 3),
        "server_missed_cycles": server_xruns,
        "seconds": round(elapsed, 2), "error": t1.error,
    })
    return out


def floor_run(server, block: int, seconds: float, search: SearchLoad | None = None) -> dict[str, Any]:
    """The machine's floor: a minimal PortAudio duplex client on the same server, its callback (SCHED_FIFO where
    granted, as the engine's) copying input to output and stamping its start; no engine, analysis or GUI reader,
    the capture search busy as in the other runs. Its misses are the platform's (scheduler, VM), not fxmatch's."""
    import gc

    import sounddevice as sd

    from realtime.sched import realtime_thread

    capacity = int((WARMUP_S + seconds + 10.0) * RATE / block) + 16
    stamps = np.zeros(capacity)
    state = {"n": 0, "flagged": 0, "priority": ""}

    def callback(indata, outdata, frames, time_info, status) -> None:
        i = state["n"]
        if i < capacity:
            stamps[i] = time.perf_counter()
        if i == 0:
            state["priority"] = realtime_thread(threading.get_native_id())
        if status:
            state["flagged"] += 1
        outdata[:] = indata
        state["n"] = i + 1

    searches0 = search.searches.value if search is not None else 0
    stream = sd.Stream(device=(server.device, server.device), channels=(2, 2), samplerate=RATE, blocksize=block,
                       dtype="float32", latency="low", callback=callback)
    gc.freeze()
    try:
        with stream:
            time.sleep(WARMUP_S)
            n0, flagged0, server0 = state["n"], state["flagged"], _server_xruns(server)
            cpu0 = search.cpu_seconds() if search is not None else 0.0
            start = time.monotonic()
            time.sleep(seconds)
            n1, flagged1 = state["n"], state["flagged"]
            elapsed = time.monotonic() - start
            server_xruns = _server_xruns(server) - server0
            search_cpu = search.cpu_seconds() - cpu0 if search is not None else 0.0
    finally:
        gc.unfreeze()
    gaps = np.diff(stamps[n0 : min(n1, capacity)])
    return {"xruns": flagged1 - flagged0, "late_callbacks": int(np.sum(gaps > 1.5 * block / RATE)),
            "callbacks": n1 - n0, "max_gap_ms": round(float(gaps.max()) * 1e3, 3) if gaps.size else None,
            "block_frames": block, "budget_ms": round(1e3 * block / RATE, 3), "callback_priority": state["priority"],
            "server_missed_cycles": server_xruns,
            "searches_finished": search.searches.value - searches0 if search is not None else 0,
            "search_cpu_share": round(search_cpu / elapsed, 3), "seconds": round(elapsed, 2)}


KINDS = ("default", "in_process", "floor")


def run(quick: bool = False, seconds: float | None = None, model: str | None = None,
        blocks: tuple[int, ...] = BLOCKS, kinds: tuple[str, ...] = KINDS) -> dict[str, Any]:
    """Every block size, both configurations; `seconds` each (default 60, 10 with quick); `model` an ONNX file
    (default: the shipped one, else an untrained stand-in); `blocks` and `kinds` narrow it (development)."""
    from fxmatch.errors import FxmatchInputError
    from fxmatch.inference import EstimatorSession
    from realtime.jack import JackDummyServer

    seconds = float(seconds if seconds is not None else (10.0 if quick else 60.0))
    if not (math.isfinite(seconds) and seconds > 0):
        raise FxmatchInputError(f"bench realtime: --seconds must be > 0, got {seconds}")
    load_before = round(os.getloadavg()[0], 2)
    runs: dict[str, dict[str, Any]] = {kind: {} for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="fxmatch-bench-rt-") as tmp:
        folder = Path(tmp)
        model_path, model_note = benchmark_model(folder, model)
        session = EstimatorSession(model_path, providers="auto", threads=1)
        dry, target = _signals(folder)
        jack_realtime = None
        with SearchLoad() as search:
            for block in blocks:
                with JackDummyServer(rate=RATE, period=block) as server:
                    jack_realtime = server.realtime
                    for kind, figures in runs.items():
                        log.info("%s, %d frames, %.0f s", kind, block, seconds)
                        figures[str(block)] = (floor_run(server, block, seconds, search) if kind == "floor" else
                                               _one(kind, model_path, dry, target, server, block, seconds, search))
            search_said = search.said.value.decode()
            searches = search.searches.value
    return {
        **runs,
        "model": model_note,
        "model_window_s": round(session.info.window_seconds, 3),
        "provider": session.provider,
        "chain": [name for name, _ in FULL_CHAIN],
        "analysis_hz": 4.0,
        "gui_reader": "every 16 ms: telemetry + levels + estimate + 4096-sample FFT + ~6 ms pure Python holding "
                      "the GIL; default: in this process (the app's), in_process: in the engine's process",
        "capture_search": {"what": "fxmatch.capture.capture of the 64 default chains on a 2 s 44.1 kHz render, "
                                   "1 torch thread, repeated", "scheduling": search_said, "searches": searches},
        "jack_server_realtime": jack_realtime,
        "device": "JACK dummy driver via PortAudio's JACK host API (no sound hardware)",
        "warmup_s": WARMUP_S,
        "cpu_cores": os.cpu_count(),
        "load_average": {"before": load_before, "after": round(os.getloadavg()[0], 2)},
    }
