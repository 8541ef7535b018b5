"""realtime.jack: bad rates and periods are refused before jackd runs, and no jackd outlives a failed start."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fxmatch.errors import FxmatchInputError
from realtime import jack
from realtime.jack import JackDummyServer, JackUnavailable


def _stat(pid: int) -> tuple[str, str, int] | None:
    """(comm, state, ppid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    state, ppid = text[text.rindex(")") + 2 :].split()[:2]
    return comm, state, int(ppid)


def jackd_children(parent: int) -> list[int]:
    """Every jackd whose parent is `parent`, zombies included (a zombie is a server nobody waited for)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[0] == "jackd" and st[2] == parent:
                out.append(int(entry.name))
    return out


def running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    st = _stat(pid)
    return st is not None and st[1] != "Z"


@pytest.mark.parametrize(("kw", "said"), [
    ({"rate": 1}, r"rate must be an integer in \[8000, 384000\] Hz, got 1"),
    ({"rate": 500_000}, "got 500000"),
    ({"period": 0}, r"period must be an integer in \[16, 8192\] frames, got 0"),
    ({"period": 10_000}, "got 10000"),
    ({"rate": 48000.5}, "got 48000.5"),
])
def test_bad_rate_or_period_is_refused_before_jackd_starts(kw, said):
    with pytest.raises(FxmatchInputError, match=said):
        JackDummyServer(**kw)
    assert jackd_children(os.getpid()) == []


def test_a_start_that_times_out_leaves_no_jackd():
    server = JackDummyServer(timeout_s=0.0)  # gives up before the server can answer
    with pytest.raises(JackUnavailable, match="did not answer within 0 s"):
        server.start()
    assert server.process is None and server.device is None
    assert jackd_children(os.getpid()) == []
    assert os.environ.get("JACK_DEFAULT_SERVER") != server.name


@pytest.mark.audio
def test_a_stuck_server_ignoring_sigterm_is_killed_and_reaped(monkeypatch, caplog):
    """A 1 Hz server (what `fxmatch live --jack-dummy --rate 1` used to start) never answers and ignores SIGTERM."""
    monkeypatch.setattr(jack, "TERM_GRACE_S", 1.0)
    server = JackDummyServer(timeout_s=1.5)
    server.rate = 1  # past the check on purpose: a real stuck jackd
    t0 = time.monotonic()
    with caplog.at_level(logging.INFO, logger="fxmatch.realtime.jack"), pytest.raises(JackUnavailable) as info:
        server.start()
    took = time.monotonic() - t0
    message = str(info.value)
    assert "(1 Hz, 256 frames) did not answer within 1.5 s" in message and "\n" not in message
    assert any("ignored SIGTERM" in r.getMessage() for r in caplog.records)  # the escalation to SIGKILL happened
    assert 2.5 <= took < 15
    assert jackd_children(os.getpid()) == []


_INTERRUPTED = """
import os, signal, threading
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even if the runner ignores SIGINT
from realtime import jack
from realtime.jack import JackDummyServer
jack.TERM_GRACE_S = 1.0
server = JackDummyServer(timeout_s=30)
server.rate = 1  # never comes up: the wait is long enough to be interrupted
threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    server.start()
except KeyboardInterrupt:
    children = [d.name for d in Path("/proc").iterdir() if d.name.isdigit() and (d / "stat").exists()
                and (d / "stat").read_text().split(") ")[-1].split()[1] == str(os.getpid())
                and (d / "comm").read_text().strip() == "jackd"]
    print("interrupted", server.process is None, "jackd children:", len(children), flush=True)
"""


@pytest.mark.audio
def test_an_interrupted_start_leaves_no_jackd():
    """Ctrl-C while the server comes up (SIGINT to a fresh process: real signal delivery, not the test runner's
    state): start() raises KeyboardInterrupt and has stopped and reaped its jackd."""
    proc = subprocess.run([sys.executable, "-c", _INTERRUPTED], check=False, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout.strip() == "interrupted True jackd children: 0", proc.stdout + proc.stderr[-2000:]
    assert proc.returncode == 0


_ORPHAN = """
from realtime.jack import JackDummyServer
server = JackDummyServer().start()
print(server.process.pid, flush=True)
import time
time.sleep(600)
"""


@pytest.mark.audio
def test_jackd_dies_with_the_process_that_started_it():
    proc = subprocess.Popen([sys.executable, "-c", _ORPHAN], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        pid = int(proc.stdout.readline())
        assert running(pid) and _stat(pid)[0] == "jackd"
        proc.kill()  # no stop(), no atexit: only the kernel can clean up
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running(pid)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


@pytest.mark.audio
def test_a_good_server_stops_cleanly_and_restores_the_environment():
    before = os.environ.get("JACK_DEFAULT_SERVER")
    with JackDummyServer(rate=44100, period=128) as server:
        pid = server.process.pid
        assert os.environ["JACK_DEFAULT_SERVER"] == server.name
        assert server.device is not None and running(pid)
    assert not running(pid)
    assert os.environ.get("JACK_DEFAULT_SERVER") == before
    assert jackd_children(os.getpid()) == []


def test_orphan_shm_files_of_dead_servers_are_removed_and_live_ones_kept(tmp_path):
    """Files named after a server whose owner died and whose jackd is gone go; a live owner's, a still-running
    jackd's (its name on a command line) and other files stay."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead, live, running = (f"fxmatch-{pid}-{tag}" for pid, tag in
                           ((gone.pid, "0123abcd"), (os.getpid(), "4567cdef"), (gone.pid, "89ab0123")))
    names = [f"jack_{dead}_0_0", f"jack_sem.0_{dead}_system", f"jack_{live}_0_0", f"jack_sem.0_{running}_system",
             "jack-shm-registry", "jack_db-0", "unrelated"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    still = subprocess.Popen(["sh", "-c", "sleep 30", running])  # a process whose command line holds the name
    try:
        cmdline, t = Path(f"/proc/{still.pid}/cmdline"), time.monotonic()
        while running.encode() not in cmdline.read_bytes() and time.monotonic() - t < 10:  # until it has exec'd
            time.sleep(0.01)
        assert jack.reap_orphan_files(tmp_path) == [dead]
    finally:
        still.kill()
        still.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])
