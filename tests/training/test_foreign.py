"""The SoX renderer (training/foreign.py): every effect changes the signal and keeps its length and alignment,
measurable behaviour per effect, chains in order, and `renderer: sox` in data sets, configs and audibility."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fxmatch.errors import FxmatchInputError
from fxmatch.vocabulary import ChainVocabulary
from training import foreign
from training.data import TargetDataset, render_pedalboard
from training.sources import SynthSource

SR = 44100
needs_sox = pytest.mark.skipif(shutil.which("sox") is None,
                               reason="the sox binary is not installed (apt-get install sox)")

#: audible settings of every effect, inside the training ranges
PARAMS = {
    "Compressor": {"threshold_db": -30.0, "ratio": 8.0, "attack_ms": 2.0, "release_ms": 100.0},
    "Distortion": {"drive_db": 25.0},
    "PeakFilter": {"cutoff_frequency_hz": 1000.0, "gain_db": 9.0, "q": 1.0},
    "Chorus": {"rate_hz": 1.0, "depth": 0.5, "centre_delay_ms": 10.0, "feedback": 0.2, "mix": 0.5},
    "Phaser": {"rate_hz": 1.0, "depth": 0.6, "centre_frequency_hz": 1000.0, "feedback": 0.3, "mix": 0.5},
    "Delay": {"delay_seconds": 0.1, "feedback": 0.4, "mix": 0.3},
    "Reverb": {"room_size": 0.6, "damping": 0.4, "wet_level": 0.3, "dry_level": 0.7},
}
NON_DELAY = [name for name in PARAMS if name != "Delay"]


@pytest.fixture(scope="module")
def vocab() -> ChainVocabulary:
    return ChainVocabulary.default()


def noise(seconds: float = 0.5, rms: float = 0.1, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * SR)) * rms).astype(np.float32)


def sine(freq: float, seconds: float = 0.5, amplitude: float = 0.1) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def db(a: np.ndarray) -> float:
    return 10.0 * np.log10(np.mean(np.asarray(a, dtype=np.float64) ** 2) + 1e-30)


def render(vocab, names, params, x):
    return foreign.render_sox(vocab, list(names), [dict(p) for p in params], x, SR)


@needs_sox
@pytest.mark.parametrize("name", list(PARAMS))
def test_each_effect_changes_the_signal_and_keeps_its_length(vocab, name):
    x = noise(0.3)
    y = render(vocab, [name], [PARAMS[name]], x)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.all(np.isfinite(y))
    assert db(y - x) - db(x) > -30.0  # the difference is audible


@needs_sox
@pytest.mark.parametrize("name", NON_DELAY)
def test_non_delay_effects_do_not_shift_an_impulse(vocab, name):
    n0 = 2000
    base = np.zeros(8000, dtype=np.float32)
    x = base.copy()
    x[n0] = 0.5
    # the impulse's own contribution (overdrive's bias makes a DC-blocker transient from silence as well)
    d = render(vocab, [name], [PARAMS[name]], x).astype(np.float64) - render(vocab, [name], [PARAMS[name]], base)
    first = int(np.flatnonzero(np.abs(d) > 1e-6 * np.max(np.abs(d)))[0])
    assert first == n0
    assert abs(d[n0]) > 0.1 * 0.5  # the direct signal is there at once, not a faint precursor


@needs_sox
def test_delay_echoes_at_delay_seconds_with_feedback(vocab):
    p = {"delay_seconds": 0.05, "feedback": 0.5, "mix": 0.4}
    x = noise(0.5, seed=3)
    y = render(vocab, ["Delay"], [p], x)
    echo = y.astype(np.float64) - (1.0 - p["mix"]) * x  # what the dry path does not explain
    n = x.size
    spec = np.fft.rfft(echo, 2 * n) * np.conj(np.fft.rfft(x, 2 * n))
    overlap = np.cumsum(x.astype(np.float64) ** 2)[::-1]  # at lag k: the energy of x[:n - k]
    xcorr = np.fft.irfft(spec)[:n] / overlap
    lag = round(0.05 * SR)
    assert int(np.argmax(xcorr)) == lag
    assert xcorr[lag] == pytest.approx(p["mix"], rel=0.05)
    assert xcorr[2 * lag] == pytest.approx(p["mix"] * p["feedback"], rel=0.1)
    assert abs(xcorr[0]) < 0.02  # no dry leak into the echo


@needs_sox
def test_chorus_echo_swings_around_the_centre_delay(vocab):
    """Impulses at several LFO phases: the wet copy lies within centre +- swing (20 +- 3 ms), never near the dry one
    (SoX's sine modulation, which the mapping avoids, would put it at 0..3 ms)."""
    p = {"rate_hz": 2.0, "depth": 0.3, "centre_delay_ms": 20.0, "feedback": 0.0, "mix": 0.5}
    starts = [int(t * SR) for t in (0.05, 0.12, 0.21, 0.33, 0.41)]
    x = np.zeros(int(0.5 * SR), dtype=np.float32)
    x[starts] = 0.5
    y = render(vocab, ["Chorus"], [p], x)
    for n0 in starts:
        seg = np.abs(y[n0 + 1: n0 + int(0.03 * SR)])
        lag_ms = (1 + int(np.argmax(seg))) * 1000.0 / SR
        assert 16.5 <= lag_ms <= 23.5, (n0, lag_ms)
        assert float(seg.max()) == pytest.approx(0.25, abs=0.01)  # mix 0.5 of 0.5 (SoX does not interpolate)


@needs_sox
def test_reverb_dry_gain_wet_level_and_room_size(vocab):
    n0 = 1000
    x = np.zeros(int(0.6 * SR), dtype=np.float32)
    x[n0] = 0.5
    base = {"room_size": 0.5, "damping": 0.5, "wet_level": 0.2, "dry_level": 0.7}
    y = render(vocab, ["Reverb"], [base], x)
    assert y[n0] == pytest.approx(2 * 0.7 * 0.5, rel=1e-4)  # JUCE's dry scale factor, no shift
    tail = slice(n0 + 1, None)
    louder = render(vocab, ["Reverb"], [{**base, "wet_level": 0.6}], x)
    assert db(louder[tail]) - db(y[tail]) == pytest.approx(20 * np.log10(3.0), abs=0.1)
    late = slice(n0 + int(0.3 * SR), None)
    small, large = (render(vocab, ["Reverb"], [{**base, "room_size": r}], x) for r in (0.2, 0.9))
    assert db(large[late]) - db(small[late]) > 10.0  # a larger room decays more slowly


@needs_sox
def test_phaser_change_grows_with_mix(vocab):
    x = noise(0.3, seed=11)
    changes = [db(render(vocab, ["Phaser"], [{**PARAMS["Phaser"], "mix": m}], x) - x) for m in (0.3, 0.5, 0.8)]
    assert changes[0] < changes[1] < changes[2]


@needs_sox
@pytest.mark.parametrize("gain_db", [-9.0, 9.0])
def test_peak_filter_gain_at_its_cutoff_within_1_db(vocab, gain_db):
    p = {"cutoff_frequency_hz": 1500.0, "gain_db": gain_db, "q": 2.0}
    x = sine(1500.0)
    y = render(vocab, ["PeakFilter"], [p], x)
    half = x.size // 2  # past the filter's start-up
    assert db(y[half:]) - db(x[half:]) == pytest.approx(gain_db, abs=1.0)
    far = sine(150.0)
    assert db(render(vocab, ["PeakFilter"], [p], far)[half:]) - db(far[half:]) == pytest.approx(0.0, abs=0.5)


def harmonic_ratio_db(y: np.ndarray, f0: float) -> float:
    """Energy of harmonics 2..10 of `f0` over the fundamental's, dB (Hann window, whole-number periods)."""
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size))) ** 2
    freqs = np.fft.rfftfreq(y.size, 1.0 / SR)

    def band(f: float) -> float:
        return float(spec[np.abs(freqs - f) < 15.0].sum())

    return 10.0 * np.log10(sum(band(k * f0) for k in range(2, 11)) / band(f0))


