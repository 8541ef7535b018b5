"""`fxmatch bench threads`: the user-facing commands on an idle machine and with one core busy, side by side.

A user's machine always has something else running. Each command (`demo --refine 40`, `capture`, `estimate --dry`
on a bundled example) runs as a process of its own, first with the machine otherwise idle, then beside one process
that spins on a core, alternating so that drift hits both alike; and with fxmatch's default thread settings
(`fxmatch.threads`: OpenMP threads wait passively, onnxruntime does not spin) against `OMP_WAIT_POLICY=ACTIVE`
(spinning workers, the behaviour before). Reports the median wall time of each and the busy/idle ratio; it measures,
it asserts nothing. Needs a machine with at least two cores to mean anything (the busy process takes one).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fxmatch import shipped

#: the bundled example each command works on (a two-effect chain, so the search has work to do)
EXAMPLE = "riff_distortion_delay"
#: the entry point of the console script, run with this interpreter
_FXMATCH = [sys.executable, "-c", "import sys; from fxmatch.cli import main; sys.exit(main())"]


def _spin() -> None:
    """Keep one core busy until killed (the 'something else running' of a user's machine)."""
    while True:
        pass


def timed_commands(out: Path) -> dict[str, list[str]]:
    """name -> fxmatch argv; each writes only under `out`."""
    folder = shipped.DEFAULT_EXAMPLES
    dry, target = str(folder / f"{EXAMPLE}_dry.flac"), str(folder / f"{EXAMPLE}_target.flac")
    return {
        "demo --refine 40": ["demo", "--refine", "40", "-o", str(out / "demo")],
        "capture": ["capture", dry, target, "-o", str(out / "capture.fxpreset.json")],
        "estimate --dry": ["estimate", target, "--dry", dry, "-o", str(out / "estimate.fxpreset.json")],
    }


def time_once(argv: list[str], env: dict[str, str]) -> float:
    """Wall time (s) of one run of `fxmatch argv` (a failure raises, with the command's last line)."""
    t0 = time.perf_counter()
    done = subprocess.run([*_FXMATCH, *argv], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"fxmatch {' '.join(argv[:2])} failed ({done.returncode}): {last}")
    return seconds


def policy_env(policy: str | None) -> dict[str, str]:
    """This process's environment with OMP_WAIT_POLICY set to `policy` (None: unset, fxmatch's own default)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    return env


def run(quick: bool = False, progress: Any = None) -> dict[str, Any]:
    """Median wall time per command x {idle, one busy core} x {fxmatch's default, spinning OpenMP}; ratios
    (`quick`: one run of each instead of three)."""
    repeats = 1 if quick else 3
    settings = {"default (passive waits, no ORT spin)": None, "OMP_WAIT_POLICY=ACTIVE (before)": "ACTIVE"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="fxmatch-bench-threads-") as tmp:
        commands = timed_commands(Path(tmp))
        for name, argv in commands.items():
            time_once(argv, policy_env(None))  # warm the numba cache and the page cache
            for label, policy in settings.items():
                times: dict[str, list[float]] = {"idle": [], "one_core_busy": []}
                for _ in range(repeats):
                    times["idle"].append(time_once(argv, policy_env(policy)))
                    spinner = mp.get_context("spawn").Process(target=_spin, daemon=True)
                    spinner.start()
                    try:
                        times["one_core_busy"].append(time_once(argv, policy_env(policy)))
                    finally:
                        spinner.kill()
                        spinner.join()
                idle, busy = statistics.median(times["idle"]), statistics.median(times["one_core_busy"])
                row = {"command": f"fxmatch {name}", "threads": label, "idle_s": round(idle, 2),
                       "one_core_busy_s": round(busy, 2), "busy_over_idle": round(busy / idle, 2),
                       "runs": repeats}
                rows.append(row)
                if progress is not None:
                    progress(row)
                else:
                    print(f"bench threads: {row['command']}, {label}: idle {idle:.1f} s, one core busy {busy:.1f} s",
                          file=sys.stderr, flush=True)
    return {"benchmark": "threads", "cpu_count": os.cpu_count(), "example": EXAMPLE, "quick": quick,
            "note": "wall time of each command as its own process; one_core_busy: beside a process spinning on one "
                    "core; medians of `runs` alternating idle/busy runs",
            "rows": rows}
