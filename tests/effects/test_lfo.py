"""JUCE's sine LFO phase shared by the Chorus and Phaser twins (fxmatch.effects.lfo)."""

import numpy as np
import pytest
import torch

from fxmatch.effects import lfo


@pytest.mark.parametrize("wrap", [False, True])
def test_lfo_phase_follows_float32_accumulator_with_ideal_gradient(wrap):
    rate = torch.tensor([0.7, 3.1], dtype=torch.float64, requires_grad=True)
    phase = lfo.phase(rate, 48000, 48000.0, wrap=wrap)
    ideal = 2 * np.pi * rate.detach()[:, None] * torch.arange(48000, dtype=torch.float64) / 48000.0
    wrapped = torch.remainder(ideal, 2 * np.pi)
    diff = torch.remainder(phase.detach() - wrapped + np.pi, 2 * np.pi) - np.pi
    assert diff.abs().max() < 0.05
    phase[:, -1].sum().backward()
    torch.testing.assert_close(rate.grad, torch.full((2,), 2 * np.pi * 47999 / 48000.0, dtype=torch.float64))


def test_lfo_phase_is_the_accumulator_unwrapped_or_near_the_ideal_when_wrapped():
    rate = torch.tensor([440.0, 3.1], dtype=torch.float64)
    exact = torch.from_numpy(lfo.float32_phase(rate.numpy(), 8000.0, 4000))
    torch.testing.assert_close(lfo.phase(rate, 4000, 8000.0), exact, rtol=0.0, atol=1e-9)
    ideal = 2 * np.pi * rate[:, None] * torch.arange(4000, dtype=torch.float64) / 8000.0
    near = lfo.phase(rate, 4000, 8000.0, wrap=True)
    assert (near - ideal).abs().max() < np.pi
    circular = torch.remainder(near - exact + np.pi, 2 * np.pi) - np.pi  # the same angle
    assert circular.abs().max() < 1e-9


def test_float32_phase_is_a_float32_accumulator_wrapped_to_two_pi():
    phase = lfo.float32_phase(np.array([1000.0]), 48000.0, 200)[0]
    assert phase[0] == 0.0
    assert np.all((phase >= 0.0) & (phase < 2 * np.pi))
    assert np.array_equal(phase, phase.astype(np.float32).astype(np.float64))
    inc = np.float32(np.float32(np.float32(2 * np.pi) / np.float32(48000.0)) * np.float32(1000.0))
    assert phase[1] == inc
