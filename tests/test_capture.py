"""fxmatch.capture: alignment, refusal of unrelated recordings, the chain search, parsimony, budget and cancel."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pedalboard
import pytest
import torch

from fxmatch import testsignals
from fxmatch.capture import (
    Candidate,
    CaptureCancelled,
    ChainFit,
    SearchSettings,
    Stage,
    align,
    candidates_from_ranked,
    capture,
    choose,
    sub_chains,
)
from fxmatch.capture.alignment import CORRELATION_SLACK, MIN_CORRELATION, _align_window
from fxmatch.capture.fit import _Clock, _evaluate, _logit, _Row, _sigmoid, _Spectra
from fxmatch.capture.search import SLOW_LFO_EXCERPT_SECONDS, _Search, _slow_lfo, check_on_take
from fxmatch.effects import get_spec
from fxmatch.errors import FxmatchInputError
from fxmatch.metrics import mrstft_distance

RATE = 16000
#: a small search for tests: 0.6 s excerpt, a 16 kHz screen and one short refinement of the best three
SMALL = SearchSettings(excerpt_seconds=0.6, stages=(Stage(16000, None, 6, 0.15, (1024, 256), 2), Stage(16000, 3, 6)))


def _dry(seconds: float = 1.2, seed: int = 3) -> np.ndarray:
    """Seeded plucks (a few notes) at 16 kHz, float32 `[samples]`."""
    return testsignals.make("pluck", RATE, seconds, seed=seed)[0]


def _render(x: np.ndarray, *plugins) -> np.ndarray:
    return pedalboard.Pedalboard(list(plugins))(x[None], RATE)[0]


def _delayed(x: np.ndarray, offset: int) -> np.ndarray:
    """`x` starting `offset` samples later (zeros first), same length."""
    return np.concatenate([np.zeros(offset, dtype=x.dtype), x[: x.size - offset]])


def test_align_finds_the_offset_of_a_delayed_distorted_copy():
    x = _dry()
    wet = _delayed(_render(x, pedalboard.Distortion(drive_db=20.0)), 371)
    al = align(x, 0.3 * wet, RATE)
    assert al.offset == 371 and al.offset_ms == pytest.approx(23.1875)
    assert al.correlation > 0.6
    assert align(_delayed(x, 200), x, RATE).offset == -200  # the wet file may start first too


def test_align_takes_the_direct_sound_not_a_louder_echo():
    x = _dry()
    wet = _render(x, pedalboard.Delay(delay_seconds=0.15, feedback=0.3, mix=0.6))  # echo louder than the direct path
    assert align(x, _delayed(wet, 50), RATE).offset == 50


def test_the_earliest_strong_peak_must_correlate_nearly_as_well_as_the_best():
    """Two strong peaks of the response (a copy at 100 samples, a louder one at 300): the earlier wins while its
    envelopes correlate within CORRELATION_SLACK of the later's, and gives way when they correlate far less (the
    music's own repetition 0.64 s before a smeared direct sound, 0.48 against 0.66 on a SoX chorus)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal(RATE).astype(np.float64)
    y = 0.6 * _delayed(x, 100) + _delayed(x, 300)

    def measure(table):
        return lambda a, b, rate, lag: table.get(lag, 0.0)

    assert _align_window(x, y, RATE, 1000, MIN_CORRELATION, measure({100: 0.6, 300: 0.66}))[0] == 100
    lag, corr = _align_window(x, y, RATE, 1000, MIN_CORRELATION,
                              measure({100: 0.66 - CORRELATION_SLACK - 0.02, 300: 0.66}))
    assert lag == 300 and corr == 0.66


def test_capture_recovers_offset_and_level_of_a_plain_copy():
    x = _dry()
    wet = 0.5 * _delayed(x, 123)
    result = capture(x, wet, RATE, [Candidate(())], settings=SMALL)  # the output level is fitted by default
    assert result.alignment.offset == 123 and result.alignment.level_db == pytest.approx(-6.02, abs=0.05)
    assert result.best.chain == () and result.best.gain_db == pytest.approx(-6.02, abs=0.3)
    assert result.best.relative < 0.05
    assert result.identification is not None and result.identification.linear  # a plain gain: nothing to read
    unfitted = capture(x, wet, RATE, [Candidate(())], settings=replace(SMALL, fit_gain=False))
    assert unfitted.best.gain_db == 0.0 and unfitted.best.relative == pytest.approx(1.0)