@needs_sox
def test_distortion_harmonics_grow_with_drive(vocab):
    x = sine(220.5, seconds=0.4, amplitude=0.14)
    ratios = [harmonic_ratio_db(render(vocab, ["Distortion"], [{"drive_db": d}], x), 220.5) for d in (5.0, 15.0, 35.0)]
    assert ratios[0] < ratios[1] < ratios[2]
    assert ratios[2] > -10.0  # heavy drive: harmonics within 10 dB of the fundamental
    assert harmonic_ratio_db(x, 220.5) < -60.0  # the test signal itself is clean


@needs_sox
def test_compressor_lowers_a_loud_signal_more_with_a_lower_threshold(vocab):
    x = noise(0.5, rms=0.2, seed=5)  # -14 dBFS RMS
    p = dict(PARAMS["Compressor"])
    drops = [db(x) - db(render(vocab, ["Compressor"], [{**p, "threshold_db": t}], x)) for t in (-5.0, -20.0, -35.0)]
    assert drops[0] < drops[1] < drops[2]
    assert drops[2] > 10.0
    quiet = noise(0.5, rms=0.003, seed=5)  # -50 dBFS: below every threshold and its knee
    assert db(render(vocab, ["Compressor"], [{**p, "threshold_db": -20.0}], quiet)) == pytest.approx(db(quiet), abs=0.2)


@needs_sox
def test_compressor_scale_invariance_of_the_headroom(vocab):
    """The pass runs at HEADROOM_PEAK_DBFS with a shifted transfer function: a signal 6 dB louder against a 6 dB
    higher threshold gives the same output, 6 dB louder."""
    x = noise(0.3, rms=0.05, seed=6)
    p = dict(PARAMS["Compressor"])
    y1 = render(vocab, ["Compressor"], [p], x)
    y2 = render(vocab, ["Compressor"], [{**p, "threshold_db": p["threshold_db"] + 6.0}], x * np.float32(10 ** 0.3))
    assert db(y2 / np.float32(10 ** 0.3) - y1) - db(y1) < -60.0


