"""Progress on stderr for the long commands (capture, match): one line rewritten in place on a terminal, plain lines
now and then in a log or a pipe."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

#: where stderr is not a terminal (a log, a pipe), a plain progress line this often (s)
PLAIN_PROGRESS_SECONDS = 5.0
#: on a terminal, the line is rewritten this often at most (s)
TTY_PROGRESS_SECONDS = 0.1


def progress_printer(line: Callable[[Any], str], tty: bool | None = None,
                     every: float | None = None) -> Callable[[Any], None]:
    """A progress callback for stderr that says each report `p` (with `.done` on the last) as `line(p)`: on a
    terminal one line rewritten at most ten times a second (the last report always; the caller ends the line);
    elsewhere a plain line every `every` seconds (default PLAIN_PROGRESS_SECONDS; `tty`: None asks stderr)."""
    tty = sys.stderr.isatty() if tty is None else tty
    every = PLAIN_PROGRESS_SECONDS if every is None else every
    last = [time.perf_counter() if not tty else 0.0]

    def show(p: Any) -> None:
        now = time.perf_counter()
        if tty:
            if p.done or now - last[0] >= TTY_PROGRESS_SECONDS:
                last[0] = now
                print(f"\r{line(p)}\x1b[K", end="", file=sys.stderr, flush=True)
        elif not p.done and now - last[0] >= every:
            last[0] = now
            print(f"fxmatch: {line(p)}", file=sys.stderr, flush=True)

    return show