def test_no_effect_reads_the_dry_take_at_the_wet_takes_level():
    # the output level is fitted by every chain, so "no effect" is the dry take at the wet take's level: a pedal that
    # also lowers the level by 12 dB must not make the empty chain (with its fitted gain) look like a near-match
    # (against the dry take as it is, it read 70 % here)
    x = _dry()
    wet = _render(x, pedalboard.Distortion(drive_db=10.0), pedalboard.Gain(gain_db=-12.0))
    result = capture(x, wet, RATE, [Candidate(()), Candidate(("Distortion",))], settings=SMALL)
    empty = next(f for f in result.ranking if f.chain == ())
    assert 0.9 < empty.relative < 1.1
    assert result.best.chain == ("Distortion",) and result.best.relative < 0.5


def test_a_short_stage_window_is_lengthened_to_hear_the_identified_echo():
    # the recording starts with the first note, so a 0.3 s window holds no echo of a 0.6 s Delay; without the
    # identified echo's window the only stage fitted the Delay time to 0.581 s
    x = _dry(seconds=2.0)
    wet = _render(x, pedalboard.Delay(delay_seconds=0.6, feedback=0.4, mix=0.4))
    one_stage = SearchSettings(excerpt_seconds=1.0, stages=(Stage(16000, None, 10, 0.15, (1024, 256), 2, 0.3),))
    result = capture(x, wet, RATE, [Candidate(()), Candidate(("Delay",))], settings=one_stage)
    assert result.excerpt_start_s == 0.0 and result.best.chain == ("Delay",)
    assert result.best.params[0][1]["delay_seconds"] == pytest.approx(0.6, abs=0.002)


def test_the_later_stages_try_the_read_echo_before_their_zoom():
    # a row whose delay sits in another comb valley (40 ms off) is moved to the Delay read off the pair
    from fxmatch.capture.fit import _Clock, _sigmoid
    from fxmatch.capture.search import _Search

    x = _dry(seconds=2.0)
    wet = _render(x, pedalboard.Delay(delay_seconds=0.23, feedback=0.3, mix=0.4))
    search = _Search(x.astype(np.float64), wet.astype(np.float64), RATE, align(x, wet, RATE),
                     [Candidate(()), Candidate(("Delay",))], SMALL, _Clock(None, None, None))
    search.screen(np.random.default_rng(0))
    spec = get_spec("Delay")
    layout = search.renderer.layout
    col = layout.param_slice("Delay").start + spec.param_names.index("delay_seconds")
    u = _sigmoid(search.fitted[("Delay",)].z)
    u[col] = spec.param("delay_seconds").normalise(0.19)
    sig = search._signals(len(SMALL.stages) - 1)
    moved = search._nearest_read(u, ("Delay",), "Delay", sig)
    delay = dict(layout.decode(("Delay",), moved))["Delay"]
    assert delay["delay_seconds"] == pytest.approx(0.23, abs=1 / RATE)
    assert delay["feedback"] == pytest.approx(0.3, abs=0.02) and delay["mix"] == pytest.approx(0.4, abs=0.02)
    assert moved[layout.gain] == u[layout.gain]  # the output level is not the Delay's


def test_echo_window_covers_the_first_echo_less_the_preroll():
    from fxmatch.capture.search import ECHO_MARGIN_SECONDS, _echo_window
    from fxmatch.identify import EVIDENCE_THRESHOLD, Identification, Read

    def ident(evidence: float) -> Identification:
        return Identification({"Delay": Read("Delay", ({"delay_seconds": 0.7, "feedback": 0.3, "mix": 0.4},),
                                             evidence, 0.0)}, 0.0, 0.0)

    assert _echo_window(ident(0.9), 0.0) == pytest.approx(0.7 + ECHO_MARGIN_SECONDS)
    assert _echo_window(ident(0.9), 0.5) == pytest.approx(0.2 + ECHO_MARGIN_SECONDS)
    assert _echo_window(ident(0.9), 1.0) == 0.0
    assert _echo_window(ident(EVIDENCE_THRESHOLD - 0.01), 0.0) == 0.0  # no echo heard: the stages' own windows
    assert _echo_window(None, 0.0) == 0.0


def test_a_stages_own_patience_overrides_the_settings():
    x = _dry()
    wet = _render(x, pedalboard.Compressor(threshold_db=-20, ratio=6, attack_ms=3, release_ms=80),
                  pedalboard.Delay(delay_seconds=0.12, feedback=0.4, mix=0.35))

    def closest(patience: int | None) -> float:
        stage = Stage(16000, None, 40, 0.05, (1024, 256), 2, patience=patience)
        settings = SearchSettings(excerpt_seconds=0.6, stages=(stage,), patience=1)
        result = capture(x, wet, RATE, [Candidate(()), Candidate(("Compressor", "Delay"))], settings=settings)
        return result.best.relative

    assert closest(40) < closest(None) == closest(1)  # None: the settings' patience


