"""The effect specs' maths: normalisation over the training range, knob positions over pedalboard's limits."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from fxmatch.effects import KNOWN_EFFECTS, get_spec
from fxmatch.effects.spec import KNOB_BEYOND_TRAINING, Limit, ParamSpec

_PARAMS = [(name, p.name) for name in KNOWN_EFFECTS for p in get_spec(name).params]


@pytest.mark.parametrize(("effect", "param"), _PARAMS)
def test_every_parameter_has_pedalboards_limits_as_its_valid_range(effect, param):
    p = get_spec(effect).param(param)
    assert p.limits is not None
    assert p.valid_range == (p.limits.low, p.limits.high)
    assert p.limits.low <= p.minimum < p.maximum <= p.limits.high


@pytest.mark.parametrize(("effect", "param"), _PARAMS)
def test_knob_positions_span_the_limits_monotonically_and_invert(effect, param):
    p = get_spec(effect).param(param)
    lo, hi = p.valid_range
    assert p.value_at(0.0) == pytest.approx(lo, abs=1e-9)
    assert p.value_at(1.0) == pytest.approx(hi, rel=1e-9)
    positions = np.linspace(0.0, 1.0, 41)
    values = [p.value_at(u) for u in positions]
    assert all(b > a for a, b in itertools.pairwise(values))
    np.testing.assert_allclose([p.position(v) for v in values], positions, atol=1e-9)
    assert p.position(hi * 2 + 1) == 1.0 and p.position(lo - abs(lo) - 1) == 0.0
    # the training range (where estimates land) keeps the middle of the knob, as before the knobs reached the limits
    assert p.position(p.maximum) - p.position(p.minimum) >= 1.0 - 2 * KNOB_BEYOND_TRAINING - 1e-12


@pytest.mark.parametrize(("effect", "param"), _PARAMS)
def test_normalisation_is_the_same_for_floats_arrays_tensors_and_a_models_copy(effect, param):
    p = get_spec(effect).param(param)
    assert p.normalise(p.minimum) == pytest.approx(0.0, abs=1e-12)
    assert p.normalise(p.maximum) == pytest.approx(1.0, abs=1e-12)
    u = np.linspace(0.0, 1.0, 7)
    values = p.denormalise(u)
    np.testing.assert_allclose(p.normalise(values), u, atol=1e-12)
    np.testing.assert_allclose(p.denormalise(torch.from_numpy(u)).numpy(), values, rtol=1e-12)
    copy = ParamSpec.from_dict(p.to_dict())  # what an exported model carries (fxmatch.inference reads it)
    np.testing.assert_allclose([copy.denormalise(float(v)) for v in u], values, rtol=1e-12)
    if p.scale == "log":
        assert p.denormalise(0.5) == pytest.approx(math.sqrt(p.minimum * p.maximum))


def test_limits_must_hold_the_training_range():
    with pytest.raises(ValueError, match="limits"):
        ParamSpec("x", "", 0.0, 2.0, limits=Limit(0.5, 3.0))
