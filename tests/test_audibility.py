"""fxmatch.audibility: how much each effect changes a chain's output, and the audibly-right rule."""

from __future__ import annotations

import math

import numpy as np

from fxmatch import audibility, testsignals

SR = 16000


def test_removal_db_ranks_effects_by_how_much_they_change_the_output():
    x = testsignals.make("chord", SR, 1.0, seed=2)  # [channels, samples]
    chain = [("Compressor", {"threshold_db": 0.0, "ratio": 4.0, "attack_ms": 5.0, "release_ms": 100.0}),
             ("Delay", {"delay_seconds": 0.2, "feedback": 0.3, "mix": 0.4}),
             ("PeakFilter", {"cutoff_frequency_hz": 1000.0, "gain_db": 0.3, "q": 1.0})]
    y = audibility.render_chain(chain, x, SR)
    assert y.shape == x.shape and y.dtype == np.float32
    removal = audibility.removal_db(chain, x, y, SR)
    assert removal["Compressor"] == math.inf  # a 0 dB threshold above a 0.5-peak signal: the output is unchanged
    assert removal["Delay"] < 15.0 and 30.0 < removal["PeakFilter"] < 50.0
    assert audibility.audible(removal) == ("Delay",)
    assert audibility.audible(removal, threshold_db=40.0) == ("Delay", "PeakFilter")


def test_audibly_right_lets_inaudible_true_effects_be_named_or_not():
    true, heard = ("Compressor", "PeakFilter", "Delay"), ("Delay",)
    assert audibility.audibly_right(true, heard, ("Delay",))
    assert audibility.audibly_right(true, heard, ("Compressor", "Delay"))
    assert audibility.audibly_right(true, heard, true)
    assert not audibility.audibly_right(true, heard, ("Compressor",))  # the audible Delay is missing
    assert not audibility.audibly_right(true, heard, ("Delay", "Reverb"))  # Reverb is not in the chain


def test_an_empty_chain_renders_a_copy():
    x = testsignals.make("pluck", SR, 0.2, seed=1)[0]
    y = audibility.render_chain([], x, SR)
    assert np.array_equal(y, x) and y is not x
