"""Fixtures for the training tests: a tiny vocabulary of twins that exist, short clips, one torch thread."""

from __future__ import annotations

import pytest
import torch

from fxmatch.effects import get_spec
from fxmatch.vocabulary import ChainVocabulary
from training.sources import SynthSource

TINY_EFFECTS = ("Compressor", "Distortion")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_vocab() -> ChainVocabulary:
    """Compressor and Distortion, chains of 0 to 2 effects: (), (C), (D), (C, D)."""
    return ChainVocabulary(effects=tuple(get_spec(n) for n in TINY_EFFECTS), max_length=2)


@pytest.fixture
def tiny_source() -> SynthSource:
    return SynthSource(seed=0, sample_rate=16000, clip_seconds=0.25)
