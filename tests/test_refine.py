"""fxmatch.refine: refinement on arrays (progress, cancel, bad input)."""

from __future__ import annotations

import numpy as np
import pedalboard
import pytest

from fxmatch.errors import FxmatchInputError
from fxmatch.refine import RefineCancelled, refine_arrays

RATE = 16000


def _pair(drive_db: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(RATE, dtype=np.float32) / RATE
    dry = (0.4 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    wet = pedalboard.Pedalboard([pedalboard.Distortion(drive_db=drive_db)])(dry[None], RATE)[0]
    return dry, wet.astype(np.float32)


def test_refine_arrays_moves_towards_the_truth_and_reports_progress():
    dry, wet = _pair(20.0)
    seen: list[tuple[int, int, float]] = []
    chain, report = refine_arrays(("Distortion",), [("Distortion", {"drive_db": 35.0})], dry, wet, RATE, steps=8,
                                  seconds=0.5, progress=lambda s, n, d: seen.append((s, n, d)),
                                  fit_output_level=False)
    assert [s for s, _, _ in seen] == list(range(9)) and all(n == 8 for _, n, _ in seen)
    assert report["kept"] == "refined" and report["distance_after"] < 0.85 * report["distance_before"], report
    assert [d for _, _, d in seen][-1] < seen[0][2] and report["distance_before"] == pytest.approx(seen[0][2])
    assert 20.0 - 2.0 < chain[0][1]["drive_db"] < 33.0  # at least 2 dB of the 15 dB error corrected


def test_refine_fits_the_output_level_and_writes_it_as_a_trailing_gain():
    dry, wet = _pair(20.0)
    quieter = (wet * 10 ** (-9.0 / 20)).astype(np.float32)  # the pedal's level knob at -9 dB
    given = [("Distortion", {"drive_db": 24.0})]
    _, plain_report = refine_arrays(("Distortion",), given, dry, quieter, RATE, steps=30, seconds=0.5,
                                        fit_output_level=False)
    chain, report = refine_arrays(("Distortion",), given, dry, quieter, RATE, steps=30, seconds=0.5)
    assert [name for name, _ in chain] == ["Distortion", "Gain"]
    assert chain[1][1]["gain_db"] == pytest.approx(-9.0, abs=1.0) and report["output_level_db"] == chain[1][1]["gain_db"]
    assert report["distance_before"] == pytest.approx(plain_report["distance_before"])
    assert report["distance_after"] < 0.5 * plain_report["distance_after"]
    # a chain that already carries an output level is refined from it, its Gain not taken for an effect
    again, _ = refine_arrays(("Distortion", "Gain"), chain, dry, quieter, RATE, steps=5, seconds=0.5)
    assert [name for name, _ in again] == ["Distortion", "Gain"]


def test_refine_arrays_can_be_cancelled_between_steps():
    dry, wet = _pair()
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(RefineCancelled):
        refine_arrays(("Distortion",), [("Distortion", {"drive_db": 30.0})], dry, wet, RATE, steps=50,
                      seconds=0.5, should_stop=stop)
    assert len(calls) == 3


def test_refine_arrays_rejects_silence_and_too_little_audio():
    dry, wet = _pair()
    with pytest.raises(FxmatchInputError, match="silent"):
        refine_arrays(("Distortion",), [("Distortion", {"drive_db": 30.0})], np.zeros_like(dry), wet, RATE, 2)
    with pytest.raises(FxmatchInputError, match="less than 0.1 s"):
        refine_arrays(("Distortion",), [("Distortion", {"drive_db": 30.0})], dry[:100], wet[:100], RATE, 2)
    with pytest.raises(FxmatchInputError, match="NaN"):
        refine_arrays(("Distortion",), [("Distortion", {"drive_db": 30.0})], dry * np.nan, wet, RATE, 2)
