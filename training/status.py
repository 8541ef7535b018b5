"""`fxmatch train --status OUT`: where a training run stands, read from its folder (never writes to it).

Reads `log.csv` (step, losses, examples/s), `wins.json` (win counts -> entropy in bits), `checkpoint.pt` (total
steps, batch size and world size from its config, memory-mapped so only the small entries are read) and `train.pid`
(written by scripts/train-bg.sh: is the process alive).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from fxmatch.errors import FxmatchInputError

#: log rows averaged for examples/s and the ETA
RATE_ROWS = 5
RUN_FILES = ("checkpoint.pt", "log.csv", "train.pid", "wins.json")


def read_log(path: Path) -> list[dict[str, float]]:
    """Rows of `log.csv` as floats, as the run's history now stands.

    Rows a resumed run repeated (steps logged after the checkpoint it resumed from) keep only their latest copy,
    and a line cut short by a kill is skipped.
    """
    rows: list[dict[str, float]] = []
    try:
        with path.open(newline="") as fh:
            for raw in csv.DictReader(fh):
                try:
                    row = {k: float(v) for k, v in raw.items() if k is not None and v not in (None, "")}
                except ValueError:
                    continue
                if "step" not in row or "examples_per_s" not in row:
                    continue
                while rows and rows[-1]["step"] >= row["step"]:
                    rows.pop()
                rows.append(row)
    except FileNotFoundError:
        return []
    return rows


def win_entropy_bits(counts: list[int]) -> float | None:
    """Entropy (bits) of the win distribution; None when nothing has won yet."""
    total = sum(counts)
    if total <= 0:
        return None
    return float(-sum(c / total * math.log2(c / total) for c in counts if c > 0)) + 0.0


def process_alive(pid: int) -> bool:
    """True when `pid` runs and is not a zombie (and, where /proc tells, is a training command)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X") and b"train" in cmdline


def _read_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint's step, elapsed time and run config (memory-mapped: tensors are not read); None if absent.

    Read by training.checkpoint.load_checkpoint with `mmap=True` (that module imports only torch and the core, not
    the trainer's data sources and twins). The trainer replaces checkpoint.pt atomically (temp file, rename), so this
    reads the old file or the new one, never half of either.
    """
    if not path.is_file():
        return None
    from training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, require=("step", "elapsed_s", "train_config"), mmap=True)
    return {"step": int(ckpt["step"]), "elapsed_s": float(ckpt["elapsed_s"]), "config": dict(ckpt["train_config"]),
            "world_size": int(ckpt.get("world_size", 1))}


def run_status(out: str | Path, now: float | None = None) -> dict[str, Any]:
    """The JSON-ready status of the run in folder `out`; FxmatchInputError (exit 2) when it is not a run."""
    out = Path(out)
    if not out.exists():
        raise FxmatchInputError(f"{out}: no such folder")
    if not out.is_dir():
        raise FxmatchInputError(f"{out}: not a folder")
    if not any((out / name).is_file() for name in RUN_FILES):
        raise FxmatchInputError(f"{out}: not a training run (no {', '.join(RUN_FILES)})")
    now = time.time() if now is None else now
    rows = read_log(out / "log.csv")
    ckpt_path = out / "checkpoint.pt"
    ckpt = _read_checkpoint(ckpt_path)
    config = ckpt["config"] if ckpt else {}
    last = rows[-1] if rows else {}
    non_finite = sorted(k for k, v in last.items() if not math.isfinite(v))  # a diverged run logs nan
    last = {k: v for k, v in last.items() if k not in non_finite}

    pid: int | None = None
    try:
        pid = int((out / "train.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        pass
    alive = process_alive(pid) if pid is not None else None

    steps = int(config["steps"]) if "steps" in config else None
    step = int(max(last.get("step", 0), ckpt["step"] if ckpt else 0))
    recent = [r for r in rows[-RATE_ROWS:] if math.isfinite(r["examples_per_s"])]
    examples_per_s = sum(r["examples_per_s"] for r in recent) / len(recent) if recent else None
    per_step = int(config.get("batch_size", 0)) * (ckpt["world_size"] if ckpt else 1)
    eta_s = None
    if steps is not None and examples_per_s and per_step:
        eta_s = max(0, steps - step) * per_step / examples_per_s

    wins: list[int] = []
    try:
        wins = [int(n) for n in json.loads((out / "wins.json").read_text())["wins"].values()]
    except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
        pass
    entropy = win_entropy_bits(wins)

    finished = steps is not None and step >= steps and (out / "summary.json").is_file()
    if finished:
        state = "finished"
    elif alive:
        state = "running"
    elif alive is None:
        state = "unknown (no train.pid)"
    else:
        state = "stopped"
    return {
        "out": str(out), "state": state, "pid": pid, "alive": alive,
        "name": config.get("name"), "mode": config.get("mode"),
        "step": step, "steps": steps, "fraction": step / steps if steps else None,
        "examples_per_s": examples_per_s, "rate_rows": len(recent),
        "loss": last.get("loss"), "fit": last.get("fit"), "ce": last.get("ce"), "non_finite": non_finite,
        "temperature": last.get("temperature"), "lr": last.get("lr"), "elapsed_s": last.get("elapsed_s"),
        "win_entropy_bits": entropy, "win_entropy_max_bits": math.log2(len(wins)) if wins else None,
        "n_chains": len(wins) or None,
        "eta_s": 0.0 if finished else eta_s,
        "checkpoint_step": ckpt["step"] if ckpt else None,
        "checkpoint_age_s": now - ckpt_path.stat().st_mtime if ckpt else None,
    }


def format_duration(seconds: float | None) -> str:
    """`3725.0` -> '1 h 2 min'; '?' for None."""
    if seconds is None:
        return "?"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min {int(seconds % 60)} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


def _num(value: float | None, fmt: str = ".4f") -> str:
    return "?" if value is None else format(value, fmt)


def format_status(s: dict[str, Any]) -> str:
    """The status as a few human-readable lines."""
    pid = f"pid {s['pid']}, " if s["pid"] is not None else ""
    alive = {True: "alive", False: "not running", None: "no train.pid"}[s["alive"]]
    head = f"{s['out']}: {s['state']} ({pid}{alive})"
    if s["name"]:
        head += f", config {s['name']} ({s['mode']})"
    total = "?" if s["steps"] is None else str(s["steps"])
    pct = f" ({100 * s['fraction']:.1f} %)" if s["fraction"] is not None else ""
    lines = [head, f"step         {s['step']} / {total}{pct}",
             f"examples/s   {_num(s['examples_per_s'], '.1f')} (mean of the last {s['rate_rows']} log rows)",
             f"loss         {_num(s['loss'])}   fit {_num(s['fit'])}   ce {_num(s['ce'])}"
             + (f"   (not finite: {', '.join(s['non_finite'])})" if s["non_finite"] else "")]
    if s["win_entropy_bits"] is not None:
        lines.append(f"win entropy  {s['win_entropy_bits']:.2f} bits (max {s['win_entropy_max_bits']:.2f}, "
                     f"{s['n_chains']} chains)")
    else:
        lines.append("win entropy  ? (no wins.json yet)")
    lines.append(f"ETA          {'done' if s['state'] == 'finished' else format_duration(s['eta_s'])}")
    if s["checkpoint_step"] is not None:
        lines.append(f"checkpoint   step {s['checkpoint_step']}, written {format_duration(s['checkpoint_age_s'])} ago")
    else:
        lines.append("checkpoint   none yet")
    return "\n".join(lines)
