"""training.recorded: grooves on recorded kits, and what a recording brings to a dry clip (labels unchanged)."""

from __future__ import annotations

import numpy as np
import pytest

from fxmatch.audio_io import rms_dbfs
from fxmatch.errors import FxmatchInputError
from training import recorded
from training.source_factory import make_source
from training.sources import SynthSource


def test_kit_grooves_are_deterministic_normalised_and_split_by_kit():
    train = recorded.DrumKitSource(seed=2, split="train", clip_seconds=1.0)
    heldout = recorded.DrumKitSource(seed=2, split="heldout", clip_seconds=1.0)
    a = train.clip(3)
    assert a.shape == (44100,) and a.dtype == np.float32
    assert np.array_equal(a, train.clip(3)) and not np.array_equal(a, train.clip(4))
    assert rms_dbfs(a) == pytest.approx(-20.0, abs=3.0)
    assert len(train.kits) >= 5 and len(heldout.kits) == len(recorded.HELDOUT_KITS)
    # the held-out kit's samples never appear in a training kit
    train_files = {p for kit in train.kits for files in kit.values() for p in files}
    assert not train_files & {p for kit in heldout.kits for files in kit.values() for p in files}


def test_kit_grooves_hold_kick_snare_and_hats():
    src = recorded.DrumKitSource(seed=0, clip_seconds=2.0)
    roles = set()
    for i in range(8):
        kit = src.kits[src.hits(i)[0]]
        by_file = {p: role for role, files in kit.items() for p in files}
        roles |= {by_file[path] for _, path, _ in src.hits(i)[1]}
    assert {"kick", "snare", "hat"} <= roles


def test_recording_like_changes_the_clip_deterministically_and_keeps_its_loudness():
    inner = SynthSource(seed=0, sample_rate=22050, clip_seconds=0.5)
    every = recorded.RecordingLike(inner, {"room": 1.0, "mic": 1.0, "noise": 1.0, "double": 1.0, "dynamics": 1.0},
                                   seed=4, n_rooms=2)
    none = recorded.RecordingLike(inner, {"room": 0.0, "mic": 0.0, "noise": 0.0, "double": 0.0, "dynamics": 0.0})
    x, y = inner.clip(1), every.clip(1)
    assert np.array_equal(none.clip(1), x)
    assert y.shape == x.shape and np.all(np.isfinite(y))
    assert np.array_equal(y, every.clip(1))
    assert rms_dbfs(y) == pytest.approx(rms_dbfs(x), abs=3.0)
    assert np.max(np.abs(y - x)) > 0.01  # audibly another recording of it


def test_room_impulse_response_decays():
    ir = recorded.room_impulse_response(np.random.default_rng(0), 22050)
    assert np.max(np.abs(ir)) == pytest.approx(1.0)
    energy = np.cumsum(ir[::-1].astype(np.float64) ** 2)[::-1]
    # the tail holds less energy than the start: a decaying room, not noise
    assert energy[ir.size // 2] < 0.2 * energy[0]


def test_recording_like_refuses_unknown_parts():
    with pytest.raises(FxmatchInputError, match="augment"):
        recorded.RecordingLike(SynthSource(sample_rate=8000, clip_seconds=0.1), {"reverb": 0.5})
    with pytest.raises(FxmatchInputError, match="augment"):
        recorded.RecordingLike(SynthSource(sample_rate=8000, clip_seconds=0.1), {"room": 1.5})


def test_make_source_knows_kit():
    src = make_source("kit", clip_seconds=0.5)
    assert isinstance(src, recorded.DrumKitSource)
