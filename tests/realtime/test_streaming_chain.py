import math
import resource

import numpy as np
import pedalboard as pb
import pytest

from fxmatch.errors import FxmatchInputError
from realtime.streaming_chain import ChainPlayer, StreamingChain, validate_chain

RATE = 48000
FULL_CHAIN = (
    ("Compressor", {"threshold_db": -20.0, "ratio": 4.0, "attack_ms": 5.0, "release_ms": 100.0}),
    ("Distortion", {"drive_db": 20.0}),
    ("PeakFilter", {"cutoff_frequency_hz": 1000.0, "gain_db": 6.0, "q": 1.0}),
    ("Chorus", {"rate_hz": 1.0, "depth": 0.5, "centre_delay_ms": 7.0, "feedback": 0.2, "mix": 0.5}),
    ("Phaser", {"rate_hz": 0.5, "depth": 0.5, "centre_frequency_hz": 1000.0, "feedback": 0.3, "mix": 0.5}),
    ("Delay", {"delay_seconds": 0.2, "feedback": 0.3, "mix": 0.3}),
    ("Reverb", {"room_size": 0.5, "damping": 0.5, "wet_level": 0.3, "dry_level": 0.8}),
)


def _offline(spec, x, primed=0):
    """Offline pedalboard render; `primed` silent samples first (what StreamingChain.prime feeds), then cut."""
    x = np.concatenate([np.zeros(primed, dtype=np.float32), x])
    return pb.Pedalboard([getattr(pb, n)(**p) for n, p in spec])(x[None], RATE)[0][primed:]


def _stream(player, x, block):
    out = np.zeros_like(x)
    buf = np.zeros(block, dtype=np.float32)
    for i in range(0, x.size, block):
        player.process(x[None, i : i + block], buf)
        out[i : i + block] = buf[: min(block, x.size - i)]
    return out


#: a drive with its tone stage and the chain's output level (issue 26's vocabulary)
TONE_CHAIN = (
    ("Distortion", {"drive_db": 25.0}),
    ("LowpassFilter", {"cutoff_frequency_hz": 900.0}),
    ("HighpassFilter", {"cutoff_frequency_hz": 90.0}),
    ("Reverb", {"room_size": 0.5, "damping": 0.5, "wet_level": 0.3, "dry_level": 0.8}),
    ("Gain", {"gain_db": -9.0}),
)


@pytest.mark.parametrize("block", [64, 256])
def test_streamed_tone_stage_and_output_level_equal_offline_pedalboard(make_signal, block):
    x = make_signal("chord", RATE, 0.5)[0]
    spec = validate_chain(TONE_CHAIN)
    player = ChainPlayer(RATE, block)
    player.publish(StreamingChain(spec, RATE, block), StreamingChain(spec, RATE, block))
    np.testing.assert_array_equal(_stream(player, x, block), _offline(TONE_CHAIN, x, primed=block))


@pytest.mark.parametrize("block", [64, 256])
def test_streamed_full_chain_equals_offline_pedalboard_sample_for_sample(make_signal, block):
    x = make_signal("chord", RATE, 1.0)[0]
    player = ChainPlayer(RATE, block)
    player.publish(StreamingChain(FULL_CHAIN, RATE, block), StreamingChain(FULL_CHAIN, RATE, block))
    # the chain was primed with one silent block (so pedalboard prepares outside the callback): offline sees it too
    np.testing.assert_array_equal(_stream(player, x, block), _offline(FULL_CHAIN, x, primed=block))


