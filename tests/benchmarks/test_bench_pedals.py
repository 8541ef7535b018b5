"""benchmarks.bench_pedals: capture on real-pedal pairs, scored by the search's figure and the whole file."""

from __future__ import annotations

import json

import numpy as np
import pedalboard
import pytest
import soundfile as sf

from benchmarks import bench_pedals
from fxmatch import testsignals
from fxmatch.capture import Candidate, SearchSettings, Stage, capture
from fxmatch.errors import FxmatchInputError

RATE = 16000
SMALL = SearchSettings(excerpt_seconds=0.6, stages=(Stage(16000, None, 6, 0.15, (1024, 256), 2), Stage(16000, 3, 6)))


def _pair_folder(tmp_path, wets: dict[str, np.ndarray], dry: np.ndarray):
    (tmp_path / "dry").mkdir()
    (tmp_path / "wet").mkdir()
    pairs = []
    for name, wet in wets.items():
        sf.write(tmp_path / "dry" / f"{name}.wav", dry, RATE, subtype="FLOAT")
        sf.write(tmp_path / "wet" / f"{name}.wav", wet, RATE, subtype="FLOAT")
        pairs.append({"name": name, "pedal": name.split("-")[0], "strength": name.split("-")[1]})
    (tmp_path / "pairs.json").write_text(json.dumps({"sample_rate": RATE, "pairs": pairs}))
    return tmp_path


def _drive(dry: np.ndarray) -> np.ndarray:
    board = pedalboard.Pedalboard([pedalboard.Distortion(drive_db=15.0), pedalboard.Gain(gain_db=-12.0)])
    return board(dry[None], RATE)[0]


def test_the_whole_file_figure_is_relative_to_the_dry_take_at_the_wet_takes_level():
    dry = testsignals.make("pluck", RATE, 1.2, seed=3)[0]
    wet = _drive(dry)
    found = capture(dry, wet, RATE, [Candidate(()), Candidate(("Distortion",))], settings=SMALL)
    empty = capture(dry, wet, RATE, [Candidate(())], settings=SMALL)
    assert found.best.chain == ("Distortion",)
    assert bench_pedals.whole_file_relative(found, dry, wet, RATE) < 0.6
    # the empty chain fits the level, and so does the reference: about 100 % (against the dry take as it is, less)
    assert 0.9 < bench_pedals.whole_file_relative(empty, dry, wet, RATE) < 1.1


def test_run_scores_each_pair_and_summarises(tmp_path):
    dry = testsignals.make("pluck", RATE, 1.2, seed=3)[0]
    folder = _pair_folder(tmp_path, {"Drive-medium": _drive(dry), "Plain-gain": 0.5 * dry}, dry)
    out = bench_pedals.run(str(folder), every=1, settings=SMALL)
    drive, plain = out["rows"]
    assert drive["distortion_named"] and drive["gain_db"] < -3.0
    assert plain["found"] == [] and plain["whole_file_relative"] < 0.05  # the fitted level is all it takes
    assert out["pairs"] == 2 and out["distortion_named"] == 1
    assert out["whole_file_worst"] == drive["whole_file_relative"] > plain["whole_file_relative"]
    assert out["search_worst"] == max(drive["search_relative"], plain["search_relative"])


def test_a_folder_without_pairs_is_a_clear_error(tmp_path):
    with pytest.raises(FxmatchInputError, match="not a real-distortion pair folder"):
        bench_pedals.run(str(tmp_path))
    assert bench_pedals.main([str(tmp_path)]) == 2
