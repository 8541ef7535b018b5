"""`fxmatch bench encoder [--model M.onnx] [--checkpoint C.pt] [--quick]`: encoder latency, parity, estimate cost.

Measures (issue 4, "Measure"), median over repeats after warm-up:
- latency of one 2 s window, batch 1, at the model's sample rate: onnxruntime CPU with all threads and with 1
  thread, onnxruntime CUDA when it really works (else null), and PyTorch eager on the same input (CPU with its
  default threads and with 1 thread; CUDA when available). On a busy machine "all threads" can be much slower than
  1 thread (threads wait for cores): `device.load_average_1min` records the load;
- parity: max |onnxruntime - PyTorch| over both outputs on export.onnx_export's parity inputs (random noise and
  real-ish audio at several lengths);
- `fxmatch estimate` on a generated 3-minute stereo 44.1 kHz file, run as a subprocess: wall time (Python start-up
  and imports included) and peak memory (the child's maximum resident set size from `os.wait4`).

The ONNX model is `--model`, else the shipped default, else a fresh (untrained) encoder of the default config
exported for the occasion. The PyTorch reference is the `--checkpoint` when given; without one, a fresh encoder
with the ONNX model's architecture (from its metadata; random weights, so the same compute) exported to a
temporary ONNX file for the parity check. The JSON's `reference` says which.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import soundfile as sf
import torch

from fxmatch import shipped, testsignals
from fxmatch.errors import FxmatchInputError
from fxmatch.inference import CUDA, EstimatorSession

log = logging.getLogger("fxmatch.bench.encoder")

WINDOW_SECONDS = 2.0
ESTIMATE_SECONDS = 180.0
ESTIMATE_RATE = 44100


def _time_ms(fn: Callable[[], Any], repeats: int, warmup: int) -> dict[str, float]:
    """Median and 90th percentile wall time of `fn()` in ms after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"median": float(statistics.median(times)), "p90": float(np.percentile(times, 90))}


def _fresh_encoder(config: dict[str, Any] | None, vocabulary: dict[str, Any] | None):
    """An untrained encoder of `config` sizes (default: EncoderConfig()) and `vocabulary` (default: DESIGN.md's)."""
    from fxmatch.vocabulary import ChainVocabulary
    from training.model import Encoder, EncoderConfig

    torch.manual_seed(0)
    vocab = ChainVocabulary.from_dict(vocabulary) if vocabulary else ChainVocabulary.default()
    return Encoder(vocab, EncoderConfig(**config) if config else EncoderConfig()).eval()


def _export(encoder, path: Path, name: str) -> Path:
    """Export `encoder` with a 2 s analysis window to `path` (export's checks included)."""
    from export.onnx_export import build_metadata, export_encoder

    meta = build_metadata(encoder, {"data": {"description": "benchmark: untrained encoder"}}, name=name,
                          version="bench", window_seconds=WINDOW_SECONDS)
    export_encoder(encoder, path, meta, rtol=float("inf"))
    return path


def prepare_models(model: str | None, checkpoint: str | None, folder: Path) -> tuple[Path, Any, Path, str]:
    """(ONNX to time, PyTorch reference encoder, ONNX file exported from that encoder, description)."""
    from export.onnx_export import load_checkpoint

    if checkpoint:
        encoder, _ = load_checkpoint(checkpoint)
        ref_onnx = _export(encoder, folder / "checkpoint.onnx", "checkpoint")
        onnx_path = Path(model) if model else ref_onnx
        what = (f"PyTorch from checkpoint {Path(checkpoint).name}, exported afresh for the parity check; "
                + (f"ONNX latency of {onnx_path.name}" if model else "ONNX latency of that export"))
        return onnx_path, encoder, ref_onnx, what
    if model or shipped.DEFAULT_MODEL.is_file():
        onnx_path = shipped.model_path(model)
        info = EstimatorSession(onnx_path, providers="cpu").info
        config = info.metadata.get("encoder_config")
        encoder = _fresh_encoder(config if isinstance(config, dict) else None, info.metadata.get("vocabulary"))
        ref_onnx = _export(encoder, folder / "reference.onnx", "reference")
        arch = "the model's architecture (from its metadata)" if isinstance(config, dict) else \
            "the default architecture (the model's metadata has no encoder_config)"
        what = (f"no checkpoint: PyTorch latency and parity on a fresh untrained encoder of {arch} and its own "
                f"ONNX export; ONNX latency of {onnx_path.name}")
        return onnx_path, encoder, ref_onnx, what
    encoder = _fresh_encoder(None, None)
    onnx_path = _export(encoder, folder / "fresh-default.onnx", "fresh-default")
    what = ("no model and no shipped model: everything on a fresh untrained encoder of the default config "
            "(configs/default.yaml sizes, 64 chains) and its ONNX export")
    return onnx_path, encoder, onnx_path, what


