"""training.config: every shipped config loads; a bad knob is one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fxmatch.errors import FxmatchInputError
from training.config import config_from_dict, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_is_valid(path):
    assert load_config(path).name


@pytest.mark.parametrize(("knob", "value", "words"), [
    ("mode", "magic", "one of wta, naive, supervised, full_chain"),
    ("steps", 0, "at least 1"),
    ("steps", 2.5, "int"),
    ("steps", True, "int"),
    ("lr", 0, "positive"),
    ("dropout", 1.0, r"in \[0, 1\)"),
    ("effects", ["Compressor", "Compressor"], "distinct effect names among .*"),
    ("effects", ["Wah"], "distinct effect names among .*"),
    ("device", "tpu", "auto, cpu, cuda or cuda:N"),
    ("fft_sizes", [2048, 8], "a list of ints >= 16"),
    ("spectrum_bins", 8, "0 \\(none\\) or at least 16"),
    ("level_jitter_db", 41.0, "between 0 and 40"),
    ("time_pools", [2], "one factor >= 1 per entry of channels"),
    ("max_length", 9, "between 0 and 7"),
    ("f_min", 30000.0, "positive and below f_max"),
    ("only_after", {"LowpassFilter": "Distortion"}, "a mapping between two different effects of the config's effects"),
    ("only_after", {"Distortion": 3}, r"dict\[str, str\] \| None"),
])
def test_a_bad_knob_is_named_with_what_it_must_be(knob, value, words):
    with pytest.raises(FxmatchInputError, match=rf"^config: {knob} must be {words}, got "):
        config_from_dict({knob: value})


def test_ints_are_taken_for_floats_and_cuda_devices_by_number():
    config = config_from_dict({"lr": 1, "device": "cuda:1"})
    assert config.lr == 1.0 and isinstance(config.lr, float) and config.device == "cuda:1"
