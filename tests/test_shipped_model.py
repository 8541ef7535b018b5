"""The shipped model file itself: it loads, carries its contract, decodes to params in range, estimates the bundled
examples plausibly, names little on real recordings nobody processed, and the weights shipped to continue training
from (models/fxmatch-default-v7.pt) are its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fxmatch import shipped
from fxmatch.effects import get_spec
from fxmatch.inference import EstimatorSession

SHIPPED_WEIGHTS = shipped.DEFAULT_MODEL.parent / "fxmatch-default-v7.pt"
REAL_RECORDINGS = Path("/usr/share/sonic-pi/samples")


@pytest.fixture(scope="module")
def session() -> EstimatorSession:
    return EstimatorSession(shipped.default_model(), providers="cpu", threads=1)


def test_the_shipped_model_loads_with_its_contract(session):
    info = session.info
    assert info.sample_rate == 44100 and info.n_chains == 64 and () in info.chains
    assert info.window_samples == 2 * 44100
    assert info.calibrated and 0.5 < info.chain_temperature < 2.0
    assert [e.name for e in info.effects] == ["Compressor", "Distortion", "PeakFilter", "Chorus", "Phaser", "Delay",
                                              "Reverb"]
    assert info.presence_threshold == 0.7  # chosen on a validation set (models/README.md, "the decision rule")


@pytest.mark.parametrize(("example", "must_hold"), [
    ("guitar_distortion_target.flac", "Distortion"),
    ("riff_distortion_delay_target.flac", "Distortion"),
])
def test_the_distortion_examples_are_heard_as_distortion_with_params_in_range(session, example, must_hold):
    result = session.estimate_file(shipped.default_examples() / example, top=3)
    assert must_hold in result.best.chain, result.best
    assert [name for name, _ in result.best.params] == list(result.best.chain)
    for name, params in result.best.params:
        spec = get_spec(name)
        for p in spec.params:
            assert p.minimum <= params[p.name] <= p.maximum, (name, p.name, params[p.name])
    assert 0 < result.best.probability <= 1 and result.n_windows >= 1


def test_the_clean_example_is_heard_as_no_effect(session):
    """On a clean recording the model names no effect (v7: "no effect" at p = 0.64; v6 heard a slow Phaser there,
    unsure; v5 named an inaudible +0.9 dB PeakFilter, v4 no effect)."""
    result = session.estimate_file(shipped.default_examples() / "keys_clean_target.flac")
    assert result.best.chain == (), result.best.label


def test_real_recordings_nobody_processed_get_few_effects_named(session):
    """On the 37 unprocessed clips of the real-recording held-out set (Sonic Pi's samples, never trained on) the
    model names 0.89 effects per clip (v6: 2.92, models/README.md); this holds it below 1.2 (the issue's must is 0.5,
    not met yet)."""
    from training.real_set import RecordingClips, recordings

    clips = RecordingClips(recordings(REAL_RECORDINGS))
    named = [len(session.estimate_array(clips.clip(i), clips.sample_rate, top=1).best.chain)
             for i in range(clips.n_clips)]
    assert clips.n_clips == 37
    assert np.mean(named) < 1.2, named


def test_the_shipped_weights_are_the_onnx_models_and_load_as_a_starting_point(session):
    import torch

    from export.onnx_export import load_checkpoint as load_encoder
    from training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(SHIPPED_WEIGHTS, require=("model", "model_config"))  # what init_from needs
    assert ckpt["format"] == "fxmatch-checkpoint" and ckpt["step"] > 0
    encoder, _ = load_encoder(SHIPPED_WEIGHTS)
    rng = np.random.default_rng(3)
    audio = (0.1 * rng.standard_normal((2, session.info.window_samples))).astype(np.float32)
    logits, params = session.run(audio)
    with torch.no_grad():
        t_logits, t_params = encoder(torch.from_numpy(audio))
    assert np.allclose(logits, t_logits.numpy(), atol=1e-3) and np.allclose(params, t_params.numpy(), atol=1e-4)
