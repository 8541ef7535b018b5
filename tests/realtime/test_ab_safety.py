import math

import numpy as np
import pytest

from realtime.ab import ABMixer
from realtime.safety import Limiter, unsafe

RATE = 48000


def _run(mixer, target, matched, dry, block=256, switch=None):
    out = np.zeros_like(target)
    for i in range(0, target.size, block):
        if switch and i == switch[0]:
            mixer.set_position(switch[1])
        s = slice(i, i + block)
        mixer.mix(target[s], matched[s], dry[s], out[s])
    return out


def test_ab_switch_is_an_equal_power_crossfade():
    n, fade_ms = 256 * 40, 20.0
    ones, zeros = np.ones(n, dtype=np.float32), np.zeros(n, dtype=np.float32)
    mix_a = ABMixer(RATE, fade_ms, loudness_match=False, position="target")
    mix_b = ABMixer(RATE, fade_ms, loudness_match=False, position="target")
    at = 256 * 10
    out_t = _run(mix_a, ones, zeros, zeros, switch=(at, "matched"))   # the target's weight
    out_m = _run(mix_b, zeros, ones, zeros, switch=(at, "matched"))   # the matched's weight
    fade = round(fade_ms * 1e-3 * RATE)
    seg = slice(at, at + fade)
    np.testing.assert_allclose(out_t[seg] ** 2 + out_m[seg] ** 2, 1.0, atol=1e-5)  # equal power throughout
    assert out_t[at - 1] == 1.0 and out_t[at + fade + 1] == pytest.approx(0.0, abs=1e-6)
    assert np.max(np.abs(np.diff(out_t))) <= math.pi / 2 / fade + 1e-6  # no step: at most the cosine's slope


def test_ab_switch_between_unrelated_sines_has_no_discontinuity():
    t = np.arange(256 * 60) / RATE
    a = (0.4 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    b = (0.4 * np.sin(2 * np.pi * 330 * t + 1.0)).astype(np.float32)
    out = _run(ABMixer(RATE, 30.0, loudness_match=False, position="target"), a, b, b, switch=(256 * 20, "dry"))
    natural = max(np.max(np.abs(np.diff(a))), np.max(np.abs(np.diff(b))))
    assert np.max(np.abs(np.diff(out))) <= 1.5 * natural  # a hard switch would jump by up to ~0.8


def test_loudness_match_brings_matched_to_the_target_level():
    t = np.arange(RATE * 3) / RATE
    target = (0.05 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)   # about -29 dBFS
    matched = (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)   # 12 dB louder (the gain is capped at 18 dB)
    out = _run(ABMixer(RATE, position="matched"), target, matched, matched)
    tail = out[-RATE // 2 :]
    level = 20 * np.log10(np.sqrt(np.mean(tail**2)) / np.sqrt(np.mean(target[-RATE // 2 :] ** 2)))
    assert abs(level) < 0.5


@pytest.mark.parametrize("value, expected", [(np.nan, True), (np.inf, True), (20.0, True), (0.9, False)])
def test_unsafe_detects_non_finite_and_runaway(value, expected):
    x = np.zeros(256, dtype=np.float32)
    x[100] = value
    assert unsafe(x) is expected


def test_limiter_keeps_output_below_0_dbfs():
    t = np.arange(RATE) / RATE
    x = (4.0 * np.sin(2 * np.pi * 100 * t)).astype(np.float32)  # +12 dBFS
    lim = Limiter(RATE)
    for i in range(0, x.size, 256):
        lim.process(x[i : i + 256])
    assert np.max(np.abs(x)) <= 10 ** (-0.5 / 20) + 1e-6
    assert lim.engaged
    quiet = (0.1 * np.sin(2 * np.pi * 100 * t)).astype(np.float32)
    lim2, ref = Limiter(RATE), quiet.copy()
    for i in range(0, quiet.size, 256):
        lim2.process(quiet[i : i + 256])
    np.testing.assert_array_equal(quiet, ref)  # transparent below the ceiling
