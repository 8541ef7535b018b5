"""training.variants: other implementations of each effect family, the same labels and levels."""

from __future__ import annotations

import numpy as np
import pytest

from fxmatch.effects import get_spec
from fxmatch.errors import FxmatchInputError
from fxmatch.vocabulary import ChainVocabulary
from training.config import config_from_dict
from training.data import TargetDataset, render_pedalboard
from training.sources import SynthSource
from training.variants import VARIANTS, render_variants

RATE = 44100


def _guitarish(seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(5)
    t = np.arange(round(seconds * RATE)) / RATE
    env = np.exp(-3 * (t % 0.5))
    tone = sum(np.sin(2 * np.pi * 196 * k * t) / k for k in range(1, 6))
    return (0.1 * env * tone + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_variant_sounds_different_at_pedalboards_level(name):
    x = _guitarish()
    rng = np.random.default_rng(11)
    params = get_spec(name).sample(np.random.default_rng(3))
    reference, used_ref = render_variants([name], [params], x, RATE, rng, share=0.0)
    vocab = ChainVocabulary.default()
    assert used_ref == ["pedalboard"]
    assert np.array_equal(reference, render_pedalboard(vocab, [name], [params], x, RATE))
    for seed in range(3):
        y, used = render_variants([name], [params], x, RATE, np.random.default_rng(seed), share=1.0)
        assert used == ["variant"] and y.dtype == np.float32 and np.all(np.isfinite(y))
        rms = lambda v: np.sqrt(np.mean(v.astype(np.float64) ** 2))
        assert rms(y) == pytest.approx(rms(reference), rel=1e-3)
        assert np.max(np.abs(y - reference)) > 1e-3 * np.max(np.abs(reference))  # not pedalboard's sound


def test_effects_without_a_variant_stay_pedalboards():
    x = _guitarish(0.3)
    params = [{"cutoff_frequency_hz": 2000.0}, {"gain_db": -3.0}]
    _, used = render_variants(["LowpassFilter", "Gain"], params, x, RATE, np.random.default_rng(0), share=1.0)
    assert used == ["pedalboard", "pedalboard"]


def test_dataset_variants_are_reproducible_and_labelled_as_drawn():
    vocab = ChainVocabulary.default()
    source = SynthSource(sample_rate=RATE, clip_seconds=0.5, seed=1)
    plain = TargetDataset(source, vocab, seed=4, length=20)
    mixed = TargetDataset(source, vocab, seed=4, length=20, variant_share=1.0)
    differs = 0
    for i in range(20):
        a, b, c = plain.example(i), mixed.example(i), mixed.example(i)
        assert a["chain"] == b["chain"] and a["units"] == b["units"]  # the labels do not change
        assert np.array_equal(b["y"], c["y"])  # reproducible from (seed, index)
        differs += not np.allclose(a["y"], b["y"], atol=1e-4)
    assert differs >= 10  # chains of varied effects sound different
    assert mixed.describe()["variant_share"] == 1.0


def test_config_takes_a_share_for_pedalboard_only():
    assert config_from_dict({"variant_share": 0.3}).variant_share == 0.3
    with pytest.raises(FxmatchInputError, match="variant_share"):
        config_from_dict({"variant_share": 1.5})
    with pytest.raises(FxmatchInputError, match="variant_share"):
        config_from_dict({"variant_share": 0.3, "renderer": "twins"})