def parity(encoder, onnx_path: Path, sample_rate: int, window: int) -> dict[str, float]:
    """Max abs and relative difference ONNX (CPU) vs PyTorch over export's parity inputs."""
    from export.onnx_export import parity_check

    r = parity_check(encoder, onnx_path, sample_rate, window, rtol=float("inf"))
    return {"max_abs": float(r["max_abs"]), "relative": float(r["relative"]), "cases": len(r["cases"])}


def make_long_file(path: Path, seconds: float = ESTIMATE_SECONDS, rate: int = ESTIMATE_RATE) -> Path:
    """A stereo 16-bit WAV of `seconds`: 10 s test-signal clips (chord, pluck, noise) in turn, streamed to disk."""
    clips = [testsignals.make(kind, rate, 10.0, seed=i, channels=2)
             for i, kind in enumerate(("chord", "pluck", "noise", "chord", "pluck", "chord"))]
    total = round(seconds * rate)
    with sf.SoundFile(str(path), "w", rate, 2, subtype="PCM_16", format="WAV") as f:
        written, i = 0, 0
        while written < total:
            block = clips[i % len(clips)] * (0.5 + 0.5 * ((i * 7) % 5) / 4)
            block = block[:, : total - written]
            f.write(block.T)
            written += block.shape[1]
            i += 1
    return path


def estimate_subprocess(target: Path, model: Path) -> dict[str, Any]:
    """Run `fxmatch estimate TARGET --model M --json` in a child; wall time (s), peak RSS (MB), provider."""
    cmd = [sys.executable, "-m", "fxmatch.cli", "estimate", str(target), "--model", str(model), "--json"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"fxmatch estimate failed ({proc.returncode}): {stderr.strip()[-300:]}")
    preset = json.loads(stdout)
    return {"seconds": wall, "peak_mb": usage.ru_maxrss / 1024.0,  # Linux: ru_maxrss in KiB
            "windows": preset.get("estimate", {}).get("windows")}