def test_unrelated_recordings_are_refused():
    x = _dry(seed=3)
    other = testsignals.make("noise", RATE, 1.2, seed=8)[0]
    with pytest.raises(FxmatchInputError, match="same performance"):
        capture(x, other, RATE, settings=SMALL)
    with pytest.raises(FxmatchInputError, match="same performance"):
        align(x, testsignals.make("chord", RATE, 1.2, seed=8)[0], RATE)


def test_silence_and_too_little_audio_are_refused():
    x = _dry()
    with pytest.raises(FxmatchInputError, match="silent"):
        capture(x, np.zeros_like(x), RATE, settings=SMALL)
    with pytest.raises(FxmatchInputError, match="at least 0.5 s"):
        capture(x[:4000], x[:4000], RATE, settings=SMALL)
    with pytest.raises(FxmatchInputError, match="NaN"):
        capture(x, x * np.nan, RATE, settings=SMALL)


def test_search_names_distortion_against_no_effect_and_a_longer_chain():
    x = _dry()
    wet = _render(x, pedalboard.Distortion(drive_db=30.0))
    cands = [Candidate(c) for c in [(), ("Distortion",), ("Delay",), ("Distortion", "Delay")]]
    result = capture(x, wet, RATE, cands, settings=SMALL, seed=1)
    assert result.best.chain == ("Distortion",)
    assert abs(result.best.params[0][1]["drive_db"] - 30.0) < 3.0
    assert result.best.relative < 0.2
    assert [f.chain for f in result.ranking].count(()) == 1 and len(result.ranking) == 4
    no_effect = next(f for f in result.ranking if f.chain == ())
    assert no_effect.relative > 3 * result.best.relative
    # the whole take (1.2 s) through the preset: as close as the excerpt says
    assert result.take_relative is not None and result.take_relative < 0.2
    assert result.take_seconds == pytest.approx(x.size / RATE, abs=0.01)


def _inherit_into_chorus(extra: str, extra_params: dict, longer_gain_db: float) -> tuple[_Search, float]:
    """A Chorus target; a row of the Chorus alone in another LFO valley and a longer `extra` > Chorus row at the
    true Chorus with output level `longer_gain_db`, both as the last stage fitted them; after `_Search.inherit`: the
    search and the lone Chorus's relative distance before it."""
    x = _dry(1.2)
    chorus = {"rate_hz": 1.3, "depth": 0.4, "centre_delay_ms": 9.0, "feedback": 0.2, "mix": 0.5}
    wet = _render(x, pedalboard.Chorus(**chorus))
    cands = [Candidate(()), Candidate(("Chorus",)), Candidate((extra, "Chorus"))]
    settings = replace(SMALL, identify=False)
    search = _Search(x, wet, RATE, align(x, wet, RATE), cands, settings, _Clock(None, None, None))
    layout, last = search.renderer.layout, len(settings.stages) - 1
    base = np.full(layout.width, 0.5)
    base[layout.gain] = layout.gain_unit(0.0)
    longer = layout.encode((extra, "Chorus"), {extra: extra_params, "Chorus": chorus}, base)
    longer[layout.gain] = layout.gain_unit(longer_gain_db)
    alone = layout.encode(("Chorus",), {"Chorus": {**chorus, "rate_hz": 0.5}}, base)  # another LFO valley
    sig = search._stage_pair(last)[False]
    for chain, u in (((extra, "Chorus"), longer), (("Chorus",), alone)):
        d = float(sig.spectra.distance(
            search.renderer.render(sig.x, torch.tensor(u[None], dtype=torch.float32), [chain], float(sig.rate),
                                   sig.native, True)[:, -sig.length:])[0])
        search.fitted[chain] = _Row(chain, _logit(u), d, None, last, sig.no_effect)
    before = search.fitted[("Chorus",)].relative
    search.inherit(last)
    return search, before


def test_a_sub_chain_inherits_a_longer_chains_closer_params():
    search, before = _inherit_into_chorus("PeakFilter", {"cutoff_frequency_hz": 1000.0, "gain_db": 0.0, "q": 1.0},
                                          0.0)
    row = search.fitted[("Chorus",)]
    assert row.relative < 0.2 * before
    assert row.relative == pytest.approx(search.fitted[("PeakFilter", "Chorus")].relative, rel=0.05)


