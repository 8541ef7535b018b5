"""RemoteEngine: LiveEngine's behaviour with the engine in its own process (real PortAudio on a JACK dummy server)."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import numpy as np
import pedalboard as pb
import pytest

from fxmatch.errors import FxmatchInputError
from realtime import remote
from realtime.engine import EngineConfig, LiveEngine, LiveEstimate, Telemetry
from realtime.remote import RemoteEngine
from realtime.ringbuffer import RingBuffer
from tests.realtime.engine_hooks import HookedEngine, HookedRemoteEngine
from tests.realtime.jack_engines import wait_audio, wait_for

RATE = 48000
CHAIN = (("Compressor", {"threshold_db": -25.0, "ratio": 4.0, "attack_ms": 5.0, "release_ms": 100.0}),
         ("Delay", {"delay_seconds": 0.1, "feedback": 0.3, "mix": 0.3}))
ENGINES = {"live": LiveEngine, "remote": RemoteEngine}
HOOKED = {"live": HookedEngine, "remote": HookedRemoteEngine}  # with process_block and inject_fault


def _config(jack_server, tiny_model, signal_files, **kw) -> EngineConfig:
    cfg = {"model_path": tiny_model, "mode": "reference", "input_device": jack_server.device,
           "output_device": jack_server.device, "target_file": signal_files["target"],
           "dry_file": signal_files["dry"], "providers": "cpu", "hop_seconds": 0.1}
    cfg.update(kw)
    return EngineConfig(**cfg)


# -- the shared ring ----------------------------------------------------------------------------------------------

_MOD = 1 << 20  # sample values count modulo this (exact in float32)


def _write_counting(name: str, capacity: int, seconds: float) -> None:
    """Child: write blocks of 256 consecutive counts (mod 2^20) into a ring on shared memory as fast as it can."""
    from multiprocessing import shared_memory

    shm = shared_memory.SharedMemory(name=name)
    counter = np.frombuffer(shm.buf, dtype=np.int64, count=2)
    data = np.frombuffer(shm.buf, dtype=np.float32, count=capacity, offset=16)
    ring = RingBuffer(capacity, data=data, counter=counter, prefault=False)  # the reader zeroed it
    block = np.empty(256, dtype=np.float32)
    base = np.arange(256, dtype=np.int64)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        w = ring.written
        block[:] = (base + w + 1) % _MOD
        ring.write(block)
    del ring, counter, data
    shm.close()


@pytest.mark.audio
def test_shared_ring_read_from_another_process_is_never_torn():
    from multiprocessing import shared_memory

    capacity = 1024
    shm = shared_memory.SharedMemory(create=True, size=16 + 4 * capacity)
    try:
        counter = np.frombuffer(shm.buf, dtype=np.int64, count=2)
        data = np.frombuffer(shm.buf, dtype=np.float32, count=capacity, offset=16)
        reader = RingBuffer(capacity, data=data, counter=counter)  # zeroes the block before the writer starts
        proc = mp.get_context("spawn").Process(target=_write_counting, args=(shm.name, capacity, 1.5))
        proc.start()
        reads = 0
        t = time.monotonic()
        while proc.is_alive() and time.monotonic() - t < 30:
            x = reader.read_last(1000)  # close to the capacity: the writer laps the reader often
            nz = np.flatnonzero(x)
            if nz.size == 0:
                continue
            head = int(nz[0])
            assert np.all(x[:head] == 0.0)
            # every sample that came back is in writing order: consecutive counts, never old and new mixed
            steps = np.diff(x[head:].astype(np.int64)) % _MOD
            assert np.all(steps == 1), f"torn read: steps {np.unique(steps)}"
            reads += 1
        proc.join(10)
        assert proc.exitcode == 0 and reads > 100
        assert reader.written > 100 * capacity  # the writer really lapped the ring many times meanwhile
    finally:
        shm.unlink()
        del reader, counter, data
        try:
            shm.close()
        except BufferError:  # a view is still alive (a failed assertion's traceback): unmapped with it
            shm._buf = shm._mmap = None


# -- the same behaviour through both engines --------------------------------------------------------------------


@pytest.mark.audio
def test_remote_engine_streams_plays_the_chain_sample_exact_and_publishes_estimates(jack_server, tiny_model,
                                                                                     signal_files):
    engine = RemoteEngine(_config(jack_server, tiny_model, signal_files))
    engine.set_chain(CHAIN)
    engine.start()
    try:
        assert engine.running and engine.sample_rate == RATE and engine.pid not in (None, os.getpid())
        assert wait_for(lambda: engine.latest_estimate() is not None and engine.latest_estimate().seq >= 3)
        est = engine.latest_estimate()
        assert isinstance(est, LiveEstimate) and est.chain == ("Distortion",)
        assert 5.0 <= est.params[0][1]["drive_db"] <= 40.0
        assert engine.frozen and engine.current_chain() == CHAIN  # frozen by set_chain before start
        assert wait_audio(engine, 1.0)
        tel = engine.telemetry()
        assert isinstance(tel, Telemetry) and tel.running and tel.error is None
        assert tel.callbacks > 100 and tel.estimates_per_s > 0 and tel.model_name == "tiny-v0"
        assert 0 < tel.callback_mean_ms <= tel.callback_p99_ms <= tel.callback_max_ms
    finally:
        engine.stop()
    assert not engine.running and engine.pid is None and engine.telemetry().error is None
    # the rings stay readable after stop; the matched signal is the offline chain of the dry signal, read across
    # the process boundary
    frames = engine._buffers.rings["dry"].written
    assert frames == engine._buffers.rings["matched"].written > RATE
    dry = engine.recent_audio("dry", frames)
    primed = np.concatenate([np.zeros(256, np.float32), dry])
    offline = pb.Pedalboard([getattr(pb, n)(**p) for n, p in CHAIN])(primed[None], RATE)[0][256:]
    np.testing.assert_array_equal(engine.recent_audio("matched", frames), offline)
    # the shared block's name was unlinked as soon as the engine process had attached it: nothing lingers
    assert not Path("/dev/shm", engine._buffers.owner.name.lstrip("/")).exists()


@pytest.mark.audio
@pytest.mark.parametrize("kind", ENGINES)
def test_following_the_estimate_freezing_and_resetting(kind, jack_server, tiny_model, signal_files):
    engine = ENGINES[kind](_config(jack_server, tiny_model, signal_files))
    with engine:
        assert wait_for(lambda: engine.current_chain() and engine.current_chain()[0][0] == "Distortion")
        assert not engine.frozen
        engine.set_chain(CHAIN)
        assert engine.frozen and engine.current_chain() == CHAIN
        engine.set_frozen(False)
        assert not engine.frozen
        engine.reset_to_estimate()
        assert not engine.frozen and engine.current_chain()[0][0] == "Distortion"
        with pytest.raises(FxmatchInputError, match="Flanger"):
            engine.set_chain((("Flanger", {}),))
        with pytest.raises(FxmatchInputError, match="A/B position"):
            engine.set_ab("louder")


@pytest.mark.audio
@pytest.mark.parametrize("kind", ENGINES)
def test_ab_recent_audio_and_levels(kind, jack_server, tiny_model, signal_files):
    engine = ENGINES[kind](_config(jack_server, tiny_model, signal_files, target_file=signal_files["sine220"],
                                   dry_file=signal_files["sine330"], loudness_match=False))
    engine.set_chain(())

    def peak_hz(which: str) -> float:
        """Where the spectrum of the last 0.1 s of `which` peaks."""
        x = engine.recent_audio(which, RATE // 10)
        return float(np.argmax(np.abs(np.fft.rfft(x * np.hanning(x.size)))) * RATE / x.size)

    with engine:
        assert wait_audio(engine, 0.5)
        engine.set_ab("target")
        assert engine.ab_position == "target"
        # the output is the 220 Hz target once the crossfade is done: its spectrum peaks at 220 Hz
        assert wait_for(lambda: abs(peak_hz("output") - 220) < 15, 3.0)
        engine.set_ab("dry")
        assert wait_for(lambda: abs(peak_hz("output") - 330) < 15, 3.0)
        lv = engine.levels()
        assert -20 < lv.dry_db < 0 and -20 < lv.target_db < 0 and -20 < lv.output_db < 0
        assert not (lv.dry_clip or lv.target_clip)
        # the two rings the A/B readout compares hold the two sines (matched: the dry 330 Hz through no effect)
        assert abs(peak_hz("target") - 220) < 15 and abs(peak_hz("matched") - 330) < 15
        assert engine.recent_audio("target", 20 * RATE).shape == (20 * RATE,)  # longer than the 15 s ring
        with pytest.raises(FxmatchInputError, match="unknown signal"):
            engine.recent_audio("bass", 10)


@pytest.mark.audio
def test_safety_trip_is_counted_across_the_process_boundary(jack_server, tiny_model, signal_files):
    engine = HookedRemoteEngine(_config(jack_server, tiny_model, signal_files))
    engine.set_chain((("Reverb", {"room_size": 0.8, "damping": 0.5, "wet_level": 0.4, "dry_level": 0.8}),))
    with engine:
        assert wait_audio(engine, 0.3)
        engine.inject_fault("nan")
        assert wait_for(lambda: engine.telemetry().safety_trips >= 1, 3.0)
        assert wait_audio(engine, 0.3)
        assert engine.running and np.all(np.isfinite(engine.recent_audio("output", RATE // 2)))


@pytest.mark.audio
def test_bad_devices_raise_the_same_input_errors_as_the_live_engine(jack_server, tiny_model, signal_files):
    for kw in ({"output_device": "no such device"}, {"sample_rate": 44100}):
        cfg = _config(jack_server, tiny_model, signal_files, **kw)
        with pytest.raises(FxmatchInputError) as live:
            LiveEngine(cfg).start()
        engine = RemoteEngine(cfg)
        try:
            with pytest.raises(FxmatchInputError) as far:
                engine.start()
            assert str(far.value) == str(live.value) and "\n" not in str(far.value)
            assert not engine.running
        finally:
            engine.stop()
    # bad config: raised before any process is started, same message
    bad = _config(jack_server, tiny_model, signal_files, mode="karaoke")
    with pytest.raises(FxmatchInputError) as live:
        LiveEngine(bad)
    with pytest.raises(FxmatchInputError) as far:
        RemoteEngine(bad)
    assert str(far.value) == str(live.value)


def test_a_bad_model_raises_an_input_error_from_the_engine_process(tmp_path, signal_files):
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"not an onnx model")
    cfg = EngineConfig(model_path=model, target_file=signal_files["target"], providers="cpu")
    with pytest.raises(FxmatchInputError) as live:
        LiveEngine(cfg)
    with pytest.raises(FxmatchInputError) as far:
        RemoteEngine(cfg)
    assert str(far.value) == str(live.value)


@pytest.mark.audio
def test_a_killed_engine_process_becomes_an_error_without_a_hang(jack_server, tiny_model, signal_files):
    engine = RemoteEngine(_config(jack_server, tiny_model, signal_files))
    engine.start()
    try:
        assert wait_for(lambda: engine.latest_estimate() is not None)
        os.kill(engine.pid, signal.SIGKILL)
        assert wait_for(lambda: not engine.running, 3.0)
        tel = engine.telemetry()
        assert not tel.running and "ended unexpectedly" in tel.error and "-9" in tel.error
        t = time.monotonic()
        engine.set_ab("target")  # a control call on a dead engine changes state only, like a stopped LiveEngine
        engine.set_chain(CHAIN)
        assert engine.ab_position == "target" and engine.current_chain() == CHAIN
        assert engine.recent_audio("output", 1024).shape == (1024,)  # the last audio is still readable
        engine.stop()
        assert time.monotonic() - t < 2.0
        # and it starts again (a new process) with the state set meanwhile
        engine.start()
        assert engine.running and engine.telemetry().error is None
        assert engine.ab_position == "target" and engine.frozen and engine.current_chain() == CHAIN
    finally:
        engine.stop()


@pytest.mark.audio
def test_a_hung_engine_process_is_detected_and_killed(jack_server, tiny_model, signal_files, monkeypatch):
    monkeypatch.setattr(remote, "STALE_S", 1.0)
    monkeypatch.setattr(remote, "CALL_TIMEOUT_S", 1.0)
    engine = RemoteEngine(_config(jack_server, tiny_model, signal_files))
    engine.start()
    pid = engine.pid
    try:
        os.kill(pid, signal.SIGSTOP)
        t = time.monotonic()
        assert wait_for(lambda: not engine.running, 4.0)
        assert "stopped answering" in engine.telemetry().error
        engine.set_ab("dry")  # no answer expected, no hang
        engine.stop()
        assert time.monotonic() - t < 6.0
        assert wait_for(lambda: not Path(f"/proc/{pid}").exists(), 3.0)  # killed and reaped
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        engine.stop()


@pytest.mark.parametrize("kind", HOOKED)
def test_offline_blocks_and_clip_flags_latch_until_read(kind, tiny_model):
    engine = HOOKED[kind](EngineConfig(model_path=tiny_model, mode="capture", providers="cpu",
                                        loudness_match=False))
    try:
        engine.set_chain(CHAIN)
        engine.prepare_offline(RATE)
        x = (0.3 * np.sin(2 * np.pi * 220 * np.arange(2048) / RATE)).astype(np.float32)
        block = np.stack([x, x], axis=1)
        out = np.concatenate([engine.process_block(block[i : i + 256]) for i in range(0, 2048, 256)])
        primed = np.concatenate([np.zeros(256, np.float32), x])
        offline = pb.Pedalboard([getattr(pb, n)(**p) for n, p in CHAIN])(primed[None], RATE)[0][256:]
        np.testing.assert_array_equal(out[:, 0], offline)
        np.testing.assert_array_equal(engine.recent_audio("matched", 2048), offline)
        assert engine.telemetry().callbacks == 8
        assert not engine.levels().target_clip
        loud = block[:256].copy()
        loud[10, 1] = 1.0  # one full-scale target sample
        engine.process_block(loud)
        engine.process_block(block[:256])
        lv = engine.levels()
        assert lv.target_clip and not lv.dry_clip  # latched until read...
        assert not engine.levels().target_clip  # ...and cleared by the read
    finally:
        if kind == "remote":
            engine.stop()


_LOSS = """
import json, os, sys, time
from realtime.jack import JackDummyServer
from realtime.engine import EngineConfig
from realtime.remote import RemoteEngine
if __name__ == "__main__":
    server = JackDummyServer().start()
    e = RemoteEngine(EngineConfig(model_path=sys.argv[1], target_file=sys.argv[2], dry_file=sys.argv[2],
                                  input_device=server.device, output_device=server.device, providers="cpu"))
    e.start(); time.sleep(0.5)
    pid = e.pid
    server.process.kill(); server.process.wait()
    t = time.monotonic()
    while e.running and time.monotonic() - t < 10: time.sleep(0.05)
    detected = time.monotonic() - t
    t = time.monotonic(); e.stop(); stopped = time.monotonic() - t
    print(json.dumps({"running": e.running, "error": e.telemetry().error, "detected_s": detected,
                      "stop_s": stopped, "child_gone": not os.path.exists(f"/proc/{pid}")}))
    sys.stdout.flush()
    os._exit(0)  # this process's PortAudio listed the dead server's devices: skip its Pa_Terminate
"""


@pytest.mark.audio
def test_server_loss_is_reported_by_the_engine_process_and_stop_does_not_hang(tiny_model, signal_files, tmp_path):
    import json
    import subprocess
    import sys

    script = tmp_path / "loss.py"  # a file, not -c: the engine process re-imports the main module by path
    script.write_text(_LOSS)
    r = subprocess.run([sys.executable, str(script), str(tiny_model), str(signal_files["target"])],
                       capture_output=True, text=True, timeout=60, check=False,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["running"] is False and "no audio callbacks" in res["error"]
    assert res["detected_s"] < 4.0 and res["stop_s"] < 3.0 and res["child_gone"]
