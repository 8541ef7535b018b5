"""fxmatch.layout: one parameter layout for the vocabulary, an exported model's runtime and capture's search."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fxmatch.effects import get_spec
from fxmatch.effects.spec import EffectSpec, ParamSpec
from fxmatch.inference import ModelInfo
from fxmatch.layout import GAIN_RANGE_DB, ParamLayout
from fxmatch.vocabulary import ChainVocabulary


def test_the_vocabulary_and_an_exported_models_runtime_read_one_layout():
    vocab = ChainVocabulary.default()
    meta = {"fxmatch_format": {"format": "fxmatch-onnx-model", "version": 1}, "sample_rate": 16000,
            "analysis_window": {"samples": 8000}, "vocabulary": vocab.to_dict(), "model": {"name": "m"}}
    info = ModelInfo.from_metadata({k: json.dumps(v) for k, v in meta.items()})
    assert info.layout.names == vocab.layout.names and info.n_params == vocab.n_params == 25
    assert [(s.name, s.slice) for s in info.effects] == [(n, vocab.param_slice(n)) for n in vocab.effect_names]
    u = np.random.default_rng(0).uniform(-0.2, 1.2, size=vocab.n_params)  # values outside [0, 1] are clipped
    for k in (7, 40, 63):
        assert info.decode(k, u) == vocab.decode(k, u)


def test_a_layout_of_chains_puts_the_default_effects_first_and_the_output_level_last():
    layout = ParamLayout.of_chains([("Distortion", "LowpassFilter"), ("Compressor",), ("HighpassFilter",)], True)
    assert layout.names == ("Compressor", "Distortion", "HighpassFilter", "LowpassFilter")
    assert layout.param_slice("Distortion") == slice(4, 5) and layout.n_params == 7
    assert layout.gain == 7 and layout.width == 8
    assert ParamLayout(layout.effects).gain is None and ParamLayout(layout.effects).width == 7
    assert layout.gain_db(0.5) == 0.0 and layout.gain_db(1.0) == GAIN_RANGE_DB
    with pytest.raises(KeyError, match="Reverb"):
        layout.param_slice("Reverb")
    with pytest.raises(ValueError, match="twice"):
        ParamLayout((get_spec("Delay"), get_spec("Delay")))


def test_encode_and_decode_are_inverse_within_bounds_and_limits():
    layout = ParamLayout.of_chains([("Compressor", "Delay")], output_level=True)
    params = {"Compressor": {"threshold_db": -20.0, "ratio": 4.0, "attack_ms": 5.0, "release_ms": 100.0},
              "Delay": {"delay_seconds": 0.8, "feedback": 0.2, "mix": 0.3}}
    u = layout.encode(("Compressor", "Delay"), params, np.full(layout.width, 0.5))
    assert u[layout.gain] == 0.5  # what the chain does not set is kept
    decoded = dict(layout.decode(("Compressor", "Delay"), u))
    for name, values in params.items():
        assert decoded[name] == pytest.approx(values)
    inside = layout.encode(("Delay",), params, u, bounds=(0.02, 0.98))
    assert inside[layout.param_slice("Delay")][0] == 0.98  # the longest delay kept off the end
    # a value beyond [0, 1] decodes to the training range's end
    u[layout.param_slice("Delay").start] = 1.5
    assert dict(layout.decode(("Delay",), u))["Delay"]["delay_seconds"] == get_spec("Delay").param("delay_seconds").maximum


def test_within_limits_keeps_a_log_params_end_inside_its_range_despite_rounding():
    spec = EffectSpec("Ratio", (ParamSpec("ratio", "", 1.5, 20.0, "log"),))  # no pedalboard limits: the training range
    layout = ParamLayout((spec,))
    assert layout.decode(("Ratio",), [1.0])[0][1]["ratio"] > 20.0  # exp(log 1.5 + log(20 / 1.5)) rounds up
    assert layout.decode(("Ratio",), [1.0], within_limits=True)[0][1]["ratio"] == 20.0


def test_a_chains_own_layout_keeps_the_chains_order():
    """`of_chain`: the chain's effects in its order (the tone match's vector), unlike `of_chains`' vocabulary order."""
    chain = ("Reverb", "Compressor")
    own = ParamLayout.of_chain(chain)
    assert own.names == chain and own.param_slice("Reverb").start == 0 and own.gain is None
    assert ParamLayout.of_chains([chain]).names == ("Compressor", "Reverb")


@pytest.mark.parametrize("gain_db", [-GAIN_RANGE_DB, -6.02, 0.0, 9.5, GAIN_RANGE_DB])
def test_gain_unit_inverts_gain_db(gain_db):
    layout = ParamLayout.of_chains([()], output_level=True)
    assert layout.gain_db(layout.gain_unit(gain_db)) == pytest.approx(gain_db, abs=1e-12)
    assert layout.gain_unit(0.0) == 0.5 and layout.gain_unit(np.array([GAIN_RANGE_DB]))[0] == 1.0