def device_notes() -> dict[str, Any]:
    """CPU model and count, library versions, GPU name when one is visible."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    notes: dict[str, Any] = {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                             "onnxruntime": ort.__version__, "torch": torch.__version__,
                             "onnxruntime_providers": ort.get_available_providers(), "python": platform.python_version(),
                             "load_average_1min": round(os.getloadavg()[0], 2)}
    if torch.cuda.is_available():
        notes["gpu"] = torch.cuda.get_device_name(0)
    return notes


def run(quick: bool = False, model: str | None = None, checkpoint: str | None = None) -> dict:
    """The benchmark; returns the JSON-ready result (see the module docstring)."""
    repeats, warmup = (10, 3) if quick else (100, 10)
    with tempfile.TemporaryDirectory(prefix="fxmatch-bench-encoder-") as tmp:
        folder = Path(tmp)
        log.info("preparing the models")
        onnx_path, encoder, ref_onnx, reference = prepare_models(model, checkpoint, folder)
        cpu_all = EstimatorSession(onnx_path, providers="cpu")
        info = cpu_all.info
        rate = info.sample_rate
        window = round(WINDOW_SECONDS * rate)
        x = testsignals.make("chord", rate, WINDOW_SECONDS, seed=3)[0][None, :window]
        x = np.ascontiguousarray(x, dtype=np.float32)
        if ref_onnx != onnx_path:
            ref_info = EstimatorSession(ref_onnx, providers="cpu").info
            if (ref_info.sample_rate, ref_info.n_chains, ref_info.n_params) != (rate, info.n_chains, info.n_params):
                raise FxmatchInputError(f"{onnx_path}: the checkpoint's encoder does not match the model "
                                        "(sample rate, chains or params differ)")

        log.info("latency: onnxruntime CPU, all threads and 1 thread, %d runs each", repeats)
        onnx_cpu = _time_ms(lambda: cpu_all.run(x), repeats, warmup)
        cpu_one = EstimatorSession(onnx_path, providers="cpu", threads=1)
        onnx_1 = _time_ms(lambda: cpu_one.run(x), repeats, warmup)

        xt = torch.from_numpy(x)
        log.info("latency: PyTorch CPU, default threads and 1 thread")

        def torch_forward() -> None:
            with torch.inference_mode():
                encoder(xt)

        torch_cpu = _time_ms(torch_forward, repeats, warmup)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            torch_1 = _time_ms(torch_forward, repeats, warmup)
        finally:
            torch.set_num_threads(threads)

        log.info("latency: CUDA, when there is one")
        onnx_cuda, cuda_note = None, ""
        if CUDA in ort.get_available_providers():
            gpu = EstimatorSession(onnx_path, providers="cuda")
            if gpu.provider == CUDA:
                onnx_cuda = _time_ms(lambda: gpu.run(x), repeats * 3, warmup * 3)
                cuda_note = "CUDA execution provider; input copied from host memory and outputs back each run"
            else:
                cuda_note = f"CUDA not used: {gpu.why_not_cuda or 'unavailable'}"
        else:
            cuda_note = "this onnxruntime build has no CUDA provider"
        torch_cuda = None
        if torch.cuda.is_available():
            enc_gpu, xg = encoder.to("cuda"), xt.to("cuda")

            def torch_gpu_forward() -> None:
                with torch.inference_mode():
                    enc_gpu(xg)
                torch.cuda.synchronize()

            torch_cuda = _time_ms(torch_gpu_forward, repeats * 3, warmup * 3)
            encoder.to("cpu")

        log.info("parity: onnxruntime against PyTorch")
        par = parity(encoder, ref_onnx, rate, int(EstimatorSession(ref_onnx, providers="cpu").info.window_samples))

        log.info("fxmatch estimate on a %.0f-minute stereo file (a subprocess)", ESTIMATE_SECONDS / 60)
        long_file = make_long_file(folder / "three-minutes.wav")
        est = estimate_subprocess(long_file, onnx_path)
        auto = EstimatorSession(onnx_path, providers="auto")

    return {
        "benchmark": "encoder",
        "quick": quick,
        "onnx_cpu_ms": onnx_cpu["median"],
        "onnx_cpu_1thread_ms": onnx_1["median"],
        "torch_cpu_ms": torch_cpu["median"],
        "torch_cpu_1thread_ms": torch_1["median"],
        "onnx_cuda_ms": onnx_cuda["median"] if onnx_cuda else None,
        "torch_cuda_ms": torch_cuda["median"] if torch_cuda else None,
        "parity_max_abs": par["max_abs"],
        "parity_relative": par["relative"],
        "estimate_3min_s": est["seconds"],
        "estimate_peak_mb": est["peak_mb"],
        "provider": auto.provider,
        "p90_ms": {"onnx_cpu": onnx_cpu["p90"], "onnx_cpu_1thread": onnx_1["p90"], "torch_cpu": torch_cpu["p90"],
                   "torch_cpu_1thread": torch_1["p90"],
                   "onnx_cuda": onnx_cuda["p90"] if onnx_cuda else None,
                   "torch_cuda": torch_cuda["p90"] if torch_cuda else None},
        "model": {"file": onnx_path.name if onnx_path.parent != folder else f"(temporary) {onnx_path.name}",
                  "name": info.label, "sample_rate": rate, "n_chains": info.n_chains, "n_params": info.n_params,
                  "analysis_window_samples": info.window_samples},
        "reference": reference,
        "input": {"batch": 1, "seconds": WINDOW_SECONDS, "samples": window, "signal": "testsignals chord, mono"},
        "repeats": repeats,
        "warmup": warmup,
        "estimate": {"file": f"{ESTIMATE_SECONDS:.0f} s stereo {ESTIMATE_RATE} Hz 16-bit WAV",
                     "windows": est["windows"], "provider": auto.provider,
                     "note": "wall time of the `fxmatch estimate` subprocess (start-up and imports included); "
                             "peak = its maximum resident set size"},
        "cuda_note": cuda_note,
        "device": device_notes(),
    }