def test_a_sub_chain_inherits_params_at_its_own_output_level():
    """A Distortion > Chorus fitted the Chorus right and brought its drive's level back with its output level; the
    Chorus alone, in another LFO valley, takes the longer chain's Chorus at the level that suits it without the
    drive (at the longer chain's output level it would sit 7 dB low)."""
    search, before = _inherit_into_chorus("Distortion", {"drive_db": 8.0}, -7.0)
    row, layout = search.fitted[("Chorus",)], search.renderer.layout
    assert row.relative < 0.2 * before
    assert abs(float(layout.gain_db(_sigmoid(row.z)[layout.gain]))) < 1.0


def test_a_chorus_left_in_another_delay_valley_takes_its_read_again():
    """A row whose Chorus sits at 20 ms where the pair's read says 9 ms: the last stage's start moves it to the read
    (`_nearest_read`), which is closer; a row already at the read keeps its params."""
    x = _dry(1.2)
    chorus = {"rate_hz": 1.3, "depth": 0.3, "centre_delay_ms": 9.0, "feedback": 0.2, "mix": 0.5}
    wet = _render(x, pedalboard.Chorus(**chorus))
    search = _Search(x, wet, RATE, align(x, wet, RATE), [Candidate(("Chorus",))], SMALL, _Clock(None, None, None))
    assert search.identification is not None and search.identification.reads["Chorus"].starts
    layout, chain = search.renderer.layout, ("Chorus",)
    base = np.full(layout.width, 0.5)
    base[layout.gain] = layout.gain_unit(0.0)
    off = layout.encode(chain, {"Chorus": {**chorus, "centre_delay_ms": 20.0}}, base)
    sig = search._stage_pair(len(SMALL.stages) - 1)[False]
    moved = search._nearest_read(off, chain, "Chorus", sig)
    params = dict(layout.decode(chain, moved))["Chorus"]
    assert abs(params["centre_delay_ms"] - 9.0) < 2.0
    d = _evaluate(np.stack([off, moved]), chain, search.renderer, sig, True, search.clock)
    assert d[1] < 0.5 * d[0]
    assert np.array_equal(search._nearest_read(moved, chain, "Chorus", sig), moved)
    # the progress plan counts the points the read tries (it once left them out: a few % optimistic)
    before = search.clock.done
    search._nearest_read(off, chain, "Chorus", sig)
    assert search._read_points(chain) >= 2
    assert search.clock.done - before == pytest.approx(search._read_points(chain) * sig.x.shape[-1] * sig.unit)
    assert search._read_points(("PeakFilter",)) == 0


@pytest.mark.parametrize("rate_hz,longer", [(0.2, True), (2.0, False)])
def test_a_slow_lfo_read_lengthens_the_excerpt(rate_hz, longer):
    """A chorus read slower than SLOW_LFO_HZ makes the excerpt SLOW_LFO_EXCERPT_SECONDS long (the take allowing):
    the last stage hears more of its sweep; a fast one leaves the excerpt as set."""
    x = _dry(3.5)
    wet = _render(x, pedalboard.Chorus(rate_hz=rate_hz, depth=0.6, centre_delay_ms=8.0, feedback=0.2, mix=0.5))
    search = _Search(x, wet, RATE, align(x, wet, RATE), [Candidate(("Chorus",))], SMALL, _Clock(None, None, None))
    assert _slow_lfo(search.identification) == longer
    expected = min(SLOW_LFO_EXCERPT_SECONDS, (x.size - search.start) / RATE) if longer else SMALL.excerpt_seconds
    assert search.length == pytest.approx(expected * RATE, abs=2)


def test_a_choice_no_closer_than_no_effect_over_the_take_gives_way():
    x = _dry(2.0)
    wet = 0.5 * x  # a plain gain: the excerpt's choice was wrong
    drive = ChainFit(("Distortion",), [("Distortion", {"drive_db": 30.0})], 0.01, 0.05, -12.0, 1)
    none = ChainFit((), [], 0.2, 0.9, -6.02, 1)
    ranking, _ = check_on_take(x, wet, RATE, [drive, none])
    assert [f.chain for f in ranking] == [(), ("Distortion",)]
    # a right choice stays first, with its figure over the take
    echo = _render(x, pedalboard.Delay(delay_seconds=0.15, feedback=0.3, mix=0.4))
    delay = ChainFit(("Delay",), [("Delay", {"delay_seconds": 0.15, "feedback": 0.3, "mix": 0.4})], 0.01, 0.05, 0.0, 1)
    ranking, relative = check_on_take(x, echo, RATE, [delay, none])
    assert ranking[0].chain == ("Delay",) and relative < 0.01


