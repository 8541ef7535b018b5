"""`fxmatch bench gui`: the desktop app over the live engine on a JACK dummy server (offscreen Qt); prints JSON.

Issue 6's "Measure", for both ways of running the engine, side by side in one run:
`in_process` (realtime.engine.LiveEngine in the app's process: the callback shares the GIL with Qt) and `remote`
(realtime.remote.RemoteEngine: the engine in its own process, audio and counters read from shared memory, the
app's default). For each: (1) the engine alone for `seconds` (default 60; 10 with --quick): xruns and callback
durations; (2) the same engine configuration with the app's main window polling it at full rate (60 frames/s
requested, spectra, spectrogram, meters, knobs, status): GUI update time per frame (mean, p99: the poll-and-setData
work in the frame timer), achieved frame rate and frame interval p99 (which include painting), the engine's xruns
and callback durations meanwhile, and how long the Start button's start_engine() took (for `remote` it spawns the
engine process). Then (3) time from launching `fxmatch app` (a fresh Python process) to the main window's first
paint, median of 3 launches (1 with --quick).

The four streaming runs go in the order in-process alone, remote alone, in-process with GUI, remote with GUI (so
that a change of machine load during the run does not favour one side), on one JACK dummy server: reference mode,
48 kHz, 256-frame blocks, the bundled bass example (target looped from the file, dry looped from its dry file),
following the estimate (the chain changes as estimates come). After a 2 s warm-up, xruns are counted and the
callback statistics are taken over the callbacks of the timed window only. `load_average` (1 min, before and
after) says how busy the machine was. Qt runs on the offscreen platform, so painting is software rasterisation.
Model: models/fxmatch-default.onnx when it exists, else an untrained encoder of the default vocabulary and size.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.models import benchmark_model

log = logging.getLogger("fxmatch.bench.gui")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "bass_compressor_chorus_reverb"
RATE = 48000
BLOCK = 256
WARMUP_S = 2.0


def _engine_config(model: Path, device: int) -> dict[str, Any]:
    return {"model_path": str(model), "mode": "reference", "input_device": device, "output_device": device,
            "sample_rate": RATE, "block_frames": BLOCK, "target_file": str(EXAMPLE) + "_target.flac",
            "dry_file": str(EXAMPLE) + "_dry.flac"}


def _pump(seconds: float) -> None:
    from PyQt6 import QtCore

    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def _engine_class(kind: str) -> type:
    from realtime.engine import LiveEngine
    from realtime.remote import RemoteEngine

    return {"in_process": LiveEngine, "remote": RemoteEngine}[kind]


def _engine_figures(engine, t0, t1) -> dict[str, Any]:
    """xruns and callback durations (ms) between two telemetry snapshots (the engine's EngineBuffers hold every
    callback's duration; both engine kinds have them, in process or in shared memory)."""
    n0, n1 = t0.callbacks, t1.callbacks
    d = engine._buffers.durations  # circular, index = callback number % size
    idx = np.arange(max(n0, n1 - d.size), n1) % d.size
    ms = d[idx] * 1000.0
    return {"xruns": t1.xruns - t0.xruns, "callbacks": n1 - n0,
            "callback_mean_ms": round(float(ms.mean()), 4) if ms.size else None,
            "callback_p99_ms": round(float(np.percentile(ms, 99)), 4) if ms.size else None,
            "callback_max_ms": round(float(ms.max()), 3) if ms.size else None,
            "cpu_load": round(t1.cpu_load, 3), "estimates_per_s": round(t1.estimates_per_s, 2),
            "budget_ms": round(1000.0 * BLOCK / RATE, 3)}


def _without_gui(kind: str, model: Path, device: int, seconds: float) -> dict[str, Any]:
    from realtime.engine import EngineConfig

    t = time.perf_counter()
    engine = _engine_class(kind)(EngineConfig(**_engine_config(model, device)))
    engine.start()
    start_s = time.perf_counter() - t
    try:
        time.sleep(WARMUP_S)
        t0 = engine.telemetry()
        time.sleep(seconds)
        t1 = engine.telemetry()
    finally:
        getattr(engine, "close", engine.stop)()  # LiveEngine.close also ends its analysis process
    out = _engine_figures(engine, t0, t1)
    out["engine_start_s"] = round(start_s, 3)
    return out


def _with_gui(kind: str, model: Path, device: int, seconds: float, folder: Path) -> dict[str, Any]:
    from gui.cli import make_app
    from gui.main_window import MainWindow
    from gui.settings import AppSettings

    app = make_app()  # keep a reference: a collected QApplication takes Qt down
    cfg = _engine_config(model, device)
    window = MainWindow(AppSettings(folder / f"settings-{kind}.ini"), model_path=str(model),
                        engine_options={"dry_file": cfg["dry_file"]}, fps=60.0, in_process=kind == "in_process")
    p = window.setup
    p.set_mode("reference")
    p.select_device_index(p.input_device, device)
    p.select_device_index(p.output_device, device)
    p.sample_rate.setCurrentIndex(p.sample_rate.findData(RATE))
    p.block.setCurrentIndex(p.block.findData(BLOCK))
    p.target_file.setText(cfg["target_file"])
    window.resize(1440, 900)
    window.show()
    ticks: list[float] = []
    window.frame_timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    try:
        t = time.perf_counter()
        if not window.start_engine():
            raise RuntimeError(f"the app could not start the engine: {p.error.text()}")
        start_s = time.perf_counter() - t
        engine = window.engine
        _pump(WARMUP_S)
        t0 = engine.telemetry()
        window.frame_ms.clear()
        ticks.clear()
        start = time.perf_counter()
        _pump(seconds)
        elapsed = time.perf_counter() - start
        t1 = engine.telemetry()
        frames = window.frame_stats()
        intervals = np.diff(np.asarray(ticks)) * 1000.0
        out = _engine_figures(engine, t0, t1)
        out.update({
            "engine_start_s": round(start_s, 3),
            "gui_requested_fps": 60.0,
            "gui_fps": round(len(ticks) / elapsed, 1),
            "gui_update_mean_ms": round(frames["mean_ms"], 3),
            "gui_update_p99_ms": round(frames["p99_ms"], 3),
            "gui_frame_interval_p99_ms": round(float(np.percentile(intervals, 99)), 2) if intervals.size else None,
            "gui_frames": frames["frames"],
            "estimate": window.header.chain_label.text(),
        })
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()
    return out


def _launch_times(model: Path, repeats: int, folder: Path) -> list[float]:
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    times = []
    for i in range(repeats):
        t0 = time.time()
        r = subprocess.run([sys.executable, "-m", "fxmatch.cli", "app", "--report-first-frame", "--settings",
                            str(folder / f"launch{i}.ini"), "--model", str(model)],
                           capture_output=True, text=True, env=env, timeout=120, check=False)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        if r.returncode != 0 or not lines:
            raise RuntimeError(f"fxmatch app failed to launch: {r.stderr.strip()[-300:]}")
        times.append(json.loads(lines[-1])["first_frame_unix_s"] - t0)
    return times


def run(quick: bool = False, model: str | None = None, seconds: float | None = None) -> dict[str, Any]:
    """Run the benchmark (see the module docstring) and return its JSON-ready figures."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from realtime.jack import JackDummyServer

    seconds = float(seconds or (10.0 if quick else 60.0))
    load_before = round(os.getloadavg()[0], 2)
    kinds = ("in_process", "remote")
    results: dict[str, dict[str, Any]] = {k: {} for k in kinds}
    with tempfile.TemporaryDirectory(prefix="fxmatch-bench-gui-") as tmp:
        folder = Path(tmp)
        model_path, model_note = benchmark_model(folder, model)
        with JackDummyServer(rate=RATE, period=BLOCK) as server:
            for kind in kinds:
                log.info("%s engine alone, %.0f s", kind, seconds)
                results[kind]["engine_without_gui"] = _without_gui(kind, model_path, server.device, seconds)
            for kind in kinds:
                log.info("%s engine with the GUI, %.0f s", kind, seconds)
                results[kind]["engine_with_gui"] = _with_gui(kind, model_path, server.device, seconds, folder)
        launches = _launch_times(model_path, 1 if quick else 3, folder)
    return {
        "seconds": seconds,
        "sample_rate": RATE,
        "block_frames": BLOCK,
        "model": model_note,
        "qt_platform": os.environ.get("QT_QPA_PLATFORM"),
        "load_average": {"before": load_before, "after": round(os.getloadavg()[0], 2)},
        "in_process": results["in_process"],
        "remote": results["remote"],
        "launch_to_first_frame_s": round(statistics.median(launches), 3),
        "launch_runs_s": [round(t, 3) for t in launches],
        "cpu_cores": os.cpu_count(),
    }
