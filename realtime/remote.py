"""RemoteEngine: realtime.engine.LiveEngine's API with the engine running in its own process.

Why: the PortAudio callback is Python. In the GUI's process it shares the GIL with Qt painting, pyqtgraph and the
spectra's FFTs, and every frame the window draws can hold the callback up (`fxmatch bench gui` measured callback
p99 0.41 ms alone vs 8.0 ms with the app at 60 frames/s). A RemoteEngine runs the LiveEngine (stream, chain,
A/B) in a child process started with multiprocessing's 'spawn' context (a fresh interpreter: no Qt or thread state
is forked), so the callback competes only with the child's own few threads: its main thread (blocked on the
control pipe), the LiveEngine's control thread and the status publisher. The LiveEngine there runs its analysis
in a third process (realtime.analysis.AnalysisProcess) that maps the same shared block: the app's layout is
window process -> audio process -> analysis process.

    engine = RemoteEngine(EngineConfig(...))   # spawns the engine process, which loads the model
    engine.start()                             # FxmatchInputError with LiveEngine's messages on device problems
    engine.recent_audio("target", 4096)        # shared memory: the child's Python is not involved
    engine.stop()                              # ends the engine process (bounded; killed when it does not end)

Channels between the processes:

* Control (start, stop, and `LiveEngine.remote_ops`: set_ab, set_frozen, set_chain, reset_to_estimate): a duplex
  pipe of (request id, op, args) -> ("reply", id, ok, value, snapshot). Each call waits with a timeout; a child that
  does not answer in time is killed and reported. A receiver thread in this process reads the pipe; when the pipe
  closes unexpectedly (the child died), `running` turns False and `telemetry().error` says so.
* Status: the child's publisher thread sends a snapshot (telemetry's slow fields, the latest estimate, the playing
  chain, freeze and A/B state) on the same pipe 4 times a second and right after each estimate, stop or error
  (a small pickle: the GIL is the audio callback's for all but a few tens of microseconds of it). Replies carry a
  snapshot too, taken after the op, and the child sends both under one lock, so state read after a call reflects
  the call (`set_chain(c)` then `current_chain() == c`).
* Audio and callback counters: one `multiprocessing.shared_memory` block per start, laid out as
  realtime.buffers.EngineBuffers (4 rings, callback durations, xrun/trip/clip/callback counters). This process
  creates it (sized from the rate the child resolved), the child's callback writes it, this process reads it
  (recent_audio, levels, the callback statistics in telemetry) without waking the child. The
  name is unlinked as soon as the child has attached, so nothing is left in /dev/shm whatever way either process
  ends; the mapping lives until both let go. Reads follow realtime.ringbuffer's guarantee (a consistent write
  counter; overwritten samples are re-read or zeroed, never mixed).

A stopped RemoteEngine has no process; start() spawns a new one and replays the A/B position, the freeze state and
a chain set by hand. The readings (recent_audio, levels, telemetry, latest_estimate, current_chain) keep the last
values after stop(), as LiveEngine's do. `prepare_offline` runs in the child as well; `engine_class` is the engine
the child runs (tests put one with fault hooks there).
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from multiprocessing import shared_memory
from typing import Any

from fxmatch.errors import FxmatchInputError
from realtime.analysis_link import LiveEstimate
from realtime.buffers import EngineBuffers, SharedBlock, new_shared_block
from realtime.config import EngineConfig, validate_config
from realtime.engine import EngineAPI, LiveEngine
from realtime.telemetry import Telemetry, telemetry_from

log = logging.getLogger("fxmatch.realtime.remote")

PUBLISH_S = 0.25          # status snapshots from the child: 4 per second (and after each estimate, stop, error)
SPAWN_TIMEOUT_S = 60.0    # a fresh interpreter, imports and the model's session (slow on a loaded machine)
CALL_TIMEOUT_S = 5.0      # a control call (set_ab, set_chain, ...)
START_TIMEOUT_S = 20.0    # opening the stream and starting the worker
STOP_TIMEOUT_S = 6.0      # the child's LiveEngine.stop() and exit; then it is killed
STALE_S = 5.0             # a running child that sent no snapshot for this long is declared hung and killed


# ---------------------------------------------------------------------------------------------------- the child


class _EngineServer:
    """Child side: serves control requests on the main thread, publishes snapshots from a thread."""

    def __init__(self, conn, engine: LiveEngine) -> None:
        self.conn = conn
        self.engine = engine
        self.send_lock = threading.Lock()  # main thread (replies) and publisher; never the audio callback
        self.wake = threading.Event()
        self.done = threading.Event()
        self.shm: shared_memory.SharedMemory | None = None
        engine.add_listener(self.wake.set)

    def snapshot(self) -> dict[str, Any]:
        """What the parent cannot read from shared memory."""
        e = self.engine
        return {"status": e.status_fields(), "estimate": e.latest_estimate(), "chain": e.current_chain(),
                "frozen": e.frozen, "ab": e.ab_position, "sample_rate": e.sample_rate}

    def publish_loop(self) -> None:
        _helper_priority(self.engine.config)
        while not self.done.is_set():
            self.wake.wait(PUBLISH_S)
            self.wake.clear()
            if self.done.is_set():
                break
            try:
                with self.send_lock:
                    self.conn.send(("status", self.snapshot()))
            except (OSError, EOFError):  # the parent is gone: the main thread sees it too
                break
            except Exception:
                log.exception("engine process: status snapshot failed")

    def _attach(self, name: str, capacity: int) -> EngineBuffers:
        shm = SharedBlock(name=name)
        self.shm = shm  # kept for the process's life (views into it); the parent unlinks the name
        buffers = EngineBuffers(capacity, shm.buf, writer=True)
        buffers.owner = shm  # its file descriptor goes to the analysis process
        return buffers

    def handle(self, op: str, args: tuple) -> Any:
        e = self.engine
        if op == "prepare":
            rate, n_out = (int(args[0]), 1) if args and args[0] else e.resolve_devices()
            cap = e.ring_capacity(rate)
            return {"rate": rate, "n_out": n_out, "capacity": cap, "nbytes": EngineBuffers.nbytes(cap)}
        if op == "start":
            e.use_buffers(self._attach(*args))
            e.start()
            return e.sample_rate
        if op == "prepare_offline":
            name, cap, rate, channels = args
            e.use_buffers(self._attach(name, cap))
            e.prepare_offline(rate, channels)
            return e.sample_rate
        if op in ("stop", "exit"):
            e.stop()
            return None
        if op in e.remote_ops:
            return getattr(e, op)(*args)
        raise ValueError(f"unknown engine op {op!r}")

    def serve(self) -> None:
        """Answer requests until "exit" or until the parent goes away."""
        _helper_priority(self.engine.config)
        publisher = threading.Thread(target=self.publish_loop, name="fxmatch-remote-publish", daemon=True)
        publisher.start()
        while True:
            try:
                rid, op, args = self.conn.recv()
            except (EOFError, OSError):  # the parent died: stop the stream and go
                rid, op, args = None, "exit", ()
            with self.send_lock:
                try:
                    reply = (True, self.handle(op, args))
                except FxmatchInputError as exc:
                    reply = (False, ("input", str(exc)))
                except Exception as exc:  # noqa: BLE001 - reported to the caller, one line
                    reply = (False, ("other", f"{type(exc).__name__}: {exc}".splitlines()[0]))
                if rid is not None:
                    try:
                        self.conn.send(("reply", rid, *reply, self.snapshot()))
                    except (OSError, EOFError):
                        op = "exit"
            if op == "exit":
                break
        self.done.set()
        self.wake.set()


def _helper_priority(config: EngineConfig) -> None:
    """This thread of the audio process on SCHED_FIFO below the callback (realtime.sched.HELPER_PRIORITY), where
    granted: it holds the GIL for microseconds and must not be preempted meanwhile."""
    if config.realtime_priority:
        from realtime.sched import HELPER_PRIORITY, realtime_thread

        realtime_thread(0, HELPER_PRIORITY)


def _quit(engine: LiveEngine | None) -> None:
    """End the engine process without Python's exit handlers (see realtime.jack on PortAudio at shutdown)."""
    if engine is not None and engine.telemetry().error is None and "sounddevice" in sys.modules:
        # the server is presumably alive: close PortAudio's JACK client cleanly, but never wait long for it
        sd = sys.modules["sounddevice"]
        t = threading.Thread(target=sd._terminate, daemon=True)
        t.start()
        t.join(2.0)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _child_main(conn, config: EngineConfig, engine_class: type[LiveEngine] = LiveEngine) -> None:
    """Entry point of the engine process: build the engine (`engine_class`), report ready (or why not), serve."""
    logging.basicConfig(level=logging.WARNING, format="fxmatch engine process: %(levelname)s %(message)s")
    engine = None
    try:
        engine = engine_class(config)
        server = _EngineServer(conn, engine)
        conn.send(("ready", True, {"info": engine.info, "snapshot": server.snapshot()}))
    except FxmatchInputError as exc:
        conn.send(("ready", False, ("input", str(exc))))
        _quit(None)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        conn.send(("ready", False, ("other", f"{type(exc).__name__}: {exc}".splitlines()[0])))
        _quit(None)
    try:
        server.serve()
    finally:
        _quit(engine)