def test_log_parameter_glides_in_log_scale():
    spec = (("PeakFilter", {"cutoff_frequency_hz": 200.0, "gain_db": 0.0, "q": 1.0}),)
    chain = StreamingChain(spec, RATE, 256, scales={("PeakFilter", "cutoff_frequency_hz"): "log"}, glide_ms=50)
    chain.set_targets([{"cutoff_frequency_hz": 5000.0, "gain_db": 0.0, "q": 1.0}])
    block = np.zeros((1, 256), dtype=np.float32)
    seen = []
    for _ in range(200):
        chain.process(block)
        seen.append(chain.board[0].cutoff_frequency_hz)
    assert seen[-1] == pytest.approx(5000.0, rel=1e-3)
    # halfway through the glide in log scale is the geometric mean (1000 Hz), not the arithmetic one (2600 Hz)
    k = next(i for i, v in enumerate(seen) if v >= 1000.0)
    assert seen[k - 1] < 1000.0 <= seen[k] < 2600.0
    assert all(np.diff(seen) >= 0)  # monotonic: no zipper back and forth


def test_chain_change_crossfades_without_a_jump():
    block = 256
    t = np.arange(block * 188) / RATE
    x = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    player = ChainPlayer(RATE, block, crossfade_ms=30)
    player.publish(StreamingChain((), RATE, block))
    out = np.zeros(x.size, dtype=np.float32)
    buf = np.zeros(block, dtype=np.float32)
    gain_chain = (("Gain", {"gain_db": -20.0}),)
    for i in range(0, x.size, block):
        if i == 50 * block:
            player.publish(StreamingChain(gain_chain, RATE, block))
        player.process(x[None, i : i + block], buf)
        out[i : i + block] = buf
    step = float(np.max(np.abs(np.diff(out))))
    natural = float(np.max(np.abs(np.diff(x))))
    assert step <= natural * 1.05  # a hard switch would jump by up to 0.45
    assert np.max(np.abs(out[-block:])) == pytest.approx(0.05, rel=0.05)


def test_trip_swaps_to_a_clean_spare_without_reset():
    block = 256
    spec = (("Delay", {"delay_seconds": 0.1, "feedback": 0.5, "mix": 0.5}),)
    player = ChainPlayer(RATE, block)
    player.publish(StreamingChain(spec, RATE, block), StreamingChain(spec, RATE, block))
    buf = np.zeros(block, dtype=np.float32)
    bad = np.zeros((1, block), dtype=np.float32)
    bad[0, 10] = np.nan
    player.process(bad, buf)
    assert not np.all(np.isfinite(buf))
    player.trip()
    for _ in range(30):  # the poisoned delay line would echo NaN after 0.1 s
        player.process(np.full((1, block), 0.1, dtype=np.float32), buf)
        assert np.all(np.isfinite(buf))
    assert player.trips_pending == 1 and player.spare is None


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


def test_processing_memory_stays_flat_over_many_blocks():
    """pedalboard returns a new array per block (freed at once): per-call peak is small, nothing accumulates."""
    import tracemalloc

    block = 256
    player = ChainPlayer(RATE, block)
    player.publish(StreamingChain(FULL_CHAIN, RATE, block))
    x = np.random.default_rng(0).standard_normal((1, block)).astype(np.float32) * 0.1
    buf = np.zeros(block, dtype=np.float32)
    for _ in range(20000):  # settle the allocator
        player.process(x, buf)
    tracemalloc.start()
    try:
        before = _rss_kb()
        for _ in range(40000):  # about 213 s of audio
            player.process(x, buf)
        grown_kb = _rss_kb() - before
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert grown_kb < 512, f"resident memory grew by {grown_kb} kB"
    assert current < 16384 and peak < 65536, (current, peak)


@pytest.mark.parametrize("chain, match", [
    ([("NoSuchEffect", {})], "unknown effect"),
    ([("Distortion", {"gain": 1.0})], "unknown parameter of Distortion"),
    ([("Distortion", {"drive_db": math.nan})], "must be a finite number"),
    ([("Reverb", {"room_size": 5.0})], "Reverb"),
    ([("Distortion",)], "pair"),
])
def test_bad_chains_are_refused_with_a_clear_error(chain, match):
    with pytest.raises(FxmatchInputError, match=match):
        validate_chain(chain)
