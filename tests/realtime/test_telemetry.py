"""realtime.telemetry: the estimate log behind Telemetry's estimate fields, and telemetry before a start."""

from __future__ import annotations

import pytest

from realtime.buffers import EngineBuffers
from realtime.telemetry import EstimateLog, telemetry_from

RATE = 48000


def test_the_first_estimate_is_timed_from_the_onset_and_from_the_start():
    log = EstimateLog()
    assert log.fields(None, RATE) == {"estimates_per_s": 0.0, "estimate_latency_ms": 0.0, "first_estimate_s": None,
                                      "first_estimate_after_start_s": None}
    log.add(0.016, 3 * RATE)
    log.add(0.020, 4 * RATE)  # only the first estimate's frame counts
    fields = log.fields(RATE, RATE)  # the target's onset 1 s into the stream
    assert fields["first_estimate_s"] == pytest.approx(2.0)
    assert fields["first_estimate_after_start_s"] == pytest.approx(3.0)
    assert fields["estimate_latency_ms"] == pytest.approx(18.0)
    assert log.fields(4 * RATE, RATE)["first_estimate_s"] == 0.0  # an onset after the estimate: never negative
    log.clear()
    assert log.fields(RATE, RATE)["first_estimate_s"] is None


def test_telemetry_before_a_start_and_from_the_callbacks_counters():
    status = {"running": False, "cpu_load": 0.0, "estimates_per_s": 0.0, "estimate_latency_ms": 0.0,
              "input_latency_s": 0.0, "output_latency_s": 0.0, "block_frames": 256, "sample_rate": 0,
              "provider": "", "model_name": "", "error": None}
    tel = telemetry_from(None, status)
    assert tel.callbacks == 0 and tel.xruns == 0 and tel.callback_p99_ms == 0.0
    buffers = EngineBuffers(1024)
    buffers.durations[:4] = (0.001, 0.002, 0.001, 0.004)
    buffers.header[EngineBuffers.CALLBACKS] = 4
    buffers.header[EngineBuffers.XRUNS] = 2
    tel = telemetry_from(buffers, status)
    assert tel.callbacks == 4 and tel.xruns == 2 and tel.callback_max_ms == pytest.approx(4.0)
    assert tel.callback_mean_ms == pytest.approx(2.0)