# ---------------------------------------------------------------------------------------------------- the parent


class _Gone(Exception):
    """The engine process is gone or did not answer."""


class _Child:
    """One engine process as this process sees it: the process, its pipe, the waiting calls, the receiver."""

    def __init__(self, proc, conn) -> None:
        self.proc = proc
        self.conn = conn
        self.send_lock = threading.Lock()
        self.waiters: dict[int, list] = {}  # id -> [event, result]
        self.alive = True
        self.exiting = False  # an expected end (stop): not an error
        self.last_snapshot = time.monotonic()
        self.finalizer: weakref.finalize | None = None

    def kill(self) -> None:
        """SIGKILL the process (no-op when it already ended) and reap it (bounded)."""
        try:
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join(2.0)
        except Exception:
            log.debug("killing the engine process failed", exc_info=True)


def _receive_loop(engine_ref: Callable[[], RemoteEngine | None], child: _Child) -> None:
    """Receiver thread of one child (holds the engine weakly, so that a dropped engine can be collected)."""
    while True:
        try:
            msg = child.conn.recv()
        except (EOFError, OSError):
            break
        except Exception:
            log.exception("bad message from the engine process")
            continue
        engine = engine_ref()
        if engine is None:
            break
        if msg[0] == "status":
            engine._apply(child, msg[1])
        elif msg[0] == "reply":
            _, rid, ok, value, snap = msg
            engine._apply(child, snap)
            waiter = child.waiters.pop(rid, None)
            if waiter is not None:
                waiter[1] = (ok, value)
                waiter[0].set()
        del engine
    child.proc.join(1.0)
    engine = engine_ref()
    if engine is not None and not child.exiting:
        engine._lost(child, f"the engine process ended unexpectedly (exit code {child.proc.exitcode})")
    child.alive = False
    for waiter in list(child.waiters.values()):
        waiter[0].set()
    child.waiters.clear()