@needs_sox
def test_a_chain_is_its_effects_applied_in_order(vocab):
    x = noise(0.3, seed=7)
    names = ["Compressor", "Distortion", "Reverb"]
    params = [PARAMS[n] for n in names]
    y = render(vocab, names, params, x)
    step = x
    for n, p in zip(names, params):
        step = render(vocab, [n], [p], step)
    np.testing.assert_array_equal(y, step)
    reverse = render(vocab, names[::-1], params[::-1], x)
    assert db(reverse - y) - db(y) > -20.0  # the order matters, so the test above could fail


@needs_sox
def test_the_empty_chain_is_the_input(vocab):
    x = noise(0.1)
    y = render(vocab, [], [], x)
    np.testing.assert_array_equal(y, x)
    assert y is not x


@needs_sox
def test_sox_differs_from_pedalboard_where_the_implementations_differ(vocab):
    x = noise(0.3, seed=8)
    for name in ("Compressor", "Distortion", "Chorus", "Phaser", "Reverb"):
        pb = render_pedalboard(vocab, [name], [PARAMS[name]], x, SR)
        sx = render(vocab, [name], [PARAMS[name]], x)
        assert db(sx - pb) - db(pb) > -40.0, name
        assert abs(db(sx) - db(pb)) < 4.0, name  # same labels, roughly the same level


@needs_sox
def test_sox_renderer_in_a_dataset_same_labels_other_targets(vocab):
    source = SynthSource(seed=2, split="heldout", sample_rate=SR, clip_seconds=0.3)
    sox_set = TargetDataset(source, vocab, seed=4, length=6, renderer="sox")
    pb_set = TargetDataset(source, vocab, seed=4, length=6, renderer="pedalboard")
    gaps = []
    for i in range(6):
        a, b = sox_set.example(i), pb_set.example(i)
        np.testing.assert_array_equal(a["x"], b["x"])
        assert a["chain"] == b["chain"] and a["units"] == b["units"] and a["chain_index"] == b["chain_index"]
        np.testing.assert_array_equal(a["params"], b["params"])
        assert a["y"].shape == b["y"].shape
        if set(a["chain"]) & {"Compressor", "Distortion", "Chorus", "Phaser", "Reverb"}:
            gaps.append(db(a["y"] - b["y"]) - db(b["y"]))
    assert gaps and max(gaps) > -30.0
    assert sox_set.describe()["renderer"] == "sox"


def test_missing_sox_binary_is_one_clear_input_error(vocab, monkeypatch):
    monkeypatch.setattr(foreign.shutil, "which", lambda _: None)
    with pytest.raises(FxmatchInputError, match="apt-get install sox"):
        foreign.render_sox(vocab, ["Delay"], [PARAMS["Delay"]], noise(0.05), SR)
    source = SynthSource(seed=0, sample_rate=SR, clip_seconds=0.1)
    with pytest.raises(FxmatchInputError, match="needs the SoX command-line tool"):
        TargetDataset(source, vocab, renderer="sox")


def test_renderer_sox_is_a_valid_config_and_held_out_sets_keep_it(tmp_path):
    from training.config import config_from_dict
    from training.make_set import config_heldout_dataset

    assert config_from_dict({"renderer": "sox"}).renderer == "sox"
    with pytest.raises(FxmatchInputError, match="renderer"):
        config_from_dict({"renderer": "foreign"})
    for asked, got in (("sox", "sox"), ("twins", "pedalboard"), ("pedalboard", "pedalboard")):
        path = tmp_path / f"{asked}.yaml"
        path.write_text(f"source: synth\nclip_seconds: 0.5\nn_fft: 1024\nrenderer: {asked}\n")
        if got == "sox" and shutil.which("sox") is None:
            continue
        assert config_heldout_dataset(path, 2).renderer == got


@needs_sox
def test_audibility_on_a_sox_set_uses_sox_renders(vocab):
    from training.eval_sets import EvalExample, with_audibility

    x = noise(0.3, seed=9)
    preset = [("Chorus", PARAMS["Chorus"]), ("PeakFilter", {"cutoff_frequency_hz": 1000.0, "gain_db": 0.05, "q": 1.0})]
    y = foreign.render_sox_preset(preset, x, SR)
    ex = [EvalExample(0, x, y, preset)]
    assert with_audibility(ex, SR, "sox")[0].audible == ("Chorus",)  # a 0.05 dB bell is inaudible
    # judged with pedalboard renders, the SoX/pedalboard gap makes the inaudible bell "audible"
    assert with_audibility(ex, SR, "pedalboard")[0].audible == ("Chorus", "PeakFilter")
