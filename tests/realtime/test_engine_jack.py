"""The engine on a real stream: PortAudio's JACK host API against a JACK dummy server (no sound hardware)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pedalboard as pb
import pytest

from fxmatch.audio_io import rms_dbfs
from fxmatch.errors import FxmatchInputError
from realtime.engine import EngineConfig, LiveEngine
from tests.realtime.engine_hooks import HookedEngine
from tests.realtime.jack_engines import CHAIN, RATE, jack_engine, wait_audio, wait_for

pytestmark = pytest.mark.audio


def test_stream_runs_at_real_time_pace_applies_the_chain_and_publishes_estimates(jack_server, tiny_model,
                                                                                 signal_files):
    engine = jack_engine(jack_server, tiny_model, signal_files)
    engine.set_chain(CHAIN)
    engine.start()
    try:
        assert engine.running and engine.sample_rate == RATE
        t0, n0 = time.monotonic(), engine.telemetry().callbacks
        time.sleep(2.0)
        tel = engine.telemetry()
        rate = (tel.callbacks - n0) / (time.monotonic() - t0)
        # 187.5 callbacks/s: never faster than real time; on a loaded machine a non-realtime client misses some
        # cycles (counted as xruns), so the lower bound is loose
        assert 0.7 * RATE / 256 <= rate <= 1.05 * RATE / 256
        assert wait_for(lambda: engine.latest_estimate() is not None and engine.latest_estimate().seq >= 3)
        est = engine.latest_estimate()
        assert est.chain == ("Distortion",) and 5.0 <= est.params[0][1]["drive_db"] <= 40.0
        assert est.latency_ms > 0 and tel.estimates_per_s > 0
        assert engine.current_chain() == CHAIN  # frozen by set_chain: the estimate does not replace it
    finally:
        engine.stop()
    frames = engine._buffers.rings["dry"].written
    # everything since the start is in the rings: the matched signal is the offline chain of the dry signal
    dry = engine.recent_audio("dry", frames)
    primed = np.concatenate([np.zeros(256, np.float32), dry])
    offline = pb.Pedalboard([getattr(pb, n)(**p) for n, p in CHAIN])(primed[None], RATE)[0][256:]
    assert frames == engine._buffers.rings["matched"].written > RATE
    np.testing.assert_array_equal(engine.recent_audio("matched", frames), offline)
    assert tel.output_latency_s > 0 and tel.error is None


def test_following_the_estimate_plays_its_chain(jack_server, tiny_model, signal_files):
    engine = jack_engine(jack_server, tiny_model, signal_files)
    with engine:
        assert wait_for(lambda: engine.current_chain() and engine.current_chain()[0][0] == "Distortion")
        engine.set_chain(CHAIN)
        assert engine.frozen and engine.current_chain() == CHAIN
        engine.reset_to_estimate()
        assert not engine.frozen and engine.current_chain()[0][0] == "Distortion"


def test_ab_crossfade_on_the_stream_is_free_of_discontinuities(jack_server, tiny_model, signal_files):
    engine = jack_engine(jack_server, tiny_model, signal_files, target_file=signal_files["sine220"],
                     dry_file=signal_files["sine330"], loudness_match=False, crossfade_ms=30.0)
    engine.set_chain(())
    with engine:
        assert wait_audio(engine, 0.5)
        for pos in ("target", "dry", "matched", "target"):
            engine.set_ab(pos)
            assert wait_audio(engine, 0.3)
        assert engine.ab_position == "target"
        out = engine.recent_audio("output", int(1.6 * RATE))
    natural = 0.4 * 2 * np.pi * 330 / RATE  # the steepest slope of the two sines
    assert np.max(np.abs(np.diff(out))) <= 1.5 * natural  # a hard switch jumps by up to 0.8
    assert np.max(np.abs(out)) > 0.3


def test_injected_nan_trips_safety_and_the_stream_recovers(jack_server, tiny_model, signal_files):
    engine = jack_engine(jack_server, tiny_model, signal_files, engine_class=HookedEngine)
    engine.set_chain((("Reverb", {"room_size": 0.8, "damping": 0.5, "wet_level": 0.4, "dry_level": 0.8}),))
    with engine:
        assert wait_audio(engine, 0.3)
        engine.inject_fault("nan")
        assert wait_for(lambda: engine.telemetry().safety_trips >= 1, 2.0)
        assert wait_audio(engine, 0.5)
        assert engine.running
        out = engine.recent_audio("output", RATE // 2)
        assert np.all(np.isfinite(out)) and np.max(np.abs(out)) > 0.01
        assert np.all(np.isfinite(engine.recent_audio("matched", RATE)))
        assert engine.telemetry().safety_trips == 1


def test_levels_and_the_ab_signals_are_reported(jack_server, tiny_model, signal_files):
    engine = jack_engine(jack_server, tiny_model, signal_files)
    with engine:
        assert wait_for(lambda: engine.telemetry().callbacks * 256 >= 2.2 * RATE, 10.0)
        lv = engine.levels()
        assert -40 < lv.dry_db < 0 and -40 < lv.target_db <= 0 and -40 < lv.output_db < 0
        # the last 2 s of target and matched (what the app's A/B readout compares) are both sounding
        assert rms_dbfs(engine.recent_audio("target", 2 * RATE)) > -60
        assert rms_dbfs(engine.recent_audio("matched", 2 * RATE)) > -60


def test_stop_is_idempotent_and_quick(jack_server, tiny_model, signal_files):
    engine = jack_engine(jack_server, tiny_model, signal_files)
    engine.start()
    assert wait_audio(engine, 0.2)
    t = time.monotonic()
    engine.stop()
    engine.stop()
    assert time.monotonic() - t < 3.0
    assert not engine.running and engine.telemetry().error is None


def test_capture_mode_opens_a_duplex_stream(jack_server, tiny_model):
    engine = LiveEngine(EngineConfig(model_path=tiny_model, mode="capture", input_device=jack_server.device,
                                     output_device=jack_server.device, providers="cpu"))
    with engine:
        assert wait_for(lambda: engine.telemetry().callbacks > 50)
        tel = engine.telemetry()
        assert tel.callbacks > 50 and tel.input_latency_s >= 0 and tel.output_latency_s > 0
        assert engine.latest_estimate() is None  # the dummy driver's inputs are silent: no estimate


@pytest.mark.parametrize("kw, match", [
    ({"input_device": "no such device", "dry_file": None}, "input device"),
    ({"input_device": 99, "dry_file": None}, "input device"),
    ({"output_device": "no such device", "dry_file": None}, "output device"),
    ({"sample_rate": 44100}, "44100 Hz"),
    ({"dry_file": None, "dry_channel": 5}, r"channel 6 \(channels count from 1\)"),
])
def test_bad_device_settings_raise_input_error(jack_server, tiny_model, signal_files, kw, match):
    engine = jack_engine(jack_server, tiny_model, signal_files, **kw)
    with pytest.raises(FxmatchInputError, match=match):
        engine.start()
    assert not engine.running


_LOSS = """
import json, os, sys, time
from realtime.jack import JackDummyServer
from realtime.engine import EngineConfig, LiveEngine
server = JackDummyServer().start()
e = LiveEngine(EngineConfig(model_path=sys.argv[1], target_file=sys.argv[2], dry_file=sys.argv[2],
                            input_device=server.device, output_device=server.device, providers="cpu"))
