"""The long commands' progress on stderr (fxmatch.commands.progress): rewritten line on a terminal, plain in a log."""

from __future__ import annotations

from types import SimpleNamespace

from fxmatch.commands import progress


def _report(n: int, done: bool = False) -> SimpleNamespace:
    return SimpleNamespace(n=n, done=done)


def _line(p) -> str:
    return f"step {p.n}"


def test_plain_lines_every_so_often_and_none_for_the_last_report(capsys, monkeypatch):
    clock = iter([0.0, 1.0, 6.0, 7.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    show = progress.progress_printer(_line, tty=False, every=5.0)
    for p in (_report(1), _report(2), _report(3, done=True)):
        show(p)
    assert capsys.readouterr().err == "fxmatch: step 2\n"  # 1 came 1 s after the start; the last is the caller's


def test_a_terminal_line_is_rewritten_at_most_ten_times_a_second_and_always_for_the_last(capsys, monkeypatch):
    clock = iter([100.0, 100.05, 100.2, 100.21])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    show = progress.progress_printer(_line, tty=True)
    for p in (_report(1), _report(2), _report(3), _report(4, done=True)):
        show(p)
    assert capsys.readouterr().err == "\rstep 1\x1b[K\rstep 3\x1b[K\rstep 4\x1b[K"
