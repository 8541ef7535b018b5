"""`fxmatch evaluate`: metrics of known values, the command end to end on a tiny exported model, bad inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fxmatch import audibility, cli, testsignals
from fxmatch.vocabulary import ChainVocabulary
from tests.export.helpers import SAMPLE_RATE, WINDOW_SECONDS, tiny_checkpoint, tiny_encoder, tiny_onnx, tiny_vocab
from training import eval_metrics, make_set
from training import evaluate as evaluate_mod
from training.data import TargetDataset, write_dataset
from training.evaluate import (
    confusion,
    evaluate,
    load_set,
    log_mel_distance,
    mean_preset,
    parse_heldout,
    score_presets,
)
from training.sources import SynthSource

# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny exported model favouring Distortion, one favouring no effect, and the first one's checkpoint."""
    folder = tmp_path_factory.mktemp("models")
    dist = tiny_onnx(folder, favour=1, name="dist.onnx")
    dry = tiny_onnx(folder, favour=0, name="dry.onnx")
    ckpt = tiny_checkpoint(folder / "dist-ckpt.pt", tiny_encoder(favour=1))
    return {"dist": dist, "dry": dry, "ckpt": ckpt}


@pytest.fixture(scope="module")
def disk_set(tmp_path_factory):
    """Six held-out examples of the tiny vocabulary (Distortion only), 16 kHz, 0.5 s, written by write_dataset."""
    source = SynthSource(seed=5, split="heldout", sample_rate=SAMPLE_RATE, clip_seconds=WINDOW_SECONDS)
    dataset = TargetDataset(source, tiny_vocab(), seed=11, length=6)
    return write_dataset(dataset, tmp_path_factory.mktemp("set") / "set")


def _main(capsys, *argv):
    rc = cli.main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return rc, out, err


# ------------------------------------------------------------------------------------------------ metrics


def _random_presets(vocab: ChainVocabulary, n: int, seed: int):
    rng = np.random.default_rng(seed)
    presets = []
    for _ in range(n):
        chain = vocab.chains[int(rng.integers(vocab.n_chains))]
        presets.append([(e, vocab.effect(e).sample(rng)) for e in chain])
    return presets


def test_perfect_estimator_scores_accuracy_one_f1_one_mae_zero():
    vocab = ChainVocabulary.default()
    truth = _random_presets(vocab, 80, seed=0)
    scores = score_presets(truth, [list(p) for p in truth], vocab.effect_names, vocab)
    assert scores["chain_accuracy"] == 1.0
    assert scores["presence"]["macro_f1"] == 1.0
    assert scores["presence"]["micro"]["f1"] == 1.0
    assert scores["param_mae"]["mean"] == 0.0 and scores["param_mae"]["n_values"] > 0
    assert all(v["mean"] == 0.0 for v in scores["param_mae"]["per_effect"].values())


def test_presence_f1_and_param_mae_of_a_hand_made_case():
    vocab = ChainVocabulary.default()
    comp = vocab.effect("Compressor")
    dist = vocab.effect("Distortion")
    c_lo = {p.name: p.denormalise(0.2) for p in comp.params}
    c_hi = {p.name: p.denormalise(0.6) for p in comp.params}  # every param 0.4 away in normalised units
    d = {"drive_db": dist.param("drive_db").denormalise(0.5)}
    d_off = {"drive_db": dist.param("drive_db").denormalise(0.6)}  # 0.1 away
    truth = [[("Compressor", c_lo)], [("Compressor", c_lo), ("Distortion", d)], [], [("Distortion", d)]]
    estimates = [[("Compressor", c_hi)], [("Distortion", d)], [("Compressor", c_lo)], [("Distortion", d_off)]]
    scores = score_presets(truth, estimates, ["Compressor", "Distortion", "Reverb"], vocab)
    assert scores["chain_accuracy"] == 0.5  # examples 0 and 3
    per = scores["presence"]["per_effect"]
    # Compressor: tp (ex 0), fn (ex 1), fp (ex 2)
    assert (per["Compressor"]["tp"], per["Compressor"]["fp"], per["Compressor"]["fn"]) == (1, 1, 1)
    assert per["Compressor"]["precision"] == pytest.approx(0.5) and per["Compressor"]["f1"] == pytest.approx(0.5)
    assert per["Distortion"]["f1"] == 1.0 and per["Distortion"]["support"] == 2
    assert per["Reverb"]["f1"] is None  # never present nor estimated: left out of the macro mean
    # struck from both chains: without the Compressor every example matches; without Distortion examples 1 and 2
    # still differ by their Compressor; without an effect no chain holds, the plain accuracy
    assert per["Compressor"]["chain_accuracy_without"] == 1.0
    assert per["Distortion"]["chain_accuracy_without"] == pytest.approx(0.5)
    assert per["Reverb"]["chain_accuracy_without"] == pytest.approx(0.5)
    assert scores["presence"]["macro_f1"] == pytest.approx(0.75)
    assert scores["presence"]["micro"]["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    mae = scores["param_mae"]
    assert mae["per_effect"]["Compressor"]["mean"] == pytest.approx(0.4)
    assert set(mae["per_effect"]["Compressor"]["per_param"]) == set(comp.param_names)
    assert mae["per_effect"]["Distortion"]["mean"] == pytest.approx(0.05)  # errors 0 and 0.1
    assert mae["per_effect"]["Distortion"]["n_examples"] == 2
    assert mae["mean"] == pytest.approx((4 * 0.4 + 0.0 + 0.1) / 6)


def test_log_mel_distance_is_zero_for_identical_symmetric_and_positive_otherwise():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 8000)).astype(np.float32) * 0.1
    b = np.tanh(4 * a)
    assert np.allclose(log_mel_distance(a, a, 16000), 0.0)
    assert np.allclose(log_mel_distance(a, b, 16000), log_mel_distance(b, a, 16000))
    assert np.all(log_mel_distance(a, b, 16000) > 0.05)
    assert log_mel_distance(a, 0.5 * a, 16000) == pytest.approx(np.log(4.0), rel=1e-3)  # -6 dB: log(4) everywhere


