"""fxmatch.match: the tone distance across performances and the fit, on pedalboard renders of seeded plucks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pedalboard
import pytest

from fxmatch import testsignals
from fxmatch.errors import FxmatchInputError
from fxmatch.inference import EstimatorSession
from fxmatch.match import (
    DEFAULT_WEIGHTS,
    GROUP_SCALE,
    GROUPS,
    MatchCancelled,
    ToneFeatures,
    agreed_bell,
    bell_from_harmonics,
    feature_distance,
    features,
    fit_bell,
    group_distances,
    match,
    note_harmonics,
)
from fxmatch.shipped import default_model

RATE = 44100


@pytest.fixture(scope="module")
def session():
    return EstimatorSession(default_model(), providers="cpu", threads=1)


def _take(seed: int, seconds: float = 4.0, notes: int = 8) -> np.ndarray:
    """A performance: seeded plucks (one instrument model, other notes and timing per seed), -20 dBFS RMS."""
    x = testsignals.pluck(RATE, seconds, np.random.default_rng(seed), n_notes=notes)[0].astype(np.float64)
    return (x * 0.1 / np.sqrt(np.mean(x ** 2))).astype(np.float32)


def _render(plugins, x: np.ndarray) -> np.ndarray:
    return pedalboard.Pedalboard(plugins)(x[None], float(RATE))[0]


CHAINS = {
    "distortion": [pedalboard.Distortion(drive_db=30.0)],
    "delay": [pedalboard.Delay(delay_seconds=0.3, feedback=0.4, mix=0.5)],
    "reverb": [pedalboard.Reverb(room_size=0.9, wet_level=0.5, dry_level=0.6)],
    "peak": [pedalboard.PeakFilter(cutoff_frequency_hz=1500.0, gain_db=12.0, q=1.0)],
    "chorus": [pedalboard.Chorus(rate_hz=2.0, depth=0.8, mix=0.7, feedback=0.3)],
}


def test_distance_is_zero_for_identical_audio_and_symmetric(session):
    x, y = _take(1), _render(CHAINS["reverb"], _take(2))
    fx = ToneFeatures(RATE, session)
    a, b = fx(x), fx(y)
    assert feature_distance(a, a) == 0.0
    assert math.isclose(feature_distance(a, b), feature_distance(b, a), rel_tol=1e-9)
    assert set(group_distances(a, b)) == set(GROUPS)


def test_a_weight_per_value_generalises_a_group_weight(session):
    fx = ToneFeatures(RATE, session)
    a, b = fx(_take(1)), fx(_render(CHAINS["reverb"], _take(2)))
    per_value = {g: np.full(a.groups[g].size, w) for g, w in DEFAULT_WEIGHTS.items()}
    assert math.isclose(feature_distance(a, b, per_value), feature_distance(a, b), rel_tol=1e-12)
    only_first = {"spectrum": np.eye(a.groups["spectrum"].size)[0]}  # the lowest third-octave band alone
    want = abs(a.groups["spectrum"][0] - b.groups["spectrum"][0]) / a.groups["spectrum"].size / GROUP_SCALE["spectrum"]
    assert math.isclose(feature_distance(a, b, only_first), want, rel_tol=1e-12)
    assert want > 0.0


def test_statistics_do_not_depend_on_level():
    x = _take(3)
    a, b = features(x, RATE), features(0.1 * x, RATE)
    assert feature_distance(a, b) < 1e-2  # float32 frames: equal up to rounding


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_same_chain_on_two_performances_is_closer_than_other_chains(session, name):
    fx = ToneFeatures(RATE, session)
    x1, x2 = _take(11), _take(12)
    reference = fx(_render(CHAINS[name], x1))
    same = feature_distance(reference, fx(_render(CHAINS[name], x2)))
    others = [feature_distance(reference, fx(_render(CHAINS[o], x2))) for o in CHAINS if o != name]
    others.append(feature_distance(reference, fx(x2)))  # no effect
    assert same < min(others), (name, same, others)


def test_match_rejects_silent_and_short_takes(session):
    ref = _take(1)
    with pytest.raises(FxmatchInputError, match="silent"):
        match(ref, np.zeros(RATE * 2, dtype=np.float32), RATE, session=session)
    with pytest.raises(FxmatchInputError, match="too short"):
        match(ref, _take(2)[: RATE // 4], RATE, session=session)


def test_match_can_be_cancelled(session):
    with pytest.raises(MatchCancelled):
        match(_render(CHAINS["delay"], _take(1)), _take(2), RATE, session=session, should_stop=lambda: True)


def test_match_finds_a_distortion_and_sets_the_output_level(session):
    reference = _render(CHAINS["distortion"], _take(21)) * 0.5
    progress = []
    result = match(reference, _take(22), RATE, session=session, max_evaluations=60, progress=progress.append)
    assert "Distortion" in result.chain_names
    assert result.relative < 0.5
    assert progress and progress[-1].done and progress[-1].fraction == 1.0
    assert all(a.fraction <= b.fraction for a, b in itertools.pairwise(progress))
    # the take through the chain is as loud as the reference (RMS, within 1 dB)
    out = result.preset().to_pedalboard()(_take(22)[None], float(RATE))[0]
    level = lambda v: 20 * np.log10(np.sqrt(np.mean(np.square(v, dtype=np.float64))))
    assert abs(level(out) - level(reference)) < 1.0
    assert result.preset().chain_names == list(result.chain_names)


@pytest.mark.slow
def test_match_finds_a_known_peak_filter_within_a_third_octave(session):
    """Two busy riffs (16 plucks in 4 s each: their long-term spectra cover the bell's band) and a +10 dB bell."""
    truth = {"cutoff_frequency_hz": 1200.0, "gain_db": 10.0, "q": 1.0}
    reference = _render([pedalboard.PeakFilter(**truth)], _take(31, notes=16))
    result = match(reference, _take(32, notes=16), RATE, session=session)
    peaks = [p for n, p in result.chain if n == "PeakFilter"]
    assert peaks, result.label
    assert abs(math.log2(peaks[0]["cutoff_frequency_hz"] / truth["cutoff_frequency_hz"])) <= 1 / 3
    assert peaks[0]["gain_db"] > 0


def test_fit_bell_reads_a_bell_off_one_performance():
    """The reference is the take through a bell: the envelopes differ by the bell alone."""
    take = _take(41, notes=16)
    for truth in ({"cutoff_frequency_hz": 700.0, "gain_db": -9.0, "q": 1.4},
                  {"cutoff_frequency_hz": 3000.0, "gain_db": 8.0, "q": 0.8}):
        reference = _render([pedalboard.PeakFilter(**truth)], take)
        bell = fit_bell(features(reference, RATE), features(take, RATE), RATE)
        assert abs(math.log2(bell["cutoff_frequency_hz"] / truth["cutoff_frequency_hz"])) < 1 / 6, bell
        assert abs(bell["gain_db"] - truth["gain_db"]) < 2.0, bell


def test_note_harmonics_names_the_notes_played():
    t = np.arange(RATE) / RATE
    notes = (45, 52, 57)
    x = np.concatenate([sum(np.sin(2 * np.pi * k * 440.0 * 2 ** ((m - 69) / 12) * t) / k for k in range(1, 12))
                        * np.exp(-2 * t) for m in notes])
    heard = note_harmonics(x, RATE)
    assert set(notes) <= set(heard), sorted(heard)
    _, levels, frames = heard[52]
    assert frames >= 20 and levels[0] > levels[5] > 0  # the 1/k partials: the first is the strongest


def test_bell_from_harmonics_reads_a_bell_across_performances():
    """Two riffs of other notes on one instrument (the plucks' partials are the same function of their number)."""
    truth = {"cutoff_frequency_hz": 1200.0, "gain_db": 10.0, "q": 1.0}
    reference = _render([pedalboard.PeakFilter(**truth)], _take(31, notes=16))
    bell = bell_from_harmonics(note_harmonics(reference, RATE), note_harmonics(_take(32, notes=16), RATE), RATE)
    assert bell is not None
    assert abs(math.log2(bell["cutoff_frequency_hz"] / truth["cutoff_frequency_hz"])) <= 1 / 3, bell
    assert bell["gain_db"] > 0, bell


def test_agreed_bell_needs_one_sign_and_centres_within_a_third_octave():
    a = {"cutoff_frequency_hz": 1000.0, "gain_db": 6.0, "q": 1.0}
    b = {"cutoff_frequency_hz": 1210.0, "gain_db": 8.0, "q": 4.0}
    bell = agreed_bell([a, b])
    assert bell == pytest.approx({"cutoff_frequency_hz": 1100.0, "gain_db": 7.0, "q": 2.0})
    assert agreed_bell([a, {**b, "gain_db": -8.0}]) is None
    assert agreed_bell([a, {**b, "cutoff_frequency_hz": 1300.0}]) is None  # 0.38 octave apart
