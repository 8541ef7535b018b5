"""Checkpoints of the trainer: written atomically, read with `torch.load(weights_only=True)` by one loader.

This module imports only torch and the core, so `fxmatch train --status` reads a checkpoint without importing the
trainer (its data sources and twins cost seconds and ~150 MB).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from fxmatch.audio_io import atomic_write
from fxmatch.errors import FxmatchInputError, require_file

#: the `format` of every checkpoint fxmatch writes
CHECKPOINT_FORMAT = "fxmatch-checkpoint"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """torch.save to a temporary file in the same folder, then an atomic rename (`fxmatch.audio_io.atomic_write`)."""
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    require: tuple[str, ...] = (), mmap: bool = False) -> dict[str, Any]:
    """Read a checkpoint with `torch.load(weights_only=True)` (the one loader of training, export and evaluate).

    A dict whose `format`, when it names one, is CHECKPOINT_FORMAT, holding every key of `require`; anything else
    (missing file, a folder, an empty or foreign file, a pickle of Python objects) is an FxmatchInputError in one
    line naming the problem. `mmap`: map the file instead of reading it (tensors are read only when touched).
    """
    p = require_file(path, "checkpoint file")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols before failing
            warnings.simplefilter("ignore")
            ckpt = torch.load(p, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for foreign files
        raise FxmatchInputError(f"{p}: not a readable checkpoint ({_load_error(exc)})") from None
    if not isinstance(ckpt, dict):
        raise FxmatchInputError(f"{p}: not an fxmatch checkpoint (holds a {type(ckpt).__name__}, not a dict)")
    if ckpt.get("format", CHECKPOINT_FORMAT) != CHECKPOINT_FORMAT:
        raise FxmatchInputError(f"{p}: not an fxmatch checkpoint (format {ckpt['format']!r})")
    missing = [k for k in require if k not in ckpt]
    if missing:
        raise FxmatchInputError(f"{p}: not a training checkpoint of fxmatch (no {', '.join(missing)})")
    return ckpt


def _load_error(exc: Exception) -> str:
    """A short reason for a failed `torch.load(weights_only=True)` (torch's own text runs over many lines)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    for line in text.splitlines():
        if "Unsupported global" in line:
            what = line.split("Unsupported global:", 1)[-1].strip().removeprefix("GLOBAL").strip().split()
            return "it holds Python objects, not only tensors and plain values" + (f": {what[0]}" if what else "")
    if "weights_only" in text or "Weights only" in text or isinstance(exc, (EOFError, ValueError)):
        return "not a PyTorch checkpoint of tensors and plain values"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:160]