def test_confusion_counts_true_rows_and_adds_unknown_estimates():
    conf = confusion([(), ("A",), ("A",)], [(), ("B",), ("A",)], [(), ("A",)])
    assert conf["labels"] == ["dry", "A", "B"]
    assert conf["matrix"] == [[1, 0, 0], [0, 1, 1], [0, 0, 0]]


@pytest.mark.parametrize(("spec", "expected"), [
    ("heldout", (None, None)), ("heldout:50", (50, None)), ("heldout@7", (None, 7)), ("heldout:3@9", (3, 9)),
    ("held", None), ("heldout:x", None), ("some/folder", None),
])
def test_parse_heldout(spec, expected):
    assert parse_heldout(spec) == expected


def test_mean_preset_is_the_most_frequent_non_empty_chain_at_mid_range(disk_set):
    eval_set = load_set(str(disk_set), progress=False)
    preset = mean_preset(eval_set)
    assert [n for n, _ in preset] == ["Distortion"]
    drive = eval_set.vocab.effect("Distortion").param("drive_db")
    assert preset[0][1]["drive_db"] == pytest.approx(drive.denormalise(0.5))


# ------------------------------------------------------------------------------------------------ end to end


def test_evaluate_command_writes_json_markdown_and_plots(models, disk_set, tmp_path, capsys):
    out = tmp_path / "eval"
    rc, stdout, err = _main(capsys, "evaluate", models["dist"], disk_set, "-o", out, "--no-progress")
    assert rc == 0, err
    for name in ("eval.json", "eval.md", "confusion.png", "param_error.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report = json.loads((out / "eval.json").read_text())
    assert report["format"] == "fxmatch-evaluation" and report["set"]["n"] == 6
    assert report["models"][0]["name"] == "tiny" and report["models"][0]["version"] == "0"
    assert report["order"] == ["tiny-v0", "no effect", "mean preset", "oracle (twins)"]
    for row in report["estimators"].values():
        assert {"chain_accuracy", "presence", "param_mae", "mrstft", "logmel", "relative"} <= set(row)
    mine = report["estimators"]["tiny-v0"]
    n_dist = report["set"]["chain_counts"].get("Distortion", 0)
    assert mine["chain_accuracy"] == pytest.approx(n_dist / 6)  # the model always says Distortion
    assert sum(map(sum, mine["confusion"]["matrix"])) == 6
    oracle, dry = report["estimators"]["oracle (twins)"], report["estimators"]["no effect"]
    assert oracle["chain_accuracy"] == 1.0 and oracle["param_mae"]["mean"] == 0.0
    assert dry["relative"]["mrstft_vs_no_effect"] == pytest.approx(1.0)
    assert oracle["mrstft"]["mean"] < dry["mrstft"]["mean"]  # the Distortion twin tracks pedalboard
    assert "| estimator | chain acc." in stdout and "| tiny-v0 |" in stdout and "| no effect |" in stdout
    assert stdout == (out / "eval.md").read_text()


def test_evaluate_json_compare_and_checkpoint_agree_with_onnx(models, disk_set, tmp_path, capsys):
    rc, stdout, err = _main(capsys, "evaluate", models["dist"], disk_set, "-o", tmp_path / "e", "--json",
                            "--no-progress", "--no-oracle", "--compare", models["dry"], models["ckpt"])
    assert rc == 0, err
    report = json.loads(stdout)
    labels = report["order"]
    assert len(labels) == 5 and "oracle (twins)" not in labels  # 3 models + no effect + mean preset
    assert [m["kind"] for m in report["models"]] == ["onnx", "onnx", "checkpoint"]
    assert labels[2] == "tiny-run-step3" and len(report["estimators"][labels[0]]["examples"]) == 6
    first, dry_model = report["estimators"][labels[0]], report["estimators"][labels[1]]
    assert dry_model["chain_accuracy"] == report["estimators"]["no effect"]["chain_accuracy"]
    ckpt = report["estimators"][labels[2]]
    assert ckpt["chain_accuracy"] == first["chain_accuracy"]
    assert ckpt["param_mae"]["mean"] == pytest.approx(first["param_mae"]["mean"], abs=1e-4)
    assert (tmp_path / "e" / "confusion.png").is_file()
    assert len(list((tmp_path / "e").glob("confusion-*.png"))) == 2


def test_heldout_set_follows_the_models_training_data(models):
    report = evaluate([models["dist"]], "heldout:4@3", oracle=False, threads=1, progress=False)
    s = report["set"]
    assert s["kind"] == "heldout" and s["n"] == 4 and s["sample_rate"] == SAMPLE_RATE
    assert s["clip_seconds"] == pytest.approx(WINDOW_SECONDS) and s["effects"] == ["Distortion"]
    assert s["data"]["source"]["split"] == "heldout" and s["data"]["renderer"] == "pedalboard"
    again = evaluate([models["dist"]], "heldout:4@3", n=2, oracle=False, threads=1, progress=False)
    assert again["set"]["n"] == 2


def test_make_set_writes_a_set_that_evaluate_reads(models, tmp_path, capsys):
    out = tmp_path / "made"
    assert make_set.main([str(out), "--model", str(models["dist"]), "--n", "3", "--seed", "2"]) == 0
    assert (out / "labels.json").is_file() and len(list((out / "y").glob("*.wav"))) == 3
    eval_set = load_set(str(out), progress=False)
    assert len(eval_set.examples) == 3 and eval_set.sample_rate == SAMPLE_RATE
    assert make_set.main([str(out), "--model", str(models["dist"]), "--n", "3"]) == 2  # not empty: refused
    assert "not an empty folder" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ bad input


def _bad_sets(tmp_path, disk_set):
    empty = tmp_path / "empty"
    empty.mkdir()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "labels.json").write_text("{not json")
    missing_audio = tmp_path / "missing_audio"
    missing_audio.mkdir()
    (missing_audio / "labels.json").write_text((disk_set / "labels.json").read_text())
    no_examples = tmp_path / "no_examples"
    no_examples.mkdir()
    labels = json.loads((disk_set / "labels.json").read_text())
    labels["examples"] = []
    (no_examples / "labels.json").write_text(json.dumps(labels))
    return {"empty": empty, "corrupt": corrupt, "missing_audio": missing_audio, "no_examples": no_examples}


