"""`fxmatch bench training`: the step costs and, per mode, the profile of where a step's time goes."""

import json
import math

import pytest

from benchmarks import bench_training

MODES = ("wta", "wta_torch_loss", "wta_hard", "wta_hard_torch_loss", "wta_hard_score_proxy",
         "wta_hard_effect_params", "naive", "supervised",
         "supervised_fused_adam", "wta_hard_fused_adam", "full_chain", "supervised_channels_last", "supervised_sim",
         "supervised_sim_fast")
PROFILE_KEYS = ("data_s", "frontend_s", "frontend_conv_dft_s", "encoder_rest_s", "twins_forward_s", "loss_s",
                "forward_other_s", "forward_s", "backward_s", "backward_loss_and_twins_s", "backward_encoder_s",
                "twins_backward_replayed_s", "optimizer_s", "step_s", "twins")
EFFECTS = ("Compressor", "Distortion", "PeakFilter")


@pytest.fixture(scope="module")
def result() -> dict:
    """A quick run at tiny sizes: 3 effects (8 chains), batch 2 x 0.25 s at 16 kHz, one repeat."""
    out = bench_training.run(quick=True, batch=2, clip_seconds=0.25, effects=EFFECTS, sample_rate=16000,
                             fft_sizes=(512, 128), repeats=1, score_fft_sizes=(128,), agreement_examples=4)
    return json.loads(json.dumps(out, allow_nan=False))  # JSON-ready


def test_every_mode_has_a_step_time_and_a_profile(result):
    assert result["n_chains"] == 8 and result["batch"] == 2 and result["quick"] is True
    assert len(result["load_average"]) == 2 and result["flush_denormal"] is True
    assert set(result["steps"]) == set(result["profile"]) == set(MODES)
    for mode in MODES:
        p = result["profile"][mode]
        assert set(PROFILE_KEYS) <= set(p), (mode, set(PROFILE_KEYS) - set(p))
        for key in PROFILE_KEYS[:-1]:
            assert math.isfinite(p[key]), (mode, key)
        for key in ("data_s", "frontend_s", "frontend_conv_dft_s", "encoder_rest_s", "forward_s", "backward_s",
                    "optimizer_s", "step_s"):
            assert p[key] > 0, (mode, key)
        assert p["step_s"] == pytest.approx(p["forward_s"] + p["backward_s"] + p["optimizer_s"])
        assert p["forward_s"] == pytest.approx(p["frontend_s"] + p["encoder_rest_s"] + p["twins_forward_s"]
                                               + p["loss_s"] + p["forward_other_s"])
        assert p["backward_s"] == pytest.approx(p["backward_loss_and_twins_s"] + p["backward_encoder_s"])
        assert p["backward_loss_and_twins_s"] >= 0 and p["backward_encoder_s"] >= 0


def test_the_twin_profile_names_each_effect_rendered(result):
    profile = result["profile"]
    for mode in ("supervised", "supervised_fused_adam", "supervised_channels_last", "supervised_sim",
                 "supervised_sim_fast"):
        assert profile[mode]["twins"] == {} and profile[mode]["twins_forward_s"] == 0
    full = profile["full_chain"]["twins"]
    assert set(full) == set(EFFECTS)
    for name, twin in full.items():  # one candidate: every effect runs once on the whole batch
        assert (twin["calls"], twin["examples"]) == (1, 2), name
        assert twin["forward_s"] > 0 and twin["backward_s"] > 0, name
    naive = profile["naive"]["twins"]
    # every chain on every example: each effect sits in 4 of the 8 chains (x 2 examples), one twin call per position
    # it holds in a chain (Compressor first only; Distortion first or second; PeakFilter first, second or third)
    assert set(naive) == set(EFFECTS) and all(t["examples"] == 8 for t in naive.values())
    assert {n: t["calls"] for n, t in naive.items()} == {"Compressor": 1, "Distortion": 2, "PeakFilter": 3}
    assert profile["naive"]["twins_backward_replayed_s"] == pytest.approx(sum(t["backward_s"] for t in naive.values()))


def test_the_front_ends_are_compared_side_by_side(result):
    f = result["frontend"]
    assert f["stft_s"] > 0 and f["conv_dft_s"] > 0
    assert f["conv_dft_over_stft"] == pytest.approx(f["conv_dft_s"] / f["stft_s"])
    assert all(result["profile"][m]["frontend_conv_dft_s"] == f["conv_dft_s"] for m in MODES)


def test_the_fused_loss_and_the_score_proxy_are_measured_side_by_side(result):
    steps = result["steps"]
    assert result["torch_loss_over_fused_wta_step"] == pytest.approx(steps["wta_torch_loss"]["step_s"]
                                                                     / steps["wta"]["step_s"])
    assert result["torch_loss_over_fused_wta_hard_step"] == pytest.approx(steps["wta_hard_torch_loss"]["step_s"]
                                                                          / steps["wta_hard"]["step_s"])
    assert result["wta_hard_over_score_proxy_step"] == pytest.approx(steps["wta_hard"]["step_s"]
                                                                     / steps["wta_hard_score_proxy"]["step_s"])
    assert result["supervised_over_fused_adam_step"] == pytest.approx(steps["supervised"]["step_s"]
                                                                      / steps["supervised_fused_adam"]["step_s"])
    assert result["score_fft_sizes"] == [128]
    agreement = result["score_proxy_agreement"]
    # the shipped encoder's vocabulary (7 effects, 44.1 kHz) is not this run's: only the untrained encoder counts
    assert agreement["examples"] == 4 and set(agreement["agreement"]) == {"untrained"}
    assert 0.0 <= agreement["agreement"]["untrained"] <= 1.0



def test_the_channels_last_and_the_shipped_models_supervised_steps_are_measured_side_by_side(result):
    steps = result["steps"]
    assert result["supervised_over_channels_last_step"] == pytest.approx(steps["supervised"]["step_s"]
                                                                         / steps["supervised_channels_last"]["step_s"])
    assert result["supervised_sim_over_fast_step"] == pytest.approx(steps["supervised_sim"]["step_s"]
                                                                    / steps["supervised_sim_fast"]["step_s"])
    assert result["sim_config"] == "configs/cpu-sim-1c.yaml"
    # the simulation encoder (a dilated 1-D stack of 256 channels) is not the default one
    assert result["sim_encoder_parameters"] != result["encoder_parameters"] > 0
