"""Tensor helpers shared by the twins (torch; the specs in `fxmatch.effects.spec` stay torch-free)."""

from __future__ import annotations

from typing import Any

import torch


def as_batch_param(value: Any, batch: int, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a float or `[batch]` tensor parameter to a `[batch]` tensor on `like`'s device and dtype."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        t = t.expand(batch)
    return t.reshape(batch)