@pytest.mark.parametrize("case", ["missing_model", "foreign_model", "folder_model", "empty", "corrupt",
                                  "missing_audio", "no_examples", "missing_set", "n_zero", "heldout_zero"])
def test_bad_input_exits_2_with_one_line(case, models, disk_set, tmp_path, capsys):
    sets = _bad_sets(tmp_path, disk_set)
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(b"this is not an onnx model at all")
    model, target, extra = models["dist"], disk_set, []
    if case == "missing_model":
        model = tmp_path / "nope.onnx"
    elif case == "foreign_model":
        model = foreign
    elif case == "folder_model":
        model = tmp_path
    elif case in sets:
        target = sets[case]
    elif case == "missing_set":
        target = tmp_path / "no_such_set"
    elif case == "n_zero":
        extra = ["--n", "0"]
    elif case == "heldout_zero":
        target = "heldout:0"
    rc, _, err = _main(capsys, "evaluate", model, target, "-o", tmp_path / "o", "--no-progress", *extra)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fxmatch: error:"), err
    assert "Traceback" not in err


def test_full_chain_baseline_is_evaluated_like_any_model(tmp_path, capsys):
    """Baseline (ii) has one candidate (every effect): it always names both effects, so recall is 1."""
    from export.onnx_export import export_checkpoint
    from fxmatch.effects import get_spec
    from training.baselines import full_chain_vocabulary

    vocab = ChainVocabulary(effects=(get_spec("Compressor"), get_spec("Distortion")), max_length=2)
    ckpt = tiny_checkpoint(tmp_path / "full.pt", tiny_encoder(full_chain_vocabulary(vocab)), mode="full_chain")
    model = tmp_path / "full.onnx"
    export_checkpoint(ckpt, model, name="full", version="1")
    source = SynthSource(seed=1, split="heldout", sample_rate=SAMPLE_RATE, clip_seconds=WINDOW_SECONDS)
    folder = write_dataset(TargetDataset(source, vocab, seed=4, length=8), tmp_path / "set")
    report = evaluate([model], str(folder), oracle=False, threads=1, progress=False)
    row = report["estimators"]["full-v1"]
    full = report["set"]["chain_counts"].get("Compressor>Distortion", 0)
    assert row["chain_accuracy"] == pytest.approx(full / 8)
    for effect in ("Compressor", "Distortion"):
        per = row["presence"]["per_effect"][effect]
        assert per["estimated"] == 8 and (per["recall"] in (None, 1.0))
    assert report["models"][0]["mode"] == "full_chain"


