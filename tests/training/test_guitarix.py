"""training.guitarix: real pedal models (Guitarix LV2 via lv2apply) as held-out distortion pairs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from fxmatch.errors import FxmatchInputError
from training import guitarix
from training.real_set import SAMPLE_RATE


def _tone(seconds: float = 0.5, hz: float = 220.0, amplitude: float = 0.1) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _harmonic_share(y: np.ndarray, hz: float) -> float:
    """Energy outside +-20 Hz of `hz` over the total (a sine's distortion products)."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size))) ** 2
    f = np.fft.rfftfreq(y.size, 1 / SAMPLE_RATE)
    return float(spectrum[np.abs(f - hz) > 20].sum() / spectrum.sum())


def test_every_pedal_distorts_more_as_its_drive_rises():
    x = _tone(amplitude=0.3)  # a guitar's attack peaks about this high at -20 dBFS RMS
    for pedal in guitarix.PEDALS:
        shares = [_harmonic_share(guitarix.render_lv2(x, SAMPLE_RATE, pedal.uri, c)[2000:], 220.0)
                  for c in pedal.strengths.values()]
        assert shares[-1] > 0.01, (pedal.name, shares)  # its strongest setting audibly adds harmonics
        assert shares == sorted(shares), (pedal.name, shares)


def test_latency_is_read_from_an_impulse():
    by_name = {p.name: p for p in guitarix.PEDALS}
    ds1, mxr = by_name["BossDS1"], by_name["MXRDistortionPlus"]
    assert guitarix.latency_samples(ds1.uri, ds1.strengths["medium"]) == 0
    assert guitarix.latency_samples(mxr.uri, mxr.strengths["medium"]) == 33  # its oversampling filter


def test_pairs_are_one_performance_each_written_whole(tmp_path):
    out = tmp_path / "pairs"
    pairs = guitarix.make_pairs(out, recordings=("guit_em9",))
    assert len(pairs) == sum(len(p.strengths) for p in guitarix.PEDALS)
    read = guitarix.read_pairs(out)
    assert [p["name"] for p in read] == [p["name"] for p in pairs]
    dry, rate = sf.read(read[0]["dry"], dtype="float32")
    wet, _ = sf.read(read[0]["wet"], dtype="float32")
    assert rate == SAMPLE_RATE and dry.shape == wet.shape == (round(guitarix.CLIP_SECONDS * SAMPLE_RATE),)
    assert 20 * np.log10(np.sqrt(np.mean(dry ** 2))) == pytest.approx(guitarix.DRY_RMS_DBFS, abs=0.1)
    # the wet take is the dry one through the pedal: the near-linear MXR setting correlates at its latency
    mxr = next(p for p in read if p["pedal"] == "MXRDistortionPlus" and p["strength"] == "slight")
    dry, _ = sf.read(mxr["dry"], dtype="float32")
    wet, _ = sf.read(mxr["wet"], dtype="float32")
    lag = mxr["latency_samples"]
    assert lag == 33 and np.corrcoef(dry[: dry.size - lag], wet[lag:])[0, 1] > 0.9
    assert json.loads((out / "pairs.json").read_text())["sample_rate"] == SAMPLE_RATE
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind
    with pytest.raises(FxmatchInputError, match="not an empty folder"):
        guitarix.make_pairs(out, recordings=("guit_em9",))
