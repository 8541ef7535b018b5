"""The job processes' shared scaffolding (gui.child_process): start-up, throttled progress, one final answer."""

from __future__ import annotations

import pytest

from fxmatch.errors import FxmatchInputError
from gui import child_process


class Stopped(Exception):
    """A job's own cancel exception."""


class ListQueue(list):
    """A queue that keeps what was put, in order."""

    def put(self, item) -> None:
        self.append(item)


@pytest.fixture
def quiet_start(monkeypatch):
    """`begin` without lowering this test process's priority or pinning its CPUs."""
    import realtime.sched

    monkeypatch.setattr(realtime.sched, "background", lambda: "")
    monkeypatch.setattr("fxmatch.threads.set_cpu_threads", lambda n: None)


def test_answer_puts_done_with_the_result():
    queue = ListQueue()
    child_process.answer("job", queue, lambda: 42, Stopped)
    assert queue == [("done", 42)]


def test_answer_puts_cancelled_when_the_work_raises_the_jobs_cancel_exception():
    queue = ListQueue()

    def work():
        raise Stopped("job: cancelled")

    child_process.answer("job", queue, work, Stopped)
    assert queue == [("cancelled", None)]


@pytest.mark.parametrize("exc, message", [
    (FxmatchInputError("take.wav: empty take\nmore"), "take.wav: empty take"),
    (FxmatchInputError(""), ""),
    (RuntimeError("boom\ntraceback"), "job failed: RuntimeError: boom"),
])
def test_answer_puts_one_failed_line(exc, message):
    queue = ListQueue()

    def work():
        raise exc

    child_process.answer("job", queue, work, Stopped)
    assert queue == [("failed", message)]


def test_begin_returns_the_jobs_modules(quiet_start):
    queue = ListQueue()
    modules = child_process.begin("job", 1, queue, "json", "fxmatch.errors")
    assert [m.__name__ for m in modules] == ["json", "fxmatch.errors"]
    assert queue == []


def test_begin_says_cannot_start_when_an_import_fails(quiet_start):
    queue = ListQueue()
    assert child_process.begin("job", 1, queue, "no_such_module_here") is None
    assert queue == [("failed", "job: cannot start (ModuleNotFoundError: No module named 'no_such_module_here')")]


def test_progress_sender_throttles_but_always_sends_the_last_report(monkeypatch):
    clock = iter([100.0, 100.05, 100.06, 100.2])  # 1 / PROGRESS_HZ = 0.1 s
    monkeypatch.setattr(child_process.time, "perf_counter", lambda: next(clock))
    queue = ListQueue()
    progress = child_process.progress_sender(queue, convert=lambda p: p * 10, last=lambda p: p == 3)
    for p in (1, 2, 3, 4):
        progress(p)
    assert queue == [("progress", 10), ("progress", 30), ("progress", 40)]  # 2 came too soon after 1
