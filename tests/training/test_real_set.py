"""training.real_set: the real-recording held-out views, and no training config reads their recordings."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from fxmatch.errors import FxmatchInputError
from fxmatch.vocabulary import ChainVocabulary
from training import real_set
from training.data import length_uniform_weights

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_no_training_config_reads_the_held_out_recordings_or_soundfont():
    for path in CONFIGS.glob("*.yaml"):
        text = path.read_text()
        assert "sonic-pi" not in text.lower(), path
        config = yaml.safe_load(text)
        if not path.name.startswith("heldout-"):
            assert "MuseScore" not in str(config.get("soundfont")) + str(config.get("soundfont2")), path


def test_length_uniform_weights_make_every_length_equally_likely():
    vocab = ChainVocabulary.default()
    weights = length_uniform_weights(vocab, range(4))
    by_length = Counter()
    for chain in vocab.chains:
        by_length[len(chain)] += weights[">".join(chain) if chain else "dry"]
    assert all(v == pytest.approx(1.0) for v in by_length.values()) and len(by_length) == 4
    no_empty = length_uniform_weights(vocab, (1, 2, 3))
    assert no_empty["dry"] == 0.0


def test_real_sets_hold_three_views_of_the_same_clips(tmp_path):
    written = real_set.make_real_sets(tmp_path / "real", seed=1)
    labels = {v: json.loads((written[v] / "labels.json").read_text()) for v in real_set.VIEWS}
    n = len(labels["unprocessed"]["examples"])
    assert n >= 30 and all(len(labels[v]["examples"]) == n for v in real_set.VIEWS)
    assert all(not e["chain"] for e in labels["unprocessed"]["examples"])
    lengths = Counter(len(e["chain"]) for e in labels["pedalboard"]["examples"])
    assert set(lengths) == {1, 2, 3}
    assert [e["chain"] for e in labels["pedalboard"]["examples"]] == [e["chain"] for e in labels["sox"]["examples"]]
    assert labels["sox"]["data"]["renderer"] == "sox"


def test_real_sets_refuse_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FxmatchInputError, match="not an empty folder"):
        real_set.make_real_sets(tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"
