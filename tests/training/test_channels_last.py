"""`channels_last`: the encoder's 2-D convolutions in NHWC give the plain step's loss and weights, and resume."""

import pytest
import torch

from tests.training.test_trainer import TINY
from training.config import config_from_dict
from training.trainer import Trainer

#: the shipped model's kind of step at the smoke test's sizes: supervised with presence BCE and parameter MSE,
#: presence chain scoring, per-effect params, a dilated 1-D stack, dropout and BatchNorm in train mode
SUPERVISED = {**TINY, "mode": "supervised", "chain_scoring": "presence", "param_sharing": "effect",
              "tcn_dilations": [1, 2], "tcn_channels": 24, "dropout": 0.1, "presence_weight": 1.0,
              "param_weight": 10.0}

#: An Adam step moves a weight by up to lr (3e-3): the two layouts' rounding moves the weights by 1e-7 here, at most
#: 1.5e-5 (an element whose gradient is near zero, so Adam's g / sqrt(v) magnifies the rounding); a plain-layout
#: moment under a channels-last weight in the fused kernel moved them by 0.16.
WEIGHT_ATOL = 0.05 * SUPERVISED["lr"]


def supervised(**changes):
    return config_from_dict({**SUPERVISED, **changes})


def _conv_weights(trainer: Trainer) -> list[torch.Tensor]:
    return [m.weight for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d)]


@pytest.mark.parametrize("fused", [False, True])
def test_channels_last_step_gives_the_plain_steps_loss_and_updated_weights(fused):
    plain = Trainer(supervised(channels_last=False, fused_optimizer=fused), "/nonexistent-never-written")
    fast = Trainer(supervised(channels_last=True, fused_optimizer=fused), "/nonexistent-never-written")
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(fast))
    assert not all(w.is_contiguous() for w in _conv_weights(fast))  # one input channel is both layouts at once
    assert all(w.is_contiguous() for w in _conv_weights(plain))
    batch = next(iter(plain.loader()))
    before = {k: v.clone() for k, v in plain.model.state_dict().items()}
    for step in range(3):  # the same batch three times: Adam's moments and BatchNorm's running stats build up
        want, got = plain.train_step(batch, step), fast.train_step(batch, step)
        assert got.loss.item() == pytest.approx(want.loss.item(), rel=1e-5, abs=1e-6), step
    want, got = plain.model.state_dict(), fast.model.state_dict()
    assert list(got) == list(want)  # the plain module's keys (nothing wraps the model)
    for name, value in want.items():
        assert torch.allclose(got[name].float(), value.float(), rtol=1e-5, atol=WEIGHT_ATOL), name
    for name in ("cnn.0.weight", "cnn.4.weight", "tcn.0.weight", "chain_head.weight", "param_head.weight"):
        assert (want[name] - before[name]).abs().max() > plain.config.lr, name  # the steps moved them
    # the checkpoint stores the weights in the plain layout
    assert all(t.is_contiguous() for t in fast.checkpoint_payload()["model"].values())


def test_a_run_resumes_across_a_channels_last_change_with_adams_moments_in_the_weights_layout(tmp_path):
    """The fused AdamW kernel updates a channels-last weight wrongly from a plain-layout moment (as read from a plain
    run's checkpoint): resuming matches the moments to the weights, so the run goes on as an uninterrupted one."""
    straight = Trainer(supervised(channels_last=False, fused_optimizer=True), tmp_path / "straight")
    straight.train()
    first = Trainer(supervised(steps=3, channels_last=False, fused_optimizer=True), tmp_path / "switched")
    first.train()
    resumed = Trainer(supervised(channels_last=True, fused_optimizer=True), tmp_path / "switched", resume=True)
    assert resumed.step == 3
    for weight in _conv_weights(resumed):
        assert weight.is_contiguous(memory_format=torch.channels_last)
        assert all(v.stride() == weight.stride() for v in resumed.optimizer.state[weight].values() if v.dim() == 4)
    resumed.train()
    got = resumed.model.state_dict()
    for name, value in straight.model.state_dict().items():
        assert torch.allclose(got[name].float(), value.float(), rtol=1e-5, atol=WEIGHT_ATOL), name
