"""Deterministic tests of the engine's block processing (no stream: prepare_offline, then blocks by hand through
tests.realtime.engine_hooks)."""

import numpy as np
import pedalboard as pb
import pytest

from fxmatch.errors import FxmatchInputError
from realtime.engine import EngineConfig, LiveEngine
from tests.realtime.engine_hooks import HookedEngine

RATE = 48000
CHAIN = (("Compressor", {"threshold_db": -25.0, "ratio": 4.0, "attack_ms": 5.0, "release_ms": 100.0}),
         ("Chorus", {"rate_hz": 1.0, "depth": 0.5, "centre_delay_ms": 7.0, "feedback": 0.2, "mix": 0.5}),
         ("Reverb", {"room_size": 0.5, "damping": 0.5, "wet_level": 0.3, "dry_level": 0.8}))


def _engine(tiny_model, mode="capture", **kw):
    cfg = EngineConfig(model_path=tiny_model, mode=mode, providers="cpu", loudness_match=False, **kw)
    return HookedEngine(cfg)


def _blocks(x, block=256):
    for i in range(0, x.shape[0] - block + 1, block):
        yield x[i : i + block]


def test_capture_mode_matched_equals_offline_pedalboard(tiny_model, make_signal):
    engine = _engine(tiny_model)
    engine.set_chain(CHAIN)
    engine.prepare_offline(RATE)
    engine.set_ab("matched")
    dry = make_signal("chord", RATE, 1.0)[0] * 0.3
    target = make_signal("noise", RATE, 1.0)[0] * 0.1
    frames = 256 * (dry.size // 256)
    out = np.concatenate([engine.process_block(b) for b in _blocks(np.stack([dry, target], axis=1))])
    matched = engine.recent_audio("matched", frames)
    primed = np.concatenate([np.zeros(256, np.float32), dry[:frames]])
    offline = pb.Pedalboard([getattr(pb, n)(**p) for n, p in CHAIN])(primed[None], RATE)[0][256:]
    np.testing.assert_array_equal(matched, offline)
    np.testing.assert_array_equal(out[:, 0], offline)  # the matched position, quiet: no limiting, no gain
    np.testing.assert_array_equal(engine.recent_audio("target", frames), target[:frames])
    assert engine.current_chain() == CHAIN


def test_injected_nan_mutes_one_block_and_recovers(tiny_model, make_signal):
    engine = _engine(tiny_model)
    engine.set_chain((("Delay", {"delay_seconds": 0.05, "feedback": 0.5, "mix": 0.5}),))
    engine.prepare_offline(RATE)
    dry = make_signal("chord", RATE, 1.0)[0] * 0.3
    x = np.stack([dry, dry], axis=1)
    outs = []
    for k, b in enumerate(_blocks(x)):
        if k == 20:
            engine.inject_fault("nan")
        outs.append(engine.process_block(b)[:, 0])
    out = np.stack(outs)
    assert np.all(np.isfinite(out))
    assert np.all(out[20] == 0.0)  # muted within the block that went bad
    assert np.max(np.abs(out[22:])) > 0.05  # and playing again (from the clean spare chain)
    assert engine.telemetry().safety_trips == 1
    matched = engine.recent_audio("matched", out.size)
    assert np.all(np.isfinite(matched))  # the poisoned delay line never echoes NaN


def test_runaway_output_trips_and_limiter_holds_the_ceiling(tiny_model):
    engine = _engine(tiny_model)
    engine.set_chain((("PeakFilter", {"cutoff_frequency_hz": 200.0, "gain_db": 60.0, "q": 1.0}),))
    engine.prepare_offline(RATE)
    t = np.arange(256 * 40) / RATE
    x = np.stack([0.5 * np.sin(2 * np.pi * 200 * t)] * 2, axis=1).astype(np.float32)
    out = np.concatenate([engine.process_block(b)[:, 0] for b in _blocks(x)])
    assert engine.telemetry().safety_trips > 0
    assert np.max(np.abs(out)) < 1.0


def test_analyse_mode_has_no_output_and_records_the_target(tiny_model, make_signal):
    engine = _engine(tiny_model, mode="analyse", target_channel=0)
    engine.prepare_offline(RATE)
    x = make_signal("chord", RATE, 0.5)[0][:, None]
    for b in _blocks(x):
        assert engine.process_block(b) is None
    np.testing.assert_array_equal(engine.recent_audio("target", 256 * 10), x[256 * (x.shape[0] // 256 - 10):256 * (x.shape[0] // 256), 0])


@pytest.mark.parametrize("kw, match", [
    ({"mode": "live"}, "mode"),
    ({"block_frames": 3}, "block_frames"),
    ({"mode": "reference"}, "target file"),
    ({"mode": "capture", "dry_channel": 1, "target_channel": 1}, "two different"),
    ({"hop_seconds": 0.0}, "hop_seconds"),
    ({"providers": "tpu"}, "providers"),
    ({"sample_rate": 12}, "sample_rate"),
])
def test_bad_config_raises_input_error(tiny_model, kw, match):
    with pytest.raises(FxmatchInputError, match=match):
        LiveEngine(EngineConfig(model_path=tiny_model, **({"mode": "capture"} | kw)))


def test_missing_model_raises_input_error(tmp_path):
    with pytest.raises(FxmatchInputError, match="no such model"):
        LiveEngine(EngineConfig(model_path=tmp_path / "none.onnx", mode="capture"))


def test_set_ab_rejects_unknown_positions(tiny_model):
    engine = _engine(tiny_model)
    with pytest.raises(FxmatchInputError, match="A/B"):
        engine.set_ab("b")


def test_the_engine_api_holds_no_test_hooks():
    """Blocks by hand and injected faults are tests.realtime.engine_hooks' seams, not the engines' API."""
    from realtime.remote import RemoteEngine

    for hook in ("inject_fault", "process_block"):
        assert not hasattr(LiveEngine, hook) and not hasattr(RemoteEngine, hook)
        assert hook not in LiveEngine.remote_ops