class RemoteEngine(EngineAPI):
    """LiveEngine's API over an engine process (see the module docstring). Public methods: any non-audio thread."""

    #: the engine the child process runs (a subclass of LiveEngine, importable by its module and name)
    engine_class: type[LiveEngine] = LiveEngine

    def __init__(self, config: EngineConfig) -> None:
        """Validate the config, spawn the engine process and load the model there (FxmatchInputError if bad)."""
        validate_config(config)
        self._init_api(config)
        self._ctx = mp.get_context("spawn")
        self._op_lock = threading.RLock()  # one control operation at a time (start/stop against the rest)
        self._ids = itertools.count(1)
        self._child: _Child | None = None
        self._error: str | None = None
        self._snap: dict[str, Any] = {}
        self._buffers: EngineBuffers | None = None
        self._sample_rate = 0
        self._clip_seen = None
        self._notified_seq = -1
        self._notified_running = False
        self.info = None
        self._spawn()

    # -- the process -----------------------------------------------------------------------------------------------

    def _spawn(self) -> None:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_child_main, args=(child_conn, self.config, self.engine_class),
                                 name="fxmatch-engine", daemon=True)
        proc.start()
        child_conn.close()  # only the child holds its end: its death closes the pipe here
        child = _Child(proc, parent_conn)
        child.finalizer = weakref.finalize(self, child.kill)  # a dropped engine takes its process with it
        try:
            if not parent_conn.poll(SPAWN_TIMEOUT_S):
                raise _Gone(f"did not report ready within {SPAWN_TIMEOUT_S:.0f} s")
            _, ok, value = parent_conn.recv()
        except (EOFError, OSError, _Gone) as exc:
            child.kill()
            parent_conn.close()
            why = str(exc) if isinstance(exc, _Gone) else f"ended before it was ready (exit code {proc.exitcode})"
            raise RuntimeError(f"the engine process {why}") from None
        if not ok:
            child.kill()
            parent_conn.close()
            kind, message = value
            raise FxmatchInputError(message) if kind == "input" else RuntimeError(message)
        self.info = value["info"]
        self._snap = value["snapshot"]
        self._child = child
        threading.Thread(target=_receive_loop, args=(weakref.ref(self), child), name="fxmatch-remote-rx",
                         daemon=True).start()

    def _apply(self, child: _Child, snap: dict[str, Any]) -> None:
        child.last_snapshot = time.monotonic()
        if child is not self._child:
            return
        self._snap = snap
        self._frozen = bool(snap["frozen"])
        self._ab_position = snap["ab"]
        est = snap["estimate"]
        running = bool(snap["status"]["running"])
        if (est is not None and est.seq != self._notified_seq) or (self._notified_running and not running):
            self._notified_seq = est.seq if est is not None else self._notified_seq
            self._notified_running = running
            self._notify()
        else:
            self._notified_running = running

    def _lost(self, child: _Child, message: str, kill: bool = False) -> None:
        """The child died or hangs: record the error (shown by telemetry()), stop reporting it as running."""
        if child is self._child and self._error is None and not child.exiting:
            self._error = message
            log.error("%s", message)
        child.alive = False
        if kill:
            child.kill()
        if child is self._child:
            self._notify()

    def _call(self, op: str, *args: Any, timeout: float | None = None, child: _Child | None = None) -> Any:
        """Send `op` to the child and wait for its reply (`timeout` s, default CALL_TIMEOUT_S); _Gone when it is
        dead or does not answer in time."""
        timeout = CALL_TIMEOUT_S if timeout is None else timeout
        child = child or self._child
        if child is None or not child.alive:
            raise _Gone("no engine process")
        rid = next(self._ids)
        waiter = [threading.Event(), None]
        child.waiters[rid] = waiter
        try:
            with child.send_lock:
                child.conn.send((rid, op, args))
        except (OSError, ValueError):
            child.waiters.pop(rid, None)
            self._lost(child, f"the engine process is gone (exit code {child.proc.exitcode})")
            raise _Gone("the engine process is gone") from None
        if not waiter[0].wait(timeout):
            child.waiters.pop(rid, None)
            self._lost(child, f"the engine process did not answer {op} within {timeout:.0f} s", kill=True)
            raise _Gone(f"no answer to {op}")
        if waiter[1] is None:
            raise _Gone("the engine process ended")
        ok, value = waiter[1]
        if not ok:
            kind, message = value
            raise FxmatchInputError(message) if kind == "input" else RuntimeError(message)
        return value

    def _check_alive(self) -> None:
        child = self._child
        if child is not None and child.alive and not child.exiting and self._snap.get("status", {}).get("running"):
            if not child.proc.is_alive():
                self._lost(child, f"the engine process ended unexpectedly (exit code {child.proc.exitcode})")
            elif time.monotonic() - child.last_snapshot > STALE_S:
                self._lost(child, f"the engine process stopped answering (no status for {STALE_S:.0f} s)",
                           kill=True)

    # -- properties ------------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the stream runs (False after stop(), a stream error or the engine process's death)."""
        self._check_alive()
        child = self._child
        return child is not None and child.alive and bool(self._snap.get("status", {}).get("running"))

    # -- start / stop ----------------------------------------------------------------------------------------------

    def _attach_block(self, op: str, prep: dict[str, Any], *args: Any, timeout: float) -> None:
        """Create the shared block, let the child attach and run `op` on it, unlink the name, map it here."""
        block = new_shared_block(prep["nbytes"], unlink=False)
        try:
            rate = self._call(op, block.name, prep["capacity"], *args, timeout=timeout)
            buffers = EngineBuffers(prep["capacity"], block.buf, writer=False)
        finally:
            block.unlink()  # both processes have it mapped (or the op failed): the name is no longer needed
        buffers.owner = block  # the mapping lives as long as the views
        self._buffers, self._clip_seen, self._sample_rate = buffers, None, int(rate)

    def _ensure_child(self) -> _Child:
        child = self._child
        if child is None or not child.alive:
            if child is not None:
                child.exiting = True
                child.kill()
            self._child = None
            self._error = None
            self._spawn()
            child = self._child
            try:  # what LiveEngine would remember across stop/start
                self._call("set_ab", self._ab_position)
                if self._manual is not None:
                    self._call("set_chain", self._manual)
                self._call("set_frozen", self._frozen)
            except _Gone as exc:
                raise RuntimeError(f"the engine process failed right after starting ({exc})") from None
        return child

    def start(self) -> None:
        """Open and start the stream and the analysis worker in the engine process (FxmatchInputError on device
        problems, with LiveEngine's messages)."""
        with self._op_lock:
            if self.running:
                return
            self._ensure_child()
            self._error = None
            try:
                prep = self._call("prepare", None)
                self._attach_block("start", prep, timeout=START_TIMEOUT_S)
            except _Gone as exc:
                raise RuntimeError(f"the engine process failed while starting: {self._error or exc}") from None
            self._notified_running = True
            log.info("remote engine running in process %d", self._child.proc.pid)

    def stop(self) -> None:
        """Stop the stream and end the engine process; idempotent, bounded (the process is killed after
        STOP_TIMEOUT_S + 2 s, or at once when its stream already failed)."""
        with self._op_lock:
            child, self._child = self._child, None
            if child is None:
                return
            was_running = child.alive and bool(self._snap.get("status", {}).get("running"))
            if child.alive and self._snap.get("status", {}).get("error") is None:
                # a healthy engine stops its stream and closes PortAudio; one whose stream failed is killed at
                # once (closing a stream whose server died can take seconds, and nothing is lost by killing it)
                child.exiting = True
                try:
                    self._call("exit", timeout=STOP_TIMEOUT_S, child=child)
                except (_Gone, RuntimeError, FxmatchInputError):
                    log.warning("the engine process did not stop cleanly; killing it")
            child.exiting = True
            child.proc.join(2.0)
            child.kill()
            child.alive = False
            if child.finalizer is not None:
                child.finalizer.detach()
            try:
                child.conn.close()
            except OSError:
                pass
            status = dict(self._snap.get("status", {}))
            status["running"] = False
            self._snap = dict(self._snap, status=status)
            self._notified_running = False
        if was_running:
            self._notify()

    # -- estimates and chains ----------------------------------------------------------------------------------------

    def _control(self, op: str, *args: Any) -> None:
        """A control call that, like LiveEngine's on a stopped engine, only changes state when no process runs."""
        with self._op_lock:
            try:
                self._call(op, *args)
            except _Gone:
                pass

    def latest_estimate(self) -> LiveEstimate | None:
        """The newest smoothed, hysteresis-stabilised estimate (None before the first)."""
        return self._snap.get("estimate")

    def _apply_ab(self, position: str) -> None:
        self._control("set_ab", position)

    def _apply_frozen(self, frozen: bool) -> None:
        self._control("set_frozen", frozen)

    def _apply_chain(self, spec: tuple) -> None:
        if self._child is None or not self._child.alive:
            self._snap = dict(self._snap, chain=tuple((n, dict(p)) for n, p in spec), frozen=True)
        self._control("set_chain", spec)

    def _apply_reset(self) -> None:
        self._control("reset_to_estimate")

    def current_chain(self) -> tuple[tuple[str, dict[str, float]], ...]:
        """What is playing now: (effect, {param: value}) with the values the parameters glide to."""
        chain = self._snap.get("chain")
        if chain:
            return tuple((n, dict(p)) for n, p in chain)
        return tuple((n, dict(p)) for n, p in (self._manual or ()))

    # -- readings (recent_audio, levels: EngineReadings over the shared block) -----------------------------------

    def telemetry(self) -> Telemetry:
        """A snapshot of xruns, callback durations, load, estimate rate and latency, stream latencies, errors."""
        self._check_alive()
        status = dict(self._snap.get("status", {}))
        status["running"] = self.running
        if self._error is not None:
            status["error"] = self._error
        return telemetry_from(self._buffers, status)

    # -- extras ----------------------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The engine process's id (None when none runs)."""
        child = self._child
        return child.proc.pid if child is not None and child.alive else None

    def prepare_offline(self, sample_rate: int, output_channels: int = 1) -> None:
        """Allocate everything start() would, in the engine process, without a stream or worker (tests)."""
        with self._op_lock:
            self._ensure_child()
            try:
                prep = self._call("prepare", int(sample_rate))
                self._attach_block("prepare_offline", prep, int(sample_rate), int(output_channels),
                                   timeout=START_TIMEOUT_S)
            except _Gone as exc:
                raise RuntimeError(f"the engine process is gone: {self._error or exc}") from None
