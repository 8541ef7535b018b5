"""The analysis worker: every hop, the last window of the target -> onnxruntime -> a stabilised estimate.

The worker thread reads the newest window of the target from its ring buffer (device rate), resamples it to the
model's rate with soxr, skips it when silent (below fxmatch.inference.SILENCE_DBFS), runs the model (one window)
and feeds the `EstimateStabiliser`:

* chain probabilities and normalised params are smoothed over hops (exponential, `smoothing`); params are
  smoothed in the normalised space, which is linear in each parameter's own scale (log params glide in log);
* the published chain changes only when it has not been the smoothed favourite for `hysteresis_hops`
  consecutive hops (whichever chains led meanwhile); it changes to the favourite of the last of them (the first
  estimate is published at once).

Where it runs: by default in a process of its own (`AnalysisProcess`, `python -m realtime.analysis`), so that
resampling and inference never hold the audio process's GIL. That process maps the engine's buffers
(realtime.buffers.EngineBuffers, a shared-memory block whose file descriptor it receives over a Unix socket, so the
block needs no name in /dev/shm), reads the target ring, and writes each estimate into the block's *estimate slot*
under a sequence lock (`write_estimate` / `read_estimate`: the sequence counter is odd while the slot is written,
one aligned 8-byte store each, so a reader never takes a half-written estimate, even from a process killed in the
middle of a write). It also counts its hops and errors there. It lowers its own priority (realtime.sched:
`ANALYSIS_NICE`) and ends when the socket closes (the audio process ended). `EngineConfig(analysis="thread")`
keeps the old layout: an `AnalysisWorker` thread in the audio process.
"""

from __future__ import annotations

import json
import logging
import math
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fxmatch.inference import SILENCE_DBFS, EstimatorSession, ModelInfo, decide, rms_dbfs
from realtime.buffers import SLOT_FLOATS, EngineBuffers

log = logging.getLogger("fxmatch.realtime.analysis")


@dataclass(frozen=True)
class StableEstimate:
    """What the stabiliser publishes after a hop (the engine turns it into a LiveEstimate)."""

    chain: tuple[str, ...]
    params: tuple[tuple[str, dict[str, float]], ...]
    probability: float
    alternatives: tuple[tuple[tuple[str, ...], float], ...]
    changed: bool  # the chain differs from the previous published one
    # what the estimate is made of, for realtime.analysis's estimate slot (indices into ModelInfo.chains)
    chain_index: int = -1
    unit_params: tuple[float, ...] = ()  # the chain's normalised params row [n_params] in [0, 1]
    alternative_indices: tuple[int, ...] = ()


class EstimateStabiliser:
    """Hysteresis over hops for the chain, exponential smoothing of probabilities and params."""

    def __init__(self, info: ModelInfo, hysteresis_hops: int = 3, smoothing: float = 0.6, top: int = 3):
        self.info = info
        self.hysteresis_hops = max(1, int(hysteresis_hops))
        self.smoothing = float(smoothing)  # weight of the past per hop, in [0, 1)
        self.top = int(top)
        self.probs: np.ndarray | None = None
        self.params: np.ndarray | None = None
        self.current: int | None = None
        self._count = 0  # consecutive hops the published chain has not led

    def reset(self) -> None:
        """Forget the history (the next window is published at once)."""
        self.probs = self.params = None
        self.current = None
        self._count = 0

    def update(self, probs: np.ndarray, params: np.ndarray) -> StableEstimate:
        """One hop: probs `[n_chains]`, normalised params `[n_chains, n_params]` -> the stabilised estimate."""
        probs = np.asarray(probs, dtype=np.float64).reshape(-1)
        params = np.clip(np.asarray(params, dtype=np.float64).reshape(probs.size, -1), 0.0, 1.0)
        a = self.smoothing
        if self.probs is None:
            self.probs, self.params = probs.copy(), params.copy()
        else:
            self.probs = a * self.probs + (1 - a) * probs
            self.params = a * self.params + (1 - a) * params
        best = decide(self.info, self.probs)
        changed = False
        if self.current is None:
            self.current, changed = best, True
        elif best == self.current:
            self._count = 0
        else:  # the published chain is not the leader: count the hops, whichever chain leads in each
            self._count += 1
            if self._count >= self.hysteresis_hops:
                changed = self.info.chains[best] != self.info.chains[self.current]
                self.current, self._count = best, 0
        k = self.current
        order = [int(i) for i in np.argsort(-self.probs, kind="stable") if int(i) != k][: self.top]
        return StableEstimate(
            chain=self.info.chains[k],
            params=tuple((n, dict(p)) for n, p in self.info.decode(k, self.params[k])),
            probability=float(self.probs[k]),
            alternatives=tuple((self.info.chains[i], float(self.probs[i])) for i in order),
            changed=changed,
            chain_index=k,
            unit_params=tuple(float(v) for v in self.params[k]),
            alternative_indices=tuple(order),
        )


