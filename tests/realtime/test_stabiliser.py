"""EstimateStabiliser: the published chain changes only after a challenger leads for `hysteresis_hops` hops."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fxmatch import shipped
from fxmatch.inference import EstimatorSession, to_mono
from realtime.analysis import EstimateStabiliser


@pytest.fixture(scope="module")
def session() -> EstimatorSession:
    """The shipped model (64 chains) on one CPU thread."""
    return EstimatorSession(shipped.default_model(), providers="cpu", threads=1)


def _probs(n: int, leader: int, p: float = 0.9) -> np.ndarray:
    """`[n]` probabilities with `leader` at `p` and the rest shared equally."""
    out = np.full(n, (1 - p) / (n - 1))
    out[leader] = p
    return out


def _run(stab: EstimateStabiliser, leaders: list[int], n_params: int) -> list[tuple[int, bool]]:
    """(published chain index, changed) after each hop whose raw leader is `leaders[i]`."""
    params = np.full((stab.info.n_chains, n_params), 0.5)
    return [(e.chain_index, e.changed) for e in (stab.update(_probs(stab.info.n_chains, k), params) for k in leaders)]


@pytest.mark.parametrize("hops", [1, 3, 5])
def test_a_steady_challenger_takes_over_after_exactly_the_hysteresis_hops(session, hops):
    info = session.info
    n_params = sum(len(e.params) for e in info.effects)
    a, b = info.chains.index(()), info.chains.index(("Distortion",))
    stab = EstimateStabiliser(info, hysteresis_hops=hops, smoothing=0.0)  # no smoothing: each hop's leader counts
    published = _run(stab, [a] * 4 + [b] * 8, n_params)
    assert published[0] == (a, True) and all(k == a and not c for k, c in published[1:4])
    # b leads from hop 4: it is published at hop 4 + hops - 1, once, with changed set on that hop only
    switch = 4 + hops - 1
    assert [k for k, _ in published[4:switch]] == [a] * (hops - 1)
    assert published[switch] == (b, True)
    assert all(k == b and not c for k, c in published[switch + 1:])


def test_a_blip_shorter_than_the_hysteresis_never_switches_and_resets_the_count(session):
    info = session.info
    n_params = sum(len(e.params) for e in info.effects)
    a, b = info.chains.index(()), info.chains.index(("Reverb",))
    stab = EstimateStabiliser(info, hysteresis_hops=3, smoothing=0.0)
    published = _run(stab, [a, b, b, a, b, b, a, b, b, a], n_params)
    assert [k for k, _ in published] == [a] * 10 and [c for _, c in published] == [True] + [False] * 9


def test_smoothing_delays_the_switch_by_the_hops_the_average_needs(session):
    """Smoothing 0.6, the likeliest chain named: a clear challenger (p 0.9) leads the average from its 2nd hop (0.36 <
    0.54 on the 1st, 0.58 > 0.33 on the 2nd) and is published on its 3rd hop in the lead."""
    info = dataclasses.replace(session.info, presence_threshold=None)
    n_params = sum(len(e.params) for e in info.effects)
    a, b = info.chains.index(()), info.chains.index(("Delay",))
    stab = EstimateStabiliser(info, hysteresis_hops=3, smoothing=0.6)
    published = _run(stab, [a] * 6 + [b] * 8, n_params)
    first_b = next(i for i, (k, _) in enumerate(published) if k == b)
    assert first_b == 6 + 1 + 3 - 1  # the average turns on hop 7; b is published on hop 9
    assert [c for _, c in published].count(True) == 2


def test_the_presence_rule_names_the_challenger_once_its_effect_is_likely_enough(session):
    """The shipped model's rule (an effect at presence >= 0.7): Delay's smoothed presence is 0.39, 0.61, 0.74 on the
    challenger's 1st-3rd hops (its own 0.36, 0.58, 0.71 plus 0.03 from the other 21 chains holding Delay), so it
    leads from the 3rd hop and is published on hop 10."""
    info = session.info
    assert info.presence_threshold == 0.7
    n_params = sum(len(e.params) for e in info.effects)
    a, b = info.chains.index(()), info.chains.index(("Delay",))
    stab = EstimateStabiliser(info, hysteresis_hops=3, smoothing=0.6)
    published = _run(stab, [a] * 6 + [b] * 8, n_params)
    first_b = next(i for i, (k, _) in enumerate(published) if k == b)
    assert first_b == 6 + 2 + 3 - 1
    assert [c for _, c in published].count(True) == 2


def _windows(session: EstimatorSession, name: str) -> list[np.ndarray]:
    """Analysis windows of a bundled example at the model's rate, a quarter window apart."""
    import soxr

    from fxmatch.audio_io import read_audio

    audio, rate = read_audio(shipped.default_examples() / name)
    mono = to_mono(audio)
    if rate != session.info.sample_rate:
        mono = soxr.resample(mono, rate, session.info.sample_rate)
    w = session.info.window_samples
    return [mono[i : i + w] for i in range(0, mono.size - w + 1, w // 4)]


def test_the_shipped_model_switches_from_a_clean_loop_to_a_distorted_one(session):
    """Real model, real audio: the clean example looped, then the distortion example looped; the published chain
    must hold one chain without Distortion over the clean loop (v4 heard no effect there, v5 a +0.9 dB PeakFilter,
    inaudible) and leave it for a chain with Distortion within a few seconds of hops."""
    clean = _windows(session, "keys_clean_target.flac")
    dist = _windows(session, "guitar_distortion_target.flac")
    probs, params = session.estimate_windows(np.stack(clean * 2 + dist * 4))
    stab = EstimateStabiliser(session.info, hysteresis_hops=3, smoothing=0.6)
    published = [stab.update(p, q) for p, q in zip(probs, params, strict=True)]
    n_clean = 2 * len(clean)
    held = {e.chain for e in published[n_clean // 2 : n_clean]}  # the clean loop's second pass: one chain, held
    assert len(held) == 1 and "Distortion" not in next(iter(held)), held
    assert all("Distortion" not in e.chain for e in published[:n_clean])
    assert "Distortion" in published[-1].chain
