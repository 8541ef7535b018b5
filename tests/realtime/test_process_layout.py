"""The live path's process layout: analysis in its own process, estimate slot, scheduling, audio under a search."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from realtime.analysis import StableEstimate, decode_estimate, read_estimate, write_estimate
from realtime.buffers import SLOT_FLOATS
from tests.realtime.jack_engines import CHAIN, RATE, jack_engine, wait_for

# -- the estimate slot ---------------------------------------------------------------------------------------------


def _estimate(info, k: int, seed: int) -> StableEstimate:
    from realtime.analysis import EstimateStabiliser

    rng = np.random.default_rng(seed)
    probs = np.full(info.n_chains, 0.1 / (info.n_chains - 1))
    probs[k] = 0.9
    n_params = sum(len(e.params) for e in info.effects)
    params = rng.uniform(0, 1, (info.n_chains, n_params))
    return EstimateStabiliser(info).update(probs, params)


def test_estimate_slot_round_trip_and_sequence_lock(tiny_model):
    from fxmatch.inference import EstimatorSession

    info = EstimatorSession(tiny_model, providers="cpu").info
    k = max(range(info.n_chains), key=lambda i: len(info.chains[i]))
    est = _estimate(info, k, seed=1)
    seq, slot = np.zeros(1, np.int64), np.zeros(SLOT_FLOATS)
    assert read_estimate(seq, slot, 0) == (0, None)  # nothing written yet
    write_estimate(seq, slot, est, 0.016)
    s, data = read_estimate(seq, slot, 0)
    assert s == 2 and data is not None
    got, latency = decode_estimate(info, data)
    assert got.chain == est.chain == info.chains[k] and latency == 0.016
    assert got.params == est.params and got.probability == est.probability
    assert got.alternatives == est.alternatives
    assert read_estimate(seq, slot, s) == (s, None)  # nothing newer
    seq[0] += 1  # a writer killed in the middle of a write leaves the counter odd: the slot is not read
    assert read_estimate(seq, slot, s) == (s, None)
    write_estimate(seq, slot, _estimate(info, 0, seed=2), 0.02)  # the next writer carries on from there
    s2, data = read_estimate(seq, slot, s)
    assert s2 == 6 and decode_estimate(info, data)[0].chain == info.chains[0]


# -- scheduling ----------------------------------------------------------------------------------------------------


def test_realtime_priority_is_granted_or_reported_as_refused():
    from realtime.sched import may_realtime, realtime_thread

    said: list[str] = []
    t = threading.Thread(target=lambda: said.append(realtime_thread(0)))
    t.start()
    t.join()
    if may_realtime():
        assert said == ["SCHED_FIFO 70"]
    else:
        assert said[0].startswith("normal: ")


def test_background_lowers_priority_and_keeps_off_the_first_core():
    code = ("import os; from realtime.sched import background; print(background(10)); "
            "print(os.getpriority(os.PRIO_PROCESS, 0), sorted(os.sched_getaffinity(0)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    said, nice_cpus = r.stdout.strip().splitlines()
    nice, cpus = nice_cpus.split(" ", 1)
    assert int(nice) == max(10, os.getpriority(os.PRIO_PROCESS, 0)) and said.startswith(f"nice {nice}")
    allowed = sorted(os.sched_getaffinity(0))
    assert cpus == str(allowed[1:] if len(allowed) >= 2 else allowed)


# -- on a JACK dummy server ----------------------------------------------------------------------------------------


@pytest.mark.audio
def test_a_killed_analysis_process_is_restarted_without_stopping_the_audio(jack_server, tiny_model, signal_files):
    engine = jack_engine(jack_server, tiny_model, signal_files)
    engine.set_chain(CHAIN)
    switch = sys.getswitchinterval()
    try:
        engine.start()
        # the audio process is tuned for streaming; the estimates come from another process
        assert sys.getswitchinterval() == pytest.approx(0.00025) and not gc.isenabled()
        assert wait_for(lambda: engine.latest_estimate() is not None and engine.latest_estimate().seq >= 2)
        pid = engine.analysis_pid
        assert pid not in (None, os.getpid()) and engine.telemetry().analysis == f"process {pid}"
        assert engine.latest_estimate().chain == ("Distortion",)
        assert wait_for(lambda: engine.telemetry().callback_priority != "")
        t0, c0 = time.monotonic(), engine.telemetry().callbacks
        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: engine.telemetry().analysis_restarts == 1, 3.0)
        # the restart is counted before the new process is spawned: wait for its pid (a race under load, seen once)
        assert wait_for(lambda: engine.analysis_pid not in (None, pid), 10.0)
        new_pid = engine.analysis_pid
        seq = engine.latest_estimate().seq
        assert wait_for(lambda: engine.latest_estimate().seq >= seq + 3, 15.0)  # the new process estimates again
        tel = engine.telemetry()
        rate = (tel.callbacks - c0) / (time.monotonic() - t0)
        assert tel.running and tel.error is None and engine.running
        assert rate >= 0.8 * RATE / 256  # the stream went on at real-time pace all along
        assert engine.current_chain() == CHAIN
    finally:
        engine.close()
    assert sys.getswitchinterval() == switch and gc.isenabled()
    assert engine.analysis_pid is None and wait_for(lambda: not os.path.exists(f"/proc/{new_pid}"), 3.0)


@pytest.mark.audio
def test_the_audio_keeps_flowing_and_estimates_keep_coming_while_a_capture_search_runs(jack_server, tiny_model,
                                                                                        signal_files):
    from benchmarks.bench_realtime import SearchLoad

    engine = jack_engine(jack_server, tiny_model, signal_files, hop_seconds=0.25)
    engine.set_chain(CHAIN)
    with SearchLoad() as search, engine:
        assert wait_for(lambda: engine.latest_estimate() is not None)
        time.sleep(0.5)
        t0, tel0, seq0 = time.monotonic(), engine.telemetry(), engine.latest_estimate().seq
        time.sleep(3.0)
        tel1, seq1 = engine.telemetry(), engine.latest_estimate().seq
        elapsed = time.monotonic() - t0
        assert search.proc.is_alive() and search.busy.is_set()
    assert tel1.running and tel1.error is None
    assert (tel1.callbacks - tel0.callbacks) / elapsed >= 0.9 * RATE / 256
    assert (seq1 - seq0) / elapsed >= 2.5  # 4 Hz asked
    assert tel1.late_callbacks - tel0.late_callbacks <= 3  # a missed cycle is a click; a loaded CI box may miss one