def test_an_effect_that_does_not_change_the_target_is_inaudible():
    sr = 16000
    x = testsignals.make("pluck", sr, 1.0, seed=3)[0] * 0.3
    loud = [("Distortion", {"drive_db": 20.0})]
    idle_compressor = [("Compressor", {"threshold_db": 0.0, "ratio": 4.0, "attack_ms": 5.0, "release_ms": 100.0})]
    chain = idle_compressor + loud
    y = evaluate_mod.render_preset(chain, x, sr)
    assert evaluate_mod.audible_effects(chain, x, y, sr) == ("Distortion",)
    assert evaluate_mod.audible_effects([], x, x, sr) == ()


def test_removal_db_measures_how_much_each_effect_changes_the_target():
    sr = 16000
    x = testsignals.make("pluck", sr, 1.0, seed=3)[0] * 0.3
    chain = [("Compressor", {"threshold_db": 0.0, "ratio": 4.0, "attack_ms": 5.0, "release_ms": 100.0}),
             ("Distortion", {"drive_db": 20.0}),
             ("PeakFilter", {"cutoff_frequency_hz": 1000.0, "gain_db": 0.5, "q": 1.0})]
    y = evaluate_mod.render_preset(chain, x, sr)
    removal = eval_metrics.removal_db(chain, x, y, sr)
    assert list(removal) == ["Compressor", "Distortion", "PeakFilter"]
    assert removal["Compressor"] > 60.0  # a threshold above the signal: removing it changes nothing audible
    assert removal["Distortion"] < 10.0  # 20 dB of drive: y is mostly distortion
    assert 10.0 < removal["PeakFilter"] < 40.0  # a 0.5 dB bell is small but there
    assert audibility.audible(removal, 30.0) == evaluate_mod.audible_effects(chain, x, y, sr)


def test_recall_by_removal_bins_each_true_effect_by_how_much_it_changes_y():
    truth = [[("Delay", {})], [("Delay", {})], [("Delay", {})], [("Delay", {}), ("Reverb", {})]]
    estimates = [[("Delay", {})], [], [("Reverb", {})], [("Delay", {}), ("Reverb", {})]]
    removal = [{"Delay": 5.0}, {"Delay": 25.0}, {"Delay": 26.0}, {"Delay": 8.0, "Reverb": math.inf}]
    table = eval_metrics.recall_by_removal(truth, estimates, removal, ["Delay", "Reverb", "Chorus"])
    delay = {row["bin"]: (row["n"], row["recall"]) for row in table["per_effect"]["Delay"]}
    assert delay == {"< 10 dB": (2, 1.0), "10-20 dB": (0, None), "20-30 dB": (2, 0.0), ">= 30 dB": (0, None)}
    assert table["per_effect"]["Reverb"][3] == {"bin": ">= 30 dB", "n": 1, "recall": 1.0}
    assert all(row["n"] == 0 for row in table["per_effect"]["Chorus"])


