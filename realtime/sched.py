"""Scheduling for the live path: real-time priority for the callback thread, background priority for heavy work.

The audio callback is Python, so two things decide whether it runs on time: the GIL (see realtime.engine: the
audio process holds almost no other threads, a short switch interval, garbage collection frozen while streaming)
and the OS scheduler, which this module asks for what it grants:

* `realtime_thread(tid)`: SCHED_FIFO for one thread (the PortAudio callback's, found by its native id), with
  `os.sched_setscheduler`. Linux grants it to root / CAP_SYS_NICE or within RLIMIT_RTPRIO; elsewhere it falls back
  quietly and says so ("normal: ..."), the engine's telemetry reports which.
* `realtime_thread(0, HELPER_PRIORITY)` for the audio process's few other threads: a thread that holds the GIL
  must not be preempted by a normal process while the callback waits for it (priority inversion).
* `background(nice, cpus)`: for the analysis process and a capture search: a higher nice value (always allowed)
  and, where the machine has two cores or more, the CPUs given (by default every core but the first).
* `jackd_realtime_args()`: the flags that make a JACK server real-time when this process may do so (else
  `--no-realtime`), so that tests and benchmarks start their dummy servers the way the engine runs.

Nothing here raises: each call returns a one-line description of what it got.
"""

from __future__ import annotations

import logging
import os
import resource

log = logging.getLogger("fxmatch.realtime.sched")

#: SCHED_FIFO priority of the callback thread (JACK's own real-time threads run at 70-80 by default)
CALLBACK_PRIORITY = 70
#: SCHED_FIFO priority of the audio process's other threads (control, status): below the callback, above every
#: normal process, so that one of them holding the GIL is never preempted by the machine's other work while the
#: callback waits for it (they run for microseconds at a time)
HELPER_PRIORITY = 60
#: SCHED_FIFO priority of a real-time JACK dummy server (above the callback, as with a real JACK server)
JACKD_PRIORITY = 75
#: nice value of the analysis process (below the audio process, above a capture search)
ANALYSIS_NICE = 4
#: nice value of background work (a capture search)
BACKGROUND_NICE = 10


def may_realtime(priority: int = CALLBACK_PRIORITY) -> bool:
    """Whether this process may ask for SCHED_FIFO at `priority` (root, or RLIMIT_RTPRIO high enough)."""
    if not hasattr(os, "sched_setscheduler"):
        return False
    if os.geteuid() == 0:
        return True
    soft, _ = resource.getrlimit(resource.RLIMIT_RTPRIO)
    return soft == resource.RLIM_INFINITY or soft >= priority


def realtime_thread(tid: int, priority: int = CALLBACK_PRIORITY) -> str:
    """Put thread `tid` (a native thread id; 0 = the caller) on SCHED_FIFO at `priority`; what it got, one line."""
    if not hasattr(os, "sched_setscheduler"):
        return "normal: no sched_setscheduler on this OS"
    try:
        os.sched_setscheduler(int(tid), os.SCHED_FIFO, os.sched_param(int(priority)))
    except OSError as exc:
        return f"normal: SCHED_FIFO refused ({exc.strerror or exc})"
    return f"SCHED_FIFO {int(priority)}"


def default_background_cpus() -> set[int] | None:
    """The CPUs background work is kept on: every allowed core but the lowest (None with fewer than two)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    return set(cpus[1:]) if len(cpus) >= 2 else None


def background(nice: int = BACKGROUND_NICE, cpus: set[int] | None | str = "default") -> str:
    """Lower this process's priority to `nice` and keep it on `cpus` ("default": default_background_cpus(); None:
    anywhere); what it got, one line. Call it first thing in an analysis or search process."""
    said = []
    try:
        now = os.getpriority(os.PRIO_PROCESS, 0)
        if nice > now:
            os.setpriority(os.PRIO_PROCESS, 0, int(nice))
        said.append(f"nice {os.getpriority(os.PRIO_PROCESS, 0)}")
    except (AttributeError, OSError) as exc:
        said.append(f"nice unchanged ({exc})")
    if cpus == "default":
        cpus = default_background_cpus()
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
            said.append("cpus " + ",".join(str(c) for c in sorted(cpus)))
        except (AttributeError, OSError) as exc:
            said.append(f"cpus unchanged ({exc})")
    return ", ".join(said)


def jackd_realtime_args() -> tuple[list[str], bool]:
    """jackd's scheduling flags and whether they ask for real time: `-R -P 75` when this process may, else
    `--no-realtime`."""
    if may_realtime(JACKD_PRIORITY):
        return ["-R", "-P", str(JACKD_PRIORITY)], True
    return ["--no-realtime"], False