class AnalysisWorker(threading.Thread):
    """Thread: every `hop_s`, estimate the newest window of `read_target(n)` and call `publish(est, latency_s)`.

    `read_target(n)` returns the newest n samples (device rate, mono float32) and `written()` how many samples
    were written so far; `tick()` is called every hop (the engine's watchdog and housekeeping).
    """

    def __init__(self, session: EstimatorSession, device_rate: int, read_target: Callable[[int], np.ndarray],
                 written: Callable[[], int], publish: Callable[[StableEstimate, float], None],
                 stabiliser: EstimateStabiliser, hop_s: float = 0.25, tick: Callable[[], None] | None = None):
        super().__init__(name="fxmatch-analysis", daemon=True)
        self.session = session
        self.info = session.info
        self.device_rate = int(device_rate)
        self.read_target = read_target
        self.written = written
        self.publish = publish
        self.stabiliser = stabiliser
        self.hop_s = float(hop_s)
        self.tick = tick
        self.stop_event = threading.Event()
        w = self.info.window_samples
        # device-rate samples covering one model window, plus a margin for the resampler's edges
        self.pad = 64 if self.device_rate == self.info.sample_rate else 256
        self.n_device = math.ceil(w * self.device_rate / self.info.sample_rate) + self.pad
        self.silent_hops = 0
        self.estimates = 0
        self.errors = 0
        self.last_error: str | None = None
        self.latencies_ms: deque[float] = deque(maxlen=64)
        self.times: deque[float] = deque(maxlen=256)

    def window(self) -> np.ndarray | None:
        """The newest model window (model rate, float32 `[window_samples]`), None when silent or unfilled."""
        if self.written() == 0:
            return None
        x = self.read_target(self.n_device)
        if self.device_rate != self.info.sample_rate:
            import soxr

            x = soxr.resample(x, self.device_rate, self.info.sample_rate, quality="HQ")
        w = self.info.window_samples
        # drop the resampler's right edge, keep the newest full window
        edge = round(self.pad * self.info.sample_rate / self.device_rate) // 2 if self.pad > 64 else 0
        x = x[: x.size - edge] if edge else x
        if x.size < w:
            x = np.concatenate([np.zeros(w - x.size, dtype=np.float32), x])
        y = np.ascontiguousarray(x[-w:], dtype=np.float32)
        if rms_dbfs(y) < SILENCE_DBFS:
            return None
        return y

    def step(self) -> bool:
        """One hop: estimate and publish; False when the window was silent (nothing published)."""
        y = self.window()
        if y is None:
            self.silent_hops += 1
            return False
        t0 = time.perf_counter()
        probs, params = self.session.estimate_windows(y[None])
        latency = time.perf_counter() - t0
        est = self.stabiliser.update(probs[0], params[0])
        self.estimates += 1
        self.latencies_ms.append(latency * 1e3)
        self.times.append(time.monotonic())
        self.publish(est, latency)
        return True

    def rate(self, span_s: float = 5.0) -> float:
        """Estimates per second over the last `span_s` seconds."""
        now = time.monotonic()
        recent = [t for t in self.times if now - t <= span_s]
        if len(recent) < 2:
            return 0.0 if not recent else 1.0 / span_s
        return (len(recent) - 1) / max(1e-9, recent[-1] - recent[0]) if recent[-1] > recent[0] else 0.0

    def run(self) -> None:
        next_t = time.monotonic()
        while not self.stop_event.is_set():
            try:
                if self.tick is not None:
                    self.tick()
                self.step()
            except Exception as exc:  # noqa: BLE001 - the worker reports and keeps going
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("analysis failed: %s", self.last_error)
            next_t += self.hop_s
            now = time.monotonic()
            if next_t < now - self.hop_s:  # fell behind (slow inference): do not try to catch up
                next_t = now
            self.stop_event.wait(max(0.0, next_t - now))

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end and wait for it (at most `timeout` s; inference of one window is the bound)."""
        self.stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)


# ------------------------------------------------------------------------------------------------ the estimate slot

#: the estimate slot (realtime.buffers.SLOT_FLOATS float64 values): chain index, probability, latency (s),
#: alternatives (count, indices, probabilities), params (count, normalised row)
MAX_ALTERNATIVES = 8
_S_INDEX, _S_PROB, _S_LATENCY, _S_NALT, _S_ALT, _S_ALTP, _S_NPAR, _S_PARAMS = 0, 1, 2, 3, 4, 12, 20, 21


def write_estimate(seq: np.ndarray, slot: np.ndarray, est: StableEstimate, latency_s: float) -> None:
    """Writer (the analysis process): put `est` into `slot` (float64 [SLOT_FLOATS]) under the sequence lock
    `seq` (int64 [1]: odd while writing)."""
    n_alt = min(len(est.alternative_indices), MAX_ALTERNATIVES)
    n_par = min(len(est.unit_params), SLOT_FLOATS - _S_PARAMS)
    s = int(seq[0])
    s += s & 1  # a writer killed mid-write left it odd: start from the next even value
    seq[0] = s + 1
    slot[_S_INDEX], slot[_S_PROB], slot[_S_LATENCY] = est.chain_index, est.probability, latency_s
    slot[_S_NALT] = n_alt
    for i in range(n_alt):
        slot[_S_ALT + i] = est.alternative_indices[i]
        slot[_S_ALTP + i] = est.alternatives[i][1]
    slot[_S_NPAR] = n_par
    slot[_S_PARAMS : _S_PARAMS + n_par] = est.unit_params[:n_par]
    seq[0] = s + 2


def read_estimate(seq: np.ndarray, slot: np.ndarray, last: int) -> tuple[int, np.ndarray | None]:
    """Reader: (sequence value, a copy of the slot) when an estimate newer than `last` is complete, else
    (last, None) (nothing new, or a write in progress: try again later)."""
    s1 = int(seq[0])
    if s1 == last or s1 & 1 or s1 == 0:
        return last, None
    data = slot.copy()
    if int(seq[0]) != s1:
        return last, None
    return s1, data


def decode_estimate(info: ModelInfo, data: np.ndarray) -> tuple[StableEstimate, float]:
    """(StableEstimate, inference latency in s) from a slot copy (read_estimate)."""
    k = int(data[_S_INDEX])
    n_alt, n_par = int(data[_S_NALT]), int(data[_S_NPAR])
    unit = data[_S_PARAMS : _S_PARAMS + n_par]
    alts = tuple((info.chains[int(data[_S_ALT + i])], float(data[_S_ALTP + i])) for i in range(n_alt))
    est = StableEstimate(chain=info.chains[k], params=tuple((n, dict(p)) for n, p in info.decode(k, unit)),
                         probability=float(data[_S_PROB]), alternatives=alts, changed=False, chain_index=k,
                         unit_params=tuple(float(v) for v in unit),
                         alternative_indices=tuple(int(data[_S_ALT + i]) for i in range(n_alt)))
    return est, float(data[_S_LATENCY])


# ------------------------------------------------------------------------------------------- the analysis process


def _send(sock: socket.socket, message: dict, fds: tuple[int, ...] = ()) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


class AnalysisProcess:
    """Parent side of one analysis process: spawn it (the model loads there at once), attach it to an engine
    buffer block, detach it, notice its death and restart it. Every method is for the audio process's control
    side, never the callback; none blocks for long (spawning is a vfork + exec)."""

    def __init__(self, model_path: str | os.PathLike, providers: str = "auto", threads: int = 1,
                 hysteresis_hops: int = 3, smoothing: float = 0.6, nice: int | None = None) -> None:
        from realtime.sched import ANALYSIS_NICE

        self.init = {"op": "init", "model_path": str(model_path), "providers": providers, "threads": int(threads),
                     "hysteresis_hops": int(hysteresis_hops), "smoothing": float(smoothing),
                     "nice": ANALYSIS_NICE if nice is None else int(nice)}
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.attached: tuple | None = None  # (fd, nbytes, capacity, rate, hop_s) while attached
        self.restarts = 0
        self.spawn()

    def spawn(self) -> None:
        """Start a fresh process (and send it the model to load)."""
        self._end()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "realtime.analysis", str(theirs.fileno())],
                                         pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, close_fds=True)
        finally:
            theirs.close()
        self.sock = mine
        _send(mine, self.init)
        if self.attached is not None:
            self._send_attach()

    @property
    def pid(self) -> int | None:
        """The process id (None when none runs)."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    @property
    def alive(self) -> bool:
        """Whether the process runs (reaps it when it ended)."""
        return self.proc is not None and self.proc.poll() is None

    def _send_attach(self) -> None:
        fd, nbytes, capacity, rate, hop_s = self.attached
        try:
            _send(self.sock, {"op": "attach", "nbytes": nbytes, "capacity": capacity, "rate": rate, "hop_s": hop_s},
                  (fd,))
        except OSError:  # died meanwhile: the next supervise() restarts it
            log.debug("analysis process gone before attach", exc_info=True)

    def attach(self, fd: int, nbytes: int, capacity: int, rate: int, hop_s: float) -> None:
        """Start estimating from the engine block behind `fd` (`nbytes`, rings of `capacity`, `rate` Hz)."""
        self.attached = (int(fd), int(nbytes), int(capacity), int(rate), float(hop_s))
        if not self.alive:
            self.spawn()
        else:
            self._send_attach()

    def detach(self) -> None:
        """Stop estimating (the process stays, model loaded, for the next attach)."""
        self.attached = None
        if self.alive:
            try:
                _send(self.sock, {"op": "detach"})
            except OSError:
                pass

    def supervise(self) -> bool:
        """Restart a dead process while attached; True when it restarted one."""
        if self.attached is not None and not self.alive:
            self.restarts += 1
            log.warning("analysis process ended (exit code %s); restarting it",
                        None if self.proc is None else self.proc.returncode)
            self.spawn()
            return True
        return False

    def _end(self, timeout: float = 2.0) -> None:
        sock, proc, self.sock, self.proc = self.sock, self.proc, None, None
        if sock is not None:
            sock.close()  # the process sees EOF and exits
        if proc is not None and proc.poll() is None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        """End the process (bounded: killed after 2 s)."""
        self.attached = None
        self._end()


