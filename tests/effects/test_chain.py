import numpy as np
import torch

from fxmatch import testsignals
from fxmatch.effects import DEFAULT_EFFECTS, EFFECT_NAMES, KNOWN_EFFECTS, get_spec
from fxmatch.effects.chain import Chain
from fxmatch.effects.fidelity import compare


def test_full_chain_twin_follows_pedalboard_chain():
    rng = np.random.default_rng(7)
    chain = Chain(EFFECT_NAMES)
    x = testsignals.make("pluck", 44100, 1.0, seed=3, channels=2)
    snrs = []
    for _ in range(3):
        params = [e.spec.sample(rng) for e in chain.effects]
        snrs.append(compare(EFFECT_NAMES, params, x, 44100)["snr_db"])
    # Errors of the modulated effects (>= 20 dB each) compound through the chain; the chain must stay close.
    assert np.median(snrs) >= 12.0, snrs


def test_full_chain_gradients_reach_every_parameter():
    chain = Chain(EFFECT_NAMES)
    x = torch.as_tensor(testsignals.make("noise", 44100, 0.5, seed=1))[None].repeat(2, 1, 1)
    # Not 0.5 (PeakFilter gain 0 dB: cutoff and q rightly do nothing); 0.2 puts the Compressor threshold
    # (-33 dB) under the noise and two echoes of the delay (0.2 s, so feedback matters) inside the 0.5 s signal.
    unit = torch.full((2, chain.n_params), 0.2, requires_grad=True)
    y = chain.process_normalised(x, unit, 44100)
    y.square().mean().backward()
    assert torch.isfinite(unit.grad).all()
    assert (unit.grad.abs().sum(0) > 0).all(), unit.grad


def test_chain_rejects_repeated_effects():
    try:
        Chain(["Distortion", "Distortion"])
    except ValueError as exc:
        assert "at most once" in str(exc)
    else:
        raise AssertionError("expected ValueError")


def test_every_twin_is_registered_in_canonical_order_and_the_default_vocabulary_is_unchanged():
    from fxmatch.vocabulary import ChainVocabulary

    assert KNOWN_EFFECTS == ("Compressor", "Distortion", "LowpassFilter", "HighpassFilter", "PeakFilter", "Chorus",
                             "Phaser", "Delay", "Reverb", "Gain")
    assert EFFECT_NAMES == DEFAULT_EFFECTS == tuple(n for n in KNOWN_EFFECTS if n in DEFAULT_EFFECTS)
    assert len(DEFAULT_EFFECTS) == 7
    vocab = ChainVocabulary.default()
    assert vocab.effect_names == DEFAULT_EFFECTS and vocab.n_chains == 64
    for name in KNOWN_EFFECTS:
        assert get_spec(name).name == name


def test_drive_tone_and_level_chain_follows_pedalboard():
    """A drive with its tone stage, a low cut and an output level: the chain issue 26 asks to express."""
    names = ["Distortion", "LowpassFilter", "HighpassFilter", "Gain"]
    x = testsignals.make("pluck", 44100, 0.5, seed=5, channels=2)
    params = [{"drive_db": 25.0}, {"cutoff_frequency_hz": 3000.0}, {"cutoff_frequency_hz": 120.0}, {"gain_db": -6.0}]
    assert compare(names, params, x, 44100)["snr_db"] >= 60.0
    chain = Chain(names)
    unit = torch.full((2, chain.n_params), 0.3, requires_grad=True)
    chain.process_normalised(torch.as_tensor(x)[None].repeat(2, 1, 1), unit, 44100).square().mean().backward()
    assert torch.isfinite(unit.grad).all() and (unit.grad.abs().sum(0) > 0).all(), unit.grad
