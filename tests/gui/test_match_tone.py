"""Match my tone in the window (reference mode), over the real engine on a JACK dummy server (offscreen Qt, tiny
model): the fit runs in a process of its own with progress, offers its chain (Keep / Discard), can be cancelled;
refine, search and match share one background-job controller (gui.jobs.BackgroundJob)."""

from __future__ import annotations

import os

import pytest

from tests.gui.test_main_window import WAIT_MS, _drive, _start

pytestmark = pytest.mark.audio


@pytest.fixture
def window(qtbot, settings, tiny_model, signal_files, jack_server, no_leftover_windows):
    from tests.gui.test_main_window import _window

    w = _window(qtbot, settings, tiny_model, signal_files, jack_server)
    yield w
    w.close()


def test_match_my_tone_runs_in_its_own_process_and_offers_keep_or_discard(qtbot, window):
    """Record = the looped plucks through a 25 dB Distortion; playing a wrong 5 dB: Match my tone fits the last
    seconds in a process that is neither the window's nor the engine's, reports progress, offers a chain that plays
    at once; Discard goes back to the 5 dB chain, a second match is kept."""
    _start(qtbot, window)
    window.apply_chain([("Distortion", {"drive_db": 5.0})], animate=False)
    qtbot.waitUntil(lambda: window.match_panel.button.isEnabled(), timeout=WAIT_MS)
    qtbot.wait(3500)  # 3 s of the looped files in the engine's buffers
    seen: list = []
    assert window.start_match(seconds=3.0, max_evaluations=24)
    worker = window.match_worker
    worker.progress.connect(seen.append)
    assert worker.pid not in (None, os.getpid(), window.engine.pid)
    assert not window.match_panel.button.isEnabled() and window.match_panel.cancel.isVisible()
    assert not window.start_match()  # one match at a time
    assert window.refine_job.worker is None and window.capture_job.worker is None
    qtbot.waitUntil(lambda: window.match_worker is None, timeout=120000)
    result = window.match_result
    assert result is not None, window.match_panel.note.text()
    assert seen and 0 < seen[-1].fraction <= 1
    assert "matched" in window.match_panel.note.text() and window.match_panel.keep.isVisible()
    assert window.engine.frozen and window.playing_source == "match"
    assert "Distortion" in result.chain_names
    assert "record's own performance" in window.match_panel.note.text()  # the looped dry file is the record's take
    window.discard_match()
    qtbot.waitUntil(lambda: _drive(window.engine.current_chain()) == pytest.approx(5.0), timeout=WAIT_MS)
    assert not window.match_panel.keep.isVisible()
    assert window.start_match(seconds=3.0, max_evaluations=24)
    qtbot.waitUntil(lambda: window.match_worker is None, timeout=120000)
    window.keep_match()
    assert not window.match_panel.keep.isVisible() and "kept" in window.match_panel.note.text()
    assert window.playing_source == "kept-match"


def test_match_can_be_cancelled_and_its_process_ends(qtbot, window):
    _start(qtbot, window)
    qtbot.waitUntil(lambda: window.match_panel.button.isEnabled(), timeout=WAIT_MS)
    qtbot.wait(2500)
    assert window.start_match(seconds=2.0, max_evaluations=100000)
    worker = window.match_worker
    qtbot.waitUntil(lambda: "matching," in window.match_panel.note.text(), timeout=60000)
    process = worker._process
    window.cancel_match()
    qtbot.waitUntil(lambda: window.match_worker is None, timeout=30000)
    assert "match cancelled" in window.match_panel.note.text() and window.match_result is None
    assert not process.is_alive() and window.match_panel.button.isEnabled()


def test_match_my_tone_needs_reference_mode(qtbot, window):
    assert not window.match_panel.button.isEnabled()  # not running
    assert not window.start_match()