def test_the_answer_is_never_farther_from_the_take_than_the_dry_take_itself():
    """Every chain fitted on the excerpt is farther from the whole take than the dry take as given, and so is the
    dry take at the wet take's level (a burst of noise no chain holds makes the wet take louder): the answer is no
    effect at 0 dB, not at the level the excerpt fitted, and its figure over the take is the dry take's own."""
    x = _dry(2.0)
    wet = x.copy()
    burst = np.random.default_rng(3).standard_normal(RATE // 5).astype(np.float32)
    wet[: burst.size] += 0.8 * np.abs(x).max() * burst
    drive = ChainFit(("Distortion",), [("Distortion", {"drive_db": 30.0})], 0.01, 0.05, -12.0, 1)
    none = ChainFit((), [], 0.2, 0.9, 4.0, 1)
    ranking, relative = check_on_take(x, wet, RATE, [drive, none])
    assert ranking[0].chain == () and ranking[0].gain_db == 0.0 and relative == pytest.approx(1.0)
    # without an empty chain in the ranking, one is added in front
    ranking, relative = check_on_take(x, wet, RATE, [drive])
    assert [f.chain for f in ranking] == [(), ("Distortion",)] and relative == pytest.approx(1.0)
    # with the search's gated distance the answer holds under the plain one (the benchmarks' score) as well
    ranking, relative = check_on_take(x, wet, RATE, [drive, none], gate=True)
    answer = torch.from_numpy(x * 10 ** (ranking[0].gain_db / 20))[None]
    target = torch.from_numpy(wet)[None]
    assert ranking[0].chain == () and relative <= 1.0 + 1e-6
    assert float(mrstft_distance(answer, target)) <= float(mrstft_distance(torch.from_numpy(x)[None], target)) + 1e-6


def test_stages_without_a_rate_run_at_the_recordings_rate():
    """Stage(None, ...) fits the twins at the input's own rate: a Reverb (which pedalboard renders differently at
    another rate) comes out closer to its target than in the same search at half the rate."""
    x = _dry()
    wet = _render(x, pedalboard.Reverb(room_size=0.6, wet_level=0.4))
    cands = [Candidate(("Reverb",), (("Reverb", {"room_size": 0.6, "damping": 0.5, "wet_level": 0.4,
                                                  "dry_level": 0.4}),))]
    native = SearchSettings(excerpt_seconds=0.6, stages=(Stage(None, None, 2, 0.01, (1024, 256), 2),))
    low = SearchSettings(excerpt_seconds=0.6, stages=(Stage(8000, None, 2, 0.01, (1024, 256), 2),))
    at_native, at_low = (capture(x, wet, RATE, cands, settings=s, seed=1) for s in (native, low))
    assert at_native.sample_rate == RATE and at_low.sample_rate == 8000
    reverb = [next(f for f in r.ranking if f.chain == ("Reverb",)) for r in (at_native, at_low)]
    assert reverb[0].relative < 0.1 and reverb[1].relative > 0.3  # 5.8 % and 70 % with the noise gate


def test_parsimony_drops_an_inaudible_effect():
    x = _dry()
    wet = _render(x, pedalboard.Distortion(drive_db=25.0), pedalboard.PeakFilter(gain_db=0.0))  # a flat EQ
    cands = [Candidate(c) for c in [(), ("Distortion",), ("Distortion", "PeakFilter")]]
    result = capture(x, wet, RATE, cands, settings=SMALL)
    assert result.best.chain == ("Distortion",)
    longer = next(f for f in result.ranking if f.chain == ("Distortion", "PeakFilter"))
    assert longer.relative <= result.best.relative * 1.1  # it fits as well: the shorter one wins by the rule


def test_choose_prefers_the_shortest_chain_within_the_tolerance():
    def fit(chain, rel):
        return ChainFit(tuple(chain), [], rel, rel, 0.0, 1)

    fits = [fit(["Distortion", "Delay"], 0.10), fit(["Distortion"], 0.105), fit([], 0.9), fit(["Delay"], 0.5)]
    assert choose(fits, 0.1) == 1
    assert choose(fits, 0.01) == 0
    # both near-exact: a third closer is within the ratio's reach only with an absolute slack
    tiny = [fit(["Compressor", "Distortion", "PeakFilter"], 0.0043), fit(["Compressor"], 0.0057)]
    assert choose(tiny, 0.05) == 0 and choose(tiny, 0.05, slack=0.01) == 1


def test_choose_with_a_prior_weight_keeps_an_effect_the_encoder_is_sure_of():
    """A close tie in distance goes to the chain the encoder finds likelier; without priors, or at weight 0, the
    distance alone decides; a clearly closer chain still wins over a likelier one."""
    def fit(chain, rel, prior):
        return ChainFit(tuple(chain), [], rel, rel, 0.0, 1, prior)

    tie = [fit(["Reverb"], 0.300, 0.01), fit(["Chorus", "Reverb"], 0.305, 0.6)]
    assert choose(tie, 0.0) == 0 and choose(tie, 0.0, prior_weight=0.02) == 1
    assert choose([replace(f, prior=None) for f in tie], 0.0, prior_weight=0.02) == 0
    far = [fit(["Reverb"], 0.10, 0.01), fit(["Chorus", "Reverb"], 0.30, 0.6)]
    assert choose(far, 0.0, prior_weight=0.02) == 0
    # the prior weighs a ratio: fits 100 times closer (a near-exact capture) make the same choices
    for fits in (tie, far):
        small = [replace(f, relative=f.relative / 100, distance=f.distance / 100) for f in fits]
        assert choose(small, 0.0, prior_weight=0.02) == choose(fits, 0.0, prior_weight=0.02)
    # and a fit five times closer is not overruled by a chain the encoder finds 60 times likelier
    close = [fit(["Reverb"], 0.002, 0.01), fit(["Chorus", "Reverb"], 0.010, 0.6)]
    assert choose(close, 0.0, prior_weight=SearchSettings().prior_weight) == 0


def test_search_can_be_cancelled_and_reports_progress():
    x = _dry()
    wet = _render(x, pedalboard.Distortion(drive_db=20.0))
    calls, seen = [], []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 5

    with pytest.raises(CaptureCancelled):
        capture(x, wet, RATE, settings=SMALL, should_stop=stop, progress=seen.append)
    assert len(calls) == 6
    cands = [Candidate(c) for c in [(), ("Distortion",)]]
    seen.clear()
    capture(x, wet, RATE, cands, settings=SMALL, progress=seen.append)
    fractions = [p.fraction for p in seen]
    assert len(seen) > 5 and fractions == sorted(fractions) and 0 < fractions[-1] <= 1
    assert seen[-1].best_chain == ("Distortion",) and {p.stage for p in seen} == {0, 1}


def test_time_budget_ends_the_search_early_with_an_answer():
    x = _dry()
    wet = _render(x, pedalboard.Distortion(drive_db=20.0))
    result = capture(x, wet, RATE, time_budget=0.05, settings=SMALL)
    assert not result.complete and result.ranking and result.seconds < 5.0


def test_spectra_distance_is_the_projects_mrstft():
    gen = torch.Generator().manual_seed(0)
    est, target = torch.randn(3, 4000, generator=gen), torch.randn(4000, generator=gen)
    ours = _Spectra(target, (1024, 256)).distance(est)
    ref = mrstft_distance(est, target.expand(3, -1), fft_sizes=(1024, 256), reduce=False)
    assert torch.allclose(ours, ref, rtol=1e-5)


def test_candidates_from_ranked_add_sub_chains_with_the_encoders_params():
    class Ranked:
        def __init__(self, chain, params, probability):
            self.chain, self.params, self.probability = chain, params, probability

    ranked = [Ranked(("Distortion", "Delay"), [("Distortion", {"drive_db": 20.0}),
                                               ("Delay", {"delay_seconds": 0.3, "feedback": 0.1, "mix": 0.3})], 0.7),
              Ranked(("Reverb",), [("Reverb", {"room_size": 0.5, "damping": 0.5, "wet_level": 0.3,
                                               "dry_level": 0.6})], 0.2),
              Ranked(("Distortion",), [("Distortion", {"drive_db": 10.0})], 0.1)]
    cands = candidates_from_ranked(ranked, 1)
    assert [c.chain for c in cands] == [(), ("Delay",), ("Distortion",), ("Distortion", "Delay")]
    assert dict(cands[2].params) == {"Distortion": {"drive_db": 20.0}}
    # each candidate's prior is the encoder's probability of that chain, from the whole ranking (None: not ranked)
    assert [c.prior for c in cands] == [None, None, 0.1, 0.7]
    assert sub_chains(("A", "B")) == [(), ("A",), ("B",), ("A", "B")]


def test_align_works_on_clips_shorter_than_the_offset_range():
    """0.6 s clips (the search range is +-1 s): the impulse response is computed long enough for every lag."""
    x = _dry(0.6)
    wet = _delayed(_render(x, pedalboard.Distortion(drive_db=20.0)), 80)
    assert align(x, wet, RATE).offset == 80


# ----------------------------------------------------------------------------------------------------------------
# issue 25: capture says when it does not fit (excerpts, offsets at the window's edge, other performances, noise
# floors, progress)


def _take(seconds: float = 3.0, seed: int = 3) -> np.ndarray:
    """A longer take: 8 seeded plucks over `seconds` at 16 kHz, float32 `[samples]`."""
    return testsignals.pluck(RATE, seconds, np.random.default_rng(seed), n_notes=8)[0]


def _tpdf16(x: np.ndarray, seed: int) -> np.ndarray:
    """`x` quantised to 16 bits with TPDF dither (what a 16-bit file holds)."""
    rng = np.random.default_rng(seed)
    lsb = 2.0**-15
    dither = (rng.uniform(-0.5, 0.5, x.size) + rng.uniform(-0.5, 0.5, x.size)) * lsb
    return (np.round((x + dither) / lsb) * lsb).astype(np.float32)


@pytest.mark.filterwarnings("error")  # no numpy RuntimeWarning leaks
def test_an_excerpt_of_the_wet_take_is_placed_anywhere_in_the_dry_take():
    """A 1 s and a 0.5 s excerpt of the wet take (was: refused as "not the same performance", and "overlap 0.00 s"
    with two RuntimeWarnings) are found where they lie in the 3 s dry take, and the search names the effect."""
    x = _take()
    wet = _render(x, pedalboard.Distortion(drive_db=25.0))
    cands = [Candidate(c) for c in [(), ("Distortion",)]]
    for start, seconds in ((1.3, 1.0), (2.0, 0.5)):
        excerpt = wet[int(start * RATE) : int((start + seconds) * RATE)]
        al = align(x, excerpt, RATE)
        assert abs(al.offset + int(start * RATE)) <= 1 and al.whole_take and not al.at_edge, al
        result = capture(x, excerpt, RATE, cands, settings=SMALL)
        assert result.best.chain == ("Distortion",) and result.best.relative < 0.2
        assert not result.warnings, result.warnings
    with pytest.raises(FxmatchInputError, match=r"lasts 0.30 s, too short to fit anything: at least 0.5 s"):
        capture(x, wet[RATE : RATE + int(0.3 * RATE)], RATE, cands, settings=SMALL)


@pytest.mark.filterwarnings("error")
def test_a_dry_file_2s_late_is_found_and_an_offset_at_the_windows_edge_is_said():
    """The dry take starting 2 s late (2 s more before it) is aligned at -2000 ms; searched only within +-1 s (as
    before) the offset sits at the window's edge, and the search says so with what to do."""
    take = _take()
    dry = np.concatenate([0.3 * _take(2.0, seed=9), take])  # 2 s of other playing first
    wet = _render(take, pedalboard.Distortion(drive_db=25.0))
    al = align(dry, wet, RATE)
    assert abs(al.offset + 2 * RATE) <= 1 and not al.at_edge
    pinned = align(dry, wet, RATE, whole_take=False)
    assert pinned.at_edge and abs(pinned.offset_ms + 1000.0) <= 20.0, pinned
    result = capture(dry, wet, RATE, [Candidate(()), Candidate(("Distortion",))], settings=SMALL, alignment=pinned)
    assert any("edge of the +-1 s window" in w and "--max-offset" in w for w in result.warnings), result.warnings


def test_fit_warnings_name_each_problem_in_one_line():
    from fxmatch.capture import Alignment, CaptureResult, fit_warnings

    fits = [ChainFit(("Chorus", "Reverb", "Delay"), [], 1.1, 0.55, 0.0, 1)]
    result = CaptureResult(fits, Alignment(-16000, RATE, 0.4, at_edge=True, partials=0.03), RATE, 0.0, 1.5, 2.0,
                           1.0, 64, True)
    lines = fit_warnings(result)
    assert len(lines) == 3 and all("\n" not in line for line in lines)
    assert "-1000.0 ms" in lines[0] and "edge" in lines[0]
    assert "may not be one performance" in lines[1] and "0.03" in lines[1]
    assert "55 % of the no-effect distance" in lines[2]
    fine = CaptureResult([ChainFit(("Distortion",), [], 0.1, 0.05, 0.0, 1)], Alignment(0, RATE, 0.9, partials=0.9),
                         RATE, 0.0, 1.5, 2.0, 1.0, 64, True)
    assert fit_warnings(fine) == []


def test_another_instrument_at_the_same_tempo_is_flagged_as_another_performance():
    """The bundled guitar DI against the keys chord's wet take: the band envelopes correlate enough to align (0.57),
    but the partials do not (0.04); each take against its own wet file does (0.67-1.0)."""
    import soundfile as sf

    from fxmatch.capture import MIN_PARTIALS

    def read(name):
        return sf.read(f"examples/{name}.flac", dtype="float32")

    (guitar, rate), (chord, _) = read("guitar_distortion_dry"), read("chord_peakfilter_phaser_target")
    other = align(guitar, chord, rate)
    assert other.correlation >= 0.3 and other.partials < MIN_PARTIALS
    for name in ("guitar_distortion", "chord_peakfilter_phaser", "drums_compressor_peakfilter_delay"):
        assert align(read(f"{name}_dry")[0], read(f"{name}_target")[0], rate).partials > 0.5


@pytest.mark.parametrize("level_db", [-20.0, -30.0])
def test_the_figure_ignores_a_16_bit_dither_floor(level_db):
    """Quiet plucks and their EQ'd take, both 16-bit with TPDF dither: the true EQ reads 1-3 % of the no-effect
    distance (34-39 % before the noise gate, when the dither floor dominated the log-magnitude term)."""
    x = _tpdf16(_dry() * 10 ** (level_db / 20), 1)
    wet = _tpdf16(_render(x, pedalboard.PeakFilter(cutoff_frequency_hz=800.0, gain_db=8.0, q=1.0)), 2)
    true = (("PeakFilter", {"cutoff_frequency_hz": 800.0, "gain_db": 8.0, "q": 1.0}),)
    cands = [Candidate(()), Candidate(("PeakFilter",), true)]
    gated = capture(x, wet, RATE, cands, settings=SMALL)
    ungated = capture(x, wet, RATE, cands, settings=replace(SMALL, gate_noise=False))
    assert gated.best.chain == ("PeakFilter",) and gated.best.relative < 0.05 and not gated.warnings
    assert ungated.best.relative > 0.3  # the old figure, for the record


def test_progress_is_monotone_and_ends_with_the_chosen_chains_figure():
    """The fraction never goes back and ends at 1; "closest so far" never rises within a stage; the last report
    is the result's chosen chain with its figure (was: the best rose 25 % -> 34 % and stopped at 55 %)."""
    x = _dry()
    wet = _render(x, pedalboard.Distortion(drive_db=20.0))
    seen: list = []
    result = capture(x, wet, RATE, [Candidate(c) for c in [(), ("Distortion",), ("Distortion", "Delay")]],
                     settings=SMALL, progress=seen.append)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and seen[-1].fraction == 1.0 and seen[-1].done
    assert not any(p.done for p in seen[:-1])
    for stage in {p.stage for p in seen[:-1]}:
        best = [p.best_relative for p in seen[:-1] if p.stage == stage]
        assert best == sorted(best, reverse=True)
    assert seen[-1].best_chain == result.best.chain and seen[-1].best_relative == result.best.relative
    assert {p.rate for p in seen} == {RATE} and all(p.window_seconds > 0 for p in seen)


def test_the_search_keeps_what_the_alignment_found_when_it_moves_the_offset():
    """The re-alignment before the last stage moves the offset (and re-measures the level) but keeps the window,
    the edge flag, the whole-take flag and the partials (it once rebuilt the Alignment and lost them)."""
    from fxmatch.capture import Alignment, moved

    x = _dry()
    al = Alignment(100, RATE, 0.7, 0.0, 1.0, True, True, 0.12)
    after = moved(al, 3, x, 0.5 * _delayed(x, 103))
    assert (after.offset, after.window_s, after.at_edge, after.whole_take, after.partials) == (103, 1.0, True, True,
                                                                                              0.12)
    assert after.level_db == pytest.approx(-6.02, abs=0.05)


def test_capture_tries_a_drives_tone_stage_the_vocabulary_lacks():
    from fxmatch.capture import all_candidates, tone_stage_chains
    from fxmatch.effects import get_spec
    from fxmatch.vocabulary import ChainVocabulary

    default = ChainVocabulary.default()
    tone = tone_stage_chains(default)
    assert ("Distortion", "LowpassFilter") in tone and ("Compressor", "Distortion", "LowpassFilter") in tone
    assert all(c[c.index("LowpassFilter") - 1] == "Distortion" and len(c) <= 3 for c in tone)
    chains = [c.chain for c in all_candidates()]
    assert len(chains) == len(set(chains)) == default.n_chains + len(tone)
    grown = ChainVocabulary(effects=tuple(default.effect(n) for n in ("Distortion", "Reverb"))
                            + (get_spec("LowpassFilter"),), max_length=2)
    assert tone_stage_chains(grown) == []  # a vocabulary that speaks it already holds those chains
