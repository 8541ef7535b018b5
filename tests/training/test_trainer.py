import csv
import json

import numpy as np
import pytest
import torch

from fxmatch import cli
from fxmatch.errors import FxmatchInputError
from training import trainer as trainer_mod
from training.checkpoint import load_checkpoint
from training.config import TrainConfig, config_from_dict, load_config
from training.model import Encoder
from training.trainer import DistInfo, StepBatches, Trainer, candidate_counts, learning_rate
from training.wta import candidate_losses

TINY = {
    "name": "test", "effects": ["Compressor", "Distortion"], "max_length": 2, "sample_rate": 16000, "clip_seconds": 0.25,
    "n_fft": 256, "hop_length": 64, "n_mels": 32, "channels": [8, 16], "hidden": 48, "dropout": 0.0, "top_k": 2, "n_explore": 1,
    "temperature_start": 0.5, "temperature_end": 0.05, "anneal_steps": 10, "fft_sizes": [256, 64], "steps": 6, "batch_size": 4,
    "lr": 3.0e-3, "warmup_steps": 2, "log_every": 2, "checkpoint_every": 3, "train_examples": 8, "progress": False,
}


def tiny(**changes) -> TrainConfig:
    return config_from_dict({**TINY, **changes})


def _objective(trainer: Trainer, batch) -> float:
    """Hard-min audio loss over every chain plus the classifier's CE to that winner, model in eval mode."""
    model = trainer.model.eval()
    with torch.no_grad():
        logits, params = model(batch["y"])
        candidates = torch.arange(trainer.vocab.n_chains).expand(len(batch["y"]), -1)
        losses = candidate_losses(trainer.renderer, batch["x"], batch["y"], params, candidates, trainer.loss_fn)
        ce = torch.nn.functional.cross_entropy(logits, losses.argmin(dim=1))
    return float(losses.min(dim=1).values.mean() + ce)


def test_tiny_wta_run_lowers_its_loss(tmp_path):
    trainer = Trainer(tiny(seed=1, steps=24, log_every=8, checkpoint_every=24), tmp_path)
    batch = torch.utils.data.default_collate([trainer.dataset[i] for i in range(8)])
    before = _objective(trainer, batch)
    summary = trainer.train()
    after = _objective(trainer, batch)
    assert after < before, (before, after)
    assert summary["steps"] == 24 and sum(summary["wins"].values()) == 24 * 4
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [8, 16, 24]
    assert float(rows[0]["examples_per_s"]) > 0
    assert json.loads((tmp_path / "summary.json").read_text())["mode"] == "wta"


def test_resumed_run_matches_an_uninterrupted_one(tmp_path):
    straight = Trainer(tiny(), tmp_path / "a")
    straight.train()
    first = Trainer(tiny(steps=3), tmp_path / "b")
    first.train()
    resumed = Trainer(tiny(), tmp_path / "b", resume=True)
    assert resumed.step == 3
    resumed.train()
    for key, value in straight.model.state_dict().items():
        assert torch.allclose(value.float(), resumed.model.state_dict()[key].float(), atol=1e-6), key
    assert straight.win_counts.tolist() == resumed.win_counts.tolist()


def test_checkpoint_loads_with_weights_only_and_rebuilds_the_model(tmp_path):
    trainer = Trainer(tiny(steps=2, mode="supervised"), tmp_path)
    trainer.train()
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 2 and ckpt["mode"] == "supervised"
    model = Encoder.from_config(ckpt["model_config"])
    model.load_state_dict(ckpt["model"])
    assert model.vocab.chains == trainer.vocab.chains
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_full_chain_baseline_trains_a_single_candidate(tmp_path):
    summary = Trainer(tiny(steps=2, mode="full_chain"), tmp_path).train()
    assert summary["n_chains"] == 1 and summary["wins"] == {"Compressor>Distortion": 8}


