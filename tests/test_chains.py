"""Chain labels and the chain-wide output level (fxmatch.chains, Preset's output level)."""

from __future__ import annotations

import numpy as np
import pedalboard
import pytest

from fxmatch.chains import chain_label, split_output_level, with_output_level
from fxmatch.preset import Preset


def test_labels_name_effects_in_order_and_the_empty_chain():
    assert chain_label(["Compressor", "Reverb"]) == "Compressor -> Reverb"
    assert chain_label([]) == "no effect"
    assert chain_label(["Distortion"], output_db=-3.04) == "Distortion, output -3.0 dB"
    assert chain_label([], output_db=0.01) == "no effect"


def test_output_level_is_a_trailing_gain_only():
    chain = [("Gain", {"gain_db": 2.0}), ("Distortion", {"drive_db": 10.0})]
    assert split_output_level(chain) == (chain, 0.0)
    out = with_output_level(chain, -4.5)
    assert out[-1] == ("Gain", {"gain_db": -4.5})
    assert split_output_level(out)[1] == -4.5
    # setting it again replaces it; an inaudible level removes it
    assert with_output_level(out, 1.0)[-1] == ("Gain", {"gain_db": 1.0})
    assert with_output_level(out, 0.0) == [(n, dict(p)) for n, p in chain]


def test_preset_output_level_renders_through_pedalboard():
    preset = Preset.from_chain([("Distortion", {"drive_db": 12.0})]).with_output_level(-6.0)
    assert preset.chain_names == ["Distortion"]
    assert preset.output_level_db == pytest.approx(-6.0)
    assert preset.label == "Distortion, output -6.0 dB"
    x = np.random.default_rng(3).standard_normal((1, 4410)).astype(np.float32) * 0.1
    loud = pedalboard.Pedalboard([pedalboard.Distortion(drive_db=12.0)])(x, 44100)
    quiet = preset.to_pedalboard(44100)(x, 44100)
    assert np.allclose(quiet, loud * 10 ** (-6.0 / 20), atol=1e-5)


def test_parsimonious_choice_takes_the_shortest_chain_within_the_tolerance():
    from fxmatch.chains import parsimonious_choice

    lengths, scores = [3, 1, 2, 0], [0.50, 0.54, 0.52, 0.90]
    assert parsimonious_choice(lengths, scores, tolerance=0.10) == 1  # 0.54 <= 0.55: one effect beats three
    assert parsimonious_choice(lengths, scores, tolerance=0.05) == 2  # 0.54 > 0.525, 0.52 within
    assert parsimonious_choice(lengths, scores, tolerance=0.0) == 0
    assert parsimonious_choice([1, 1], [0.3, 0.3], tolerance=0.0) == 0  # a tie goes to the earlier
    assert parsimonious_choice([2, 1], [0.3, 0.3 + 1e-10], tolerance=0.0, slack=1e-9) == 1
