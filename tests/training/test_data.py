import numpy as np
import pytest
import torch

from fxmatch.errors import FxmatchInputError
from training import data
from training.data import TargetDataset


def test_dataset_is_reproducible_from_its_seed(tiny_source, tiny_vocab):
    a = data.TargetDataset(tiny_source, tiny_vocab, seed=7, length=10)
    b = data.TargetDataset(tiny_source, tiny_vocab, seed=7, length=10)
    for i in (0, 3):
        ea, eb = a[i], b[i]
        for key in ea:
            assert torch.equal(ea[key], eb[key]), key
    other = data.TargetDataset(tiny_source, tiny_vocab, seed=8, length=10)
    assert any(other.draw(i) != a.draw(i) for i in range(10))


def test_labels_follow_the_shared_layout(tiny_source, tiny_vocab):
    ds = data.TargetDataset(tiny_source, tiny_vocab, seed=1, length=40)
    seen = set()
    for i in range(40):
        k, params = ds.draw(i)
        seen.add(k)
        labels = data.label_vectors(tiny_vocab, k, params)
        names = tiny_vocab.chains[k]
        assert labels["present"].sum() == len(names)
        assert labels["param_mask"].sum() == sum(tiny_vocab.effect(n).n_params for n in names)
        assert np.all((labels["params"] >= 0) & (labels["params"] <= 1))
        decoded = tiny_vocab.decode(k, labels["params"])
        for (name, units), p in zip(decoded, params):
            assert units == pytest.approx(p, rel=1e-4)
    assert seen == set(range(tiny_vocab.n_chains))  # uniform draw covers the four chains


def test_chain_weights_select_chains_and_reject_unknown_names(tiny_vocab):
    p = data.chain_probabilities(tiny_vocab, {"dry": 0.0, "Compressor>Distortion": 2.0})
    assert p[tiny_vocab.chain_index([])] == 0
    assert p[tiny_vocab.chain_index(["Compressor", "Distortion"])] == pytest.approx(0.5)
    with pytest.raises(FxmatchInputError, match="not a candidate chain"):
        data.chain_probabilities(tiny_vocab, {"Reverb>Delay": 1.0})


def test_pedalboard_and_twin_renderers_agree_on_a_chain(tiny_source, tiny_vocab):
    ds = data.TargetDataset(tiny_source, tiny_vocab, seed=2, length=20)
    k = tiny_vocab.chain_index(["Compressor", "Distortion"])
    i = next(i for i in range(20) if ds.draw(i)[0] == k)
    ex = ds.example(i)
    twin = data.render_twins(ex["chain"], ex["units"], ex["x"], ds.sample_rate)
    err = np.sum((twin - ex["y"]) ** 2) / np.sum(ex["y"] ** 2)
    assert err < 1e-3


def test_dataset_round_trips_through_disk(tmp_path, tiny_source, tiny_vocab):
    ds = data.TargetDataset(tiny_source, tiny_vocab, seed=3, length=5)
    data.write_dataset(ds, tmp_path / "set", n=3)
    disk = data.DiskDataset(tmp_path / "set")
    assert len(disk) == 3 and disk.sample_rate == ds.sample_rate
    for i in range(3):
        a, b = ds[i], disk[i]
        for key in a:
            assert torch.allclose(a[key].float(), b[key].float(), atol=1e-5), key


def test_disk_dataset_rejects_a_folder_without_labels(tmp_path):
    with pytest.raises(FxmatchInputError, match="labels.json"):
        data.DiskDataset(tmp_path)


def test_level_jitter_varies_the_dry_level_within_its_range_reproducibly(tiny_source, tiny_vocab):
    plain = TargetDataset(tiny_source, tiny_vocab, seed=2, length=40)
    jittered = TargetDataset(tiny_source, tiny_vocab, seed=2, length=40, level_jitter_db=12.0)
    gains_db = []
    for i in range(40):
        x0, x1 = plain.example(i)["x"], jittered.example(i)["x"]
        ratio = float(np.sqrt(np.mean(x1.astype(np.float64) ** 2) / np.mean(x0.astype(np.float64) ** 2)))
        gains_db.append(20 * np.log10(ratio))
        assert np.max(np.abs(x1)) <= 0.99 + 1e-6
    assert min(gains_db) >= -12.0 - 1e-3 and max(gains_db) <= 12.0 + 1e-3
    assert max(gains_db) - min(gains_db) > 8.0
    assert np.array_equal(jittered.example(5)["x"], jittered.example(5)["x"])
    assert jittered.describe()["level_jitter_db"] == 12.0
