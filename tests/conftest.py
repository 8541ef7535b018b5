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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`gpu` tests skip with a reason where torch sees no CUDA device (the default run deselects them anyway; a run
    with its own `-m`, e.g. `-m "not slow"`, replaces that deselection)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (no CUDA device here)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