def test_audible_scores_let_inaudible_true_effects_be_named_or_not():
    truth = [[("Compressor", {}), ("Reverb", {})]] * 3
    estimates = [[("Reverb", {})], [("Compressor", {}), ("Reverb", {})], [("Delay", {}), ("Reverb", {})]]
    scores = evaluate_mod.audible_scores(truth, estimates, [("Reverb",)] * 3, ["Compressor", "Delay", "Reverb"])
    assert scores["chain_accuracy"] == pytest.approx(2 / 3)  # the third names Delay, which is not there
    assert scores["per_effect_f1"]["Reverb"] == 1.0 and scores["per_effect_f1"]["Compressor"] is None
    assert scores["per_effect_f1"]["Delay"] == 0.0
    assert scores["inaudible_true_effects"] == 3
    assert sum(tuple(e for e, _ in t) == tuple(e for e, _ in p) for t, p in zip(truth, estimates)) == 1  # strict


def test_dry_aware_scores_the_informed_path_next_to_the_blind_one(models, disk_set, tmp_path, capsys):
    """A model that always says "no effect" (blind) is corrected by the search with the dry signal known."""
    out = tmp_path / "informed"
    rc, stdout, err = _main(capsys, "evaluate", models["dry"], disk_set, "-o", out, "--no-progress", "--no-oracle",
                            "--dry-aware", "--search-k", "2")
    assert rc == 0, err
    report = json.loads((out / "eval.json").read_text())
    informed_label = "tiny-v0 + dry (capture search, k=2)"
    assert report["order"][:2] == ["tiny-v0", informed_label] and report["config"]["dry_aware"] is True
    blind, informed = report["estimators"]["tiny-v0"], report["estimators"][informed_label]
    n_dist = report["set"]["chain_counts"].get("Distortion", 0)
    assert 0 < n_dist < 6 and blind["chain_accuracy"] == pytest.approx(1 - n_dist / 6)
    assert informed["role"] == "informed" and informed["chain_accuracy"] == 1.0, informed["examples"]
    assert informed["relative"]["mrstft_vs_no_effect"] < 0.5 * blind["relative"]["mrstft_vs_no_effect"]
    assert informed["search"]["refused"] == 0 and informed["seconds_per_example"] > 0
    assert len(informed["examples"]) == 6 and all(e["chains"] == 2 for e in informed["examples"])
    assert "| tiny-v0 | blind (target only) |" in stdout and f"| {informed_label} | informed (dry known) |" in stdout


def test_search_options_need_dry_aware(models, disk_set, tmp_path, capsys):
    rc, _, err = _main(capsys, "evaluate", models["dry"], disk_set, "-o", tmp_path / "x", "--search-budget", "3")
    assert rc == 2 and "need --dry-aware" in err and len(err.strip().splitlines()) == 1


def test_compare_may_be_repeated_and_keeps_every_model():
    import argparse

    from training import evaluate_cli

    parser = argparse.ArgumentParser()
    evaluate_cli.add_arguments(parser)
    args = parser.parse_args(["m.onnx", "heldout:8", "--compare", "a.onnx", "--compare", "b.onnx", "c.pt"])
    assert args.compare == ["a.onnx", "b.onnx", "c.pt"]


def test_harm_figures_count_effects_named_on_clean_examples_and_renders_worse_than_none():
    from training.evaluate import NO_EFFECT, EstimatorRun, EvalExample, EvalSet, add_harm

    x = np.zeros(8, dtype=np.float32)
    clean = EvalExample(0, x, x, [])
    wet = EvalExample(1, x, x, [("Distortion", {"drive_db": 20.0})])
    other = EvalExample(2, x, x, [("Reverb", {})])
    eval_set = EvalSet([clean, wet, other], 8000, ChainVocabulary.default())
    named = [("Chorus", {}), ("Delay", {})]
    model = EstimatorRun("m", "model", [named, [("Distortion", {})], []], [0.5, 0.2, 1.0], [0, 0, 0], 1.0)
    none = EstimatorRun(NO_EFFECT, "reference", [[], [], []], [0.0, 1.0, 1.0], [0, 0, 0], 1.0)
    rows = {"m": {}, NO_EFFECT: {}}
    add_harm(rows, [model, none], eval_set)
    assert rows["m"]["named_on_unprocessed"] == 2.0
    # worse on the clean example (0.5 > 0), better on the second, equal (not worse) on the third
    assert rows["m"]["worse_than_no_estimate"] == pytest.approx(1 / 3)
    assert rows["m"]["mrstft_vs_no_effect_median"] == pytest.approx(0.6)  # median of 0.2 and 1.0; y == x left out
    assert rows[NO_EFFECT]["named_on_unprocessed"] == 0.0 and rows[NO_EFFECT]["worse_than_no_estimate"] == 0.0
