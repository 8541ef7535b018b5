"""Shared fixtures: deterministic test audio."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fxmatch import testsignals


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def make_signal():
    """Factory: make_signal(kind, sample_rate, seconds=0.5, seed=0, channels=1) -> float32 [channels, samples]."""

    def _make(kind: str, sample_rate: float = 44100, seconds: float = 0.5, seed: int = 0, channels: int = 1):
        return testsignals.make(kind, sample_rate, seconds, seed=seed, channels=channels)

    return _make