def test_naive_mode_renders_every_chain(tmp_path):
    summary = Trainer(tiny(steps=2, mode="naive"), tmp_path).train()
    assert summary["final"]["candidates_per_example"] == 4


def test_existing_checkpoint_needs_resume_and_the_same_config(tmp_path):
    Trainer(tiny(steps=2), tmp_path).train()
    with pytest.raises(FxmatchInputError, match="--resume"):
        Trainer(tiny(steps=2), tmp_path)
    with pytest.raises(FxmatchInputError, match="config changed lr"):
        Trainer(tiny(steps=4, lr=1.0e-2), tmp_path, resume=True)
    with pytest.raises(FxmatchInputError, match="no such checkpoint file"):
        Trainer(tiny(), tmp_path / "elsewhere", resume=True)
    with pytest.raises(FxmatchInputError, match="not a readable checkpoint"):
        (tmp_path / "junk.pt").write_bytes(b"junk")
        load_checkpoint(tmp_path / "junk.pt")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bach_size: 4\n", "unknown key 'bach_size' (did you mean 'batch_size'?)"),
        ("lr: fast\n", "lr must be float, got 'fast'"),
        ("mode: guess\n", "mode must be one of wta, naive, supervised, full_chain"),
        ("effects: [Fuzz]\n", "effects must be distinct effect names"),
        ("steps: 0\n", "steps must be at least 1"),
        ("steps: [1\n", "not valid YAML"),
        ("- 1\n- 2\n", "expected a mapping"),
    ],
)
def test_config_errors_name_the_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(FxmatchInputError) as info:
        load_config(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_config_yaml_float_without_a_dot_is_accepted(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("lr: 3e-4\nsteps: 5\n")
    config = load_config(path)
    assert config.lr == 3e-4 and config.steps == 5 and config.batch_size == TrainConfig().batch_size


def test_train_command_reports_a_bad_config_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("stepz: 3\n")
    assert cli.main(["train", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown key 'stepz'" in err[0]


def test_step_batches_split_examples_between_processes_without_overlap():
    ranks = [list(StepBatches(0, 3, 2, DistInfo(r, 2, r), 1 << 40)) for r in range(2)]
    flat = [i for r in ranks for batch in r for i in batch]
    assert sorted(flat) == list(range(12))
    assert list(StepBatches(2, 3, 2, DistInfo(), 5)) == [[4, 0]]  # resumes at step 2, cyclic over 5 examples


def test_learning_rate_warms_up_then_decays():
    config = tiny(steps=100, warmup_steps=10, lr=1.0, lr_min_ratio=0.1)
    assert learning_rate(config, 0) == pytest.approx(0.1)
    assert learning_rate(config, 10) == pytest.approx(1.0)
    assert learning_rate(config, 100) == pytest.approx(0.1)


def test_step_seed_differs_per_rank_and_step():
    seeds = {trainer_mod.step_seed(0, s, r) for s in range(3) for r in range(2)}
    assert len(seeds) == 6


def test_wta_warm_up_draws_only_random_candidates_then_the_classifier_top_k():
    config = tiny(explore_steps=5, top_k=2, n_explore=1)
    assert candidate_counts(config, 0, 4) == (0, 3)
    assert candidate_counts(config, 4, 4) == (0, 3)
    assert candidate_counts(config, 5, 4) == (2, 1)
    assert candidate_counts(tiny(mode="naive"), 0, 4) == (4, 0)
    with pytest.raises(FxmatchInputError, match="explore_steps"):
        tiny(explore_steps=-1)


def test_two_process_ddp_run_on_gloo_trains_and_checkpoints(tmp_path):
    import subprocess
    import sys

    import yaml

    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "device": "cpu"}))
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "fxmatch.cli", "train", str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "run")]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    # on failure show why a rank died (torchrun's summary alone, the tail of stderr, names only the signal)
    causes = [line for line in out.stderr.splitlines()
              if any(w in line for w in ("terminate", "what()", "Fatal", "Error", "error:", "gloo", "numba"))]
    assert out.returncode == 0, "\n".join(causes[:30]) + "\n...\n" + out.stderr[-1500:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == TINY["steps"]
    # every step saw batch_size examples on each of the 2 processes
    assert sum(summary["wins"].values()) == TINY["steps"] * TINY["batch_size"] * 2
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ckpt["step"] == TINY["steps"]


def test_supervised_simulation_run_with_presence_scoring_tcn_and_a_mixed_source(tmp_path, capsys):
    """The v3 recipe's knobs end to end through `fxmatch train --set`: presence BCE, TCN, mix, level jitter."""
    import yaml

    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump({**TINY, "mode": "supervised", "source": "mix",
                                    "source_mix": {"synth": 1.0},
                                    "chain_scoring": "presence", "presence_weight": 1.0, "param_sharing": "effect",
                                    "time_pools": [2, 1], "tcn_dilations": [1, 2], "tcn_channels": 16,
                                    "level_jitter_db": 6.0, "torch_threads": 1}))
    assert cli.main(["train", str(path), "--out", str(tmp_path / "run"), "--set", "steps=4", "--set", "lr=2e-3"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 4
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ckpt["train_config"]["lr"] == 2e-3 and ckpt["model_config"]["encoder"]["chain_scoring"] == "presence"
    assert ckpt["data"]["level_jitter_db"] == 6.0 and ckpt["data"]["source"]["kind"] == "MixedSource"
    assert cli.main(["train", str(path), "--set", "steps"]) == 2
    assert "--set expects KEY=VALUE" in capsys.readouterr().err


def test_presence_weight_adds_the_presence_bce_to_the_supervised_loss():
    from training.baselines import supervised_step
    from training.model import chain_membership

    config = tiny(mode="supervised", chain_scoring="presence", param_sharing="effect")
    trainer = Trainer(config, "/nonexistent-never-written")
    batch = next(iter(trainer.loader()))
    membership = torch.from_numpy(chain_membership(trainer.model_vocab))
    args = (trainer.model.eval(), batch["y"], batch["chain"], batch["params"], batch["param_mask"], 1.0)
    plain = supervised_step(*args, presence_weight=0.0, membership=membership)
    with_bce = supervised_step(*args, presence_weight=1.0, membership=membership)
    assert float(with_bce.loss) > float(plain.loss) + 1e-3


def test_init_from_starts_a_run_from_another_runs_weights(tmp_path):
    first = Trainer(tiny(mode="supervised", steps=2), tmp_path / "a")
    first.train()
    second = Trainer(tiny(steps=2, init_from=str(tmp_path / "a" / "checkpoint.pt")), tmp_path / "b")
    for name, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[name]), name
    with pytest.raises(FxmatchInputError, match="differs"):
        Trainer(tiny(hidden=24, init_from=str(tmp_path / "a" / "checkpoint.pt")), tmp_path / "c")


def test_init_from_adds_envelope_lags_without_changing_what_the_model_computes(tmp_path):
    first = Trainer(tiny(mode="supervised", steps=2), tmp_path / "a")
    first.train()
    lags = {"envelope_lags": 8, "envelope_bands": 8, "envelope_features": 12}
    second = Trainer(tiny(steps=2, init_from=str(tmp_path / "a" / "checkpoint.pt"), **lags), tmp_path / "b")
    assert second.model.envelope_lags is not None
    y = torch.from_numpy(np.random.default_rng(2).standard_normal((3, 4000)).astype(np.float32)) * 0.1
    with torch.no_grad():
        before, after = first.model.eval()(y), second.model.eval()(y)
    assert torch.allclose(before[0], after[0], atol=1e-5) and torch.allclose(before[1], after[1], atol=1e-6)
    trunk = second.model.state_dict()["trunk.0.weight"]
    assert trunk.shape[1] == first.model.state_dict()["trunk.0.weight"].shape[1] + 12 and not trunk[:, -12:].any()
    second.train()  # the new inputs learn: their weights leave zero
    assert second.model.state_dict()["trunk.0.weight"][:, -12:].abs().sum() > 0
    with pytest.raises(FxmatchInputError, match="differs"):  # a checkpoint with lags cannot start one with others
        Trainer(tiny(init_from=str(tmp_path / "b" / "checkpoint.pt"), **{**lags, "envelope_lags": 4}), tmp_path / "c")


def test_init_from_adds_a_side_feature_before_one_the_checkpoint_has(tmp_path):
    """A checkpoint with SpectrumShape starts a model with EnvelopeLags too: the lags' columns go in between."""
    spectrum = {"spectrum_bins": 16, "spectrum_features": 6}
    first = Trainer(tiny(mode="supervised", steps=2, **spectrum), tmp_path / "a")
    first.train()
    both = {**spectrum, "envelope_lags": 8, "envelope_bands": 8, "envelope_features": 12}
    second = Trainer(tiny(steps=2, init_from=str(tmp_path / "a" / "checkpoint.pt"), **both), tmp_path / "b")
    y = torch.from_numpy(np.random.default_rng(3).standard_normal((3, 4000)).astype(np.float32)) * 0.1
    with torch.no_grad():
        before, after = first.model.eval()(y), second.model.eval()(y)
    assert torch.allclose(before[0], after[0], atol=1e-5) and torch.allclose(before[1], after[1], atol=1e-6)
    trunk = second.model.state_dict()["trunk.0.weight"]
    assert not trunk[:, -18:-6].any() and trunk[:, -6:].abs().sum() > 0


def test_a_checkpoint_without_a_newer_knob_resumes_when_the_knob_keeps_its_default(tmp_path):
    run = Trainer(tiny(steps=2), tmp_path)
    run.train()
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    del ckpt["train_config"]["parsimony"]  # as written before the knob existed
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    assert Trainer(tiny(steps=4), tmp_path, resume=True).step == 2
    with pytest.raises(FxmatchInputError, match="parsimony"):
        Trainer(tiny(steps=4, parsimony=0.1), tmp_path, resume=True)


def test_param_weight_scales_the_supervised_parameter_loss():
    from training.baselines import supervised_step

    trainer = Trainer(tiny(mode="supervised"), "/nonexistent-never-written")
    batch = next(iter(trainer.loader()))
    args = (trainer.model.eval(), batch["y"], batch["chain"], batch["params"], batch["param_mask"], 0.0)
    one = supervised_step(*args, param_weight=1.0)
    ten = supervised_step(*args, param_weight=10.0)
    assert float(ten.loss) == pytest.approx(10 * float(one.loss), rel=1e-5) and float(one.loss) > 0


def test_source_seed_keeps_the_dry_clips_and_changes_the_chains():
    from fxmatch.vocabulary import ChainVocabulary
    from training.trainer import build_dataset

    vocab = ChainVocabulary.default()
    stage_b = build_dataset(TrainConfig(seed=5, source="synth"), vocab, length=8)
    stage_c = build_dataset(TrainConfig(seed=7, source_seed=5, source="synth"), vocab, length=8)
    assert stage_c.source.describe() == stage_b.source.describe()
    assert stage_c.seed == 7 and stage_b.seed == 5
    assert torch.equal(torch.as_tensor(stage_b.source.clip(3)), torch.as_tensor(stage_c.source.clip(3)))
    chains_b = [stage_b.draw(i)[0] for i in range(8)]
    chains_c = [stage_c.draw(i)[0] for i in range(8)]
    assert chains_b != chains_c


def test_the_encoder_is_built_from_a_copy_of_the_runs_encoder_knobs():
    import dataclasses

    from training.config import ENCODER_KEYS
    from training.trainer import encoder_config

    config = tiny(time_pools=[2, 1], tcn_dilations=[1, 2], chain_scoring="presence", param_sharing="effect")
    built = encoder_config(config)
    assert dataclasses.asdict(built) == {k: getattr(config, k) for k in ENCODER_KEYS}
    built.channels.append(1)  # a copy: the run's config is not changed through the encoder's
    assert config.channels == TINY["channels"]


def test_resume_and_init_from_name_the_keys_a_foreign_checkpoint_lacks(tmp_path):
    torch.save({"model": {}}, tmp_path / "checkpoint.pt")  # no format, no model_config, no optimizer
    with pytest.raises(FxmatchInputError, match=r"not a training checkpoint of fxmatch \(no optimizer, train_config"):
        Trainer(tiny(), tmp_path, resume=True)
    with pytest.raises(FxmatchInputError, match=r"\(no model_config\)"):
        Trainer(tiny(init_from=str(tmp_path / "checkpoint.pt")), tmp_path / "b")
    torch.save({"format": "someone-else", "model": {}}, tmp_path / "other.pt")
    with pytest.raises(FxmatchInputError, match="format 'someone-else'"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FxmatchInputError, match="is a folder"):
        load_checkpoint(tmp_path)


def test_data_loader_workers_give_the_same_run_as_the_main_process(tmp_path):
    """num_workers > 0: examples are a function of their index, so worker processes train the same weights."""
    main = Trainer(tiny(mode="supervised", steps=3), tmp_path / "main")
    main.train()
    workers = Trainer(tiny(mode="supervised", steps=3, num_workers=2), tmp_path / "workers")
    assert workers.loader().num_workers == 2
    workers.train()
    for name, value in main.model.state_dict().items():
        assert torch.allclose(value.float(), workers.model.state_dict()[name].float(), atol=1e-6), name
    assert load_checkpoint(tmp_path / "workers" / "checkpoint.pt")["step"] == 3


def test_init_from_grows_the_vocabulary_keeping_what_the_model_said_of_the_old_effects(tmp_path):
    """A checkpoint of {Compressor, Distortion} starts one of {Compressor, Distortion, LowpassFilter}: the old
    effects' presence and params are unchanged, the new effect starts absent (NEW_EFFECT_BIAS) and then learns."""
    heads = {"chain_scoring": "presence", "param_sharing": "effect", "mode": "supervised"}
    first = Trainer(tiny(steps=2, **heads), tmp_path / "a")
    first.train()
    grown = {**heads, "effects": ["Compressor", "Distortion", "LowpassFilter"]}
    second = Trainer(tiny(steps=2, init_from=str(tmp_path / "a" / "checkpoint.pt"), **grown), tmp_path / "b")
    old, new = first.model.eval(), second.model.eval()
    y = torch.from_numpy(np.random.default_rng(4).standard_normal((3, 4000)).astype(np.float32)) * 0.1
    with torch.no_grad():
        h_old, h_new = old.features(y), new.features(y)
        presence_old, presence_new = old.chain_head(h_old), new.chain_head(h_new)
        params_old, params_new = old.param_head(h_old), new.param_head(h_new)
    assert torch.allclose(h_old, h_new, atol=1e-6)
    assert torch.allclose(presence_new[:, :2], presence_old, atol=1e-6)
    low = new.vocab.param_slice("LowpassFilter")
    assert torch.allclose(params_new[:, : low.start], params_old, atol=1e-6)
    assert torch.sigmoid(presence_new[:, 2]).max() < 0.2  # the new effect starts absent
    bias_before = second.model.chain_head.bias[2].item()
    second.train()
    assert second.model.chain_head.bias[2].item() != bias_before  # and learns
    # a vocabulary that is not the checkpoint's grown (an effect dropped) is refused
    with pytest.raises(FxmatchInputError, match="differs"):
        Trainer(tiny(init_from=str(tmp_path / "a" / "checkpoint.pt"), **{**heads, "effects": ["Distortion", "Reverb"]}),
                tmp_path / "c")