e.start(); time.sleep(0.5)
server.process.kill(); server.process.wait()
t = time.monotonic()
while e.running and time.monotonic() - t < 10: time.sleep(0.05)
detected = time.monotonic() - t
t = time.monotonic(); e.stop(); stopped = time.monotonic() - t
print(json.dumps({"running": e.running, "error": e.telemetry().error, "detected_s": detected, "stop_s": stopped}))
sys.stdout.flush()
os._exit(0)  # PortAudio's JACK host API asserts in Pa_Terminate once its server is gone: skip it
"""


def test_server_loss_stops_the_engine_with_a_message_and_no_hang(tiny_model, signal_files):
    r = subprocess.run([sys.executable, "-c", _LOSS, str(tiny_model), str(signal_files["target"])],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["running"] is False and "no audio callbacks" in res["error"]
    assert res["detected_s"] < 4.0 and res["stop_s"] < 6.0


def test_a_killed_servers_registry_slot_is_freed_for_the_next_server(tmp_path):
    """jackd killed with SIGKILL keeps its slot in JACK's 8-server registry; the next JackDummyServer frees it."""
    import os
    import signal
    import uuid

    from realtime.jack import REGISTRY, JackDummyServer, reap_stale_servers

    name = f"fxmatch-reap-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([JackDummyServer.jackd_path(), "--no-realtime", "-n", name, "-d", "dummy"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        t = time.monotonic()
        while (not REGISTRY.exists() or name.encode() not in REGISTRY.read_bytes()) and time.monotonic() - t < 10:
            time.sleep(0.05)
        assert name.encode() in REGISTRY.read_bytes()
        assert name not in reap_stale_servers()  # alive: left alone
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert name.encode() in REGISTRY.read_bytes()  # leaked by the kill
    assert name in reap_stale_servers()
    assert name.encode() not in REGISTRY.read_bytes() and not list(REGISTRY.parent.glob(f"jack_*{name}_*"))
