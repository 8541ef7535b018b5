"""The commands' shared option checks (fxmatch.commands.checks) and their one-line errors."""

from __future__ import annotations

import math

import pytest

from fxmatch.commands.checks import at_least, positive
from fxmatch.errors import FxmatchInputError


@pytest.mark.parametrize("value", [None, 1, 7])
def test_at_least_passes_a_missing_or_large_enough_value(value):
    at_least("capture", "threads", value, 1)


def test_at_least_names_the_command_option_and_bound():
    with pytest.raises(FxmatchInputError, match=r"^estimate: --refine STEPS must be >= 0, got -1$"):
        at_least("estimate", "refine STEPS", -1, 0)


@pytest.mark.parametrize("value", [None, 1e-3, 45.0])
def test_positive_passes_a_missing_or_positive_finite_value(value):
    positive("match", "time-budget", value, " seconds")


@pytest.mark.parametrize("value", [0.0, -1.0, math.inf, math.nan])
def test_positive_refuses_zero_negative_and_non_finite_values(value):
    with pytest.raises(FxmatchInputError, match=rf"^match: --time-budget must be > 0 seconds, got {value}$"):
        positive("match", "time-budget", value, " seconds")
    with pytest.raises(FxmatchInputError, match=rf"^app: --fps must be > 0, got {value}$"):
        positive("app", "fps", value)