def _map(fd: int, nbytes: int):
    import mmap

    try:
        return mmap.mmap(fd, nbytes)
    finally:
        os.close(fd)


def _attach(session: EstimatorSession, stabiliser: EstimateStabiliser, fd: int, req: dict) -> tuple:
    """Map the engine block behind `fd` and build the worker that reads its target ring and writes its slot."""
    buffers = EngineBuffers(req["capacity"], _map(fd, req["nbytes"]), writer=False)
    ring = buffers.rings["target"]
    seq, slot = buffers.header[buffers.EST_SEQ : buffers.EST_SEQ + 1], buffers.estimate_slot
    buffers.header[buffers.A_PID] = os.getpid()
    stabiliser.reset()
    worker = AnalysisWorker(session, req["rate"], ring.read_last, lambda: ring.written,
                            lambda est, lat: write_estimate(seq, slot, est, lat), stabiliser, req["hop_s"])
    return worker, buffers


def _child_main(sock_fd: int) -> int:
    """The analysis process: load the model, then estimate while attached, until the socket closes."""
    logging.basicConfig(level=logging.WARNING, format="fxmatch analysis process: %(levelname)s %(message)s")
    sock = socket.socket(fileno=sock_fd)
    data = sock.recv(65536)
    if not data:
        return 0
    init = json.loads(data)
    from realtime.sched import background

    background(init["nice"], cpus=None)
    session = EstimatorSession(init["model_path"], providers=init["providers"], threads=init["threads"],
                               batch_size=1)
    stabiliser = EstimateStabiliser(session.info, init["hysteresis_hops"], init["smoothing"])
    worker = buffers = None
    next_t = 0.0
    while True:
        if worker is None:
            wait = None
        else:
            now = time.monotonic()
            if now >= next_t:
                try:
                    worker.step()
                except Exception as exc:  # noqa: BLE001 - reported through the block's counter, keeps going
                    buffers.header[buffers.A_ERRORS] += 1
                    log.warning("analysis failed: %s: %s", type(exc).__name__, exc)
                buffers.header[buffers.A_HOPS] += 1
                next_t += worker.hop_s
                now = time.monotonic()
                if next_t < now - worker.hop_s:  # fell behind: do not try to catch up
                    next_t = now
            wait = max(0.0, next_t - now)
        ready, _, _ = select.select([sock], [], [], wait)
        if not ready:
            continue
        msg, fds, _, _ = socket.recv_fds(sock, 65536, 4)
        if not msg:
            return 0  # the audio process closed the socket (or ended)
        req = json.loads(msg)
        worker = buffers = None  # a new attach or a detach: let go of the old block (unmapped with its views)
        if req["op"] == "attach":
            worker, buffers = _attach(session, stabiliser, fds[0], req)
            next_t = time.monotonic()
        else:
            for fd in fds:
                os.close(fd)


if __name__ == "__main__":
    sys.exit(_child_main(int(sys.argv[1])))
