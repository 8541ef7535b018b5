"""`fxmatch bench realtime`'s floor: a minimal PortAudio client on a JACK dummy server, nothing of fxmatch in it."""

from __future__ import annotations

import pytest

RATE = 48000


@pytest.mark.audio
def test_the_floor_client_streams_at_real_time_pace_and_reports_its_misses(jack_server):
    from benchmarks.bench_realtime import floor_run

    figures = floor_run(jack_server, 256, 1.5)
    assert figures["block_frames"] == 256 and figures["seconds"] >= 1.5
    assert figures["callbacks"] >= 0.8 * 1.5 * RATE / 256  # the server kept calling it all along
    assert figures["callback_priority"]  # what the OS granted, or why not, is always said
    assert 0 <= figures["late_callbacks"] <= figures["callbacks"]
    assert figures["max_gap_ms"] >= 1e3 * 256 / RATE * 0.5  # gaps are of the order of a period, not zero
    assert figures["xruns"] >= 0 and figures["server_missed_cycles"] >= 0
