"""CPU threads of the numeric libraries on a shared machine: OpenMP (torch, numba) and onnxruntime.

A user's machine always has something else running. OpenMP's worker threads (torch's intra-op pool and numba's
`omp` threading layer) busy-wait at the end of each parallel region by default; when one of them has no core, every
region waits for it to be scheduled again, and the many short parallel kernels of a chain search or a refine run
2-8x slower (measured: `fxmatch demo --refine 40` 10.6 s idle, 22.8 s with one busy core on two; 12.7 s and 14.6 s
with passive waiting; `fxmatch bench threads` measures it again). So:

* `prefer_passive_waiting` sets `OMP_WAIT_POLICY=PASSIVE` unless the user set it; it must run before torch or numba
  loads the OpenMP runtime, which is why `fxmatch/__init__.py` calls it (every entry point imports `fxmatch` first).
* `set_cpu_threads(n)` caps torch's and numba's threads for the calling thread (numba's setting is per thread, so a
  worker thread calls it itself); `--threads` of `estimate`, `capture` and `demo` goes here and to onnxruntime.
* onnxruntime's own pool spins too: `fxmatch.inference` turns its spinning off (`ORT_NO_SPIN_CONFIG`).
"""

from __future__ import annotations

import os

#: OpenMP's wait policy variable and the value fxmatch sets when the user has not chosen one
WAIT_POLICY_ENV = "OMP_WAIT_POLICY"
WAIT_POLICY = "PASSIVE"
#: onnxruntime session config entries that stop its intra-op (and inter-op) threads from spinning while idle
ORT_NO_SPIN_CONFIG = {"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}


def prefer_passive_waiting() -> None:
    """Let OpenMP workers sleep instead of spin while they wait (unless `OMP_WAIT_POLICY` is set to a value)."""
    if not os.environ.get(WAIT_POLICY_ENV, "").strip():
        os.environ[WAIT_POLICY_ENV] = WAIT_POLICY


def set_cpu_threads(threads: int | None) -> None:
    """Cap torch's and numba's CPU threads at `threads` for the calling thread (None: leave the defaults)."""
    if threads is None:
        return
    n = max(1, int(threads))
    import numba
    import torch

    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
